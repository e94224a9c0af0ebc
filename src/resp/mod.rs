//! The RESP front end's wire formats: requests in (multibulk or inline) and replies out (RESP2/RESP3).
//!
//! Requests are parsed by our own code rather than redis-protocol's decoder because Redis accepts
//! inline commands, and because a client that sends garbage must get Redis's exact
//! `Protocol error: ...` text; replies are encoded straight into the connection's write buffer.

mod inline;
mod reply;
mod request;

pub use inline::split_args;
pub use reply::{Protocol, Reply};
pub use request::{parse_i64, parse_request, ProtocolError, MAX_BULK_LEN, MAX_INLINE_LEN};
