//! One data directory, several processes.
//!
//! The embedded store belongs to the one process that opened it (redb's file lock). So that the
//! read commands (`search`, `show`, `pivot`, `graph`, `diff` of stored reports) and `ingest` work
//! while `sandscope serve` holds a directory, the server listens on a control socket and runs
//! forwarded commands on its own open store and Sigma engine; the command line asks it before
//! opening the directory itself, and prints exactly what the command would have printed.
//!
//! Every process that opens a data directory leaves an owner record, `DATA/run/owner.json`
//! (pid, command, and for a server its URL and control socket), in a folder only its owner may
//! enter (0700; the socket is `DATA/run/control.sock`, or a private temporary folder when that
//! path is too long for a Unix socket). Only the owner's user (and root) can therefore reach
//! the socket, and a refused open names the process that holds the directory and what to do.
//!
//! Wire format, one request per connection: the client sends one JSON line
//! `{"argv": [...], "cwd": "..."}` (at most [`MAX_REQUEST_BYTES`]); the server answers with
//! frames `tag (1 byte) · length (u32, big-endian) · payload`: `o` standard output, `e` standard
//! error, `x` the exit code (one byte, last frame).

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use sandscope_server::StoreBackend;
use sandscope_store::{Store, StoreError};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The largest request line a client may send.
pub const MAX_REQUEST_BYTES: u64 = 1 << 20;
/// Forwarded commands running at once; more are refused with a clear message.
const MAX_CONNECTIONS: usize = 16;
/// `sockaddr_un` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 100;
const RUN_DIR: &str = "run";
const OWNER_FILE: &str = "owner.json";
const SOCKET_FILE: &str = "control.sock";

/// Who holds a data directory, as its owner record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// The subcommand: `serve`, `ingest`, `search`…
    pub command: String,
    /// A server's URL.
    pub url: Option<String>,
    /// A server's control socket.
    pub socket: Option<PathBuf>,
}

impl Owner {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "pid": self.pid,
            "command": self.command,
            "url": self.url,
            "socket": self.socket.as_ref().map(|p| p.display().to_string()),
        })
    }

    fn from_json(value: &serde_json::Value) -> Option<Owner> {
        Some(Owner {
            pid: u32::try_from(value.get("pid")?.as_u64()?).ok()?,
            command: value.get("command")?.as_str()?.to_string(),
            url: value
                .get("url")
                .and_then(|u| u.as_str())
                .map(str::to_string),
            socket: value
                .get("socket")
                .and_then(|s| s.as_str())
                .map(PathBuf::from),
        })
    }

    /// Whether the process is still running (its `/proc` entry exists).
    fn is_alive(&self) -> bool {
        Path::new("/proc").join(self.pid.to_string()).exists()
    }

    /// The plain-words explanation of a refused open.
    fn explain(&self, data: &Path) -> String {
        let dir = data.display();
        match (self.command.as_str(), &self.url) {
            ("serve", Some(url)) => format!(
                "the data directory {dir} is held by `sandscope serve` (pid {}, serving {url}); \
                 stop it first, or leave it running and use it: read commands and `ingest` \
                 go through it by themselves, uploads go to {url}/api/v3/sandscope/ingest",
                self.pid
            ),
            (command, _) => format!(
                "the data directory {dir} is held by `sandscope {command}` (pid {}); wait for it \
                 to finish, or stop it",
                self.pid
            ),
        }
    }
}

fn run_dir(data: &Path) -> PathBuf {
    data.join(RUN_DIR)
}

/// The owner record of `data`, if one is there and its process is alive.
pub fn owner(data: &Path) -> Option<Owner> {
    let text = std::fs::read(run_dir(data).join(OWNER_FILE)).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    Owner::from_json(&value).filter(Owner::is_alive)
}

/// The owner record of this process; removed (with a server's socket) when dropped.
pub struct OwnerRecord {
    file: PathBuf,
    socket: Option<PathBuf>,
    /// A private folder holding the socket when the data directory's path is too long.
    _socket_dir: Option<tempfile::TempDir>,
}

impl Drop for OwnerRecord {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

fn write_owner(data: &Path, owner: &Owner) -> Result<PathBuf> {
    let dir = run_dir(data);
    let file = dir.join(OWNER_FILE);
    let temp = dir.join(format!("{OWNER_FILE}.{}", std::process::id()));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("writing {}", temp.display()))?;
    out.write_all(owner.to_json().to_string().as_bytes())
        .and_then(|()| out.sync_all())
        .with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, &file).with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

fn make_run_dir(data: &Path) -> Result<PathBuf> {
    let dir = run_dir(data);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    // An existing folder keeps its mode: make sure no one else can enter it.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .with_context(|| format!("securing {}", dir.display()))?;
    Ok(dir)
}

/// Open the store in `data` for `command`, leaving an owner record. A directory another
/// process holds is refused with one plain sentence naming that process.
pub fn open_store(data: &Path, command: &str) -> Result<(Store, OwnerRecord)> {
    let store = Store::open(data).map_err(|err| refused(data, err))?;
    // The directory is ours now (redb's lock): any record left is a dead process's.
    make_run_dir(data)?;
    let record = Owner {
        pid: std::process::id(),
        command: command.to_string(),
        url: None,
        socket: None,
    };
    let file = write_owner(data, &record)?;
    Ok((
        store,
        OwnerRecord {
            file,
            socket: None,
            _socket_dir: None,
        },
    ))
}

/// Open the data directory for a command that only reads: read-only, so nothing is written and
/// read-only media work. A directory that needs writing first (not closed cleanly, or an index
/// to rebuild) is opened for writing once to recover, with a note.
pub fn open_store_for_reading(dir: &Path) -> Result<Store> {
    let store = match Store::open_read_only(dir) {
        Ok(store) => store,
        Err(e @ (StoreError::NeedsRecovery(_) | StoreError::IndexOutdated(_))) => {
            let (why, fix) = match e {
                StoreError::NeedsRecovery(_) => ("was not closed cleanly", "repair it"),
                _ => ("has a missing or outdated search index", "rebuild it"),
            };
            eprintln!(
                "note: {} {why}; opening it for writing once to {fix}",
                dir.display()
            );
            return Ok(Store::open(dir)?);
        }
        Err(e) => return Err(e.into()),
    };
    let pending = store.pending_samples()?;
    if pending > 0 {
        eprintln!(
            "warning: {pending} sample(s) in {} are stored but not yet indexed, so searches \
             miss them; the next write (`sandscope ingest`, `serve`) indexes them",
            dir.display()
        );
    }
    Ok(store)
}

pub(crate) fn refused(data: &Path, err: StoreError) -> anyhow::Error {
    if err.is_locked() {
        return match owner(data) {
            Some(owner) => anyhow::anyhow!(owner.explain(data)),
            None => anyhow::anyhow!(
                "the data directory {} is held by another process; wait for it to finish, or \
                 stop it",
                data.display()
            ),
        };
    }
    anyhow::Error::new(err).context(format!("opening the data directory {}", data.display()))
}

/// Run a read command on the store in `data` (default: `$SANDSCOPE_DATA` or
/// `./sandscope-data`): through the server that holds it, if one does, else on the store
/// opened here read-only. `f` writes the command's output to the writer it is given.
pub fn read_command(
    data: Option<PathBuf>,
    f: impl FnOnce(&Store, &mut dyn Write) -> Result<ExitCode>,
) -> Result<ExitCode> {
    let data = super::ingest::data_dir(data);
    if let Some(code) = forward(&data)? {
        return Ok(code);
    }
    let store =
        open_store_for_reading(&data).map_err(|err| match err.downcast::<StoreError>() {
            Ok(err) => refused(&data, err),
            Err(err) => err,
        })?;
    // Written through a handle so a closed pipe (`| head`) is an error, not a panic.
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    f(&store, &mut out)
}

/// Run `command` (a read command or `ingest`) through the server that holds `data`, if one
/// does: `Some(exit code)` when it ran there, `None` when no server holds the directory.
pub fn forward(data: &Path) -> Result<Option<ExitCode>> {
    let Some(owner) = owner(data) else {
        return Ok(None);
    };
    let Some(socket) = &owner.socket else {
        return Ok(None);
    };
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        // A server killed before it removed its socket, or one still starting.
        Err(_) => return Ok(None),
    };
    let argv = std::env::args_os()
        .map(|a| {
            a.into_string()
                .map_err(|a| anyhow::anyhow!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<Vec<String>>>()?;
    let cwd = std::env::current_dir().context("the current directory")?;
    let request = serde_json::json!({"argv": argv, "cwd": cwd.display().to_string()});
    let mut line = request.to_string();
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .with_context(|| format!("asking the server at {}", socket.display()))?;
    let mut reader = BufReader::new(stream);
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    loop {
        let Some((tag, payload)) = read_frame(&mut reader)
            .with_context(|| format!("reading the server's answer ({})", socket.display()))?
        else {
            bail!(
                "the server (pid {}) closed the connection before the command finished",
                owner.pid
            );
        };
        match tag {
            b'o' => {
                let mut out = stdout.lock();
                out.write_all(&payload)?;
                out.flush()?;
            }
            b'e' => {
                let mut err = stderr.lock();
                err.write_all(&payload)?;
                err.flush()?;
            }
            b'x' => return Ok(Some(ExitCode::from(payload.first().copied().unwrap_or(1)))),
            other => bail!("the server sent an unknown frame `{}`", other as char),
        }
    }
}

/// Largest frame a client accepts (the server writes in smaller pieces).
const MAX_FRAME: u32 = 64 << 20;

fn read_frame(reader: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match reader.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {len} bytes")));
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// One of the two output streams of a forwarded command, written as frames.
struct FrameWriter {
    tag: u8,
    stream: Rc<RefCell<UnixStream>>,
}

impl Write for FrameWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let piece = &buf[..buf.len().min(1 << 20)];
        let mut frame = Vec::with_capacity(piece.len() + 5);
        frame.push(self.tag);
        frame.extend_from_slice(&(piece.len() as u32).to_be_bytes());
        frame.extend_from_slice(piece);
        self.stream.borrow_mut().write_all(&frame)?;
        Ok(piece.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.borrow_mut().flush()
    }
}

/// The commands a server runs for the command line.
#[derive(Parser)]
#[command(name = "sandscope")]
struct Forwarded {
    #[command(subcommand)]
    command: ForwardedCommand,
}

#[derive(Subcommand)]
enum ForwardedCommand {
    Search(super::search::SearchArgs),
    Show(super::show::ShowArgs),
    Pivot(super::pivot::PivotArgs),
    Graph(super::graph::GraphArgs),
    Diff(super::diff::DiffArgs),
    Ingest(super::ingest::IngestArgs),
}

/// The running control socket of `sandscope serve`; stops accepting and removes its files
/// when dropped.
pub struct ControlServer {
    _record: OwnerRecord,
}

/// Start answering forwarded commands for `backend`'s store in `data`, and leave the owner
/// record that tells the command line where (`url`: what the server serves).
pub fn serve_control(data: &Path, backend: Arc<StoreBackend>, url: &str) -> Result<ControlServer> {
    let dir = make_run_dir(data)?;
    let mut socket = dir.join(SOCKET_FILE);
    let mut socket_dir = None;
    if std::path::absolute(&socket)
        .map(|p| p.as_os_str().len())
        .unwrap_or(usize::MAX)
        > MAX_SOCKET_PATH
    {
        // Too long for a Unix socket: a private (0700) temporary folder instead.
        let private = tempfile::Builder::new()
            .prefix("sandscope-control-")
            .tempdir()
            .context("creating a folder for the control socket")?;
        socket = private.path().join(SOCKET_FILE);
        socket_dir = Some(private);
    }
    let socket = std::path::absolute(&socket).unwrap_or(socket);
    // The store's lock is ours, so a socket left here belongs to a dead server.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .with_context(|| format!("creating the control socket {}", socket.display()))?;
    let record = Owner {
        pid: std::process::id(),
        command: "serve".to_string(),
        url: Some(url.to_string()),
        socket: Some(socket.clone()),
    };
    let file = write_owner(data, &record)?;
    let running = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if running.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    running.fetch_sub(1, Ordering::SeqCst);
                    refuse_busy(stream);
                    continue;
                }
                let backend = backend.clone();
                let running = running.clone();
                let spawned = std::thread::Builder::new()
                    .name("control-command".into())
                    .spawn(move || {
                        answer(stream, &backend);
                        running.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    eprintln!("control socket: could not start a thread for a command");
                }
            }
        })
        .context("starting the control socket's thread")?;
    Ok(ControlServer {
        _record: OwnerRecord {
            file,
            socket: Some(socket),
            _socket_dir: socket_dir,
        },
    })
}

fn refuse_busy(stream: UnixStream) {
    let stream = Rc::new(RefCell::new(stream));
    let mut err = FrameWriter {
        tag: b'e',
        stream: stream.clone(),
    };
    let _ = writeln!(
        err,
        "sandscope: the server is running {MAX_CONNECTIONS} commands already; try again"
    );
    let _ = exit_frame(&stream, 1);
}

fn exit_frame(stream: &Rc<RefCell<UnixStream>>, code: u8) -> std::io::Result<()> {
    stream.borrow_mut().write_all(&[b'x', 0, 0, 0, 1, code])
}

/// Read one request from `stream`, run it, answer with its output and exit code.
fn answer(stream: UnixStream, backend: &StoreBackend) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    let mut line = String::new();
    let read = BufReader::new(reader)
        .take(MAX_REQUEST_BYTES)
        .read_line(&mut line);
    let _ = stream.set_read_timeout(None);
    let stream = Rc::new(RefCell::new(stream));
    let mut out = FrameWriter {
        tag: b'o',
        stream: stream.clone(),
    };
    let mut err = FrameWriter {
        tag: b'e',
        stream: stream.clone(),
    };
    let code = match read
        .map_err(anyhow::Error::from)
        .and_then(|_| run_request(&line, backend, &mut out, &mut err))
    {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "sandscope: {}", crate::error_chain(&e));
            1
        }
    };
    let _ = out.flush();
    let _ = exit_frame(&stream, code);
}

fn run_request(
    line: &str,
    backend: &StoreBackend,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let request: serde_json::Value =
        serde_json::from_str(line.trim_end()).context("a malformed request")?;
    let argv: Vec<String> = request
        .get("argv")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let cwd = request
        .get("cwd")
        .and_then(|c| c.as_str())
        .map(PathBuf::from)
        .filter(|c| c.is_absolute())
        .context("the request names no absolute working directory")?;
    let forwarded = match Forwarded::try_parse_from(&argv) {
        Ok(forwarded) => forwarded,
        Err(e) => bail!("{}", e.render()),
    };
    let store = backend.store();
    let code = match forwarded.command {
        ForwardedCommand::Search(args) => super::search::execute(args, store, out)?,
        ForwardedCommand::Show(args) => super::show::execute(args, store, out)?,
        ForwardedCommand::Pivot(args) => super::pivot::execute(args, store, out)?,
        ForwardedCommand::Graph(args) => super::graph::execute(args, store, out)?,
        ForwardedCommand::Diff(mut args) => {
            // A side is a client's file, or else a stored report's id (kept as written).
            for side in [&mut args.left, &mut args.right] {
                let file = resolve(&cwd, side);
                if file.exists() {
                    *side = file;
                }
            }
            super::diff::execute(args, Some(store), out)?
        }
        ForwardedCommand::Ingest(mut args) => {
            if args.watch.watch.is_some() {
                bail!("a running server watches a folder only when started with `serve --watch`");
            }
            if args.sigma.is_set() {
                bail!(
                    "this server ingests with the Sigma rules it was started with: drop \
                     --rules/--no-default-rules/--no-sigma, or stop the server"
                );
            }
            args.paths = args.paths.iter().map(|p| resolve(&cwd, p)).collect();
            super::ingest::execute(
                &args,
                store,
                backend.pipeline(),
                out,
                err,
                super::ingest::Shown {
                    progress: false,
                    notes: true,
                },
            )?
        }
    };
    Ok(exit_byte(code))
}

/// A client's path, relative to the client's working directory.
fn resolve(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// The byte behind an `ExitCode` (our commands only use 0, 1 and 3).
fn exit_byte(code: ExitCode) -> u8 {
    if code == ExitCode::SUCCESS {
        0
    } else if code == ExitCode::from(3) {
        3
    } else {
        1
    }
}
