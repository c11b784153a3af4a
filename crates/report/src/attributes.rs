//! The report's attributes from the attributed events, in log order. Every list is
//! de-duplicated in first-seen order; paths, keys and the image of command lines are normalised
//! and their raw spellings kept in `raw_forms`; what a command line asks for (tasks, services,
//! deletions) is read from the line as logged.

use crate::attribution::{Attribution, compare_key, service_value};
use crate::commands::{self, ServiceAction};
use crate::noise::SandboxArtefacts;
use crate::table::ProcessTable;
use sandscope_event::{DnsAnswer, SysmonEvent, event_id};
use sandscope_model::{
    BehaviourAttributes, DnsLookup, DroppedFile, IpTraffic, RegistrySet, ScheduledTask,
    ServiceDetail, WmiSubscription,
};
use sandscope_normalise::{Normaliser, record_raw_form};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Deeper process chains are cut and continued as new roots: JSON readers limit nesting (serde
/// reads 128 levels, two per tree level) and a recursive renderer must not overflow its stack.
pub(crate) const MAX_TREE_DEPTH: usize = 48;

/// Tags in the order they are emitted.
const TAG_ORDER: &[&str] = &[
    "PERSISTENCE",
    "SELF_DELETE",
    "HOSTS_MODIFIER",
    "EXECUTES_DROPPED_FILE",
    "CALLS_WMI",
    "LISTENS",
    "FTP_COMMUNICATION",
    "SSH_COMMUNICATION",
    "TELNET_COMMUNICATION",
    "SMTP_COMMUNICATION",
    "IRC_COMMUNICATION",
];

/// A list with first-seen order and constant-time membership.
struct Unique {
    seen: HashSet<String>,
}

impl Unique {
    fn new() -> Self {
        Self {
            seen: HashSet::new(),
        }
    }
    fn push(&mut self, list: &mut Vec<String>, value: String) {
        if self.seen.insert(value.clone()) {
            list.push(value);
        }
    }
}

pub(crate) struct Inputs<'a> {
    pub events: &'a [SysmonEvent],
    pub table: &'a ProcessTable,
    pub attribution: &'a Attribution,
    pub artefacts: &'a SandboxArtefacts,
    pub normaliser: &'a Normaliser,
    /// `(event id, actor image key, target key)` of a clean run.
    pub baseline: &'a HashSet<(u16, String, String)>,
}

#[derive(Default)]
struct Builder {
    attrs: BehaviourAttributes,
    created: Unique,
    commands: Unique,
    terminated: Unique,
    injected: Unique,
    written: Unique,
    deleted: Unique,
    opened: Unique,
    attribute_changed: Unique,
    reg_deleted: Unique,
    reg_set: HashSet<(String, Option<String>)>,
    modules: Unique,
    pipes: Unique,
    services_created: Unique,
    services_started: Unique,
    services_stopped: Unique,
    services_opened: Unique,
    services_deleted: Unique,
    dropped_index: HashMap<String, usize>,
    dns_index: HashMap<String, usize>,
    traffic: HashSet<(String, Option<u16>, Option<String>)>,
    wmi: HashSet<(String, String, Option<String>, Option<String>)>,
    tags: BTreeSet<&'static str>,
    written_keys: HashSet<String>,
    created_image_keys: Vec<String>,
    root_image_keys: HashSet<String>,
    seen_without_creation: HashSet<usize>,
}

impl Default for Unique {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn build(inputs: &Inputs<'_>) -> BehaviourAttributes {
    let mut b = Builder::default();
    let table = inputs.table;
    for &root in &inputs.attribution.roots {
        if let Some(image) = table.procs[root].image.as_deref() {
            b.root_image_keys.insert(compare_key(image));
        }
    }
    for (i, event) in inputs.events.iter().enumerate() {
        if matches!(
            event.event_id,
            event_id::SERVICE_STATE_CHANGE | event_id::CONFIG_CHANGE | event_id::ERROR
        ) || !inputs.attribution.event_attributed(i, table)
            || in_baseline(inputs, event)
        {
            continue;
        }
        b.event(inputs, i, event);
    }
    b.finish(inputs)
}

fn in_baseline(inputs: &Inputs<'_>, event: &SysmonEvent) -> bool {
    if inputs.baseline.is_empty() || event.event_id == event_id::PROCESS_CREATE {
        return false;
    }
    inputs.baseline.contains(&baseline_key(event))
}

/// What makes an event "the same" as one in a clean run.
pub(crate) fn baseline_key(event: &SysmonEvent) -> (u16, String, String) {
    let image = event.image().map(compare_key).unwrap_or_default();
    let target = event
        .target_filename()
        .map(compare_key)
        .or_else(|| {
            event
                .target_object()
                .map(|k| Normaliser::default().registry_key(k).to_ascii_lowercase())
        })
        .or_else(|| event.query_name().map(str::to_ascii_lowercase))
        .or_else(|| {
            event
                .destination_ip()
                .map(|ip| format!("{ip}:{}", event.destination_port().unwrap_or(0)))
        })
        .or_else(|| event.pipe_name().map(str::to_ascii_lowercase))
        .or_else(|| event.image_loaded().map(compare_key))
        .unwrap_or_default();
    (event.event_id, image, target)
}

impl Builder {
    fn path(&mut self, inputs: &Inputs<'_>, raw: &str) -> String {
        let normalised = inputs.normaliser.path(raw);
        self.raw_form(&normalised, raw);
        normalised
    }

    fn key(&mut self, inputs: &Inputs<'_>, raw: &str) -> String {
        let normalised = inputs.normaliser.registry_key(raw);
        self.raw_form(&normalised, raw);
        normalised
    }

    fn command_line(&mut self, inputs: &Inputs<'_>, raw: &str) -> String {
        let normalised = inputs.normaliser.command_line(raw);
        self.raw_form(&normalised, raw);
        normalised
    }

    fn raw_form(&mut self, normalised: &str, raw: &str) {
        record_raw_form(&mut self.attrs.raw_forms, normalised, raw);
    }

    /// A process tree node's name: its command line, else its image, normalised.
    fn process_name(
        &mut self,
        inputs: &Inputs<'_>,
        command: Option<&str>,
        image: Option<&str>,
    ) -> String {
        match (command, image) {
            (Some(command), _) => self.command_line(inputs, command),
            (None, Some(image)) => self.path(inputs, image),
            (None, None) => "?".to_string(),
        }
    }

    fn sandbox_path(&self, inputs: &Inputs<'_>, raw: &str) -> bool {
        !inputs.attribution.everything && inputs.artefacts.is_sandbox_path(raw)
    }

    fn event(&mut self, inputs: &Inputs<'_>, i: usize, event: &SysmonEvent) {
        if let Some(actor) = inputs.table.actor(i) {
            self.process_without_creation(inputs, actor);
        }
        match event.event_id {
            event_id::PROCESS_CREATE => self.process_create(inputs, i, event),
            event_id::FILE_CREATE_TIME => {
                if let Some(t) = event.target_filename()
                    && !self.sandbox_path(inputs, t)
                {
                    let p = self.path(inputs, t);
                    self.attribute_changed
                        .push(&mut self.attrs.files_attribute_changed, p);
                }
            }
            event_id::NETWORK_CONNECT => self.network(event),
            event_id::PROCESS_TERMINATE => {
                if let Some(image) = event.image() {
                    let p = self.path(inputs, image);
                    self.terminated
                        .push(&mut self.attrs.processes_terminated, p);
                }
            }
            event_id::DRIVER_LOAD | event_id::IMAGE_LOAD => {
                if let Some(module) = event.image_loaded()
                    && !self.sandbox_path(inputs, module)
                {
                    let p = self.path(inputs, module);
                    self.modules.push(&mut self.attrs.modules_loaded, p);
                }
            }
            event_id::CREATE_REMOTE_THREAD => {
                let target = event.target_image().unwrap_or("<unknown process>");
                let p = self.path(inputs, target);
                self.injected.push(&mut self.attrs.processes_injected, p);
            }
            event_id::PROCESS_TAMPERING => {
                if let Some(image) = event.image() {
                    let p = self.path(inputs, image);
                    self.injected.push(&mut self.attrs.processes_injected, p);
                }
            }
            event_id::RAW_ACCESS_READ => {
                if let Some(device) = event.value("Device") {
                    let p = self.path(inputs, device);
                    self.opened.push(&mut self.attrs.files_opened, p);
                }
            }
            event_id::FILE_CREATE
            | event_id::FILE_CREATE_STREAM_HASH
            | event_id::FILE_EXECUTABLE_DETECTED => self.file_written(inputs, event),
            event_id::FILE_DELETE | event_id::FILE_DELETE_DETECTED => {
                self.file_deleted(inputs, event)
            }
            event_id::REGISTRY_ADD_DELETE
            | event_id::REGISTRY_SET_VALUE
            | event_id::REGISTRY_RENAME => self.registry(inputs, event),
            event_id::PIPE_CREATED | event_id::PIPE_CONNECTED => {
                if let Some(pipe) = event.pipe_name()
                    && (inputs.attribution.everything || !inputs.artefacts.is_monitor_pipe(pipe))
                {
                    self.pipes
                        .push(&mut self.attrs.named_pipes, pipe.to_string());
                }
            }
            event_id::WMI_FILTER | event_id::WMI_CONSUMER | event_id::WMI_BINDING => {
                self.wmi_event(event)
            }
            event_id::DNS_QUERY => self.dns(event),
            _ => {}
        }
    }

    /// A process of the sample whose creation was not logged (it started before the log did,
    /// or the log was trimmed) is listed like a created one when it first acts or parents: its
    /// image in `processes_created` and its command line, when a child's `ParentCommandLine`
    /// tells it, in `command_executions`, as CAPE's report and VirusTotal's list the sample's
    /// own. Without a known command line only the sample's roots are listed: any other such
    /// process (an injection target, say) may have existed before the detonation.
    fn process_without_creation(&mut self, inputs: &Inputs<'_>, p: usize) {
        let proc = &inputs.table.procs[p];
        if proc.created.is_some()
            || !inputs.attribution.is_included(p)
            || !self.seen_without_creation.insert(p)
        {
            return;
        }
        let command = proc.command_line.as_deref();
        if command.is_none() && !inputs.attribution.roots.contains(&p) {
            return;
        }
        if let Some(image) = proc.image.as_deref() {
            let p = self.path(inputs, image);
            self.created.push(&mut self.attrs.processes_created, p);
        }
        if let Some(command) = command {
            self.command(inputs, command);
        }
    }

    fn process_create(&mut self, inputs: &Inputs<'_>, i: usize, event: &SysmonEvent) {
        let table = inputs.table;
        if let Some(actor) = table.actor(i)
            && let Some(parent) = table.procs[actor].parent
        {
            self.process_without_creation(inputs, parent);
        }
        if let Some(image) = event.image() {
            let p = self.path(inputs, image);
            self.created.push(&mut self.attrs.processes_created, p);
            self.created_image_keys.push(compare_key(image));
        }
        if let Some(command) = event.command_line() {
            self.command(inputs, command);
        }
    }

    fn command(&mut self, inputs: &Inputs<'_>, command: &str) {
        let normalised = self.command_line(inputs, command);
        self.commands
            .push(&mut self.attrs.command_executions, normalised);
        let args = commands::split_args(command);
        if let Some(task) = commands::parse_schtasks_create(&args) {
            self.task(ScheduledTask {
                name: task.name,
                command: task.command,
                trigger: task.trigger,
                xml_file: task.xml_file,
            });
        }
        match commands::parse_service_action(&args) {
            Some(ServiceAction::Create { name, image }) => {
                self.service_created(&name, image.as_deref(), None)
            }
            Some(ServiceAction::Reconfigure { name, image }) => {
                self.service_created(&name, Some(&image), None)
            }
            Some(ServiceAction::Open { name }) => self
                .services_opened
                .push(&mut self.attrs.services_opened, name),
            Some(ServiceAction::Start { name }) => self
                .services_started
                .push(&mut self.attrs.services_started, name),
            Some(ServiceAction::Stop { name }) => self
                .services_stopped
                .push(&mut self.attrs.services_stopped, name),
            Some(ServiceAction::Delete { name }) => self
                .services_deleted
                .push(&mut self.attrs.services_deleted, name),
            None => {}
        }
        for deleted in commands::parse_deleted_paths(&args) {
            if self.root_image_keys.contains(&compare_key(&deleted)) {
                self.tags.insert("SELF_DELETE");
            }
        }
        let lower = command.to_ascii_lowercase();
        if args
            .first()
            .is_some_and(|a| commands::program_name(a) == "wmic")
            || lower.contains("get-wmiobject")
            || lower.contains("invoke-wmimethod")
            || lower.contains("get-ciminstance")
            || lower.contains("invoke-cimmethod")
        {
            self.tags.insert("CALLS_WMI");
        }
    }

    fn task(&mut self, task: ScheduledTask) {
        let key = task.name.trim_start_matches('\\').to_ascii_lowercase();
        if let Some(existing) = self
            .attrs
            .scheduled_tasks_created
            .iter_mut()
            .find(|t| t.name.trim_start_matches('\\').eq_ignore_ascii_case(&key))
        {
            existing.command = existing.command.take().or(task.command);
            existing.trigger = existing.trigger.take().or(task.trigger);
            existing.xml_file = existing.xml_file.take().or(task.xml_file);
        } else {
            self.attrs.scheduled_tasks_created.push(task);
        }
        self.tags.insert("PERSISTENCE");
    }

    fn service_created(&mut self, name: &str, image: Option<&str>, start: Option<&str>) {
        self.services_created
            .push(&mut self.attrs.services_created, name.to_string());
        let image = image.map(undouble_percent);
        match self
            .attrs
            .service_details
            .iter_mut()
            .find(|s| s.name.eq_ignore_ascii_case(name))
        {
            Some(detail) => {
                if image.is_some() {
                    detail.image_path = image;
                }
                if let Some(start) = start {
                    detail.start_type = Some(start.to_string());
                }
            }
            None => self.attrs.service_details.push(ServiceDetail {
                name: name.to_string(),
                image_path: image,
                start_type: start.map(str::to_string),
            }),
        }
        self.tags.insert("PERSISTENCE");
    }

    fn network(&mut self, event: &SysmonEvent) {
        let Some(ip) = event.destination_ip() else {
            return;
        };
        if event.initiated() == Some(false) {
            self.tags.insert("LISTENS");
            return;
        }
        let port = event.destination_port();
        let protocol = event.protocol().map(str::to_ascii_uppercase);
        if let Some(tag) = port.and_then(port_tag) {
            self.tags.insert(tag);
        }
        if self
            .traffic
            .insert((ip.to_string(), port, protocol.clone()))
        {
            self.attrs.ip_traffic.push(IpTraffic {
                destination_ip: ip.to_string(),
                destination_port: port,
                transport_layer_protocol: protocol,
            });
        }
    }

    fn file_written(&mut self, inputs: &Inputs<'_>, event: &SysmonEvent) {
        let Some(target) = event.target_filename() else {
            return;
        };
        if self.sandbox_path(inputs, target) {
            return;
        }
        let path = self.path(inputs, target);
        self.written_keys.insert(compare_key(target));
        self.written
            .push(&mut self.attrs.files_written, path.clone());
        let lower = target.to_ascii_lowercase();
        if let Some((_, name)) = lower.split_once(r"\system32\tasks\") {
            let original = &target[target.len() - name.len()..];
            self.task(ScheduledTask {
                name: original.to_string(),
                ..Default::default()
            });
        }
        if lower.contains(r"\start menu\programs\startup\") {
            self.tags.insert("PERSISTENCE");
        }
        if lower.ends_with(r"\drivers\etc\hosts") {
            self.tags.insert("HOSTS_MODIFIER");
        }
        let sha256 = event.hashes().sha256;
        self.dropped(path, sha256);
    }

    fn dropped(&mut self, path: String, sha256: Option<String>) {
        match self.dropped_index.get(&path) {
            Some(&index) => {
                let file = &mut self.attrs.files_dropped[index];
                if file.sha256.is_none() {
                    file.sha256 = sha256;
                }
            }
            None => {
                self.dropped_index
                    .insert(path.clone(), self.attrs.files_dropped.len());
                let file_type = file_type_of(&path).map(str::to_string);
                self.attrs.files_dropped.push(DroppedFile {
                    path,
                    sha256,
                    file_type,
                });
            }
        }
    }

    fn file_deleted(&mut self, inputs: &Inputs<'_>, event: &SysmonEvent) {
        let Some(target) = event.target_filename() else {
            return;
        };
        if self.sandbox_path(inputs, target) {
            return;
        }
        let path = self.path(inputs, target);
        if self.root_image_keys.contains(&compare_key(target)) {
            self.tags.insert("SELF_DELETE");
        }
        if let Some(&index) = self.dropped_index.get(&path) {
            let file = &mut self.attrs.files_dropped[index];
            if file.sha256.is_none() {
                file.sha256 = event.hashes().sha256;
            }
        }
        self.deleted.push(&mut self.attrs.files_deleted, path);
    }

    fn registry(&mut self, inputs: &Inputs<'_>, event: &SysmonEvent) {
        let Some(target) = event.target_object() else {
            return;
        };
        if self.sandbox_path(inputs, target) {
            return;
        }
        let kind = event.event_type().unwrap_or_default().to_ascii_lowercase();
        let key = self.key(inputs, target);
        let lower = key.to_ascii_lowercase();
        if event.event_id == event_id::REGISTRY_SET_VALUE || kind == "setvalue" {
            let value = event.details().map(str::to_string);
            if self.reg_set.insert((key.clone(), value.clone())) {
                self.attrs.registry_keys_set.push(RegistrySet {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
            if is_autostart_key(&lower) {
                self.tags.insert("PERSISTENCE");
            }
            if let Some((_, value_name)) = service_value(event) {
                let service = service_name_as_written(target);
                if value_name.eq_ignore_ascii_case("ImagePath") {
                    self.service_created(&service, value.as_deref(), None);
                } else if value_name.eq_ignore_ascii_case("Start")
                    && let Some(start) = value.as_deref().and_then(start_type)
                {
                    // The SCM writes `Start` before `ImagePath`: keep whichever comes first.
                    match self
                        .attrs
                        .service_details
                        .iter_mut()
                        .find(|s| s.name.eq_ignore_ascii_case(&service))
                    {
                        Some(detail) => detail.start_type = Some(start.to_string()),
                        None => self.attrs.service_details.push(ServiceDetail {
                            name: service,
                            image_path: None,
                            start_type: Some(start.to_string()),
                        }),
                    }
                }
            }
        } else if matches!(kind.as_str(), "deletekey" | "deletevalue" | "renamekey") {
            // A renamed key is gone under its old name.
            self.reg_deleted
                .push(&mut self.attrs.registry_keys_deleted, key);
        }
    }

    fn wmi_event(&mut self, event: &SysmonEvent) {
        let kind = match event.event_id {
            event_id::WMI_FILTER => "filter",
            event_id::WMI_CONSUMER => "consumer",
            _ => "binding",
        };
        let name = match event.event_id {
            event_id::WMI_BINDING => event.value("Consumer"),
            _ => event.value("Name"),
        }
        .map(unquote_wmi)
        .unwrap_or_default();
        let detail = match event.event_id {
            event_id::WMI_FILTER => event.value("Query"),
            event_id::WMI_CONSUMER => event.value("Destination"),
            _ => event.value("Filter"),
        }
        .map(unquote_wmi);
        let operation = event.value("Operation").map(str::to_string);
        if operation
            .as_deref()
            .is_none_or(|o| !o.eq_ignore_ascii_case("deleted"))
            && event.event_id != event_id::WMI_FILTER
        {
            self.tags.insert("PERSISTENCE");
        }
        self.tags.insert("CALLS_WMI");
        if self.wmi.insert((
            kind.to_string(),
            name.clone(),
            operation.clone(),
            detail.clone(),
        )) {
            self.attrs.wmi_subscriptions.push(WmiSubscription {
                kind: kind.to_string(),
                name,
                operation,
                detail,
            });
        }
    }

    fn dns(&mut self, event: &SysmonEvent) {
        let Some(name) = event.query_name() else {
            return;
        };
        let index = match self.dns_index.get(name) {
            Some(&index) => index,
            None => {
                self.dns_index
                    .insert(name.to_string(), self.attrs.dns_lookups.len());
                self.attrs.dns_lookups.push(DnsLookup {
                    hostname: name.to_string(),
                    ..Default::default()
                });
                self.attrs.dns_lookups.len() - 1
            }
        };
        let lookup = &mut self.attrs.dns_lookups[index];
        for answer in event.query_results() {
            let (list, value) = match answer {
                DnsAnswer::Address(ip) => (&mut lookup.resolved_ips, ip),
                DnsAnswer::Record { data, .. } => (&mut lookup.cnames, data),
            };
            if !list.contains(&value) {
                list.push(value);
            }
        }
    }

    fn finish(mut self, inputs: &Inputs<'_>) -> BehaviourAttributes {
        if self
            .created_image_keys
            .iter()
            .any(|k| self.written_keys.contains(k))
        {
            self.tags.insert("EXECUTES_DROPPED_FILE");
        }
        self.attrs.tags = TAG_ORDER
            .iter()
            .filter(|t| self.tags.contains(*t))
            .map(|t| t.to_string())
            .collect();
        let tree = crate::tree::build(inputs, &mut |command, image| {
            self.process_name(inputs, command, image)
        });
        self.attrs.processes_tree = tree;
        cap_lists(&mut self.attrs);
        self.attrs
    }
}

/// Entries kept per attribute list, as VirusTotal caps its own lists; what is cut is counted
/// in the `truncated` extension.
pub const MAX_LIST_ENTRIES: usize = 10_000;

/// Cut every list to [`MAX_LIST_ENTRIES`] (first-seen entries kept), count what went in
/// `truncated`, and drop the raw spellings of values no longer in the report.
fn cap_lists(attrs: &mut BehaviourAttributes) {
    let mut cut_values: HashSet<String> = HashSet::new();
    macro_rules! cap {
        ($($field:ident $(. $value:ident)?),* $(,)?) => {$(
            if attrs.$field.len() > MAX_LIST_ENTRIES {
                let tail = attrs.$field.split_off(MAX_LIST_ENTRIES);
                attrs
                    .truncated
                    .insert(stringify!($field).to_string(), tail.len() as u64);
                #[allow(unused_mut)]
                for mut entry in tail {
                    cut_values.insert(std::mem::take(&mut entry $(. $value)?));
                }
            }
        )*};
    }
    cap!(
        processes_created,
        processes_terminated,
        processes_killed,
        processes_injected,
        command_executions,
        files_opened,
        files_written,
        files_deleted,
        files_attribute_changed,
        files_dropped.path,
        registry_keys_opened,
        registry_keys_set.key,
        registry_keys_deleted,
        services_opened,
        services_created,
        services_started,
        services_stopped,
        services_deleted,
        mutexes_created,
        mutexes_opened,
        modules_loaded,
        named_pipes,
        dns_lookups.hostname,
        ip_traffic.destination_ip,
        wmi_subscriptions.name,
        service_details.name,
        scheduled_tasks_created.name,
    );
    let mut tree_left = MAX_LIST_ENTRIES;
    let tree_cut = cap_tree(&mut attrs.processes_tree, &mut tree_left, &mut cut_values);
    if tree_cut > 0 {
        attrs
            .truncated
            .insert("processes_tree".to_string(), tree_cut);
    }
    if cut_values.is_empty() {
        return;
    }
    // A cut value may still be in the report through another list or the process tree.
    let mut kept: HashSet<&str> = HashSet::new();
    for list in [
        &attrs.processes_created,
        &attrs.processes_terminated,
        &attrs.processes_injected,
        &attrs.command_executions,
        &attrs.files_opened,
        &attrs.files_written,
        &attrs.files_deleted,
        &attrs.files_attribute_changed,
        &attrs.registry_keys_deleted,
        &attrs.modules_loaded,
    ] {
        kept.extend(list.iter().map(String::as_str));
    }
    kept.extend(attrs.files_dropped.iter().map(|f| f.path.as_str()));
    kept.extend(attrs.registry_keys_set.iter().map(|r| r.key.as_str()));
    let mut stack: Vec<&sandscope_model::ProcessNode> = attrs.processes_tree.iter().collect();
    while let Some(node) = stack.pop() {
        kept.insert(node.name.as_str());
        stack.extend(node.children.iter());
    }
    let before = attrs.raw_forms.len();
    let dropped: Vec<String> = attrs
        .raw_forms
        .keys()
        .filter(|k| cut_values.contains(*k) && !kept.contains(k.as_str()))
        .cloned()
        .collect();
    for key in dropped {
        attrs.raw_forms.remove(&key);
    }
    let removed = before - attrs.raw_forms.len();
    if removed > 0 {
        attrs
            .truncated
            .insert("raw_forms".to_string(), removed as u64);
    }
}

/// Keep the first `left` nodes of a process forest in pre-order (parents before children, as
/// first seen); returns how many nodes were cut, their names added to `cut_values`.
fn cap_tree(
    nodes: &mut Vec<sandscope_model::ProcessNode>,
    left: &mut usize,
    cut_values: &mut HashSet<String>,
) -> u64 {
    let mut cut = 0;
    let mut kept = 0;
    for node in nodes.iter_mut() {
        if *left == 0 {
            break;
        }
        *left -= 1;
        kept += 1;
        cut += cap_tree(&mut node.children, left, cut_values);
    }
    let mut stack: Vec<sandscope_model::ProcessNode> = nodes.drain(kept..).collect();
    while let Some(node) = stack.pop() {
        cut += 1;
        cut_values.insert(node.name);
        stack.extend(node.children);
    }
    cut
}

/// Sysmon writes WMI names and commands as ` "Evil"`: a leading space and MOF quotes, removed
/// here (the inner text, escapes included, is kept as written).
fn unquote_wmi(value: &str) -> String {
    let trimmed = value.trim();
    trimmed
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(trimmed)
        .to_string()
}

/// `%%SystemRoot%%\x` (as some values are stored) → `%SystemRoot%\x`.
fn undouble_percent(value: &str) -> String {
    value.replace("%%", "%")
}

fn service_name_as_written(target: &str) -> String {
    let lower = target.to_ascii_lowercase();
    match lower.find(r"\services\") {
        Some(pos) => {
            let rest = &target[pos + r"\services\".len()..];
            rest.split('\\').next().unwrap_or(rest).to_string()
        }
        None => String::new(),
    }
}

/// `DWORD (0x00000003)` → `demand`.
fn start_type(details: &str) -> Option<&'static str> {
    let hex = details
        .trim()
        .strip_prefix("DWORD (0x")?
        .strip_suffix(')')?;
    Some(match u32::from_str_radix(hex, 16).ok()? {
        0 => "boot",
        1 => "system",
        2 => "auto",
        3 => "demand",
        4 => "disabled",
        _ => return None,
    })
}

fn is_autostart_key(lower_key: &str) -> bool {
    [
        r"\currentversion\run\",
        r"\currentversion\runonce\",
        r"\currentversion\runservices\",
        r"\currentversion\runservicesonce\",
        r"\policies\explorer\run\",
        r"\winlogon\shell",
        r"\winlogon\userinit",
        r"\image file execution options\",
        r"\currentversion\windows\appinit_dlls",
    ]
    .iter()
    .any(|k| lower_key.contains(k))
        || (lower_key.contains(r"\services\") && lower_key.ends_with(r"\imagepath"))
}

fn port_tag(port: u16) -> Option<&'static str> {
    Some(match port {
        21 => "FTP_COMMUNICATION",
        22 => "SSH_COMMUNICATION",
        23 => "TELNET_COMMUNICATION",
        25 | 465 | 587 => "SMTP_COMMUNICATION",
        6667 | 6697 => "IRC_COMMUNICATION",
        _ => return None,
    })
}

/// A VirusTotal FileType name guessed from the extension (Sysmon never sees file contents).
pub(crate) fn file_type_of(path: &str) -> Option<&'static str> {
    let name = path.rsplit(['\\', '/']).next().unwrap_or(path);
    let (_, ext) = name.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "exe" | "scr" | "com" => "PE_EXE",
        "dll" | "ocx" | "cpl" | "sys" => "PE_DLL",
        "msi" => "MSI",
        "lnk" => "LNK",
        "jpg" | "jpeg" => "JPEG",
        "png" => "PNG",
        "gif" => "GIF",
        "zip" => "ZIP",
        "rar" => "RAR",
        "7z" => "SEVENZIP",
        "pdf" => "PDF",
        "doc" => "DOC",
        "docx" => "DOCX",
        "xls" => "XLS",
        "xlsx" => "XLSX",
        "rtf" => "RTF",
        "html" | "htm" | "hta" => "HTML",
        "xml" => "XML",
        "js" => "JAVASCRIPT",
        "jar" => "JAR",
        "class" => "JAVA_BYTECODE",
        "txt" | "log" | "ini" | "cfg" | "csv" | "bat" | "cmd" | "ps1" | "vbs" | "json" | "url" => {
            "TEXT"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_helpers() {
        assert_eq!(start_type("DWORD (0x00000003)"), Some("demand"));
        assert_eq!(start_type("DWORD (0x00000002)"), Some("auto"));
        assert_eq!(start_type("Binary Data"), None);
        assert_eq!(file_type_of(r"%APPDATA%\NvSmart.exe"), Some("PE_EXE"));
        assert_eq!(file_type_of(r"%APPDATA%\NvSmartMax.dll"), Some("PE_DLL"));
        assert_eq!(file_type_of(r"%APPDATA%\config.xml"), Some("XML"));
        assert_eq!(file_type_of(r"%APPDATA%\data.enc"), None);
        assert_eq!(file_type_of(r"C:\noext"), None);
        assert_eq!(
            undouble_percent(r"%%SystemRoot%%\PSEXESVC.exe"),
            r"%SystemRoot%\PSEXESVC.exe"
        );
        assert!(is_autostart_key(
            r"hkcu\software\microsoft\windows\currentversion\run\360v"
        ));
    }

    #[test]
    fn process_trees_are_cut_in_first_seen_order() {
        let node = |name: String, children| sandscope_model::ProcessNode {
            process_id: "1".into(),
            name,
            time_offset: None,
            children,
        };
        let children = (0..MAX_LIST_ENTRIES + 5)
            .map(|i| {
                node(
                    format!("child {i}"),
                    vec![node(format!("grandchild {i}"), vec![])],
                )
            })
            .collect();
        let mut attrs = BehaviourAttributes {
            processes_tree: vec![
                node("root".into(), children),
                node("second root".into(), vec![]),
            ],
            ..Default::default()
        };
        attrs
            .raw_forms
            .insert("grandchild 9000".into(), vec!["raw".into()]);
        attrs
            .raw_forms
            .insert("child 10".into(), vec!["raw".into()]);
        cap_lists(&mut attrs);
        let root = &attrs.processes_tree[0];
        assert_eq!(
            attrs.processes_tree.len(),
            1,
            "the second root comes after 10,000 nodes"
        );
        // Pre-order: root, child 0, grandchild 0, child 1, … — 10,000 nodes in all.
        assert_eq!(root.children.len(), (MAX_LIST_ENTRIES - 1).div_ceil(2));
        let total = 2 * (MAX_LIST_ENTRIES + 5) + 2;
        assert_eq!(
            attrs.truncated.get("processes_tree"),
            Some(&((total - MAX_LIST_ENTRIES) as u64))
        );
        assert!(!attrs.raw_forms.contains_key("grandchild 9000"));
        assert!(attrs.raw_forms.contains_key("child 10"));
    }
}
