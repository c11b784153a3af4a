//! `base64offset` done as the Sigma specification (and pySigma) define it, applied to rules
//! before they reach the evaluator.
//!
//! `rsigma-eval` 0.23 cuts each of the three encodings only at its `=` padding. The last
//! character before the padding still depends on the bytes that follow the value in the real
//! encoded text, so a value whose length is not a multiple of three never matched inside a
//! longer base64 string (e.g. `http://` inside the encoding of `http://evil`). The specification
//! drops that character too: start offsets (0, 2, 3), end offsets (none, -3, -2) indexed by
//! `(len + offset) % 3`. Rules with `base64offset` (optionally after `wide`/`utf16le`/`utf16be`)
//! are rewritten here to `contains`-style matching of the three correct fragments.

use rsigma_parser::value::{SigmaString, SigmaValue};
use rsigma_parser::{Detection, DetectionItem, Modifier, SigmaRule};

/// Rewrite every `base64offset` item of `rule` into plain fragments.
pub(crate) fn rewrite_rule(rule: &mut SigmaRule) {
    for detection in rule.detection.named.values_mut() {
        rewrite_detection(detection);
    }
}

fn rewrite_detection(detection: &mut Detection) {
    match detection {
        Detection::AllOf(items) => items.iter_mut().for_each(rewrite_item),
        Detection::AnyOf(children) => children.iter_mut().for_each(rewrite_detection),
        _ => {}
    }
}

fn rewrite_item(item: &mut DetectionItem) {
    let modifiers = &item.field.modifiers;
    let Some(position) = modifiers.iter().position(|m| *m == Modifier::Base64Offset) else {
        return;
    };
    // Only the encodings that come before base64offset shape the bytes; anything else
    // (e.g. `|all`, `|contains`) is kept as it is.
    let encoding = match &modifiers[..position] {
        [] => Encoding::Utf8,
        [Modifier::Wide] => Encoding::Utf16Le,
        [Modifier::Utf16be] => Encoding::Utf16Be,
        _ => return,
    };
    // No SigmaHQ rule combines base64offset with `all`; such a rule is left to the evaluator.
    if modifiers.contains(&Modifier::All) {
        return;
    }
    let mut values = Vec::with_capacity(item.values.len() * 3);
    for value in &item.values {
        let Some(plain) = plain_text(value) else {
            return;
        };
        let bytes = encoding.encode(&plain);
        for fragment in offset_fragments(&bytes) {
            values.push(SigmaValue::String(SigmaString::from_raw(&fragment)));
        }
    }
    item.field.modifiers.drain(..=position);
    if !item.field.modifiers.contains(&Modifier::Contains) {
        item.field.modifiers.insert(0, Modifier::Contains);
    }
    item.values = values;
}

fn plain_text(value: &SigmaValue) -> Option<String> {
    match value {
        SigmaValue::String(s) => s.as_plain(),
        SigmaValue::Integer(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl Encoding {
    fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Encoding::Utf8 => text.as_bytes().to_vec(),
            Encoding::Utf16Le => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            Encoding::Utf16Be => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        }
    }
}

/// The three base64 fragments of `value` that appear whatever its alignment in the text.
fn offset_fragments(value: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END_TRIM: [usize; 3] = [0, 3, 2];
    let mut out = Vec::with_capacity(3);
    for offset in 0..3 {
        let mut padded = vec![b' '; offset];
        padded.extend_from_slice(value);
        let encoded = base64(&padded);
        let end = encoded
            .len()
            .saturating_sub(END_TRIM[(value.len() + offset) % 3]);
        if let Some(fragment) = encoded.get(START[offset]..end)
            && !fragment.is_empty()
        {
            out.push(fragment.to_string());
        }
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_match_the_specification() {
        assert_eq!(base64(b"http://"), "aHR0cDovLw==");
        // pySigma: base64offset of "http://" is aHR0cDovL, h0dHA6Ly, odHRwOi8v.
        assert_eq!(
            offset_fragments(b"http://"),
            ["aHR0cDovL", "h0dHA6Ly", "odHRwOi8v"]
        );
        // Length divisible by three keeps its last group.
        assert_eq!(offset_fragments(b"abc")[0], "YWJj");
    }
}
