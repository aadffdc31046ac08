//! Object identifiers (RFC 8474 OBJECTID): the strings MAILBOXID, EMAILID and THREADID show.
//!
//! A store numbers mailboxes ([`MailboxId`]), messages ([`EmailId`]) and conversations
//! ([`ThreadId`]) per account, counting up and never reusing a number. Those counters would
//! tell a client how much mail the account has ever had, and the same numbers would name
//! different things in every account. So the strings are not the numbers: each account has a
//! secret [`ObjectKey`], fixed when the account is made and kept as long as it is, and an
//! identifier is a keyed permutation of the 64-bit number (a four-round Feistel network with
//! SipHash-2-4 as its round function) written in lowercase base32 after one capital letter
//! naming the kind (`F` mailbox, `M` message, `T` thread, as RFC 8474's examples have them).
//!
//! That gives, without storing any string:
//! - distinct numbers give distinct strings (a permutation cannot collide, unlike a digest;
//!   RFC 8474 §11 asks a digest to be collision-resistant), so "never reused" holds exactly
//!   as long as the store's counters never go back;
//! - strings of one account say nothing about another's, nor about how many objects there are,
//!   to whoever lacks the key, and an account removed and made again (a new key) repeats none;
//! - every identifier is 14 characters of `[A-Za-z0-9]`, starts with a letter, is never `NIL`,
//!   and two never differ only by case (RFC 8474 §8.1);
//! - a SEARCH EMAILID / THREADID string goes back to its number with [`decode`] (a string
//!   that is not one of ours matches nothing).
//!
//! The session forms the strings; the store hands it the account's key with every reply that
//! names a mailbox (`Snapshot`, `MailboxStatus`, `StorageReply::Created`).

use super::MailboxId;

/// A message's identity in its account (RFC 8474 EMAILID): given when APPEND (or an import)
/// stores the message, kept by COPY, MOVE and RENAME, never given to another message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailId(pub u64);

/// A conversation's identity in its account (RFC 8474 THREADID): the [`EmailId`] of the first
/// message stored in it (RFC 8474 Appendix A), so never that of another conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadId(pub u64);

/// An account's secret for forming identifier strings. A store picks it at random when the
/// account is made (the in-memory reference store counts instead: its keys are no secret).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ObjectKey(pub u64);

impl std::fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Kept out of logs and panics.
        f.write_str("ObjectKey(..)")
    }
}

/// What an identifier names; its letter starts the string and its number tweaks the
/// permutation, so mailbox 1, message 1 and thread 1 give unrelated strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// MAILBOXID.
    Mailbox,
    /// EMAILID.
    Email,
    /// THREADID.
    Thread,
}

impl Kind {
    fn letter(self) -> u8 {
        match self {
            Kind::Mailbox => b'F',
            Kind::Email => b'M',
            Kind::Thread => b'T',
        }
    }

    fn tweak(self) -> u64 {
        match self {
            Kind::Mailbox => 1,
            Kind::Email => 2,
            Kind::Thread => 3,
        }
    }
}

/// Characters of an identifier after its letter.
pub const DIGITS: usize = 13;
/// The length of every identifier.
pub const LEN: usize = DIGITS + 1;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const ROUNDS: u64 = 4;

/// An identifier string: `LEN` ASCII octets.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId([u8; LEN]);

impl ObjectId {
    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The octets as the response types hold them.
    pub fn to_bytes(&self) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(&self.0)
    }
}

impl std::fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// The string of object `n` of `kind` in the account whose key is `key`.
pub fn encode(key: ObjectKey, kind: Kind, n: u64) -> ObjectId {
    let mut v = permute(key, kind, n);
    let mut out = [0u8; LEN];
    out[0] = kind.letter();
    for slot in out[1..].iter_mut().rev() {
        *slot = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    ObjectId(out)
}

/// The number behind a string [`encode`] gave for `kind` and `key`; `None` for any other string.
pub fn decode(key: ObjectKey, kind: Kind, id: &[u8]) -> Option<u64> {
    let (&letter, digits) = id.split_first()?;
    if letter != kind.letter() || digits.len() != DIGITS {
        return None;
    }
    let mut v: u64 = 0;
    for (i, &c) in digits.iter().enumerate() {
        let d = ALPHABET.iter().position(|&a| a == c)? as u64;
        // 13 digits carry 65 bits: the first may use only 4 of its 5.
        if i == 0 && d > 15 {
            return None;
        }
        v = (v << 5) | d;
    }
    Some(unpermute(key, kind, v))
}

/// MAILBOXID of a mailbox.
pub fn mailbox(key: ObjectKey, id: MailboxId) -> ObjectId {
    encode(key, Kind::Mailbox, id.0)
}

/// EMAILID of a message.
pub fn email(key: ObjectKey, id: EmailId) -> ObjectId {
    encode(key, Kind::Email, id.0)
}

/// THREADID of a conversation.
pub fn thread(key: ObjectKey, id: ThreadId) -> ObjectId {
    encode(key, Kind::Thread, id.0)
}

fn round(key: ObjectKey, kind: Kind, i: u64, half: u32) -> u32 {
    let k1 = key.0.rotate_left(32) ^ 0x6f62_6a65_6374_6964;
    let word = (kind.tweak() << 40) | (i << 32) | u64::from(half);
    siphash24(key.0, k1, word) as u32
}

fn permute(key: ObjectKey, kind: Kind, n: u64) -> u64 {
    let (mut l, mut r) = ((n >> 32) as u32, n as u32);
    for i in 0..ROUNDS {
        (l, r) = (r, l ^ round(key, kind, i, r));
    }
    (u64::from(l) << 32) | u64::from(r)
}

fn unpermute(key: ObjectKey, kind: Kind, v: u64) -> u64 {
    let (mut l, mut r) = ((v >> 32) as u32, v as u32);
    for i in (0..ROUNDS).rev() {
        (l, r) = (r ^ round(key, kind, i, l), l);
    }
    (u64::from(l) << 32) | u64::from(r)
}

/// SipHash-2-4 of one 64-bit word (an 8-octet message, little-endian), as specified by
/// Aumasson and Bernstein. Written out rather than taken from `std`, whose hasher's output
/// may change between Rust releases: identifiers must not.
fn siphash24(k0: u64, k1: u64, m: u64) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn sipround(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    for block in [m, 8u64 << 56] {
        v[3] ^= block;
        sipround(&mut v);
        sipround(&mut v);
        v[0] ^= block;
    }
    v[2] ^= 0xff;
    for _ in 0..4 {
        sipround(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    /// The reference vector of the SipHash paper (Appendix A's key 00..0f) for the 8-octet
    /// message 00..07: 0x93f5f5799a932462 (from the paper's vector list, 8-octet input).
    #[test]
    fn siphash_matches_the_reference_vectors() {
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let m = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(siphash24(k0, k1, m), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn identifiers_have_the_safe_form() {
        for kind in [Kind::Mailbox, Kind::Email, Kind::Thread] {
            for n in [0, 1, 2, u64::MAX] {
                let id = encode(ObjectKey(7), kind, n);
                let s = id.as_bytes();
                assert_eq!(s.len(), LEN);
                assert!(s[0].is_ascii_uppercase());
                assert!(s[1..]
                    .iter()
                    .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(c)));
            }
        }
    }

    #[test]
    fn kinds_and_keys_give_unrelated_strings() {
        let a = encode(ObjectKey(1), Kind::Email, 1);
        let b = encode(ObjectKey(2), Kind::Email, 1);
        let c = encode(ObjectKey(1), Kind::Thread, 1);
        assert_ne!(a.as_bytes()[1..], b.as_bytes()[1..]);
        assert_ne!(a.as_bytes()[1..], c.as_bytes()[1..]);
        // Another account's (or kind's) string means nothing here.
        assert_eq!(decode(ObjectKey(1), Kind::Email, c.as_bytes()), None);
    }

    #[test]
    fn strings_that_are_not_ours_decode_to_nothing() {
        let k = ObjectKey(3);
        for s in [
            &b""[..],
            b"M",
            b"NIL",
            b"Maaaaaaaaaaaaaa",
            b"Mqaaaaaaaaaaaa",
            b"M0aaaaaaaaaaaa",
        ] {
            assert_eq!(decode(k, Kind::Email, s), None, "{s:?}");
        }
    }

    quickcheck! {
        fn decode_inverts_encode(key: u64, n: u64) -> bool {
            [Kind::Mailbox, Kind::Email, Kind::Thread].into_iter().all(|kind| {
                decode(ObjectKey(key), kind, encode(ObjectKey(key), kind, n).as_bytes()) == Some(n)
            })
        }

        fn distinct_numbers_give_distinct_strings(key: u64, a: u64, b: u64) -> bool {
            a == b || encode(ObjectKey(key), Kind::Email, a) != encode(ObjectKey(key), Kind::Email, b)
        }
    }
}
