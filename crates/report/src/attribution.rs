//! Attribution: which processes and events of a log are the sample's.
//!
//! The sample's root process(es) are chosen by [`SampleSelector`]. Detected automatically, the
//! root is the first candidate process (sample location first); when no sandbox agent is in the
//! log and that root was started by a system launcher (WMI's `WmiPrvSE`, `services.exe`, the
//! task scheduler, WinRM's hosts), the log is read as remote or scheduled execution rather
//! than a detonation, and every candidate tree that launcher started in the same burst (each
//! within [`LAUNCHER_BURST_SECONDS`] of the previous) is a root too; the notes say so. From the
//! roots the set grows to a fixed point along these edges:
//! 1. **children** (event 1 `ParentProcessGuid`), recursively;
//! 2. **injection**: targets of CreateRemoteThread (8) and of process access (10) with
//!    `PROCESS_CREATE_THREAD` or `PROCESS_VM_WRITE` rights, from the moment of the access on;
//! 3. **adoption through Windows**: a process that runs a file the sample wrote; a process
//!    services.exe starts for a service the sample created (`sc create`/`sc config binPath=`,
//!    `New-Service`, an `ImagePath` the sample wrote, or an `ImagePath` services.exe wrote that
//!    points at the sample's image or a file it wrote); a process the task scheduler
//!    (`svchost`, `taskeng`, `taskhostw`) starts with a task command the sample registered; a
//!    process WMI (`WmiPrvSE`, `scrcons`) starts with a consumer command registered after the
//!    sample started; a second run of the sample's own image;
//! 4. **work done on the sample's behalf** (events, not processes): services.exe's registry
//!    writes for those services, the scheduler's writes of those tasks (`…\System32\Tasks\<name>`,
//!    `…\Schedule\TaskCache\Tree\<name>`), the BITS service writing a `bitsadmin /transfer`
//!    destination (and its `BIT*.tmp` staging file), and WMI events (19–21) after the sample
//!    started; for roots services.exe started, the writes of the service whose `ImagePath` runs
//!    them (registered remotely, so no command line of the log names it).
//!
//! Processes the noise list ([`crate::noise`]) names are never followed.

use crate::commands::{self, ServiceAction};
use crate::noise::{ProcessClass, is_os_host};
use crate::table::{Proc, ProcessTable, basename_lower};
use crate::{ReportError, SampleSelector};
use sandscope_event::{ProcessGuid, SysmonEvent, event_id};
use sandscope_normalise::Normaliser;
use std::collections::{BTreeSet, HashSet};

/// `PROCESS_CREATE_THREAD | PROCESS_VM_WRITE`.
const INJECTION_RIGHTS: u32 = 0x0002 | 0x0020;
/// How long after `net start X` a services.exe child counts as the service's host.
const SERVICE_START_WINDOW_SECONDS: i64 = 5;
/// Notes about adopted processes (and pids listed in one note) beyond this many are summarised.
const MAX_ADOPTION_NOTES: usize = 32;

#[derive(Debug)]
pub(crate) struct Attribution {
    pub everything: bool,
    pub roots: Vec<usize>,
    /// The system launcher (WMI, services, task scheduler, WinRM) whose sibling trees are the
    /// roots, when no sample was named and the log reads as remote or scheduled execution.
    pub launcher: Option<usize>,
    /// Per process: `Some(first event index that counts)` when the process is the sample's.
    pub included: Vec<Option<usize>>,
    pub extra_events: BTreeSet<usize>,
    pub notes: Vec<String>,
}

impl Attribution {
    pub(crate) fn everything(table: &ProcessTable) -> Self {
        Attribution {
            everything: true,
            roots: Vec::new(),
            launcher: None,
            included: vec![Some(0); table.procs.len()],
            extra_events: BTreeSet::new(),
            notes: vec!["attribution off: every event of the log is reported".to_string()],
        }
    }

    pub(crate) fn event_attributed(&self, i: usize, table: &ProcessTable) -> bool {
        if self.everything {
            return true;
        }
        if let Some(actor) = table.actor(i)
            && let Some(from) = self.included[actor]
            && from <= i
        {
            return true;
        }
        self.extra_events.contains(&i)
    }

    pub(crate) fn is_included(&self, proc: usize) -> bool {
        self.included.get(proc).copied().flatten().is_some()
    }
}

/// A path as compared across events: normalised, `\\` collapsed, lower case.
pub(crate) fn compare_key(path: &str) -> String {
    Normaliser::default()
        .path(&commands::collapse_doubled_backslashes(path))
        .to_ascii_lowercase()
}

/// The program a command line (or service `ImagePath`) runs.
pub(crate) fn image_of_command(command: &str) -> String {
    let command = command.trim();
    if let Some(rest) = command.strip_prefix('"') {
        return rest.split('"').next().unwrap_or(rest).to_string();
    }
    let lower = command.to_ascii_lowercase();
    for ext in [".exe", ".sys", ".dll", ".bat", ".cmd", ".com", ".scr"] {
        if let Some(pos) = lower.find(ext) {
            let end = pos + ext.len();
            if lower[end..].is_empty() || lower[end..].starts_with(char::is_whitespace) {
                return command[..end].to_string();
            }
        }
    }
    command
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A command line as compared: quotes removed, whitespace collapsed, lower case.
fn command_key(command: &str) -> String {
    commands::split_args(command).join(" ").to_ascii_lowercase()
}

fn is_sample_location(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        r"\downloads\",
        r"\desktop\",
        r"\documents\",
        r"\appdata\local\temp\",
        r"\users\public\",
        r"\windows\temp\",
        // Sysmon for Linux
        "/tmp/",
        "/var/tmp/",
        "/dev/shm/",
        "/home/",
    ]
    .iter()
    .any(|p| lower.contains(p))
        || lower.ends_with(r"\desktop")
        || lower.contains(r#"\desktop""#)
}

pub(crate) struct Context<'a> {
    pub events: &'a [SysmonEvent],
    pub table: &'a ProcessTable,
    pub classes: &'a [ProcessClass],
    /// `image|command line` keys of processes a clean run also started.
    pub baseline_processes: &'a HashSet<String>,
}

pub(crate) fn baseline_process_key(image: Option<&str>, command_line: Option<&str>) -> String {
    format!(
        "{}|{}",
        image.map(compare_key).unwrap_or_default(),
        command_line.map(command_key).unwrap_or_default()
    )
}

pub(crate) fn attribute(
    ctx: &Context<'_>,
    selector: &SampleSelector,
) -> Result<Attribution, ReportError> {
    let table = ctx.table;
    let mut launcher = None;
    let mut launcher_note = None;
    let (roots, note) = match selector {
        SampleSelector::Everything => return Ok(Attribution::everything(table)),
        SampleSelector::RootGuid(text) => {
            let root = ProcessGuid::parse(text)
                .and_then(|g| table.find(&g))
                .ok_or_else(|| ReportError::SampleNotFound(selector.clone()))?;
            (vec![root], format!("sample chosen by --root-guid {text}"))
        }
        SampleSelector::Sha256(hash) => {
            let hash = hash.trim().to_ascii_lowercase();
            let roots = outermost(table, |i| {
                table.procs[i].sha256.as_deref() == Some(hash.as_str())
            });
            if roots.is_empty() {
                return Err(ReportError::SampleNotFound(selector.clone()));
            }
            (
                roots,
                format!("sample chosen by SHA-256 {hash} in the process-create Hashes"),
            )
        }
        SampleSelector::Image(fragment) => {
            let fragment = fragment.trim().to_ascii_lowercase();
            if fragment.is_empty() {
                return Err(ReportError::SampleNotFound(selector.clone()));
            }
            let by_image = outermost(table, |i| {
                table.procs[i]
                    .image
                    .as_deref()
                    .is_some_and(|img| img.to_ascii_lowercase().contains(&fragment))
            });
            let roots = if by_image.is_empty() {
                outermost(table, |i| {
                    table.procs[i]
                        .command_line
                        .as_deref()
                        .is_some_and(|c| c.to_ascii_lowercase().contains(&fragment))
                })
            } else {
                by_image
            };
            if roots.is_empty() {
                return Err(ReportError::SampleNotFound(selector.clone()));
            }
            (roots, format!("sample chosen by --sample {fragment:?}"))
        }
        SampleSelector::Auto => {
            let (root, why) =
                detect_root(ctx).ok_or(ReportError::SampleNotFound(SampleSelector::Auto))?;
            match launcher_burst(ctx, root) {
                Some(burst) => {
                    launcher = Some(burst.launcher);
                    launcher_note = Some(burst.note);
                    (burst.roots, why)
                }
                None => (vec![root], why),
            }
        }
    };
    let mut attribution = Attribution {
        everything: false,
        roots: roots.clone(),
        launcher,
        included: vec![None; table.procs.len()],
        extra_events: BTreeSet::new(),
        notes: [note].into_iter().chain(launcher_note).collect(),
    };
    for (n, &root) in roots.iter().enumerate() {
        attribution.included[root] = Some(0);
        if n >= MAX_ADOPTION_NOTES {
            continue;
        }
        let p = &table.procs[root];
        attribution.notes.push(format!(
            "root process: {} (pid {}, ProcessGuid {})",
            p.command_line
                .as_deref()
                .or(p.image.as_deref())
                .unwrap_or("?"),
            p.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            p.guid.as_ref().map(|g| g.as_str()).unwrap_or("?")
        ));
    }
    if roots.len() > MAX_ADOPTION_NOTES {
        attribution.notes.push(format!(
            "… and {} more root processes",
            roots.len() - MAX_ADOPTION_NOTES
        ));
    }
    grow(ctx, &mut attribution);
    Ok(attribution)
}

/// Matching processes that have no matching ancestor.
fn outermost(table: &ProcessTable, matches: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..table.procs.len()).filter(|&i| matches(i)).collect();
    order.sort_by_key(|&i| (table.procs[i].first_seen, i));
    order
        .iter()
        .copied()
        .filter(|&i| !table.ancestors(i).iter().skip(1).any(|&a| matches(a)))
        .collect()
}

/// A process that may be the sample: neither background, sandbox, Windows host nor baseline.
fn is_candidate(ctx: &Context<'_>, i: usize) -> bool {
    let p = &ctx.table.procs[i];
    ctx.classes[i] == ProcessClass::Normal
        && !p.image.as_deref().is_some_and(is_os_host)
        && !ctx.baseline_processes.contains(&baseline_process_key(
            p.image.as_deref(),
            p.command_line.as_deref(),
        ))
}

fn detect_root(ctx: &Context<'_>) -> Option<(usize, String)> {
    let table = ctx.table;
    let mut order: Vec<usize> = (0..table.procs.len()).collect();
    order.sort_by_key(|&i| (table.procs[i].first_seen, i));
    let candidate = |i: usize| is_candidate(ctx, i);
    let launched = |i: usize| table.procs[i].created.is_some() || !table.children[i].is_empty();
    let sample_looking = |i: usize| {
        let p = &table.procs[i];
        p.image.as_deref().is_some_and(is_sample_location)
            || p.command_line.as_deref().is_some_and(is_sample_location)
    };
    let describe = |i: usize, why: &str| {
        let p = &table.procs[i];
        format!(
            "sample detected automatically: {} (pid {}) — {why}",
            p.image.as_deref().unwrap_or("?"),
            p.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
        )
    };
    if let Some(&i) = order
        .iter()
        .find(|&&i| candidate(i) && launched(i) && sample_looking(i))
    {
        return Some((
            i,
            describe(
                i,
                "the first process started from a sample location (Downloads, Desktop, Documents, Temp, Public)",
            ),
        ));
    }
    if let Some(&i) = order.iter().find(|&&i| {
        candidate(i)
            && table.procs[i]
                .image
                .as_deref()
                .is_some_and(is_sample_location)
    }) {
        return Some((
            i,
            describe(
                i,
                "the first process whose image is in a sample location (its start was not logged)",
            ),
        ));
    }
    order
        .iter()
        .find(|&&i| candidate(i) && launched(i))
        .map(|&i| {
            (
                i,
                describe(
                    i,
                    "the earliest process that is neither background, sandbox nor baseline",
                ),
            )
        })
}

/// What a system launcher is, for the note, by the launcher's image and command line: the
/// Windows processes that start programs for a remote operator or a schedule, one after
/// another, each as a tree of its own.
fn system_launcher(proc: &Proc) -> Option<&'static str> {
    let name = basename_lower(proc.image.as_deref()?);
    match name.as_str() {
        "wmiprvse.exe" => Some("WMI's provider host"),
        "services.exe" => Some("the service control manager"),
        "taskeng.exe" | "taskhostw.exe" => Some("the task scheduler"),
        "wsmprovhost.exe" | "winrshost.exe" => Some("WinRM's remote shell host"),
        "svchost.exe" => {
            // The scheduler runs in `-k netsvcs` (alone before Windows 10, `-s Schedule` since).
            let command = command_key(proc.command_line.as_deref()?);
            let args: Vec<&str> = command.split(' ').collect();
            let service = args.windows(2).find(|w| w[0] == "-s").map(|w| w[1]);
            let group = args.windows(2).find(|w| w[0] == "-k").map(|w| w[1]);
            match (group, service) {
                (_, Some("schedule")) | (Some("netsvcs"), None) => Some("the task scheduler"),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Sibling trees one launcher started no more than this many seconds apart are one burst.
pub const LAUNCHER_BURST_SECONDS: i64 = 60;

/// The roots a system launcher's burst gives, and why.
struct LauncherBurst {
    launcher: usize,
    roots: Vec<usize>,
    note: String,
}

/// When no sample is named and no sandbox agent ran, a root that a system launcher started
/// reads as remote or scheduled execution (lateral movement): the operator's commands arrive
/// as sibling trees of that launcher, one after another. The launcher's candidate children
/// started in one burst with the root (each within [`LAUNCHER_BURST_SECONDS`] of the previous)
/// are the roots, in start order.
fn launcher_burst(ctx: &Context<'_>, root: usize) -> Option<LauncherBurst> {
    let table = ctx.table;
    if ctx.classes.contains(&ProcessClass::Agent) {
        return None;
    }
    table.procs[root].created?;
    let launcher = table.procs[root].parent?;
    let kind = system_launcher(&table.procs[launcher])?;
    let mut siblings: Vec<(i64, usize, usize)> = table.children[launcher]
        .iter()
        .filter(|&&c| is_candidate(ctx, c))
        .filter_map(|&c| {
            let created = table.procs[c].created?;
            Some((crate::logged_second(&ctx.events[created]), created, c))
        })
        .collect();
    siblings.sort_unstable();
    let at = siblings.iter().position(|&(_, _, c)| c == root)?;
    let mut first = at;
    while first > 0 && siblings[first].0 - siblings[first - 1].0 <= LAUNCHER_BURST_SECONDS {
        first -= 1;
    }
    let mut last = at;
    while last + 1 < siblings.len()
        && siblings[last + 1].0 - siblings[last].0 <= LAUNCHER_BURST_SECONDS
    {
        last += 1;
    }
    let roots: Vec<usize> = siblings[first..=last].iter().map(|&(_, _, c)| c).collect();
    let pid = |i: usize| {
        table.procs[i]
            .pid
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into())
    };
    let mut note = format!(
        "no sample named and no sandbox agent in the log: the root was started by {} (pid {}), {kind}, so the log is read as remote or scheduled execution; ",
        table.procs[launcher].image.as_deref().unwrap_or("?"),
        pid(launcher),
    );
    if roots.len() == 1 {
        note.push_str(&format!(
            "no other tree of it started within {LAUNCHER_BURST_SECONDS} s, so its one tree is reported"
        ));
    } else {
        let mut pids: Vec<String> = roots
            .iter()
            .take(MAX_ADOPTION_NOTES)
            .map(|&r| pid(r))
            .collect();
        if roots.len() > MAX_ADOPTION_NOTES {
            pids.push("…".into());
        }
        note.push_str(&format!(
            "its {} trees started no more than {LAUNCHER_BURST_SECONDS} s apart are reported together (pids {})",
            roots.len(),
            pids.join(", ")
        ));
    }
    let left_out = siblings.len() - roots.len();
    if left_out > 0 {
        note.push_str(&format!(
            "; {left_out} other tree(s) it started outside that burst are left out"
        ));
    }
    Some(LauncherBurst {
        launcher,
        roots,
        note,
    })
}

/// What the attributed processes asked Windows to do, gathered for adoption.
#[derive(Default)]
struct Evidence {
    written: HashSet<String>,
    root_images: HashSet<String>,
    services: HashSet<String>,
    service_images: HashSet<String>,
    /// (service name, event index of the start command)
    started: Vec<(String, usize)>,
    tasks: HashSet<String>,
    task_commands: Vec<String>,
    bits_destinations: Vec<String>,
    wmi_commands: Vec<String>,
}

fn grow(ctx: &Context<'_>, attribution: &mut Attribution) {
    let table = ctx.table;
    let events = ctx.events;
    let injections: Vec<(usize, usize, usize)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.event_id == event_id::CREATE_REMOTE_THREAD
                || (e.event_id == event_id::PROCESS_ACCESS
                    && e.granted_access()
                        .is_some_and(|a| a & INJECTION_RIGHTS != 0))
        })
        .filter_map(|(i, e)| {
            let source = table.actor(i)?;
            let target = table.find(&e.target_process_guid()?)?;
            Some((i, source, target))
        })
        .collect();
    let first_root_event = attribution
        .roots
        .iter()
        .map(|&r| table.procs[r].first_seen)
        .min()
        .unwrap_or(0);
    let mut adoption_notes = 0usize;
    for _round in 0..32 {
        let before = (
            attribution.included.iter().filter(|i| i.is_some()).count(),
            attribution.extra_events.len(),
        );
        // Children and injection targets, to a fixed point.
        let mut work: Vec<usize> = (0..table.procs.len())
            .filter(|&i| attribution.included[i].is_some())
            .collect();
        loop {
            while let Some(p) = work.pop() {
                let from = attribution.included[p].unwrap_or(0);
                for &c in &table.children[p] {
                    if table.procs[c]
                        .created
                        .is_some_and(|created| created >= from)
                        && include(ctx, attribution, c, 0)
                    {
                        work.push(c);
                    }
                }
            }
            for &(i, source, target) in &injections {
                if attribution.included[source].is_some_and(|from| from <= i)
                    && include(ctx, attribution, target, i)
                {
                    work.push(target);
                }
            }
            if work.is_empty() {
                break;
            }
        }
        let evidence = gather(ctx, attribution);
        // Processes Windows started for the sample.
        for i in 0..table.procs.len() {
            if attribution.included[i].is_some() || ctx.classes[i] == ProcessClass::Noise {
                continue;
            }
            if let Some(reason) = adoption_reason(ctx, &evidence, i)
                && include(ctx, attribution, i, 0)
            {
                if adoption_notes < MAX_ADOPTION_NOTES {
                    let p = &table.procs[i];
                    attribution.notes.push(format!(
                        "adopted {} (pid {}): {reason}",
                        p.image.as_deref().unwrap_or("?"),
                        p.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
                    ));
                }
                adoption_notes += 1;
            }
        }
        // Events done on the sample's behalf.
        for (i, event) in events.iter().enumerate() {
            if attribution.extra_events.contains(&i) || attribution.event_attributed(i, table) {
                continue;
            }
            if on_behalf(event, &evidence, i >= first_root_event) {
                attribution.extra_events.insert(i);
            }
        }
        let after = (
            attribution.included.iter().filter(|i| i.is_some()).count(),
            attribution.extra_events.len(),
        );
        if after == before {
            break;
        }
    }
    if adoption_notes > MAX_ADOPTION_NOTES {
        attribution.notes.push(format!(
            "… and {} more adopted processes",
            adoption_notes - MAX_ADOPTION_NOTES
        ));
    }
}

/// Mark `proc` as the sample's from event `from` on; true when that changed anything.
fn include(ctx: &Context<'_>, attribution: &mut Attribution, proc: usize, from: usize) -> bool {
    if ctx.classes[proc] != ProcessClass::Normal {
        return false;
    }
    match attribution.included[proc] {
        Some(existing) if existing <= from => false,
        _ => {
            attribution.included[proc] = Some(from);
            true
        }
    }
}

fn gather(ctx: &Context<'_>, attribution: &Attribution) -> Evidence {
    let table = ctx.table;
    let mut evidence = Evidence::default();
    for &root in &attribution.roots {
        if let Some(image) = table.procs[root].image.as_deref() {
            let key = compare_key(image);
            if !key.starts_with("%windir%") {
                evidence.root_images.insert(key);
            }
        }
    }
    for (p, proc) in table.procs.iter().enumerate() {
        let Some(from) = attribution.included[p] else {
            continue;
        };
        if let Some(command) = proc.command_line.as_deref()
            && proc.created.is_some_and(|c| c >= from)
        {
            let args = commands::split_args(command);
            let at = proc.created.unwrap_or(from);
            match commands::parse_service_action(&args) {
                Some(ServiceAction::Create { name, image }) => {
                    evidence.services.insert(name.to_ascii_lowercase());
                    if let Some(image) = image {
                        evidence
                            .service_images
                            .insert(compare_key(&image_of_command(&image)));
                    }
                }
                Some(ServiceAction::Reconfigure { name, image }) => {
                    evidence.services.insert(name.to_ascii_lowercase());
                    evidence
                        .service_images
                        .insert(compare_key(&image_of_command(&image)));
                }
                Some(ServiceAction::Start { name }) => {
                    evidence.started.push((name.to_ascii_lowercase(), at));
                }
                _ => {}
            }
            if let Some(task) = commands::parse_schtasks_create(&args) {
                evidence.tasks.insert(task_key(&task.name));
                if let Some(command) = task.command {
                    evidence.task_commands.push(command_key(&command));
                }
            }
            if let Some(destination) = commands::parse_bits_destination(&args) {
                evidence.bits_destinations.push(compare_key(&destination));
            }
        }
        for &i in &table.events_of[p] {
            if i < from {
                continue;
            }
            let event = &ctx.events[i];
            match event.event_id {
                event_id::FILE_CREATE
                | event_id::FILE_CREATE_STREAM_HASH
                | event_id::FILE_EXECUTABLE_DETECTED => {
                    if let Some(target) = event.target_filename() {
                        evidence.written.insert(compare_key(target));
                    }
                }
                event_id::REGISTRY_SET_VALUE => {
                    if let Some((name, value)) = service_value(event)
                        && value.eq_ignore_ascii_case("imagepath")
                    {
                        evidence.services.insert(name);
                        if let Some(details) = event.details() {
                            evidence
                                .service_images
                                .insert(compare_key(&image_of_command(details)));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // ImagePath values services.exe wrote that point at the sample's files.
    for event in ctx.events {
        if event.event_id == event_id::REGISTRY_SET_VALUE
            && let Some((name, value)) = service_value(event)
            && value.eq_ignore_ascii_case("imagepath")
            && let Some(details) = event.details()
        {
            let image = compare_key(&image_of_command(details));
            if evidence.written.contains(&image) || evidence.root_images.contains(&image) {
                evidence.services.insert(name);
                evidence.service_images.insert(image);
            }
        }
    }
    // A service the operator registered remotely: services.exe writes its ImagePath and runs
    // it as one of the roots, and no command line of the log names it.
    if let Some(launcher) = attribution.launcher
        && table.procs[launcher]
            .image
            .as_deref()
            .is_some_and(|i| basename_lower(i) == "services.exe")
    {
        let launched: Vec<(Option<String>, String)> = attribution
            .roots
            .iter()
            .filter_map(|&r| {
                let p = &table.procs[r];
                Some((p.image.as_deref().map(compare_key), p.command_line.clone()?))
            })
            .collect();
        for event in ctx.events {
            if event.event_id == event_id::REGISTRY_SET_VALUE
                && let Some((name, value)) = service_value(event)
                && value.eq_ignore_ascii_case("imagepath")
                && let Some(details) = event.details()
                && launched
                    .iter()
                    .any(|(image, command)| runs_service(details, image.as_deref(), command))
            {
                evidence.services.insert(name);
            }
        }
    }
    if !attribution.roots.is_empty() {
        let start = attribution
            .roots
            .iter()
            .map(|&r| table.procs[r].first_seen)
            .min()
            .unwrap_or(0);
        for event in &ctx.events[start..] {
            if event.event_id == event_id::WMI_CONSUMER
                && let Some(destination) = event.value("Destination")
            {
                evidence.wmi_commands.push(command_key(destination));
            }
        }
    }
    evidence
}

/// Whether a process with this image and command line is what a service `ImagePath` runs: the
/// same arguments after the program, and the same program unless those arguments alone tell
/// (`%COMSPEC% /b /c …` runs as `C:\Windows\system32\cmd.exe /b /c …`).
fn runs_service(image_path: &str, image_key: Option<&str>, command: &str) -> bool {
    let image_path = image_path.replace("%%", "%");
    let tail = |line: &str| {
        command_key(line)
            .split_once(' ')
            .map(|(_, t)| t.to_string())
    };
    let (service_tail, process_tail) = (tail(&image_path), tail(command));
    if service_tail.is_some() && service_tail == process_tail {
        return true;
    }
    service_tail == process_tail
        && image_key.is_some_and(|k| k == compare_key(&image_of_command(&image_path)))
}

fn adoption_reason(ctx: &Context<'_>, evidence: &Evidence, i: usize) -> Option<String> {
    let table = ctx.table;
    let proc = &table.procs[i];
    let image_key = proc.image.as_deref().map(compare_key);
    if let Some(key) = &image_key {
        if evidence.written.contains(key) {
            return Some("runs a file the sample wrote".into());
        }
        if evidence.root_images.contains(key) {
            return Some("runs the sample's own image again".into());
        }
    }
    let parent_name = proc
        .parent
        .and_then(|p| table.procs[p].image.as_deref())
        .or(proc.parent_image.as_deref())
        .map(basename_lower)
        .unwrap_or_default();
    let command = proc
        .command_line
        .as_deref()
        .map(command_key)
        .unwrap_or_default();
    match parent_name.as_str() {
        "services.exe" => {
            if image_key
                .as_ref()
                .is_some_and(|k| evidence.service_images.contains(k))
            {
                return Some("services.exe started the service the sample registered".into());
            }
            for name in evidence
                .services
                .iter()
                .chain(evidence.started.iter().map(|(n, _)| n))
            {
                if command.contains(&format!("-s {name}")) {
                    return Some(format!(
                        "host of service {name}, which the sample registered or started"
                    ));
                }
            }
            if let Some(created) = proc.created {
                let created_at = crate::logged_second(&ctx.events[created]);
                for (name, at) in &evidence.started {
                    let delay = created_at - crate::logged_second(&ctx.events[*at]);
                    if created > *at
                        && (0..=SERVICE_START_WINDOW_SECONDS).contains(&delay)
                        && command.contains("svchost.exe -k")
                        && !command.contains(" -s ")
                    {
                        return Some(format!(
                            "shared service host started right after the sample started {name}"
                        ));
                    }
                }
            }
            None
        }
        "svchost.exe" | "taskeng.exe" | "taskhostw.exe" => evidence
            .task_commands
            .iter()
            .any(|t| !t.is_empty() && command.ends_with(t.as_str()))
            .then(|| "the task scheduler ran a task the sample registered".into()),
        "wmiprvse.exe" | "scrcons.exe" => evidence
            .wmi_commands
            .iter()
            .any(|t| !t.is_empty() && command.ends_with(t.as_str()))
            .then(|| "WMI ran a consumer registered after the sample started".into()),
        _ => None,
    }
}

fn on_behalf(event: &SysmonEvent, evidence: &Evidence, after_sample_start: bool) -> bool {
    match event.event_id {
        event_id::REGISTRY_ADD_DELETE
        | event_id::REGISTRY_SET_VALUE
        | event_id::REGISTRY_RENAME => {
            let Some(target) = event.target_object() else {
                return false;
            };
            if let Some((name, _)) = service_value(event)
                && evidence.services.contains(&name)
            {
                return true;
            }
            let lower = target.to_ascii_lowercase();
            lower
                .split_once(r"\schedule\taskcache\tree\")
                .is_some_and(|(_, rest)| evidence.tasks.contains(&task_key(rest)))
        }
        event_id::FILE_CREATE | event_id::FILE_CREATE_STREAM_HASH => {
            let Some(target) = event.target_filename() else {
                return false;
            };
            let lower = target.to_ascii_lowercase();
            if let Some((_, rest)) = lower.split_once(r"\system32\tasks\")
                && evidence.tasks.contains(&task_key(rest))
            {
                return true;
            }
            let key = compare_key(target);
            evidence.bits_destinations.iter().any(|d| {
                *d == key
                    || d.rsplit_once('\\').zip(key.rsplit_once('\\')).is_some_and(
                        |((dd, _), (kd, kn))| {
                            dd == kd && kn.starts_with("bit") && kn.ends_with(".tmp")
                        },
                    )
            })
        }
        event_id::WMI_FILTER | event_id::WMI_CONSUMER | event_id::WMI_BINDING => after_sample_start,
        _ => false,
    }
}

/// A task name as compared: lower case, no leading backslash, no trailing value name.
fn task_key(name: &str) -> String {
    name.trim().trim_start_matches('\\').to_ascii_lowercase()
}

/// `…\Services\<name>\<value>` → (name lower-case, value).
pub(crate) fn service_value(event: &SysmonEvent) -> Option<(String, String)> {
    let target = event.target_object()?;
    let lower = target.to_ascii_lowercase();
    let pos = lower.find(r"\services\")?;
    if !lower[..pos].ends_with("controlset") && !lower[..pos].contains("controlset0") {
        return None;
    }
    let rest = &target[pos + r"\services\".len()..];
    let (name, value) = rest.split_once('\\').unwrap_or((rest, ""));
    Some((name.to_ascii_lowercase(), value.to_string()))
}
