//! `sandscope rules check|list`: what a rule set loads, rejects and cannot apply to Sysmon.

use super::hunt::RuleArgs;
use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use sandscope_sigma::{Level, LoadReport, RuleStatus, SigmaEngineBuilder};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Load rule files or folders and report every rule: loaded, rejected (file, line, reason)
    /// or not applicable to Sysmon. Without a path, checks the bundled SigmaHQ rules.
    Check {
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// Print only rejected and not-applicable rules.
        #[arg(long)]
        problems: bool,
    },
    /// List the loaded rules with their source and licence.
    List {
        #[command(flatten)]
        rules: RuleArgs,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
}

pub fn run(args: RulesArgs) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let code = match args.command {
        RulesCommand::Check {
            paths,
            format,
            problems,
        } => {
            let mut builder = SigmaEngineBuilder::new();
            if paths.is_empty() {
                builder.add_bundled()?;
            }
            for path in &paths {
                builder.add_path(path)?;
            }
            let (_, report) = builder.build();
            write_check(&mut out, &report, format, problems)?;
            // Non-zero when a rule was rejected, so CI can gate a rule repository on it.
            if report.rejected() > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        RulesCommand::List { rules, format } => {
            let (engine, _) = rules.engine()?;
            match format {
                ReportFormat::Json => {
                    let list: Vec<_> = engine.rules().collect();
                    serde_json::to_writer_pretty(&mut out, &list)?;
                    writeln!(out)?;
                }
                ReportFormat::Table => {
                    writeln!(
                        out,
                        "{:<13} {:<36}  {:<10} {:<28} {:<40} RULE",
                        "LEVEL", "ID", "LICENCE", "SOURCE", "AUTHOR"
                    )?;
                    for rule in engine.rules() {
                        writeln!(
                            out,
                            "{:<13} {:<36}  {:<10} {:<28} {:<40} {}  ({})",
                            rule.level.map(Level::as_str).unwrap_or("-"),
                            rule.id.as_deref().unwrap_or("-"),
                            rule.license.as_deref().unwrap_or("-"),
                            match rule.origin {
                                sandscope_sigma::RuleOrigin::Bundled => "SigmaHQ (bundled)",
                                sandscope_sigma::RuleOrigin::File => "local file",
                            },
                            truncate(rule.author.as_deref().unwrap_or("-"), 40),
                            rule.title,
                            rule.file
                        )?;
                    }
                    writeln!(
                        out,
                        "\n{} rules. Bundled rules: SigmaHQ, Detection Rule License 1.1; authors as credited in each rule.",
                        engine.rule_count()
                    )?;
                }
            }
            ExitCode::SUCCESS
        }
    };
    out.flush()?;
    Ok(code)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn write_check(
    out: &mut dyn Write,
    report: &LoadReport,
    format: ReportFormat,
    problems_only: bool,
) -> Result<()> {
    if format == ReportFormat::Json {
        serde_json::to_writer_pretty(&mut *out, report)?;
        writeln!(out)?;
        return Ok(());
    }
    for rule in &report.rules {
        let title = rule.title.as_deref().unwrap_or("-");
        match &rule.status {
            RuleStatus::Loaded if !problems_only => {
                writeln!(out, "loaded          {}  {title}", rule.file)?
            }
            RuleStatus::Loaded => {}
            RuleStatus::Rejected { line, reason } => writeln!(
                out,
                "rejected        {}:{}: {reason}  ({title})",
                rule.file,
                line.map_or("?".to_string(), |l| l.to_string())
            )?,
            RuleStatus::NotApplicable { reason } => {
                writeln!(out, "not-applicable  {}: {reason}  ({title})", rule.file)?
            }
        }
        for warning in &rule.warnings {
            writeln!(out, "    warning: {warning}")?;
        }
    }
    writeln!(
        out,
        "{} rules: {} loaded, {} rejected, {} not applicable to Sysmon",
        report.rules.len(),
        report.loaded(),
        report.rejected(),
        report.not_applicable()
    )?;
    Ok(())
}
