use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `EventData` of one event: Sysmon field names to string values, in document order.
///
/// A vector, not a map: events have about twenty fields, a linear scan beats hashing at that
/// size, and document order is kept for output. Duplicate names are kept as they came (the first
/// one wins on lookup).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(Box<str>, Box<str>)>);

impl Fields {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Append a field. Names are canonicalised (see [`canonical_field_name`]) so that every
    /// input format gives the same names.
    pub fn push(&mut self, name: &str, value: impl Into<Box<str>>) {
        self.0
            .push((canonical_field_name(name).into(), value.into()));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| &**k == name).map(|(_, v)| &**v)
    }

    /// Replace the value of `name`, or append it.
    pub fn set(&mut self, name: &str, value: impl Into<Box<str>>) {
        let name = canonical_field_name(name);
        match self.0.iter_mut().find(|(k, _)| &**k == name) {
            Some((_, v)) => *v = value.into(),
            None => self.0.push((name.into(), value.into())),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(&**k, &**v)?;
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
                    fields.push(&k, v);
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}
