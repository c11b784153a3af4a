//! Shared by the CLI's integration tests: running the built binary.
#![allow(dead_code)] // each test binary uses its own part

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Run `sandscope` with `args`; its output, whatever its exit status.
pub fn sandscope<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandscope"))
        .args(args)
        .output()
        .expect("run sandscope")
}

/// Run `sandscope` with `args` and require success (the failure shows its stderr).
pub fn sandscope_ok<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let out = sandscope(args);
    assert!(
        out.status.success(),
        "{:?}: {}",
        args.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
