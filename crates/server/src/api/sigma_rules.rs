//! `GET /sandscope/sigma_rules/{id}`: the YAML of one bundled SigmaHQ rule, by its `id`, so the
//! UI can turn a report's Sigma hit into a Livehunt ruleset holding that rule. Read-only; rules
//! added with `--rules` are not served (the reports name them by file, not by text).

use super::extractors::truncate;
use crate::error::ApiError;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::response::Response;
use sandscope_sigma::bundled_rule_texts;
use serde_json::json;

use super::envelopes::json_response;

/// Rule ids are UUIDs in SigmaHQ; anything longer or with other characters cannot be one.
const MAX_ID_LEN: usize = 64;

/// One rule document: its file and its YAML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleDocument {
    pub file: String,
    pub yaml: String,
}

pub(super) async fn sigma_rule(
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let not_found =
        |id: &str| ApiError::not_found(format!("Sigma rule {:?} not found", truncate(id)));
    let Ok(Path(id)) = path else {
        return Err(ApiError::not_found("Sigma rule not found"));
    };
    if id.is_empty()
        || id.len() > MAX_ID_LEN
        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(not_found(&id));
    }
    let wanted = id.clone();
    let found = tokio::task::spawn_blocking(move || bundled_rule(&wanted))
        .await
        .map_err(|_| ApiError::internal())??;
    let document = found.ok_or_else(|| not_found(&id))?;
    Ok(json_response(json!({ "data": {
        "type": "sigma_rule",
        "id": id,
        "attributes": { "file": document.file, "yaml": document.yaml },
    }})))
}

/// The bundled rule document whose top-level `id:` is `id` (unpacked per request: this is an
/// analyst's click, not a hot path, and keeping ~4 MB of YAML resident is not worth it).
fn bundled_rule(id: &str) -> Result<Option<RuleDocument>, ApiError> {
    let texts = bundled_rule_texts().map_err(|e| {
        eprintln!("sandscope-server: {e}");
        ApiError::internal()
    })?;
    Ok(texts.iter().find_map(|t| {
        document_with_id(&t.text, id).map(|yaml| RuleDocument {
            file: t.file.clone(),
            yaml,
        })
    }))
}

/// The YAML document of `text` (documents split by `---` lines) with a top-level `id: <id>`.
fn document_with_id(text: &str, id: &str) -> Option<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents.into_iter().find(|doc| {
        doc.lines().any(|line| {
            line.strip_prefix("id:")
                .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"'))
                == Some(id)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SigmaHQ's "Shadow Copies Deletion Using Operating Systems Utilities".
    const SHADOW_COPIES: &str = "c947b146-0abc-4c87-9c64-b17e9d7274a2";

    #[test]
    fn finds_a_bundled_rule_by_id() {
        let rule = bundled_rule(SHADOW_COPIES).unwrap().expect("bundled");
        assert!(rule.file.starts_with("rules/windows/"), "{}", rule.file);
        assert!(
            rule.yaml.contains(&format!("id: {SHADOW_COPIES}")),
            "{}",
            rule.yaml
        );
        assert!(rule.yaml.contains("detection:"), "{}", rule.yaml);
        assert!(
            bundled_rule("00000000-0000-0000-0000-000000000000")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn only_a_top_level_id_names_a_document() {
        let text = "title: A\nid: aaa\nrelated:\n  - id: bbb\n    type: derived\n---\ntitle: B\nid: 'ccc'\n";
        assert_eq!(
            document_with_id(text, "aaa").as_deref(),
            Some("title: A\nid: aaa\nrelated:\n  - id: bbb\n    type: derived\n")
        );
        assert_eq!(document_with_id(text, "bbb"), None);
        assert_eq!(
            document_with_id(text, "ccc").as_deref(),
            Some("title: B\nid: 'ccc'\n")
        );
    }
}
