//! SORT and SORT_RO: the elements of a list, set or sorted set, sorted numerically or
//! lexicographically (ALPHA), by themselves or by the values of other keys (`BY pattern`), cut
//! with LIMIT, replaced by other keys' values (`GET pattern`), and replied or stored as a list
//! (STORE), with Redis 7.0's replies and errors.
//!
//! Patterns follow Redis's `lookupKeyByPattern`: the first `*` is replaced by the element, a
//! `->field` after it reads that field of a hash, and `#` is the element itself. A BY pattern
//! without `*` sorts nothing: lists and sorted sets keep their order (reversed by DESC), a set
//! its iteration order, except with STORE, where the set is sorted ALPHA to be the same on every
//! replica (as Redis does for replication and scripts). raftis is one shard holding every slot,
//! so BY and GET patterns are allowed as on a standalone redis-server (Redis Cluster refuses
//! them).
//!
//! Where Redis's order is its C library's: numbers are read with `strtod` (a range error, as
//! `1e400` or `1e-310`, fails the command); ALPHA without STORE compares with `strcoll`, which in
//! the C and C.UTF-8 locales is `strcmp` (the bytes up to the first NUL); elements that compare
//! equal keep their input order (glibc's `qsort` is a merge sort). Two differences remain,
//! both about elements that compare equal: Redis sorts BY with a reducing LIMIT with a partial
//! quicksort, which may order them otherwise, and its sorted sets and non-integer sets are fed in
//! its hash table's (randomly seeded) order, while raftis feeds a sorted set in score order and a
//! set in its iteration order. Redis also converts a sorted set it sorts to a skiplist, even in
//! SORT_RO; raftis leaves the encoding alone (a read cannot change the keyspace).

use std::cmp::Ordering;
use std::collections::VecDeque;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::args::{c_str, eq, int, strtod_erange};
use super::notify::{notify, GENERIC, LIST};
use super::{Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::Reply;
use crate::sm::{KeySpace, List, Value};

const SORT_FLAGS: &[&str] = &["write", "denyoom", "movablekeys"];
const SORT_RO_FLAGS: &[&str] = &["readonly", "movablekeys"];
const SORT_ACL: &[&str] = &["@write", "@set", "@sortedset", "@list", "@slow", "@dangerous"];
const SORT_RO_ACL: &[&str] = &["@read", "@set", "@sortedset", "@list", "@slow", "@dangerous"];

/// The sort commands, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[DataCommand] = &[
    data!("sort", -2, SORT_FLAGS, 1, 1, 1, SORT_ACL, "generic", "1.0.0", parse::sort, "Sort the elements in a list, set or sorted set"),
    data!("sort_ro", -2, SORT_RO_FLAGS, 1, 1, 1, SORT_RO_ACL, "generic", "7.0.0", parse::sort_ro, "Sort the elements in a list, set or sorted set. Read-only variant of SORT."),
];

/// The error of an element (or BY value) that is not a number when sorting numerically.
const NOT_A_DOUBLE: &str = "ERR One or more scores can't be converted into double";

/// A SORT's options, as parsed (later options replace earlier ones, GETs accumulate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    pub key: Bytes,
    /// The last BY pattern.
    pub by: Option<Bytes>,
    /// Whether some BY pattern had no `*`: then nothing is sorted, even if a later BY has one
    /// (Redis never clears its flag).
    pub dontsort: bool,
    /// LIMIT's offset and count as given (no LIMIT: 0 and -1, all).
    pub offset: i64,
    pub count: i64,
    /// The GET patterns, in order.
    pub gets: Vec<Bytes>,
    pub desc: bool,
    pub alpha: bool,
    /// STORE's destination (SORT only).
    pub store: Option<Bytes>,
}

/// One sort operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOp {
    /// SORT or SORT_RO; a write when it stores.
    Sort(Box<Sort>),
}

impl SortOp {
    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        match self {
            SortOp::Sort(s) => s.store.is_some(),
        }
    }
}

/// The argument parsers, one per command, named after it.
mod parse {
    use super::*;

    pub fn sort(args: &[Bytes], _: u64) -> Result<Op> {
        options(args, false)
    }

    pub fn sort_ro(args: &[Bytes], _: u64) -> Result<Op> {
        options(args, true)
    }

    /// The options after the key, read left to right as Redis does: the first bad one answers
    /// (a LIMIT that is not two integers, or anything unknown or missing its argument, STORE in
    /// SORT_RO included), before the key is looked up.
    fn options(args: &[Bytes], readonly: bool) -> Result<Op> {
        let mut s = Sort {
            key: args[1].clone(),
            by: None,
            dontsort: false,
            offset: 0,
            count: -1,
            gets: Vec::new(),
            desc: false,
            alpha: false,
            store: None,
        };
        let mut j = 2;
        while j < args.len() {
            let left = args.len() - j - 1;
            let arg = &args[j];
            if eq(arg, "asc") {
                s.desc = false;
            } else if eq(arg, "desc") {
                s.desc = true;
            } else if eq(arg, "alpha") {
                s.alpha = true;
            } else if eq(arg, "limit") && left >= 2 {
                s.offset = int(&args[j + 1])?;
                s.count = int(&args[j + 2])?;
                j += 2;
            } else if !readonly && eq(arg, "store") && left >= 1 {
                s.store = Some(args[j + 1].clone());
                j += 1;
            } else if eq(arg, "by") && left >= 1 {
                let pattern = &args[j + 1];
                if !c_str(pattern).contains(&b'*') {
                    s.dontsort = true;
                }
                s.by = Some(pattern.clone());
                j += 1;
            } else if eq(arg, "get") && left >= 1 {
                s.gets.push(args[j + 1].clone());
                j += 1;
            } else {
                return Err(Error::Syntax);
            }
            j += 1;
        }
        Ok(Op::Sort(SortOp::Sort(Box::new(s))))
    }
}

/// The value `pattern` names for `elem`, as Redis's `lookupKeyByPattern` finds it: `#` is the
/// element; otherwise the first `*` is replaced by the element and the key read, as a string, or,
/// when a non-empty `->field` follows the `*`, as a hash's field. `None` when the pattern has no
/// `*`, the key is missing or of another type, or the field is missing. Redis reads the pattern
/// as a C string to find `#`, `*` and `->`, and the bytes after a NUL still end the key or field.
fn lookup<'a>(ks: &'a KeySpace, pattern: &[u8], elem: &'a [u8], now: u64) -> Option<&'a [u8]> {
    let text = c_str(pattern);
    if text == b"#" {
        return Some(elem);
    }
    let star = text.iter().position(|&b| b == b'*')?;
    let arrow =
        text[star + 1..].windows(2).position(|w| w == b"->").map(|i| star + 1 + i).filter(|&f| f + 2 < text.len());
    let (postfix_end, field) = match arrow {
        Some(f) => (f, Some(&pattern[f + 2..])),
        None => (pattern.len(), None),
    };
    let mut key = Vec::with_capacity(pattern.len() + elem.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pattern[star + 1..postfix_end]);
    match (&ks.get(&key, now)?.value, field) {
        (Value::Str(s), None) => Some(s),
        (Value::Hash(h), Some(field)) => h.get(field),
        _ => None,
    }
}

/// A number as SORT reads it (`strtod` of the C string, which must be read whole): leading
/// spaces, hexadecimal and `inf` are accepted, an empty string is 0; NaN and range errors are
/// not.
fn score(value: &[u8]) -> Option<f64> {
    let (v, read, erange) = strtod_erange(value);
    (read == c_str(value).len() && !erange && !v.is_nan()).then_some(v)
}

/// An element being sorted and what it is sorted by.
struct Item<'a> {
    elem: &'a [u8],
    score: f64,
    /// The BY value when sorting ALPHA by a pattern (`None`: missing, first).
    by: Option<&'a [u8]>,
}

/// Runs the sort: the entries to reply or store, in order (`None`: a GET that found nothing).
fn run<'a>(ks: &'a KeySpace, s: &'a Sort, now: u64) -> Result<Vec<Option<&'a [u8]>>> {
    let value = ks.get(&s.key, now).map(|e| &e.value);
    let len = match value {
        None => 0,
        Some(Value::List(l)) => l.len(),
        Some(Value::Set(set)) => set.len(),
        Some(Value::ZSet(z)) => z.len(),
        Some(_) => return Err(Error::WrongType),
    } as i64;
    let (mut dontsort, mut alpha, mut by) = (s.dontsort, s.alpha, s.by.as_deref());
    if dontsort && matches!(value, Some(Value::Set(_))) && s.store.is_some() {
        // A set's order is its own: sort it so that the stored list is the same everywhere.
        (dontsort, alpha, by) = (false, true, None);
    }
    // Redis's LIMIT arithmetic, bounded by the length so that nothing overflows.
    let mut start = s.offset.clamp(0, len);
    let count = s.count.clamp(-1, len);
    let mut end = if count < 0 { len - 1 } else { start + count - 1 };
    if start >= len {
        (start, end) = (len - 1, len - 2);
    }
    end = end.min(len - 1);
    // A list or sorted set left unsorted is read in its order (reversed by DESC), and only the
    // range LIMIT keeps.
    let range = |n: usize| {
        let (from, take) = (start.max(0) as usize, (end - start + 1).max(0) as usize);
        let from = from.min(n);
        (from, take.min(n - from))
    };
    let mut vector: Vec<&[u8]> = match value {
        Some(Value::List(l)) if dontsort => {
            let (from, take) = range(l.len());
            let n = l.len();
            let items: Vec<&[u8]> = if s.desc {
                l.0.range(n - from - take..n - from).rev().map(|e| &e[..]).collect()
            } else {
                l.0.range(from..from + take).map(|e| &e[..]).collect()
            };
            (end, start) = (end - start, 0);
            items
        }
        Some(Value::ZSet(z)) if dontsort => {
            let (from, take) = range(z.len());
            let members = z.by_score.iter().map(|(_, m)| &m[..]);
            let items: Vec<&[u8]> = if s.desc {
                members.rev().skip(from).take(take).collect()
            } else {
                members.skip(from).take(take).collect()
            };
            (end, start) = (end - start, 0);
            items
        }
        Some(Value::List(l)) => l.0.iter().map(|e| &e[..]).collect(),
        Some(Value::Set(set)) => super::sets::ordered(set),
        Some(Value::ZSet(z)) => z.by_score.iter().map(|(_, m)| &m[..]).collect(),
        _ => Vec::new(),
    };
    if !dontsort {
        let mut items = Vec::with_capacity(vector.len());
        let mut not_a_number = false;
        for &elem in &vector {
            let mut item = Item { elem, score: 0.0, by: None };
            let byval = match by {
                Some(pattern) => lookup(ks, pattern, elem, now),
                None => Some(elem),
            };
            if let Some(byval) = byval {
                if !alpha {
                    match score(byval) {
                        Some(v) => item.score = v,
                        None => not_a_number = true,
                    }
                } else if by.is_some() {
                    item.by = Some(byval);
                }
            }
            items.push(item);
        }
        if not_a_number {
            return Err(Error::msg(NOT_A_DOUBLE));
        }
        let store = s.store.is_some();
        // Redis compares with `strcoll` when replying (C strings) and byte strings when storing.
        let text = |a: &[u8], b: &[u8]| if store { a.cmp(b) } else { c_str(a).cmp(c_str(b)) };
        let compare = |a: &Item, b: &Item| {
            let order = if !alpha {
                if a.score > b.score {
                    Ordering::Greater
                } else if a.score < b.score {
                    Ordering::Less
                } else {
                    a.elem.cmp(b.elem)
                }
            } else if by.is_some() {
                match (a.by, b.by) {
                    (Some(x), Some(y)) => text(x, y),
                    (x, y) => x.is_some().cmp(&y.is_some()),
                }
            } else {
                text(a.elem, b.elem)
            };
            if s.desc {
                order.reverse()
            } else {
                order
            }
        };
        items.sort_by(compare);
        vector = items.into_iter().map(|i| i.elem).collect();
    }
    let mut out = Vec::new();
    if end >= start {
        for &elem in &vector[start as usize..=end as usize] {
            if s.gets.is_empty() {
                out.push(Some(elem));
            }
            out.extend(s.gets.iter().map(|g| lookup(ks, g, elem, now)));
        }
    }
    Ok(out)
}

/// Applies a sort operation (reads included, as inside EXEC).
pub fn apply(ks: &mut KeySpace, op: &SortOp, ctx: Ctx) -> Result {
    let SortOp::Sort(s) = op;
    let Some(dst) = &s.store else {
        return query(ks, op, ctx);
    };
    let list: VecDeque<crate::sm::ShortBytes> =
        run(ks, s, ctx.now)?.into_iter().map(|e| crate::sm::ShortBytes::from(e.unwrap_or_default())).collect();
    let len = list.len() as i64;
    if list.is_empty() {
        if ks.live_slot(dst, ctx.now).is_some() {
            ks.remove(dst);
            notify(ks, GENERIC, "del", dst);
        }
    } else {
        ks.set(dst, Value::List(List(Box::new(list))), 0);
        notify(ks, LIST, "sortstore", dst);
    }
    Ok(Reply::Int(len))
}

/// Answers a sort that does not store.
pub fn query(ks: &KeySpace, op: &SortOp, ctx: Ctx) -> Result {
    let SortOp::Sort(s) = op;
    assert!(s.store.is_none(), "query of a SORT ... STORE");
    let out = run(ks, s, ctx.now)?;
    Ok(Reply::Array(out.into_iter().map(|e| e.map_or(Reply::Nil, Reply::bulk)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    /// Runs a command line (`\0` stands for a NUL byte, `''` for an empty argument).
    fn run(ks: &mut KeySpace, line: &str) -> Reply {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|s| Bytes::from(if s == "''" { String::new() } else { s.replace("\\0", "\0") }))
            .collect();
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        let command = super::super::data_commands().find(|c| c.meta.name == name).expect("a data command");
        assert!(command.meta.arity_ok(args.len()), "arity of {line}");
        match (command.parse)(&args, NOW) {
            Ok(op) => op.apply(ks, Ctx { now: NOW, seed: 0 }),
            Err(e) => e.into(),
        }
    }

    /// Stores a list directly (the list commands live elsewhere).
    fn list(ks: &mut KeySpace, key: &str, items: &[&str]) {
        let items = items.iter().map(|s| crate::sm::ShortBytes::from(s.replace("\\0", "\0").as_bytes())).collect();
        ks.set(key.as_bytes(), Value::List(List(Box::new(items))), 0);
    }

    /// The elements of an array reply (`nil` for a nil, `\0` for a NUL byte).
    fn items(reply: Reply) -> Vec<String> {
        let Reply::Array(items) = reply else { panic!("not an array: {reply:?}") };
        items
            .into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).replace('\0', "\\0"),
                Reply::Nil => "nil".to_string(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn store_publishes_sortstore_or_del() {
        let mut ks = KeySpace::new();
        ks.notify_flags = crate::cmd::notify::parse_flags(b"KEA").unwrap();
        list(&mut ks, "l", &["3", "1", "2"]);
        ks.outbox.clear();
        let events = |ks: &mut KeySpace| -> Vec<(Bytes, Bytes)> {
            std::mem::take(&mut ks.outbox).into_iter().map(|m| (m.channel, m.payload)).collect()
        };
        assert_eq!(run(&mut ks, "SORT l STORE d"), Reply::Int(3));
        assert_eq!(
            events(&mut ks),
            vec![
                (Bytes::from("__keyspace@0__:d"), Bytes::from("sortstore")),
                (Bytes::from("__keyevent@0__:sortstore"), Bytes::from("d")),
            ]
        );
        assert_eq!(run(&mut ks, "SORT nosuch STORE d"), Reply::Int(0));
        assert_eq!(
            events(&mut ks),
            vec![
                (Bytes::from("__keyspace@0__:d"), Bytes::from("del")),
                (Bytes::from("__keyevent@0__:del"), Bytes::from("d")),
            ]
        );
        run(&mut ks, "SORT nosuch STORE d");
        assert!(events(&mut ks).is_empty(), "nothing stored, nothing deleted");
    }

    /// The stored list at `key`.
    fn stored(ks: &KeySpace, key: &str) -> Vec<String> {
        match &ks.get(key.as_bytes(), NOW).expect("stored").value {
            Value::List(l) => l.0.iter().map(|e| String::from_utf8_lossy(e).replace('\0', "\\0")).collect(),
            other => panic!("not a list: {other:?}"),
        }
    }

    #[test]
    fn table_and_write_operations() {
        assert!(COMMANDS.windows(2).all(|w| w[0].meta.name < w[1].meta.name));
        let op = |line: &str| {
            let args: Vec<Bytes> = line.split(' ').map(|s| Bytes::from(s.to_string())).collect();
            let command = COMMANDS.iter().find(|c| c.meta.name == line.split(' ').next().unwrap()).unwrap();
            (command.parse)(&args, NOW).unwrap()
        };
        assert!(op("sort k STORE d").is_write());
        assert!(!op("sort k BY w_* GET #").is_write());
        assert!(!op("sort_ro k LIMIT 0 1").is_write());
        assert!(COMMANDS[0].meta.is_write() && !COMMANDS[1].meta.is_write());
    }

    #[test]
    fn a_list_unsorted_keeps_its_order_reversed_by_desc_and_cut_by_limit() {
        let mut ks = KeySpace::new();
        list(&mut ks, "l", &["c", "a", "d", "b", "e"]);
        assert_eq!(items(run(&mut ks, "sort l BY nosort")), ["c", "a", "d", "b", "e"]);
        assert_eq!(items(run(&mut ks, "sort l BY nosort DESC")), ["e", "b", "d", "a", "c"]);
        assert_eq!(items(run(&mut ks, "sort l BY nosort LIMIT 1 2")), ["a", "d"]);
        assert_eq!(items(run(&mut ks, "sort l BY nosort DESC LIMIT 1 2")), ["b", "d"]);
        assert_eq!(items(run(&mut ks, "sort l BY nosort LIMIT 4 10")), ["e"]);
        assert!(items(run(&mut ks, "sort l BY nosort LIMIT 5 10")).is_empty());
        assert!(items(run(&mut ks, "sort l BY nosort DESC LIMIT 2 0")).is_empty());
        assert_eq!(items(run(&mut ks, "sort l BY nosort DESC LIMIT -3 2")), ["e", "b"]);
        assert_eq!(items(run(&mut ks, "sort l BY nosort LIMIT 3 -1 GET # GET w_*")), ["b", "nil", "e", "nil"]);
        // A list unsorted by BY is stored as it is (only a set is sorted ALPHA for STORE).
        assert_eq!(run(&mut ks, "sort l BY nosort STORE d"), Reply::Int(5));
        assert_eq!(stored(&ks, "d"), ["c", "a", "d", "b", "e"]);
    }

    #[test]
    fn alpha_compares_c_strings_when_replying_and_bytes_when_storing() {
        let mut ks = KeySpace::new();
        list(&mut ks, "l", &["a\\0c", "a\\0b", "a", "b", "a\\0a"]);
        assert_eq!(items(run(&mut ks, "sort l ALPHA")), ["a\\0c", "a\\0b", "a", "a\\0a", "b"]);
        assert_eq!(items(run(&mut ks, "sort l ALPHA DESC")), ["b", "a\\0c", "a\\0b", "a", "a\\0a"]);
        assert_eq!(run(&mut ks, "sort l ALPHA STORE d"), Reply::Int(5));
        assert_eq!(stored(&ks, "d"), ["a", "a\\0a", "a\\0b", "a\\0c", "b"]);
        // BY values: missing ones first, equal ones in input order (also under DESC).
        list(&mut ks, "n", &["1", "2", "3", "4", "5", "6"]);
        run(&mut ks, "mset w_1 b w_2 x\\0b w_3 b w_5 x\\0a");
        assert_eq!(items(run(&mut ks, "sort n BY w_* ALPHA")), ["4", "6", "1", "3", "2", "5"]);
        assert_eq!(items(run(&mut ks, "sort n BY w_* ALPHA DESC")), ["2", "5", "1", "3", "4", "6"]);
        run(&mut ks, "sort n BY w_* ALPHA STORE d");
        assert_eq!(stored(&ks, "d"), ["4", "6", "1", "3", "5", "2"]);
    }

    #[test]
    fn numbers_are_read_with_strtod() {
        let mut ks = KeySpace::new();
        list(&mut ks, "l", &["1\\0x", " 2", "", "0x10", "-0", ".5", "0.5", "5.", "+5", "inf", "-infinity", "\t3"]);
        assert_eq!(
            items(run(&mut ks, "sort l")),
            ["-infinity", "", "-0", ".5", "0.5", "1\\0x", " 2", "\t3", "+5", "5.", "0x10", "inf"]
        );
        let not_a_double = Reply::err(NOT_A_DOUBLE);
        for bad in ["nan", "1e400", "1e-310", "4.9406564584124654e-324", "3 ", "x"] {
            list(&mut ks, "b", &["1", bad]);
            assert_eq!(run(&mut ks, "sort b"), not_a_double, "{bad}");
            assert_eq!(run(&mut ks, "sort b STORE d"), not_a_double, "{bad}");
        }
        list(&mut ks, "b", &["0x1p-1074", "1e308"]);
        assert_eq!(items(run(&mut ks, "sort b")), ["0x1p-1074", "1e308"]);
        assert!(ks.get(b"d", NOW).is_none(), "an error stores nothing");
    }

    #[test]
    fn patterns() {
        let mut ks = KeySpace::new();
        run(&mut ks, "mset a1b* first w_1-> arrow h->f_1 before k_1 v");
        run(&mut ks, "hset h_1 f-x dash f hashed");
        fn get<'a>(ks: &'a KeySpace, pattern: &str) -> Option<&'a [u8]> {
            lookup(ks, pattern.replace("\\0", "\0").as_bytes(), b"1", NOW)
        }
        assert_eq!(get(&ks, "#"), Some(&b"1"[..]));
        assert_eq!(get(&ks, "#\\0junk"), Some(&b"1"[..]));
        assert_eq!(get(&ks, "a*b*"), Some(&b"first"[..]));
        assert_eq!(get(&ks, "w_*->"), Some(&b"arrow"[..]));
        assert_eq!(get(&ks, "h->f_*"), Some(&b"before"[..]));
        assert_eq!(get(&ks, "h_*->f-x"), Some(&b"dash"[..]));
        assert_eq!(get(&ks, "h_*->f"), Some(&b"hashed"[..]));
        assert_eq!(get(&ks, "h_*->nope"), None);
        assert_eq!(get(&ks, "k_*->f"), None, "a string has no field");
        assert_eq!(get(&ks, "h_*"), None, "a hash is not a string");
        assert_eq!(get(&ks, "k_1"), None, "no *");
        assert_eq!(get(&ks, "k_\\0*"), None, "the * after a NUL is not seen");
        assert_eq!(get(&ks, "k_*\\0x"), None, "the bytes after a NUL are part of the key");
        assert_eq!(get(&ks, ""), None);
    }

    #[test]
    fn store_replaces_or_deletes_the_destination() {
        let mut ks = KeySpace::new();
        run(&mut ks, "sadd s 3 1 2");
        ks.set(b"d", Value::Str(b"x".to_vec()), NOW + 5000);
        assert_eq!(run(&mut ks, "sort s DESC GET # GET v_* STORE d"), Reply::Int(6));
        assert_eq!(stored(&ks, "d"), ["3", "", "2", "", "1", ""]);
        assert_eq!(ks.get(b"d", NOW).unwrap().expire_at, 0, "no TTL kept");
        assert_eq!(run(&mut ks, "sort s LIMIT 0 0 STORE d"), Reply::Int(0));
        assert!(ks.get(b"d", NOW).is_none());
        assert_eq!(run(&mut ks, "sort missing STORE d"), Reply::Int(0));
        // A set unsorted by BY is stored sorted ALPHA.
        run(&mut ks, "sadd t 10 9 100");
        assert_eq!(run(&mut ks, "sort t BY nosort STORE d"), Reply::Int(3));
        assert_eq!(stored(&ks, "d"), ["10", "100", "9"]);
        assert_eq!(items(run(&mut ks, "sort t BY nosort DESC")), ["9", "10", "100"], "an intset's order");
        assert_eq!(run(&mut ks, "sort s STORE s"), Reply::Int(3));
        assert_eq!(stored(&ks, "s"), ["1", "2", "3"]);
    }

    #[test]
    fn errors_in_redis_order() {
        let mut ks = KeySpace::new();
        run(&mut ks, "set k v");
        assert_eq!(run(&mut ks, "sort k"), Error::WrongType.into());
        assert_eq!(run(&mut ks, "sort_ro k BY nosort"), Error::WrongType.into());
        assert_eq!(run(&mut ks, "sort k FOO"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "sort k LIMIT x 1 FOO"), Error::NotInteger.into());
        assert_eq!(run(&mut ks, "sort k LIMIT 1"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "sort k BY"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "sort_ro k STORE d"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "sort missing DESC\\0x LIMIT 0 1"), Reply::Array(vec![]));
        run(&mut ks, "zadd z 1 10 2 5 3 x");
        assert_eq!(run(&mut ks, "sort z"), Reply::err(NOT_A_DOUBLE));
        assert_eq!(items(run(&mut ks, "sort z BY nosort DESC LIMIT 0 2")), ["x", "5"]);
        assert_eq!(
            items(run(&mut ks, "sort z ALPHA LIMIT 9223372036854775807 -9223372036854775808")),
            Vec::<String>::new()
        );
    }
}
