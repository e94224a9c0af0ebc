//! DEBUG DIGEST: a 40-hex digest of every key, value and expiry time, independent of insertion
//! order (each entry's SHA-1 is XORed in), so equal datasets on two replicas give equal digests.

use super::keyspace::{Entry, KeySpace};
use super::value::Value;

/// The digest of the whole keyspace; forty zeros when it is empty, as in Redis.
pub fn digest(ks: &KeySpace) -> String {
    let mut acc = [0u8; 20];
    for e in ks.entries() {
        for (a, b) in acc.iter_mut().zip(entry_digest(e)) {
            *a ^= b;
        }
    }
    hex(&acc)
}

/// DEBUG DIGEST-VALUE: one key's digest, forty zeros when it is missing.
pub fn digest_value(ks: &KeySpace, key: &[u8]) -> String {
    hex(&ks.get_raw(key).map_or([0u8; 20], entry_digest))
}

fn entry_digest(e: &Entry) -> [u8; 20] {
    let mut h = sha1_smol::Sha1::new();
    h.update(&(e.key.len() as u64).to_be_bytes());
    h.update(&e.key);
    value_digest(&mut h, &e.value);
    h.update(&e.expire_at.to_be_bytes());
    h.digest().bytes()
}

/// Feeds a value to the digest. A string is its length and bytes (as before other types
/// existed, so that string-only datasets keep their digests); a collection is a type tag, its
/// size and its elements in an order that depends on the value alone where clients cannot see
/// another (a set's members sorted or by hash, a sorted set's by score) and in its own order where
/// they can (a small hash answers HGETALL in insertion order, so that order is digested too).
fn value_digest(h: &mut sha1_smol::Sha1, value: &Value) {
    fn bytes(h: &mut sha1_smol::Sha1, b: &[u8]) {
        h.update(&(b.len() as u64).to_be_bytes());
        h.update(b);
    }
    match value {
        Value::Str(s) => bytes(h, s),
        Value::Hash(d) => {
            h.update(&[0xff, b'h']);
            h.update(&(d.len() as u64).to_be_bytes());
            for (f, v) in d.iter() {
                bytes(h, f);
                bytes(h, v);
            }
        }
        Value::Set(d) => {
            h.update(&[0xff, b's']);
            h.update(&(d.len() as u64).to_be_bytes());
            let mut members: Vec<&[u8]> = d.iter().map(|(m, _)| m).collect();
            if !d.is_big() {
                members.sort_unstable();
            }
            for m in members {
                bytes(h, m);
            }
        }
        Value::ZSet(z) => {
            h.update(&[0xff, b'z']);
            h.update(&(z.len() as u64).to_be_bytes());
            for (score, m) in z.by_score.iter() {
                bytes(h, m);
                h.update(&score.0.to_bits().to_be_bytes());
            }
        }
        Value::List(l) => {
            h.update(&[0xff, b'l']);
            h.update(&(l.len() as u64).to_be_bytes());
            for e in l.0.iter() {
                bytes(h, e);
            }
        }
        Value::Stream(st) => {
            h.update(&[0xff, b'x']);
            h.update(&(st.len() as u64).to_be_bytes());
            h.update(&st.last_id.ms.to_be_bytes());
            h.update(&st.last_id.seq.to_be_bytes());
            for (id, fields) in &st.entries {
                h.update(&id.ms.to_be_bytes());
                h.update(&id.seq.to_be_bytes());
                h.update(&(fields.len() as u64).to_be_bytes());
                for f in fields {
                    bytes(h, f);
                }
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent() {
        let mut a = KeySpace::new();
        let mut b = KeySpace::new();
        assert_eq!(digest(&a), "0".repeat(40));
        a.set(b"x", Value::Str(b"1".to_vec()), 0);
        a.set(b"y", Value::Str(b"2".to_vec()), 5);
        b.set(b"y", Value::Str(b"2".to_vec()), 5);
        b.set(b"x", Value::Str(b"1".to_vec()), 0);
        assert_eq!(digest(&a), digest(&b));
        b.set(b"x", Value::Str(b"1".to_vec()), 7);
        assert_ne!(digest(&a), digest(&b));
    }
}
