//! Applying operations to the keyspace: the semantics of every keyspace command.
//!
//! Pure functions of (keyspace, operation, request time, request seed): no clock, no I/O, no
//! randomness of their own, so every replica applying the same log ends in the same state.

use bytes::Bytes;

use super::glob;
use super::keyspace::KeySpace;
use super::op::{ExpireCond, Expiry, GetExExpiry, LcsOptions, Op, SetCond, TtlQuery};
use crate::resp::{Reply, MAX_BULK_LEN};

/// What an operation may use besides the keyspace: the time and a random seed, both chosen by
/// the node that accepted the request and carried inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// Unix time in milliseconds.
    pub now: u64,
    /// Seed for RANDOMKEY.
    pub seed: u64,
}

pub(crate) const ERR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const ERR_OVERFLOW: &str = "ERR increment or decrement would overflow";
const ERR_TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
const ERR_NO_SUCH_KEY: &str = "ERR no such key";

/// Applies any operation (reads included, as inside EXEC).
pub fn apply(ks: &mut KeySpace, op: &Op, ctx: Ctx) -> Reply {
    let now = ctx.now;
    match op {
        Op::Set { key, value, cond, expiry, get } => set(ks, key, value, *cond, *expiry, *get, now),
        Op::SetNx { key, value } => match set(ks, key, value, SetCond::IfAbsent, Expiry::Clear, false, now) {
            Reply::Ok => Reply::Int(1),
            _ => Reply::Int(0),
        },
        Op::Upd { key, value } => set(ks, key, value, SetCond::IfPresent, Expiry::Clear, false, now),
        Op::GetDel(key) => match ks.live_slot(key, now) {
            Some(slot) => Reply::Bulk(ks.remove_slot(slot).value.into()),
            None => Reply::Nil,
        },
        Op::GetEx { key, expiry } => getex(ks, key, *expiry, now),
        Op::MSet(pairs) => {
            for (k, v) in pairs {
                ks.set(k, v.to_vec(), 0);
            }
            Reply::Ok
        }
        Op::MSetNx(pairs) => {
            if pairs.iter().any(|(k, _)| ks.get(k, now).is_some()) {
                return Reply::Int(0);
            }
            for (k, v) in pairs {
                ks.set(k, v.to_vec(), 0);
            }
            Reply::Int(1)
        }
        Op::IncrBy { key, by } => incr_by(ks, key, *by, now),
        Op::IncrByFloat { key, by } => incr_by_float(ks, key, by, now),
        Op::Append { key, value } => match ks.live_slot(key, now) {
            Some(slot) => {
                let len = ks.at(slot).map_or(0, |e| e.value.len());
                if (len + value.len()) as i64 > MAX_BULK_LEN {
                    return Reply::err(ERR_TOO_BIG);
                }
                Reply::Int(ks.update(slot, |e| {
                    e.value.extend_from_slice(value);
                    e.value.len()
                }) as i64)
            }
            None => {
                ks.set(key, value.to_vec(), 0);
                Reply::Int(value.len() as i64)
            }
        },
        Op::SetRange { key, offset, value } => setrange(ks, key, *offset, value, now),
        Op::Del(keys) => {
            let mut n = 0;
            for k in keys {
                if ks.live_slot(k, now).is_some() {
                    ks.remove(k);
                    n += 1;
                }
            }
            Reply::Int(n)
        }
        Op::Expire { key, at, cond } => expire(ks, key, *at, *cond, now),
        Op::Persist(key) => match ks.live_slot(key, now) {
            Some(slot) if ks.at(slot).is_some_and(|e| e.expire_at != 0) => {
                ks.set_expire(slot, 0);
                Reply::Int(1)
            }
            _ => Reply::Int(0),
        },
        Op::Rename { from, to, nx } => rename(ks, from, to, *nx, now),
        Op::Copy { from, to, replace } => {
            if from == to {
                return Reply::err("ERR source and destination objects are the same");
            }
            let Some(src) = ks.get(from, now).cloned() else {
                return Reply::Int(0);
            };
            if ks.live_slot(to, now).is_some() && !replace {
                return Reply::Int(0);
            }
            ks.remove(to);
            ks.set(to, src.value, src.expire_at);
            Reply::Int(1)
        }
        Op::FlushAll => {
            ks.clear();
            Reply::Ok
        }
        Op::DeleteExpired(keys) => {
            let mut n = 0;
            for k in keys {
                if ks.get_raw(k).is_some_and(|e| e.is_expired(now)) {
                    ks.remove(k);
                    n += 1;
                }
            }
            Reply::Int(n)
        }
        read => query(ks, read, ctx),
    }
}

/// Answers a read-only operation. Logically expired keys are hidden, never removed.
pub fn query(ks: &KeySpace, op: &Op, ctx: Ctx) -> Reply {
    let now = ctx.now;
    match op {
        Op::Get(key) | Op::GetEx { key, expiry: GetExExpiry::Unchanged } => get(ks, key, now),
        Op::MGet(keys) => Reply::Array(keys.iter().map(|k| get(ks, k, now)).collect()),
        Op::StrLen(key) => Reply::Int(ks.get(key, now).map_or(0, |e| e.value.len() as i64)),
        Op::GetRange { key, start, end } => {
            let value = ks.get(key, now).map_or(&[][..], |e| &e.value[..]);
            Reply::bulk(range(value, *start, *end))
        }
        Op::Lcs { a, b, opts } => {
            let a = ks.get(a, now).map_or(&[][..], |e| &e.value[..]);
            let b = ks.get(b, now).map_or(&[][..], |e| &e.value[..]);
            lcs(a, b, *opts)
        }
        Op::Exists(keys) | Op::Touch(keys) => {
            Reply::Int(keys.iter().filter(|k| ks.get(k, now).is_some()).count() as i64)
        }
        Op::Type(key) => Reply::status(if ks.get(key, now).is_some() { "string" } else { "none" }),
        Op::Ttl { key, query } => ttl(ks, key, *query, now),
        Op::Keys(pattern) => {
            let all = &pattern[..] == b"*";
            Reply::Array(
                ks.entries()
                    .filter(|e| !e.is_expired(now) && (all || glob::matches(pattern, &e.key)))
                    .map(|e| Reply::bulk(&e.key))
                    .collect(),
            )
        }
        Op::Scan { cursor, pattern, count, type_name } => {
            scan(ks, *cursor, pattern.as_deref(), *count, type_name.as_deref(), now)
        }
        Op::RandomKey => random_key(ks, ctx),
        Op::DbSize => Reply::Int(ks.live_len(now) as i64),
        Op::Digest => Reply::Status(super::digest::digest(ks)),
        write => unreachable!("query of a write operation {write:?}"),
    }
}

fn get(ks: &KeySpace, key: &[u8], now: u64) -> Reply {
    match ks.get(key, now) {
        Some(e) => Reply::bulk(&e.value),
        None => Reply::Nil,
    }
}

fn set(ks: &mut KeySpace, key: &Bytes, value: &Bytes, cond: SetCond, expiry: Expiry, get: bool, now: u64) -> Reply {
    let slot = ks.live_slot(key, now);
    let old = if get {
        match slot.and_then(|s| ks.at(s)) {
            Some(e) => Reply::bulk(&e.value),
            None => Reply::Nil,
        }
    } else {
        Reply::Ok
    };
    let blocked = match cond {
        SetCond::Always => false,
        SetCond::IfAbsent => slot.is_some(),
        SetCond::IfPresent => slot.is_none(),
    };
    if blocked {
        return if get { old } else { Reply::Nil };
    }
    let expire_at = match expiry {
        Expiry::Clear => 0,
        Expiry::Keep => slot.and_then(|s| ks.at(s)).map_or(0, |e| e.expire_at),
        Expiry::At(at) => at,
    };
    ks.set(key, value.to_vec(), expire_at);
    old
}

fn getex(ks: &mut KeySpace, key: &Bytes, expiry: GetExExpiry, now: u64) -> Reply {
    let Some(slot) = ks.live_slot(key, now) else {
        return Reply::Nil;
    };
    let value = Reply::bulk(&ks.at(slot).expect("live slot").value);
    match expiry {
        GetExExpiry::Unchanged => {}
        GetExExpiry::Invalid => return Reply::err("ERR invalid expire time in 'getex' command"),
        GetExExpiry::NotInteger => return Reply::err(ERR_NOT_INTEGER),
        GetExExpiry::At(at) if at <= now => {
            ks.remove_slot(slot);
        }
        GetExExpiry::At(at) | GetExExpiry::In(at) => ks.set_expire(slot, at),
        GetExExpiry::Persist => {
            if ks.at(slot).is_some_and(|e| e.expire_at != 0) {
                ks.set_expire(slot, 0);
            }
        }
    }
    value
}

fn incr_by(ks: &mut KeySpace, key: &Bytes, by: i64, now: u64) -> Reply {
    let slot = ks.live_slot(key, now);
    let current = match slot.and_then(|s| ks.at(s)) {
        Some(e) => match crate::resp::parse_i64(&e.value) {
            Some(v) => v,
            None => return Reply::err(ERR_NOT_INTEGER),
        },
        None => 0,
    };
    let Some(next) = current.checked_add(by) else {
        return Reply::err(ERR_OVERFLOW);
    };
    let text = next.to_string().into_bytes();
    match slot {
        Some(slot) => ks.update(slot, |e| e.value = text),
        None => {
            ks.set(key, text, 0);
        }
    }
    Reply::Int(next)
}

extern "C" {
    fn raftis_incrbyfloat(
        cur: *const u8,
        curlen: usize,
        incr: *const u8,
        incrlen: usize,
        out: *mut u8,
        outlen: usize,
    ) -> i32;
    fn raftis_is_long_double(s: *const u8, slen: usize) -> i32;
}

/// Whether `s` is a float as Redis's `string2ld` accepts it.
pub fn is_long_double(s: &[u8]) -> bool {
    // SAFETY: the pointer and length describe a live slice; the C side only reads it.
    unsafe { raftis_is_long_double(s.as_ptr(), s.len()) == 1 }
}

fn incr_by_float(ks: &mut KeySpace, key: &Bytes, by: &Bytes, now: u64) -> Reply {
    let slot = ks.live_slot(key, now);
    let mut out = vec![0u8; 5 * 1024 + 32];
    let n = {
        let current = slot.and_then(|s| ks.at(s)).map(|e| &e.value[..]);
        let (ptr, len) = current.map_or((std::ptr::null(), 0), |c| (c.as_ptr(), c.len()));
        // SAFETY: every pointer/length pair describes a live slice (or is null for a missing
        // value); `out` is writable for its whole length, which is passed along.
        unsafe { raftis_incrbyfloat(ptr, len, by.as_ptr(), by.len(), out.as_mut_ptr(), out.len()) }
    };
    match n {
        -1 | -2 => Reply::err("ERR value is not a valid float"),
        n if n < 0 => Reply::err("ERR increment would produce NaN or Infinity"),
        n => {
            out.truncate(n as usize);
            let reply = Reply::bulk(&out);
            match slot {
                Some(slot) => ks.update(slot, |e| e.value = out),
                None => {
                    ks.set(key, out, 0);
                }
            }
            reply
        }
    }
}

fn setrange(ks: &mut KeySpace, key: &Bytes, offset: u64, value: &Bytes, now: u64) -> Reply {
    let slot = ks.live_slot(key, now);
    let old_len = slot.and_then(|s| ks.at(s)).map_or(0, |e| e.value.len());
    if value.is_empty() {
        return Reply::Int(old_len as i64);
    }
    if offset.saturating_add(value.len() as u64) > MAX_BULK_LEN as u64 {
        return Reply::err(ERR_TOO_BIG);
    }
    let offset = offset as usize;
    let write = |v: &mut Vec<u8>| {
        if v.len() < offset + value.len() {
            v.resize(offset + value.len(), 0);
        }
        v[offset..offset + value.len()].copy_from_slice(value);
        v.len()
    };
    let len = match slot {
        Some(slot) => ks.update(slot, |e| write(&mut e.value)),
        None => {
            let mut v = Vec::new();
            let len = write(&mut v);
            ks.set(key, v, 0);
            len
        }
    };
    Reply::Int(len as i64)
}

fn expire(ks: &mut KeySpace, key: &Bytes, at: i64, cond: ExpireCond, now: u64) -> Reply {
    let Some(slot) = ks.live_slot(key, now) else {
        return Reply::Int(0);
    };
    let current = ks.at(slot).map_or(0, |e| e.expire_at);
    let current = if current == 0 { -1 } else { current as i64 };
    let refused = (cond.nx && current != -1)
        || (cond.xx && current == -1)
        || (cond.gt && (at <= current || current == -1))
        || (cond.lt && current != -1 && at >= current);
    if refused {
        return Reply::Int(0);
    }
    if at <= now as i64 {
        ks.remove_slot(slot);
    } else {
        ks.set_expire(slot, at as u64);
    }
    Reply::Int(1)
}

fn rename(ks: &mut KeySpace, from: &Bytes, to: &Bytes, nx: bool, now: u64) -> Reply {
    let Some(slot) = ks.live_slot(from, now) else {
        return Reply::err(ERR_NO_SUCH_KEY);
    };
    if from == to {
        return if nx { Reply::Int(0) } else { Reply::Ok };
    }
    if ks.live_slot(to, now).is_some() {
        if nx {
            return Reply::Int(0);
        }
        ks.remove(to);
    }
    let entry = ks.remove_slot(slot);
    ks.set(to, entry.value, entry.expire_at);
    if nx {
        Reply::Int(1)
    } else {
        Reply::Ok
    }
}

fn ttl(ks: &KeySpace, key: &[u8], q: TtlQuery, now: u64) -> Reply {
    let Some(e) = ks.get(key, now) else {
        return Reply::Int(-2);
    };
    if e.expire_at == 0 {
        return Reply::Int(-1);
    }
    let ms = if q.absolute { e.expire_at as i64 } else { (e.expire_at as i64 - now as i64).max(0) };
    Reply::Int(if q.millis { ms } else { (ms + 500) / 1000 })
}

/// GETRANGE's index arithmetic, as Redis does it.
fn range(value: &[u8], mut start: i64, mut end: i64) -> &[u8] {
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return &[];
    }
    &value[start as usize..=end as usize]
}

fn scan(ks: &KeySpace, cursor: u64, pattern: Option<&[u8]>, count: u64, type_name: Option<&[u8]>, now: u64) -> Reply {
    let start = usize::try_from(cursor).unwrap_or(usize::MAX);
    let mut keys = Vec::new();
    let mut next = 0u64;
    for (visited, (slot, e)) in ks.iter_from(start).enumerate() {
        if visited as u64 == count {
            next = slot as u64;
            break;
        }
        let wanted = !e.is_expired(now)
            && pattern.is_none_or(|p| p == b"*" || glob::matches(p, &e.key))
            && type_name.is_none_or(|t| t.eq_ignore_ascii_case(b"string"));
        if wanted {
            keys.push(Reply::bulk(&e.key));
        }
    }
    Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(keys)])
}

fn random_key(ks: &KeySpace, ctx: Ctx) -> Reply {
    if ks.live_len(ctx.now) == 0 {
        return Reply::Nil;
    }
    let slots = ks.slot_count();
    let mut x = ctx.seed;
    for _ in 0..64 {
        x = splitmix(x);
        if let Some(e) = ks.at((x % slots as u64) as u32).filter(|e| !e.is_expired(ctx.now)) {
            return Reply::bulk(&e.key);
        }
    }
    // Sparse slab: walk from a random point instead.
    let start = (splitmix(x) % slots as u64) as usize;
    ks.iter_from(start)
        .chain(ks.iter_from(0))
        .find(|(_, e)| !e.is_expired(ctx.now))
        .map_or(Reply::Nil, |(_, e)| Reply::bulk(&e.key))
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// LCS, ported from Redis's `lcsCommand` so that ranges come out in the same order.
fn lcs(a: &[u8], b: &[u8], opts: LcsOptions) -> Reply {
    if opts.idx && opts.len {
        return Reply::err("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u128 + 1) * (blen as u128 + 1);
    if cells * 4 > MAX_BULK_LEN as u128 {
        return Reply::err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let w = blen + 1;
    let mut dp = vec![0u32; cells as usize];
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[alen * w + blen];
    if opts.len && !opts.idx {
        return Reply::Int(total as i64);
    }
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut matches = Vec::new();
    let (mut i, mut j) = (alen, blen);
    // `alen` as a start signals "no range in progress", as in Redis.
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        let match_len = (a_end as i64 - a_start as i64 + 1) as u32;
        if emit {
            if (opts.min_match_len == 0 || match_len as i64 >= opts.min_match_len) && opts.idx {
                let mut m = vec![
                    Reply::Array(vec![Reply::Int(a_start as i64), Reply::Int(a_end as i64)]),
                    Reply::Array(vec![Reply::Int(b_start as i64), Reply::Int(b_end as i64)]),
                ];
                if opts.with_match_len {
                    m.push(Reply::Int(match_len as i64));
                }
                matches.push(Reply::Array(m));
            }
            a_start = alen;
        }
    }
    if opts.idx {
        Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(matches)),
            (Reply::bulk("len"), Reply::Int(total as i64)),
        ])
    } else {
        Reply::Bulk(result.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ks: &mut KeySpace, op: Op) -> Reply {
        apply(ks, &op, Ctx { now: 1000, seed: 1 })
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn incr_and_overflow() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, Op::IncrBy { key: b("n"), by: 5 }), Reply::Int(5));
        assert_eq!(run(&mut ks, Op::IncrBy { key: b("n"), by: i64::MAX }), Reply::err(ERR_OVERFLOW));
        assert_eq!(run(&mut ks, Op::Get(b("n"))), Reply::bulk("5"));
    }

    #[test]
    fn incr_by_float_uses_long_double() {
        let mut ks = KeySpace::new();
        let set = Op::Set { key: b("f"), value: b("1.1"), cond: SetCond::Always, expiry: Expiry::Clear, get: false };
        run(&mut ks, set);
        assert_eq!(run(&mut ks, Op::IncrByFloat { key: b("f"), by: b("2.2") }), Reply::bulk("3.3"));
        assert_eq!(
            run(&mut ks, Op::IncrByFloat { key: b("f"), by: b("5.0e3") }),
            Reply::bulk("5003.29999999999999982"),
            "as Redis prints it"
        );
        assert!(run(&mut ks, Op::IncrByFloat { key: b("f"), by: b("x") }).is_error());
    }

    #[test]
    fn lcs_like_redis() {
        let opts = LcsOptions { idx: true, with_match_len: true, ..Default::default() };
        let r = lcs(b"ohmytext", b"mynewtext", opts);
        let expect = Reply::Map(vec![
            (
                Reply::bulk("matches"),
                Reply::Array(vec![
                    Reply::Array(vec![
                        Reply::Array(vec![Reply::Int(4), Reply::Int(7)]),
                        Reply::Array(vec![Reply::Int(5), Reply::Int(8)]),
                        Reply::Int(4),
                    ]),
                    Reply::Array(vec![
                        Reply::Array(vec![Reply::Int(2), Reply::Int(3)]),
                        Reply::Array(vec![Reply::Int(0), Reply::Int(1)]),
                        Reply::Int(2),
                    ]),
                ]),
            ),
            (Reply::bulk("len"), Reply::Int(6)),
        ]);
        assert_eq!(r, expect);
        assert_eq!(lcs(b"ohmytext", b"mynewtext", LcsOptions::default()), Reply::bulk("mytext"));
    }

    #[test]
    fn expired_keys_are_hidden_then_deleted_by_request() {
        let mut ks = KeySpace::new();
        let set = Op::Set { key: b("k"), value: b("v"), cond: SetCond::Always, expiry: Expiry::At(1500), get: false };
        run(&mut ks, set);
        let late = Ctx { now: 2000, seed: 0 };
        assert_eq!(query(&ks, &Op::Get(b("k")), late), Reply::Nil);
        assert_eq!(ks.len(), 1, "a read never deletes");
        assert_eq!(apply(&mut ks, &Op::DeleteExpired(vec![b("k")]), late), Reply::Int(1));
        assert_eq!(ks.len(), 0);
    }

    #[test]
    fn getex_reports_a_bad_time_only_for_an_existing_key() {
        let mut ks = KeySpace::new();
        for expiry in [GetExExpiry::NotInteger, GetExExpiry::Invalid] {
            assert_eq!(run(&mut ks, Op::GetEx { key: b("k"), expiry }), Reply::Nil);
        }
        let set = Op::Set { key: b("k"), value: b("v"), cond: SetCond::Always, expiry: Expiry::At(5000), get: false };
        run(&mut ks, set);
        assert_eq!(
            run(&mut ks, Op::GetEx { key: b("k"), expiry: GetExExpiry::NotInteger }),
            Reply::err(ERR_NOT_INTEGER)
        );
        assert_eq!(
            run(&mut ks, Op::GetEx { key: b("k"), expiry: GetExExpiry::Invalid }),
            Reply::err("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(ks.get(b"k", 1000).map(|e| e.expire_at), Some(5000), "the key is left alone");
    }

    #[test]
    fn getrange_edges() {
        assert_eq!(range(b"Hello World", 0, 3), b"Hell");
        assert_eq!(range(b"Hello World", -3, -1), b"rld");
        assert_eq!(range(b"Hello World", 5, 3), b"");
        assert_eq!(range(b"Hello World", 0, -100), b"H");
        assert_eq!(range(b"", 0, -1), b"");
    }
}
