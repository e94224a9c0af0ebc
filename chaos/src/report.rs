//! What a run leaves behind: the history (`history.jsonl`), the faults and leaders
//! (`faults.json`, `leaders.json`), a summary (`summary.json`), one file per anomaly with the
//! smallest failing window of the history (`anomaly-N-KIND.txt`), and a timeline picture of
//! operations, faults and leaders (`timeline.html`, an inline SVG).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::checker::{Anomaly, Validity};
use crate::history::{FaultEvent, LeaderSample, Op, Outcome};
use crate::run::{RunResult, RunSpec};

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// One operation as a line a person can read.
pub fn op_line(o: &Op) -> String {
    let ret = match &o.ret {
        Some(r) => serde_json::to_string(r).unwrap_or_default(),
        None => "-".into(),
    };
    let call = serde_json::to_string(&o.call).unwrap_or_default();
    let mut line = format!(
        "#{:<6} p{:<4} {:>10.3} ms .. {:>10.3} ms  {:<5} {:<12} {call} -> {ret}",
        o.index,
        o.process,
        ms(o.invoke),
        ms(o.complete),
        format!("{:?}", o.outcome).to_lowercase(),
        o.key,
    );
    if !o.node.is_empty() {
        let _ = write!(line, "  @{}", o.node);
    }
    if !o.error.is_empty() {
        let _ = write!(line, "  ({})", o.error);
    }
    line
}

fn write_anomaly(dir: &Path, n: usize, a: &Anomaly, result: &RunResult) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join(format!("anomaly-{n}-{}.txt", a.kind));
    let mut f = std::fs::File::create(&path)?;
    writeln!(f, "{}: {}", a.kind, a.detail)?;
    writeln!(f, "run {} seed {}; replay: {}", result.name, result.seed, result.replay)?;
    if !a.ops.is_empty() {
        writeln!(f, "\nthe operations (times from the start of the run; info = indeterminate):")?;
        for o in &a.ops {
            writeln!(f, "{}", op_line(o))?;
        }
        writeln!(f, "\nas JSON lines:")?;
        for o in &a.ops {
            writeln!(f, "{}", serde_json::to_string(o).unwrap_or_default())?;
        }
    }
    Ok(path)
}

/// At most this many anomalies get a file (and a line in the summary): the first ones are the
/// proof, the rest are usually the same fault seen again.
const MAX_FILES: usize = 20;

/// Every anomaly of a run, cluster-wide ones first.
fn anomalies(r: &RunResult) -> impl Iterator<Item = &Anomaly> {
    r.cluster_anomalies.iter().chain(r.verdicts.iter().flat_map(|v| v.anomalies.iter()))
}

/// Writes every file of a run into `result.dir`.
pub fn write_run(
    result: &RunResult,
    ops: &[Op],
    faults: &[FaultEvent],
    leaders: &[LeaderSample],
    spec: &RunSpec,
) -> anyhow::Result<()> {
    let dir = &result.dir;
    std::fs::create_dir_all(dir)?;
    let mut h = std::io::BufWriter::new(std::fs::File::create(dir.join("history.jsonl"))?);
    for o in ops {
        writeln!(h, "{}", serde_json::to_string(o)?)?;
    }
    h.flush()?;
    std::fs::write(dir.join("faults.json"), serde_json::to_string_pretty(faults)?)?;
    std::fs::write(dir.join("leaders.json"), serde_json::to_string(leaders)?)?;
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(result)?)?;
    for (i, a) in anomalies(result).enumerate().take(MAX_FILES) {
        write_anomaly(dir, i + 1, a, result)?;
    }
    std::fs::write(dir.join("timeline.html"), timeline(result, ops, faults, leaders, spec))?;
    Ok(())
}

/// A human summary of one run, several lines.
pub fn summary(r: &RunResult) -> String {
    let mut s = String::new();
    let verdict = if r.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        s,
        "{verdict} {} ({} nodes, seed {}): {} ops ({} ok, {} fail, {} info), {} faults, {} elections, {:.0} s",
        r.name,
        r.nodes,
        r.seed,
        r.ops.total(),
        r.ops.ok,
        r.ops.fail,
        r.ops.info,
        r.faults,
        r.elections,
        r.seconds
    );
    let _ = writeln!(s, "  faults injected: {}", r.fault_kinds.join(", "));
    let m = &r.member;
    if m.ops() > 0 || m.remove_failed > 0 || m.skipped > 0 {
        let _ = writeln!(
            s,
            "  membership: {} removed, {} removals not confirmed, {} found removed late, {} rejoined during \
             the run ({} seen through to voter), {} member faults skipped; final heal rejoined {}, all \
             voters after {} ms",
            m.removed,
            m.remove_failed,
            m.found_removed,
            m.rejoined,
            m.became_voter,
            m.skipped,
            m.heal_rejoined,
            m.heal_ms
        );
    }
    if m.split_asked > 0 {
        let _ = writeln!(
            s,
            "  member-split: {} removals of two voters asked across a partition, {} acknowledged while it held",
            m.split_asked, m.split_removed
        );
    }
    for v in &r.verdicts {
        let _ = writeln!(
            s,
            "  {:<9} {:<8} {} ops ({} ok, {} fail, {} info){}",
            v.workload,
            format!("{:?}", v.validity).to_lowercase(),
            v.counts.total(),
            v.counts.ok,
            v.counts.fail,
            v.counts.info,
            if v.anomalies.is_empty() { String::new() } else { format!(", {} anomalies", v.anomalies.len()) }
        );
        for note in &v.notes {
            let _ = writeln!(s, "            note: {note}");
        }
    }
    let total = anomalies(r).count();
    for (i, a) in anomalies(r).enumerate().take(MAX_FILES) {
        let n = i + 1;
        let _ = writeln!(s, "  anomaly {n} [{}]: {}", a.kind, a.detail);
        let _ = writeln!(s, "    -> {}", r.dir.join(format!("anomaly-{n}-{}.txt", a.kind)).display());
    }
    if total > MAX_FILES {
        let _ = writeln!(s, "  ... and {} more anomalies (all in summary.json)", total - MAX_FILES);
    }
    if !r.passed() {
        let _ = writeln!(s, "  replay: {}", r.replay);
    }
    if r.verdicts.iter().any(|v| v.validity == Validity::Unknown) {
        let _ = writeln!(s, "  (unknown: a linearizability search hit its time bound; not counted as a failure)");
    }
    let _ = writeln!(s, "  files: {}", r.dir.display());
    s
}

/// `s` cut to at most `n` characters.
fn short(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The timeline: one row per client with its operations (green ok, grey fail, orange info; red
/// outline when part of an anomaly), a row of faults, and a row of leaders (one colour per node).
pub fn timeline(r: &RunResult, ops: &[Op], faults: &[FaultEvent], leaders: &[LeaderSample], spec: &RunSpec) -> String {
    let end = ops.iter().map(|o| o.complete).chain(faults.iter().filter_map(|f| f.end)).max().unwrap_or(1).max(1);
    let width = 1800.0;
    let left = 90.0;
    let x = |t: u64| left + (t as f64 / end as f64) * (width - left - 10.0);
    let mut processes: Vec<usize> = ops.iter().map(|o| o.process).collect();
    processes.sort();
    processes.dedup();
    let row_h = 14.0;
    let fault_rows = 4usize;
    let top = 40.0 + (fault_rows as f64 + 1.0) * row_h;
    let height = top + (processes.len() as f64 + 1.0) * row_h + 30.0;
    let bad: std::collections::HashSet<usize> =
        r.verdicts.iter().flat_map(|v| v.anomalies.iter()).flat_map(|a| a.ops.iter().map(|o| o.index)).collect();
    let colours = ["#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="10">"#
    );
    // Time axis, every 5 s.
    let mut t = 0u64;
    while t <= end {
        let _ = write!(
            svg,
            r##"<line x1="{0}" y1="30" x2="{0}" y2="{1}" stroke="#eee"/><text x="{0}" y="25">{2}s</text>"##,
            x(t),
            height - 20.0,
            t / 1_000_000_000
        );
        t += 5_000_000_000;
    }
    // Leaders.
    let y = 40.0;
    let _ = write!(svg, r#"<text x="2" y="{}">leader</text>"#, y + 10.0);
    for (i, s) in leaders.iter().enumerate() {
        let next = leaders.get(i + 1).map_or(s.at + 200_000_000, |n| n.at);
        let c = colours[(s.node as usize) % colours.len()];
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{y}" width="{}" height="{}" fill="{c}"><title>node {} leads, term {}</title></rect>"#,
            x(s.at),
            (x(next) - x(s.at)).max(1.0),
            row_h - 2.0,
            s.node,
            s.term
        );
        if i == 0 || leaders[i - 1].node != s.node {
            let _ = write!(svg, r#"<text x="{}" y="{}" fill="white">n{}</text>"#, x(s.at) + 2.0, y + 10.0, s.node);
        }
    }
    // Faults, stacked on a few rows.
    for (i, f) in faults.iter().enumerate() {
        let y = 40.0 + (1 + i % fault_rows) as f64 * row_h;
        let fend = f.end.unwrap_or(f.start + 100_000_000);
        let _ = write!(
            svg,
            r##"<rect x="{}" y="{y}" width="{}" height="{}" fill="#d62728" opacity="0.5"><title>{}: {}</title></rect><text x="{}" y="{}">{}</text>"##,
            x(f.start),
            (x(fend) - x(f.start)).max(2.0),
            row_h - 2.0,
            esc(&f.name),
            esc(&f.detail),
            x(f.start) + 2.0,
            y + 10.0,
            esc(&f.name)
        );
    }
    let _ = write!(svg, r#"<text x="2" y="{}">faults</text>"#, 40.0 + row_h + 10.0);
    // Operations.
    for (row, p) in processes.iter().enumerate() {
        let y = top + row as f64 * row_h;
        let label = ops.iter().find(|o| o.process == *p).map(|o| o.workload.as_str()).unwrap_or("");
        let _ = write!(svg, r#"<text x="2" y="{}">{label} p{p}</text>"#, y + 10.0);
        for o in ops.iter().filter(|o| o.process == *p) {
            let fill = match o.outcome {
                Outcome::Ok => "#2ca02c",
                Outcome::Fail => "#999",
                Outcome::Info => "#ff7f0e",
            };
            let stroke = if bad.contains(&o.index) { r#" stroke="red" stroke-width="2""# } else { "" };
            let _ = write!(
                svg,
                r#"<rect x="{}" y="{y}" width="{}" height="{}" fill="{fill}"{stroke}><title>{}</title></rect>"#,
                x(o.invoke),
                (x(o.complete) - x(o.invoke)).max(0.5),
                row_h - 3.0,
                esc(&short(&op_line(o), 200))
            );
        }
    }
    svg.push_str("</svg>");
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>raftis chaos: {name} seed {seed}</title></head>\
         <body style=\"font-family:sans-serif\"><h2>{name}: {verdict}</h2><p>{nodes} nodes, seed {seed}, {dur:?} of \
         workload; ops green = ok, grey = fail, orange = info (indeterminate), red outline = part of an anomaly; \
         hover for details.</p>{svg}<pre>{summary}</pre></body></html>",
        name = esc(&r.name),
        verdict = if r.passed() { "PASS" } else { "FAIL" },
        nodes = spec.nodes,
        seed = r.seed,
        dur = spec.duration,
        summary = esc(&summary(r)),
    )
}
