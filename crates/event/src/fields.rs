use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `EventData` of one event: Sysmon field names to string values, in document order.
///
/// A list, not a map: events have about twenty fields, a linear scan beats hashing at that size,
/// and document order is kept for output. Duplicate names are kept as they came (the first one
/// wins on lookup). All names and values live in one string buffer, so an event's fields cost
/// two allocations however many there are (readers build millions of these).
#[derive(Clone, Default)]
pub struct Fields {
    text: String,
    entries: Vec<Entry>,
}

/// Byte ranges of one field's name and value in `Fields::text`.
#[derive(Clone, Copy)]
struct Entry {
    name: (u32, u32),
    value: (u32, u32),
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Fields {
            text: String::with_capacity(n * 48),
            entries: Vec::with_capacity(n),
        }
    }

    fn append(&mut self, s: &str) -> (u32, u32) {
        let start = self.text.len();
        self.text.push_str(s);
        (start as u32, self.text.len() as u32)
    }

    fn slice(&self, (start, end): (u32, u32)) -> &str {
        &self.text[start as usize..end as usize]
    }

    /// Append a field. Names are canonicalised (see [`canonical_field_name`]) so that every
    /// input format gives the same names.
    pub fn push(&mut self, name: &str, value: impl Into<Box<str>>) {
        let value: Box<str> = value.into();
        self.push_str(name, &value);
    }

    /// Append a field, copying `name` and `value` (no allocation once the buffer has grown).
    pub fn push_str(&mut self, name: &str, value: &str) {
        let name = self.append(canonical_field_name(name));
        let value = self.append(value);
        self.entries.push(Entry { name, value });
    }

    /// Append a field whose value `write` renders straight into the buffer.
    pub fn push_with(&mut self, name: &str, write: impl FnOnce(&mut String)) {
        let name = self.append(canonical_field_name(name));
        let start = self.text.len();
        write(&mut self.text);
        let value = (start as u32, self.text.len() as u32);
        self.entries.push(Entry { name, value });
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| self.slice(e.name) == name)
            .map(|e| self.slice(e.value))
    }

    /// Replace the value of `name`, or append it.
    pub fn set(&mut self, name: &str, value: impl Into<Box<str>>) {
        let name = canonical_field_name(name);
        let value: Box<str> = value.into();
        match self.entries.iter().position(|e| self.slice(e.name) == name) {
            Some(i) => {
                let range = self.append(&value);
                self.entries[i].value = range;
            }
            None => self.push_str(name, &value),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (self.slice(e.name), self.slice(e.value)))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Sysmon spells some names differently between events (event 10 writes `SourceProcessGUID`,
/// event 8 `SourceProcessGuid`). Sigma rules use the names Sysmon writes, so names are kept as
/// written; this only trims whitespace that some exports leave around them.
pub fn canonical_field_name(name: &str) -> &str {
    name.trim()
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of field names to string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut fields = Fields::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    fields.push_str(&k, &v);
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_get_set_iter() {
        let mut f = Fields::new();
        f.push("Image", String::from("a.exe"));
        f.push_str(" ProcessId ", "4");
        f.push_with("CommandLine", |s| s.push_str("a.exe -x"));
        f.push("Image", "second");
        assert_eq!(f.get("Image"), Some("a.exe"));
        assert_eq!(f.get("ProcessId"), Some("4"));
        f.set("ProcessId", "5");
        f.set("User", "SYSTEM");
        let all: Vec<_> = f.iter().collect();
        assert_eq!(
            all,
            [
                ("Image", "a.exe"),
                ("ProcessId", "5"),
                ("CommandLine", "a.exe -x"),
                ("Image", "second"),
                ("User", "SYSTEM")
            ]
        );
        let json = serde_json::to_string(&f).unwrap();
        let back: Fields = serde_json::from_str(&json).unwrap();
        assert_eq!(back.get("User"), Some("SYSTEM"));
    }
}
