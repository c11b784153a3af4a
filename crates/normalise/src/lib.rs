//! Normalisation of file paths, registry keys and command lines to the forms sandbox reports
//! use (`%APPDATA%\…`, `%SAMPLEPATH%\…`, `HKCU\…`, `"%SAMPLEPATH%\x.exe" -a`), so that the
//! same behaviour seen by different sandboxes, users and machines compares equal.
//!
//! This crate only computes the normalised form; callers keep the raw value next to it, through
//! [`record_raw_form`] into the report's `raw_forms` extension. One normaliser serves every
//! producer (Sysmon reports, CAPE/Cuckoo imports) and Sysmon for Linux. It depends on nothing.
//!
//! # Path rules ([`Normaliser::path`]), applied in this order
//!
//! 1. Surrounding whitespace is trimmed. A path starting with `/` (Sysmon for Linux, CAPE Linux)
//!    is returned unchanged: Linux paths are case-sensitive and have no placeholder convention.
//! 2. Win32 and NT prefixes are removed: `\??\`, `\\?\`, `\\.\`, and `\\?\UNC\` (→ `\\`).
//! 3. `\Device\HarddiskVolumeN\` becomes `C:\`, and `\SystemRoot\` becomes `%WINDIR%\`.
//!    Sandbox guests have one data volume, and the volume-to-drive table is not in the log, so
//!    `C:` is an assumption, stated here once.
//! 4. A leading environment variable is spelled canonically: `%windir%`, `%SystemRoot%` →
//!    `%WINDIR%`; `%appdata%` → `%APPDATA%`; `%localappdata%` → `%LOCALAPPDATA%`; `%temp%`,
//!    `%tmp%` → `%TEMP%`; `%userprofile%` → `%USERPROFILE%`; `%public%` → `%PUBLIC%`;
//!    `%programdata%` → `%ProgramData%`; `%programfiles%` → `%ProgramFiles%`;
//!    `%programfiles(x86)%` → `%ProgramFiles(x86)%`. The doubled form Windows stores in some
//!    values (`%%SystemRoot%%`) is read as the single one.
//! 5. The longest known prefix is replaced (compared case-insensitively, on whole path
//!    components): the sample's own directory → `%SAMPLEPATH%`;
//!    `C:\Users\<u>\AppData\Local\Temp` → `%TEMP%`; `C:\Users\<u>\AppData\Roaming` →
//!    `%APPDATA%`; `C:\Users\<u>\AppData\Local` → `%LOCALAPPDATA%`; `C:\Users\Public` →
//!    `%PUBLIC%`; `C:\Users\<u>` → `%USERPROFILE%`; `C:\ProgramData` → `%ProgramData%`;
//!    `C:\Program Files (x86)` → `%ProgramFiles(x86)%`; `C:\Program Files` → `%ProgramFiles%`;
//!    `C:\Windows` → `%WINDIR%`. `<u>` is any user name, since sandboxes rename their user.
//! 6. Otherwise the drive letter is upper-cased. The rest of the path keeps its case (case is
//!    folded only for comparison, never for display).
//! 7. Braced GUIDs anywhere in the path are written in one spelling: upper case, with braces.
//!
//! # Registry rules ([`Normaliser::registry_key`])
//!
//! 1. Hive roots become the short names, whatever their case: `\REGISTRY\MACHINE`,
//!    `HKEY_LOCAL_MACHINE`, `hklm` → `HKLM`; `\REGISTRY\USER`, `HKEY_USERS` → `HKU`;
//!    `HKEY_CURRENT_USER` → `HKCU`; `HKEY_CLASSES_ROOT` → `HKCR`; `HKEY_CURRENT_CONFIG` →
//!    `HKCC`. Application hives (`\REGISTRY\A\{…}`) and unknown roots are kept as they are.
//! 2. The interactive user's hives: `HKU\<user SID>_Classes` → `HKCU\Software\Classes`, then
//!    `HKU\<user SID>` → `HKCU`. Other SIDs (`.DEFAULT`, `S-1-5-18/19/20`, other users) stay under
//!    `HKU`.
//! 3. `HKLM\SOFTWARE\Classes` → `HKCR` (the merged view is what analysts search for).
//! 4. The first key under `HKLM` is upper-cased when it is one of the fixed hives (`SYSTEM`,
//!    `SOFTWARE`, `SAM`, `SECURITY`, `HARDWARE`, `BCD00000000`): Sysmon writes both
//!    `HKLM\System` and `HKLM\SYSTEM`.
//! 5. `HKLM\SYSTEM\ControlSet00N` → `HKLM\SYSTEM\CurrentControlSet` (the machine has one active set
//!    and Sysmon documents the same rewrite).
//! 6. Braced GUIDs are spelled upper case, as in rule 7 for paths.
//!
//! # Command-line rules ([`Normaliser::command_line`])
//!
//! Only the image (the program the line starts) is normalised, by the path rules; the
//! arguments and all whitespace, the leading and trailing included, are kept byte for byte:
//! they are what ran, and VirusTotal shows command lines that way (`"%SAMPLEPATH%\x.exe" `).
//!
//! 1. A line starting (after whitespace) with `"` has the quoted text as its image. Without a
//!    closing quote the end of the image is unknown and the line is returned unchanged.
//! 2. Otherwise the image is the first whitespace-separated word, unless that word does not end
//!    in an executable extension (`.exe`, `.com`, `.scr`, `.bat`, `.cmd`, `.pif`) and a longer
//!    prefix does: like `CreateProcess` on an unquoted `C:\Program Files\a b\x.exe -k`, words
//!    are added until one ends in such an extension. A word starting with `/`, `-` or `"` ends
//!    the search (it is an argument), and so does the 32,767th byte (Windows' longest path).
//! 3. An unquoted image without a `\` (`cmd.exe /c …`, `bitsadmin /transfer …`) is a program
//!    found on the search path: the line is returned unchanged.
//!
//! # Raw forms ([`record_raw_form`])
//!
//! Reports carry normalised values and keep the raw spellings behind each in their `raw_forms`
//! extension (normalised value → raw spellings, first seen first, at most
//! [`MAX_RAW_FORMS`] per value so a hostile log cannot grow it without bound).

use std::collections::BTreeMap;

/// Most raw spellings kept behind one normalised value.
pub const MAX_RAW_FORMS: usize = 64;

/// Executable extensions that end an unquoted image containing spaces (command-line rule 2).
const IMAGE_EXTENSIONS: [&str; 6] = [".exe", ".com", ".scr", ".bat", ".cmd", ".pif"];

/// How far an unquoted image is looked for: Windows' longest path.
const MAX_IMAGE_BYTES: usize = 32_767;

/// Record `raw` as a spelling of `normalised` in a report's `raw_forms` map (rules in the crate
/// doc). Nothing is recorded when normalisation changed nothing.
pub fn record_raw_form(raw_forms: &mut BTreeMap<String, Vec<String>>, normalised: &str, raw: &str) {
    if normalised == raw {
        return;
    }
    let forms = raw_forms.entry(normalised.to_string()).or_default();
    if forms.len() < MAX_RAW_FORMS && !forms.iter().any(|f| f == raw) {
        forms.push(raw.to_string());
    }
}

/// What the run's environment tells us, for the longest-prefix replacements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// The directory the sample ran from (becomes `%SAMPLEPATH%`).
    pub sample_dir: Option<String>,
    /// The SID of the interactive user (`HKU\<sid>` becomes `HKCU`).
    pub user_sid: Option<String>,
}

/// Normalises paths and registry keys for one run.
#[derive(Debug, Clone, Default)]
pub struct Normaliser {
    env: Environment,
}

const PATH_TOKENS: &[(&str, &str)] = &[
    ("%windir%", "%WINDIR%"),
    ("%systemroot%", "%WINDIR%"),
    ("%appdata%", "%APPDATA%"),
    ("%localappdata%", "%LOCALAPPDATA%"),
    ("%temp%", "%TEMP%"),
    ("%tmp%", "%TEMP%"),
    ("%userprofile%", "%USERPROFILE%"),
    ("%public%", "%PUBLIC%"),
    ("%programdata%", "%ProgramData%"),
    ("%programfiles(x86)%", "%ProgramFiles(x86)%"),
    ("%programfiles%", "%ProgramFiles%"),
    ("%samplepath%", "%SAMPLEPATH%"),
];

const HKLM_HIVES: &[&str] = &[
    "SYSTEM",
    "SOFTWARE",
    "SAM",
    "SECURITY",
    "HARDWARE",
    "BCD00000000",
];

impl Normaliser {
    pub fn new(env: Environment) -> Self {
        Self { env }
    }

    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// `C:\Users\bob\AppData\Roaming\x.exe` → `%APPDATA%\x.exe` (rules in the crate doc).
    pub fn path(&self, raw: &str) -> String {
        let path = raw.trim();
        if path.starts_with('/') {
            return path.to_string();
        }
        let path = strip_win32_prefixes(path);
        let path = device_to_drive(&path);
        let path = canonical_leading_token(&path);
        let replaced = self.replace_prefix(&path);
        upper_case_guids(&replaced)
    }

    fn replace_prefix(&self, path: &str) -> String {
        if let Some(dir) = self.env.sample_dir.as_deref() {
            let dir = device_to_drive(&strip_win32_prefixes(dir.trim()));
            let dir = dir.trim_end_matches('\\');
            if !dir.is_empty()
                && let Some(rest) = strip_component_prefix(path, dir)
            {
                return format!("%SAMPLEPATH%{rest}");
            }
        }
        if let Some(rest) = strip_prefix_ci(path, r"C:\Users\") {
            let (user, tail) = rest.split_once('\\').unwrap_or((rest, ""));
            if user.eq_ignore_ascii_case("Public") {
                return format!("%PUBLIC%{}", with_sep(tail));
            }
            if !user.is_empty() {
                let tail_with_sep = with_sep(tail);
                for (prefix, token) in [
                    (r"\AppData\Local\Temp", "%TEMP%"),
                    (r"\AppData\Roaming", "%APPDATA%"),
                    (r"\AppData\Local", "%LOCALAPPDATA%"),
                ] {
                    if let Some(after) = strip_component_prefix(&tail_with_sep, prefix) {
                        return format!("{token}{after}");
                    }
                }
                return format!("%USERPROFILE%{tail_with_sep}");
            }
        }
        for (prefix, token) in [
            (r"C:\ProgramData", "%ProgramData%"),
            (r"C:\Program Files (x86)", "%ProgramFiles(x86)%"),
            (r"C:\Program Files", "%ProgramFiles%"),
            (r"C:\Windows", "%WINDIR%"),
        ] {
            if let Some(after) = strip_component_prefix(path, prefix) {
                return format!("{token}{after}");
            }
        }
        let bytes = path.as_bytes();
        if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_lowercase() {
            let mut out = String::with_capacity(path.len());
            out.push(char::from(bytes[0].to_ascii_uppercase()));
            out.push_str(&path[1..]);
            return out;
        }
        path.to_string()
    }

    /// `"C:\Users\u\AppData\Local\Temp\x.exe" -a` → `"%TEMP%\x.exe" -a`: the image
    /// normalised, the arguments untouched (rules in the crate doc).
    pub fn command_line(&self, raw: &str) -> String {
        let body = raw.trim_start();
        let indent = &raw[..raw.len() - body.len()];
        if let Some(quoted) = body.strip_prefix('"') {
            let Some(end) = quoted.find('"') else {
                return raw.to_string();
            };
            let (image, rest) = quoted.split_at(end);
            return format!("{indent}\"{}{rest}", self.path(image));
        }
        let (image, rest) = body.split_at(unquoted_image_end(body));
        if !image.contains('\\') {
            return raw.to_string();
        }
        format!("{indent}{}{rest}", self.path(image))
    }

    /// `\REGISTRY\MACHINE\…` → `HKLM\…`, `HKU\<user sid>\…` → `HKCU\…` (rules in the crate doc).
    pub fn registry_key(&self, raw: &str) -> String {
        let key = raw.trim();
        let Some((hive, rest)) = split_hive(key) else {
            return upper_case_guids(key);
        };
        let mut hive = hive;
        let mut rest = rest.to_string();
        if hive == "HKU"
            && let Some(sid) = self.env.user_sid.as_deref().map(str::trim)
            && !sid.is_empty()
        {
            let classes = format!("\\{sid}_Classes");
            let user = format!("\\{sid}");
            if let Some(after) = strip_component_prefix(&rest, &classes) {
                hive = "HKCU";
                rest = format!("\\Software\\Classes{after}");
            } else if let Some(after) = strip_component_prefix(&rest, &user) {
                hive = "HKCU";
                rest = after.to_string();
            }
        }
        if hive == "HKLM" {
            if let Some(after) = strip_component_prefix(&rest, r"\SOFTWARE\Classes") {
                hive = "HKCR";
                rest = after.to_string();
            } else {
                rest = canonical_hklm_tail(&rest);
            }
        }
        upper_case_guids(&format!("{hive}{rest}"))
    }
}

/// Where the image of an unquoted command line ends (command-line rule 2).
fn unquoted_image_end(body: &str) -> usize {
    let first = body.find(char::is_whitespace).unwrap_or(body.len());
    if first == body.len() || has_image_extension(&body[..first]) {
        return first;
    }
    let mut in_word = false;
    for (i, c) in body[first..].char_indices() {
        let at = first + i;
        if at > MAX_IMAGE_BYTES {
            return first;
        }
        if c.is_whitespace() {
            if in_word && has_image_extension(&body[..at]) {
                return at;
            }
            in_word = false;
        } else if !in_word {
            if matches!(c, '/' | '-' | '"') {
                return first;
            }
            in_word = true;
        }
    }
    if in_word && has_image_extension(body) {
        body.len()
    } else {
        first
    }
}

fn has_image_extension(image: &str) -> bool {
    let bytes = image.as_bytes();
    IMAGE_EXTENSIONS.iter().any(|ext| {
        bytes.len() >= ext.len()
            && bytes[bytes.len() - ext.len()..].eq_ignore_ascii_case(ext.as_bytes())
    })
}

/// Split a key into its canonical short hive name and the rest (starting with `\` or empty).
fn split_hive(key: &str) -> Option<(&'static str, &str)> {
    const ROOTS: &[(&str, &str)] = &[
        (r"\REGISTRY\MACHINE", "HKLM"),
        (r"\REGISTRY\USER", "HKU"),
        ("HKEY_LOCAL_MACHINE", "HKLM"),
        ("HKEY_USERS", "HKU"),
        ("HKEY_CURRENT_USER", "HKCU"),
        ("HKEY_CLASSES_ROOT", "HKCR"),
        ("HKEY_CURRENT_CONFIG", "HKCC"),
        ("HKLM", "HKLM"),
        ("HKU", "HKU"),
        ("HKCU", "HKCU"),
        ("HKCR", "HKCR"),
        ("HKCC", "HKCC"),
    ];
    ROOTS
        .iter()
        .find_map(|(prefix, hive)| strip_component_prefix(key, prefix).map(|rest| (*hive, rest)))
}

/// Upper-case a fixed HKLM hive name and rewrite `SYSTEM\ControlSet00N`.
fn canonical_hklm_tail(rest: &str) -> String {
    let Some(tail) = rest.strip_prefix('\\') else {
        return rest.to_string();
    };
    let (first, after) = match tail.split_once('\\') {
        Some((f, a)) => (f, Some(a)),
        None => (tail, None),
    };
    let Some(hive) = HKLM_HIVES.iter().find(|h| h.eq_ignore_ascii_case(first)) else {
        return rest.to_string();
    };
    let mut out = format!("\\{hive}");
    if let Some(after) = after {
        out.push('\\');
        let (second, remainder) = match after.split_once('\\') {
            Some((s, r)) => (s, Some(r)),
            None => (after, None),
        };
        if *hive == "SYSTEM" && is_numbered_control_set(second) {
            out.push_str("CurrentControlSet");
        } else {
            out.push_str(second);
        }
        if let Some(r) = remainder {
            out.push('\\');
            out.push_str(r);
        }
    }
    out
}

fn is_numbered_control_set(component: &str) -> bool {
    component.len() == "ControlSet001".len()
        && strip_prefix_ci(component, "ControlSet")
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

fn strip_win32_prefixes(path: &str) -> String {
    if let Some(rest) = strip_prefix_ci(path, r"\\?\UNC\") {
        return format!(r"\\{rest}");
    }
    for prefix in [r"\??\", r"\\?\", r"\\.\"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    path.to_string()
}

fn device_to_drive(path: &str) -> String {
    if let Some(rest) = strip_prefix_ci(path, r"\Device\HarddiskVolume") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let after = &rest[digits..];
        if digits > 0 && (after.is_empty() || after.starts_with('\\')) {
            return format!("C:{}", with_sep(after.trim_start_matches('\\')));
        }
    }
    if let Some(rest) = strip_component_prefix(path, r"\SystemRoot") {
        return format!("%WINDIR%{rest}");
    }
    path.to_string()
}

fn canonical_leading_token(path: &str) -> String {
    // `%%SystemRoot%%\x` as stored in some service ImagePaths.
    let single = match path.strip_prefix("%%") {
        Some(inner) => match inner.find("%%") {
            Some(end) => format!("%{}%{}", &inner[..end], &inner[end + 2..]),
            None => path.to_string(),
        },
        None => path.to_string(),
    };
    for (token, canonical) in PATH_TOKENS {
        if let Some(rest) = strip_component_prefix(&single, token) {
            return format!("{canonical}{rest}");
        }
    }
    single
}

/// `"a\b"` → `"\a\b"`, `""` → `""`.
fn with_sep(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("\\{tail}")
    }
}

/// Case-insensitive (ASCII) prefix strip.
fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Prefix strip that only matches whole path components (`C:\Windows` does not match
/// `C:\WindowsApps`).
fn strip_component_prefix<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    strip_prefix_ci(text, prefix).filter(|rest| rest.is_empty() || rest.starts_with('\\'))
}

/// Write every `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` in upper case.
fn upper_case_guids(text: &str) -> String {
    const GUID_LEN: usize = 38;
    if !text.contains('{') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'{'
            && i + GUID_LEN <= bytes.len()
            && is_braced_guid(&bytes[i..i + GUID_LEN])
        {
            out.push_str(&text[copied..i]);
            out.push_str(&text[i..i + GUID_LEN].to_ascii_uppercase());
            i += GUID_LEN;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn is_braced_guid(b: &[u8]) -> bool {
    b.len() == 38
        && b[0] == b'{'
        && b[37] == b'}'
        && b[1..37].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normaliser() -> Normaliser {
        Normaliser::new(Environment {
            sample_dir: Some(r"C:\Users\IEUser\Downloads".into()),
            user_sid: Some("S-1-5-21-1-2-3-1000".into()),
        })
    }

    #[test]
    fn paths() {
        let n = normaliser();
        for (raw, expected) in [
            (
                r"C:\Users\IEUser\AppData\Roaming\NvSmart.exe",
                r"%APPDATA%\NvSmart.exe",
            ),
            (r"C:\Users\IEUser\AppData\Local\Temp\x.tmp", r"%TEMP%\x.tmp"),
            (
                r"C:\Users\buddy\AppData\Local\Microsoft\x",
                r"%LOCALAPPDATA%\Microsoft\x",
            ),
            (r"C:\Users\buddy\BIT3E53.tmp", r"%USERPROFILE%\BIT3E53.tmp"),
            (r"C:\Users\buddy", r"%USERPROFILE%"),
            (
                r"C:\Users\IEUser\Downloads\Flash_update.exe",
                r"%SAMPLEPATH%\Flash_update.exe",
            ),
            (r"c:\windows\system32\cmd.exe", r"%WINDIR%\system32\cmd.exe"),
            (r"C:\WindowsApps\x.exe", r"C:\WindowsApps\x.exe"),
            (r"c:\Users\Public\test.tmp", r"%PUBLIC%\test.tmp"),
            (r"C:\ProgramData\x.dll", r"%ProgramData%\x.dll"),
            (
                r"C:\Program Files (x86)\a\b.exe",
                r"%ProgramFiles(x86)%\a\b.exe",
            ),
            (r"C:\Program Files\a\b.exe", r"%ProgramFiles%\a\b.exe"),
            (r"\??\C:\TOOLS\mimidrv.sys", r"C:\TOOLS\mimidrv.sys"),
            (
                r"\\?\C:\Windows\system32\wbem\WMIADAP.EXE",
                r"%WINDIR%\system32\wbem\WMIADAP.EXE",
            ),
            (
                r"\Device\HarddiskVolume2\Users\x\AppData\Roaming\a.exe",
                r"%APPDATA%\a.exe",
            ),
            (
                r"\SystemRoot\System32\drivers\x.sys",
                r"%WINDIR%\System32\drivers\x.sys",
            ),
            (r"%%SystemRoot%%\PSEXESVC.exe", r"%WINDIR%\PSEXESVC.exe"),
            (r"%systemroot%\x.exe", r"%WINDIR%\x.exe"),
            (r"%appdata%\x.exe", r"%APPDATA%\x.exe"),
            (r"d:\data\x.exe", r"D:\data\x.exe"),
            (
                r"C:\ProgramData\{abcdef01-2345-6789-abcd-ef0123456789}\x",
                r"%ProgramData%\{ABCDEF01-2345-6789-ABCD-EF0123456789}\x",
            ),
            ("/usr/bin/wget", "/usr/bin/wget"),
            ("/tmp/C:/Users/x", "/tmp/C:/Users/x"),
            ("", ""),
            ("C:", "C:"),
        ] {
            assert_eq!(n.path(raw), expected, "{raw}");
        }
    }

    #[test]
    fn sample_dir_given_as_device_path() {
        let n = Normaliser::new(Environment {
            sample_dir: Some(r"\??\C:\Users\buddy\AppData\Local\Temp\".into()),
            user_sid: None,
        });
        assert_eq!(
            n.path(r"C:\Users\buddy\AppData\Local\Temp\bits.bat"),
            r"%SAMPLEPATH%\bits.bat"
        );
        assert_eq!(
            n.path(r"C:\Users\buddy\AppData\Local\Tempest\x"),
            r"%LOCALAPPDATA%\Tempest\x"
        );
    }

    #[test]
    fn registry() {
        let n = normaliser();
        for (raw, expected) in [
            (
                r"HKU\S-1-5-21-1-2-3-1000\Software\Run",
                r"HKCU\Software\Run",
            ),
            (
                r"HKU\S-1-5-21-1-2-3-1000_Classes\CLSID\{0002df01-0000-0000-c000-000000000046}",
                r"HKCU\Software\Classes\CLSID\{0002DF01-0000-0000-C000-000000000046}",
            ),
            (r"HKU\S-1-5-21-1-2-3-10001\x", r"HKU\S-1-5-21-1-2-3-10001\x"),
            (r"HKU\.DEFAULT\Software", r"HKU\.DEFAULT\Software"),
            (r"HKU\S-1-5-18\Software", r"HKU\S-1-5-18\Software"),
            (r"\REGISTRY\MACHINE\SYSTEM\x", r"HKLM\SYSTEM\x"),
            (
                r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\PSEXESVC\ImagePath",
                r"HKLM\SYSTEM\CurrentControlSet\Services\PSEXESVC\ImagePath",
            ),
            (
                r"HKLM\System\CurrentControlSet\services\x\Start",
                r"HKLM\SYSTEM\CurrentControlSet\services\x\Start",
            ),
            (r"hklm\software\Microsoft", r"HKLM\SOFTWARE\Microsoft"),
            (r"HKEY_CURRENT_USER\Software", r"HKCU\Software"),
            (r"HKEY_LOCAL_MACHINE\SOFTWARE\Classes\.txt", r"HKCR\.txt"),
            (r"\REGISTRY\USER\S-1-5-21-1-2-3-1000\x", r"HKCU\x"),
            (r"HKCR\CLSID", r"HKCR\CLSID"),
            (
                r"\REGISTRY\A\{abcdef01-2345-6789-abcd-ef0123456789}\x",
                r"\REGISTRY\A\{ABCDEF01-2345-6789-ABCD-EF0123456789}\x",
            ),
            (r"HKLMX\foo", r"HKLMX\foo"),
            (r"HKLM", r"HKLM"),
            ("", ""),
        ] {
            assert_eq!(n.registry_key(raw), expected, "{raw}");
        }
    }

    #[test]
    fn command_lines_normalise_only_the_image() {
        let n = Normaliser::new(Environment {
            sample_dir: Some(r"C:\Users\buddy\AppData\Local\Temp".into()),
            user_sid: None,
        });
        for (raw, expected) in [
            (
                r#""C:\Users\buddy\AppData\Local\Temp\apc-inject.exe" "#,
                r#""%SAMPLEPATH%\apc-inject.exe" "#,
            ),
            (
                r"C:\WINDOWS\system32\cmd.exe /c echo hai",
                r"%WINDIR%\system32\cmd.exe /c echo hai",
            ),
            // Arguments, doubled spaces and argument paths are what ran: kept as they are.
            (
                r#"C:\WINDOWS\system32\cmd.exe  /K "C:\Users\buddy\AppData\Local\Temp\bits.bat""#,
                r#"%WINDIR%\system32\cmd.exe  /K "C:\Users\buddy\AppData\Local\Temp\bits.bat""#,
            ),
            (
                r"\??\C:\WINDOWS\system32\conhost.exe 0xffffffff -ForceV1",
                r"%WINDIR%\system32\conhost.exe 0xffffffff -ForceV1",
            ),
            (
                r#"  "%windir%\System32\svchost.exe" -k {abcdef01-2345-6789-abcd-ef0123456789}"#,
                r#"  "%WINDIR%\System32\svchost.exe" -k {abcdef01-2345-6789-abcd-ef0123456789}"#,
            ),
            // Unquoted image with spaces: words are added until one ends in an extension.
            (
                r"C:\Program Files\Windows Defender\MpCmdRun.exe -SignatureUpdate",
                r"%ProgramFiles%\Windows Defender\MpCmdRun.exe -SignatureUpdate",
            ),
            (
                r"C:\Program Files (x86)\a b\run.CMD",
                r"%ProgramFiles(x86)%\a b\run.CMD",
            ),
            // A switch ends the search: the first word is the image.
            (
                r"C:\Users\x\AppData\Roaming\tool /a b.exe",
                r"%APPDATA%\tool /a b.exe",
            ),
            // Programs from the search path and unbalanced quotes are left alone.
            (
                r"bitsadmin  /transfer job http://x/ C:\\Users\\buddy\\f.txt",
                r"bitsadmin  /transfer job http://x/ C:\\Users\\buddy\\f.txt",
            ),
            (
                r#""C:\Users\buddy\AppData\Local\Temp\x.exe -a"#,
                r#""C:\Users\buddy\AppData\Local\Temp\x.exe -a"#,
            ),
            ("\"", "\""),
            ("\"\" -a", "\"\" -a"),
            ("", ""),
            ("   ", "   "),
            (
                r"C:\Users\buddy\Desktop\日本語 ファイル.exe /q",
                r"%USERPROFILE%\Desktop\日本語 ファイル.exe /q",
            ),
        ] {
            assert_eq!(n.command_line(raw), expected, "{raw}");
            assert_eq!(n.command_line(expected), expected, "idempotent: {raw}");
        }
    }

    #[test]
    fn hostile_command_lines() {
        let n = normaliser();
        for raw in [
            "\"\"\"\"\"",
            "\"é",
            "é \u{3000}é.exe",
            "C:\\é\u{2003}x.exe\u{2003}",
            "\u{0}\\\u{0} -",
            "\\ \\ \\ \\.exe",
            "é\\",
        ] {
            let once = n.command_line(raw);
            assert_eq!(n.command_line(&once), once, "{raw:?}");
        }
        // Huge lines stay linear: no image search past Windows' longest path.
        let words = format!(r"C:\Users\IEUser\Downloads\a{}", " b".repeat(200_000));
        assert_eq!(
            n.command_line(&words),
            format!(r"%SAMPLEPATH%\a{}", " b".repeat(200_000))
        );
        let far_exe = format!(r"C:\Windows\a{} x.exe", " b".repeat(20_000));
        assert_eq!(
            n.command_line(&far_exe),
            format!(r"%WINDIR%\a{} x.exe", " b".repeat(20_000))
        );
        let quoted = format!("\"{}", "\\".repeat(100_000));
        assert_eq!(n.command_line(&quoted), quoted);
    }

    #[test]
    fn raw_forms_keep_distinct_spellings_up_to_the_cap() {
        let mut forms = BTreeMap::new();
        record_raw_form(&mut forms, r"%APPDATA%\x", r"%APPDATA%\x");
        assert!(forms.is_empty());
        record_raw_form(&mut forms, r"%APPDATA%\x", r"C:\Users\a\AppData\Roaming\x");
        record_raw_form(&mut forms, r"%APPDATA%\x", r"C:\Users\a\AppData\Roaming\x");
        assert_eq!(forms[r"%APPDATA%\x"], [r"C:\Users\a\AppData\Roaming\x"]);
        for i in 0..MAX_RAW_FORMS * 2 {
            record_raw_form(&mut forms, "n", &format!("raw{i}"));
        }
        assert_eq!(forms["n"].len(), MAX_RAW_FORMS);
        assert_eq!(forms["n"][0], "raw0");
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let n = normaliser();
        for raw in [
            "\u{0}\u{1}{é",
            "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
            "%%",
            "%%abc",
            r"\Device\HarddiskVolume",
            "HKU\\",
            "é\\é",
        ] {
            let _ = n.path(raw);
            let _ = n.registry_key(raw);
        }
        let long = "A\\".repeat(20_000);
        assert_eq!(n.path(&long), long.trim());
    }
}
