//! The data commands: one module per family (strings, keys, hashes, sets...), each holding
//! its commands' metadata, the parsing of their arguments into a typed operation, and the
//! operation's execution against the keyspace. Commands the node answers itself (connection,
//! server, cluster, transactions) live in `server::commands`, which joins both into the one
//! command table every request is resolved against.
//!
//! Adding a data command is one place: a row in its family's `COMMANDS`, a variant of the
//! family's operation, its parser and its arm in the family's `apply`/`query`.

mod args;
pub mod bitmaps;
pub mod dump;
pub mod error;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod meta;
pub mod notify;
pub mod pubsub;
pub mod scripting;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod zsets;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use args::timeout_millis;
pub use error::{Error, Result};
pub use meta::Meta;
pub use strings::is_long_double;

use crate::resp::Reply;
use crate::sm::KeySpace;

/// What an operation may use besides the keyspace: the time and a random seed, both chosen by
/// the node that accepted the request and carried inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// Unix time in milliseconds.
    pub now: u64,
    /// Seed for the command's random choices (RANDOMKEY, SPOP, SRANDMEMBER...).
    pub seed: u64,
}

/// Parses a data command's arguments (the name first; arity already checked) at the accepting
/// node's time `now` into its operation. Relative times become absolute here, so that the
/// operation means the same on every replica.
pub type ParseFn = fn(&[Bytes], u64) -> Result<Op>;

/// A data command: its metadata and its parser. Its execution is its operation's.
#[derive(Debug)]
pub struct DataCommand {
    pub meta: Meta,
    pub parse: ParseFn,
    /// Subcommands, for containers (OBJECT).
    pub subcommands: &'static [DataCommand],
    /// For a blocking command (BLPOP...): how it waits. Its operation is its non-blocking
    /// form, which is all it does inside MULTI.
    pub block: Option<Block>,
}

/// How a blocking command waits when its operation finds nothing to pop.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    /// The index of the timeout argument (negative: from the end).
    pub timeout: i32,
    /// Only the first key is popped from (BLMOVE, BRPOPLPUSH: the second is the destination);
    /// otherwise every key is.
    pub first_key_only: bool,
    /// A timeout answers a nil array (BLPOP, BZPOPMIN, BLMPOP...) rather than a nil bulk
    /// (BLMOVE, BRPOPLPUSH).
    pub nil_array: bool,
}

impl Block {
    /// The timeout argument of `args`.
    pub fn timeout_arg<'a>(&self, args: &'a [Bytes]) -> &'a Bytes {
        let i = if self.timeout < 0 { args.len() as i64 + self.timeout as i64 } else { self.timeout as i64 };
        &args[i as usize]
    }

    /// The keys of `args` the command pops from.
    pub fn sources(&self, meta: &Meta, args: &[Bytes]) -> Vec<Bytes> {
        let keys = meta.key_indexes(args).unwrap_or_default();
        let n = if self.first_key_only { keys.len().min(1) } else { keys.len() };
        keys[..n].iter().map(|&i| args[i].clone()).collect()
    }
}

impl DataCommand {
    /// The command, blocking as `block` says.
    pub const fn blocking(mut self, timeout: i32, first_key_only: bool, nil_array: bool) -> DataCommand {
        self.block = Some(Block { timeout, first_key_only, nil_array });
        self
    }

    /// The command with keys after `word` (see [`Meta::keyword`]).
    pub const fn keyword(mut self, word: &'static str) -> DataCommand {
        self.meta.keyword = Some(word);
        self
    }

    /// The command with keys announced by the `numkeys` argument at `at`, the first of them at
    /// `first` (see [`Meta::keynum`]).
    pub const fn keynum(mut self, at: usize, first: usize) -> DataCommand {
        self.meta.keynum = Some((at, first));
        self
    }
}

/// Every data command, family by family.
pub fn data_commands() -> impl Iterator<Item = &'static DataCommand> {
    [
        strings::COMMANDS,
        keys::COMMANDS,
        hashes::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        bitmaps::COMMANDS,
        sort::COMMANDS,
        lists::COMMANDS,
        dump::COMMANDS,
        scripting::COMMANDS,
        streams::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

thread_local! {
    /// The encoding thresholds of the keyspace an operation runs against, set by [`Op::apply`]
    /// and [`Op::query`] from [`KeySpace::encodings`] before every operation, so that the
    /// families' conversion rules (deep inside their helpers) read the replicated values.
    static ENCODINGS: std::cell::Cell<crate::sm::Encodings> = std::cell::Cell::new(Default::default());
}

/// The encoding thresholds of the operation being run (see `ENCODINGS`).
pub fn encodings() -> crate::sm::Encodings {
    ENCODINGS.get()
}

/// One keyspace operation: what the log carries for a data command. Families are appended,
/// never reordered (the variant index is part of the log format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    Str(strings::StrOp),
    Key(keys::KeyOp),
    Hash(hashes::HashOp),
    Set(sets::SetOp),
    ZSet(zsets::ZSetOp),
    Bit(bitmaps::BitOp),
    Sort(sort::SortOp),
    List(lists::ListOp),
    PubSub(pubsub::PubSubOp),
    Dump(dump::DumpOp),
    Script(scripting::ScriptOp),
    Stream(streams::StreamOp),
}

impl Op {
    /// Whether the operation may change the keyspace (and so must go through the log).
    pub fn is_write(&self) -> bool {
        match self {
            Op::Str(op) => op.is_write(),
            Op::Key(op) => op.is_write(),
            Op::Hash(op) => op.is_write(),
            Op::Set(op) => op.is_write(),
            Op::ZSet(op) => op.is_write(),
            Op::Bit(op) => op.is_write(),
            Op::Sort(op) => op.is_write(),
            Op::List(op) => op.is_write(),
            Op::PubSub(op) => op.is_write(),
            Op::Dump(op) => op.is_write(),
            Op::Script(op) => op.is_write(),
            Op::Stream(op) => op.is_write(),
        }
    }

    /// Applies the operation (reads included, as inside EXEC).
    pub fn apply(&self, ks: &mut KeySpace, ctx: Ctx) -> Reply {
        ENCODINGS.set(ks.encodings);
        let result = match self {
            Op::Str(op) => strings::apply(ks, op, ctx),
            Op::Key(op) => keys::apply(ks, op, ctx),
            Op::Hash(op) => hashes::apply(ks, op, ctx),
            Op::Set(op) => sets::apply(ks, op, ctx),
            Op::ZSet(op) => zsets::apply(ks, op, ctx),
            Op::Bit(op) => bitmaps::apply(ks, op, ctx),
            Op::Sort(op) => sort::apply(ks, op, ctx),
            Op::List(op) => lists::apply(ks, op, ctx),
            Op::PubSub(op) => pubsub::apply(ks, op, ctx),
            Op::Dump(op) => dump::apply(ks, op, ctx),
            Op::Script(op) => scripting::apply(ks, op, ctx),
            Op::Stream(op) => streams::apply(ks, op, ctx),
        };
        result.unwrap_or_else(Reply::from)
    }

    /// Answers a read-only operation without changing anything: logically expired keys are
    /// hidden, never removed.
    pub fn query(&self, ks: &KeySpace, ctx: Ctx) -> Reply {
        ENCODINGS.set(ks.encodings);
        let result = match self {
            Op::Str(op) => strings::query(ks, op, ctx),
            Op::Key(op) => keys::query(ks, op, ctx),
            Op::Hash(op) => hashes::query(ks, op, ctx),
            Op::Set(op) => sets::query(ks, op, ctx),
            Op::ZSet(op) => zsets::query(ks, op, ctx),
            Op::Bit(op) => bitmaps::query(ks, op, ctx),
            Op::Sort(op) => sort::query(ks, op, ctx),
            Op::List(op) => lists::query(ks, op, ctx),
            Op::PubSub(op) => pubsub::query(ks, op, ctx),
            Op::Dump(op) => dump::query(ks, op, ctx),
            Op::Script(op) => scripting::query(ks, op, ctx),
            Op::Stream(op) => streams::query(ks, op, ctx),
        };
        result.unwrap_or_else(Reply::from)
    }
}

/// The text up to the first NUL and at most `max` bytes, as C's `%.*s` prints it.
pub fn truncated(arg: &[u8], max: usize) -> String {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len()).min(max);
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

/// Redis's reply to a command nobody knows.
pub fn unknown_command(args: &[Bytes]) -> Error {
    let mut list = String::new();
    for arg in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push('\'');
        list.push_str(&truncated(arg, room));
        list.push_str("' ");
    }
    Error::UnknownCommand { name: truncated(&args[0], 128), args: list }
}

/// Redis's reply to an unknown subcommand of `container`.
pub fn unknown_subcommand(container: &[u8], sub: &[u8]) -> Error {
    Error::UnknownSubcommand { container: String::from_utf8_lossy(container).to_uppercase(), sub: truncated(sub, 128) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Arguments drawn from a small pool, so that commands often hit the same keys, fields and
    /// options, and meet every type on every key.
    const POOL: &[&str] = &[
        "a",
        "b",
        "c",
        "x",
        "y",
        "0",
        "1",
        "-1",
        "2",
        "10",
        "1.5",
        "-inf",
        "+inf",
        "nan",
        "abc",
        "",
        "NX",
        "XX",
        "GT",
        "LT",
        "CH",
        "EX",
        "PX",
        "GET",
        "KEEPTTL",
        "WITHSCORES",
        "WITHVALUES",
        "LIMIT",
        "COUNT",
        "MATCH",
        "*",
        "TYPE",
        "string",
        "hash",
        "set",
        "REPLACE",
        "LEFT",
        "RIGHT",
        "BEFORE",
        "AFTER",
        "RANK",
        "MAXLEN",
        "list",
        "9223372036854775807",
        "-9223372036854775808",
    ];

    fn commands() -> Vec<&'static DataCommand> {
        data_commands().flat_map(|c| std::iter::once(c).chain(c.subcommands.iter())).collect()
    }

    fn run(ks: &mut KeySpace, command: &DataCommand, args: &[Bytes], now: u64, seed: u64) -> Option<Reply> {
        if !command.meta.arity_ok(args.len()) {
            return None;
        }
        let op = match (command.parse)(args, now) {
            Ok(op) => op,
            Err(e) => return Some(e.into()),
        };
        Some(op.apply(ks, Ctx { now, seed }))
    }

    /// A command line: a data command (by index) and its arguments: its name (`container sub`
    /// for a subcommand) and up to six arguments from the pool.
    fn line() -> impl Strategy<Value = (usize, Vec<Bytes>)> {
        let count = commands().len();
        (0..count, prop::collection::vec(prop::sample::select(POOL), 0..7)).prop_map(|(i, args)| {
            let name = commands()[i].meta.name;
            let mut line: Vec<Bytes> = name.split('|').map(|p| Bytes::from(p.to_string())).collect();
            line.extend(args.into_iter().map(|a| Bytes::from(a.to_string())));
            (i, line)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Two replicas applying the same operations, one of them rebuilt from its snapshot
        /// image now and then, give the same replies and end with the same digest; no argument
        /// list makes apply panic.
        #[test]
        fn replicas_applying_the_same_log_stay_identical(lines in prop::collection::vec(line(), 1..60), restore_every in 3usize..20) {
            let mut a = KeySpace::new();
            let mut b = KeySpace::new();
            let all = commands();
            for (i, (c, args)) in lines.iter().enumerate() {
                let (now, seed) = (1_000_000 + i as u64 * 7, i as u64 * 0x9e37);
                let ra = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut a, all[*c], args, now, seed)));
                prop_assert!(ra.is_ok(), "apply panicked on {:?}", args);
                let rb = run(&mut b, all[*c], args, now, seed);
                prop_assert_eq!(ra.unwrap(), rb, "replies differ for {:?}", args);
                if i % restore_every == 0 {
                    let bytes = b.serialize_image(&()).unwrap();
                    let ((), image): ((), crate::sm::KeySpaceImage) = bincode::deserialize(&bytes).unwrap();
                    b = KeySpace::from_image(image);
                }
            }
            prop_assert_eq!(crate::sm::digest(&a), crate::sm::digest(&b));
        }
    }
}
