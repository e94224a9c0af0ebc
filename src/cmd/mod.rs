//! The command layer: the command table, and turning a request's arguments into either a
//! keyspace operation or a server command, with Redis's unknown-command and arity errors.

mod parse;
mod table;

use bytes::Bytes;

pub use parse::parse_op;
pub use table::{lookup, lookup_sub, CommandSpec, Exec, COMMANDS};

use crate::resp::Reply;

/// Resolves `args[0]` (and, for container commands, `args[1]`) to a command and checks its arity.
/// The error is the exact reply Redis sends.
pub fn resolve(args: &[Bytes]) -> Result<&'static CommandSpec, Reply> {
    let Some(spec) = lookup(&args[0]) else {
        return Err(unknown_command(args));
    };
    if !spec.subcommands.is_empty() && args.len() >= 2 {
        let Some(sub) = lookup_sub(spec, &args[1]) else {
            return Err(Reply::err(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                truncated(&args[1], 128),
                String::from_utf8_lossy(&args[0]).to_uppercase()
            )));
        };
        return check_arity(sub, args.len());
    }
    check_arity(spec, args.len())
}

fn check_arity(spec: &'static CommandSpec, argc: usize) -> Result<&'static CommandSpec, Reply> {
    if spec.arity_ok(argc) {
        Ok(spec)
    } else {
        Err(wrong_arity(spec.name))
    }
}

/// `ERR wrong number of arguments for '<name>' command`.
pub fn wrong_arity(name: &str) -> Reply {
    Reply::err(format!("ERR wrong number of arguments for '{name}' command"))
}

/// The text up to the first NUL and at most `max` bytes, as C's `%.*s` prints it.
fn truncated(arg: &[u8], max: usize) -> String {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len()).min(max);
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

fn unknown_command(args: &[Bytes]) -> Reply {
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
    Reply::err(format!("ERR unknown command '{}', with args beginning with: {}", truncated(&args[0], 128), list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    #[test]
    fn errors_like_redis() {
        assert_eq!(
            resolve(&args(&["foo", "a", "b"])).unwrap_err(),
            Reply::err("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
        );
        assert_eq!(resolve(&args(&["get"])).unwrap_err(), wrong_arity("get"));
        assert_eq!(resolve(&args(&["client", "setname"])).unwrap_err(), wrong_arity("client|setname"));
        assert_eq!(
            resolve(&args(&["client", "foo"])).unwrap_err(),
            Reply::err("ERR unknown subcommand 'foo'. Try CLIENT HELP.")
        );
        assert_eq!(resolve(&args(&["client"])).unwrap_err(), wrong_arity("client"));
        assert_eq!(resolve(&args(&["SET", "k", "v"])).map(|s| s.name), Ok("set"));
    }
}
