//! Shared by the integration tests: where the corpus and the vendored files are, and one
//! engine with the bundled rules per test binary.
#![allow(dead_code)]

use sandscope_sigma::{LoadReport, SigmaEngine};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The shared corpus: `$SANDSCOPE_CORPUS`, else `../shared/corpus` beside the checkout.
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("SANDSCOPE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/corpus"
            ))
        });
    dir.is_dir().then_some(dir)
}

/// The workspace's vendored test data (`tests/data/<source>/<upstream path>`).
pub fn vendored() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data"))
}

/// Where a corpus-relative path is vendored, if it is (the vendored files keep the corpus's paths).
pub fn vendored_path(corpus_relative: &str) -> Option<PathBuf> {
    let path = vendored().join(corpus_relative);
    path.is_file().then_some(path)
}

pub fn bundled() -> &'static (SigmaEngine, LoadReport) {
    static ENGINE: OnceLock<(SigmaEngine, LoadReport)> = OnceLock::new();
    ENGINE.get_or_init(|| SigmaEngine::bundled().expect("bundled rules unpack"))
}

/// Files with the given extension under `dir`, recursively, sorted.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    sandscope_read::walk(dir)
        .unwrap()
        .into_iter()
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .collect()
}
