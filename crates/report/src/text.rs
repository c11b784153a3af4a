//! The terminal report an analyst reads top to bottom, in the sections of the model's attribute
//! table: the report's facts, processes (the tree with command lines), network, files,
//! registry, services and tasks, the rest of what was seen, then the Sigma hits (most severe
//! first, with the fields of the events they matched), sandbox signatures and the ATT&CK
//! techniques. Attributes with a line format of their own use it; any other is listed under
//! its label, so an attribute added to the table is shown without a change here.
//! A section with nothing in it says so in one line; the catch-all sections (other,
//! signatures) are left out.
//!
//! Output always carries ANSI styles; print it through `anstream`, which removes them when the
//! output is not a terminal. Control characters in logged values are escaped (`\u{1b}`), so a
//! hostile command line cannot drive the terminal.

use crate::BuiltReport;
use anstyle::{AnsiColor, Style};
use sandscope_model::{
    Attribute, AttributeKind, BehaviourAttributes, FileBehaviour, MatchContext,
    MitreAttackTechnique, ProcessNode, Section, SigmaAnalysisResult, SignatureMatch,
    technique_tactics, value_text,
};
use serde_json::Value;
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

/// Render any `file_behaviour` (a stored one has no notes) for a terminal: the report's facts,
/// then each section of the attribute table with the attributes that have a value.
pub fn render_behaviour(behaviour: &FileBehaviour, notes: &[String]) -> String {
    let mut out = String::new();
    let a = &behaviour.attributes;
    // The attributes as served: which are present, and the generic fields of those without a
    // line format of their own. Serialising plain data cannot fail; an empty object shows
    // nothing.
    let json = serde_json::to_value(a).unwrap_or_default();
    let present = |attribute: &&Attribute| json.get(attribute.name).is_some();
    let _ = writeln!(
        out,
        "{HEADING}Behaviour report{HEADING:#} {}",
        escape_control(&behaviour.id)
    );
    for attribute in Section::Report.attributes().filter(present) {
        let value = &json[attribute.name];
        let value = match (attribute.kind, value.as_i64()) {
            (AttributeKind::Date, Some(date)) => jiff::Timestamp::from_second(date)
                .map(|d| d.to_string())
                .unwrap_or_else(|_| date.to_string()),
            _ => value_text(value),
        };
        let _ = writeln!(
            out,
            "{LABEL}{}{LABEL:#} {}",
            inline_label(attribute),
            escape_control(&value)
        );
    }
    for note in notes {
        let _ = writeln!(out, "{DIM}• {}{DIM:#}", escape_control(note));
    }

    for section in Section::SHOWN.into_iter().filter(|s| *s != Section::Report) {
        let shown: Vec<&Attribute> = section.attributes().filter(present).collect();
        if section == Section::Sigma {
            heading(&mut out, section.title());
            sigma_section(&mut out, a);
            continue;
        }
        // The catch-all sections are left out when empty; the others say so.
        if shown.is_empty() && matches!(section, Section::Other | Section::Signatures) {
            continue;
        }
        heading(&mut out, section.title());
        if shown.is_empty() {
            let _ = writeln!(out, "  {DIM}(none seen){DIM:#}");
        }
        for attribute in shown {
            if !own_format(&mut out, attribute.name, a) {
                generic(&mut out, attribute, &json[attribute.name]);
            }
        }
    }
    out
}

/// A label inside a section, in the terminal's lower case (`files written`).
fn inline_label(attribute: &Attribute) -> String {
    let mut chars = attribute.label.chars();
    chars
        .next()
        .map(|first| first.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// An attribute with no line format of its own: a titled list, records by their columns.
fn generic(out: &mut String, attribute: &Attribute, value: &Value) {
    let label = &inline_label(attribute);
    match attribute.kind {
        AttributeKind::Strings => {
            let items: Vec<String> = value
                .as_array()
                .into_iter()
                .flatten()
                .map(value_text)
                .collect();
            list(out, label, &items);
        }
        AttributeKind::Records | AttributeKind::Counts => {
            let records: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            let _ = writeln!(out, "  {LABEL}{label}{LABEL:#}");
            for record in records {
                let fields: Vec<String> = attribute
                    .columns
                    .iter()
                    .filter_map(|c| {
                        let text = value_text(&record[c.key]);
                        (!text.is_empty()).then(|| format!("{} {}", c.label, text))
                    })
                    .collect();
                let _ = writeln!(out, "    {}", escape_control(&fields.join("  ")));
            }
        }
        AttributeKind::Text | AttributeKind::Date | AttributeKind::Number => {
            let _ = writeln!(
                out,
                "  {LABEL}{label}{LABEL:#} {}",
                escape_control(&value_text(value))
            );
        }
        AttributeKind::Tree | AttributeKind::Flag | AttributeKind::Map => {}
    }
}

/// The attributes read best in a line format of their own; false for the others.
fn own_format(out: &mut String, name: &str, a: &BehaviourAttributes) -> bool {
    match name {
        "processes_tree" => {
            for (n, root) in a.processes_tree.iter().enumerate() {
                draw(out, root, "", n + 1 == a.processes_tree.len());
            }
        }
        "dns_lookups" => {
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
        }
        "ip_traffic" => {
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
        }
        "http_conversations" => {
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
        }
        "files_dropped" => {
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
        }
        "files_copied" => {
            for c in &a.files_copied {
                let _ = writeln!(
                    out,
                    "  {LABEL}copied{LABEL:#}   {} → {}",
                    escape_control(&c.source),
                    escape_control(&c.destination)
                );
            }
        }
        "registry_keys_set" => {
            for r in &a.registry_keys_set {
                let _ = writeln!(
                    out,
                    "  {LABEL}set{LABEL:#}      {} = {VALUE}{}{VALUE:#}",
                    escape_control(&r.key),
                    escape_control(r.value.as_deref().unwrap_or(""))
                );
            }
        }
        "service_details" => {
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
        }
        "scheduled_tasks_created" => {
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
        }
        "wmi_subscriptions" => {
            for w in &a.wmi_subscriptions {
                let _ = writeln!(
                    out,
                    "  {LABEL}WMI {}{LABEL:#} {} {}",
                    escape_control(&w.kind),
                    escape_control(&w.name),
                    escape_control(w.detail.as_deref().unwrap_or(""))
                );
            }
        }
        "signature_matches" => signatures(out, &a.signature_matches),
        "mitre_attack_techniques" => attack(out, &a.mitre_attack_techniques),
        _ => return false,
    }
    true
}

/// Sigma's standing (not run, nothing matched, counts), then the hits most severe first.
fn sigma_section(out: &mut String, a: &BehaviourAttributes) {
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
    sigma(out, &a.sigma_analysis_results);
}

fn signatures(out: &mut String, matches: &[SignatureMatch]) {
    for m in matches {
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

fn heading(out: &mut String, title: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use sandscope_model::ATTRIBUTES;

    #[test]
    fn every_list_attribute_is_shown_under_its_label() {
        // One value in every list-of-strings attribute of the table, e.g. `processes_killed`,
        // which had no line in this report before the table drove it.
        let strings = ATTRIBUTES
            .iter()
            .filter(|a| a.kind == AttributeKind::Strings && a.section != Section::Bookkeeping);
        let mut attributes = serde_json::Map::new();
        for attribute in strings.clone() {
            let value = format!("value-of-{}", attribute.name);
            attributes.insert(attribute.name.to_string(), serde_json::json!([value]));
        }
        let behaviour: FileBehaviour = serde_json::from_value(serde_json::json!({
            "id": "x_CAPE Sandbox", "type": "file_behaviour", "attributes": attributes
        }))
        .expect("attributes deserialise");
        let text = anstream::adapter::strip_str(&render_behaviour(&behaviour, &[])).to_string();
        for attribute in strings {
            let value = format!("value-of-{}", attribute.name);
            let shown = match attribute.section {
                // The report's facts are one line each: `tags value-of-tags`.
                Section::Report => format!("{} {value}\n", inline_label(attribute)),
                _ => format!("  {}\n    {value}\n", inline_label(attribute)),
            };
            assert!(text.contains(&shown), "no `{shown}` in\n{text}");
        }
        assert!(text.contains("\nOther\n  mutexes created\n"), "{text}");
    }
}
