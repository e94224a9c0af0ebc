//! The bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO, with Redis 7.0's replies and errors and its order of checks (ported from
//! `bitops.c`). Bit 0 is the most significant bit of byte 0.
//!
//! Arguments Redis only reads once the key is found (BITCOUNT's range, BITPOS's range) travel
//! in the operation as they are and are read at execution, so that a missing key answers
//! before they are checked, as in Redis.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::args::{c_str, eq, int};
use super::meta::*;
use super::notify::{notify, GENERIC, STRING};
use super::{Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::{parse_i64, Reply, MAX_BULK_LEN};
use crate::sm::{KeySpace, Value};

const BRF: &[&str] = &["@read", "@bitmap", "@fast"];
const BRS: &[&str] = &["@read", "@bitmap", "@slow"];
const BWS: &[&str] = &["@write", "@bitmap", "@slow"];

/// The bitmap commands, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[DataCommand] = &[
    data!("bitcount", -2, RS, 1, 1, 1, BRS, "bitmap", "2.6.0", parse::bitcount, "Count set bits in a string"),
    data!("bitfield", -2, W, 1, 1, 1, BWS, "bitmap", "3.2.0", parse::bitfield, "Perform arbitrary bitfield integer operations on strings"),
    data!("bitfield_ro", -2, R, 1, 1, 1, BRF, "bitmap", "6.0.0", parse::bitfield_ro, "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD"),
    data!("bitop", -4, W, 2, -1, 1, BWS, "bitmap", "2.6.0", parse::bitop, "Perform bitwise operations between strings"),
    data!("bitpos", -3, RS, 1, 1, 1, BRS, "bitmap", "2.8.7", parse::bitpos, "Find first bit set or clear in a string"),
    data!("getbit", 3, R, 1, 1, 1, BRF, "bitmap", "2.2.0", parse::getbit, "Returns the bit value at offset in the string value stored at key"),
    data!("setbit", 4, W, 1, 1, 1, BWS, "bitmap", "2.2.0", parse::setbit, "Sets or clears the bit at offset in the string value stored at key"),
];

const OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";
const BIT_ERR: &str = "ERR bit is not an integer or out of range";
const TYPE_ERR: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// BITOP's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bitwise {
    And,
    Or,
    Xor,
    Not,
}

/// BITFIELD's overflow behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// What a BITFIELD subcommand does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldAction {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One BITFIELD subcommand: an integer of `bits` bits (`signed` or not) at bit `offset`, with
/// the overflow behaviour in force where it appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldOp {
    pub action: FieldAction,
    pub signed: bool,
    pub bits: u32,
    pub offset: u64,
    pub overflow: Overflow,
}

impl FieldOp {
    fn writes(&self) -> bool {
        self.action != FieldAction::Get
    }
}

/// One bitmap operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BitOp {
    // Reads.
    GetBit {
        key: Bytes,
        offset: u64,
    },
    /// BITCOUNT: the arguments after the key, read once the key is found to be a string.
    Count {
        key: Bytes,
        args: Vec<Bytes>,
    },
    /// BITPOS: the bit sought (checked), then the arguments after it, read once the key is
    /// found to be a string.
    Pos {
        key: Bytes,
        bit: u8,
        args: Vec<Bytes>,
    },
    /// BITFIELD and BITFIELD_RO: a write when a subcommand is SET or INCRBY.
    Field {
        key: Bytes,
        ops: Vec<FieldOp>,
    },
    // Writes.
    SetBit {
        key: Bytes,
        offset: u64,
        on: bool,
    },
    Combine {
        op: Bitwise,
        dst: Bytes,
        keys: Vec<Bytes>,
    },
}

impl BitOp {
    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        match self {
            BitOp::GetBit { .. } | BitOp::Count { .. } | BitOp::Pos { .. } => false,
            BitOp::Field { ops, .. } => ops.iter().any(FieldOp::writes),
            BitOp::SetBit { .. } | BitOp::Combine { .. } => true,
        }
    }
}

/// A bit offset as Redis's `getBitOffsetFromArgument` reads it: an integer, or with `hash`
/// `#n` meaning `n * bits`; negative or past 512 MB is an error.
fn bit_offset(arg: &[u8], hash: bool, bits: u32) -> Result<u64> {
    let use_hash = hash && arg.len() > 1 && arg[0] == b'#';
    let mut offset = parse_i64(if use_hash { &arg[1..] } else { arg }).ok_or(Error::msg(OFFSET_ERR))?;
    if use_hash {
        offset = offset.wrapping_mul(bits as i64);
    }
    if offset < 0 || (offset >> 3) >= MAX_BULK_LEN {
        return Err(Error::msg(OFFSET_ERR));
    }
    Ok(offset as u64)
}

/// A BITFIELD type (`i1`..`i64`, `u1`..`u63`) as `getBitfieldTypeFromArgument` reads it:
/// (signed, bits).
fn field_type(arg: &[u8]) -> Result<(bool, u32)> {
    let arg = c_str(arg);
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(Error::msg(TYPE_ERR)),
    };
    match parse_i64(&arg[1..]) {
        Some(bits) if bits >= 1 && bits <= if signed { 64 } else { 63 } => Ok((signed, bits as u32)),
        _ => Err(Error::msg(TYPE_ERR)),
    }
}

/// The argument parsers, one per command, named after it.
mod parse {
    use super::*;

    fn op(op: BitOp) -> Result<Op> {
        Ok(Op::Bit(op))
    }

    fn a(args: &[Bytes], i: usize) -> Bytes {
        args[i].clone()
    }

    /// The offset is checked, then the bit value, before the key is looked up.
    pub fn setbit(args: &[Bytes], _: u64) -> Result<Op> {
        let offset = bit_offset(&args[2], false, 0)?;
        let on = match parse_i64(&args[3]) {
            Some(v @ (0 | 1)) => v == 1,
            _ => return Err(Error::msg(BIT_ERR)),
        };
        op(BitOp::SetBit { key: a(args, 1), offset, on })
    }

    pub fn getbit(args: &[Bytes], _: u64) -> Result<Op> {
        op(BitOp::GetBit { key: a(args, 1), offset: bit_offset(&args[2], false, 0)? })
    }

    pub fn bitcount(args: &[Bytes], _: u64) -> Result<Op> {
        op(BitOp::Count { key: a(args, 1), args: args[2..].to_vec() })
    }

    /// The bit is checked before the key is looked up; the range after.
    pub fn bitpos(args: &[Bytes], _: u64) -> Result<Op> {
        let bit = match int(&args[2])? {
            b @ (0 | 1) => b as u8,
            _ => return Err(Error::msg("ERR The bit argument must be 1 or 0.")),
        };
        op(BitOp::Pos { key: a(args, 1), bit, args: args[3..].to_vec() })
    }

    pub fn bitop(args: &[Bytes], _: u64) -> Result<Op> {
        let name = &args[1];
        let bitwise = if eq(name, "and") {
            Bitwise::And
        } else if eq(name, "or") {
            Bitwise::Or
        } else if eq(name, "xor") {
            Bitwise::Xor
        } else if eq(name, "not") {
            Bitwise::Not
        } else {
            return Err(Error::Syntax);
        };
        if bitwise == Bitwise::Not && args.len() != 4 {
            return Err(Error::msg("ERR BITOP NOT must be called with a single source key."));
        }
        op(BitOp::Combine { op: bitwise, dst: a(args, 2), keys: args[3..].to_vec() })
    }

    pub fn bitfield(args: &[Bytes], _: u64) -> Result<Op> {
        op(BitOp::Field { key: a(args, 1), ops: field_ops(args)? })
    }

    /// Every subcommand is parsed (and its errors given) before SET and INCRBY are refused.
    pub fn bitfield_ro(args: &[Bytes], _: u64) -> Result<Op> {
        let ops = field_ops(args)?;
        if ops.iter().any(FieldOp::writes) {
            return Err(Error::msg("ERR BITFIELD_RO only supports the GET subcommand"));
        }
        op(BitOp::Field { key: a(args, 1), ops })
    }

    /// BITFIELD's subcommands, as `bitfieldGeneric` reads them.
    fn field_ops(args: &[Bytes]) -> Result<Vec<FieldOp>> {
        let mut ops = Vec::new();
        let mut overflow = Overflow::Wrap;
        let mut j = 2;
        while j < args.len() {
            let rest = args.len() - j - 1;
            let sub = &args[j];
            let action = if eq(sub, "get") && rest >= 2 {
                FieldAction::Get
            } else if eq(sub, "set") && rest >= 3 {
                FieldAction::Set(0)
            } else if eq(sub, "incrby") && rest >= 3 {
                FieldAction::IncrBy(0)
            } else if eq(sub, "overflow") && rest >= 1 {
                let kind = &args[j + 1];
                overflow = if eq(kind, "wrap") {
                    Overflow::Wrap
                } else if eq(kind, "sat") {
                    Overflow::Sat
                } else if eq(kind, "fail") {
                    Overflow::Fail
                } else {
                    return Err(Error::msg("ERR Invalid OVERFLOW type specified"));
                };
                j += 2;
                continue;
            } else {
                return Err(Error::Syntax);
            };
            let (signed, bits) = field_type(&args[j + 1])?;
            let offset = bit_offset(&args[j + 2], true, bits)?;
            let action = match action {
                FieldAction::Get => FieldAction::Get,
                FieldAction::Set(_) => FieldAction::Set(int(&args[j + 3])?),
                FieldAction::IncrBy(_) => FieldAction::IncrBy(int(&args[j + 3])?),
            };
            ops.push(FieldOp { action, signed, bits, offset, overflow });
            j += if action == FieldAction::Get { 3 } else { 4 };
        }
        Ok(ops)
    }
}

/// The string at `key`, `None` when missing, or WRONGTYPE.
fn read_str<'a>(ks: &'a KeySpace, key: &[u8], now: u64) -> Result<Option<&'a [u8]>> {
    Ok(match ks.get(key, now) {
        Some(e) => Some(e.value.as_str()?.as_slice()),
        None => None,
    })
}

/// The string of an entry already checked to be one.
fn str_mut(value: &mut Value) -> &mut Vec<u8> {
    value.as_str_mut().expect("checked a string")
}

/// Applies a bitmap operation (reads included, as inside EXEC).
pub fn apply(ks: &mut KeySpace, op: &BitOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        BitOp::SetBit { key, offset, on } => setbit(ks, key, *offset, *on, now)?,
        BitOp::Combine { op, dst, keys } => bitop(ks, *op, dst, keys, now)?,
        BitOp::Field { key, ops } if ops.iter().any(FieldOp::writes) => bitfield_write(ks, key, ops, now)?,
        read => query(ks, read, ctx)?,
    })
}

/// Answers a read-only bitmap operation.
pub fn query(ks: &KeySpace, op: &BitOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        BitOp::GetBit { key, offset } => {
            let s = read_str(ks, key, now)?.unwrap_or_default();
            Reply::Int(get_bit(s, *offset) as i64)
        }
        BitOp::Count { key, args } => match read_str(ks, key, now)? {
            None => Reply::Int(0),
            Some(s) => bitcount(s, args)?,
        },
        BitOp::Pos { key, bit, args } => match read_str(ks, key, now)? {
            None => Reply::Int(if *bit == 1 { -1 } else { 0 }),
            Some(s) => bitpos(s, *bit, args)?,
        },
        BitOp::Field { key, ops } if !ops.iter().any(FieldOp::writes) => {
            let s = read_str(ks, key, now)?.unwrap_or_default();
            Reply::Array(ops.iter().map(|o| Reply::Int(get_field(s, o.offset, o.bits, o.signed))).collect())
        }
        write => unreachable!("query of a write operation {write:?}"),
    })
}

/// The bit at `offset` (0 past the end).
fn get_bit(s: &[u8], offset: u64) -> u8 {
    let byte = (offset >> 3) as usize;
    s.get(byte).map_or(0, |b| (b >> (7 - (offset & 7))) & 1)
}

fn setbit(ks: &mut KeySpace, key: &Bytes, offset: u64, on: bool, now: u64) -> Result {
    let byte = (offset >> 3) as usize;
    let shift = 7 - (offset & 7);
    let write = |v: &mut Vec<u8>| {
        if v.len() < byte + 1 {
            v.resize(byte + 1, 0);
        }
        v[byte] = (v[byte] & !(1 << shift)) | ((on as u8) << shift);
    };
    let old = match ks.live_slot(key, now) {
        Some(slot) => {
            let s = ks.at(slot).expect("live slot").value.as_str()?;
            let old = get_bit(s, offset);
            // Neither grown nor changed: the key is left untouched, as in Redis.
            if byte < s.len() && old == on as u8 {
                return Ok(Reply::Int(old as i64));
            }
            ks.update(slot, |e| write(str_mut(&mut e.value)));
            old
        }
        None => {
            let mut v = Vec::new();
            write(&mut v);
            ks.set(key, Value::Str(v), 0);
            0
        }
    };
    notify(ks, STRING, "setbit", key);
    Ok(Reply::Int(old as i64))
}

/// BIT or BYTE (true for BIT), or a syntax error.
fn unit(arg: &[u8]) -> Result<bool> {
    if eq(arg, "bit") {
        Ok(true)
    } else if eq(arg, "byte") {
        Ok(false)
    } else {
        Err(Error::Syntax)
    }
}

/// A range of whole bytes `start..=end` (empty when `start > end`) and the masks of the bits
/// outside a BIT range in its first and last bytes.
struct Span {
    start: i64,
    end: i64,
    first_mask: u8,
    last_mask: u8,
}

/// Redis's index arithmetic for BITCOUNT and BITPOS: negative indexes count from the end of
/// `totlen` units (bytes, or bits with `bit`), then both are clamped into the string.
fn span(mut start: i64, mut end: i64, len: usize, bit: bool) -> Span {
    let totlen = if bit { (len as i64) << 3 } else { len as i64 };
    if start < 0 {
        start += totlen;
    }
    if end < 0 {
        end += totlen;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    let (mut first_mask, mut last_mask) = (0, 0);
    if bit && start <= end {
        first_mask = !((1u32 << (8 - (start & 7))) - 1) as u8;
        last_mask = ((1u32 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    Span { start, end, first_mask, last_mask }
}

fn popcount(s: &[u8]) -> i64 {
    s.iter().map(|b| b.count_ones() as i64).sum()
}

/// BITCOUNT of a string with its arguments after the key, as `bitcountCommand` reads them.
fn bitcount(s: &[u8], args: &[Bytes]) -> Result {
    let sp = match args.len() {
        0 => Span { start: 0, end: s.len() as i64 - 1, first_mask: 0, last_mask: 0 },
        2 | 3 => {
            let start = int(&args[0])?;
            let end = int(&args[1])?;
            // Checked before the unit: `BITCOUNT k -1 -2 FOO` is 0, not a syntax error.
            if start < 0 && end < 0 && start > end {
                return Ok(Reply::Int(0));
            }
            let bit = match args.get(2) {
                Some(u) => unit(u)?,
                None => false,
            };
            span(start, end, s.len(), bit)
        }
        _ => return Err(Error::Syntax),
    };
    if sp.start > sp.end {
        return Ok(Reply::Int(0));
    }
    let (start, end) = (sp.start as usize, sp.end as usize);
    let mut count = popcount(&s[start..=end]);
    count -= (s[start] & sp.first_mask).count_ones() as i64;
    count -= (s[end] & sp.last_mask).count_ones() as i64;
    Ok(Reply::Int(count))
}

/// Redis's `redisBitpos`: the position of the first bit `bit` in `s`; when none, -1 for a 1
/// and the first bit past the end for a 0.
fn first_bit(s: &[u8], bit: u8) -> i64 {
    let skip = if bit == 1 { 0 } else { 0xff };
    match s.iter().position(|&b| b != skip) {
        Some(i) => {
            let b = if bit == 1 { s[i] } else { !s[i] };
            (i as i64) * 8 + b.leading_zeros() as i64
        }
        None if bit == 1 => -1,
        None => (s.len() as i64) * 8,
    }
}

/// BITPOS of a string with its arguments after the bit, ported from `bitposCommand`.
fn bitpos(s: &[u8], bit: u8, args: &[Bytes]) -> Result {
    let mut end_given = false;
    let sp = match args.len() {
        0 => Span { start: 0, end: s.len() as i64 - 1, first_mask: 0, last_mask: 0 },
        1..=3 => {
            let start = int(&args[0])?;
            let is_bit = match args.get(2) {
                Some(u) => unit(u)?,
                None => false,
            };
            let end = match args.get(1) {
                Some(e) => {
                    end_given = true;
                    int(e)?
                }
                None => s.len() as i64 - 1,
            };
            span(start, end, s.len(), is_bit)
        }
        _ => return Err(Error::Syntax),
    };
    if sp.start > sp.end {
        return Ok(Reply::Int(-1));
    }
    let (mut start, end) = (sp.start as usize, sp.end as usize);
    let mut bytes = end - start + 1;
    let masked = |b: u8, mask: u8| if bit == 1 { b & !mask } else { b | mask };
    let pos = 'found: {
        if sp.first_mask != 0 {
            let mut c = masked(s[start], sp.first_mask);
            if sp.last_mask != 0 && bytes == 1 {
                c = masked(c, sp.last_mask);
            }
            let pos = first_bit(&[c], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let cur = bytes - (sp.last_mask != 0) as usize;
        if cur > 0 {
            let pos = first_bit(&s[start..start + cur], bit);
            if bytes == cur || (pos != -1 && pos != (cur as i64) << 3) {
                break 'found pos;
            }
            start += cur;
            bytes -= cur;
        }
        first_bit(&[masked(s[end], sp.last_mask)], bit)
    };
    // With an explicit end, a 0 found just past the range is not in it.
    if end_given && bit == 0 && pos == (bytes as i64) << 3 {
        return Ok(Reply::Int(-1));
    }
    Ok(Reply::Int(if pos == -1 { -1 } else { pos + ((start as i64) << 3) }))
}

/// BITOP: the sources (missing ones are empty; another type is WRONGTYPE) combined byte by
/// byte into `dst`, which is deleted when the result is empty.
fn bitop(ks: &mut KeySpace, op: Bitwise, dst: &Bytes, keys: &[Bytes], now: u64) -> Result {
    let sources: Vec<&[u8]> =
        keys.iter().map(|k| read_str(ks, k, now).map(Option::unwrap_or_default)).collect::<Result<_>>()?;
    let max = sources.iter().map(|s| s.len()).max().unwrap_or(0);
    if max == 0 {
        if ks.live_slot(dst, now).is_some() {
            ks.remove(dst);
            notify(ks, GENERIC, "del", dst);
        }
        return Ok(Reply::Int(0));
    }
    let byte = |s: &[u8], j: usize| s.get(j).copied().unwrap_or(0);
    let result: Vec<u8> = (0..max)
        .map(|j| {
            let first = byte(sources[0], j);
            sources[1..].iter().fold(if op == Bitwise::Not { !first } else { first }, |out, s| match op {
                Bitwise::And => out & byte(s, j),
                Bitwise::Or => out | byte(s, j),
                Bitwise::Xor => out ^ byte(s, j),
                Bitwise::Not => out,
            })
        })
        .collect();
    ks.set(dst, Value::Str(result), 0);
    notify(ks, STRING, "set", dst);
    Ok(Reply::Int(max as i64))
}

/// The unsigned integer of `bits` bits at bit `offset` (bits past the end read as 0).
fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..bits as u64).fold(0, |v, j| (v << 1) | get_bit(s, offset + j) as u64)
}

/// The integer a GET of the field reads, as the reply gives it.
fn get_field(s: &[u8], offset: u64, bits: u32, signed: bool) -> i64 {
    let v = get_unsigned(s, offset, bits);
    if signed && bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Writes the low `bits` bits of `value` at bit `offset` (inside the string).
fn set_unsigned(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let on = (value >> (bits as u64 - 1 - j)) & 1;
        let o = offset + j;
        let (byte, shift) = ((o >> 3) as usize, 7 - (o & 7));
        s[byte] = (s[byte] & !(1 << shift)) | ((on as u8) << shift);
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: `None` when `value + incr` fits in `bits` bits,
/// otherwise the value to store (wrapped or saturated; meaningless for FAIL).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, overflow: Overflow) -> Option<u64> {
    let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > max_incr) {
        Some(match overflow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => max,
            Overflow::Fail => 0,
        })
    } else if incr < 0 && incr < min_incr {
        Some(match overflow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => 0,
            Overflow::Fail => 0,
        })
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow`, with its wrapping arithmetic.
fn signed_overflow(value: i64, incr: i64, bits: u32, overflow: Overflow) -> Option<i64> {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr) {
        Some(match overflow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => max,
            Overflow::Fail => 0,
        })
    } else if value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr) {
        Some(match overflow {
            Overflow::Wrap => wrap(),
            Overflow::Sat => min,
            Overflow::Fail => 0,
        })
    } else {
        None
    }
}

/// Runs BITFIELD's subcommands on a string already long enough for every write; the replies,
/// and whether any write changed a field's value.
fn run_fields(s: &mut [u8], ops: &[FieldOp]) -> (Vec<Reply>, bool) {
    let mut changed = false;
    let replies = ops
        .iter()
        .map(|o| {
            let (offset, bits) = (o.offset, o.bits);
            let (by, set) = match o.action {
                FieldAction::Get => return Reply::Int(get_field(s, offset, bits, o.signed)),
                FieldAction::Set(v) => (v, true),
                FieldAction::IncrBy(v) => (v, false),
            };
            let old_bits = get_unsigned(s, offset, bits);
            let (store, reply, failed) = if o.signed {
                let old = get_field(s, offset, bits, true);
                let (new, over) = if set {
                    let over = signed_overflow(by, 0, bits, o.overflow);
                    (over.unwrap_or(by), over.is_some())
                } else {
                    let over = signed_overflow(old, by, bits, o.overflow);
                    (over.unwrap_or(old.wrapping_add(by)), over.is_some())
                };
                (new as u64, if set { old } else { new }, over)
            } else {
                let old = old_bits;
                let (new, over) = if set {
                    let over = unsigned_overflow(by as u64, 0, bits, o.overflow);
                    (over.unwrap_or(by as u64), over.is_some())
                } else {
                    let over = unsigned_overflow(old, by, bits, o.overflow);
                    (over.unwrap_or(old.wrapping_add(by as u64)), over.is_some())
                };
                (new, if set { old as i64 } else { new as i64 }, over)
            };
            if failed && o.overflow == Overflow::Fail {
                return Reply::Nil;
            }
            set_unsigned(s, offset, bits, store);
            changed |= get_unsigned(s, offset, bits) != old_bits;
            Reply::Int(reply)
        })
        .collect();
    (replies, changed)
}

/// A BITFIELD with SET or INCRBY: the string is created or grown (with zero bytes) up to the
/// farthest bit written, even when every write fails. As in Redis, the key counts as modified
/// (WATCH, the change count, a `setbit` event) only when it was created or grown or a write
/// changed a field's value.
fn bitfield_write(ks: &mut KeySpace, key: &Bytes, ops: &[FieldOp], now: u64) -> Result {
    let highest = ops.iter().filter(|o| o.writes()).map(|o| o.offset + o.bits as u64 - 1).max().unwrap_or(0);
    let len = (highest >> 3) as usize + 1;
    let run = |v: &mut Vec<u8>| {
        let grown = v.len() < len;
        if grown {
            v.resize(len, 0);
        }
        let (replies, changed) = run_fields(v, ops);
        (replies, grown || changed)
    };
    let (replies, changed) = match ks.live_slot(key, now) {
        Some(slot) => {
            ks.at(slot).expect("live slot").value.as_str()?;
            ks.update_if_changed(slot, |e| {
                let (replies, changed) = run(str_mut(&mut e.value));
                ((replies, changed), changed)
            })
        }
        None => {
            let mut v = Vec::new();
            let (replies, _) = run(&mut v);
            ks.set(key, Value::Str(v), 0);
            (replies, true)
        }
    };
    if changed {
        notify(ks, STRING, "setbit", key);
    }
    Ok(Reply::Array(replies))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    /// Parses a command line (`\0` stands for a NUL byte, `\xff` for a byte) into its operation.
    fn p(line: &str) -> Result<Op> {
        let args: Vec<Bytes> = line.split(' ').map(|s| Bytes::from(unescape(s))).collect();
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        let command = COMMANDS.iter().find(|c| c.meta.name == name).expect("a bitmap command");
        assert!(command.meta.arity_ok(args.len()), "arity of {line}");
        (command.parse)(&args, NOW)
    }

    fn unescape(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && b.get(i + 1) == Some(&b'0') {
                out.push(0);
                i += 2;
            } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
                out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                i += 4;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    fn run(ks: &mut KeySpace, line: &str) -> Reply {
        match p(line) {
            Ok(op) => op.apply(ks, Ctx { now: NOW, seed: 1 }),
            Err(e) => e.into(),
        }
    }

    fn set(ks: &mut KeySpace, key: &str, value: &str) {
        ks.set(key.as_bytes(), Value::Str(unescape(value)), 0);
    }

    fn value(ks: &KeySpace, key: &str) -> Option<Vec<u8>> {
        ks.get(key.as_bytes(), NOW).map(|e| e.value.as_str().unwrap().clone())
    }

    fn ints(v: &[i64]) -> Reply {
        Reply::Array(v.iter().map(|&n| Reply::Int(n)).collect())
    }

    #[test]
    fn table_is_sorted() {
        assert!(COMMANDS.windows(2).all(|w| w[0].meta.name < w[1].meta.name));
    }

    #[test]
    fn setbit_and_getbit() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, "SETBIT k 7 1"), Reply::Int(0));
        assert_eq!(run(&mut ks, "SETBIT k 7 1"), Reply::Int(1));
        assert_eq!(run(&mut ks, "GETBIT k 7"), Reply::Int(1));
        assert_eq!(run(&mut ks, "SETBIT k 23 1"), Reply::Int(0));
        assert_eq!(value(&ks, "k"), Some(vec![1, 0, 1]));
        assert_eq!(run(&mut ks, "GETBIT k 4294967295"), Reply::Int(0));
        let offset = Reply::err(OFFSET_ERR);
        for line in ["SETBIT k -1 1", "SETBIT k 4294967296 1", "SETBIT k x 1", "GETBIT k 4294967296"] {
            assert_eq!(run(&mut ks, line), offset, "{line}");
        }
        for line in ["SETBIT k 0 2", "SETBIT k 0 -1", "SETBIT k 0 x", "SETBIT k -1 x"] {
            let want = if line.contains("-1 x") { offset.clone() } else { Reply::err(BIT_ERR) };
            assert_eq!(run(&mut ks, line), want, "{line}");
        }
    }

    #[test]
    fn setbit_keeps_the_ttl_and_leaves_an_unchanged_key_alone() {
        let mut ks = KeySpace::new();
        ks.set(b"k", Value::Str(vec![0]), NOW + 5000);
        run(&mut ks, "SETBIT k 20 1");
        assert_eq!(ks.get(b"k", NOW).map(|e| e.expire_at), Some(NOW + 5000));
        let seq = ks.get(b"k", NOW).unwrap().seq;
        assert_eq!(run(&mut ks, "SETBIT k 20 1"), Reply::Int(1));
        assert_eq!(ks.get(b"k", NOW).unwrap().seq, seq);
    }

    #[test]
    fn bitfield_marks_the_key_modified_only_when_it_grows_or_a_value_changes() {
        let mut ks = KeySpace::new();
        ks.notify_flags = crate::cmd::notify::parse_flags(b"KEA").unwrap();
        let events = |ks: &mut KeySpace| std::mem::take(&mut ks.outbox).len();
        run(&mut ks, "BITFIELD k SET i5 0 0");
        assert_eq!(events(&mut ks), 2, "a new key is a change");
        let seq = ks.seq();
        run(&mut ks, "BITFIELD k SET i5 0 0");
        assert_eq!((ks.seq(), events(&mut ks)), (seq, 0), "same value: untouched");
        run(&mut ks, "BITFIELD k OVERFLOW FAIL INCRBY u2 0 9");
        assert_eq!((ks.seq(), events(&mut ks)), (seq, 0), "a failed write changes nothing");
        run(&mut ks, "BITFIELD k SET i5 0 1");
        assert_eq!((ks.seq(), events(&mut ks)), (seq + 1, 2));
        run(&mut ks, "BITFIELD k SET i5 90 0");
        assert_eq!((ks.seq(), events(&mut ks)), (seq + 2, 2), "grown with the same value");
        run(&mut ks, "SETBIT k 0 1");
        assert_eq!((ks.seq(), events(&mut ks)), (seq + 3, 2));
        run(&mut ks, "SETBIT k 0 1");
        assert_eq!((ks.seq(), events(&mut ks)), (seq + 3, 0));
    }

    #[test]
    fn bitop_publishes_set_or_del_on_the_destination() {
        let mut ks = KeySpace::new();
        ks.notify_flags = crate::cmd::notify::parse_flags(b"EA").unwrap();
        set(&mut ks, "a", "ab");
        set(&mut ks, "d", "x");
        let channels = |ks: &mut KeySpace| -> Vec<Bytes> {
            std::mem::take(&mut ks.outbox).into_iter().map(|m| m.channel).collect()
        };
        channels(&mut ks);
        run(&mut ks, "BITOP NOT d a");
        assert_eq!(channels(&mut ks), vec![Bytes::from("__keyevent@0__:set")]);
        run(&mut ks, "BITOP AND d nosuch");
        assert_eq!(channels(&mut ks), vec![Bytes::from("__keyevent@0__:del")]);
        run(&mut ks, "BITOP AND d nosuch");
        assert_eq!(channels(&mut ks), Vec::<Bytes>::new(), "nothing to delete");
    }

    #[test]
    fn bitcount_ranges() {
        let mut ks = KeySpace::new();
        set(&mut ks, "k", "foobar");
        for (line, n) in [
            ("BITCOUNT k", 26),
            ("BITCOUNT k 1 1", 6),
            ("BITCOUNT k -2 -1", 7),
            ("BITCOUNT k -100 100", 26),
            ("BITCOUNT k 3 1", 0),
            ("BITCOUNT k 5 30 BIT", 17),
            ("BITCOUNT k -8 -1 BIT", 4),
            ("BITCOUNT k 0 1000 BIT", 26),
            ("BITCOUNT missing a 1", 0),
        ] {
            assert_eq!(run(&mut ks, line), Reply::Int(n), "{line}");
        }
        assert_eq!(run(&mut ks, "BITCOUNT k 0"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "BITCOUNT k a 1 BIT x"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "BITCOUNT k a 1"), Error::NotInteger.into());
        assert_eq!(run(&mut ks, "BITCOUNT k 0 1 FOO"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "BITCOUNT k -1 -2 FOO"), Reply::Int(0), "an empty range before the unit");
    }

    #[test]
    fn bitpos_ranges() {
        let mut ks = KeySpace::new();
        set(&mut ks, "k", "\\x00\\xff\\xf0");
        for (line, n) in [
            ("BITPOS k 1", 8),
            ("BITPOS k 0", 0),
            ("BITPOS k 1 2", 16),
            ("BITPOS k 0 1 1", -1),
            ("BITPOS k 0 1 2", 20),
            ("BITPOS k 1 0 -2 BYTE", 8),
            ("BITPOS k 1 7 15 BIT", 8),
            ("BITPOS k 1 9 15 BIT", 9),
            ("BITPOS k 0 8 15 BIT", -1),
            ("BITPOS k 0 8 19 BIT", -1),
            ("BITPOS k 0 8 20 BIT", 20),
            ("BITPOS k 1 -4 -1 BIT", -1),
            ("BITPOS missing 0", 0),
            ("BITPOS missing 1", -1),
        ] {
            assert_eq!(run(&mut ks, line), Reply::Int(n), "{line}");
        }
        set(&mut ks, "k", "\\xff\\xff\\xff");
        for (line, n) in
            [("BITPOS k 0", 24), ("BITPOS k 0 1", 24), ("BITPOS k 0 0 -1", -1), ("BITPOS k 0 0 23 BIT", -1)]
        {
            assert_eq!(run(&mut ks, line), Reply::Int(n), "{line}");
        }
        assert_eq!(run(&mut ks, "BITPOS k 2"), Reply::err("ERR The bit argument must be 1 or 0."));
        assert_eq!(run(&mut ks, "BITPOS k 0 8 BIT"), Error::NotInteger.into());
        assert_eq!(run(&mut ks, "BITPOS k 1 0 1 BIT 2"), Error::Syntax.into());
    }

    #[test]
    fn bitop_combines_and_deletes_an_empty_result() {
        let mut ks = KeySpace::new();
        set(&mut ks, "a", "\\xff\\x0f");
        set(&mut ks, "b", "\\x0f");
        assert_eq!(run(&mut ks, "BITOP AND d a b"), Reply::Int(2));
        assert_eq!(value(&ks, "d"), Some(vec![0x0f, 0]));
        assert_eq!(run(&mut ks, "BITOP XOR d a b"), Reply::Int(2));
        assert_eq!(value(&ks, "d"), Some(vec![0xf0, 0x0f]));
        assert_eq!(run(&mut ks, "BITOP NOT d a"), Reply::Int(2));
        assert_eq!(value(&ks, "d"), Some(vec![0x00, 0xf0]));
        assert_eq!(run(&mut ks, "BITOP OR d x y"), Reply::Int(0));
        assert_eq!(value(&ks, "d"), None);
        assert_eq!(
            run(&mut ks, "BITOP NOT d a b"),
            Reply::err("ERR BITOP NOT must be called with a single source key.")
        );
        assert_eq!(run(&mut ks, "BITOP NAND d a"), Error::Syntax.into());
        ks.set(b"h", Value::Set(Box::default()), 0);
        assert_eq!(run(&mut ks, "BITOP AND d missing h"), Error::WrongType.into());
    }

    #[test]
    fn bitfield_get_set_incrby_and_overflow() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, "BITFIELD k SET u8 4 255"), ints(&[0]));
        assert_eq!(value(&ks, "k"), Some(vec![0x0f, 0xf0]));
        assert_eq!(run(&mut ks, "BITFIELD k SET i16 0 -1000 GET i16 0 GET u16 0"), ints(&[4080, -1000, 64536]));
        assert_eq!(run(&mut ks, "BITFIELD k SET u8 #1 200 GET u8 #1 GET i16 #1"), ints(&[24, 200, 0]));
        assert_eq!(run(&mut ks, "BITFIELD n SET u8 0 250 INCRBY u8 0 10"), ints(&[0, 4]));
        assert_eq!(run(&mut ks, "BITFIELD n OVERFLOW SAT INCRBY u8 0 -300"), ints(&[0]));
        assert_eq!(run(&mut ks, "BITFIELD n OVERFLOW SAT SET i8 8 120 INCRBY i8 8 10"), ints(&[0, 127]));
        assert_eq!(run(&mut ks, "BITFIELD n OVERFLOW SAT INCRBY i8 8 -300"), ints(&[-128]));
        assert_eq!(run(&mut ks, "BITFIELD n SET i8 8 120 INCRBY i8 8 10"), ints(&[-128, -126]));
        assert_eq!(
            run(&mut ks, "BITFIELD n SET u8 0 250 OVERFLOW FAIL INCRBY u8 0 10 GET u8 0"),
            Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Int(250)])
        );
        assert_eq!(run(&mut ks, "BITFIELD w SET i64 0 -1 GET i64 0 GET u63 0"), ints(&[0, -1, i64::MAX]));
        assert_eq!(run(&mut ks, "BITFIELD w OVERFLOW SAT INCRBY i64 0 -9223372036854775808"), ints(&[i64::MIN]));
        assert_eq!(run(&mut ks, "BITFIELD w INCRBY i64 0 -1"), ints(&[i64::MAX]));
    }

    #[test]
    fn bitfield_is_a_write_only_with_set_or_incrby() {
        let is_write = |line: &str| p(line).unwrap().is_write();
        assert!(!is_write("BITFIELD k GET u8 0 OVERFLOW SAT"));
        assert!(!is_write("BITFIELD k"));
        assert!(is_write("BITFIELD k GET u8 0 SET u8 0 1"));
        assert!(is_write("BITFIELD k INCRBY u8 0 1"));
        assert!(!is_write("BITFIELD_RO k GET u8 0"));
    }

    #[test]
    fn bitfield_errors() {
        let mut ks = KeySpace::new();
        let ty = Reply::err(TYPE_ERR);
        for line in [
            "BITFIELD k GET u64 0",
            "BITFIELD k GET x8 0",
            "BITFIELD k GET u0 0",
            "BITFIELD k GET i65 0",
            "BITFIELD k SET 8 0 1",
        ] {
            assert_eq!(run(&mut ks, line), ty, "{line}");
        }
        for line in
            ["BITFIELD k GET u8 -1", "BITFIELD k GET u8 #x", "BITFIELD k GET u8 4294967296", "BITFIELD k GET u8 #"]
        {
            assert_eq!(run(&mut ks, line), Reply::err(OFFSET_ERR), "{line}");
        }
        assert_eq!(run(&mut ks, "BITFIELD k SET u8 0 x"), Error::NotInteger.into());
        assert_eq!(run(&mut ks, "BITFIELD k OVERFLOW FOO GET u8 0"), Reply::err("ERR Invalid OVERFLOW type specified"));
        assert_eq!(run(&mut ks, "BITFIELD k GET u8"), Error::Syntax.into());
        assert_eq!(
            run(&mut ks, "BITFIELD_RO k SET u8 0 1"),
            Reply::err("ERR BITFIELD_RO only supports the GET subcommand")
        );
        assert_eq!(run(&mut ks, "BITFIELD_RO k SET u99 0 1"), ty, "the subcommands are parsed first");
        assert_eq!(value(&ks, "k"), None);
        assert_eq!(run(&mut ks, "BITFIELD missing GET u8 0 GET i16 100"), ints(&[0, 0]));
        assert_eq!(value(&ks, "missing"), None);
    }

    #[test]
    fn bitmap_commands_on_another_type_are_wrongtype() {
        let mut ks = KeySpace::new();
        ks.set(b"h", Value::Set(Box::default()), 0);
        for line in [
            "SETBIT h 0 1",
            "GETBIT h 0",
            "BITCOUNT h",
            "BITPOS h 1",
            "BITFIELD h GET u8 0",
            "BITFIELD h SET u8 0 1",
            "BITFIELD_RO h GET u8 0",
            "BITOP NOT d h",
        ] {
            assert_eq!(run(&mut ks, line), Error::WrongType.into(), "{line}");
        }
    }
}
