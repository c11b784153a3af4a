use anyhow::Result;
use clap::Args;
use sandscope_event::SysmonEvent;
use sandscope_read::{EventSink, ReadWarning, read_path};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct EventsArgs {
    /// Log files or directories (walked recursively); `-` reads standard input.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print counts per event id and per channel instead of the events.
    #[arg(long)]
    pub stats: bool,
}

struct JsonLines<W: Write> {
    out: W,
    failed: Option<std::io::Error>,
}

impl<W: Write> EventSink for JsonLines<W> {
    fn event(&mut self, event: SysmonEvent) {
        if self.failed.is_some() {
            return;
        }
        let line = serde_json::json!({
            "source": &*event.source.file,
            "record_id": event.source.record_id,
            "event_id": event.event_id,
            "time": event.time.to_string(),
            "computer": event.computer,
            "channel": event.channel,
            "data": event.data,
        });
        if let Err(e) = writeln!(self.out, "{line}") {
            self.failed = Some(e);
        }
    }
    fn warning(&mut self, warning: ReadWarning) {
        eprintln!("warning: {warning}");
    }
}

pub fn run(args: EventsArgs) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut sink = JsonLines {
        out: std::io::BufWriter::new(stdout.lock()),
        failed: None,
    };
    let mut damaged = false;
    let mut failed = false;
    for path in &args.paths {
        match read_path(path, &mut sink) {
            Ok(stats) => damaged |= stats.warnings > 0,
            Err(err) => {
                eprintln!("error: {err}");
                failed = true;
            }
        }
    }
    sink.out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else if damaged {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
