//! Which conversation a message belongs to (RFC 8474 THREADID), from its Message-ID,
//! In-Reply-To and References, decided once when the message is stored.
//!
//! A store keeps, per account, a map from message identifiers to conversations. A new message
//! joins the conversation of the first of its identifiers the map knows, asked in this order:
//! its own Message-ID (a reply stored before it already named it), In-Reply-To, then References
//! from the last (the nearest ancestor) to the first (the root). Knowing none, it starts a
//! conversation of its own. Then every identifier it carries that the map does not know yet is
//! mapped to its conversation, so that messages arriving out of order (a reply before its
//! parent, two replies to a parent never seen) still meet.
//!
//! Conversations are never merged afterwards: RFC 8474 §5.2 forbids changing a THREADID once
//! reported, so a message that names two conversations joins the first it finds and the map
//! keeps both. Subjects are not compared: RFC 5256's base-subject grouping would put every
//! "Hello" of an account into one conversation, and a wrong grouping could never be undone.
//!
//! The work is bounded whatever the header holds: at most [`MAX_REFERENCES`] identifiers of
//! References are kept (the first, which is the root, and the last `MAX_REFERENCES - 1`, the
//! nearest ancestors; RFC 5322 §3.6.4 trims long lists the same way), identifiers longer than
//! [`MAX_ID`] octets are ignored, and reading the header is one pass.

use std::collections::VecDeque;

use super::header;

/// References entries kept: the first and the last `MAX_REFERENCES - 1`.
pub const MAX_REFERENCES: usize = 16;
/// The longest identifier (between `<` and `>`, white space removed) that counts.
pub const MAX_ID: usize = 250;

/// The identifiers of one message that threading looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadKeys {
    /// Its own Message-ID.
    pub own: Option<String>,
    /// In-Reply-To's first identifier.
    pub in_reply_to: Option<String>,
    /// References, in header order, trimmed as [`MAX_REFERENCES`] says.
    pub references: Vec<String>,
}

impl ThreadKeys {
    /// Reads the keys from a message (or its header; only the top-level header is read).
    pub fn of(message: &[u8]) -> ThreadKeys {
        let mut keys = ThreadKeys::default();
        let mut saw = (false, false, false);
        for field in header::fields(message) {
            let name = field.name;
            if !saw.0 && name.eq_ignore_ascii_case(b"Message-ID") {
                saw.0 = true;
                keys.own = ids(field.value).next();
            } else if !saw.1 && name.eq_ignore_ascii_case(b"In-Reply-To") {
                saw.1 = true;
                keys.in_reply_to = ids(field.value).next();
            } else if !saw.2 && name.eq_ignore_ascii_case(b"References") {
                saw.2 = true;
                keys.references = trimmed(ids(field.value));
            }
        }
        keys
    }

    /// The identifiers to look up, in the order that decides: own, In-Reply-To, References
    /// from the last.
    pub fn lookups(&self) -> impl Iterator<Item = &str> {
        self.own
            .iter()
            .chain(self.in_reply_to.iter())
            .chain(self.references.iter().rev())
            .map(String::as_str)
    }

    /// Decides the conversation: the first identifier `known` maps, else `fresh`.
    pub fn thread<T, E>(
        &self,
        fresh: T,
        mut known: impl FnMut(&str) -> Result<Option<T>, E>,
    ) -> Result<T, E> {
        for id in self.lookups() {
            if let Some(t) = known(id)? {
                return Ok(t);
            }
        }
        Ok(fresh)
    }
}

/// The first identifier plus the last `MAX_REFERENCES - 1`, in order, in one pass.
fn trimmed<'a>(all: impl Iterator<Item = String> + 'a) -> Vec<String> {
    let mut first = None;
    let mut last: VecDeque<String> = VecDeque::with_capacity(MAX_REFERENCES);
    for id in all {
        if first.is_none() {
            first = Some(id);
            continue;
        }
        if last.len() == MAX_REFERENCES - 1 {
            last.pop_front();
        }
        last.push_back(id);
    }
    first.into_iter().chain(last).collect()
}

/// The `<...>` identifiers of a raw field value, white space (folding) removed, each at most
/// [`MAX_ID`] octets of printable ASCII; others are skipped.
fn ids(value: &[u8]) -> impl Iterator<Item = String> + '_ {
    let mut rest = value;
    std::iter::from_fn(move || loop {
        let open = rest.iter().position(|&b| b == b'<')?;
        let after = rest.get(open + 1..)?;
        let Some(close) = after.iter().position(|&b| b == b'>' || b == b'<') else {
            rest = &[];
            return None;
        };
        let inner = after.get(..close).unwrap_or_default();
        rest = after.get(close..).unwrap_or_default();
        if rest.first() == Some(&b'>') {
            rest = rest.get(1..).unwrap_or_default();
        } else {
            continue;
        }
        if inner.len() > MAX_ID * 2 {
            continue;
        }
        let id: Vec<u8> = inner
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if id.is_empty() || id.len() > MAX_ID || !id.iter().all(|b| (33..=126).contains(b)) {
            continue;
        }
        if let Ok(s) = String::from_utf8(id) {
            return Some(s);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_the_three_fields() {
        let m = b"Message-ID: <c@x>\r\nIn-Reply-To: <b@x> (comment)\r\nReferences: <a@x>\r\n <b\r\n @x>\r\nSubject: s\r\n\r\nReferences: <body@x>\r\n";
        let k = ThreadKeys::of(m);
        assert_eq!(k.own.as_deref(), Some("c@x"));
        assert_eq!(k.in_reply_to.as_deref(), Some("b@x"));
        assert_eq!(k.references, ["a@x", "b@x"]);
        assert_eq!(
            k.lookups().collect::<Vec<_>>(),
            ["c@x", "b@x", "b@x", "a@x"]
        );
    }

    #[test]
    fn long_references_keep_the_root_and_the_nearest() {
        let refs: String = (0..10_000).map(|i| format!("<{i}@x> ")).collect();
        let m = format!("References: {refs}\r\n\r\n");
        let k = ThreadKeys::of(m.as_bytes());
        assert_eq!(k.references.len(), MAX_REFERENCES);
        assert_eq!(k.references[0], "0@x");
        assert_eq!(
            k.references[1],
            format!("{}@x", 10_000 - MAX_REFERENCES + 1)
        );
        assert_eq!(k.references[MAX_REFERENCES - 1], "9999@x");
    }

    #[test]
    fn junk_identifiers_are_skipped() {
        let long = "a".repeat(MAX_ID + 1);
        let m = format!(
            "References: <> <{long}> <<x@y> <ok@z> <unclosed\r\nMessage-ID: no brackets\r\n\r\n"
        );
        let k = ThreadKeys::of(m.as_bytes());
        assert_eq!(k.references, ["x@y", "ok@z"]);
        assert_eq!(k.own, None);
    }

    /// Out-of-order arrival: the reply first, then its parent, then a sibling that names only
    /// the root, all meet; an unrelated message does not.
    #[test]
    fn messages_meet_whatever_their_order() {
        let mut map: HashMap<String, u64> = HashMap::new();
        let mut store = |own: u64, m: &str| -> u64 {
            let k = ThreadKeys::of(m.as_bytes());
            let t = k
                .thread(own, |id| Ok::<_, ()>(map.get(id).copied()))
                .unwrap();
            for id in k.lookups() {
                map.entry(id.to_string()).or_insert(t);
            }
            t
        };
        let reply = store(1, "Message-ID: <c@x>\r\nReferences: <a@x> <b@x>\r\n\r\n");
        let parent = store(2, "Message-ID: <b@x>\r\nReferences: <a@x>\r\n\r\n");
        let sibling = store(3, "Message-ID: <d@x>\r\nIn-Reply-To: <a@x>\r\n\r\n");
        let other = store(4, "Message-ID: <e@x>\r\n\r\n");
        assert_eq!((reply, parent, sibling), (1, 1, 1));
        assert_eq!(other, 4);
    }
}
