//! A command's metadata: what `COMMAND` reports and what cluster clients use to find keys
//! (arity, flags, first/last key and step), shared by data commands and node commands.

/// One command's metadata.
#[derive(Debug)]
pub struct Meta {
    /// Lower-case name; for subcommands `container|sub`.
    pub name: &'static str,
    /// Redis arity: exact argument count including the name, or `-n` for at least `n`.
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub acl: &'static [&'static str],
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    /// Keys announced by a `numkeys` argument (`movablekeys` commands such as ZUNION, LMPOP,
    /// SINTERCARD): the index of `numkeys` and of the first of those keys. They come after the
    /// fixed keys of `first_key..=last_key`, if any.
    pub keynum: Option<(usize, usize)>,
    /// Keys that are the first half of the arguments after a keyword (XREAD's `STREAMS`: the
    /// keys, then as many IDs).
    pub keyword: Option<&'static str>,
}

impl Meta {
    /// Whether `argc` (name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }

    /// The indexes of every key in `args` (the command's name first): the fixed ones, then
    /// those a `numkeys` argument announces; `None` when `numkeys` is not a positive count that
    /// the arguments hold.
    pub fn key_indexes(&self, args: &[impl AsRef<[u8]>]) -> Option<Vec<usize>> {
        let mut keys: Vec<usize> = self.key_positions(args.len()).collect();
        if let Some((at, first)) = self.keynum {
            let n = crate::resp::parse_i64(args.get(at)?.as_ref()).filter(|&n| n > 0)? as usize;
            if n > args.len().saturating_sub(first) {
                return None;
            }
            keys.extend(first..first + n);
        }
        if let Some(word) = self.keyword {
            let at = args.iter().skip(1).position(|a| a.as_ref().eq_ignore_ascii_case(word.as_bytes()))? + 1;
            let rest = args.len() - at - 1;
            if rest == 0 || !rest.is_multiple_of(2) {
                return None;
            }
            keys.extend(at + 1..at + 1 + rest / 2);
        }
        Some(keys)
    }

    /// Whether the command has key arguments (fixed, announced by `numkeys`, or after a keyword).
    pub fn has_keys(&self) -> bool {
        self.first_key > 0 || self.keynum.is_some() || self.keyword.is_some()
    }

    /// Whether the command is flagged `write`.
    pub fn is_write(&self) -> bool {
        self.flags.contains(&"write")
    }

    /// The positions of the command's keys in `argc` arguments (first, last, step; a negative
    /// last key counts from the end).
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 {
            (argc as i64 + self.last_key as i64).max(0) as usize
        } else {
            self.last_key as usize
        };
        let step = self.step.max(1) as usize;
        (first..=last.min(argc.saturating_sub(1))).step_by(step).filter(move |_| first > 0)
    }
}

// Flag and ACL category lists shared by many rows.
pub const R: &[&str] = &["readonly", "fast"];
pub const RS: &[&str] = &["readonly"];
pub const W: &[&str] = &["write", "denyoom"];
pub const WF: &[&str] = &["write", "denyoom", "fast"];
pub const WD: &[&str] = &["write", "fast"];
pub const WS: &[&str] = &["write"];
pub const CONN: &[&str] = &["noscript", "loading", "stale", "fast"];
pub const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

pub const AR: &[&str] = &["@read", "@string", "@fast"];
pub const ARS: &[&str] = &["@read", "@string", "@slow"];
pub const AW: &[&str] = &["@write", "@string", "@slow"];
pub const AWF: &[&str] = &["@write", "@string", "@fast"];
pub const KR: &[&str] = &["@keyspace", "@read", "@fast"];
pub const KRS: &[&str] = &["@keyspace", "@read", "@slow", "@dangerous"];
pub const KW: &[&str] = &["@keyspace", "@write", "@fast"];
pub const KWS: &[&str] = &["@keyspace", "@write", "@slow"];
pub const KWD: &[&str] = &["@keyspace", "@write", "@slow", "@dangerous"];
pub const AC: &[&str] = &["@fast", "@connection"];
pub const ASC: &[&str] = &["@slow", "@connection"];
pub const ATX: &[&str] = &["@fast", "@transaction"];
pub const ADM: &[&str] = &["@admin", "@slow", "@dangerous"];
pub const BLOCKING: &[&str] = &["write", "noscript", "blocking"];
pub const BLOCKING_OOM: &[&str] = &["write", "denyoom", "noscript", "blocking"];
pub const BLOCKING_FAST: &[&str] = &["write", "noscript", "blocking", "fast"];
pub const BLOCKING_MOVABLE: &[&str] = &["write", "blocking", "movablekeys"];

/// A [`Meta`] from its fields in table order.
#[macro_export]
macro_rules! meta {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $acl:expr,
     $group:literal, $since:literal, $summary:literal) => {
        $crate::cmd::Meta {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            acl: $acl,
            group: $group,
            summary: $summary,
            since: $since,
            keynum: None,
            keyword: None,
        }
    };
}

/// A [`DataCommand`](crate::cmd::DataCommand) row: the metadata fields in table order, then the
/// parser, then the summary (and, for containers, the subcommands).
#[macro_export]
macro_rules! data {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $acl:expr,
     $group:literal, $since:literal, $parse:expr, $summary:literal) => {
        $crate::data!($name, $arity, $flags, $first, $last, $step, $acl, $group, $since, $parse, $summary, &[])
    };
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $acl:expr,
     $group:literal, $since:literal, $parse:expr, $summary:literal, $subs:expr) => {
        $crate::cmd::DataCommand {
            meta: $crate::meta!($name, $arity, $flags, $first, $last, $step, $acl, $group, $since, $summary),
            parse: $parse,
            subcommands: $subs,
            block: None,
        }
    };
}
