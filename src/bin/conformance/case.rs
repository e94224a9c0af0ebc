//! The `.case` file format: parsing cases and steps, the escaped reply notation, and rewriting a file
//! with freshly recorded replies.
//!
//! See `conformance/README.md` for the format itself.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::wire::{End, Outcome};

/// Connections a case may use: `>` is 1, `2>` … `9>`.
pub const MAX_CONNS: usize = 9;

/// One `.case` file: its text (kept for rewriting) and the cases parsed from it.
pub struct CaseFile {
    /// The path as given on the command line (or found in a directory).
    pub path: PathBuf,
    /// Every line of the file, without line terminators.
    pub lines: Vec<String>,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// A case: a title and the commands run against a freshly flushed server.
pub struct Case {
    /// The text after `=== `.
    pub title: String,
    /// 1-based line number of the `===` line.
    pub line: usize,
    /// The commands, in order.
    pub steps: Vec<Step>,
}

/// Per-command flags written between `>` and the first space.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Flags {
    /// `s`: sort every array/set/map (recursively) before comparing.
    pub sort: bool,
    /// `t`: compare only the type byte of each reply.
    pub type_only: bool,
    /// `r`/`rN`: the payload is an escaped byte string sent as-is.
    pub raw: bool,
}

/// One command line and the reply lines that follow it.
pub struct Step {
    /// 1-based line number of the command line.
    pub line: usize,
    /// The command line exactly as written (for reports).
    pub text: String,
    /// Connection number, 1..=9.
    pub conn: usize,
    /// Flags of this command.
    pub flags: Flags,
    /// The bytes written to the socket.
    pub payload: Vec<u8>,
    /// The arguments, when the command is not raw (used to follow HELLO/RESET).
    pub args: Vec<Vec<u8>>,
    /// How many replies to read.
    pub replies: usize,
    /// What the `<` lines say.
    pub expected: Outcome,
    /// 0-based indices (into `CaseFile::lines`) of this step's `<` lines.
    pub reply_lines: Vec<usize>,
}

impl CaseFile {
    /// Reads and parses one file.
    pub fn load(path: &Path) -> Result<CaseFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let cases = parse(&lines).with_context(|| format!("parsing {}", path.display()))?;
        Ok(CaseFile { path: path.to_owned(), lines, cases })
    }

    /// The file's text with the `<` lines of every step in `recorded` replaced by the given outcome
    /// (keyed by the 1-based line of the step's command line). Everything else is kept verbatim.
    pub fn rewrite(&self, recorded: &[(usize, Outcome)]) -> String {
        let mut by_line = std::collections::HashMap::new();
        let mut drop = std::collections::HashSet::new();
        for case in &self.cases {
            for step in &case.steps {
                if let Some((_, outcome)) = recorded.iter().find(|(l, _)| *l == step.line) {
                    by_line.insert(step.line - 1, outcome);
                    drop.extend(step.reply_lines.iter().copied());
                }
            }
        }
        let mut out = String::new();
        for (i, line) in self.lines.iter().enumerate() {
            if drop.contains(&i) {
                continue;
            }
            out.push_str(line);
            out.push('\n');
            if let Some(outcome) = by_line.get(&i) {
                for reply in render(outcome) {
                    out.push_str(&reply);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// Parses the lines of a file into cases.
fn parse(lines: &[String]) -> Result<Vec<Case>> {
    let mut cases: Vec<Case> = Vec::new();
    // Reply lines of the step being read: (0-based index, text after "<").
    let mut pending: Vec<(usize, &str)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let lineno = i + 1;
        let is_reply = line.starts_with('<');
        if !is_reply {
            finish_step(&mut cases, &mut pending).with_context(|| format!("line {lineno}"))?;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(title) = line.strip_prefix("===") {
            cases.push(Case { title: title.trim().to_owned(), line: lineno, steps: Vec::new() });
        } else if let Some(rest) = line.strip_prefix('<') {
            let step_exists = cases.last().is_some_and(|c| !c.steps.is_empty());
            if !step_exists {
                bail!("line {lineno}: a reply line must follow a command line");
            }
            pending.push((i, rest));
        } else {
            let case =
                cases.last_mut().with_context(|| format!("line {lineno}: a command needs a '=== title' first"))?;
            let step = parse_command(line, lineno).with_context(|| format!("line {lineno}"))?;
            case.steps.push(step);
        }
    }
    finish_step(&mut cases, &mut pending)?;
    Ok(cases)
}

/// Attaches the collected reply lines to the last step.
fn finish_step(cases: &mut [Case], pending: &mut Vec<(usize, &str)>) -> Result<()> {
    let Some(step) = cases.last_mut().and_then(|c| c.steps.last_mut()) else {
        return Ok(());
    };
    if pending.is_empty() {
        return Ok(());
    }
    if !step.reply_lines.is_empty() {
        bail!("the reply lines of a command must not be interrupted by other lines");
    }
    {
        step.reply_lines = pending.iter().map(|(i, _)| *i).collect();
        let texts: Vec<&str> = pending.iter().map(|(_, t)| *t).collect();
        step.expected = parse_replies(&texts)?;
    }
    pending.clear();
    Ok(())
}

/// Parses `[N]>[flags] args...`.
fn parse_command(line: &str, lineno: usize) -> Result<Step> {
    let (conn, rest) = match line.as_bytes() {
        [b'>', ..] => (1, &line[1..]),
        [d @ b'1'..=b'9', b'>', ..] => ((d - b'0') as usize, &line[2..]),
        _ => bail!("expected '=== title', '# comment', '[N]> command' or '< reply': {line:?}"),
    };
    let (flag_text, body) = match rest.split_once(' ') {
        Some((f, b)) => (f, b),
        None => (rest, ""),
    };
    let mut flags = Flags::default();
    let mut replies = 1;
    let mut chars = flag_text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            's' => flags.sort = true,
            't' => flags.type_only = true,
            'r' => {
                flags.raw = true;
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if !digits.is_empty() {
                    replies = digits.parse().context("reply count")?;
                }
            }
            _ => bail!("unknown flag {c:?} (known: s, t, r, rN)"),
        }
    }
    let (payload, args) = if flags.raw {
        (unescape(body)?, Vec::new())
    } else {
        let args = split_args(body)?;
        if args.is_empty() {
            bail!("empty command (use '>r' to send raw bytes)");
        }
        (encode_command(&args), args)
    };
    Ok(Step {
        line: lineno,
        text: line.to_owned(),
        conn,
        flags,
        payload,
        args,
        replies,
        expected: Outcome::default(),
        reply_lines: Vec::new(),
    })
}

/// Encodes arguments as a RESP multibulk array of bulk strings.
pub fn encode_command(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Splits a command line the way redis-cli does (`sdssplitargs`, the same rules as raftis's
/// inline commands): whitespace separates arguments, double quotes understand `\"` `\\` `\n`
/// `\r` `\t` `\b` `\a` `\xNN`, single quotes are literal except `\'`, and a closing quote must be
/// followed by whitespace or the end of the line.
pub fn split_args(line: &str) -> Result<Vec<Vec<u8>>> {
    match raftis::resp::split_args(line.as_bytes()) {
        Some(args) => Ok(args),
        None => bail!("unbalanced quotes, or a closing quote not followed by a space"),
    }
}

/// The byte written as two hex digits at `b[i..i + 2]`, if they are hex digits.
fn hex_pair(b: &[u8], i: usize) -> Option<u8> {
    let s = std::str::from_utf8(b.get(i..i + 2)?).ok()?;
    if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(s, 16).ok()
}

/// Decodes the escaped notation: `\\`, `\r`, `\n`, `\t`, `\xNN`; every other byte stands for itself.
pub fn unescape(s: &str) -> Result<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let v = hex_pair(b, i + 2).with_context(|| format!("bad \\x escape in {s:?}"))?;
                out.push(v);
                i += 2;
            }
            _ => bail!("bad escape in {s:?} (known: \\\\ \\r \\n \\t \\xNN)"),
        }
        i += 2;
    }
    Ok(out)
}

/// Escapes one piece of a reply: `\\` for a backslash, `\xNN` outside 0x20..0x7e, a trailing space as
/// `\x20` (editors strip it), and a leading `(` as `\x28` when the piece would read as a marker.
pub fn escape(piece: &[u8]) -> String {
    let mut out = String::with_capacity(piece.len());
    let marker = MARKERS.iter().any(|m| m.as_bytes() == piece);
    for (i, &c) in piece.iter().enumerate() {
        let last = i + 1 == piece.len();
        match c {
            b'\\' => out.push_str("\\\\"),
            b'(' if i == 0 && marker => out.push_str("\\x28"),
            b' ' if last => out.push_str("\\x20"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out
}

const CLOSED: &str = "(closed)";
const TIMEOUT: &str = "(timeout)";
const MARKERS: [&str; 2] = [CLOSED, TIMEOUT];

/// Parses the text after `<` of each reply line of one step.
fn parse_replies(texts: &[&str]) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    for (n, text) in texts.iter().enumerate() {
        let text = text.strip_prefix(' ').unwrap_or(text);
        if MARKERS.contains(&text) {
            if n + 1 != texts.len() {
                bail!("{text} must be the last reply line of a command");
            }
            outcome.end = if text == CLOSED { End::Closed } else { End::Timeout };
            break;
        }
        outcome.bytes.extend(unescape(text)?);
        outcome.bytes.extend_from_slice(b"\r\n");
    }
    Ok(outcome)
}

/// The `<` lines for an outcome.
pub fn render(outcome: &Outcome) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = &outcome.bytes[..];
    while !rest.is_empty() {
        let (piece, next) = match rest.windows(2).position(|w| w == b"\r\n") {
            Some(p) => (&rest[..p], &rest[p + 2..]),
            None => (rest, &rest[rest.len()..]),
        };
        let escaped = escape(piece);
        lines.push(if escaped.is_empty() { "<".to_owned() } else { format!("< {escaped}") });
        if next.is_empty() && piece.len() == rest.len() {
            // The bytes stopped in the middle of a line: say so (only a server bug does this).
            lines.push("< (no CRLF after the line above)".to_owned());
        }
        rest = next;
    }
    match &outcome.end {
        End::Complete => {}
        End::Closed => lines.push(format!("< {CLOSED}")),
        End::Timeout => lines.push(format!("< {TIMEOUT}")),
        End::Error(e) => lines.push(format!("< (error: {e})")),
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_redis_cli() {
        let args = split_args(r#"SET "a b" 'c d' "" x"\x41\n" 'it\'s'"#).unwrap();
        let want: Vec<&[u8]> = vec![b"SET", b"a b", b"c d", b"", b"xA\n", b"it's"];
        assert_eq!(args, want);
        assert!(split_args(r#"SET "a"b"#).is_err());
        assert!(split_args(r#"SET "a"#).is_err());
    }

    #[test]
    fn escape_round_trips() {
        for piece in [&b"a\\b\x00\xff"[..], b"(closed)", b"x ", b""] {
            assert_eq!(unescape(&escape(piece)).unwrap(), piece);
        }
        assert_eq!(escape(b"(closed)"), "\\x28closed)");
    }

    #[test]
    fn renders_empty_lines_and_markers() {
        let o = Outcome { bytes: b"$0\r\n\r\n".to_vec(), end: End::Closed };
        assert_eq!(render(&o), vec!["< $0", "<", "< (closed)"]);
        assert_eq!(parse_replies(&[" $0", "", " (closed)"]).unwrap(), o);
    }
}
