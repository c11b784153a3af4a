//! Typed views of the fields later stages need. Each accessor knows the Sysmon trap for its
//! field (both GUID spellings in events 8 and 10, `Hash` in event 15, `-` for "none").

use crate::{Hashes, ProcessGuid, SysmonEvent, event_id};
use serde::{Deserialize, Serialize};

impl SysmonEvent {
    /// The acting process: `ProcessGuid`, or `SourceProcessGuid`/`SourceProcessGUID` in 8 and 10.
    pub fn process_guid(&self) -> Option<ProcessGuid> {
        self.value("ProcessGuid")
            .or_else(|| self.value("SourceProcessGuid"))
            .or_else(|| self.value("SourceProcessGUID"))
            .and_then(ProcessGuid::parse)
    }

    pub fn process_id(&self) -> Option<u32> {
        self.value("ProcessId")
            .or_else(|| self.value("SourceProcessId"))
            .and_then(parse_u32)
    }

    /// The acting process's image (`Image`, or `SourceImage` in 8 and 10).
    pub fn image(&self) -> Option<&str> {
        self.value("Image").or_else(|| self.value("SourceImage"))
    }

    pub fn command_line(&self) -> Option<&str> {
        self.value("CommandLine")
    }

    pub fn parent_process_guid(&self) -> Option<ProcessGuid> {
        self.value("ParentProcessGuid").and_then(ProcessGuid::parse)
    }

    pub fn parent_process_id(&self) -> Option<u32> {
        self.value("ParentProcessId").and_then(parse_u32)
    }

    pub fn parent_image(&self) -> Option<&str> {
        self.value("ParentImage")
    }

    pub fn parent_command_line(&self) -> Option<&str> {
        self.value("ParentCommandLine")
    }

    /// The process acted on in events 8 and 10 (`TargetProcessGuid` / `TargetProcessGUID`).
    pub fn target_process_guid(&self) -> Option<ProcessGuid> {
        self.value("TargetProcessGuid")
            .or_else(|| self.value("TargetProcessGUID"))
            .and_then(ProcessGuid::parse)
    }

    pub fn target_process_id(&self) -> Option<u32> {
        self.value("TargetProcessId").and_then(parse_u32)
    }

    pub fn target_image(&self) -> Option<&str> {
        self.value("TargetImage")
    }

    pub fn target_filename(&self) -> Option<&str> {
        self.value("TargetFilename")
    }

    /// Registry events: the key (with the value name appended for 13).
    pub fn target_object(&self) -> Option<&str> {
        self.value("TargetObject")
    }

    /// Registry value data (`Details`, event 13).
    pub fn details(&self) -> Option<&str> {
        self.value("Details")
    }

    pub fn event_type(&self) -> Option<&str> {
        self.value("EventType")
    }

    pub fn query_name(&self) -> Option<&str> {
        self.value("QueryName")
    }

    pub fn query_status(&self) -> Option<u32> {
        self.value("QueryStatus").and_then(parse_u32)
    }

    /// `QueryResults` of event 22 split into addresses and other records.
    pub fn query_results(&self) -> Vec<DnsAnswer> {
        self.value("QueryResults")
            .map(parse_query_results)
            .unwrap_or_default()
    }

    pub fn destination_ip(&self) -> Option<&str> {
        self.value("DestinationIp")
    }

    pub fn destination_port(&self) -> Option<u16> {
        self.value("DestinationPort")
            .and_then(|v| v.trim().parse().ok())
    }

    pub fn destination_hostname(&self) -> Option<&str> {
        self.value("DestinationHostname")
    }

    /// `tcp` / `udp` as Sysmon writes it.
    pub fn protocol(&self) -> Option<&str> {
        self.value("Protocol")
    }

    /// `Initiated` of event 3 (`true` = outbound).
    pub fn initiated(&self) -> Option<bool> {
        self.value("Initiated").and_then(parse_bool)
    }

    pub fn pipe_name(&self) -> Option<&str> {
        self.value("PipeName")
    }

    pub fn image_loaded(&self) -> Option<&str> {
        self.value("ImageLoaded")
    }

    pub fn granted_access(&self) -> Option<u32> {
        let v = self.value("GrantedAccess")?.trim();
        let hex = v
            .strip_prefix("0x")
            .or_else(|| v.strip_prefix("0X"))
            .unwrap_or(v);
        u32::from_str_radix(hex, 16).ok()
    }

    pub fn user(&self) -> Option<&str> {
        self.value("User")
    }

    /// `Hashes`, or `Hash` in event 15.
    pub fn hashes(&self) -> Hashes {
        let field = if self.event_id == event_id::FILE_CREATE_STREAM_HASH {
            self.value("Hash").or_else(|| self.value("Hashes"))
        } else {
            self.value("Hashes").or_else(|| self.value("Hash"))
        };
        field.map(Hashes::parse).unwrap_or_default()
    }
}

/// One entry of a DNS `QueryResults` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DnsAnswer {
    /// An IPv4 or IPv6 address (`::ffff:` mapping removed).
    Address(String),
    /// A non-address record: `type:  5 target` → `{record_type: 5, data: "target"}` (5 = CNAME).
    Record { record_type: u16, data: String },
}

/// Split Sysmon's `;`-terminated `QueryResults` (`type:  5 a.example;::ffff:1.2.3.4;`).
pub fn parse_query_results(text: &str) -> Vec<DnsAnswer> {
    let mut answers = Vec::new();
    for entry in text.split(';') {
        let entry = entry.trim();
        if entry.is_empty() || entry == "-" {
            continue;
        }
        if let Some(rest) = entry.strip_prefix("type:") {
            let rest = rest.trim_start();
            let (num, data) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if let Ok(record_type) = num.parse() {
                answers.push(DnsAnswer::Record {
                    record_type,
                    data: data.trim().to_string(),
                });
                continue;
            }
        }
        let address = entry.strip_prefix("::ffff:").unwrap_or(entry);
        if address.parse::<std::net::IpAddr>().is_ok() {
            answers.push(DnsAnswer::Address(address.to_string()));
        } else {
            answers.push(DnsAnswer::Record {
                record_type: 0,
                data: entry.to_string(),
            });
        }
    }
    answers
}

fn parse_u32(text: &str) -> Option<u32> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        t if t.eq_ignore_ascii_case("true") || t == "1" => Some(true),
        t if t.eq_ignore_ascii_case("false") || t == "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_results_real_example() {
        let r = parse_query_results(
            "type:  5 sls.update.microsoft.com;type:  5 glb.sls.prod.dcat.dsp.trafficmanager.net;::ffff:74.178.240.61;",
        );
        assert_eq!(
            r,
            vec![
                DnsAnswer::Record {
                    record_type: 5,
                    data: "sls.update.microsoft.com".into()
                },
                DnsAnswer::Record {
                    record_type: 5,
                    data: "glb.sls.prod.dcat.dsp.trafficmanager.net".into()
                },
                DnsAnswer::Address("74.178.240.61".into()),
            ]
        );
        assert_eq!(
            parse_query_results("::1;::ffff:127.0.0.1;"),
            vec![
                DnsAnswer::Address("::1".into()),
                DnsAnswer::Address("127.0.0.1".into())
            ]
        );
        assert!(parse_query_results("-").is_empty());
    }
}
