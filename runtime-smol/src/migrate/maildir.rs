//! Maildir and Maildir++ as Dovecot writes them: flags in the file name's `:2,` info,
//! keywords as lowercase letters named in `dovecot-keywords`, folders as `.a.b` directories
//! (modified UTF-7 names, `.` between levels) beside the INBOX's `cur/` and `new/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tern_core::mail::flags::Flag;
use tern_core::mail::mailbox_name::{self, DELIMITER};

/// What Dovecot's `P` (passed: resent, forwarded or bounced) becomes: Dovecot has no such
/// system flag; RFC 5788's `$Forwarded` is the keyword clients use for it.
pub const PASSED_KEYWORD: &[u8] = b"$Forwarded";

/// The letters Maildir names keywords by: `a` is keyword 0 of `dovecot-keywords`.
pub const KEYWORD_LETTERS: usize = 26;

/// A file name split at its info: the base (what `dovecot-uidlist` names) and the flags.
pub fn split_name(name: &str) -> (&str, Option<&str>) {
    match name.split_once(":2,") {
        Some((base, flags)) => (base, Some(flags)),
        // Files in new/ have no info yet; `:1,` (experimental) carries no flags.
        None => (name.split_once(':').map_or(name, |(b, _)| b), None),
    }
}

/// The flags of a `:2,` info. Letters this format does not define, and lowercase letters
/// `keywords` does not name, are left out.
pub fn flags(info: &str, keywords: &Keywords) -> Vec<Flag> {
    let mut out = Vec::new();
    for c in info.chars() {
        let flag = match c {
            'D' => Flag::Draft,
            'F' => Flag::Flagged,
            'P' => Flag::Keyword(Bytes::from_static(PASSED_KEYWORD)),
            'R' => Flag::Answered,
            'S' => Flag::Seen,
            'T' => Flag::Deleted,
            'a'..='z' => match keywords.name((c as u8 - b'a') as usize) {
                Some(name) => Flag::Keyword(Bytes::copy_from_slice(name.as_bytes())),
                None => continue,
            },
            _ => continue,
        };
        if !out.contains(&flag) {
            out.push(flag);
        }
    }
    out
}

/// The `:2,` info for flags (letters in ASCII order, as Maildir asks), with keyword letters
/// given by `letter`; keywords without a letter are left out.
pub fn info(flags: &[Flag], mut letter: impl FnMut(&[u8]) -> Option<char>) -> String {
    let mut letters: Vec<char> = flags
        .iter()
        .filter_map(|f| match f {
            Flag::Draft => Some('D'),
            Flag::Flagged => Some('F'),
            Flag::Answered => Some('R'),
            Flag::Seen => Some('S'),
            Flag::Deleted => Some('T'),
            Flag::Keyword(k) if k.eq_ignore_ascii_case(PASSED_KEYWORD) => Some('P'),
            Flag::Keyword(k) => letter(k),
            _ => None,
        })
        .collect();
    letters.sort_unstable();
    letters.dedup();
    letters.into_iter().collect()
}

/// `dovecot-keywords`: lines `<index> <name>`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Keywords {
    names: BTreeMap<usize, String>,
}

impl Keywords {
    /// Parses the file; malformed lines and indexes past `z` are skipped.
    pub fn parse(text: &str) -> Keywords {
        let names = text
            .lines()
            .filter_map(|l| {
                let (n, name) = l.split_once(' ')?;
                let n: usize = n.parse().ok()?;
                let name = name.trim_end_matches('\r');
                (n < KEYWORD_LETTERS && is_atom(name)).then(|| (n, name.to_string()))
            })
            .collect();
        Keywords { names }
    }

    /// Reads `dir/dovecot-keywords` (its first 64 KiB: 26 names); none when it is missing.
    pub fn read(dir: &Path) -> std::io::Result<Keywords> {
        use std::io::Read;
        let mut bytes = Vec::new();
        let read = std::fs::File::open(dir.join("dovecot-keywords"))
            .and_then(|f| f.take(64 << 10).read_to_end(&mut bytes));
        match read {
            Ok(_) => Ok(Keywords::parse(&String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keywords::default()),
            Err(e) => Err(e),
        }
    }

    /// The keyword of letter number `n`.
    pub fn name(&self, n: usize) -> Option<&str> {
        self.names.get(&n).map(String::as_str)
    }

    /// The file's text for keywords in letter order.
    pub fn write(names: &[String]) -> String {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{i} {n}\n"))
            .collect()
    }
}

/// Whether a keyword is an IMAP atom (RFC 9051 `flag-keyword`): one that FETCH FLAGS can
/// show. Dovecot writes only such; anything else in the file is left out.
pub fn is_atom(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// One folder of a Maildir++ tree.
#[derive(Debug, PartialEq, Eq)]
pub struct Folder {
    /// tern's name for it (`INBOX`, `a/b`).
    pub name: String,
    /// The directory holding its `cur/` and `new/`.
    pub dir: PathBuf,
}

/// The mailbox name of a Maildir++ folder directory name (`.a.b`, modified UTF-7).
pub fn folder_name(dir_name: &str) -> Option<String> {
    let rest = dir_name.strip_prefix('.')?;
    if rest.is_empty() || rest == "." {
        return None;
    }
    let decoded = mailbox_name::decode_mutf7(rest.as_bytes()).ok()?;
    let name: String = decoded
        .split('.')
        .collect::<Vec<_>>()
        .join(&DELIMITER.to_string());
    mailbox_name::canonical(name).ok()
}

/// The Maildir++ directory name of a mailbox (`a/b` → `.a.b`); `None` for INBOX (the root)
/// and for names that cannot be one (a `.` inside a level).
pub fn folder_dir_name(name: &str) -> Option<String> {
    if name == "INBOX" || name.split(DELIMITER).any(|l| l.contains('.')) {
        return None;
    }
    let dotted = name.replace(DELIMITER, ".");
    Some(format!(".{}", mailbox_name::encode_mutf7(&dotted)))
}

/// Whether `dir` is a Maildir (has `cur/` or `new/`).
pub fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() || dir.join("new").is_dir()
}

/// The folders of a Maildir++ tree rooted at `root`: INBOX first, then by name. Dovecot's
/// trash of deleted folders (`DOVECOT-TRASHED`) and names that are not valid are skipped
/// and returned in the second list.
pub fn folders(root: &Path) -> std::io::Result<(Vec<Folder>, Vec<String>)> {
    let mut found = vec![Folder {
        name: "INBOX".into(),
        dir: root.to_path_buf(),
    }];
    let mut skipped = Vec::new();
    let mut others = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(dir_name) = file_name.to_str() else {
            skipped.push(file_name.to_string_lossy().into_owned());
            continue;
        };
        if !dir_name.starts_with('.') || !is_maildir(&entry.path()) {
            continue;
        }
        match folder_name(dir_name) {
            Some(name) if !name.contains("DOVECOT-TRASHED") && name != "INBOX" => {
                others.push(Folder {
                    name,
                    dir: entry.path(),
                })
            }
            _ => skipped.push(dir_name.to_string()),
        }
    }
    others.sort_by(|a, b| a.name.cmp(&b.name));
    found.extend(others);
    Ok((found, skipped))
}

/// The message files of one folder: `cur/` then `new/`, each by name.
pub fn message_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let path = dir.join(sub);
        let mut names = Vec::new();
        match std::fs::read_dir(&path) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry?;
                    if entry.file_type()?.is_file()
                        && !entry.file_name().to_string_lossy().starts_with('.')
                    {
                        names.push(entry.path());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        names.sort();
        out.extend(names);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn info_suffixes_give_flags() {
        let kw = Keywords::parse("0 $Label1\n1 Junk\n3 far\n");
        assert_eq!(
            split_name("123.M1P2.host,S=10:2,FSab"),
            ("123.M1P2.host,S=10", Some("FSab"))
        );
        assert_eq!(split_name("123.M1P2.host"), ("123.M1P2.host", None));
        let f = flags("DFPRSTabcd", &kw);
        assert_eq!(
            f,
            vec![
                Flag::Draft,
                Flag::Flagged,
                Flag::Keyword(Bytes::from_static(b"$Forwarded")),
                Flag::Answered,
                Flag::Seen,
                Flag::Deleted,
                Flag::Keyword(Bytes::from_static(b"$Label1")),
                Flag::Keyword(Bytes::from_static(b"Junk")),
                Flag::Keyword(Bytes::from_static(b"far")),
            ]
        );
        // Unknown letters and unnamed keyword letters are left out.
        assert_eq!(flags("Xz", &kw), vec![]);
    }

    #[test]
    fn flags_give_sorted_info() {
        let f = vec![
            Flag::Seen,
            Flag::Keyword(Bytes::from_static(b"Junk")),
            Flag::Draft,
            Flag::Keyword(Bytes::from_static(b"$forwarded")),
            Flag::Keyword(Bytes::from_static(b"unnamed")),
        ];
        let info = info(&f, |k| (k == b"Junk").then_some('b'));
        assert_eq!(info, "DPSb");
    }

    #[test]
    fn dovecot_keywords_parse() {
        let kw = Keywords::parse("0 $Label1\r\n1 Junk\nbad line\n30 toofar\n2 \n3 a(b\n4 \\Seen\n");
        assert_eq!(kw.name(0), Some("$Label1"));
        assert_eq!(kw.name(1), Some("Junk"));
        assert_eq!(kw.name(2), None);
        assert_eq!(kw.name(30), None);
        assert_eq!((kw.name(3), kw.name(4)), (None, None), "not atoms");
        assert_eq!(Keywords::write(&["a".into(), "b".into()]), "0 a\n1 b\n");
    }

    #[test]
    fn folder_names_map_both_ways() {
        assert_eq!(folder_name(".Sent").as_deref(), Some("Sent"));
        assert_eq!(folder_name(".a.b").as_deref(), Some("a/b"));
        assert_eq!(folder_name(".Entw&APw-rfe").as_deref(), Some("Entwürfe"));
        assert_eq!(folder_name("."), None);
        assert_eq!(folder_name(".."), None);
        assert_eq!(folder_name(".a..b"), None);
        assert_eq!(folder_dir_name("a/b").as_deref(), Some(".a.b"));
        assert_eq!(
            folder_dir_name("Entwürfe").as_deref(),
            Some(".Entw&APw-rfe")
        );
        assert_eq!(folder_dir_name("INBOX"), None);
        assert_eq!(folder_dir_name("a.b"), None);
    }

    #[test]
    fn a_tree_lists_its_folders() {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "cur",
            "new",
            ".b/cur",
            ".a.x/new",
            ".DOVECOT-TRASHED/cur",
            ".notmail",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("cur/2:2,S"), "x").unwrap();
        std::fs::write(dir.path().join("cur/1:2,"), "x").unwrap();
        std::fs::write(dir.path().join("new/0"), "x").unwrap();
        let (folders, skipped) = folders(dir.path()).unwrap();
        let names: Vec<&str> = folders.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "a/x", "b"]);
        assert_eq!(skipped, [".DOVECOT-TRASHED"]);
        let files = message_files(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["1:2,", "2:2,S", "0"]);
    }
}
