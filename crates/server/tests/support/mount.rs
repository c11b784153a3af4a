//! Real mounts for the storage-failure tests: a small tmpfs (a disk that fills up) and
//! read-only bind mounts (read-only media). Mounting needs root, which CI has; without it the
//! test fails saying so instead of passing without testing anything. Each mount is undone when
//! its guard is dropped.
#![allow(dead_code)] // each test crate uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Mount {
    target: PathBuf,
}

fn mount(args: &[&str], target: &Path) {
    let output = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .unwrap_or_else(|e| panic!("this test mounts filesystems and needs `mount`: {e}"));
    assert!(
        output.status.success(),
        "this test needs root to mount (CI runs as root): `mount {} {}` failed: {}",
        args.join(" "),
        target.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

impl Mount {
    /// A tmpfs of `size` (e.g. `8m`) on `target`.
    pub fn tmpfs(target: &Path, size: &str) -> Mount {
        mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            target,
        );
        Mount {
            target: target.to_path_buf(),
        }
    }

    /// `dir` itself, mounted over itself read-only: nothing under it can be written, not
    /// even by root.
    pub fn read_only(dir: &Path) -> Mount {
        mount(&["--bind", &dir.display().to_string()], dir);
        let guard = Mount {
            target: dir.to_path_buf(),
        };
        mount(&["-o", "remount,bind,ro"], dir);
        guard
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.target)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still in use (a failing test's open files): detach it now, free it later.
            let _ = Command::new("umount").arg("-l").arg(&self.target).status();
        }
    }
}
