//! The self-contained HTML rendering of one report (`GET /file_behaviours/{id}/html`), every
//! attribute shown as the model's attribute table says (label, section, columns).
//!
//! Every value in a report comes from a log an attacker wrote (command lines carry `<script>`),
//! so every value goes through [`escape`]; the page has no script at all and is served with a
//! Content-Security-Policy that forbids scripts, so even a missed escape could not run code.

use sandscope_model::{Attribute, AttributeKind, Column, FileBehaviour, Section, value_text};
use serde_json::Value;
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

/// Render one report as a complete HTML document: the report's facts, then every shown
/// attribute with a value, section by section as the attribute table orders them.
pub fn render(report: &FileBehaviour) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&format!("Behaviour report {}", report.id)),
        escape(&report.id)
    );
    // The attributes as served, so each attribute is read by its table entry's name and
    // columns; serialising plain data cannot fail, and an empty object shows nothing.
    let attributes = serde_json::to_value(&report.attributes).unwrap_or_default();
    metadata(&mut html, report.sha256(), &attributes);
    for section in Section::SHOWN.into_iter().filter(|s| *s != Section::Report) {
        for attribute in section.attributes() {
            if let Some(value) = attributes.get(attribute.name) {
                shown(&mut html, attribute, value);
            }
        }
    }
    html.push_str("</body></html>\n");
    html
}

fn shown(html: &mut String, attribute: &Attribute, value: &Value) {
    let title = attribute.label;
    match attribute.kind {
        AttributeKind::Tree => {
            let _ = write!(html, "<h2>{}</h2>\n<ul class=\"tree\">", escape(title));
            for node in value.as_array().into_iter().flatten() {
                tree_node(html, node, 0);
            }
            html.push_str("</ul>\n");
        }
        AttributeKind::Records => table(
            html,
            title,
            attribute.columns,
            value.as_array().into_iter().flatten(),
        ),
        AttributeKind::Counts => table(html, title, attribute.columns, std::iter::once(value)),
        AttributeKind::Strings => list(
            html,
            title,
            value.as_array().into_iter().flatten().map(value_text),
        ),
        AttributeKind::Text | AttributeKind::Date | AttributeKind::Number => {
            list(html, title, std::iter::once(value_text(value)))
        }
        AttributeKind::Flag | AttributeKind::Map => {}
    }
}

fn metadata(html: &mut String, sha256: &str, attributes: &Value) {
    let mut rows = vec![("SHA-256".to_string(), sha256.to_string())];
    for attribute in Section::Report.attributes() {
        let Some(value) = attributes.get(attribute.name) else {
            continue;
        };
        let text = match (attribute.kind, value.as_i64()) {
            (AttributeKind::Date, Some(seconds)) => utc_text(seconds),
            _ => value_text(value),
        };
        rows.push((attribute.label.to_string(), text));
    }
    html.push_str("<h2>Report</h2>\n<table>");
    for (label, text) in rows {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&label),
            escape(&text)
        );
    }
    html.push_str("</table>\n");
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

fn tree_node(html: &mut String, node: &Value, depth: usize) {
    let _ = write!(
        html,
        "<li><span class=\"pid\">[{}]</span> <code>{}</code>",
        escape(&value_text(&node["process_id"])),
        escape(&value_text(&node["name"]))
    );
    let children = node["children"].as_array().filter(|c| !c.is_empty());
    if let Some(children) = children {
        if depth >= MAX_TREE_DEPTH {
            html.push_str(" <em>(deeper levels not shown)</em>");
        } else {
            html.push_str("<ul>");
            for child in children {
                tree_node(html, child, depth + 1);
            }
            html.push_str("</ul>");
        }
    }
    html.push_str("</li>");
}

fn list(html: &mut String, title: &str, values: impl Iterator<Item = String>) {
    let mut items = String::new();
    for value in values {
        let _ = write!(items, "<li>{}</li>", escape(&value));
    }
    if items.is_empty() {
        return;
    }
    let _ = write!(html, "<h2>{}</h2>\n<ul>{items}</ul>\n", escape(title));
}

/// Records as rows of their columns.
fn table<'a>(
    html: &mut String,
    title: &str,
    columns: &[Column],
    records: impl Iterator<Item = &'a Value>,
) {
    let mut body = String::new();
    for record in records {
        body.push_str("<tr>");
        for column in columns {
            let _ = write!(
                body,
                "<td>{}</td>",
                escape(&value_text(&record[column.key]))
            );
        }
        body.push_str("</tr>");
    }
    if body.is_empty() {
        return;
    }
    let _ = write!(html, "<h2>{}</h2>\n<table><tr>", escape(title));
    for column in columns {
        let _ = write!(html, "<th>{}</th>", escape(column.label));
    }
    html.push_str("</tr>");
    html.push_str(&body);
    html.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandscope_model::ATTRIBUTES;

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

    #[test]
    fn every_attribute_of_a_real_report_is_shown_under_its_label() {
        // PsExec run as SYSTEM: its service's binary and start type (`service_details`) were
        // missing from this page before the attribute table drove it.
        let log = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/mdecrevoisier_EVTX-to-MITRE-Attack/EVTX_full_APT_attack_steps/",
            "ID11,13,17,18-PSexec as system execution.evtx"
        );
        let read = sandscope_read::read_all(std::path::Path::new(log)).expect("log reads");
        let report = sandscope_report::build_report(&read.events, &Default::default())
            .expect("report builds")
            .behaviour;
        let html = render(&report);
        let json = serde_json::to_value(&report.attributes).expect("serialises");
        let shown: Vec<&Attribute> = ATTRIBUTES
            .iter()
            .filter(|a| a.section != Section::Bookkeeping && json.get(a.name).is_some())
            .collect();
        assert!(shown.len() > 10, "{}", shown.len());
        for attribute in shown {
            let label = format!(">{}<", escape(attribute.label));
            assert!(html.contains(&label), "{} missing", attribute.name);
        }
        assert!(
            html.contains(r"<td>PSEXESVC</td><td>%SystemRoot%\PSEXESVC.exe</td><td>demand</td>"),
            "{html}"
        );
    }
}
