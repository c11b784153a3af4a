//! Raw CAPE / Cuckoo sections → `file_behaviour` attributes.

use crate::raw::{
    GuestPaths, RawBehavior, RawCall, RawDropped, RawNetwork, RawProcess, RawReport, RawSignature,
    RawTreeNode, RawUploadedFile,
};
use crate::{CapeError, Flavour};
use sandscope_model::{
    BehaviourAttributes, DnsLookup, DroppedFile, FileCopy, HttpConversation, IpTraffic,
    MitreAttackTechnique, MitreRef, ProcessNode, RegistrySet, SignatureMatch,
};
use sandscope_normalise::{Environment, Normaliser, record_raw_form};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};

/// At most this many evidence strings are copied per signature: CAPE signatures such as
/// `stealth_network` can list every contacted domain.
const MAX_MATCH_DATA: usize = 32;

/// ATT&CK techniques of CAPE community signatures, for lite reports that carry neither the
/// signature's `ttps` nor the top-level `ttps` section (CAPE's `litereport` copies neither by
/// default). Source: the `ttps` class attributes of these signatures in CAPE's community
/// signature repository; only signatures seen in our corpus and found there are listed.
const CAPE_SIGNATURE_TTPS: &[(&str, &[&str])] = &[
    (
        "persistence_autorun",
        &["T1060", "T1112", "T1547", "T1547.001"],
    ),
    ("uses_windows_utilities", &["T1202"]),
    ("suspicious_command_tools", &["T1202"]),
    ("queries_locale_api", &["T1614", "T1627"]),
    ("language_check_registry", &["T1614", "T1627"]),
];

pub(crate) fn convert(
    flavour: Flavour,
    report: RawReport,
    uploaded: &[RawUploadedFile],
) -> Result<(String, BehaviourAttributes), CapeError> {
    let file = report.target.file.as_ref();
    let sha256 = file
        .and_then(|f| f.sha256.as_deref())
        .map(str::trim)
        .filter(|s| sandscope_model::is_sha256(s))
        .map(str::to_ascii_lowercase);
    let Some(sha256) = sha256 else {
        let category = report.target.category.as_deref().unwrap_or("file");
        return Err(CapeError::NotAReport {
            reason: if category != "file" {
                format!("target.category is {category:?}: only file analyses have a sample")
            } else {
                "target.file.sha256 is missing or not a SHA-256".to_string()
            },
        });
    };
    let target_name = file.and_then(|f| f.name.clone()).unwrap_or_default();
    let guest_paths = file.map(|f| f.guest_paths.clone()).unwrap_or_default();

    let behavior = &report.behavior;
    let sample = SampleProcess::find(behavior, &target_name);
    let spellings = Spellings::new(Normaliser::new(Environment {
        sample_dir: sample_dir(&guest_paths, &sample),
        user_sid: None,
    }));
    let started = report.info.started.as_ref().and_then(|t| t.unix_seconds());

    let mut attributes = BehaviourAttributes {
        sandbox_name: flavour.sandbox_name().to_string(),
        analysis_date: started.map(|s| s as i64),
        ..Default::default()
    };
    processes(&mut attributes, behavior, &sample, &spellings, started);
    summary(&mut attributes, flavour, behavior, &spellings)?;
    calls(&mut attributes, behavior, &spellings);
    network(&mut attributes, &report.network);
    dropped(&mut attributes, &report.dropped, uploaded, &spellings);
    signatures(&mut attributes, &report);
    attributes.raw_forms = spellings.raw_forms.into_inner();
    Ok((sha256, attributes))
}

/// The process the sandbox started for the sample, and the tree it roots.
struct SampleProcess {
    pid: Option<String>,
    image: Option<String>,
    temp_path: Option<String>,
    /// Whether `image` is the submitted file itself (else a launcher such as `cmd.exe`).
    image_is_target: bool,
}

impl SampleProcess {
    /// The first monitored process running the target's file name, else CAPE's initial
    /// process (the first in `behavior.processes`), which for scripts is the interpreter.
    fn find(behavior: &RawBehavior, target_name: &str) -> Self {
        let is_target = |p: &RawProcess| {
            !target_name.is_empty()
                && (p
                    .process_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(target_name))
                    || p.module_path
                        .as_deref()
                        .and_then(|m| m.rsplit(['\\', '/']).next())
                        .is_some_and(|n| n.eq_ignore_ascii_case(target_name)))
        };
        let by_name = behavior.processes.iter().find(|p| is_target(p));
        let chosen = by_name.or_else(|| behavior.processes.first());
        SampleProcess {
            pid: chosen.and_then(|p| p.process_id.as_ref().map(|id| id.0.clone())),
            image: chosen.and_then(|p| p.module_path.clone()),
            temp_path: chosen.and_then(|p| p.environ.temp_path.clone()),
            image_is_target: by_name.is_some(),
        }
    }
}

/// The sample's directory, for `%SAMPLEPATH%`: the target's guest path when the report has
/// one, else the directory of the process running the target, else the initial process's
/// `TempPath` (CAPE's `exe`, `bat` and script packages run the sample from there).
fn sample_dir(guest_paths: &GuestPaths, sample: &SampleProcess) -> Option<String> {
    let parent = |path: &str| {
        path.rsplit_once(['\\', '/'])
            .map(|(dir, _)| dir.to_string())
            .filter(|d| !d.is_empty())
    };
    guest_paths
        .0
        .first()
        .and_then(|p| parent(p))
        .or_else(|| {
            sample
                .image_is_target
                .then(|| sample.image.as_deref().and_then(parent))
                .flatten()
        })
        .or_else(|| {
            sample
                .temp_path
                .as_deref()
                .map(|t| t.trim_end_matches(['\\', '/']).to_string())
                .filter(|t| !t.is_empty())
        })
}

/// The run's normaliser, remembering the raw spelling behind every value it changed, for the
/// report's `raw_forms` (so a search finds the value by what the sandbox logged, too).
struct Spellings {
    normaliser: Normaliser,
    raw_forms: RefCell<BTreeMap<String, Vec<String>>>,
}

impl Spellings {
    fn new(normaliser: Normaliser) -> Self {
        Self {
            normaliser,
            raw_forms: RefCell::default(),
        }
    }

    fn remember(&self, normalised: String, raw: &str) -> String {
        record_raw_form(&mut self.raw_forms.borrow_mut(), &normalised, raw);
        normalised
    }

    fn path(&self, raw: &str) -> String {
        self.remember(self.normaliser.path(raw), raw)
    }

    fn registry_key(&self, raw: &str) -> String {
        self.remember(self.normaliser.registry_key(raw), raw)
    }

    /// The image normalised, arguments as CAPE logged them (`"%SAMPLEPATH%\x.exe" -a`).
    fn command_line(&self, raw: &str) -> String {
        self.remember(self.normaliser.command_line(raw), raw)
    }
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !value.trim().is_empty() && !list.iter().any(|v| v == &value) {
        list.push(value);
    }
}

fn processes(
    attributes: &mut BehaviourAttributes,
    behavior: &RawBehavior,
    sample: &SampleProcess,
    spellings: &Spellings,
    started: Option<f64>,
) {
    let first_seen: BTreeMap<&str, f64> = behavior
        .processes
        .iter()
        .filter_map(|p| {
            Some((
                p.process_id.as_ref()?.0.as_str(),
                p.first_seen.as_ref()?.unix_seconds()?,
            ))
        })
        .collect();
    let offset_of = |pid: &str| -> Option<i64> {
        let seen = *first_seen.get(pid)?;
        let started = started?;
        (seen >= started).then_some((seen - started) as i64)
    };

    let tree: Vec<ProcessNode> = if behavior.processtree.is_empty() {
        tree_from_processes(&behavior.processes, spellings, &offset_of)
    } else {
        behavior
            .processtree
            .iter()
            .map(|node| tree_node(node, spellings, &offset_of))
            .collect()
    };

    // Processes of the tree that holds the sample are the sample's; others (services the
    // sample started, processes it injected into) stay in the tree only.
    let sample_root = sample
        .pid
        .as_deref()
        .and_then(|pid| tree.iter().position(|root| contains_pid(root, pid)));
    let mut sample_pids = HashSet::new();
    if let Some(root) = sample_root.and_then(|i| tree.get(i)) {
        collect_pids(root, &mut sample_pids);
    } else if let Some(pid) = &sample.pid {
        sample_pids.insert(pid.clone());
    }

    for process in &behavior.processes {
        let Some(pid) = process.process_id.as_ref() else {
            continue;
        };
        if !sample_pids.contains(&pid.0) {
            continue;
        }
        if let Some(image) = &process.module_path {
            push_unique(&mut attributes.processes_created, spellings.path(image));
        }
        let command = process
            .environ
            .command_line
            .as_deref()
            .or(process.command_line.as_deref());
        if let Some(command) = command {
            push_unique(
                &mut attributes.command_executions,
                spellings.command_line(command),
            );
        }
    }
    attributes.processes_tree = tree;
}

fn contains_pid(node: &ProcessNode, pid: &str) -> bool {
    node.process_id == pid || node.children.iter().any(|c| contains_pid(c, pid))
}

fn collect_pids(node: &ProcessNode, pids: &mut HashSet<String>) {
    pids.insert(node.process_id.clone());
    for child in &node.children {
        collect_pids(child, pids);
    }
}

fn tree_node(
    node: &RawTreeNode,
    spellings: &Spellings,
    offset_of: &dyn Fn(&str) -> Option<i64>,
) -> ProcessNode {
    let pid = node.pid.as_ref().map(|p| p.0.clone()).unwrap_or_default();
    let command = node
        .environ
        .command_line
        .as_deref()
        .or(node.command_line.as_deref())
        .filter(|c| !c.trim().is_empty());
    let name = match (command, &node.module_path, &node.name) {
        (Some(command), _, _) => spellings.command_line(command),
        (None, Some(image), _) => spellings.path(image),
        (None, None, Some(name)) => name.clone(),
        (None, None, None) => String::new(),
    };
    ProcessNode {
        time_offset: offset_of(&pid),
        process_id: pid,
        name,
        children: node
            .children
            .iter()
            .map(|c| tree_node(c, spellings, offset_of))
            .collect(),
    }
}

/// Without `processtree`, nest `processes` by `parent_id`; processes whose parent was not
/// monitored are roots.
fn tree_from_processes(
    processes: &[RawProcess],
    spellings: &Spellings,
    offset_of: &dyn Fn(&str) -> Option<i64>,
) -> Vec<ProcessNode> {
    let pids: HashSet<&str> = processes
        .iter()
        .filter_map(|p| p.process_id.as_ref().map(|id| id.0.as_str()))
        .collect();
    fn build(
        process: &RawProcess,
        processes: &[RawProcess],
        spellings: &Spellings,
        offset_of: &dyn Fn(&str) -> Option<i64>,
        seen: &mut HashSet<String>,
    ) -> ProcessNode {
        let pid = process
            .process_id
            .as_ref()
            .map(|p| p.0.clone())
            .unwrap_or_default();
        seen.insert(pid.clone());
        let command = process
            .environ
            .command_line
            .as_deref()
            .or(process.command_line.as_deref());
        let name = match (command, &process.module_path) {
            (Some(c), _) => spellings.command_line(c),
            (None, Some(image)) => spellings.path(image),
            (None, None) => process.process_name.clone().unwrap_or_default(),
        };
        let mut children = Vec::new();
        for child in processes {
            let is_child = child.parent_id.as_ref().map(|p| p.0.as_str()) == Some(pid.as_str());
            let child_pid = child.process_id.as_ref().map(|p| p.0.clone());
            if is_child && child_pid.as_ref().is_some_and(|c| !seen.contains(c)) {
                children.push(build(child, processes, spellings, offset_of, seen));
            }
        }
        ProcessNode {
            time_offset: offset_of(&pid),
            process_id: pid,
            name,
            children,
        }
    }
    let mut seen = HashSet::new();
    let mut roots = Vec::new();
    for process in processes {
        let has_parent = process
            .parent_id
            .as_ref()
            .is_some_and(|p| pids.contains(p.0.as_str()));
        let pid = process.process_id.as_ref().map(|p| p.0.clone());
        if !has_parent && pid.as_ref().is_some_and(|p| !seen.contains(p)) {
            roots.push(build(process, processes, spellings, offset_of, &mut seen));
        }
    }
    roots
}

/// The strings of one `behavior.summary` list; a wrong type is an error with its path.
fn summary_strings(summary: &BTreeMap<String, Value>, key: &str) -> Result<Vec<String>, CapeError> {
    let Some(value) = summary.get(key) else {
        return Ok(Vec::new());
    };
    let wrong = |path: String, found: &Value| CapeError::Json {
        file: String::new(),
        path,
        line: 0,
        column: 0,
        truncated: false,
        message: format!("expected a list of strings, found {}", json_kind(found)),
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter(|(_, item)| !item.is_null())
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong(format!("behavior.summary.{key}[{i}]"), other)),
            })
            .collect(),
        other => Err(wrong(format!("behavior.summary.{key}"), other)),
    }
}

/// Cuckoo 2.x `file_copied`/`file_moved`: `[[source, destination], …]`.
fn summary_pairs(
    summary: &BTreeMap<String, Value>,
    key: &str,
) -> Result<Vec<(String, String)>, CapeError> {
    let Some(value) = summary.get(key) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(CapeError::Json {
            file: String::new(),
            path: format!("behavior.summary.{key}"),
            line: 0,
            column: 0,
            truncated: false,
            message: format!("expected a list of pairs, found {}", json_kind(value)),
        });
    };
    let mut pairs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_array().map(Vec::as_slice) {
            Some([Value::String(a), Value::String(b)]) => pairs.push((a.clone(), b.clone())),
            _ => {
                return Err(CapeError::Json {
                    file: String::new(),
                    path: format!("behavior.summary.{key}[{i}]"),
                    line: 0,
                    column: 0,
                    truncated: false,
                    message: format!(
                        "expected a [source, destination] pair, found {}",
                        json_kind(item)
                    ),
                });
            }
        }
    }
    Ok(pairs)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn summary(
    attributes: &mut BehaviourAttributes,
    flavour: Flavour,
    behavior: &RawBehavior,
    spellings: &Spellings,
) -> Result<(), CapeError> {
    let s = &behavior.summary;
    let paths = |keys: &[&str], out: &mut Vec<String>| -> Result<(), CapeError> {
        for key in keys {
            for path in summary_strings(s, key)? {
                push_unique(out, spellings.path(&path));
            }
        }
        Ok(())
    };
    let keys = |names: &[&str], out: &mut Vec<String>| -> Result<(), CapeError> {
        for name in names {
            for key in summary_strings(s, name)? {
                push_unique(out, spellings.registry_key(&key));
            }
        }
        Ok(())
    };
    let (opened, written, deleted, keys_opened, keys_written, keys_deleted) = match flavour {
        Flavour::Cape => (
            &["files", "read_files"][..],
            &["write_files"][..],
            &["delete_files"][..],
            &["keys", "read_keys"][..],
            &["write_keys"][..],
            &["delete_keys"][..],
        ),
        Flavour::Cuckoo => (
            &["file_opened", "file_read", "file_exists", "file_failed"][..],
            &["file_created", "file_written", "file_recreated"][..],
            &["file_deleted"][..],
            &["regkey_opened", "regkey_read"][..],
            &["regkey_written"][..],
            &["regkey_deleted"][..],
        ),
    };
    paths(opened, &mut attributes.files_opened)?;
    paths(written, &mut attributes.files_written)?;
    paths(deleted, &mut attributes.files_deleted)?;
    keys(keys_opened, &mut attributes.registry_keys_opened)?;
    keys(keys_deleted, &mut attributes.registry_keys_deleted)?;
    let mut written_keys = Vec::new();
    keys(keys_written, &mut written_keys)?;
    for key in written_keys {
        attributes
            .registry_keys_set
            .push(RegistrySet { key, value: None });
    }
    let commands_key = match flavour {
        Flavour::Cape => "executed_commands",
        Flavour::Cuckoo => "command_line",
    };
    for command in summary_strings(s, commands_key)? {
        push_unique(
            &mut attributes.command_executions,
            spellings.command_line(&command),
        );
    }
    let mutex_key = match flavour {
        Flavour::Cape => "mutexes",
        Flavour::Cuckoo => "mutex",
    };
    // Split into created/opened below, from the calls; without calls they count as created.
    for mutex in summary_strings(s, mutex_key)? {
        push_unique(&mut attributes.mutexes_created, mutex);
    }
    for service in summary_strings(s, "created_services")? {
        push_unique(&mut attributes.services_created, service);
    }
    for service in summary_strings(s, "started_services")? {
        push_unique(&mut attributes.services_started, service);
    }
    if flavour == Flavour::Cuckoo {
        for module in summary_strings(s, "dll_loaded")? {
            push_unique(&mut attributes.modules_loaded, spellings.path(&module));
        }
        for key in ["file_copied", "file_moved"] {
            for (source, destination) in summary_pairs(s, key)? {
                let copy = FileCopy {
                    source: spellings.path(&source),
                    destination: spellings.path(&destination),
                };
                if !attributes.files_copied.contains(&copy) {
                    attributes.files_copied.push(copy);
                }
            }
        }
        for host in summary_strings(s, "resolves_host")? {
            if !attributes.dns_lookups.iter().any(|d| d.hostname == host) {
                attributes.dns_lookups.push(DnsLookup {
                    hostname: host,
                    ..Default::default()
                });
            }
        }
    }
    Ok(())
}

/// What only the API calls tell: which mutexes were opened rather than created, and the data
/// written to registry values.
fn calls(attributes: &mut BehaviourAttributes, behavior: &RawBehavior, spellings: &Spellings) {
    let all_calls = || behavior.processes.iter().flat_map(|p| p.calls.0.iter());
    let is_create = |c: &RawCall| c.api.contains("Create");
    let mutex_name = |c: &RawCall| c.arguments.text("MutexName");
    let created: HashSet<String> = all_calls()
        .filter(|c| c.api.contains("Mut") && is_create(c))
        .filter_map(mutex_name)
        .collect();
    let opened: HashSet<String> = all_calls()
        .filter(|c| c.api.contains("Mut") && c.api.contains("Open"))
        .filter_map(mutex_name)
        .collect();
    let mut still_created = Vec::new();
    for mutex in std::mem::take(&mut attributes.mutexes_created) {
        if opened.contains(&mutex) && !created.contains(&mutex) {
            push_unique(&mut attributes.mutexes_opened, mutex);
        } else {
            still_created.push(mutex);
        }
    }
    attributes.mutexes_created = still_created;

    for call in all_calls().filter(|c| c.api.contains("SetValue")) {
        let (Some(full_name), Some(data)) = (
            call.arguments.text("FullName"),
            call.arguments.text("Buffer"),
        ) else {
            continue;
        };
        let key = spellings.registry_key(&full_name);
        match attributes
            .registry_keys_set
            .iter_mut()
            .find(|set| set.key.eq_ignore_ascii_case(&key))
        {
            Some(set) if set.value.is_none() => set.value = Some(data),
            Some(_) => {}
            None => attributes.registry_keys_set.push(RegistrySet {
                key,
                value: Some(data),
            }),
        }
    }
}

fn network(attributes: &mut BehaviourAttributes, network: &RawNetwork) {
    for query in &network.dns {
        let hostname = query.request.trim().to_string();
        if hostname.is_empty() {
            continue;
        }
        let index = match attributes
            .dns_lookups
            .iter()
            .position(|d| d.hostname.eq_ignore_ascii_case(&hostname))
        {
            Some(i) => i,
            None => {
                attributes.dns_lookups.push(DnsLookup {
                    hostname,
                    ..Default::default()
                });
                attributes.dns_lookups.len() - 1
            }
        };
        let lookup = &mut attributes.dns_lookups[index];
        for answer in &query.answers {
            let kind = answer.kind.as_deref().unwrap_or("").to_ascii_uppercase();
            let target = if kind == "A" || kind == "AAAA" {
                &mut lookup.resolved_ips
            } else {
                &mut lookup.cnames
            };
            push_unique(target, answer.data.trim().to_string());
        }
    }

    let mut push_traffic = |traffic: IpTraffic| {
        if !traffic.destination_ip.is_empty() && !attributes.ip_traffic.contains(&traffic) {
            attributes.ip_traffic.push(traffic);
        }
    };
    for (flows, protocol) in [(&network.tcp, "TCP"), (&network.udp, "UDP")] {
        for flow in flows.iter() {
            push_traffic(IpTraffic {
                destination_ip: flow.dst.trim().to_string(),
                destination_port: flow.dport,
                transport_layer_protocol: Some(protocol.to_string()),
            });
        }
    }
    for host in &network.hosts {
        let ip = host.ip().trim();
        if !attributes.ip_traffic.iter().any(|t| t.destination_ip == ip) {
            attributes.ip_traffic.push(IpTraffic {
                destination_ip: ip.to_string(),
                ..Default::default()
            });
        }
    }

    for request in &network.http {
        let url = request.uri.clone().filter(|u| !u.is_empty()).or_else(|| {
            let host = request.host.as_deref()?;
            let path = request.path.as_deref().unwrap_or("/");
            Some(match request.port {
                Some(80) | None => format!("http://{host}{path}"),
                Some(port) => format!("http://{host}:{port}{path}"),
            })
        });
        let Some(url) = url else { continue };
        let conversation = HttpConversation {
            url,
            request_method: request.method.clone().filter(|m| !m.is_empty()),
            request_headers: request
                .data
                .as_deref()
                .map(request_headers)
                .unwrap_or_default(),
            ..Default::default()
        };
        if !attributes
            .http_conversations
            .iter()
            .any(|c| c.url == conversation.url && c.request_method == conversation.request_method)
        {
            attributes.http_conversations.push(conversation);
        }
    }
}

/// Headers of a raw HTTP request (`GET / HTTP/1.1\r\nHost: x\r\n\r\n`).
fn request_headers(raw: &str) -> BTreeMap<String, String> {
    raw.split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

fn dropped(
    attributes: &mut BehaviourAttributes,
    dropped: &[RawDropped],
    uploaded: &[RawUploadedFile],
    spellings: &Spellings,
) {
    let mut push = |file: DroppedFile| {
        let duplicate = attributes
            .files_dropped
            .iter()
            .any(|d| d.path.eq_ignore_ascii_case(&file.path) && (d.sha256 == file.sha256));
        if !duplicate && !file.path.is_empty() {
            attributes.files_dropped.push(file);
        }
    };
    for file in dropped {
        let guest = file
            .guest_paths
            .0
            .first()
            .cloned()
            .or_else(|| file.filepath.clone())
            .or_else(|| file.name.clone())
            .unwrap_or_default();
        push(DroppedFile {
            path: spellings.path(&guest),
            sha256: file.sha256.clone().map(|s| s.to_ascii_lowercase()),
            file_type: file.file_type.as_deref().and_then(vt_file_type),
        });
    }
    for file in uploaded.iter().filter(|f| f.category == "files") {
        let sha256 = file
            .path
            .rsplit('/')
            .next()
            .filter(|s| sandscope_model::is_sha256(s))
            .map(str::to_ascii_lowercase);
        push(DroppedFile {
            path: spellings.path(&file.filepath),
            sha256,
            file_type: None,
        });
    }
}

/// libmagic descriptions (CAPE's and Cuckoo's `type`) → VirusTotal FileType names, for the
/// common kinds; others are left out rather than guessed.
pub(crate) fn vt_file_type(magic: &str) -> Option<String> {
    let m = magic.to_ascii_lowercase();
    let kind = if m.starts_with("pe32") && m.contains("(dll)") {
        "PE_DLL"
    } else if m.starts_with("pe32") {
        "PE_EXE"
    } else if m.starts_with("elf") {
        "ELF"
    } else if m.starts_with("ms windows shortcut") {
        "LNK"
    } else if m.starts_with("png image") {
        "PNG"
    } else if m.starts_with("jpeg image") {
        "JPEG"
    } else if m.starts_with("zip archive") {
        "ZIP"
    } else if m.starts_with("html document") {
        "HTML"
    } else if m.starts_with("pdf document") {
        "PDF"
    } else if m.contains("text") {
        "TEXT"
    } else {
        return None;
    };
    Some(kind.to_string())
}

/// CAPE severities are 1 (informational) to 3+ (high); Cuckoo uses the same scale.
fn impact_severity(severity: Option<i64>) -> String {
    match severity {
        Some(i64::MIN..=0) => "IMPACT_SEVERITY_INFO",
        Some(1) => "IMPACT_SEVERITY_LOW",
        Some(2) => "IMPACT_SEVERITY_MEDIUM",
        Some(_) => "IMPACT_SEVERITY_HIGH",
        None => "IMPACT_SEVERITY_UNKNOWN",
    }
    .to_string()
}

/// Evidence worth showing: `{"regkey": …}`, `{"command": …}`, `{"ip": …}`; call references
/// (`{"type": "call", "pid", "cid"}`) point into the API trace and are left out.
fn match_data(signature: &RawSignature) -> Vec<String> {
    let mut out = Vec::new();
    for item in &signature.data {
        let Value::Object(map) = item else { continue };
        if map.get("type").and_then(Value::as_str) == Some("call") {
            continue;
        }
        for (key, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            push_unique(&mut out, format!("{key}: {text}"));
        }
        if out.len() >= MAX_MATCH_DATA {
            out.truncate(MAX_MATCH_DATA);
            break;
        }
    }
    out
}

/// VirusTotal behaviour tags for CAPE signature categories that name one.
fn tag_for_category(category: &str) -> Option<&'static str> {
    match category.to_ascii_lowercase().as_str() {
        "persistence" => Some("PERSISTENCE"),
        "anti-debug" | "anti_debug" | "antidebug" => Some("DETECT_DEBUG_ENVIRONMENT"),
        _ => None,
    }
}

fn signatures(attributes: &mut BehaviourAttributes, report: &RawReport) {
    let mut malware = false;
    for signature in &report.signatures {
        let name = signature.name.clone().filter(|n| !n.is_empty());
        let severity = impact_severity(signature.severity);
        attributes.signature_matches.push(SignatureMatch {
            id: None,
            name: name.clone(),
            format: None,
            description: signature.description.clone(),
            authors: Vec::new(),
            match_data: match_data(signature),
            severity: Some(severity.clone()),
        });
        for category in &signature.categories {
            if let Some(tag) = tag_for_category(category) {
                push_unique(&mut attributes.tags, tag.to_string());
            }
        }
        malware |= !signature.families.is_empty();

        let mut ids: Vec<String> = Vec::new();
        for id in signature.ttp.0.iter().chain(&signature.ttps.0) {
            push_unique(&mut ids, id.trim().to_ascii_uppercase());
        }
        if let Some(name) = &name {
            for entry in report.ttps.iter().filter(|e| &e.signature == name) {
                for id in &entry.ttps.0 {
                    push_unique(&mut ids, id.trim().to_ascii_uppercase());
                }
            }
            if ids.is_empty()
                && let Some((_, known)) = CAPE_SIGNATURE_TTPS.iter().find(|(n, _)| n == name)
            {
                ids.extend(known.iter().map(|id| id.to_string()));
            }
        }
        let reference = name
            .clone()
            .unwrap_or_else(|| signature.description.clone());
        for id in ids {
            let technique = MitreAttackTechnique {
                id,
                signature_description: signature.description.clone(),
                severity: severity.clone(),
                refs: vec![MitreRef {
                    reference: "#signature_matches".to_string(),
                    value: reference.clone(),
                }],
            };
            if !attributes.mitre_attack_techniques.contains(&technique) {
                attributes.mitre_attack_techniques.push(technique);
            }
        }
    }
    // `ttps` entries for signatures the report does not list (trimmed reports).
    for entry in &report.ttps {
        if report
            .signatures
            .iter()
            .any(|s| s.name.as_deref() == Some(entry.signature.as_str()))
        {
            continue;
        }
        for id in &entry.ttps.0 {
            let technique = MitreAttackTechnique {
                id: id.trim().to_ascii_uppercase(),
                signature_description: entry.signature.clone(),
                severity: impact_severity(None),
                refs: vec![MitreRef {
                    reference: "#signature_matches".to_string(),
                    value: entry.signature.clone(),
                }],
            };
            if !attributes.mitre_attack_techniques.contains(&technique) {
                attributes.mitre_attack_techniques.push(technique);
            }
        }
    }
    if malware {
        push_unique(&mut attributes.verdicts, "MALWARE".to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers_come_from_the_raw_request() {
        let headers = request_headers(
            "GET /a HTTP/1.1\r\nConnection: Keep-Alive\r\nHost: crl.microsoft.com\r\n\r\nbody: no",
        );
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["Host"], "crl.microsoft.com");
    }

    #[test]
    fn magic_types_map_to_vt_names() {
        assert_eq!(
            vt_file_type("PE32 executable (console) Intel 80386, for MS Windows").as_deref(),
            Some("PE_EXE")
        );
        assert_eq!(
            vt_file_type("PE32+ executable (DLL) (GUI) x86-64, for MS Windows").as_deref(),
            Some("PE_DLL")
        );
        assert_eq!(
            vt_file_type("ASCII text, with CRLF line terminators").as_deref(),
            Some("TEXT")
        );
        assert_eq!(vt_file_type("data"), None);
    }
}
