//! Keyspace notifications: the `notify-keyspace-events` flags and the messages operations
//! publish when they change a key.
//!
//! The flags live in the keyspace (replicated: CONFIG SET goes through the log, and they are
//! kept in snapshots), and an operation's events are messages left in the keyspace's outbox
//! while it applies, so every node publishes the same events, in log order, to its own
//! subscribers: `__keyspace@0__:<key>` with the event as the message and
//! `__keyevent@0__:<event>` with the key, as Redis does.

use bytes::Bytes;

use crate::sm::{KeySpace, Message};

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 13;
pub const NEW: u32 = 1 << 14;
/// `A`: every class but key-miss and new-key events.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Reads a flags string as Redis's `keyspaceEventsStringToFlags` does; `None` for an unknown
/// character.
pub fn parse_flags(text: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for &c in text {
        flags |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// Writes flags as CONFIG GET shows them (Redis's `keyspaceEventsFlagsToString`).
pub fn format_flags(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                out.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            out.push(c);
        }
    }
    out
}

/// Publishes event `event` of class `class` on `key`, if the flags ask for it, and records the
/// change for the watch feed (see [`KeySpace::record_change`]).
pub fn notify(ks: &mut KeySpace, class: u32, event: &'static str, key: &[u8]) {
    // A new key's "new" event always comes with the event of the command that made it.
    if class != NEW {
        ks.record_change(event, key);
    }
    let flags = ks.notify_flags;
    if flags & class == 0 || flags & (KEYSPACE | KEYEVENT) == 0 {
        return;
    }
    if flags & KEYSPACE != 0 {
        let mut channel = b"__keyspace@0__:".to_vec();
        channel.extend_from_slice(key);
        ks.outbox.push(Message {
            channel: Bytes::from(channel),
            payload: Bytes::copy_from_slice(event.as_bytes()),
            shard: false,
        });
    }
    if flags & KEYEVENT != 0 {
        ks.outbox.push(Message {
            channel: Bytes::from(format!("__keyevent@0__:{event}")),
            payload: Bytes::copy_from_slice(key),
            shard: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_and_print_as_redis_does() {
        for (given, shown) in [
            ("KA", "AK"),
            ("EA", "AE"),
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KEA", "AKE"),
            ("", ""),
            ("Kn", "nK"),
            ("Km", "Km"),
            ("KEnm", "nKEm"),
            ("AKEnm", "AKEm"),
            ("gx", "gx"),
        ] {
            assert_eq!(format_flags(parse_flags(given.as_bytes()).unwrap()), shown, "{given}");
        }
        assert_eq!(parse_flags(b"xyz"), None);
    }

    #[test]
    fn events_go_to_the_outbox_only_when_asked_for() {
        let mut ks = KeySpace::new();
        notify(&mut ks, STRING, "set", b"k");
        assert!(ks.outbox.is_empty());
        ks.notify_flags = parse_flags(b"KE$").unwrap();
        notify(&mut ks, LIST, "lpush", b"k");
        assert!(ks.outbox.is_empty());
        notify(&mut ks, STRING, "set", b"k");
        let got: Vec<(Bytes, Bytes)> = ks.outbox.drain(..).map(|m| (m.channel, m.payload)).collect();
        assert_eq!(
            got,
            vec![
                (Bytes::from("__keyspace@0__:k"), Bytes::from("set")),
                (Bytes::from("__keyevent@0__:set"), Bytes::from("k")),
            ]
        );
    }
}
