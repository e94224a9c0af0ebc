//! The versions of what raftis writes to disk and to other nodes: log entries and snapshots.
//!
//! Format 5 (this release): format 4's, and the keyspace image ends with the replicated
//! `maxmemory` (CONFIG SET maxmemory); its log entries are format 4's.
//!
//! Format 4: a log entry is stored as one version byte, then its bincode with
//! variable-length integers (bincode's `DefaultOptions`: a length or a small number takes one
//! byte instead of eight, which makes the log of small commands about a third smaller); a
//! snapshot starts with [`SNAPSHOT_MAGIC`] and a `u32` version, then the snapshot's metadata
//! and the keyspace image (typed values, the encoding thresholds, the keyspace-notification
//! flags, the script cache and function libraries), in bincode with fixed-size integers. The log
//! store also records its format under a `meta` key, so that a store is known before any entry is
//! read. Entries carry their own version byte, so a log holds entries of several formats after an
//! upgrade and each is read as written.
//!
//! Format 3: entries in bincode with fixed-size integers (read as such); snapshots as format 4's.
//!
//! Format 2: the same, but the image ends before the script cache (read as an empty cache).
//! Its log entries are format 3's (operations are only ever appended to); a release that
//! knows only format 2 refuses format 3, whose entries may hold scripts it cannot run.
//!
//! Format 1: the same, but the image has no notification flags (and, before CONFIG SET of the
//! encoding thresholds existed, no thresholds either): both are read and converted. Its log
//! entries are format 2's (operations are only ever appended to), so a format-1 log only has
//! its marker rewritten. An older release refuses format 2 with its "newer format" message.
//!
//! Format 0 (releases up to a701ce4): no version anywhere, string values only. Its types are
//! frozen in [`v0`]; a format-0 log is rewritten in format 1 when it is opened (in one sled
//! transaction), and a format-0 snapshot is read and converted.
//!
//! Anything newer than this release knows is refused with a message saying so, never read.

pub mod v0;

use serde::{Deserialize, Serialize};

use super::types::{Batch, Entry, SnapshotMeta};
use crate::cmd::keys::{ExpireCond, KeyOp, TtlQuery};
use crate::cmd::strings::{Expiry, GetExExpiry, LcsOptions, SetCond, StrOp};
use crate::cmd::Op;
use crate::sm::{Body, KeySpaceImage, Request, Value, Watch};

/// The format this release writes.
pub const FORMAT: u8 = 5;

/// The first bytes of a snapshot of format 1 or later. A format-0 snapshot starts with its
/// metadata's `Option` tag (0 or 1), so the two cannot be confused.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"RAFTISSN";

/// Why stored bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error(
        "{what} has format {found}, newer than this release of raftis reads (up to {FORMAT}): \
         run the release that wrote it"
    )]
    Newer { what: &'static str, found: u32 },
    #[error("{what} is corrupt: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> FormatError {
    FormatError::Corrupt { what, detail: e.to_string() }
}

/// The bincode options of log entries from format 4 on: variable-length integers, little endian.
fn entry_options() -> impl bincode::Options {
    bincode::DefaultOptions::new()
}

/// A log entry as stored: the version byte, then bincode with variable-length integers.
pub fn encode_entry(entry: &Entry) -> bincode::Result<Vec<u8>> {
    use bincode::Options;
    let mut out = Vec::with_capacity(1 + entry_options().serialized_size(entry)? as usize);
    out.push(FORMAT);
    entry_options().serialize_into(&mut out, entry)?;
    Ok(out)
}

/// Reads a stored log entry of any format from 1 on.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, FormatError> {
    use bincode::Options;
    match bytes.first() {
        // Format 4's entries are format 5's (operations are only ever appended to).
        Some(&v) if (4..=FORMAT).contains(&v) => {
            entry_options().deserialize(&bytes[1..]).map_err(|e| corrupt("log entry", e))
        }
        // Format 1's and 2's entries decode as format 3's (operations are only ever appended):
        // bincode with fixed-size integers.
        Some(&(1..=3)) => bincode::deserialize(&bytes[1..]).map_err(|e| corrupt("log entry", e)),
        Some(&v) if v > FORMAT => Err(FormatError::Newer { what: "log entry", found: v as u32 }),
        Some(v) => Err(corrupt("log entry", format!("unknown format byte {v}"))),
        None => Err(corrupt("log entry", "empty value")),
    }
}

/// Rewrites a stored format-0 log entry in the current format.
pub fn upgrade_v0_entry(bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
    let old: v0::Entry = bincode::deserialize(bytes).map_err(|e| corrupt("format-0 log entry", e))?;
    let payload = match old.payload {
        openraft::EntryPayload::Blank => openraft::EntryPayload::Blank,
        openraft::EntryPayload::Membership(m) => openraft::EntryPayload::Membership(m),
        openraft::EntryPayload::Normal(batch) => {
            openraft::EntryPayload::Normal(Batch(batch.0.into_iter().map(request_from_v0).collect()))
        }
    };
    encode_entry(&Entry { log_id: old.log_id, payload }).map_err(|e| corrupt("log entry", e))
}

/// The header a snapshot starts with: the magic, the format, the metadata. The keyspace
/// image follows (see `KeySpace::serialize_image`).
pub fn snapshot_header(meta: &SnapshotMeta) -> impl Serialize + '_ {
    (SNAPSHOT_MAGIC, FORMAT as u32, meta)
}

#[derive(Deserialize)]
struct Header {
    magic: [u8; 8],
    version: u32,
}

/// Reads a snapshot of any format this release knows.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(SnapshotMeta, KeySpaceImage), FormatError> {
    if bytes.starts_with(&SNAPSHOT_MAGIC) {
        let header: Header = bincode::deserialize(bytes).map_err(|e| corrupt("snapshot", e))?;
        debug_assert_eq!(header.magic, SNAPSHOT_MAGIC);
        if header.version > FORMAT as u32 {
            return Err(FormatError::Newer { what: "snapshot", found: header.version });
        }
        if header.version == 1 {
            return decode_v1_snapshot(bytes);
        }
        if header.version == 2 {
            return decode_v2_snapshot(bytes);
        }
        if header.version < 5 {
            return decode_v4_snapshot(bytes);
        }
        let (_, _, meta, image): ([u8; 8], u32, SnapshotMeta, KeySpaceImage) =
            bincode::deserialize(bytes).map_err(|e| corrupt("snapshot", e))?;
        return Ok((meta, image));
    }
    let old: v0::SnapshotPayload = bincode::deserialize(bytes).map_err(|e| corrupt("format-0 snapshot", e))?;
    let image = KeySpaceImage {
        entries: old
            .image
            .entries
            .into_iter()
            .map(|e| crate::sm::Entry { key: e.key, value: Value::Str(e.value), expire_at: e.expire_at, seq: e.seq })
            .collect(),
        seq: old.image.seq,
        tombstones: old.image.tombstones,
        tombstone_horizon: old.image.tombstone_horizon,
        encodings: Default::default(),
        notify_flags: 0,
        scripts: Vec::new(),
        libraries: Vec::new(),
        maxmemory: 0,
    };
    Ok((old.meta, image))
}

/// Format 4's (and 3's) keyspace image: format 5's without `maxmemory`.
#[derive(Deserialize)]
struct ImageV4 {
    entries: Vec<crate::sm::Entry>,
    seq: u64,
    tombstones: Vec<(u64, u64, Box<[u8]>)>,
    tombstone_horizon: u64,
    encodings: crate::sm::Encodings,
    notify_flags: u32,
    scripts: Vec<bytes::Bytes>,
    libraries: Vec<bytes::Bytes>,
}

impl From<ImageV4> for KeySpaceImage {
    /// No memory limit (0): format 5 added it.
    fn from(image: ImageV4) -> KeySpaceImage {
        KeySpaceImage {
            entries: image.entries,
            seq: image.seq,
            tombstones: image.tombstones,
            tombstone_horizon: image.tombstone_horizon,
            encodings: image.encodings,
            notify_flags: image.notify_flags,
            scripts: image.scripts,
            libraries: image.libraries,
            maxmemory: 0,
        }
    }
}

/// Reads a format-3 or format-4 snapshot.
fn decode_v4_snapshot(bytes: &[u8]) -> Result<(SnapshotMeta, KeySpaceImage), FormatError> {
    let (_, _, meta, image): ([u8; 8], u32, SnapshotMeta, ImageV4) =
        bincode::deserialize(bytes).map_err(|e| corrupt("format-4 snapshot", e))?;
    Ok((meta, image.into()))
}

/// Format 2's keyspace image: format 3's without the script cache and libraries.
#[derive(Deserialize)]
struct ImageV2 {
    entries: Vec<crate::sm::Entry>,
    seq: u64,
    tombstones: Vec<(u64, u64, Box<[u8]>)>,
    tombstone_horizon: u64,
    encodings: crate::sm::Encodings,
    notify_flags: u32,
}

/// Reads a format-2 snapshot (an empty script cache and no libraries).
fn decode_v2_snapshot(bytes: &[u8]) -> Result<(SnapshotMeta, KeySpaceImage), FormatError> {
    let (_, _, meta, image): ([u8; 8], u32, SnapshotMeta, ImageV2) =
        bincode::deserialize(bytes).map_err(|e| corrupt("format-2 snapshot", e))?;
    let image = ImageV4 {
        entries: image.entries,
        seq: image.seq,
        tombstones: image.tombstones,
        tombstone_horizon: image.tombstone_horizon,
        encodings: image.encodings,
        notify_flags: image.notify_flags,
        scripts: Vec::new(),
        libraries: Vec::new(),
    };
    Ok((meta, image.into()))
}

/// Format 1's keyspace image, in its two shapes: with the encoding thresholds (since CONFIG SET
/// of them existed) and without.
#[derive(Deserialize)]
struct ImageV1 {
    entries: Vec<crate::sm::Entry>,
    seq: u64,
    tombstones: Vec<(u64, u64, Box<[u8]>)>,
    tombstone_horizon: u64,
}

/// Format 1's encoding thresholds (the same fields as format 2's, frozen here).
#[derive(Deserialize)]
struct EncodingsV1 {
    hash_max_listpack_entries: u64,
    hash_max_listpack_value: u64,
    set_max_intset_entries: u64,
    zset_max_listpack_entries: u64,
    zset_max_listpack_value: u64,
    list_max_listpack_size: i64,
    list_compress_depth: i64,
}

/// Reads a format-1 snapshot: the image with thresholds if the bytes hold them (a shorter
/// snapshot fails to decode that way: bincode reaches the end), else without.
fn decode_v1_snapshot(bytes: &[u8]) -> Result<(SnapshotMeta, KeySpaceImage), FormatError> {
    let convert = |image: ImageV1, encodings: crate::sm::Encodings| KeySpaceImage {
        entries: image.entries,
        seq: image.seq,
        tombstones: image.tombstones,
        tombstone_horizon: image.tombstone_horizon,
        encodings,
        notify_flags: 0,
        scripts: Vec::new(),
        libraries: Vec::new(),
        maxmemory: 0,
    };
    type WithThresholds = ([u8; 8], u32, SnapshotMeta, ImageV1, EncodingsV1);
    if let Ok((_, _, meta, image, e)) = bincode::deserialize::<WithThresholds>(bytes) {
        let encodings = crate::sm::Encodings {
            hash_max_listpack_entries: e.hash_max_listpack_entries,
            hash_max_listpack_value: e.hash_max_listpack_value,
            set_max_intset_entries: e.set_max_intset_entries,
            zset_max_listpack_entries: e.zset_max_listpack_entries,
            zset_max_listpack_value: e.zset_max_listpack_value,
            list_max_listpack_size: e.list_max_listpack_size,
            list_compress_depth: e.list_compress_depth,
        };
        return Ok((meta, convert(image, encodings)));
    }
    let (_, _, meta, image): ([u8; 8], u32, SnapshotMeta, ImageV1) =
        bincode::deserialize(bytes).map_err(|e| corrupt("format-1 snapshot", e))?;
    Ok((meta, convert(image, Default::default())))
}

/// Only a snapshot's metadata (cheap for format 1: the image is not decoded).
pub fn decode_snapshot_meta(bytes: &[u8]) -> Result<SnapshotMeta, FormatError> {
    if bytes.starts_with(&SNAPSHOT_MAGIC) {
        let header: Header = bincode::deserialize(bytes).map_err(|e| corrupt("snapshot", e))?;
        if header.version > FORMAT as u32 {
            return Err(FormatError::Newer { what: "snapshot", found: header.version });
        }
        let (_, _, meta): ([u8; 8], u32, SnapshotMeta) =
            bincode::deserialize(bytes).map_err(|e| corrupt("snapshot", e))?;
        return Ok(meta);
    }
    decode_snapshot(bytes).map(|(meta, _)| meta)
}

fn request_from_v0(r: v0::Request) -> Request {
    let body = match r.body {
        v0::Body::Op(op) => Body::Op(op_from_v0(op)),
        v0::Body::Exec { watches, ops } => Body::Exec {
            watches: watches
                .into_iter()
                .map(|w| Watch { key: w.key, entry_seq: w.entry_seq, live: w.live, seen: w.seen })
                .collect(),
            ops: ops.into_iter().map(op_from_v0).collect(),
        },
    };
    Request { now: r.now, seed: r.seed, body }
}

fn op_from_v0(op: v0::Op) -> Op {
    use v0::Op as O;
    let set_cond = |c: v0::SetCond| match c {
        v0::SetCond::Always => SetCond::Always,
        v0::SetCond::IfAbsent => SetCond::IfAbsent,
        v0::SetCond::IfPresent => SetCond::IfPresent,
    };
    let expiry = |e: v0::Expiry| match e {
        v0::Expiry::Clear => Expiry::Clear,
        v0::Expiry::Keep => Expiry::Keep,
        v0::Expiry::At(at) => Expiry::At(at),
    };
    let getex = |e: v0::GetExExpiry| match e {
        v0::GetExExpiry::Unchanged => GetExExpiry::Unchanged,
        v0::GetExExpiry::Persist => GetExExpiry::Persist,
        v0::GetExExpiry::In(at) => GetExExpiry::In(at),
        v0::GetExExpiry::At(at) => GetExExpiry::At(at),
        v0::GetExExpiry::Invalid => GetExExpiry::Invalid,
        v0::GetExExpiry::NotInteger => GetExExpiry::NotInteger,
    };
    match op {
        O::Get(k) => Op::Str(StrOp::Get(k)),
        O::MGet(k) => Op::Str(StrOp::MGet(k)),
        O::StrLen(k) => Op::Str(StrOp::StrLen(k)),
        O::GetRange { key, start, end } => Op::Str(StrOp::GetRange { key, start, end }),
        O::Lcs { a, b, opts } => Op::Str(StrOp::Lcs {
            a,
            b,
            opts: LcsOptions {
                len: opts.len,
                idx: opts.idx,
                min_match_len: opts.min_match_len,
                with_match_len: opts.with_match_len,
            },
        }),
        O::Exists(k) => Op::Key(KeyOp::Exists(k)),
        O::Type(k) => Op::Key(KeyOp::Type(k)),
        O::Ttl { key, query } => {
            Op::Key(KeyOp::Ttl { key, query: TtlQuery { millis: query.millis, absolute: query.absolute } })
        }
        O::Keys(p) => Op::Key(KeyOp::Keys(p)),
        O::Scan { cursor, pattern, count, type_name } => Op::Key(KeyOp::Scan { cursor, pattern, count, type_name }),
        O::RandomKey => Op::Key(KeyOp::RandomKey),
        O::Touch(k) => Op::Key(KeyOp::Touch(k)),
        O::DbSize => Op::Key(KeyOp::DbSize),
        // DEBUG DIGEST was never proposed; should one be found, it reads, like DBSIZE.
        O::Digest => Op::Key(KeyOp::DbSize),
        O::Set { key, value, cond, expiry: e, get } => {
            Op::Str(StrOp::Set { key, value, cond: set_cond(cond), expiry: expiry(e), get })
        }
        O::SetNx { key, value } => Op::Str(StrOp::SetNx { key, value }),
        O::Upd { key, value } => Op::Str(StrOp::Upd { key, value }),
        O::GetDel(k) => Op::Str(StrOp::GetDel(k)),
        O::GetEx { key, expiry } => Op::Str(StrOp::GetEx { key, expiry: getex(expiry) }),
        O::MSet(p) => Op::Str(StrOp::MSet(p)),
        O::MSetNx(p) => Op::Str(StrOp::MSetNx(p)),
        O::IncrBy { key, by } => Op::Str(StrOp::IncrBy { key, by }),
        O::IncrByFloat { key, by } => Op::Str(StrOp::IncrByFloat { key, by }),
        O::Append { key, value } => Op::Str(StrOp::Append { key, value }),
        O::SetRange { key, offset, value } => Op::Str(StrOp::SetRange { key, offset, value }),
        O::Del(k) => Op::Key(KeyOp::Del(k)),
        O::Expire { key, at, cond } => {
            Op::Key(KeyOp::Expire { key, at, cond: ExpireCond { nx: cond.nx, xx: cond.xx, gt: cond.gt, lt: cond.lt } })
        }
        O::Persist(k) => Op::Key(KeyOp::Persist(k)),
        O::Rename { from, to, nx } => Op::Key(KeyOp::Rename { from, to, nx }),
        O::Copy { from, to, replace } => Op::Key(KeyOp::Copy { from, to, replace }),
        O::FlushAll => Op::Key(KeyOp::FlushAll),
        O::DeleteExpired(k) => Op::Key(KeyOp::DeleteExpired(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::{LogId, StoredMembership};

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(3, 1), 42)),
            last_membership: StoredMembership::default(),
            snapshot_id: "s".into(),
        }
    }

    #[test]
    fn a_snapshot_of_a_newer_format_is_refused() {
        let ks = crate::sm::KeySpace::new();
        let mut bytes = ks.serialize_image(&snapshot_header(&meta())).unwrap();
        assert_eq!(decode_snapshot_meta(&bytes).unwrap(), meta());
        bytes[8] = 9;
        let e = decode_snapshot(&bytes).unwrap_err();
        assert_eq!(e, FormatError::Newer { what: "snapshot", found: 9 });
        assert!(e.to_string().contains("newer than this release"), "{e}");
        assert!(decode_snapshot_meta(&bytes).is_err());
    }

    #[test]
    fn a_log_entry_of_a_newer_format_is_refused() {
        let entry = Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), 5),
            payload: openraft::EntryPayload::Blank,
        };
        let mut bytes = encode_entry(&entry).unwrap();
        assert_eq!(decode_entry(&bytes).unwrap(), entry);
        bytes[0] = FORMAT + 1;
        assert!(matches!(decode_entry(&bytes), Err(FormatError::Newer { .. })));
    }

    /// An entry as formats 1 to 3 stored it: the version byte, then bincode with fixed-size
    /// integers.
    fn fixint_entry(version: u8, e: &Entry) -> Vec<u8> {
        let mut bytes = vec![version];
        bytes.extend(bincode::serialize(e).unwrap());
        bytes
    }

    #[test]
    fn format_3_entries_are_read_and_format_4_entries_are_smaller() {
        let req = Request {
            now: 1_764_000_000_000,
            seed: 42,
            body: Body::Op(Op::Str(StrOp::Set {
                key: bytes::Bytes::from_static(b"key:000001"),
                value: bytes::Bytes::from_static(b"0123456789abcdef"),
                cond: SetCond::Always,
                expiry: Expiry::Keep,
                get: false,
            })),
        };
        let e = Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(7, 2), 123_456),
            payload: openraft::EntryPayload::Normal(Batch(vec![req.clone(), req])),
        };
        let old = fixint_entry(3, &e);
        assert_eq!(decode_entry(&old).unwrap(), e);
        let new = encode_entry(&e).unwrap();
        assert_eq!(new[0], FORMAT);
        assert_eq!(decode_entry(&new).unwrap(), e);
        assert!(new.len() * 3 < old.len() * 2, "varint {} vs fixint {} bytes", new.len(), old.len());
    }

    #[test]
    fn format_1_snapshots_of_both_shapes_and_entries_are_read() {
        let entry =
            crate::sm::Entry { key: b"k".to_vec().into(), value: Value::Str(b"v".to_vec()), expire_at: 0, seq: 3 };
        let no_tombstones: Vec<(u64, u64, Box<[u8]>)> = Vec::new();
        let thresholds = (3u64, 64u64, 512u64, 128u64, 64u64, -2i64, 0i64);
        let with = bincode::serialize(&(
            SNAPSHOT_MAGIC,
            1u32,
            meta(),
            (vec![entry.clone()], 3u64, no_tombstones.clone(), 0u64),
            thresholds,
        ))
        .unwrap();
        let (m, image) = decode_snapshot(&with).unwrap();
        assert_eq!(m, meta());
        assert_eq!(image.entries, vec![entry.clone()]);
        assert_eq!(image.encodings.hash_max_listpack_entries, 3);
        assert_eq!(image.notify_flags, 0);
        let without =
            bincode::serialize(&(SNAPSHOT_MAGIC, 1u32, meta(), (vec![entry.clone()], 3u64, no_tombstones, 0u64)))
                .unwrap();
        let (_, image) = decode_snapshot(&without).unwrap();
        assert_eq!(image.entries, vec![entry]);
        assert_eq!(image.encodings, crate::sm::Encodings::default());
        // A format-1 log entry reads as it is.
        let e = Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), 5),
            payload: openraft::EntryPayload::Blank,
        };
        let bytes = fixint_entry(1, &e);
        assert_eq!(decode_entry(&bytes).unwrap(), e);
    }

    #[test]
    fn format_4_snapshots_read_with_no_memory_limit_and_format_5_keeps_it() {
        let entry =
            crate::sm::Entry { key: b"k".to_vec().into(), value: Value::Str(b"v".to_vec()), expire_at: 0, seq: 3 };
        let no_tombstones: Vec<(u64, u64, Box<[u8]>)> = Vec::new();
        let scripts = vec![bytes::Bytes::from("return 1")];
        let no_libraries: Vec<bytes::Bytes> = Vec::new();
        let encodings = crate::sm::Encodings::default();
        let v4 = bincode::serialize(&(
            SNAPSHOT_MAGIC,
            4u32,
            meta(),
            (vec![entry.clone()], 3u64, no_tombstones, 0u64, encodings, 0x21u32, scripts.clone(), no_libraries),
        ))
        .unwrap();
        let (m, image) = decode_snapshot(&v4).unwrap();
        assert_eq!(m, meta());
        assert_eq!(
            (image.entries, image.notify_flags, image.scripts, image.maxmemory),
            (vec![entry], 0x21, scripts, 0)
        );
        let mut ks = crate::sm::KeySpace::new();
        ks.maxmemory = 1 << 30;
        let v5 = ks.serialize_image(&snapshot_header(&meta())).unwrap();
        assert_eq!(decode_snapshot(&v5).unwrap().1.maxmemory, 1 << 30);
        // A format-4 log entry reads as it is.
        let e = Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), 5),
            payload: openraft::EntryPayload::Blank,
        };
        let mut bytes = encode_entry(&e).unwrap();
        bytes[0] = 4;
        assert_eq!(decode_entry(&bytes).unwrap(), e);
    }

    #[test]
    fn format_2_snapshots_and_entries_are_read() {
        let entry =
            crate::sm::Entry { key: b"k".to_vec().into(), value: Value::Str(b"v".to_vec()), expire_at: 0, seq: 3 };
        let no_tombstones: Vec<(u64, u64, Box<[u8]>)> = Vec::new();
        let encodings = crate::sm::Encodings { set_max_intset_entries: 9, ..Default::default() };
        let v2 = bincode::serialize(&(
            SNAPSHOT_MAGIC,
            2u32,
            meta(),
            (vec![entry.clone()], 3u64, no_tombstones, 0u64, encodings, 0x21u32),
        ))
        .unwrap();
        let (m, image) = decode_snapshot(&v2).unwrap();
        assert_eq!(m, meta());
        assert_eq!(image.entries, vec![entry]);
        assert_eq!(image.encodings, encodings);
        assert_eq!(image.notify_flags, 0x21);
        assert!(image.scripts.is_empty() && image.libraries.is_empty());
        let e = Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), 5),
            payload: openraft::EntryPayload::Blank,
        };
        let bytes = fixint_entry(2, &e);
        assert_eq!(decode_entry(&bytes).unwrap(), e);
    }

    #[test]
    fn format_0_snapshots_and_entries_convert() {
        let old = v0::SnapshotPayload {
            meta: meta(),
            image: v0::KeySpaceImage {
                entries: vec![v0::KeyEntry { key: b"k".to_vec().into(), value: b"v".to_vec(), expire_at: 7, seq: 3 }],
                seq: 3,
                tombstones: vec![],
                tombstone_horizon: 0,
            },
        };
        let (m, image) = decode_snapshot(&bincode::serialize(&old).unwrap()).unwrap();
        assert_eq!(m, meta());
        assert_eq!(image.entries[0].value, Value::Str(b"v".to_vec()));
        let entry = v0::Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), 5),
            payload: openraft::EntryPayload::Normal(v0::Batch(vec![v0::Request {
                now: 1,
                seed: 2,
                body: v0::Body::Op(v0::Op::IncrBy { key: "n".into(), by: 4 }),
            }])),
        };
        let upgraded = decode_entry(&upgrade_v0_entry(&bincode::serialize(&entry).unwrap()).unwrap()).unwrap();
        let openraft::EntryPayload::Normal(batch) = upgraded.payload else { panic!() };
        assert_eq!(batch.0[0].body, Body::Op(Op::Str(StrOp::IncrBy { key: "n".into(), by: 4 })));
    }
}
