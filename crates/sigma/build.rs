//! Packs the vendored SigmaHQ rules (`rules/windows/**.yml`) into one gzip stream in `OUT_DIR`,
//! which the crate embeds with `include_bytes!`. Compressed because plain rule YAML is full of
//! malware strings that antivirus products flag in binaries.
//!
//! Record format (all integers little-endian u32): path length, path (UTF-8, `/`-separated,
//! relative to `rules/`' parent, e.g. `rules/windows/...`), content length, content.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("rules");
    println!("cargo:rerun-if-changed=rules");
    let mut files = Vec::new();
    collect(&root.join("windows"), &mut files);
    files.sort();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let out = fs::File::create(out_dir.join("sigmahq-rules.bin.gz")).expect("create archive");
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::best());
    for path in &files {
        let relative = path
            .strip_prefix(&manifest)
            .expect("under the manifest dir");
        let name = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let content = fs::read(path).expect("read rule");
        gz.write_all(&(name.len() as u32).to_le_bytes()).unwrap();
        gz.write_all(name.as_bytes()).unwrap();
        gz.write_all(&(content.len() as u32).to_le_bytes()).unwrap();
        gz.write_all(&content).unwrap();
    }
    gz.finish().expect("finish archive");
}
