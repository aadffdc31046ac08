//! Annotations on mailboxes and on the account as a whole (RFC 5464 METADATA), as every store
//! keeps them: entry names checked and made canonical here, once, so that stores only compare
//! strings, and the DEPTH rule of GETMETADATA (§4.2.2) in one place.
//!
//! tern has no shared mailboxes, so `/private` and `/shared` entries are both the account's
//! own; they are kept apart by their names. An entry of a mailbox goes with it: RENAME keeps
//! it (the store keys entries by mailbox, not by name), DELETE removes it, and RENAME of INBOX
//! copies INBOX's entries to the new mailbox, leaving INBOX its own (§4.1).

/// How far below a named entry GETMETADATA looks (RFC 5464 §4.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Depth {
    /// The entry itself.
    Zero,
    /// And its children.
    One,
    /// And everything below it.
    Infinity,
}

/// The longest entry name kept: far beyond any registered name, short enough that a thousand
/// of them cost little.
pub const MAX_NAME: usize = 1024;

/// An entry name as a client sent it, checked (RFC 5464 §3.2) and lower-cased, as names are
/// case-insensitive. Only `/private/...` and `/shared/...` names can hold values; a bare
/// `/private` or `/shared` can only be asked for with a depth.
pub fn entry_name(raw: &[u8]) -> Result<String, &'static str> {
    if raw.len() > MAX_NAME {
        return Err("Entry name too long.");
    }
    if raw.first() != Some(&b'/') {
        return Err("Entry name must begin with /.");
    }
    if raw.len() > 1 && raw.ends_with(b"/") {
        return Err("Entry name must not end with /.");
    }
    if raw.windows(2).any(|w| w == b"//") {
        return Err("Entry name must not contain //.");
    }
    if raw.iter().any(|&b| b == b'*' || b == b'%') {
        return Err("Entry name must not contain * or %.");
    }
    if raw.iter().any(|b| !(0x20..0x7f).contains(b)) {
        return Err("Entry name must be printable ASCII.");
    }
    let name = String::from_utf8_lossy(raw).to_ascii_lowercase();
    if !(scope(&name, "/private") || scope(&name, "/shared")) {
        return Err("Entry name must begin with /private or /shared.");
    }
    Ok(name)
}

/// Whether `name` is `root` or lies below it.
fn scope(name: &str, root: &str) -> bool {
    name.strip_prefix(root)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether a name can hold a value: one component below `/private` or `/shared` at least.
pub fn settable(name: &str) -> bool {
    name != "/private" && name != "/shared"
}

/// Whether entry `name` answers a GETMETADATA of `root` with `depth` (§4.2.2: DEPTH 1 of
/// `/a` is `/a` and `/a/b`, not `/a/b/c`).
pub fn within(root: &str, name: &str, depth: Depth) -> bool {
    if name == root {
        return true;
    }
    let Some(rest) = name.strip_prefix(root).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    match depth {
        Depth::Zero => false,
        Depth::One => !rest.contains('/'),
        Depth::Infinity => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_lower_cased() {
        assert_eq!(
            entry_name(b"/Private/Comment"),
            Ok("/private/comment".into())
        );
        assert_eq!(entry_name(b"/shared"), Ok("/shared".into()));
        for bad in [
            &b"private/comment"[..],
            b"/private/",
            b"/private//x",
            b"/private/a*b",
            b"/private/a%",
            b"/private/\x01",
            b"/privatex/a",
            b"/foo",
            b"/",
        ] {
            assert!(entry_name(bad).is_err(), "{bad:?}");
        }
        let long = format!("/private/{}", "a".repeat(MAX_NAME));
        assert!(entry_name(long.as_bytes()).is_err());
    }

    #[test]
    fn depth_follows_section_4_2_2() {
        assert!(within("/a", "/a", Depth::Zero));
        assert!(!within("/a", "/a/b", Depth::Zero));
        assert!(within("/a", "/a/b", Depth::One));
        assert!(!within("/a", "/a/b/c", Depth::One));
        assert!(within("/a", "/a/b/c", Depth::Infinity));
        assert!(!within("/a", "/ab", Depth::Infinity));
        assert!(!settable("/private") && settable("/private/x"));
    }
}
