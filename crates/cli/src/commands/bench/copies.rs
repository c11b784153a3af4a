//! The sample ids of a corpus file's repeated detonations, shared by the benches that store
//! the corpus many times over (`bench livehunt`, `bench retrohunt`).

use sha2::{Digest, Sha256};
use std::path::Path;

/// The SHA-256 (hex) the `copy`-th detonation of `file` is stored under: one per copy and
/// file, the same in every run.
pub(super) fn sample_id(copy: usize, file: &Path) -> String {
    let digest = Sha256::digest(format!("{copy}:{}", file.display()).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
