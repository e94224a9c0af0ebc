//! `raftis-conformance`: replays cases recorded from a real redis-server against any server and
//! reports every reply that differs byte for byte (`check`), or records the replies of a live server
//! into the case files (`record`).
//!
//! The case format is described in `conformance/README.md`.

#[path = "conformance/case.rs"]
mod case;
#[path = "conformance/wire.rs"]
mod wire;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use case::{Case, CaseFile, MAX_CONNS};
use wire::{Conn, End, Outcome};

/// Command line of `raftis-conformance`.
#[derive(Parser)]
#[command(name = "raftis-conformance", about = "Replay recorded Redis conformance cases")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay every case and report every difference (exit 1 if any case failed).
    Check(Options),
    /// Run the cases against a real redis-server and rewrite their `<` lines with its replies.
    Record(Options),
}

#[derive(Args)]
struct Options {
    /// Address of the server, host:port.
    #[arg(long)]
    addr: String,
    /// Only run the cases whose title contains this text (case-insensitive).
    #[arg(long)]
    filter: Option<String>,
    /// How long to wait for a connection, a write or a whole reply, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Case files, or directories whose `*.case` files are all used (sorted).
    #[arg(default_value = "conformance")]
    paths: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (opts, record) = match &cli.command {
        Command::Check(opts) => (opts, false),
        Command::Record(opts) => (opts, true),
    };
    match run(opts, record) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("raftis-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Loads the files, checks that the server answers, then checks or records. `Ok(false)` means some
/// case failed (check) or could not be recorded (record); `Err` is a usage or connection error.
fn run(opts: &Options, record: bool) -> Result<bool> {
    let files = load_files(&opts.paths)?;
    let timeout = Duration::from_millis(opts.timeout_ms);
    Conn::open(&opts.addr, timeout)?;
    let runner = Runner { addr: &opts.addr, timeout, filter: opts.filter.as_ref().map(|f| f.to_lowercase()) };
    if record {
        return runner.record(&files);
    }
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        for case in runner.selected(file) {
            let report = runner.check_case(&file.path, case);
            if report.is_empty() {
                passed += 1;
            } else {
                failed += 1;
                println!("FAIL {}:{}: {}", file.path.display(), case.line, case.title);
                print!("{report}");
            }
        }
    }
    println!("conformance: {passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// Expands directories into their sorted `*.case` files and parses everything.
fn load_files(paths: &[PathBuf]) -> Result<Vec<CaseFile>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            found.retain(|p| p.extension().is_some_and(|e| e == "case"));
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            bail!("{}: no such file or directory", path.display());
        }
    }
    if files.is_empty() {
        bail!("no .case files found");
    }
    files.iter().map(|p| CaseFile::load(p)).collect()
}

/// Runs cases against one server.
struct Runner<'a> {
    addr: &'a str,
    timeout: Duration,
    /// Lower-cased `--filter`.
    filter: Option<String>,
}

/// What running one case produced.
struct CaseRun {
    /// Per step: (command line number, outcome).
    replies: Vec<(usize, Outcome)>,
    /// Per connection that received bytes after its last expected reply: (connection, bytes).
    leftovers: Vec<(usize, Vec<u8>)>,
}

impl Runner<'_> {
    /// The cases of `file` that pass the filter.
    fn selected<'f>(&self, file: &'f CaseFile) -> impl Iterator<Item = &'f Case> + 'f {
        let filter = self.filter.clone();
        file.cases.iter().filter(move |c| filter.as_ref().is_none_or(|f| c.title.to_lowercase().contains(f)))
    }

    /// Flushes the server, then runs every step of `case` on its own fresh connections. Returns the
    /// outcome of each step and what the server sent after the last reply, per connection.
    fn run_case(&self, case: &Case) -> Result<CaseRun> {
        wire::flushall(self.addr, self.timeout).context("before the case")?;
        let mut conns: Vec<Option<Conn>> = (0..=MAX_CONNS).map(|_| None).collect();
        let mut replies = Vec::new();
        for step in &case.steps {
            let slot = &mut conns[step.conn];
            if slot.is_none() {
                match Conn::open(self.addr, self.timeout) {
                    Ok(conn) => *slot = Some(conn),
                    Err(e) => {
                        let end = End::Error(format!("{e:#}"));
                        replies.push((step.line, Outcome { bytes: vec![], end }));
                        continue;
                    }
                }
            }
            let conn = slot.as_mut().expect("opened above");
            let mut outcome = conn.exchange(&step.payload, &step.args, step.replies);
            if step.flags.sort {
                outcome.bytes = wire::sorted(&outcome.bytes);
            }
            replies.push((step.line, outcome));
        }
        let leftovers = conns
            .iter_mut()
            .enumerate()
            .filter_map(|(n, c)| Some((n, c.as_mut()?.leftover())))
            .filter(|(_, extra)| !extra.is_empty())
            .collect();
        Ok(CaseRun { replies, leftovers })
    }

    /// Runs one case and describes every difference (empty if it passed).
    fn check_case(&self, path: &Path, case: &Case) -> String {
        let mut report = String::new();
        let CaseRun { replies, leftovers } = match self.run_case(case) {
            Ok(r) => r,
            Err(e) => return format!("  {e:#}\n"),
        };
        for (step, (_, got)) in case.steps.iter().zip(&replies) {
            if wire::matches(&step.expected, got, step.flags) {
                continue;
            }
            report.push_str(&format!("  {}:{}: {}\n    expected:\n", path.display(), step.line, step.text));
            for line in case::render(&step.expected) {
                report.push_str(&format!("      {line}\n"));
            }
            report.push_str("    got:\n");
            for line in case::render(got) {
                report.push_str(&format!("      {line}\n"));
            }
        }
        for (conn, extra) in leftovers {
            report.push_str(&format!("  connection {conn} received bytes after its last expected reply:\n"));
            let extra = Outcome { bytes: extra, end: End::Complete };
            for line in case::render(&extra) {
                report.push_str(&format!("      {line}\n"));
            }
        }
        report
    }

    /// Records every selected case and rewrites the files whose replies changed.
    fn record(&self, files: &[CaseFile]) -> Result<bool> {
        let (mut cases, mut ok) = (0, true);
        for file in files {
            let mut recorded = Vec::new();
            for case in self.selected(file) {
                let CaseRun { replies, leftovers } =
                    self.run_case(case).with_context(|| format!("{}:{}", file.path.display(), case.line))?;
                for (line, outcome) in &replies {
                    if let End::Error(e) = &outcome.end {
                        eprintln!("{}:{line}: not recorded: {e}", file.path.display());
                        ok = false;
                    }
                }
                if !leftovers.is_empty() {
                    eprintln!(
                        "{}:{}: warning: replies left unread at the end of the case",
                        file.path.display(),
                        case.line
                    );
                }
                // Keep the lines of a step whose recorded reply still matches (a `t` or `s` step
                // whose details changed, such as a client id): re-recording then only changes what
                // really changed.
                for (step, (line, outcome)) in case.steps.iter().zip(replies) {
                    let unchanged = wire::matches(&step.expected, &outcome, step.flags);
                    if !unchanged && !matches!(outcome.end, End::Error(_)) {
                        recorded.push((line, outcome));
                    }
                }
                cases += 1;
            }
            let text = file.rewrite(&recorded);
            let old = std::fs::read_to_string(&file.path)?;
            if text != old {
                std::fs::write(&file.path, text).with_context(|| format!("writing {}", file.path.display()))?;
                println!("rewrote {}", file.path.display());
            }
        }
        println!("recorded {cases} cases");
        Ok(ok)
    }
}
