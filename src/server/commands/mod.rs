//! The command table: the data commands of `crate::cmd` and the commands the node answers
//! itself (one module per family: connection, server, cluster, transactions), each with its
//! metadata and its handler side by side. A request is resolved here, once, into a
//! [`Command`]; the connection's gate then applies the same checks to every command.

mod cluster;
mod connection;
pub mod pubsub;
mod raft;
mod scripting;
mod sentinel;
pub(crate) mod server;
mod transactions;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use bytes::Bytes;

pub use server::{resident_bytes, REDIS_VERSION};

use super::conn::Session;
use crate::cmd::{self, DataCommand, Error, Meta};
use crate::resp::Reply;

/// A boxed future of a node command's reply.
pub type ReplyFuture<'a> = Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;

/// How a node command runs.
#[derive(Clone, Copy)]
pub enum Run {
    /// Answers at once.
    Sync(fn(&mut Session, &[Bytes]) -> Reply),
    /// Waits for something (Raft, a timer).
    Async(for<'a> fn(&'a mut Session, &'a [Bytes]) -> ReplyFuture<'a>),
}

/// A command the node answers itself: its metadata and its handler.
pub struct NodeCommand {
    pub meta: Meta,
    pub run: Run,
    /// Subcommands, for containers (CLIENT, CLUSTER, COMMAND, CONFIG).
    pub subcommands: &'static [NodeCommand],
}

/// A [`NodeCommand`] row: the metadata fields in table order, the handler, the summary (and,
/// for containers, the subcommands).
macro_rules! node {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $acl:expr,
     $group:literal, $since:literal, $run:expr, $summary:literal) => {
        node!($name, $arity, $flags, $first, $last, $step, $acl, $group, $since, $run, $summary, &[])
    };
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $acl:expr,
     $group:literal, $since:literal, $run:expr, $summary:literal, $subs:expr) => {
        $crate::server::commands::NodeCommand {
            meta: $crate::meta!($name, $arity, $flags, $first, $last, $step, $acl, $group, $since, $summary),
            run: $run,
            subcommands: $subs,
        }
    };
}
use node;

/// A resolved command.
#[derive(Clone, Copy)]
pub enum Command {
    /// Parsed into an operation the state machine runs.
    Data(&'static DataCommand),
    /// Run by the node.
    Node(&'static NodeCommand),
}

impl Command {
    /// The command's metadata.
    pub fn meta(self) -> &'static Meta {
        match self {
            Command::Data(c) => &c.meta,
            Command::Node(c) => &c.meta,
        }
    }

    /// The command's name (`container|sub` for subcommands).
    pub fn name(self) -> &'static str {
        self.meta().name
    }

    /// The subcommands of a container.
    pub fn subcommands(self) -> Vec<Command> {
        match self {
            Command::Data(c) => c.subcommands.iter().map(Command::Data).collect(),
            Command::Node(c) => c.subcommands.iter().map(Command::Node).collect(),
        }
    }

    /// Whether the command may change the keyspace.
    pub fn is_write(self) -> bool {
        self.meta().is_write()
    }
}

/// Every command, by lower-case name, and the names in order.
struct Table {
    by_name: HashMap<&'static str, Command>,
    sorted: Vec<Command>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let node = [
            connection::COMMANDS,
            server::COMMANDS,
            cluster::COMMANDS,
            transactions::COMMANDS,
            pubsub::COMMANDS,
            raft::COMMANDS,
            scripting::COMMANDS,
            sentinel::COMMANDS,
        ];
        let mut sorted: Vec<Command> =
            cmd::data_commands().map(Command::Data).chain(node.into_iter().flatten().map(Command::Node)).collect();
        sorted.sort_by_key(|c| c.name());
        let by_name = sorted.iter().map(|c| (c.name(), *c)).collect();
        Table { by_name, sorted }
    })
}

/// Every top-level command, sorted by name.
pub fn all() -> &'static [Command] {
    &table().sorted
}

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<Command> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    table().by_name.get(std::str::from_utf8(lower).ok()?).copied()
}

/// Finds a container's subcommand by name, case-insensitively.
pub fn lookup_sub(container: Command, sub: &[u8]) -> Option<Command> {
    let prefix = container.name().len() + 1;
    container.subcommands().into_iter().find(|c| c.name().as_bytes()[prefix..].eq_ignore_ascii_case(sub))
}

/// Resolves `args[0]` (and, for containers, `args[1]`) to a command and checks its arity.
/// The error is the exact one Redis gives.
pub fn resolve(args: &[Bytes]) -> Result<Command, Error> {
    let Some(command) = lookup(&args[0]) else {
        return Err(cmd::unknown_command(args));
    };
    let has_subs = match command {
        Command::Data(c) => !c.subcommands.is_empty(),
        Command::Node(c) => !c.subcommands.is_empty(),
    };
    if has_subs && args.len() >= 2 {
        let Some(sub) = lookup_sub(command, &args[1]) else {
            return Err(cmd::unknown_subcommand(&args[0], &args[1]));
        };
        return check_arity(sub, args.len());
    }
    check_arity(command, args.len())
}

fn check_arity(command: Command, argc: usize) -> Result<Command, Error> {
    if command.meta().arity_ok(argc) {
        Ok(command)
    } else {
        Err(Error::WrongArity(command.name().to_string()))
    }
}

/// The handler of a container run without a subcommand: its arity (at least two arguments)
/// makes the gate answer first, so this only guards against a table mistake.
fn container(_: &mut Session, args: &[Bytes]) -> Reply {
    Error::WrongArity(String::from_utf8_lossy(&args[0]).to_lowercase()).into()
}

/// A HELP reply: one status line each.
fn help(lines: &[&str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::status(*l)).collect())
}

/// Whether `arg` is `word`, case-insensitively.
fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// The argument as text (invalid UTF-8 replaced).
fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    fn err(line: &[&str]) -> String {
        resolve(&args(line)).err().expect("an error").to_string()
    }

    #[test]
    fn table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert!(seen.insert(c.name()), "{} twice", c.name());
            for s in c.subcommands() {
                assert!(s.name().starts_with(&format!("{}|", c.name())), "{}", s.name());
            }
        }
        assert_eq!(lookup(b"GeT").map(|c| c.name()), Some("get"));
        assert_eq!(lookup_sub(lookup(b"client").unwrap(), b"SETNAME").map(|c| c.name()), Some("client|setname"));
    }

    #[test]
    fn errors_like_redis() {
        assert_eq!(err(&["foo", "a", "b"]), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
        assert_eq!(err(&["get"]), "ERR wrong number of arguments for 'get' command");
        assert_eq!(err(&["client", "setname"]), "ERR wrong number of arguments for 'client|setname' command");
        assert_eq!(err(&["client", "foo"]), "ERR unknown subcommand 'foo'. Try CLIENT HELP.");
        assert_eq!(err(&["client"]), "ERR wrong number of arguments for 'client' command");
        assert_eq!(resolve(&args(&["SET", "k", "v"])).map(|c| c.name()).ok(), Some("set"));
    }
}
