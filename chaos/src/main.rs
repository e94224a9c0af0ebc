//! `raftis-chaos`: runs a profile of fault-injection runs against raftis (or the self-test against
//! the deliberately broken builds) and exits non-zero when a verdict fails.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;

use raftis_chaos::history::Op;
use raftis_chaos::run::{self, RunConfig, RunResult};
use raftis_chaos::{checker, profile, report, workload};

/// Jepsen-style fault injection with linearizability checking for raftis.
#[derive(Debug, Parser)]
#[command(name = "raftis-chaos", version)]
struct Args {
    /// The set of runs: `short` (a few minutes, CI) or `long` (30+ minutes).
    #[arg(long, default_value = "short")]
    profile: String,
    /// Run the self-test instead: build raftis with the `broken` feature (debug) and show that
    /// each broken mode is caught.
    #[arg(long)]
    selftest: bool,
    /// Seed of the fault schedules and the clients' choices (default: from the clock). Use the
    /// seed a report printed to replay its runs.
    #[arg(long)]
    seed: Option<u64>,
    /// Only the runs with these names (e.g. `n3`, `n5`, `broken-early-ack`).
    #[arg(long)]
    only: Vec<String>,
    /// The raftis binary (default: target/release/raftis; for --selftest, the broken debug build).
    #[arg(long)]
    raftis: Option<PathBuf>,
    /// Where runs write their files (default: target/chaos).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override every run's workload duration, in seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// Only check a history written by an earlier run (its history.jsonl) and print the verdicts.
    #[arg(long, value_name = "HISTORY")]
    check: Option<PathBuf>,
}

/// The workspace root (chaos/..), where `target/` is.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("chaos/ has a parent").to_path_buf()
}

/// Builds raftis with the `broken` feature in a target directory of its own (so that the normal
/// debug build is left alone) and returns the binary.
fn build_broken() -> anyhow::Result<PathBuf> {
    let root = workspace();
    let target = root.join("target").join("broken");
    eprintln!("chaos: building raftis with --features broken (debug) into {}", target.display());
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "-p", "raftis", "--bin", "raftis", "--features", "broken", "--target-dir"])
        .arg(&target)
        .status()
        .context("run cargo")?;
    if !status.success() {
        bail!("cargo build --features broken failed: {status}");
    }
    Ok(target.join("debug").join("raftis"))
}

fn check_file(path: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let ops: Vec<Op> =
        text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect::<Result<_, _>>()?;
    let verdicts = [
        checker::register::check(&ops, Duration::from_secs(120)),
        checker::append::check(&ops),
        checker::append::check_workload(&ops, checker::append::LIST_WORKLOAD),
        checker::cycle::check(&ops, checker::append::LIST_WORKLOAD),
        checker::bank::check(&ops, workload::BANK_ACCOUNTS, workload::BANK_INITIAL * workload::BANK_ACCOUNTS as i64),
        checker::set::check(&ops),
        checker::queue::check(&ops),
    ];
    let mut ok = true;
    for v in verdicts.iter().filter(|v| v.counts.total() > 0) {
        println!("{:<9} {:?} {:?}", v.workload, v.validity, v.counts);
        for a in &v.anomalies {
            ok = false;
            println!("  [{}] {}", a.kind, a.detail);
            for o in &a.ops {
                println!("    {}", report::op_line(o));
            }
        }
    }
    Ok(ok)
}

async fn main_async(args: Args) -> anyhow::Result<bool> {
    if let Some(path) = &args.check {
        return check_file(path);
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(1)
            % 1_000_000
    });
    let out = args.out.clone().unwrap_or_else(|| workspace().join("target").join("chaos"));
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let adjust = |mut s: run::RunSpec| {
        if let Some(d) = args.duration {
            s.duration = Duration::from_secs(d);
        }
        s
    };

    if args.selftest {
        let raftis = match &args.raftis {
            Some(p) => p.clone(),
            None => build_broken()?,
        };
        let replay = format!("raftis-chaos --selftest --seed {seed}");
        let cfg = RunConfig { raftis, out, seed, replay };
        let mut all_caught = true;
        let mut lines = Vec::new();
        for t in profile::selftest().into_iter().filter(|t| wanted(&t.spec.name)) {
            let spec = adjust(t.spec);
            eprintln!("chaos: self-test {} (RAFTIS_BROKEN={}), seed {seed}", spec.name, t.mode);
            let r = run::run(&spec, &cfg).await?;
            print!("{}", report::summary(&r));
            let kinds = r.kinds();
            let caught: Vec<&str> = t.expect.iter().copied().filter(|k| kinds.contains(*k)).collect();
            // Which checkers caught it (workloads, and "cluster" for digests, panics, ...).
            let expected = |a: &checker::Anomaly| t.expect.contains(&a.kind.as_str());
            let mut by: Vec<&str> =
                r.verdicts.iter().filter(|v| v.anomalies.iter().any(expected)).map(|v| v.workload.as_str()).collect();
            if r.cluster_anomalies.iter().any(expected) {
                by.push("cluster");
            }
            let line = if caught.is_empty() {
                all_caught = false;
                format!("NOT CAUGHT {}: expected one of {:?}, found {:?}", t.mode, t.expect, kinds)
            } else {
                format!("caught {}: {:?} by {:?} (all anomalies: {:?})", t.mode, caught, by, kinds)
            };
            println!("{line}\n");
            lines.push(line);
        }
        println!("self-test summary (seed {seed}):");
        for l in &lines {
            println!("  {l}");
        }
        println!("self-test: {}", if all_caught { "every broken mode was caught" } else { "FAILED" });
        return Ok(all_caught);
    }

    let Some(specs) = profile::runs(&args.profile) else {
        bail!("unknown profile {:?} (short, long)", args.profile);
    };
    let raftis = args.raftis.clone().unwrap_or_else(|| workspace().join("target").join("release").join("raftis"));
    if !raftis.exists() {
        bail!("{} does not exist: run `cargo build --release` first, or pass --raftis", raftis.display());
    }
    let replay = format!("raftis-chaos --profile {} --seed {seed}", args.profile);
    let cfg = RunConfig { raftis, out, seed, replay };
    let mut results: Vec<RunResult> = Vec::new();
    for spec in specs.into_iter().filter(|s| wanted(&s.name)).map(adjust) {
        eprintln!("chaos: run {} ({} nodes, {:?}), seed {seed}", spec.name, spec.nodes, spec.duration);
        let r = run::run(&spec, &cfg).await?;
        print!("{}", report::summary(&r));
        results.push(r);
    }
    let passed = results.iter().all(|r| r.passed());
    let ops: usize = results.iter().map(|r| r.ops.total()).sum();
    let faults: usize = results.iter().map(|r| r.faults).sum();
    let elections: usize = results.iter().map(|r| r.elections).sum();
    let member_ops: usize = results.iter().map(|r| r.member.ops()).sum();
    println!(
        "chaos profile {}: {} ({} runs, {ops} ops, {faults} faults, {member_ops} membership operations, \
         {elections} elections); seed {seed}",
        args.profile,
        if passed { "PASS" } else { "FAIL" },
        results.len()
    );
    if !passed {
        println!("replay: raftis-chaos --profile {} --seed {seed} [--only NAME]", args.profile);
    }
    Ok(passed)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(main_async(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("raftis-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}
