//! The layers do not lean on each other: the mail model (`core/src/mail`, the domain: flags,
//! dates, sections, structure) and the storage contract (`core/src/store`) import nothing from
//! the protocols (`imap`, `pop3`, `session`), from SASL or from the directory (logins), and
//! the SQLite store imports nothing from `tern_core::imap`, `sasl` or `directory`. A backend
//! depends on the domain and the contract only, never on IMAP grammar, and never sees a login:
//! `StorageOp` has no authentication request to answer.
//!
//! A source scan, like `no_io_dependencies.rs`: it reads every line outside comments, tests
//! included (a store's tests build values from the domain too).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

const CORE: &str = env!("CARGO_MANIFEST_DIR");

/// Modules of `tern-core` the domain and the contract must not name.
const CORE_PROTOCOL_MODULES: &[&str] = &["imap", "pop3", "sasl", "session", "directory"];

/// Modules of `tern-core` a storage backend must not name.
const BACKEND_FORBIDDEN: &[&str] = &["imap", "sasl", "directory"];

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

fn workspace() -> &'static Path {
    Path::new(CORE).parent().unwrap()
}

/// Every source file under `dirs` (relative to the workspace), with its path as shown.
fn sources_under(dirs: &[&str]) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for dir in dirs {
        let before = files.len();
        rust_files(&workspace().join(dir), &mut files);
        assert!(files.len() > before, "no sources found under {dir}");
    }
    files.sort();
    files
        .iter()
        .map(|file| {
            let shown = file.strip_prefix(workspace()).unwrap_or(file);
            let shown = shown.to_string_lossy().into_owned();
            (shown, std::fs::read_to_string(file).unwrap())
        })
        .collect()
}

/// Scans every source file under `dirs` and returns the findings as `file:line: path`.
fn findings_under(dirs: &[&str], root: &str, modules: &[&str]) -> Vec<String> {
    let mut report = Vec::new();
    for (shown, source) in sources_under(dirs) {
        for finding in scan(&source, root, modules) {
            let text = source.lines().nth(finding.line - 1).unwrap_or("").trim();
            report.push(format!(
                "{shown}:{}: `{}`: {text}",
                finding.line, finding.path
            ));
        }
    }
    report
}

/// The directory's request and reply types, which the crate root re-exports: a backend
/// naming one of them (as `tern_core::AuthOutcome`, say) would be answering logins.
const DIRECTORY_TYPES: &[&str] = &[
    "AuthOutcome",
    "DirectoryOp",
    "DirectoryReply",
    "DirectoryRequest",
    "DirectoryResult",
    "DirectoryError",
    "MemDirectory",
];

/// Lines outside comments under `dirs` that name one of the directory's types.
fn directory_types_under(dirs: &[&str]) -> Vec<String> {
    let mut report = Vec::new();
    for (shown, source) in sources_under(dirs) {
        for (index, line) in source.lines().enumerate() {
            let code = strip_comment(line);
            let named = code
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .find(|word| DIRECTORY_TYPES.contains(word));
            if let Some(name) = named {
                report.push(format!("{shown}:{}: `{name}`: {}", index + 1, line.trim()));
            }
        }
    }
    report
}

#[test]
fn domain_and_contract_import_no_protocol() {
    let report = findings_under(
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
}

#[test]
fn sqlite_store_imports_no_imap_sasl_or_directory() {
    let report = findings_under(&["store-sqlite/src"], "tern_core", BACKEND_FORBIDDEN);
    assert!(
        report.is_empty(),
        "the SQLite store must depend on the domain and the contract, not on IMAP, SASL or \
         the directory:\n{}",
        report.join("\n")
    );
}

/// A `MailStore` never sees an authentication request: `StorageOp` has none (the directory
/// answers logins), and neither the contract nor a backend names the directory's types.
#[test]
fn stores_never_see_a_login() {
    let report = directory_types_under(&["core/src/mail", "core/src/store", "store-sqlite/src"]);
    assert!(
        report.is_empty(),
        "storage must not answer logins; the directory does:\n{}",
        report.join("\n")
    );
    // The scanner itself finds what it should.
    let dir = std::env::temp_dir().join(format!("tern-layering-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("x.rs"),
        "// AuthOutcome in a comment is fine\nuse tern_core::{AuthOutcome, Store};\n",
    )
    .unwrap();
    let shown = dir.to_string_lossy().into_owned();
    let found = directory_types_under(&[shown.as_str()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with(":2: `AuthOutcome`: use tern_core::{AuthOutcome, Store};"));
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
