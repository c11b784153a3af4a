//! Template definitions compiled into the places of the values an event needs: the `System`
//! values and the `EventData/Data` elements, each a list of literals and substitutions with the
//! dependencies that may leave it out.

use super::binxml::{Token, walk_tokens};
use super::utf16::decode_utf16;
use std::borrow::Cow;

/// A piece of an element's content or attribute value.
#[derive(Debug, Clone)]
pub(super) enum Part {
    Literal(String),
    Substitution(u16),
}

/// An element of a template body, as far as compiling needs it.
#[derive(Debug, Default)]
struct Element {
    name: String,
    dependency: Option<u16>,
    attrs: Vec<(String, Vec<Part>)>,
    content: Vec<Part>,
    children: Vec<Element>,
}

/// Where, in a compiled template, one value an event needs is.
#[derive(Debug, Default)]
pub(super) struct Slot {
    /// Dependency ids of the element and its ancestors: a NULL value at any of them leaves
    /// the element out (MS-EVEN6 §2.2.12).
    pub deps: Vec<u16>,
    pub parts: Vec<Part>,
}

#[derive(Debug)]
pub(super) struct DataField {
    pub name: String,
    pub slot: Slot,
    /// Whether the canonical rendering may rewrite this field's values (GUIDs and Sysmon's
    /// time fields); the others are used as rendered.
    pub canonical: bool,
}

#[derive(Debug, Default)]
pub(super) struct Template {
    pub provider: Option<Slot>,
    pub event_id: Option<Slot>,
    pub record_id: Option<Slot>,
    pub time_created: Option<Slot>,
    pub channel: Option<Slot>,
    pub computer: Option<Slot>,
    /// `None` when the event data has a shape this decoder leaves to the reference path.
    pub data: Option<Vec<DataField>>,
    /// Substitutions in the `Event` element's content: Windows puts the `EventData` there, as
    /// an embedded BinXML fragment with a template instance of its own.
    pub embedded: Vec<u16>,
}

/// Elements nested deeper than this leave the template to the reference path.
const MAX_DEPTH: usize = 32;

/// Compile the template body `chunk[start..end]` (chunk offsets); `None` for a body this
/// decoder leaves to the reference path.
pub(super) fn compile_template(chunk: &[u8], start: usize, end: usize) -> Option<Template> {
    compile(&element_tree(chunk, start, end)?)
}

/// A template body's element tree.
fn element_tree(chunk: &[u8], start: usize, end: usize) -> Option<Element> {
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    // Whether an attribute is being read (until the element's start tag closes).
    let mut in_attr = false;
    walk_tokens(chunk, start, end, |token| {
        match token {
            Token::OpenElement { dependency, name } => {
                if stack.len() > MAX_DEPTH {
                    return None;
                }
                stack.push(Element {
                    name: decode_utf16(name),
                    dependency: (dependency != 0xffff).then_some(dependency),
                    ..Default::default()
                });
                in_attr = false;
            }
            Token::Attribute { name } => {
                stack
                    .last_mut()?
                    .attrs
                    .push((decode_utf16(name), Vec::new()));
                in_attr = true;
            }
            Token::CloseStart => in_attr = false,
            Token::CloseEmpty | Token::EndElement => {
                in_attr = false;
                let done = stack.pop()?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Token::Text(text) => {
                push_part(&mut stack, in_attr, Part::Literal(decode_utf16(text)))?;
            }
            // Normal and optional substitutions render alike here: an empty value is an
            // empty string either way.
            Token::Substitution { id, .. } => {
                push_part(&mut stack, in_attr, Part::Substitution(id))?;
            }
        }
        Some(())
    })?;
    if !stack.is_empty() {
        return None;
    }
    root
}

fn push_part(stack: &mut [Element], in_attr: bool, part: Part) -> Option<()> {
    let element = stack.last_mut()?;
    if in_attr {
        element.attrs.last_mut()?.1.push(part);
    } else {
        element.content.push(part);
    }
    Some(())
}
fn compile(root: &Element) -> Option<Template> {
    let mut t = Template::default();
    if root.name == "EventData" {
        t.data = data_fields(root, &[]);
        return Some(t);
    }
    if root.name != "Event" || !root.attrs.iter().all(|(n, _)| n == "xmlns") {
        return None;
    }
    for part in &root.content {
        match part {
            Part::Substitution(id) => t.embedded.push(*id),
            Part::Literal(_) => return None,
        }
    }
    let slot = |deps: &[u16], el: &Element, parts: &[Part]| Slot {
        deps: deps.iter().copied().chain(el.dependency).collect(),
        parts: parts.to_vec(),
    };
    let attr = |el: &Element, name: &str| {
        el.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, parts)| parts.clone())
    };
    for section in &root.children {
        let deps: Vec<u16> = section.dependency.into_iter().collect();
        match section.name.as_str() {
            "System" => {
                for el in &section.children {
                    match el.name.as_str() {
                        "Provider" => {
                            t.provider = attr(el, "Name").map(|p| slot(&deps, el, &p));
                        }
                        "TimeCreated" => {
                            t.time_created = attr(el, "SystemTime").map(|p| slot(&deps, el, &p));
                        }
                        "EventID" => t.event_id = Some(slot(&deps, el, &el.content)),
                        "EventRecordID" => t.record_id = Some(slot(&deps, el, &el.content)),
                        "Channel" => t.channel = Some(slot(&deps, el, &el.content)),
                        "Computer" => t.computer = Some(slot(&deps, el, &el.content)),
                        _ => {}
                    }
                }
            }
            "EventData" => t.data = data_fields(section, &deps),
            _ => {}
        }
    }
    if !root.children.iter().any(|s| s.name == "EventData") {
        t.data = Some(Vec::new());
    }
    Some(t)
}

/// The `Data` fields of an `EventData` element; `None` for a shape left to the reference path.
fn data_fields(section: &Element, parent_deps: &[u16]) -> Option<Vec<DataField>> {
    if !section.content.is_empty() || !section.attrs.is_empty() {
        return None;
    }
    let deps: Vec<u16> = parent_deps
        .iter()
        .copied()
        .chain(section.dependency)
        .collect();
    let mut fields = Vec::with_capacity(section.children.len());
    for el in &section.children {
        let name = match el.attrs.as_slice() {
            [(attr, parts)] if attr == "Name" => match parts.as_slice() {
                // Trimmed as every reader trims field names (`canonical_field_name`).
                [Part::Literal(n)] => n.trim().to_string(),
                _ => return None,
            },
            _ => return None,
        };
        if el.name != "Data" || !el.children.is_empty() {
            return None;
        }
        let canonical = sandscope_event::is_guid_field(&name)
            || matches!(
                sandscope_event::canonical_value(&name, "2000-01-01T00:00:00Z"),
                Cow::Owned(_)
            );
        fields.push(DataField {
            canonical,
            name,
            slot: Slot {
                deps: deps.iter().copied().chain(el.dependency).collect(),
                parts: el.content.clone(),
            },
        });
    }
    Some(fields)
}
