//! A real PostgreSQL server for tests: `initdb` into a temporary directory, `pg_ctl start` on a
//! free loopback port, stopped (by the PID `pg_ctl` recorded) when dropped.
//!
//! Shared by every crate's tests that need PostgreSQL: include it with
//! `#[path = "<to the workspace>/tests/support/postgres.rs"] mod postgres;`.
//! [`TestCluster`] starts one server or two, for the store's one-server and two-server layouts
//! (`sandscope db init --shards URL1,URL2`).
//! `initdb` refuses to run as root, so as root the server runs as the `postgres` user (the
//! directory is handed to it); otherwise it runs as the current user. A server that cannot
//! start panics with the reason: a test that needs PostgreSQL fails, it never skips.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A running PostgreSQL cluster with a `sandscope` database, superuser `postgres`, trust auth
/// on loopback (and a password for `secret_user`, to test a wrong password).
pub struct TestPostgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

/// The role that needs a password (`TestPostgres::password_url`).
pub const PASSWORD_USER: &str = "secret_user";
pub const PASSWORD: &str = "right-password";

impl TestPostgres {
    /// Start a fresh cluster; panics with the reason when it cannot.
    pub fn start() -> TestPostgres {
        match Self::try_start() {
            Ok(pg) => pg,
            Err(reason) => panic!("cannot start a test PostgreSQL: {reason}"),
        }
    }

    fn try_start() -> Result<TestPostgres, String> {
        let bin = find_bin_dir().ok_or(
            "no `initdb` on PATH or under /usr/lib/postgresql/*/bin \
             (install postgresql and postgresql-contrib)",
        )?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("sandscope-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        if as_postgres {
            // The server user must reach and own its data directory.
            run(Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path()))?;
        }
        let mut pg = TestPostgres {
            dir,
            port: 0,
            bin,
            as_postgres,
        };
        let data = pg.data_dir();
        let pwfile = pg.dir.path().join("pw");
        std::fs::write(&pwfile, "postgres\n").map_err(|e| format!("{}: {e}", pwfile.display()))?;
        if as_postgres {
            run(Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pwfile))?;
        }
        pg.run_tool(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        // Trust for everyone but PASSWORD_USER, who must give the password (scram).
        let hba = format!(
            "host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n\
             host all all 127.0.0.1/32 trust\nlocal all all trust\n"
        );
        std::fs::write(data.join("pg_hba.conf"), hba).map_err(|e| format!("pg_hba.conf: {e}"))?;
        // A port can be taken between our probe and the server's bind: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port()?;
            let log = pg.dir.path().join("server.log");
            match pg.pg_ctl_start() {
                Ok(()) => {
                    pg.psql("CREATE DATABASE sandscope")?;
                    pg.psql(&format!(
                        "CREATE ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'"
                    ))?;
                    return Ok(pg);
                }
                Err(e) => {
                    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
                    last = format!("{e}\nserver log:\n{server_log}");
                }
            }
        }
        Err(last)
    }

    /// Start the server on the cluster's data directory and port.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off \
             -c max_connections=60 -c shared_buffers=32MB",
            self.port,
            path_str(self.dir.path())?
        );
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        self.run_tool(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &options,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )
    }

    /// Stop the server (fast shutdown: open sessions are ended), keeping its data.
    pub fn stop(&self) {
        let data = self.data_dir();
        let data = path_str(&data).unwrap();
        if let Err(e) = self.run_tool("pg_ctl", &["-D", data, "-m", "fast", "-w", "stop"]) {
            panic!("cannot stop the test PostgreSQL: {e}");
        }
    }

    /// Start a stopped server again, on the same port and data.
    pub fn start_again(&self) {
        if let Err(e) = self.pg_ctl_start() {
            panic!("cannot restart the test PostgreSQL: {e}");
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the `sandscope` database, as the superuser (trust).
    pub fn url(&self) -> String {
        self.database_url("sandscope")
    }

    pub fn database_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// A URL of the password-protected role with `password`.
    pub fn password_url(&self, password: &str) -> String {
        format!(
            "postgres://{PASSWORD_USER}:{password}@127.0.0.1:{}/sandscope?sslmode=disable",
            self.port
        )
    }

    /// Create another empty database (for tests that need a fresh one on this server).
    pub fn create_database(&self, name: &str) -> String {
        if let Err(e) = self.psql(&format!("CREATE DATABASE {name};")) {
            panic!("create database {name}: {e}");
        }
        self.database_url(name)
    }

    /// Run SQL through `psql` as the superuser on the `postgres` database.
    pub fn psql(&self, sql: &str) -> Result<(), String> {
        self.run_tool(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                sql,
            ],
        )
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Run one of the server's tools, as `postgres` when we are root.
    fn run_tool(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(self.dir.path());
        run(&mut command)
    }

    fn pid(&self) -> Option<u32> {
        let pidfile = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        pidfile.lines().next()?.trim().parse().ok()
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Stop our own server by its PID: fast shutdown, then a kill if it lingers.
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        let start = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists()
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Where a test store's large tables live: on one server, or hash-partitioned over two (one
/// partition local, one a `postgres_fdw` foreign table on the second server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    OneServer,
    TwoServers,
}

/// The servers of one layout: the store's first (`url`), the other shard's second.
pub struct TestCluster {
    pub layout: Layout,
    pub servers: Vec<TestPostgres>,
}

impl TestCluster {
    /// Start the layout's servers (two at once, on the machine's cores); panics with the
    /// reason when one cannot start.
    pub fn start(layout: Layout) -> TestCluster {
        let servers = match layout {
            Layout::OneServer => vec![TestPostgres::start()],
            Layout::TwoServers => {
                let second = std::thread::spawn(TestPostgres::start);
                let first = TestPostgres::start();
                let second = second
                    .join()
                    .unwrap_or_else(|_| panic!("cannot start the second test PostgreSQL"));
                vec![first, second]
            }
        };
        TestCluster { layout, servers }
    }

    /// The store's server.
    pub fn primary(&self) -> &TestPostgres {
        &self.servers[0]
    }

    /// The second shard's server (two-server layout only).
    pub fn shard_server(&self) -> &TestPostgres {
        match self.servers.get(1) {
            Some(pg) => pg,
            None => panic!("the one-server layout has no shard server"),
        }
    }

    /// The store's URL (its first server's `sandscope` database).
    pub fn url(&self) -> String {
        self.primary().url()
    }

    /// What `db init --shards` takes: every server's URL, the store's first; empty for one
    /// server.
    pub fn shard_urls(&self) -> Vec<String> {
        match self.layout {
            Layout::OneServer => Vec::new(),
            Layout::TwoServers => self.servers.iter().map(TestPostgres::url).collect(),
        }
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    match command.output() {
        Ok(Output { status, .. }) if status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{shown} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Err(format!("{shown}: {e}")),
    }
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// The directory holding `initdb`, `pg_ctl` and `psql`: the one of `initdb` on PATH, else the
/// newest `/usr/lib/postgresql/<version>/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                let real = std::fs::canonicalize(&initdb).ok()?;
                return real.parent().map(Path::to_path_buf);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}
