//! The terminal report an analyst reads top to bottom: summary, process tree with command lines,
//! network, files, registry, services and tasks, the rest of what was seen, then the Sigma hits
//! (most severe first, with the fields of the events they matched), sandbox signatures and the
//! ATT&CK techniques.
//! A section with nothing in it says so in one line; the catch-all section is left out.
//!
//! Output always carries ANSI styles; print it through `anstream`, which removes them when the
//! output is not a terminal. Control characters in logged values are escaped (`\u{1b}`), so a
//! hostile command line cannot drive the terminal.

use crate::BuiltReport;
use anstyle::{AnsiColor, Style};
use sandscope_model::{
    FileBehaviour, MatchContext, MitreAttackTechnique, ProcessNode, SigmaAnalysisResult,
    technique_tactics,
};
use std::borrow::Cow;
use std::fmt::Write;

const HEADING: Style = Style::new().bold().underline();
const LABEL: Style = Style::new().bold();
const PID: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));
const DIM: Style = Style::new().dimmed();
const VALUE: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
const SEVERE: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
const MODERATE: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Magenta)));

/// Matched events quoted per Sigma rule; the rest are counted.
pub const QUOTED_EVENTS_PER_RULE: usize = 3;

/// Escape control characters (and nothing else: non-ASCII text stays readable).
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Render a freshly built report, with the builder's notes, for a terminal.
pub fn render_text(report: &BuiltReport) -> String {
    render_behaviour(&report.behaviour, &report.notes)
}

/// Render any `file_behaviour` (a stored one has no notes) for a terminal.
pub fn render_behaviour(behaviour: &FileBehaviour, notes: &[String]) -> String {
    let mut out = String::new();
    let a = &behaviour.attributes;
    let _ = writeln!(
        out,
        "{HEADING}Behaviour report{HEADING:#} {}",
        escape_control(&behaviour.id)
    );
    if let Some(date) = a
        .analysis_date
        .and_then(|d| jiff::Timestamp::from_second(d).ok())
    {
        let _ = writeln!(out, "{LABEL}analysis date{LABEL:#} {date}");
    }
    if let Some(behash) = &a.behash {
        let _ = writeln!(out, "{LABEL}behash{LABEL:#} {}", escape_control(behash));
    }
    if !a.tags.is_empty() {
        let _ = writeln!(
            out,
            "{LABEL}tags{LABEL:#} {}",
            escape_control(&a.tags.join(", "))
        );
    }
    if !a.verdicts.is_empty() {
        let _ = writeln!(
            out,
            "{LABEL}verdicts{LABEL:#} {}",
            escape_control(&a.verdicts.join(", "))
        );
    }
    for note in notes {
        let _ = writeln!(out, "{DIM}• {}{DIM:#}", escape_control(note));
    }

    section(&mut out, "Process tree");
    if a.processes_tree.is_empty() {
        let _ = writeln!(out, "  {DIM}(no processes){DIM:#}");
    }
    for (n, root) in a.processes_tree.iter().enumerate() {
        draw(&mut out, root, "", n + 1 == a.processes_tree.len());
    }
    list(&mut out, "injected into", &a.processes_injected);

    section(&mut out, "Network");
    for d in &a.dns_lookups {
        let mut line = format!("  DNS  {}", escape_control(&d.hostname));
        if !d.resolved_ips.is_empty() {
            let _ = write!(
                line,
                " → {VALUE}{}{VALUE:#}",
                escape_control(&d.resolved_ips.join(", "))
            );
        }
        if !d.cnames.is_empty() {
            let _ = write!(
                line,
                " {DIM}(via {}){DIM:#}",
                escape_control(&d.cnames.join(", "))
            );
        }
        out.push_str(&line);
        out.push('\n');
    }
    for t in &a.ip_traffic {
        let _ = writeln!(
            out,
            "  {}  {}:{}",
            escape_control(t.transport_layer_protocol.as_deref().unwrap_or("?")),
            escape_control(&t.destination_ip),
            t.destination_port
                .map(|p| p.to_string())
                .unwrap_or_default()
        );
    }
    for h in &a.http_conversations {
        let _ = writeln!(
            out,
            "  HTTP {} {}{}",
            escape_control(h.request_method.as_deref().unwrap_or("?")),
            escape_control(&h.url),
            h.response_status_code
                .map(|c| format!(" → {VALUE}{c}{VALUE:#}"))
                .unwrap_or_default()
        );
    }
    if a.dns_lookups.is_empty() && a.ip_traffic.is_empty() && a.http_conversations.is_empty() {
        let _ = writeln!(out, "  {DIM}(none seen){DIM:#}");
    }

    section(&mut out, "Files");
    for f in &a.files_dropped {
        let _ = writeln!(
            out,
            "  {LABEL}dropped{LABEL:#}  {}{}{}",
            escape_control(&f.path),
            f.file_type
                .as_deref()
                .map(|t| format!("  {DIM}{}{DIM:#}", escape_control(t)))
                .unwrap_or_default(),
            f.sha256
                .as_deref()
                .map(|h| format!("  sha256 {}", escape_control(h)))
                .unwrap_or_default()
        );
    }
    for c in &a.files_copied {
        let _ = writeln!(
            out,
            "  {LABEL}copied{LABEL:#}   {} → {}",
            escape_control(&c.source),
            escape_control(&c.destination)
        );
    }
    if let Some(hosts) = &a.hosts_file {
        let _ = writeln!(
            out,
            "  {LABEL}hosts file{LABEL:#} {}",
            escape_control(hosts)
        );
    }
    list(&mut out, "written", &a.files_written);
    list(&mut out, "deleted", &a.files_deleted);
    list(&mut out, "times changed", &a.files_attribute_changed);
    list(&mut out, "opened", &a.files_opened);

    section(&mut out, "Registry");
    for r in &a.registry_keys_set {
        let _ = writeln!(
            out,
            "  {LABEL}set{LABEL:#}      {} = {VALUE}{}{VALUE:#}",
            escape_control(&r.key),
            escape_control(r.value.as_deref().unwrap_or(""))
        );
    }
    list(&mut out, "deleted", &a.registry_keys_deleted);
    list(&mut out, "opened", &a.registry_keys_opened);

    section(&mut out, "Services and tasks");
    for s in &a.service_details {
        let _ = writeln!(
            out,
            "  {LABEL}service{LABEL:#}  {}{}{}",
            escape_control(&s.name),
            s.image_path
                .as_deref()
                .map(|i| format!(" → {VALUE}{}{VALUE:#}", escape_control(i)))
                .unwrap_or_default(),
            s.start_type
                .as_deref()
                .map(|t| format!(" {DIM}({} start){DIM:#}", escape_control(t)))
                .unwrap_or_default()
        );
    }
    list(&mut out, "services created", &a.services_created);
    list(&mut out, "services started", &a.services_started);
    list(&mut out, "services stopped", &a.services_stopped);
    list(&mut out, "services opened", &a.services_opened);
    list(&mut out, "services deleted", &a.services_deleted);
    for t in &a.scheduled_tasks_created {
        let mut line = format!("  {LABEL}task{LABEL:#}     {}", escape_control(&t.name));
        if let Some(trigger) = &t.trigger {
            let _ = write!(line, " {DIM}({}){DIM:#}", escape_control(trigger));
        }
        if let Some(command) = &t.command {
            let _ = write!(line, " → {VALUE}{}{VALUE:#}", escape_control(command));
        }
        if let Some(xml) = &t.xml_file {
            let _ = write!(line, " {DIM}defined in{DIM:#} {}", escape_control(xml));
        }
        out.push_str(&line);
        out.push('\n');
    }
    for w in &a.wmi_subscriptions {
        let _ = writeln!(
            out,
            "  {LABEL}WMI {}{LABEL:#} {} {}",
            escape_control(&w.kind),
            escape_control(&w.name),
            escape_control(w.detail.as_deref().unwrap_or(""))
        );
    }
    list(&mut out, "named pipes", &a.named_pipes);

    let other: [(&str, &[String]); 6] = [
        ("mutexes created", &a.mutexes_created),
        ("mutexes opened", &a.mutexes_opened),
        ("modules loaded", &a.modules_loaded),
        ("calls highlighted", &a.calls_highlighted),
        ("terminated", &a.processes_terminated),
        ("killed", &a.processes_killed),
    ];
    if other.iter().any(|(_, items)| !items.is_empty()) {
        section(&mut out, "Other");
        for (label, items) in other {
            list(&mut out, label, items);
        }
    }

    section(&mut out, "Sigma rules");
    match &a.sigma_analysis_stats {
        Some(stats) if !a.sigma_analysis_results.is_empty() => {
            let _ = writeln!(
                out,
                "  {DIM}rules matched: {} critical, {} high, {} medium, {} low{DIM:#}",
                stats.critical, stats.high, stats.medium, stats.low
            );
        }
        Some(_) => {
            let _ = writeln!(out, "  {DIM}(no rule matched){DIM:#}");
        }
        None if a.sigma_analysis_results.is_empty() => {
            let _ = writeln!(out, "  {DIM}(Sigma was not run){DIM:#}");
        }
        None => {}
    }
    sigma(&mut out, &a.sigma_analysis_results);

    if !a.signature_matches.is_empty() {
        section(&mut out, "Signatures");
        for m in &a.signature_matches {
            let severity = m
                .severity
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches("IMPACT_SEVERITY_")
                .to_ascii_lowercase();
            let style = level_style(&severity);
            let _ = writeln!(
                out,
                "  {style}{:<13}{style:#} {LABEL}{}{LABEL:#} {}",
                escape_control(&severity.to_ascii_uppercase()),
                escape_control(m.name.as_deref().unwrap_or("?")),
                escape_control(&m.description)
            );
            for data in m.match_data.iter().take(QUOTED_EVENTS_PER_RULE) {
                let _ = writeln!(out, "      {}", escape_control(data));
            }
        }
    }

    section(&mut out, "ATT&CK techniques");
    attack(&mut out, &a.mitre_attack_techniques);
    out
}

/// Sigma levels from most to least severe; unknown levels last.
fn level_rank(level: &str) -> u8 {
    match level.to_ascii_lowercase().as_str() {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        "low" => 3,
        "informational" => 4,
        _ => 5,
    }
}

fn level_style(level: &str) -> Style {
    match level_rank(level) {
        0 | 1 => SEVERE,
        2 => MODERATE,
        _ => DIM,
    }
}

fn sigma(out: &mut String, results: &[SigmaAnalysisResult]) {
    let mut ordered: Vec<&SigmaAnalysisResult> = results.iter().collect();
    ordered.sort_by_key(|r| level_rank(&r.rule_level));
    for rule in ordered {
        let style = level_style(&rule.rule_level);
        let events = rule.match_context.len();
        let _ = writeln!(
            out,
            "  {style}{:<13}{style:#} {LABEL}{}{LABEL:#} {DIM}({} event{}){DIM:#}",
            escape_control(&rule.rule_level.to_ascii_uppercase()),
            escape_control(&rule.rule_title),
            events,
            if events == 1 { "" } else { "s" }
        );
        let mut quoted = rule.match_context.iter().take(QUOTED_EVENTS_PER_RULE);
        if let Some(first) = quoted.next() {
            matched_event(out, first, None);
            for context in quoted {
                matched_event(out, context, Some(first));
            }
        }
        if events > QUOTED_EVENTS_PER_RULE {
            let _ = writeln!(
                out,
                "      {DIM}… {} more matched event(s){DIM:#}",
                events - QUOTED_EVENTS_PER_RULE
            );
        }
    }
}

/// One matched event: its Sysmon id, then each field that says what happened (identifiers,
/// timestamps and empty values left out; the JSON report has them all). After the first event
/// of a rule, only the fields whose values differ from it.
fn matched_event(out: &mut String, context: &MatchContext, first: Option<&MatchContext>) {
    let event_id = context.values.get("EventID").map(String::as_str);
    let _ = writeln!(
        out,
        "    {DIM}Sysmon event {}{}{DIM:#}",
        escape_control(event_id.unwrap_or("?")),
        if first.is_some() {
            ", other fields as above"
        } else {
            ""
        }
    );
    for (name, value) in &context.values {
        if is_bookkeeping_field(name)
            || value.is_empty()
            || value == "-"
            || first.is_some_and(|f| f.values.get(name) == Some(value))
        {
            continue;
        }
        let _ = writeln!(
            out,
            "      {LABEL}{}{LABEL:#} {VALUE}{}{VALUE:#}",
            escape_control(name),
            escape_control(value)
        );
    }
}

/// Fields that identify an event or process rather than tell what it did.
fn is_bookkeeping_field(name: &str) -> bool {
    name == "EventID"
        || name == "RuleName"
        || name.ends_with("Guid")
        || name.ends_with("GUID")
        || name.ends_with("Id")
        || name.ends_with("ID")
        || name.ends_with("UtcTime")
}

fn attack(out: &mut String, techniques: &[MitreAttackTechnique]) {
    if techniques.is_empty() {
        let _ = writeln!(out, "  {DIM}(none){DIM:#}");
        return;
    }
    for technique in techniques {
        let severity = technique
            .severity
            .trim_start_matches("IMPACT_SEVERITY_")
            .to_ascii_lowercase();
        let tactics = technique_tactics(&technique.id);
        let mut line = format!(
            "  {LABEL}{:<10}{LABEL:#} {}",
            escape_control(&technique.id),
            escape_control(&technique.signature_description)
        );
        if !severity.is_empty() {
            let style = level_style(&severity);
            let _ = write!(line, " {style}[{}]{style:#}", escape_control(&severity));
        }
        if !tactics.is_empty() {
            let _ = write!(line, " {DIM}tactics: {}{DIM:#}", tactics.join(", "));
        }
        out.push_str(&line);
        out.push('\n');
        for r in &technique.refs {
            let _ = writeln!(
                out,
                "      {DIM}{}{DIM:#} {}",
                escape_control(&r.reference),
                escape_control(&r.value)
            );
        }
    }
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{HEADING}{title}{HEADING:#}");
}

fn list(out: &mut String, label: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {LABEL}{label}{LABEL:#}");
    for item in items {
        let _ = writeln!(out, "    {}", escape_control(item));
    }
}

fn draw(out: &mut String, node: &ProcessNode, prefix: &str, last: bool) {
    let branch = if last { "└─ " } else { "├─ " };
    let offset = node
        .time_offset
        .map(|t| format!(" {DIM}+{t}s{DIM:#}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{prefix}{branch}{PID}{}{PID:#} {}{offset}",
        escape_control(&node.process_id),
        escape_control(&node.name)
    );
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    for (n, child) in node.children.iter().enumerate() {
        draw(out, child, &child_prefix, n + 1 == node.children.len());
    }
}
