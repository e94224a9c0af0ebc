//! The README cannot rot: its list of supported commands matches the command table, and the
//! commands in its code blocks run as written. Its first command (`cargo run --release -- local`)
//! is run verbatim, the tour's `redis-cli` commands are run against that cluster and their output
//! compared with the README's, Ctrl+C (SIGINT to the process group, as a terminal sends it) must
//! stop every node cleanly; the by-hand `raftis server` command forms a cluster; the test command
//! is the one `.ci/run` runs; the Docker commands are the ones `tests/docker.sh` exercises. A
//! command added to a code block that no test knows fails `every_readme_command_is_exercised`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::{poll, strip_ansi, Client, Resp};
use common::{require, runs_ok};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).unwrap()
}

/// A fenced code block: its language, its lines, and the heading it stands under.
#[derive(Debug, Clone)]
struct Block {
    lang: String,
    lines: Vec<String>,
    section: String,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    let mut section = String::new();
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                current = Some(Block { lang: lang.trim().to_string(), lines: Vec::new(), section: section.clone() })
            }
            (Some(_), Some(_)) => out.push(current.take().unwrap()),
            (Some(b), None) => b.lines.push(line.to_string()),
            (None, None) if line.starts_with('#') => section = line.trim_start_matches('#').trim().to_string(),
            (None, None) => {}
        }
    }
    out
}

/// The command of a `sh` block's line: without its trailing `# comment`; `None` for blank and
/// comment-only lines.
fn sh_command(line: &str) -> Option<String> {
    let cmd = match line.find(" #") {
        Some(i) => &line[..i],
        None if line.trim_start().starts_with('#') => "",
        None => line,
    };
    let cmd = cmd.trim();
    (!cmd.is_empty()).then(|| cmd.to_string())
}

/// A `text` block's line without the README's right-hand annotation (`   (node 2 leads here)`).
fn without_note(line: &str) -> &str {
    match line.find("   ") {
        Some(i) if line[i..].trim_start().starts_with('(') => line[..i].trim_end(),
        _ => line.trim_end(),
    }
}

/// Every command a reader is shown: `sh` block lines, and `$ ` lines of `text` blocks.
fn commands(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in blocks(text) {
        for line in &b.lines {
            let cmd = match b.lang.as_str() {
                "sh" => sh_command(line),
                _ => line.strip_prefix("$ ").map(|l| without_note(l).to_string()),
            };
            if let Some(cmd) = cmd {
                out.push((b.section.clone(), cmd));
            }
        }
    }
    out
}

/// The first `sh` block's first command: the README's way to start a local cluster.
fn first_command(text: &str) -> String {
    let b = blocks(text).into_iter().find(|b| b.lang == "sh").expect("a sh block");
    b.lines.iter().find_map(|l| sh_command(l)).expect("a command")
}

/// The README's test command: the second `sh` block of "Two commands".
fn test_command(text: &str) -> String {
    let b = blocks(text).into_iter().filter(|b| b.lang == "sh").nth(1).expect("a second sh block");
    b.lines.iter().find_map(|l| sh_command(l)).expect("a command")
}

/// Tests that bind the fixed ports 7001-7003 (and their bus ports) take turns.
static FIXED_PORTS: Mutex<()> = Mutex::new(());

fn fixed_ports_free() {
    for port in [7001u16, 7002, 7003, 17001, 17002, 17003] {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is in use: the README's cluster needs 127.0.0.1:7001-7003 and 17001-17003 \
             (is a `raftis local` still running?)"
        );
    }
}

/// A process group started by a test: its output collected line by line, SIGKILLed on drop.
struct Group {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Group {
    fn spawn(mut cmd: Command) -> Group {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for pipe in [out, err] {
            let output = output.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(strip_ansi(&line));
                }
            });
        }
        Group { child, output }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: signalling the process group this test created.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), sig);
        }
    }

    /// Whether the group leader has exited.
    fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Waits for the group leader to exit; `None` after `timeout`.
    fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the output threads drain the pipes.
                thread::sleep(Duration::from_millis(200));
                return Some(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

fn ping(port: u16) -> bool {
    Client::connect(&format!("127.0.0.1:{port}"), Duration::from_millis(500))
        .and_then(|mut c| c.call(&["PING"]))
        .is_ok_and(|r| r == Resp::Simple("PONG".into()))
}

/// The leader all three nodes on 7001-7003 name, if they agree.
fn agreed_leader() -> Option<u64> {
    let mut leaders = BTreeSet::new();
    for port in [7001u16, 7002, 7003] {
        let mut c = Client::connect(&format!("127.0.0.1:{port}"), Duration::from_millis(500)).ok()?;
        let Resp::Bulk(info) = c.call(&["INFO", "raft"]).ok()? else { return None };
        let info = String::from_utf8_lossy(&info).into_owned();
        let id = info.lines().find_map(|l| l.strip_prefix("raft_leader_id:"))?.trim().parse::<u64>().ok()?;
        leaders.insert(id);
    }
    (leaders.len() == 1).then(|| *leaders.first().unwrap())
}

/// A fresh directory under cargo's target/tmp (inside the checkout, so that `cargo` finds the
/// manifest from there).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("readme-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The README's tour uses node 2 as the leader and 1, 3 as followers; `roles` maps the
/// README's node numbers to this cluster's (leader first), applied to ports and ids.
fn renumber(text: &str, roles: &BTreeMap<u64, u64>) -> String {
    let mut out = text.to_string();
    for (from, to) in roles {
        out = out.replace(&format!("700{from}"), &format!("@PORT{to}@"));
        out = out.replace(&format!("raft_leader_id:{from}"), &format!("raft_leader_id:@ID{to}@"));
        out = out.replace(&format!("--id {from}"), &format!("--id @ID{to}@"));
    }
    for to in roles.values() {
        out = out.replace(&format!("@PORT{to}@"), &format!("700{to}")).replace(&format!("@ID{to}@"), &to.to_string());
    }
    out
}

/// What redis-cli prints on a terminal, as it prints it when its output is a pipe: no
/// redirection notes, no `(error) ` prefix, no `1) ` array numbering, no quotes, no blank
/// lines; the term is whatever
/// this cluster's is.
fn normalize(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| without_note(l).to_string())
        .filter(|l| !l.is_empty() && !l.starts_with("-> Redirected"))
        .map(|l| l.strip_prefix("(error) ").map(str::to_string).unwrap_or(l))
        .map(|l| match l.split_once(") ") {
            Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest.to_string(),
            _ => l,
        })
        .map(|l| if l.len() >= 2 && l.starts_with('"') && l.ends_with('"') { l[1..l.len() - 1].to_string() } else { l })
        .map(|l| if l.starts_with("raft_term:") { "raft_term:N".to_string() } else { l })
        .collect()
}

/// Runs the tour's `text` block (the one under "A tour of the local cluster") against the
/// running cluster and compares every command's output with the README's.
fn run_tour(text: &str, roles: &BTreeMap<u64, u64>) {
    let tour = blocks(text)
        .into_iter()
        .find(|b| b.lang == "text" && b.section.starts_with("A tour"))
        .expect("the tour's text block");
    // (command, stdin lines, expected output lines)
    let mut steps: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for line in &tour.lines {
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push((without_note(cmd).to_string(), Vec::new(), Vec::new()));
        } else if let Some((_, input)) = line.split_once("> ").filter(|(p, _)| p.starts_with("127.0.0.1:")) {
            steps.last_mut().expect("a command first").1.push(input.to_string());
        } else {
            steps.last_mut().expect("a command first").2.push(line.to_string());
        }
    }
    for (cmd, input, expected) in steps {
        let cmd = renumber(&cmd, roles);
        let expected = normalize(&expected.iter().map(|l| renumber(l, roles)).collect::<Vec<_>>());
        let mut child = Command::new("sh")
            .args(["-c", &cmd])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, input.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes())
            .unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let got: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        assert_eq!(
            normalize(&got),
            expected,
            "README tour: `{cmd}` printed something else (stderr: {})",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Log indexes and TTLs in the HTTP examples' output are whatever this cluster's are.
fn normalize_http(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while !rest.is_empty() {
        let at = ["\"index\":", "\"ttl\":", "id: "].iter().filter_map(|p| rest.find(p).map(|i| (i, p.len()))).min();
        match at {
            Some((i, len)) => {
                out.push_str(&rest[..i + len]);
                rest = &rest[i + len..];
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                if digits > 0 {
                    out.push('N');
                }
                rest = &rest[digits..];
            }
            None => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    out
}

/// Runs the `text` blocks under "Seeing the cluster over HTTP" (the HTTP API and the watch, on
/// ports 8001-8003) and compares their output with the README's, indexes and TTLs aside. The
/// examples do not depend on which node leads: a follower sends HTTP commands to the leader.
fn run_http_examples(text: &str) {
    let examples: Vec<Block> = blocks(text)
        .into_iter()
        .filter(|b| b.lang == "text" && b.section.starts_with("Seeing the cluster over HTTP"))
        .collect();
    assert!(examples.len() >= 2, "the HTTP section's examples");
    for block in examples {
        let mut steps: Vec<(String, Vec<String>)> = Vec::new();
        for line in &block.lines {
            match line.strip_prefix("$ ") {
                Some(cmd) => steps.push((without_note(cmd).to_string(), Vec::new())),
                None => steps.last_mut().expect("a command first").1.push(line.to_string()),
            }
        }
        // One shell for the whole block (a variable set by one line is used by a later one),
        // each command's output ended by a marker line.
        const MARK: &str = "@@readme-step-end@@";
        let script: String = steps.iter().map(|(cmd, _)| format!("{cmd}\necho; echo {MARK}\n")).collect();
        let out = Command::new("sh").args(["-c", &script]).stdin(Stdio::null()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let outputs: Vec<&str> = stdout.split(&format!("{MARK}\n")).collect();
        assert!(outputs.len() > steps.len(), "README HTTP example: the shell stopped early: {stdout}");
        let trim = |v: Vec<String>| -> Vec<String> {
            let mut v = v;
            while v.last().is_some_and(|l| l.is_empty()) {
                v.pop();
            }
            v
        };
        for ((cmd, expected), got) in steps.iter().zip(outputs) {
            let got: Vec<String> = got.lines().map(normalize_http).collect();
            let want: Vec<String> = expected.iter().map(|l| normalize_http(without_note(l))).collect();
            assert_eq!(
                trim(got),
                trim(want),
                "README HTTP example: `{cmd}` printed something else (stderr: {})",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn readme_lists_exactly_the_supported_commands() {
    let readme = readme();
    let start = readme.find("## Supported commands").expect("a Supported commands section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let listed: BTreeSet<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|s| s.split_whitespace().next())
        .filter(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c == '.'))
        .map(str::to_lowercase)
        .collect();
    let table: BTreeSet<String> = raftis::server::commands::all().iter().map(|c| c.name().to_string()).collect();
    let missing: Vec<_> = table.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&table).collect();
    assert!(missing.is_empty() && extra.is_empty(), "README misses {missing:?}; lists unknown {extra:?}");
}

/// What `tests/docker.sh` runs for each Docker command of the README (it runs them on a compose
/// project and ports of its own, so not letter for letter).
const DOCKER_COMMANDS: &[(&str, &str)] = &[
    ("docker/build.sh", "docker/build.sh"),
    ("docker-compose up -d", "compose up -d"),
    ("docker-compose ps", "compose ps"),
    ("docker kill $(docker-compose ps -q raftis3)", "docker kill \"$old_cid\""),
    ("docker-compose logs -f raftis1 raftis2", "compose logs"),
    ("docker-compose start raftis3", "docker start \"$old_cid\""),
    ("for p in 7001 7002 7003; do redis-cli -p $p debug digest; done", "debug digest"),
    ("docker-compose --profile join up -d raftis4", "compose --profile join up -d raftis4"),
    ("docker-compose --profile join rm -s -f raftis4", "compose --profile join rm -s -f raftis4"),
];

#[test]
fn every_readme_command_is_exercised() {
    let readme = readme();
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    let docker_sh = std::fs::read_to_string(repo().join("tests/docker.sh")).unwrap();
    let mut unknown = Vec::new();
    for (section, cmd) in commands(&readme) {
        let known = if cmd == first_command(&readme) || cmd.starts_with("cargo run --release -- local") {
            true // the_first_command_starts_a_cluster_the_tour_works_and_ctrl_c_stops_it
        } else if cmd == test_command(&readme) {
            assert!(ci.lines().any(|l| l.trim() == cmd), ".ci/run does not run the README's `{cmd}`");
            true
        } else if section.starts_with("Running a cluster by hand") {
            cmd.starts_with("raftis server ") // a_cluster_started_by_hand_as_the_readme_shows
        } else if section.starts_with("Adding, removing") {
            cmd.starts_with("raftis ") // a_cluster_started_by_hand_as_the_readme_shows, too
        } else if section == "Docker" {
            match DOCKER_COMMANDS.iter().find(|(readme_cmd, _)| *readme_cmd == cmd) {
                Some((_, run)) => {
                    assert!(docker_sh.contains(run), "tests/docker.sh does not run `{run}` (README: `{cmd}`)");
                    true
                }
                // The same redis-cli checks docker.sh makes against the compose cluster.
                None => cmd.starts_with("redis-cli ") && docker_sh.contains("redis-cli"),
            }
        } else {
            // The tour, the catch-up and the HTTP commands, run by the local-cluster test.
            section.starts_with("A tour")
                || section.starts_with("Watching a node catch up")
                || section.starts_with("Seeing the cluster over HTTP")
        };
        if !known {
            unknown.push(format!("{section}: {cmd}"));
        }
    }
    assert!(unknown.is_empty(), "README commands no test runs: {unknown:#?}");
}

#[test]
fn the_first_command_starts_a_cluster_the_tour_works_and_ctrl_c_stops_it() {
    let readme = readme();
    let command = first_command(&readme);
    assert_eq!(command, "cargo run --release -- local", "the README's first command changed: update this test");
    let tools = require("README tour", &[("redis-cli", runs_ok("redis-cli", &["--version"]))]);
    let _ports = FIXED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    fixed_ports_free();
    let dir = scratch("local");
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut cmd = Command::new(words[0]);
    cmd.args(&words[1..]).current_dir(&dir);
    let mut group = Group::spawn(cmd);
    // `cargo run` may have to build the binary first.
    let up = poll(Duration::from_secs(900), || {
        if group.exited() {
            return Some(false);
        }
        [7001, 7002, 7003].iter().all(|&p| ping(p)).then_some(true)
    });
    assert!(up == Some(true), "`{command}` did not bring up 7001-7003:\n{}", group.output());
    let leader = poll(Duration::from_secs(20), agreed_leader);
    let leader = leader.unwrap_or_else(|| panic!("no leader:\n{}", group.output()));
    let followers: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    // The README's node 2 leads; 1 and 3 follow.
    let roles: BTreeMap<u64, u64> = [(2, leader), (1, followers[0]), (3, followers[1])].into();

    if tools {
        run_tour(&readme, &roles);
        watch_catch_up(&readme, &roles, &group);
        if runs_ok("curl", &["--version"]) {
            run_http_examples(&readme);
        }
    }

    members_shown_as_they_change(&group);

    // Ctrl+C in the terminal: SIGINT to the whole foreground process group.
    group.signal(libc::SIGINT);
    let status = group.wait(Duration::from_secs(30));
    let output = group.output();
    assert!(status.is_some_and(|s| s.success()), "`{command}` did not exit cleanly on Ctrl+C ({status:?}):\n{output}");
    for id in 1..=3 {
        assert!(
            output.contains(&format!("[node{id}] stopped (exit status: 0)")),
            "node {id} did not stop cleanly:\n{output}"
        );
    }
    assert!(output.contains("raftis local: stopped; run it again to resume from ./data"), "{output}");
    assert!(!output.contains("panicked"), "{output}");
    assert!(dir.join("data/1/node.identity").exists(), "no ./data/1 in the directory the command ran in");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `raftis local` prints the membership once there is a leader, and again at once when a node is
/// added (a learner that never starts, node 9) and removed.
fn members_shown_as_they_change(group: &Group) {
    const LINE: &str = "raftis local: members now: ";
    let lines = |out: &str| out.lines().filter(|l| l.starts_with(LINE)).map(str::to_string).collect::<Vec<_>>();
    let first = poll(Duration::from_secs(10), || lines(&group.output()).last().cloned());
    let first = first.unwrap_or_else(|| panic!("raftis local never printed the members:\n{}", group.output()));
    assert!(
        first.contains("node 1 (")
            && first.contains("node 2 (")
            && first.contains("node 3 (")
            && first.contains("(leader)"),
        "{first}"
    );
    let raft_node = |args: &[&str]| {
        let mut v = vec!["RAFT.NODE"];
        v.extend_from_slice(args);
        poll(Duration::from_secs(15), || {
            let mut c = Client::connect("127.0.0.1:7001", Duration::from_secs(2)).ok()?;
            let r = c.call(&v).ok()?;
            (r.err().is_none()).then_some(r)
        })
        .unwrap_or_else(|| panic!("{v:?} kept failing"))
    };
    let before = lines(&group.output()).len();
    raft_node(&["ADD", "9", "127.0.0.1:7009"]);
    let added = poll(Duration::from_secs(5), || {
        lines(&group.output())[before..].iter().find(|l| l.contains("node 9 (learner, 127.0.0.1:7009)")).cloned()
    });
    assert!(added.is_some(), "node 9 added: raftis local did not show it:\n{}", group.output());
    let before = lines(&group.output()).len();
    raft_node(&["REMOVE", "9"]);
    let removed = poll(Duration::from_secs(5), || {
        lines(&group.output())[before..].iter().find(|l| !l.contains("node 9")).cloned()
    });
    assert!(removed.is_some(), "node 9 removed: raftis local did not show it:\n{}", group.output());
}

/// "Watching a node catch up": kill -9 of a follower (by the pid `raftis local` printed, not
/// with pgrep, which would also find other tests' nodes), the writes, then the restarted node's
/// progress and caught-up lines, and equal digests.
fn watch_catch_up(readme: &str, roles: &BTreeMap<u64, u64>, group: &Group) {
    let block = blocks(readme)
        .into_iter()
        .find(|b| b.lang == "sh" && b.section.starts_with("Watching a node catch up"))
        .expect("a sh block under 'Watching a node catch up'");
    let cmds: Vec<String> = block.lines.iter().filter_map(|l| sh_command(l)).map(|c| renumber(&c, roles)).collect();
    assert!(cmds[0].starts_with("kill -9 $(pgrep -f 'raftis server --id "), "{cmds:?}");
    let victim: u64 = cmds[0]["kill -9 $(pgrep -f 'raftis server --id ".len()..][..1].parse().unwrap();
    let out = group.output();
    let pid: i32 = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("[node{victim}] started (pid ")))
        .and_then(|p| p.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("raftis local did not print node {victim}'s pid:\n{out}"));
    // SAFETY: killing the node process this test's cluster started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    for cmd in &cmds[1..] {
        let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
        assert!(
            out.status.success(),
            "`{cmd}` failed (node {victim}, pid {pid}, killed): {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            group.output()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("Error"), "`{cmd}` saw errors: {text}");
    }
    let prefix = format!("[node{victim}]");
    let caught = poll(Duration::from_secs(60), || {
        let out = group.output();
        let restarted = out.rfind(&format!("{prefix} started (pid "))?;
        out[restarted..]
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains("caught up with the leader"))
            .then_some(())
    });
    assert!(caught.is_some(), "node {victim} never logged catching up:\n{}", group.output());
    let out = group.output();
    let since = &out[out.rfind(&format!("{prefix} started (pid ")).unwrap()..];
    assert!(
        since.lines().any(|l| l.starts_with(&prefix) && l.contains("behind the leader:")),
        "node {victim} did not log how far behind it was:\n{since}"
    );
    let digests = poll(Duration::from_secs(30), || {
        let d: BTreeSet<String> = [7001u16, 7002, 7003]
            .iter()
            .map(|p| {
                let mut c = Client::connect(&format!("127.0.0.1:{p}"), Duration::from_secs(1)).ok()?;
                match c.call(&["DEBUG", "DIGEST"]).ok()? {
                    Resp::Simple(s) => Some(s),
                    Resp::Bulk(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    _ => None,
                }
            })
            .collect::<Option<_>>()?;
        (d.len() == 1).then_some(())
    });
    assert!(digests.is_some(), "digests differ after node {victim} caught up");
}

#[test]
fn a_cluster_started_by_hand_as_the_readme_shows() {
    let readme = readme();
    let block = blocks(&readme)
        .into_iter()
        .find(|b| b.lang == "sh" && b.section.starts_with("Running a cluster by hand"))
        .expect("a sh block under 'Running a cluster by hand'");
    let node1 = block.lines.iter().find_map(|l| sh_command(l)).expect("a command");
    let _ports = FIXED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    fixed_ports_free();
    let dir = scratch("by-hand");
    // `raftis` on the PATH, as after `cargo install` or in the image.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_raftis")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        // "On each node": the same command with that node's id, port and directory.
        let line =
            node1.replace("--id 1 --port 7001 --dir data/1", &format!("--id {id} --port 700{id} --dir data/{id}"));
        assert!(id == 1 || line != node1, "the README's by-hand command changed shape: {node1}");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("exec {line}")]).current_dir(&dir).env("PATH", &path);
        nodes.push(Group::spawn(cmd));
    }
    let up = poll(Duration::from_secs(30), || [7001, 7002, 7003].iter().all(|&p| ping(p)).then_some(()));
    assert!(up.is_some(), "the by-hand nodes did not come up:\n{}", nodes[0].output());
    let leader = poll(Duration::from_secs(20), agreed_leader).expect("a leader");
    let mut c = Client::connect(&format!("127.0.0.1:700{leader}"), Duration::from_secs(2)).unwrap();
    assert!(c.must(&["SET", "greeting", "hello"]).is_ok());
    assert_eq!(c.must(&["GET", "greeting"]), Resp::Bulk("hello".into()));
    // "Adding, removing and replacing nodes": a fourth node joins with the README's command, and
    // `raftis cluster members` lists it as a voter.
    let block = blocks(&readme)
        .into_iter()
        .find(|b| b.lang == "sh" && b.section.starts_with("Adding, removing"))
        .expect("a sh block under 'Adding, removing and replacing nodes'");
    let lines: Vec<String> = block.lines.iter().filter_map(|l| sh_command(l)).collect();
    let [join, members] = &lines[..] else { panic!("the README's join block changed shape: {lines:?}") };
    assert!(join.starts_with("raftis server ") && join.contains("--join"), "{join}");
    assert!(!ping(7004), "port 7004 is taken");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("exec {join}")]).current_dir(&dir).env("PATH", &path);
    nodes.push(Group::spawn(cmd));
    let mut listed = String::new();
    let voter = poll(Duration::from_secs(30), || {
        let out = Command::new("sh").args(["-c", members]).env("PATH", &path).output().ok()?;
        listed = String::from_utf8_lossy(&out.stdout).into_owned();
        let four = listed.lines().find(|l| l.split_whitespace().next() == Some("4"))?;
        (out.status.success() && four.contains("127.0.0.1:7004") && four.contains(" voter ")).then_some(())
    });
    assert!(voter.is_some(), "`{members}` does not list node 4 as a voter:\n{listed}\n{}", nodes[3].output());
    assert_eq!(listed.lines().count(), 5, "{listed}");
    let mut c4 = Client::connect("127.0.0.1:7004", Duration::from_secs(2)).unwrap();
    assert_eq!(c4.must(&["READONLY"]), Resp::Simple("OK".into()));
    assert_eq!(c4.must(&["GET", "greeting"]), Resp::Bulk("hello".into()));
    // "SIGINT or SIGTERM stops a node cleanly."
    for (i, n) in nodes.iter_mut().enumerate() {
        n.signal(if i == 0 { libc::SIGINT } else { libc::SIGTERM });
        let status = n.wait(Duration::from_secs(15));
        assert!(status.is_some_and(|s| s.success()), "node {} did not stop cleanly:\n{}", i + 1, n.output());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
