use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn is_false(b: &bool) -> bool {
    !*b
}

/// `{"data": {...}}`: VirusTotal's single-object envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub data: T,
}

/// One `file_behaviour` object: `{id, type, links?, attributes}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileBehaviour {
    /// `<sha256>_<sandbox name>`.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    pub attributes: BehaviourAttributes,
}

impl FileBehaviour {
    pub fn new(sha256: &str, attributes: BehaviourAttributes) -> Self {
        Self {
            id: crate::behaviour_id(sha256, &attributes.sandbox_name),
            kind: "file_behaviour".to_string(),
            links: None,
            attributes,
        }
    }

    /// The sample's SHA-256 (the id's part before the first underscore).
    pub fn sha256(&self) -> &str {
        crate::split_behaviour_id(&self.id)
            .map(|(s, _)| s)
            .unwrap_or(&self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Links {
    #[serde(rename = "self")]
    pub self_link: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The `attributes` of a `file_behaviour`. Every list is de-duplicated and in first-seen order;
/// empty lists and absent values are left out of the JSON, as VirusTotal does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BehaviourAttributes {
    // --- report metadata ---
    pub sandbox_name: String,
    /// Unix seconds (UTC) of the analysis (the first event's time for Sysmon logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modification_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behash: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub has_html_report: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub has_pcap: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub has_evtx: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub has_memdump: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict_confidence: Option<u32>,

    // --- processes ---
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes_tree: Vec<ProcessNode>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes_created: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes_terminated: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes_killed: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes_injected: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command_executions: Vec<String>,

    // --- file system ---
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_opened: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_written: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_deleted: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_attribute_changed: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_dropped: Vec<DroppedFile>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_copied: Vec<FileCopy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts_file: Option<String>,

    // --- registry ---
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registry_keys_opened: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registry_keys_set: Vec<RegistrySet>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registry_keys_deleted: Vec<String>,

    // --- services, mutexes, modules ---
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services_opened: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services_created: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services_started: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services_stopped: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services_deleted: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mutexes_created: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mutexes_opened: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modules_loaded: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calls_highlighted: Vec<String>,

    // --- network ---
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_lookups: Vec<DnsLookup>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip_traffic: Vec<IpTraffic>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http_conversations: Vec<HttpConversation>,

    // --- detection content ---
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mitre_attack_techniques: Vec<MitreAttackTechnique>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signature_matches: Vec<SignatureMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sigma_analysis_results: Vec<SigmaAnalysisResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigma_analysis_stats: Option<SigmaAnalysisStats>,

    // --- Sandscope extensions (no VirusTotal field exists for these) ---
    /// Scheduled tasks registered (`schtasks /create`, including `/xml`, and writes under
    /// `\Windows\System32\Tasks\`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scheduled_tasks_created: Vec<ScheduledTask>,
    /// Named pipes created or connected (Sysmon 17/18).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub named_pipes: Vec<String>,
    /// WMI event subscriptions (Sysmon 19/20/21).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wmi_subscriptions: Vec<WmiSubscription>,
    /// Services created or reconfigured, with what VirusTotal's name-only `services_created`
    /// cannot hold: the binary (`ImagePath`) and the start type.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_details: Vec<ServiceDetail>,
    /// Every normalised path or key in this report that differs from what the log said, mapped
    /// to the raw spellings seen (first-seen order). IOC export needs the raw form.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw_forms: BTreeMap<String, Vec<String>>,
    /// Lists cut at the builder's cap (10,000 entries each, as VirusTotal caps its own lists):
    /// attribute name (`files_written`, `raw_forms`, …) → how many entries were left out.
    /// Absent when nothing was cut.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub truncated: BTreeMap<String, u64>,
}

/// One service a sample created or whose binary it changed (Sandscope extension).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceDetail {
    pub name: String,
    /// The `ImagePath` / `binPath=` as written (with a doubled `%%` read as one `%`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_path: Option<String>,
    /// `boot`, `system`, `auto`, `demand` or `disabled` (from the `Start` value or `start=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_type: Option<String>,
}

/// One node of `processes_tree`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessNode {
    pub process_id: String,
    /// The command line (or the image path when there is none), as VirusTotal does.
    pub name: String,
    /// Seconds since the analysis started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_offset: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ProcessNode>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DroppedFile {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A VirusTotal FileType name (`PE_EXE`, `PE_DLL`, `TEXT`, …).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub file_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileCopy {
    pub source: String,
    pub destination: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistrySet {
    pub key: String,
    /// The data written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsLookup {
    pub hostname: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolved_ips: Vec<String>,
    /// Sandscope extension: CNAME (and other non-address) answers, kept apart from addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cnames: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpTraffic {
    pub destination_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_port: Option<u16>,
    /// `TCP`, `UDP`, `ICMP`, … (upper case, as VirusTotal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_layer_protocol: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConversation {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_method: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub request_headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub response_headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body_filetype: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MitreAttackTechnique {
    /// `T1053.005`.
    pub id: String,
    pub signature_description: String,
    /// `IMPACT_SEVERITY_{UNKNOWN,INFO,LOW,MEDIUM,HIGH}`.
    pub severity: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<MitreRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MitreRef {
    #[serde(rename = "ref")]
    pub reference: String,
    pub value: String,
}

/// A sandbox signature (CAPE signatures, Sigma hits as signatures).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SignatureMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `SIG_FORMAT_{UNKNOWN,YARA,SIGMA,CAPA,OPENIOC,KEYWORD}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub match_data: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SigmaAnalysisResult {
    pub rule_title: String,
    pub rule_source: String,
    /// `low | medium | high | critical` (and `informational` for SigmaHQ rules of that level).
    pub rule_level: String,
    pub rule_id: String,
    pub rule_author: String,
    pub rule_description: String,
    pub match_context: Vec<MatchContext>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MatchContext {
    pub values: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SigmaAnalysisStats {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduledTask {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The task definition file of `schtasks /create /xml <file>` (its command is inside it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xml_file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WmiSubscription {
    /// `filter`, `consumer` or `binding`.
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The filter's query, the consumer's destination (command) or the binding's pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// VirusTotal's error envelope: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}
