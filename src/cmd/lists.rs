//! The list commands (being written).

use serde::{Deserialize, Serialize};

use super::{Ctx, DataCommand, Result};
use crate::sm::KeySpace;

/// The commands, sorted by name.
pub const COMMANDS: &[DataCommand] = &[];

/// One operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ListOp {}

impl ListOp {
    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        match *self {}
    }
}

/// Applies an operation.
pub fn apply(_ks: &mut KeySpace, op: &ListOp, _ctx: Ctx) -> Result {
    match *op {}
}

/// Answers a read-only operation.
pub fn query(_ks: &KeySpace, op: &ListOp, _ctx: Ctx) -> Result {
    match *op {}
}
