//! `GET /api/v3/sandscope/schema`: the model's attribute table (label, kind, section, columns,
//! merge, diff and search coverage of every `file_behaviour` attribute) and the query crate's
//! modifier table with its help, as JSON. The web UI draws reports and its query help from it,
//! so it keeps no list of its own. Nothing in it comes from data, so it needs no API key.

use axum::Json;
use sandscope_model::{ATTRIBUTES, Section};
use sandscope_query::MODIFIERS;
use serde_json::{Value, json};

pub(crate) async fn schema() -> Json<Value> {
    Json(document())
}

fn document() -> Value {
    let sections: Vec<Value> = Section::SHOWN
        .iter()
        .map(|section| json!({"id": section, "title": section.title()}))
        .collect();
    json!({
        "data": {
            "sections": sections,
            "attributes": ATTRIBUTES,
            "modifiers": MODIFIERS,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_carries_both_tables_as_the_ui_reads_them() {
        let data = &document()["data"];
        assert_eq!(
            data["sections"][0],
            json!({"id": "report", "title": "Report"})
        );
        let attributes = data["attributes"].as_array().unwrap();
        assert_eq!(attributes.len(), ATTRIBUTES.len());
        let services = attributes
            .iter()
            .find(|a| a["name"] == "service_details")
            .unwrap();
        assert_eq!(services["section"], "services_and_tasks");
        assert_eq!(services["columns"][1]["key"], "image_path");
        // Every attribute's section is one the UI is given (or bookkeeping, not shown).
        let sections: Vec<&Value> = data["sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["id"])
            .collect();
        for attribute in attributes {
            assert!(
                sections.contains(&&attribute["section"]) || attribute["section"] == "bookkeeping",
                "{attribute}"
            );
        }
        let modifiers = data["modifiers"].as_array().unwrap();
        assert_eq!(modifiers.len(), MODIFIERS.len());
        let tags = modifiers
            .iter()
            .find(|m| m["name"] == "behaviour_tags")
            .unwrap();
        assert_eq!(tags["aliases"], json!(["behaviour_tag"]));
        assert_eq!(tags["kind"], "token");
        assert!(
            tags["example"]
                .as_str()
                .unwrap()
                .starts_with("behaviour_tags:")
        );
    }
}
