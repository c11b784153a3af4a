//! The terminal report an analyst reads top to bottom: summary, process tree with command lines,
//! network, files, registry, services and tasks, then the rest.
//!
//! Output always carries ANSI styles; print it through `anstream`, which removes them when the
//! output is not a terminal. Control characters in logged values are escaped (`\u{1b}`), so a
//! hostile command line cannot drive the terminal.

use crate::BuiltReport;
use anstyle::{AnsiColor, Style};
use sandscope_model::ProcessNode;
use std::borrow::Cow;
use std::fmt::Write;

const HEADING: Style = Style::new().bold().underline();
const LABEL: Style = Style::new().bold();
const PID: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));
const DIM: Style = Style::new().dimmed();
const VALUE: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));

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

/// Render a report for a terminal.
pub fn render_text(report: &BuiltReport) -> String {
    let mut out = String::new();
    let a = &report.behaviour.attributes;
    let _ = writeln!(
        out,
        "{HEADING}Behaviour report{HEADING:#} {}",
        escape_control(&report.behaviour.id)
    );
    if let Some(date) = a
        .analysis_date
        .and_then(|d| jiff::Timestamp::from_second(d).ok())
    {
        let _ = writeln!(out, "{LABEL}analysis date{LABEL:#} {date}");
    }
    if let Some(behash) = &a.behash {
        let _ = writeln!(out, "{LABEL}behash{LABEL:#} {behash}");
    }
    if !a.tags.is_empty() {
        let _ = writeln!(out, "{LABEL}tags{LABEL:#} {}", a.tags.join(", "));
    }
    for note in &report.notes {
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
            let _ = write!(line, " → {VALUE}{}{VALUE:#}", d.resolved_ips.join(", "));
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
    if a.dns_lookups.is_empty() && a.ip_traffic.is_empty() {
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
                .map(|t| format!("  {DIM}{t}{DIM:#}"))
                .unwrap_or_default(),
            f.sha256
                .as_deref()
                .map(|h| format!("  sha256 {h}"))
                .unwrap_or_default()
        );
    }
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
                .map(|t| format!(" {DIM}({t} start){DIM:#}"))
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
            w.kind,
            escape_control(&w.name),
            escape_control(w.detail.as_deref().unwrap_or(""))
        );
    }
    list(&mut out, "named pipes", &a.named_pipes);

    section(&mut out, "Other");
    list(&mut out, "modules loaded", &a.modules_loaded);
    list(&mut out, "terminated", &a.processes_terminated);
    out
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
