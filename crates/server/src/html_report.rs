//! The self-contained HTML rendering of one report (`GET /file_behaviours/{id}/html`).
//!
//! Every value in a report comes from a log an attacker wrote (command lines carry `<script>`),
//! so every value goes through [`escape`]; the page has no script at all and is served with a
//! Content-Security-Policy that forbids scripts, so even a missed escape could not run code.

use sandscope_model::{BehaviourAttributes, FileBehaviour, ProcessNode};
use std::fmt::Write;

/// HTML-escape text for element content and double- or single-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The process tree nests as deep as the log says; browsers and this renderer both cope
/// badly with thousands of levels, so deeper nodes are cut with a note.
const MAX_TREE_DEPTH: usize = 64;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.3em;word-break:break-all}h2{font-size:1.1em;border-bottom:1px solid #ccc;margin-top:1.5em}\
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}\
code,li,td{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}\
ul.tree,ul.tree ul{list-style:none;padding-left:1.2em}.pid{color:#777}";

/// Render one report as a complete HTML document.
pub fn render(report: &FileBehaviour) -> String {
    let a = &report.attributes;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&format!("Behaviour report {}", report.id)),
        escape(&report.id)
    );
    metadata(&mut html, report.sha256(), a);
    if !a.processes_tree.is_empty() {
        html.push_str("<h2>Process tree</h2>\n<ul class=\"tree\">");
        for node in &a.processes_tree {
            tree_node(&mut html, node, 0);
        }
        html.push_str("</ul>\n");
    }
    list(&mut html, "Processes created", &a.processes_created);
    list(&mut html, "Command executions", &a.command_executions);
    list(&mut html, "Processes terminated", &a.processes_terminated);
    list(&mut html, "Processes killed", &a.processes_killed);
    list(&mut html, "Processes injected", &a.processes_injected);
    table(
        &mut html,
        "DNS lookups",
        &["hostname", "resolved IPs", "CNAMEs"],
        a.dns_lookups.iter().map(|d| {
            vec![
                d.hostname.clone(),
                d.resolved_ips.join(", "),
                d.cnames.join(", "),
            ]
        }),
    );
    table(
        &mut html,
        "IP traffic",
        &["destination", "port", "protocol"],
        a.ip_traffic.iter().map(|t| {
            vec![
                t.destination_ip.clone(),
                t.destination_port
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                t.transport_layer_protocol.clone().unwrap_or_default(),
            ]
        }),
    );
    table(
        &mut html,
        "HTTP conversations",
        &["method", "URL", "status"],
        a.http_conversations.iter().map(|h| {
            vec![
                h.request_method.clone().unwrap_or_default(),
                h.url.clone(),
                h.response_status_code
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            ]
        }),
    );
    list(&mut html, "Files opened", &a.files_opened);
    list(&mut html, "Files written", &a.files_written);
    list(&mut html, "Files deleted", &a.files_deleted);
    list(
        &mut html,
        "Files with changed attributes",
        &a.files_attribute_changed,
    );
    table(
        &mut html,
        "Files dropped",
        &["path", "SHA-256", "type"],
        a.files_dropped.iter().map(|f| {
            vec![
                f.path.clone(),
                f.sha256.clone().unwrap_or_default(),
                f.file_type.clone().unwrap_or_default(),
            ]
        }),
    );
    table(
        &mut html,
        "Files copied",
        &["source", "destination"],
        a.files_copied
            .iter()
            .map(|f| vec![f.source.clone(), f.destination.clone()]),
    );
    list(&mut html, "Registry keys opened", &a.registry_keys_opened);
    table(
        &mut html,
        "Registry keys set",
        &["key", "value"],
        a.registry_keys_set
            .iter()
            .map(|r| vec![r.key.clone(), r.value.clone().unwrap_or_default()]),
    );
    list(&mut html, "Registry keys deleted", &a.registry_keys_deleted);
    list(&mut html, "Services created", &a.services_created);
    list(&mut html, "Services started", &a.services_started);
    list(&mut html, "Services opened", &a.services_opened);
    list(&mut html, "Services stopped", &a.services_stopped);
    list(&mut html, "Services deleted", &a.services_deleted);
    table(
        &mut html,
        "Scheduled tasks created",
        &["name", "command", "trigger"],
        a.scheduled_tasks_created.iter().map(|t| {
            vec![
                t.name.clone(),
                t.command.clone().unwrap_or_default(),
                t.trigger.clone().unwrap_or_default(),
            ]
        }),
    );
    table(
        &mut html,
        "WMI subscriptions",
        &["kind", "name", "operation", "detail"],
        a.wmi_subscriptions.iter().map(|w| {
            vec![
                w.kind.clone(),
                w.name.clone(),
                w.operation.clone().unwrap_or_default(),
                w.detail.clone().unwrap_or_default(),
            ]
        }),
    );
    list(&mut html, "Mutexes created", &a.mutexes_created);
    list(&mut html, "Mutexes opened", &a.mutexes_opened);
    list(&mut html, "Named pipes", &a.named_pipes);
    list(&mut html, "Modules loaded", &a.modules_loaded);
    table(
        &mut html,
        "Sigma rule hits",
        &["level", "rule", "source", "author"],
        a.sigma_analysis_results.iter().map(|s| {
            vec![
                s.rule_level.clone(),
                s.rule_title.clone(),
                s.rule_source.clone(),
                s.rule_author.clone(),
            ]
        }),
    );
    table(
        &mut html,
        "MITRE ATT&CK techniques",
        &["technique", "severity", "description"],
        a.mitre_attack_techniques.iter().map(|m| {
            vec![
                m.id.clone(),
                m.severity.clone(),
                m.signature_description.clone(),
            ]
        }),
    );
    table(
        &mut html,
        "Signatures",
        &["name", "severity", "description"],
        a.signature_matches.iter().map(|s| {
            vec![
                s.name.clone().unwrap_or_default(),
                s.severity.clone().unwrap_or_default(),
                s.description.clone(),
            ]
        }),
    );
    list(&mut html, "Tags", &a.tags);
    html.push_str("</body></html>\n");
    html
}

fn metadata(html: &mut String, sha256: &str, a: &BehaviourAttributes) {
    let mut rows = vec![
        vec!["SHA-256".to_string(), sha256.to_string()],
        vec!["sandbox".to_string(), a.sandbox_name.clone()],
    ];
    if let Some(date) = a.analysis_date {
        let when = utc_text(date);
        rows.push(vec!["analysis date".to_string(), when]);
    }
    if let Some(behash) = &a.behash {
        rows.push(vec!["behash".to_string(), behash.clone()]);
    }
    if !a.verdicts.is_empty() {
        rows.push(vec!["verdicts".to_string(), a.verdicts.join(", ")]);
    }
    table(html, "Report", &["", ""], rows.into_iter());
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` without a date library (civil-from-days).
fn utc_text(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn tree_node(html: &mut String, node: &ProcessNode, depth: usize) {
    let _ = write!(
        html,
        "<li><span class=\"pid\">[{}]</span> <code>{}</code>",
        escape(&node.process_id),
        escape(&node.name)
    );
    if !node.children.is_empty() {
        if depth >= MAX_TREE_DEPTH {
            html.push_str(" <em>(deeper levels not shown)</em>");
        } else {
            html.push_str("<ul>");
            for child in &node.children {
                tree_node(html, child, depth + 1);
            }
            html.push_str("</ul>");
        }
    }
    html.push_str("</li>");
}

fn list(html: &mut String, title: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    let _ = write!(html, "<h2>{}</h2>\n<ul>", escape(title));
    for value in values {
        let _ = write!(html, "<li>{}</li>", escape(value));
    }
    html.push_str("</ul>\n");
}

fn table(
    html: &mut String,
    title: &str,
    headers: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let mut body = String::new();
    for row in rows {
        body.push_str("<tr>");
        for cell in row {
            let _ = write!(body, "<td>{}</td>", escape(&cell));
        }
        body.push_str("</tr>");
    }
    if body.is_empty() {
        return;
    }
    let _ = write!(html, "<h2>{}</h2>\n<table>", escape(title));
    if headers.iter().any(|h| !h.is_empty()) {
        html.push_str("<tr>");
        for header in headers {
            let _ = write!(html, "<th>{}</th>", escape(header));
        }
        html.push_str("</tr>");
    }
    html.push_str(&body);
    html.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<img src=x onerror="alert(1)">&'"#),
            "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn formats_unix_seconds_as_utc() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(1_669_405_151), "2022-11-25 19:39:11 UTC");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
