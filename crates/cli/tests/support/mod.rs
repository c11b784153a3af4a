//! Shared by the CLI's integration tests: running the built binary.
#![allow(dead_code)] // each test binary uses its own part

pub mod retrohunt;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The API key of a [`Server`].
pub const SERVER_KEY: &str = "beside-server-key";

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

/// A running `sandscope serve`, stopped (SIGINT, as Ctrl-C) when dropped.
pub struct Server {
    child: Child,
}

impl Server {
    pub fn start(data: &str) -> (Server, String) {
        Server::start_on(&["--data", data])
    }

    /// A server over the store `store` names (`--data DIR` or `--store URL`).
    pub fn start_on(store: &[&str]) -> (Server, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sandscope"))
            .arg("serve")
            .args(store)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--api-key",
                SERVER_KEY,
                "--no-sigma",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sandscope serve");
        let stdout = child.stdout.take().expect("serve's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(120);
        let url = loop {
            assert!(Instant::now() < deadline, "serve did not start in time");
            let line = lines
                .next()
                .expect("serve exited before serving")
                .expect("read serve's stdout");
            if let Some(rest) = line.strip_prefix("Sandscope is serving at ") {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        };
        (Server { child }, url)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&mut self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "serve did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
