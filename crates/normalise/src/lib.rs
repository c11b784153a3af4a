//! Normalisation of file paths and registry keys to the forms sandbox reports use
//! (`%APPDATA%\…`, `%SAMPLEPATH%\…`, `HKCU\…`), so that the same behaviour seen by different
//! sandboxes, users and machines compares equal. The raw value is always kept by callers; this
//! crate only computes the normalised form.
//!
//! One normaliser serves every producer (Sysmon reports, CAPE/Cuckoo imports) and Sysmon for
//! Linux paths. It depends on nothing.

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

impl Normaliser {
    pub fn new(env: Environment) -> Self {
        Self { env }
    }

    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// `C:\Users\bob\AppData\Roaming\x.exe` → `%APPDATA%\x.exe`.
    pub fn path(&self, raw: &str) -> String {
        let path = raw.trim();
        let path = path
            .strip_prefix(r"\??\")
            .or_else(|| path.strip_prefix(r"\\?\"))
            .unwrap_or(path);
        if let Some(dir) = self.env.sample_dir.as_deref()
            && let Some(rest) = strip_prefix_ci(path, dir.trim_end_matches('\\'))
            && (rest.is_empty() || rest.starts_with('\\'))
        {
            return format!("%SAMPLEPATH%{rest}");
        }
        if let Some(rest) = strip_prefix_ci(path, r"C:\Users\") {
            let (user, tail) = rest.split_once('\\').unwrap_or((rest, ""));
            if !user.eq_ignore_ascii_case("Public") {
                let tail_with_sep = format!("\\{tail}");
                for (prefix, token) in [
                    (r"\AppData\Local\Temp", "%TEMP%"),
                    (r"\AppData\Roaming", "%APPDATA%"),
                    (r"\AppData\Local", "%LOCALAPPDATA%"),
                ] {
                    if let Some(after) = strip_prefix_ci(&tail_with_sep, prefix)
                        && (after.is_empty() || after.starts_with('\\'))
                    {
                        return format!("{token}{after}");
                    }
                }
                return if tail.is_empty() {
                    "%USERPROFILE%".to_string()
                } else {
                    format!("%USERPROFILE%\\{tail}")
                };
            }
        }
        for (prefix, token) in [
            (r"C:\Users\Public", "%PUBLIC%"),
            (r"C:\ProgramData", "%ProgramData%"),
            (r"C:\Program Files (x86)", "%ProgramFiles(x86)%"),
            (r"C:\Program Files", "%ProgramFiles%"),
            (r"C:\Windows", "%WINDIR%"),
        ] {
            if let Some(after) = strip_prefix_ci(path, prefix)
                && (after.is_empty() || after.starts_with('\\'))
            {
                return format!("{token}{after}");
            }
        }
        path.to_string()
    }

    /// `\REGISTRY\MACHINE\…` → `HKLM\…`, `HKU\<user sid>\…` → `HKCU\…`.
    pub fn registry_key(&self, raw: &str) -> String {
        let key = raw.trim();
        for (prefix, hive) in [
            (r"\REGISTRY\MACHINE", "HKLM"),
            ("HKEY_LOCAL_MACHINE", "HKLM"),
            (r"\REGISTRY\USER", "HKU"),
            ("HKEY_USERS", "HKU"),
            ("HKEY_CURRENT_USER", "HKCU"),
            ("HKEY_CLASSES_ROOT", "HKCR"),
            ("HKLM", "HKLM"),
            ("HKU", "HKU"),
            ("HKCU", "HKCU"),
            ("HKCR", "HKCR"),
        ] {
            if let Some(rest) = strip_prefix_ci(key, prefix)
                && (rest.is_empty() || rest.starts_with('\\'))
            {
                if hive == "HKU"
                    && let Some(sid) = self.env.user_sid.as_deref()
                    && let Some(after) = strip_prefix_ci(rest, &format!("\\{sid}"))
                    && (after.is_empty() || after.starts_with('\\'))
                {
                    return format!("HKCU{after}");
                }
                return format!("{hive}{rest}");
            }
        }
        key.to_string()
    }
}

/// Case-insensitive (ASCII) prefix strip.
fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let n = Normaliser::new(Environment {
            sample_dir: Some(r"C:\Users\IEUser\Downloads".into()),
            user_sid: None,
        });
        assert_eq!(
            n.path(r"C:\Users\IEUser\AppData\Roaming\NvSmart.exe"),
            r"%APPDATA%\NvSmart.exe"
        );
        assert_eq!(
            n.path(r"C:\Users\IEUser\AppData\Local\Temp\x.tmp"),
            r"%TEMP%\x.tmp"
        );
        assert_eq!(
            n.path(r"C:\Users\IEUser\Downloads\Flash_update.exe"),
            r"%SAMPLEPATH%\Flash_update.exe"
        );
        assert_eq!(
            n.path(r"c:\windows\system32\cmd.exe"),
            r"%WINDIR%\system32\cmd.exe"
        );
        assert_eq!(n.path(r"C:\Users\Public\test.tmp"), r"%PUBLIC%\test.tmp");
        assert_eq!(n.path("/usr/bin/wget"), "/usr/bin/wget");
    }

    #[test]
    fn registry() {
        let n = Normaliser::new(Environment {
            sample_dir: None,
            user_sid: Some("S-1-5-21-1-2-3-1000".into()),
        });
        assert_eq!(
            n.registry_key(r"HKU\S-1-5-21-1-2-3-1000\Software\Run"),
            r"HKCU\Software\Run"
        );
        assert_eq!(
            n.registry_key(r"\REGISTRY\MACHINE\SYSTEM\x"),
            r"HKLM\SYSTEM\x"
        );
        assert_eq!(
            n.registry_key(r"HKEY_CURRENT_USER\Software"),
            r"HKCU\Software"
        );
    }
}
