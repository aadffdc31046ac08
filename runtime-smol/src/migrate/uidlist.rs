//! Dovecot's `dovecot-uidlist`: a folder's UIDVALIDITY and next UID, and each message's UID
//! by file name base.
//!
//! Version 3 (Dovecot 1.1 and later): a header `3 V<uidvalidity> N<nextuid> G<guid>` (fields
//! in any order, others possible), then lines `<uid> [<ext>…] :<base>`, extension fields such
//! as `W<vsize>`, `S<size>`, `G<guid>` before the colon. Version 1: `1 <uidvalidity>
//! <nextuid>`, then `<uid> <base>`.

use std::collections::HashMap;

use tern_core::store::Uid;

/// A parsed `dovecot-uidlist`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UidList {
    /// The folder's UIDVALIDITY.
    pub uid_validity: u32,
    /// The UID Dovecot gives the next message.
    pub next_uid: Uid,
    /// UID by file name base (the name before `:2,`).
    pub uids: HashMap<String, Uid>,
    /// Line numbers (1-based) of lines that could not be read.
    pub bad_lines: Vec<usize>,
}

/// Why a uidlist cannot be used at all.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UidListError {
    /// The header is missing or unreadable.
    #[error("dovecot-uidlist: unreadable header")]
    Header,
    /// A version this reader does not know.
    #[error("dovecot-uidlist: unknown version {0}")]
    Version(String),
}

impl UidList {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<UidList, UidListError> {
        let mut lines = text.lines();
        let header = lines.next().ok_or(UidListError::Header)?;
        let mut fields = header.split_ascii_whitespace();
        let version = fields.next().ok_or(UidListError::Header)?;
        let mut list = UidList::default();
        match version {
            "1" => {
                list.uid_validity = parse_num(fields.next())?;
                list.next_uid = parse_num(fields.next())?;
            }
            "3" => {
                for f in fields {
                    let value = f.get(1..).unwrap_or_default();
                    match f.as_bytes().first() {
                        Some(b'V') => list.uid_validity = parse_num(Some(value))?,
                        Some(b'N') => list.next_uid = parse_num(Some(value))?,
                        _ => {}
                    }
                }
            }
            other => return Err(UidListError::Version(other.chars().take(16).collect())),
        }
        if list.uid_validity == 0 {
            return Err(UidListError::Header);
        }
        for (i, line) in lines.enumerate() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let parsed = if version == "3" {
                line.split_once(" :")
                    .or_else(|| line.split_once(':').filter(|(u, _)| !u.contains(' ')))
                    .and_then(|(head, base)| {
                        let uid = head.split_ascii_whitespace().next()?.parse().ok()?;
                        Some((uid, base))
                    })
            } else {
                line.split_once(' ')
                    .and_then(|(uid, base)| Some((uid.parse().ok()?, base)))
            };
            match parsed {
                Some((uid, base)) if uid > 0 && !base.is_empty() => {
                    // A v1 line may carry the whole name; the key is its base.
                    let base = super::maildir::split_name(base).0;
                    list.uids.insert(base.to_string(), uid);
                }
                _ => list.bad_lines.push(i + 2),
            }
        }
        Ok(list)
    }

    /// The text of a version 3 file for these UIDs (ascending) and bases.
    pub fn write(uid_validity: u32, next_uid: Uid, entries: &[(Uid, String)]) -> String {
        let mut out = format!("3 V{uid_validity} N{next_uid}\n");
        for (uid, base) in entries {
            out.push_str(&format!("{uid} :{base}\n"));
        }
        out
    }
}

fn parse_num(f: Option<&str>) -> Result<u32, UidListError> {
    f.and_then(|v| v.parse().ok()).ok_or(UidListError::Header)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn version_3_with_extension_fields() {
        let text = "3 V1733600000 N12 G0c1d2e3f4a5b6c7d8e9f00112233445\n\
1 :1733600001.M1P2.host,S=100,W=104\n\
4 W2048 S2000 G00112233445566778899aabbccddeeff :1733600002.M3P4.host,S=2000,W=2048\n\
junk line\n\
9 :1733600003.M5P6.host\n";
        let list = UidList::parse(text).unwrap();
        assert_eq!((list.uid_validity, list.next_uid), (1_733_600_000, 12));
        assert_eq!(list.uids["1733600001.M1P2.host,S=100,W=104"], 1);
        assert_eq!(list.uids["1733600002.M3P4.host,S=2000,W=2048"], 4);
        assert_eq!(list.uids["1733600003.M5P6.host"], 9);
        assert_eq!(list.bad_lines, [4]);
    }

    #[test]
    fn version_1() {
        let list = UidList::parse("1 1000 5\n3 1000.a.host:2,S\n").unwrap();
        assert_eq!((list.uid_validity, list.next_uid), (1000, 5));
        assert_eq!(list.uids["1000.a.host"], 3);
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(UidList::parse(""), Err(UidListError::Header));
        assert_eq!(UidList::parse("3 N5\n"), Err(UidListError::Header));
        assert_eq!(UidList::parse("3 Vx N5\n"), Err(UidListError::Header));
        assert!(matches!(
            UidList::parse("2 1 2\n"),
            Err(UidListError::Version(_))
        ));
    }

    #[test]
    fn written_lists_parse_back() {
        let text = UidList::write(7, 10, &[(2, "a,S=1".into()), (9, "b".into())]);
        assert_eq!(text, "3 V7 N10\n2 :a,S=1\n9 :b\n");
        let list = UidList::parse(&text).unwrap();
        assert_eq!(
            (list.uids["a,S=1"], list.uids["b"], list.next_uid),
            (2, 9, 10)
        );
    }
}
