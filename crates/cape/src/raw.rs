//! The parts of a CAPE / Cuckoo 2.x report this crate reads, as serde types.
//!
//! Only what the conversion uses is kept: API-call traces are filtered while they stream past
//! (a full `report.json` holds millions of calls) and the embedded `sysmon` array is only
//! counted, so memory follows the size of the behaviour summary, not of the file.
//!
//! Both products' spellings are accepted through aliases (`process_id`/`pid`,
//! `parent_id`/`ppid`, `module_path`/`process_path`, `name`/`process_name`); fields the two
//! disagree on in type (`guest_paths` string or list, `hosts` objects or strings, signature
//! `ttp` list or object, timestamps string or epoch) have small tolerant types below. Anything
//! else of the wrong type is an error naming its JSON path.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// `null` reads as the type's default: CAPE writes `null` for empty sections (`"curtain": null`).
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawReport {
    #[serde(deserialize_with = "nullable")]
    pub info: RawInfo,
    #[serde(deserialize_with = "nullable")]
    pub target: RawTarget,
    #[serde(deserialize_with = "nullable")]
    pub behavior: RawBehavior,
    #[serde(deserialize_with = "nullable")]
    pub network: RawNetwork,
    #[serde(deserialize_with = "nullable")]
    pub signatures: Vec<RawSignature>,
    #[serde(deserialize_with = "nullable")]
    pub ttps: Vec<RawTtpEntry>,
    #[serde(deserialize_with = "nullable")]
    pub dropped: Vec<RawDropped>,
    pub sysmon: SysmonCount,
}

/// The few keys [`crate::inspect`] needs, so probing a file keeps nothing else.
#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawProbe {
    #[serde(deserialize_with = "nullable")]
    pub info: RawInfo,
    #[serde(deserialize_with = "nullable")]
    pub target: RawTarget,
    pub sysmon: SysmonCount,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawInfo {
    pub version: Option<String>,
    pub started: Option<Timestamp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawTarget {
    pub category: Option<String>,
    pub file: Option<RawFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawFile {
    pub name: Option<String>,
    pub sha256: Option<String>,
    pub guest_paths: GuestPaths,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawBehavior {
    #[serde(deserialize_with = "nullable")]
    pub processes: Vec<RawProcess>,
    #[serde(deserialize_with = "nullable")]
    pub processtree: Vec<RawTreeNode>,
    /// Flat lists keyed by kind; kept as JSON because CAPE and Cuckoo use different keys and
    /// Cuckoo's `file_copied`/`file_moved` hold pairs.
    #[serde(deserialize_with = "nullable")]
    pub summary: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawProcess {
    #[serde(alias = "pid")]
    pub process_id: Option<Id>,
    pub process_name: Option<String>,
    #[serde(alias = "ppid")]
    pub parent_id: Option<Id>,
    #[serde(alias = "process_path")]
    pub module_path: Option<String>,
    /// Cuckoo 2.x only; CAPE keeps it in `environ.CommandLine`.
    pub command_line: Option<String>,
    pub first_seen: Option<Timestamp>,
    #[serde(deserialize_with = "nullable")]
    pub environ: RawEnviron,
    pub calls: InterestingCalls,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawEnviron {
    #[serde(rename = "CommandLine")]
    pub command_line: Option<String>,
    #[serde(rename = "TempPath")]
    pub temp_path: Option<String>,
    #[serde(rename = "UserName")]
    pub user_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawTreeNode {
    pub pid: Option<Id>,
    #[serde(alias = "ppid")]
    pub parent_id: Option<Id>,
    #[serde(alias = "process_name")]
    pub name: Option<String>,
    pub module_path: Option<String>,
    pub command_line: Option<String>,
    pub first_seen: Option<Timestamp>,
    #[serde(deserialize_with = "nullable")]
    pub environ: RawEnviron,
    #[serde(deserialize_with = "nullable")]
    pub children: Vec<RawTreeNode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawNetwork {
    #[serde(deserialize_with = "nullable")]
    pub hosts: Vec<RawHost>,
    #[serde(deserialize_with = "nullable")]
    pub dns: Vec<RawDns>,
    #[serde(deserialize_with = "nullable")]
    pub tcp: Vec<RawFlow>,
    #[serde(deserialize_with = "nullable")]
    pub udp: Vec<RawFlow>,
    #[serde(deserialize_with = "nullable")]
    pub http: Vec<RawHttp>,
}

/// CAPE: `{"ip": …, "country_name": …}`; Cuckoo 2.x: a bare IP string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawHost {
    Ip(String),
    Object { ip: String },
}

impl RawHost {
    pub fn ip(&self) -> &str {
        match self {
            RawHost::Ip(ip) | RawHost::Object { ip } => ip,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawDns {
    pub request: String,
    #[serde(deserialize_with = "nullable")]
    pub answers: Vec<RawAnswer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawAnswer {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub data: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawFlow {
    pub dst: String,
    pub dport: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawHttp {
    pub uri: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub method: Option<String>,
    /// The raw request (request line and headers).
    pub data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawSignature {
    pub name: Option<String>,
    pub description: String,
    pub severity: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub categories: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub families: Vec<String>,
    pub ttp: TtpIds,
    pub ttps: TtpIds,
    /// CAPE's evidence (`{"regkey": …}`, `{"command": …}`, `{"type": "call", …}`).
    #[serde(deserialize_with = "nullable")]
    pub data: Vec<serde_json::Value>,
}

/// One item of CAPE's top-level `ttps` section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawTtpEntry {
    pub signature: String,
    pub ttps: TtpIds,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawDropped {
    pub name: Option<String>,
    pub guest_paths: GuestPaths,
    /// Cuckoo 2.x keeps the guest path here.
    pub filepath: Option<String>,
    pub sha256: Option<String>,
    #[serde(rename = "type")]
    pub file_type: Option<String>,
}

/// One line of a CAPE analysis folder's `files.json` (the files the analyser uploaded).
#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawUploadedFile {
    /// `files/<sha256>` for dropped files.
    pub path: String,
    /// The guest path.
    pub filepath: String,
    pub category: String,
}

/// A pid: an integer in CAPE and Cuckoo, a string in some exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Id(pub String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a process id (integer or string)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// CAPE: `"2025-11-18 21:11:22,948"`; Cuckoo 2.x: epoch seconds as a float.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Timestamp {
    Text(String),
    Epoch(f64),
}

impl Timestamp {
    /// Unix seconds (UTC; CAPE writes the host's clock, which sandbox hosts keep in UTC).
    pub fn unix_seconds(&self) -> Option<f64> {
        match self {
            Timestamp::Epoch(v) => v.is_finite().then_some(*v),
            Timestamp::Text(text) => parse_cape_time(text),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeVisitor;
        impl Visitor<'_> for TimeVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp (\"YYYY-MM-DD HH:MM:SS\" or epoch seconds)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp::Epoch(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp::Epoch(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Ok(Timestamp::Epoch(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Ok(Timestamp::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(TimeVisitor)
    }
}

/// `YYYY-MM-DD HH:MM:SS[,mmm]` → Unix seconds.
fn parse_cape_time(text: &str) -> Option<f64> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut date_parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let (clock, fraction) = match time.split_once([',', '.']) {
        Some((clock, fraction)) => (clock, fraction),
        None => (time, ""),
    };
    let mut clock_parts = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (
        clock_parts.next()??,
        clock_parts.next()??,
        clock_parts.next()??,
    );
    // Bounded so the narrowing casts below are exact and the arithmetic cannot overflow.
    if !(1..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..=23).contains(&hour)
        || !(0..=59).contains(&minute)
        || !(0..=60).contains(&second)
    {
        return None;
    }
    let fraction = if fraction.is_empty() {
        0.0
    } else {
        format!("0.{fraction}").parse::<f64>().ok()?
    };
    let date = jiff::civil::Date::new(year as i16, month as i8, day as i8).ok()?;
    let day_start = date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp()
        .as_second();
    Some((day_start + hour * 3_600 + minute * 60 + second) as f64 + fraction)
}

/// `guest_paths`: a string in CAPE's `target.file` (often `""`), a list in `dropped`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct GuestPaths(pub Vec<String>);

impl<'de> Deserialize<'de> for GuestPaths {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PathsVisitor;
        impl<'de> Visitor<'de> for PathsVisitor {
            type Value = GuestPaths;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a guest path or a list of guest paths")
            }
            fn visit_unit<E: de::Error>(self) -> Result<GuestPaths, E> {
                Ok(GuestPaths::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<GuestPaths, E> {
                Ok(GuestPaths::default())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GuestPaths, E> {
                Ok(GuestPaths(
                    (!v.trim().is_empty())
                        .then(|| v.to_string())
                        .into_iter()
                        .collect(),
                ))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GuestPaths, A::Error> {
                let mut paths = Vec::new();
                while let Some(path) = seq.next_element::<String>()? {
                    paths.push(path);
                }
                Ok(GuestPaths(paths))
            }
        }
        deserializer.deserialize_any(PathsVisitor)
    }
}

/// ATT&CK technique ids of a signature: CAPE writes a list (`["T1547.001"]`), Cuckoo 2.x an
/// object keyed by id (`{"T1055": {"short": …, "long": …}}`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TtpIds(pub Vec<String>);

impl<'de> Deserialize<'de> for TtpIds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TtpVisitor;
        impl<'de> Visitor<'de> for TtpVisitor {
            type Value = TtpIds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of ATT&CK ids or an object keyed by ATT&CK id")
            }
            fn visit_unit<E: de::Error>(self) -> Result<TtpIds, E> {
                Ok(TtpIds::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<TtpIds, E> {
                Ok(TtpIds::default())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TtpIds, E> {
                Ok(TtpIds(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TtpIds, A::Error> {
                let mut ids = Vec::new();
                while let Some(id) = seq.next_element::<String>()? {
                    ids.push(id);
                }
                Ok(TtpIds(ids))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TtpIds, A::Error> {
                let mut ids = Vec::new();
                while let Some((id, _)) = map.next_entry::<String, IgnoredAny>()? {
                    ids.push(id);
                }
                Ok(TtpIds(ids))
            }
        }
        deserializer.deserialize_any(TtpVisitor)
    }
}

/// The embedded Sysmon array, counted and dropped: its events are read by `sandscope-read`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SysmonCount(pub Option<usize>);

impl<'de> Deserialize<'de> for SysmonCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = SysmonCount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of Sysmon events")
            }
            fn visit_unit<E: de::Error>(self) -> Result<SysmonCount, E> {
                Ok(SysmonCount(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<SysmonCount, E> {
                Ok(SysmonCount(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SysmonCount, A::Error> {
                let mut count = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(SysmonCount(Some(count)))
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

/// The API names whose calls carry what the summary lacks: mutex create-vs-open and the data
/// written to registry values.
const KEPT_APIS: &[&str] = &[
    "NtCreateMutant",
    "CreateMutexA",
    "CreateMutexW",
    "CreateMutexExA",
    "CreateMutexExW",
    "NtOpenMutant",
    "OpenMutexA",
    "OpenMutexW",
    "RegSetValueExA",
    "RegSetValueExW",
    "RegSetValueA",
    "RegSetValueW",
    "NtSetValueKey",
];

/// A process's `calls`, keeping only [`KEPT_APIS`] while the rest streams past.
#[derive(Debug, Default)]
pub(crate) struct InterestingCalls(pub Vec<RawCall>);

#[derive(Debug, Default, Deserialize)]
#[serde(default, expecting = "an object")]
pub(crate) struct RawCall {
    pub api: String,
    pub arguments: CallArguments,
}

/// CAPE: `[{"name", "value"}]`; Cuckoo 2.x: `{"name": value}`. Values are any JSON.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub(crate) struct CallArguments(pub Vec<(String, serde_json::Value)>);

impl CallArguments {
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn text(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for CallArguments {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(expecting = "an argument object {name, value}")]
        struct NamedArgument {
            name: String,
            #[serde(default)]
            value: serde_json::Value,
        }
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = CallArguments;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("call arguments (a list of {name, value} or an object)")
            }
            fn visit_unit<E: de::Error>(self) -> Result<CallArguments, E> {
                Ok(CallArguments::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CallArguments, A::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<NamedArgument>()? {
                    args.push((arg.name, arg.value));
                }
                Ok(CallArguments(args))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CallArguments, A::Error> {
                let mut args = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    args.push(entry);
                }
                Ok(CallArguments(args))
            }
        }
        deserializer.deserialize_any(ArgsVisitor)
    }
}

impl<'de> Deserialize<'de> for InterestingCalls {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CallsVisitor;
        impl<'de> Visitor<'de> for CallsVisitor {
            type Value = InterestingCalls;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of API calls")
            }
            fn visit_unit<E: de::Error>(self) -> Result<InterestingCalls, E> {
                Ok(InterestingCalls::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<InterestingCalls, A::Error> {
                let mut kept = Vec::new();
                while let Some(call) = seq.next_element::<RawCall>()? {
                    if KEPT_APIS.contains(&call.api.as_str()) {
                        kept.push(call);
                    }
                }
                Ok(InterestingCalls(kept))
            }
        }
        deserializer.deserialize_any(CallsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cape_times_parse_to_unix_seconds() {
        // 2025-11-18 21:10:56 UTC = 1763500256 (date -u -d '2025-11-18 21:10:56' +%s).
        assert_eq!(
            parse_cape_time("2025-11-18 21:10:56"),
            Some(1_763_500_256.0)
        );
        assert_eq!(
            parse_cape_time("2025-11-18 21:11:22,948"),
            Some(1_763_500_282.948)
        );
        assert_eq!(parse_cape_time("1970-01-01 00:00:00"), Some(0.0));
        assert_eq!(parse_cape_time("2025-13-01 00:00:00"), None);
        assert_eq!(parse_cape_time("yesterday"), None);
        assert_eq!(parse_cape_time("9223372036854775807-01-01 00:00:00"), None);
    }
}
