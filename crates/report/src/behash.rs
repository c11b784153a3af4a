//! `behash`: a behaviour-similarity hash. Two runs of the same malware family should get the
//! same value even though times, pids, user names and random file names differ.
//!
//! Inputs, each as one line `kind:value`, lower-cased, de-duplicated and **sorted** (so the hash
//! does not depend on event order), joined with `\n`, then MD5 (32 hex digits, VirusTotal's
//! length):
//! * `proc:` the file name of every created process image, with the sample's own image as
//!   `<sample>` (its name is whatever the submitter called it);
//! * `file:` / `del:` the normalised folder and extension of every written / deleted file
//!   (`%appdata%\*.exe`): folder and type are behaviour, the name is often random;
//! * `reg:` / `regdel:` every normalised registry key set / deleted, with braced GUIDs replaced
//!   by `{guid}` and the value data left out;
//! * `dns:` every queried host name; `net:` every `protocol/port` contacted (not the IP, which
//!   moves between runs behind CDNs);
//! * `svc:`, `task:`, `wmi:` the names of services and tasks created and the kinds of WMI
//!   objects registered; `mod:` the file names of loaded modules; `inj:` the file names of
//!   injected processes; `tag:` the behaviour tags.
//!
//! Left out: times, pids, command lines (arguments carry random names and URLs), named pipes
//! (mostly random), IP addresses and registry value data. An empty behaviour has no behash.

use md5::{Digest, Md5};
use sandscope_model::BehaviourAttributes;
use std::collections::BTreeSet;

pub(crate) fn behash(attrs: &BehaviourAttributes, sample_image: Option<&str>) -> Option<String> {
    let mut lines: BTreeSet<String> = BTreeSet::new();
    let sample = sample_image.map(file_name);
    for p in &attrs.processes_created {
        let name = file_name(p);
        if Some(&name) == sample.as_ref() {
            lines.insert("proc:<sample>".into());
        } else {
            lines.insert(format!("proc:{name}"));
        }
    }
    for f in &attrs.files_written {
        lines.insert(format!("file:{}", folder_and_type(f)));
    }
    for f in &attrs.files_deleted {
        lines.insert(format!("del:{}", folder_and_type(f)));
    }
    for r in &attrs.registry_keys_set {
        lines.insert(format!("reg:{}", generic_guids(&r.key.to_lowercase())));
    }
    for r in &attrs.registry_keys_deleted {
        lines.insert(format!("regdel:{}", generic_guids(&r.to_lowercase())));
    }
    for d in &attrs.dns_lookups {
        lines.insert(format!("dns:{}", d.hostname.to_lowercase()));
    }
    for t in &attrs.ip_traffic {
        lines.insert(format!(
            "net:{}/{}",
            t.transport_layer_protocol
                .as_deref()
                .unwrap_or("?")
                .to_lowercase(),
            t.destination_port
                .map(|p| p.to_string())
                .unwrap_or_default()
        ));
    }
    for s in &attrs.services_created {
        lines.insert(format!("svc:{}", s.to_lowercase()));
    }
    for t in &attrs.scheduled_tasks_created {
        lines.insert(format!(
            "task:{}",
            t.name.trim_start_matches('\\').to_lowercase()
        ));
    }
    for w in &attrs.wmi_subscriptions {
        lines.insert(format!("wmi:{}", w.kind));
    }
    for m in &attrs.modules_loaded {
        lines.insert(format!("mod:{}", file_name(m)));
    }
    for i in &attrs.processes_injected {
        lines.insert(format!("inj:{}", file_name(i)));
    }
    for t in &attrs.tags {
        lines.insert(format!("tag:{}", t.to_lowercase()));
    }
    if lines.is_empty() {
        return None;
    }
    let mut hasher = Md5::new();
    for (n, line) in lines.iter().enumerate() {
        if n > 0 {
            hasher.update(b"\n");
        }
        hasher.update(line.as_bytes());
    }
    Some(
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

fn file_name(path: &str) -> String {
    path.rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
        .to_lowercase()
}

fn folder_and_type(path: &str) -> String {
    let lower = path.to_lowercase();
    let (folder, name) = lower.rsplit_once(['\\', '/']).unwrap_or(("", &lower));
    match name.rsplit_once('.') {
        Some((_, ext)) => format!("{folder}\\*.{ext}"),
        None => format!("{folder}\\*"),
    }
}

fn generic_guids(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        if candidate.len() >= 38
            && candidate.is_char_boundary(38)
            && candidate.as_bytes()[37] == b'}'
            && candidate[1..37]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            out.push_str("{guid}");
            rest = &candidate[38..];
        } else {
            out.push('{');
            rest = &candidate[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandscope_model::RegistrySet;

    #[test]
    fn order_independent_and_ignores_random_names() {
        let a = BehaviourAttributes {
            processes_created: vec![
                r"%TEMP%\abc.exe".into(),
                r"%WINDIR%\system32\cmd.exe".into(),
            ],
            files_written: vec![r"%APPDATA%\x1.exe".into(), r"%TEMP%\q.tmp".into()],
            registry_keys_set: vec![RegistrySet {
                key: r"HKCR\CLSID\{0002DF01-0000-0000-C000-000000000046}\x".into(),
                value: Some("1".into()),
            }],
            ..Default::default()
        };
        let mut b = a.clone();
        b.processes_created = vec![
            r"%WINDIR%\system32\cmd.exe".into(),
            r"%TEMP%\zzz.exe".into(),
        ];
        b.files_written = vec![r"%TEMP%\r.tmp".into(), r"%APPDATA%\y2.exe".into()];
        b.registry_keys_set[0].key = r"HKCR\CLSID\{11111111-0000-0000-C000-000000000046}\x".into();
        b.registry_keys_set[0].value = Some("2".into());
        let ha = behash(&a, Some(r"%TEMP%\abc.exe")).unwrap();
        let hb = behash(&b, Some(r"%TEMP%\zzz.exe")).unwrap();
        assert_eq!(ha, hb);
        assert_eq!(ha.len(), 32);
        b.dns_lookups.push(Default::default());
        assert_ne!(behash(&b, None), Some(ha));
        assert_eq!(behash(&BehaviourAttributes::default(), None), None);
        assert_eq!(generic_guids("{é"), "{é");
    }
}
