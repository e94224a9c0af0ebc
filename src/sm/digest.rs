//! DEBUG DIGEST: a 40-hex digest of every key, value and expiry time, independent of insertion
//! order (each entry's SHA-1 is XORed in), so equal datasets on two replicas give equal digests.

use super::keyspace::{Entry, KeySpace};

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
    h.update(&(e.value.len() as u64).to_be_bytes());
    h.update(&e.value);
    h.update(&e.expire_at.to_be_bytes());
    h.digest().bytes()
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
        a.set(b"x", b"1".to_vec(), 0);
        a.set(b"y", b"2".to_vec(), 5);
        b.set(b"y", b"2".to_vec(), 5);
        b.set(b"x", b"1".to_vec(), 0);
        assert_eq!(digest(&a), digest(&b));
        b.set(b"x", b"1".to_vec(), 7);
        assert_ne!(digest(&a), digest(&b));
    }
}
