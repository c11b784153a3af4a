//! API keys: who may read and who may also ingest.
//!
//! Keys come from `--api-key` (full access) and from a keys file, one key per line with an
//! optional role: `<key> read` or `<key> ingest` (the default). Blank lines and lines starting
//! with `#` are ignored. Keys are compared in constant time so response timing does not reveal
//! how much of a guessed key was right.

use std::path::Path;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Every `GET`.
    Read,
    /// Every `GET` and `POST /sandscope/ingest`.
    Ingest,
}

/// The accepted keys.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    keys: Vec<(Vec<u8>, Role)>,
}

/// A keys file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: String,
        line: usize,
        message: String,
    },
}

/// Keys shorter than this are refused: a key is the only thing guarding the API.
pub const MIN_KEY_LEN: usize = 8;

impl ApiKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one key; refuses keys that are too short or contain whitespace or controls (they
    /// could never be sent in a header unchanged).
    pub fn add(&mut self, key: &str, role: Role) -> Result<(), String> {
        if key.len() < MIN_KEY_LEN {
            return Err(format!(
                "API key too short (at least {MIN_KEY_LEN} characters)"
            ));
        }
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("API key contains whitespace or control characters".to_string());
        }
        self.keys.push((key.as_bytes().to_vec(), role));
        Ok(())
    }

    /// Parse a keys file's text (see the module documentation).
    pub fn parse_keys_file(&mut self, text: &str, path_for_errors: &str) -> Result<(), KeysError> {
        for (index, raw_line) in text.lines().enumerate() {
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let key = words.next().unwrap_or_default();
            let role = match words.next() {
                None | Some("ingest") => Role::Ingest,
                Some("read") => Role::Read,
                Some(other) => {
                    return Err(KeysError::Syntax {
                        path: path_for_errors.to_string(),
                        line: index + 1,
                        message: format!("unknown role {other:?} (expected read or ingest)"),
                    });
                }
            };
            if words.next().is_some() {
                return Err(KeysError::Syntax {
                    path: path_for_errors.to_string(),
                    line: index + 1,
                    message: "expected `<key> [read|ingest]`".to_string(),
                });
            }
            self.add(key, role).map_err(|message| KeysError::Syntax {
                path: path_for_errors.to_string(),
                line: index + 1,
                message,
            })?;
        }
        Ok(())
    }

    /// Read a keys file from disk.
    pub fn load_keys_file(&mut self, path: &Path) -> Result<(), KeysError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeysError::Io {
            path: display.clone(),
            source,
        })?;
        self.parse_keys_file(&text, &display)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The role of a presented key, `None` when it matches no key. Every stored key is
    /// compared in full whatever the outcome, so timing depends only on lengths.
    pub fn role_of(&self, presented: &[u8]) -> Option<Role> {
        let mut best: Option<Role> = None;
        for (key, role) in &self.keys {
            if constant_time_eq(key, presented) {
                best = best.max(Some(*role));
            }
        }
        best
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_file_roles_and_errors() {
        let mut keys = ApiKeys::new();
        keys.parse_keys_file(
            "# analysts\nreader-key-123 read\n\ningest-key-456\nboth-roles-789 ingest\n",
            "keys",
        )
        .unwrap();
        assert_eq!(keys.role_of(b"reader-key-123"), Some(Role::Read));
        assert_eq!(keys.role_of(b"ingest-key-456"), Some(Role::Ingest));
        assert_eq!(keys.role_of(b"both-roles-789"), Some(Role::Ingest));
        assert_eq!(keys.role_of(b"reader-key-12"), None);
        assert_eq!(keys.role_of(b""), None);

        let err = ApiKeys::new()
            .parse_keys_file("good-key-0001\nshort\n", "keys")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "keys:2: API key too short (at least 8 characters)"
        );
        let err = ApiKeys::new()
            .parse_keys_file("good-key-0001 admin\n", "k")
            .unwrap_err();
        assert!(err.to_string().contains("unknown role \"admin\""), "{err}");
    }
}
