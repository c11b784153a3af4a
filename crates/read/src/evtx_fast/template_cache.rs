//! Compiled templates: per chunk by definition offset, and per thread by content, since every
//! chunk repeats its templates' definitions and compiling them is most of the allocation a
//! chunk costs.

use super::binxml::{u32_at, walk_tokens};
use super::template::{Template, compile_template};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// A template definition: next-definition offset (4), GUID (16), body size (4), then the body.
pub(super) const DEFINITION_HEADER_SIZE: usize = 24;

/// The templates of the chunk being decoded, by definition offset; `None` for one this
/// decoder leaves to the reference path.
#[derive(Default)]
pub(super) struct ChunkTemplates(Vec<(u32, Option<Rc<Template>>)>);

impl ChunkTemplates {
    /// Forget the previous chunk's templates (offsets are a chunk's own).
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The template defined at `offset` in `chunk`, compiled on first use; `None` for a
    /// definition cut short or left to the reference path.
    pub fn at(&mut self, chunk: &[u8], offset: u32) -> Option<Rc<Template>> {
        if let Some((_, template)) = self.0.iter().find(|(o, _)| *o == offset) {
            return template.clone();
        }
        let at = offset as usize;
        let body_size = u32_at(chunk, at + 20)? as usize;
        let body = at + DEFINITION_HEADER_SIZE;
        let body_end = body.checked_add(body_size)?;
        let guid: [u8; 16] = *chunk.get(at + 4..)?.first_chunk()?;
        let compiled = cached_template(chunk, guid, body, body_end);
        self.0.push((offset, compiled.clone()));
        compiled
    }
}

/// A template's GUID, body size and content hash.
type TemplateKey = ([u8; 16], usize, u64);

thread_local! {
    static TEMPLATE_CACHE: RefCell<HashMap<TemplateKey, Option<Rc<Template>>>> =
        RefCell::new(HashMap::new());
}

const MAX_CACHED_TEMPLATES: usize = 4096;

fn cached_template(
    chunk: &[u8],
    guid: [u8; 16],
    body: usize,
    body_end: usize,
) -> Option<Rc<Template>> {
    let compile_now = || compile_template(chunk, body, body_end).map(Rc::new);
    let Some(hash) = template_hash(chunk, body, body_end) else {
        return compile_now();
    };
    let key = (guid, body_end - body, hash);
    TEMPLATE_CACHE.with(|cache| {
        if let Some(template) = cache.borrow().get(&key) {
            return template.clone();
        }
        let template = compile_now();
        let mut cache = cache.borrow_mut();
        if cache.len() >= MAX_CACHED_TEMPLATES {
            cache.clear();
        }
        cache.insert(key, template.clone());
        template
    })
}

/// The Firefox/rustc multiply-rotate hash: fast, and plenty for a per-thread cache key that
/// also holds the template GUID and size.
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes([
                word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
            ]));
        }
        for &byte in words.remainder() {
            self.add(u64::from(byte));
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A hash of a template body's content that does not depend on where it sits in its chunk:
/// its tokens, names as the names they point to. `None` for a body the token walk does not
/// follow (it is then compiled every time, or rejected).
fn template_hash(chunk: &[u8], start: usize, end: usize) -> Option<u64> {
    let mut hasher = FxHasher(0);
    walk_tokens(chunk, start, end, |token| {
        token.hash(&mut hasher);
        Some(())
    })?;
    Some(hasher.finish())
}
