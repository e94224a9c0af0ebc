//! Command errors, typed until the connection writes them: the text of each is Redis's, and
//! it is written here and nowhere else (the reply carries it as `-<text>`).

use crate::resp::Reply;
use crate::sm::WrongType;

/// Why a command failed. Variants callers match on are named; every other Redis error text
/// travels as [`Error::Other`], built by the command that gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand { name: String, args: String },
    #[error("ERR unknown subcommand '{sub}'. Try {container} HELP.")]
    UnknownSubcommand { container: String, sub: String },
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR value is out of range, must be positive")]
    NotPositive,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR invalid cursor")]
    InvalidCursor,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    TooBig,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    #[error("{}", WrongType)]
    WrongType,
    /// Any other error; the text starts with its code (`ERR ...`).
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An error with this exact text (code first).
    pub fn msg(text: impl Into<String>) -> Error {
        Error::Other(text.into())
    }
}

impl From<WrongType> for Error {
    fn from(_: WrongType) -> Error {
        Error::WrongType
    }
}

impl From<Error> for Reply {
    fn from(e: Error) -> Reply {
        Reply::Error(e.to_string())
    }
}

/// A command's outcome: a reply, or an error the connection writes as one.
pub type Result<T = Reply, E = Error> = std::result::Result<T, E>;
