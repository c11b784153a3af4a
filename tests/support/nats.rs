//! A real NATS server with JetStream for tests: `nats-server -js -sd DIR -a 127.0.0.1 -p PORT`
//! in a temporary directory on a free loopback port, stopped by its own PID when dropped.
//!
//! Include it with `#[path = "<to the workspace>/tests/support/nats.rs"] mod nats;`. A server
//! that cannot start panics with the reason: a test that needs NATS fails, it never skips.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestNats {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl TestNats {
    /// Start a fresh server; panics with the reason when it cannot.
    pub fn start() -> TestNats {
        let dir = match tempfile::Builder::new().prefix("sandscope-nats-").tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("cannot start a test NATS: temporary directory: {e}"),
        };
        let mut nats = TestNats {
            dir,
            port: 0,
            child: None,
        };
        let mut last = String::new();
        // A port can be taken between our probe and the server's bind: try a few.
        for _ in 0..5 {
            nats.port = match free_port() {
                Ok(port) => port,
                Err(e) => panic!("cannot start a test NATS: {e}"),
            };
            match nats.spawn() {
                Ok(()) => return nats,
                Err(e) => last = e,
            }
        }
        panic!("cannot start a test NATS: {last}");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stop the server (its JetStream storage stays), as a crash or a restart would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("cannot restart the test NATS: {e}");
        }
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.path().join("server.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = Command::new(binary())
            .args(["-js", "-sd"])
            .arg(self.store_dir())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| {
                format!(
                    "{}: {e} (install it: apt-get install -y nats-server)",
                    binary().display()
                )
            })?;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = child.try_wait() {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("nats-server exited ({status}):\n{said}"));
            }
            let ready = std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Server is ready"));
            if ready && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!("nats-server did not become ready in 20 s:\n{said}"))
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `nats-server` on PATH, else Debian's /usr/sbin/nats-server.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("/usr/sbin/nats-server")
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}
