use serde::{Deserialize, Serialize};

/// The `Hashes` (or event 15's `Hash`) field parsed: `SHA1=…,MD5=…,SHA256=…,IMPHASH=…`.
///
/// Values are lower-cased. An all-zero IMPHASH means "not a PE" and is dropped, as is any
/// algorithm the Sysmon config did not record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hashes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imphash: Option<String>,
}

impl Hashes {
    pub fn parse(text: &str) -> Self {
        let mut hashes = Hashes::default();
        // Some configs write one bare hash (event 15 with a single algorithm); infer by length.
        for part in text.split([',', ';']) {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), v.trim()),
                None => ("", part.trim()),
            };
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let value = value.to_ascii_lowercase();
            let slot = match (name.to_ascii_uppercase().as_str(), value.len()) {
                ("MD5", _) | ("", 32) => &mut hashes.md5,
                ("SHA1", _) | ("", 40) => &mut hashes.sha1,
                ("SHA256", _) | ("", 64) => &mut hashes.sha256,
                ("IMPHASH", _) => {
                    if value.bytes().all(|b| b == b'0') {
                        continue;
                    }
                    &mut hashes.imphash
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        hashes
    }

    pub fn is_empty(&self) -> bool {
        self.md5.is_none() && self.sha1.is_none() && self.sha256.is_none() && self.imphash.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysmon_hashes() {
        let h = Hashes::parse(
            "SHA1=AB,MD5=0123456789ABCDEF0123456789ABCDEF,SHA256=00FF,IMPHASH=00000000000000000000000000000000",
        );
        assert_eq!(h.md5.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(h.sha1.as_deref(), Some("ab"));
        assert_eq!(h.sha256.as_deref(), Some("00ff"));
        assert_eq!(h.imphash, None);
        assert!(Hashes::parse("-").is_empty());
        assert!(Hashes::parse("").is_empty());
        assert!(Hashes::parse("MD5=zz").is_empty());
    }
}
