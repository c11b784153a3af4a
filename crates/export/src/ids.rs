//! Deterministic identifiers: STIX's UUIDv5 ids for observables (RFC 8785 canonical JSON of
//! the id-contributing properties in STIX's namespace, as the `stix2` Python library computes
//! them) and name-derived UUIDs for everything else.

use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// STIX 2.1's namespace for deterministic observable ids (spec §2.9).
pub const STIX_SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00abedb4_aa42_466c_9c01_fed23315a9b7);

/// Sandscope's own namespace for the UUIDv5s of MISP events, objects and attributes.
const SANDSCOPE_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f2c3e_9b57_4d0e_8f3c_53616e647363);

/// A UUIDv5 of `name` in Sandscope's namespace.
pub fn name_v5(name: &str) -> Uuid {
    Uuid::new_v5(&SANDSCOPE_NAMESPACE, name.as_bytes())
}

/// A UUID of version 4 whose bits come from the SHA-256 of `name` instead of a random source.
/// STIX wants version 4 for SDOs, SROs, bundles and processes (the validator's `--strict`
/// checks the version); deriving the bits from the data keeps the export byte-identical.
pub fn name_v4(name: &str) -> Uuid {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The id of a STIX cyber observable: `<type>--<UUIDv5 of the canonical JSON of its
/// id-contributing properties>`. `contributing` holds exactly those properties (for `file`,
/// `hashes` with the one hash STIX chooses).
pub fn sco_id(kind: &str, contributing: &Value) -> String {
    let canonical = canonical_json(contributing);
    format!(
        "{kind}--{}",
        Uuid::new_v5(&STIX_SCO_NAMESPACE, canonical.as_bytes())
    )
}

/// RFC 8785 (JCS) canonical JSON: no whitespace, object members sorted by the UTF-16 code
/// units of their names, strings escaped as ECMAScript's `JSON.stringify` does (which is also
/// what `serde_json` writes). Numbers are written by `serde_json`: exact for the integers our
/// exports hold (ports); JCS's float spelling is not needed.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(member, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Ids computed by the `stix2` Python library (3.0) for the same objects; the interop tests
    // compare every exported id with it as well.
    #[test]
    fn stix_library_ids() {
        assert_eq!(
            sco_id("email-addr", &json!({"value": "john@example.com"})),
            "email-addr--7165e2a9-671f-585d-b1e1-ca59c671d934"
        );
        assert_eq!(
            sco_id("ipv4-addr", &json!({"value": "198.51.100.3"})),
            "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4"
        );
        assert_eq!(
            sco_id("mutex", &json!({"name": "__CLEANSWEEP__"})),
            "mutex--f93fe911-e545-5239-b9b0-597840d0c871"
        );
        let sha = "a".repeat(64);
        assert_eq!(
            sco_id(
                "file",
                &json!({"hashes": {"SHA-256": sha}, "name": "a\u{1}.exe"})
            ),
            "file--e9f098fb-e6a4-54b5-92c4-f7f25d06a9c7"
        );
    }

    #[test]
    fn canonical_form_sorts_and_escapes() {
        let value = json!({"b": [1, {"z": "\u{1}\n", "a": "é"}], "a": "x"});
        assert_eq!(
            canonical_json(&value),
            "{\"a\":\"x\",\"b\":[1,{\"a\":\"é\",\"z\":\"\\u0001\\n\"}]}"
        );
    }

    #[test]
    fn v4_shaped_ids_are_version_4_and_stable() {
        let a = name_v4("bundle:x");
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a, name_v4("bundle:x"));
        assert_ne!(a, name_v4("bundle:y"));
    }
}
