//! The layers do not lean on each other: the mail model (`core/src/mail`, the domain: flags,
//! dates, sections, structure) and the storage contract (`core/src/store`) import nothing from
//! the protocols (`imap`, `pop3`, `session`) or from SASL, and the SQLite store imports
//! nothing from `tern_core::imap`. A backend depends on the domain and the contract only,
//! never on IMAP grammar.
//!
//! A source scan, like `no_io_dependencies.rs`: it reads every line outside comments, tests
//! included (a store's tests build values from the domain too).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

const CORE: &str = env!("CARGO_MANIFEST_DIR");

/// Modules of `tern-core` the domain and the contract must not name.
const CORE_PROTOCOL_MODULES: &[&str] = &["imap", "pop3", "sasl", "session"];

/// Known uses that another change removes: SCRAM's stored keys and nonce still travel in
/// `StorageReply::Scram` until authentication leaves `StorageOp`. Each entry is (file relative
/// to the workspace, the exact path used). An entry that no longer matches anything fails the
/// test, so the list only shrinks.
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[
    ("core/src/store/mod.rs", "crate::sasl::ScramCredentials"),
    ("core/src/store/mod.rs", "crate::sasl::ServerNonce"),
    ("core/src/store/mem.rs", "crate::sasl::ScramCredentials"),
    ("core/src/store/mem.rs", "crate::sasl::ServerNonce"),
];

#[derive(Debug, PartialEq, Eq)]
struct Finding {
    line: usize,
    /// The offending path as written, e.g. `crate::imap::types::Flag` or `crate::{imap`.
    path: String,
}

/// Finds every path in `source` that starts at `root` (`crate` or `tern_core`) and names one
/// of `modules`: plain paths anywhere in code (`root::imap::…`) and the top-level names of a
/// group (`use root::{imap::…, …}`, possibly spread over several lines). Comments are
/// skipped; the docs may well say what a layer avoids.
fn scan(source: &str, root: &str, modules: &[&str]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let plain = format!("{root}::");
    let group = format!("{root}::{{");
    // A `root::{` group being read: the line it started on and its text without whitespace.
    let mut open_group: Option<(usize, String)> = None;
    for (index, line) in source.lines().enumerate() {
        let code = strip_comment(line);
        if let Some((_, text)) = &mut open_group {
            text.extend(code.chars().filter(|c| !c.is_whitespace()));
        } else if let Some(at) = code.find(&group) {
            open_group = Some((
                index,
                code[at..].chars().filter(|c| !c.is_whitespace()).collect(),
            ));
        }
        let mut rest = code;
        while let Some(at) = rest.find(&plain) {
            let after = &rest[at + plain.len()..];
            let name = identifier(after);
            if modules.contains(&name) && preceded_by_boundary(rest, at) {
                let path: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                findings.push(Finding {
                    line: index + 1,
                    path: format!("{plain}{}", path.trim_end_matches(':')),
                });
            }
            rest = after;
        }
        if let Some((start, text)) = &open_group {
            if let Some(names) = group_names(&text[group.len()..]) {
                findings.extend(names.into_iter().filter(|n| modules.contains(n)).map(|n| {
                    Finding {
                        line: start + 1,
                        path: format!("{group}{n}"),
                    }
                }));
                open_group = None;
            }
        }
    }
    findings
}

/// The line without a trailing `//` comment (a `//` inside a string literal is rare enough in
/// these files to be read as a comment start; that only makes the scan see less).
fn strip_comment(line: &str) -> &str {
    line.find("//").map_or(line, |at| &line[..at])
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// `crate::` at `at` is a path's start, not the tail of a longer name such as `my_crate::`.
fn preceded_by_boundary(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
}

/// The top-level names of a whitespace-free group body (after the `{`), once its closing brace
/// has been read; `None` while it is still open.
fn group_names(body: &str) -> Option<Vec<&str>> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in body.char_indices() {
        if depth == 0 && item_start {
            names.push(identifier(&body[i..]));
            item_start = false;
        }
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(names),
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            _ => {}
        }
    }
    None
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// `path` is `item` or something inside it (`crate::sasl::ServerNonce::from_entropy`).
fn names(path: &str, item: &str) -> bool {
    path.strip_prefix(item)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

fn workspace() -> &'static Path {
    Path::new(CORE).parent().unwrap()
}

/// Scans every source file under `dirs` (relative to the workspace) and returns the findings
/// as `file:line: path`, known exceptions left out, plus the exceptions that matched.
fn findings_under(
    dirs: &[&str],
    root: &str,
    modules: &[&str],
) -> (Vec<String>, Vec<(&'static str, &'static str)>) {
    let mut files = Vec::new();
    for dir in dirs {
        let before = files.len();
        rust_files(&workspace().join(dir), &mut files);
        assert!(files.len() > before, "no sources found under {dir}");
    }
    files.sort();
    let mut report = Vec::new();
    let mut used = Vec::new();
    for file in &files {
        let shown = file.strip_prefix(workspace()).unwrap().to_string_lossy();
        let source = std::fs::read_to_string(file).unwrap();
        for finding in scan(&source, root, modules) {
            let known = KNOWN_EXCEPTIONS
                .iter()
                .find(|(f, p)| *f == shown && names(&finding.path, p));
            if let Some(known) = known {
                used.push(*known);
                continue;
            }
            let text = source.lines().nth(finding.line - 1).unwrap_or("").trim();
            report.push(format!(
                "{shown}:{}: `{}`: {text}",
                finding.line, finding.path
            ));
        }
    }
    (report, used)
}

#[test]
fn domain_and_contract_import_no_protocol() {
    let (report, used) = findings_under(
        &["core/src/mail", "core/src/store"],
        "crate",
        CORE_PROTOCOL_MODULES,
    );
    assert!(
        report.is_empty(),
        "the mail model and the storage contract must depend on the domain only, not on a \
         protocol:\n{}",
        report.join("\n")
    );
    let stale: Vec<_> = KNOWN_EXCEPTIONS
        .iter()
        .filter(|e| !used.contains(e))
        .collect();
    assert!(
        stale.is_empty(),
        "these known exceptions are gone; remove them from KNOWN_EXCEPTIONS: {stale:?}"
    );
}

#[test]
fn sqlite_store_imports_no_imap() {
    let (report, _) = findings_under(&["store-sqlite/src"], "tern_core", &["imap"]);
    assert!(
        report.is_empty(),
        "the SQLite store must depend on the domain and the contract, not on IMAP:\n{}",
        report.join("\n")
    );
}

#[test]
fn scanner_finds_what_it_should_and_only_that() {
    let source = "\
//! Unlike crate::imap, this module stands alone.
use bytes::Bytes;
use crate::imap::types::{Date, Flag};
use crate::{
    mail::flags::Flags,
    imap::types::Section,
};
use crate::{store::Store, session};
use my_crate::imap::Thing;
use crate::imaps::Other;
use crate::mail::date::Date; // not crate::pop3

fn f() -> crate::sasl::ServerNonce {
    let x = crate::session::Session::new();
}
";
    let found: Vec<(usize, String)> = scan(source, "crate", CORE_PROTOCOL_MODULES)
        .into_iter()
        .map(|f| (f.line, f.path))
        .collect();
    let expected = [
        (3, "crate::imap::types"),
        (4, "crate::{imap"),
        (8, "crate::{session"),
        (13, "crate::sasl::ServerNonce"),
        (14, "crate::session::Session::new"),
    ]
    .map(|(line, path)| (line, path.to_string()));
    assert_eq!(found, expected);
}
