//! The core stays sans-IO: no dependency brings a runtime, sockets or files in, and no source
//! file under `core/src` reaches for them itself.
//!
//! Clippy's `disallowed-methods` already rejects clock reads by path; this guards what it
//! cannot see: dependencies, imports, and async code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Crates that do I/O, run an event loop, or exist to serve async code.
fn forbidden_crate(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "smol",
        "tokio",
        "mio",
        "rusqlite",
        "libsqlite3-sys",
        "socket2",
        "polling",
        "blocking",
        "rustix",
        "nix",
        "signal-hook",
    ];
    const PREFIXES: &[&str] = &["async-", "futures", "tokio-", "rustls", "smol-"];
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The cargo that runs this test, so the toolchain matches.
fn cargo() -> String {
    option_env!("CARGO")
        .map(str::to_string)
        .or_else(|| std::env::var("CARGO").ok())
        .unwrap_or_else(|| "cargo".to_string())
}

/// Runs `cargo args…` in the workspace; a cargo stuck on a lock or the network fails the test
/// after a while instead of hanging it.
fn run_cargo(args: &[&str]) -> String {
    let mut child = Command::new(cargo())
        .args(args)
        .current_dir(WORKSPACE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained on threads so a full pipe cannot stall cargo while we wait for it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).map(|_| text)
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let mut waited = Duration::ZERO;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if waited > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("cargo {args:?} did not finish in two minutes");
        }
        thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    };
    let stdout = stdout.join().unwrap().unwrap();
    let stderr = stderr.join().unwrap().unwrap();
    assert!(
        status.success(),
        "cargo {args:?} failed: {status}\n{stderr}"
    );
    stdout
}

#[test]
fn normal_and_build_dependencies_do_no_io() {
    let tree = run_cargo(&[
        "tree",
        "-p",
        "tern-core",
        "-e",
        "normal,build",
        "--prefix",
        "none",
    ]);
    assert!(
        tree.starts_with("tern-core "),
        "unexpected cargo tree output:\n{tree}"
    );
    // A crate reached by several paths is listed once.
    let offenders: BTreeSet<&str> = tree
        .lines()
        .map(|line| line.trim_end_matches(" (*)"))
        .filter(|line| line.split_whitespace().next().is_some_and(forbidden_crate))
        .collect();
    assert!(
        offenders.is_empty(),
        "tern-core must stay sans-IO, but its dependencies include:\n{}",
        offenders.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn crate_filter_knows_the_usual_suspects() {
    for name in [
        "smol",
        "async-io",
        "futures-lite",
        "tokio",
        "mio",
        "rustls-pemfile",
    ] {
        assert!(forbidden_crate(name), "{name}");
    }
    for name in ["bytes", "nom", "base64", "thiserror", "memchr", "smolstr"] {
        assert!(!forbidden_crate(name), "{name}");
    }
}

/// What core code must not mention, and why.
const BANNED: &[(&str, &str)] = &[
    ("std::net", "sockets"),
    ("std::fs", "files"),
    ("std::thread", "threads"),
    ("std::process", "processes"),
    ("Instant::now", "a clock read"),
    ("SystemTime::now", "a clock read"),
    ("tokio", "an async runtime"),
    ("async fn", "async code"),
    ("async move", "async code"),
    (".await", "async code"),
];

/// Modules of `std` that `use std::{…}` must not name.
const BANNED_STD_MODULES: &[&str] = &["net", "fs", "thread", "process"];

#[derive(Debug, PartialEq, Eq)]
struct Finding {
    line: usize,
    pattern: String,
}

/// Finds banned patterns in one source file. Comments are skipped (the crate docs may say
/// what the core avoids), and so are `#[cfg(test)]` items: unit tests run on a real clock.
fn scan(source: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut lines = source.lines().enumerate();
    let mut use_statement: Option<(usize, String)> = None;
    while let Some((index, line)) = lines.next() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        if code == "#[cfg(test)]" {
            skip_item(&mut lines, indentation(line));
            continue;
        }
        for (pattern, _) in BANNED {
            if line.contains(pattern) {
                findings.push(Finding {
                    line: index + 1,
                    pattern: pattern.to_string(),
                });
            }
        }
        let starts_use = code.starts_with("use ")
            || code.starts_with("pub use ")
            || (code.starts_with("pub(") && code.contains(") use "));
        if use_statement.is_none() && starts_use {
            use_statement = Some((index, String::new()));
        }
        if let Some((start, text)) = &mut use_statement {
            text.extend(code.chars().filter(|c| !c.is_whitespace()));
            if code.ends_with(';') {
                for module in grouped_std_modules(text) {
                    findings.push(Finding {
                        line: *start + 1,
                        pattern: format!("std::{module}"),
                    });
                }
                use_statement = None;
            }
        }
    }
    findings
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Skips the item after a `#[cfg(test)]` line. The tree is rustfmt-formatted, which puts a
/// block item's closing brace alone on a line at the item's own indentation.
fn skip_item<'a>(lines: &mut impl Iterator<Item = (usize, &'a str)>, indent: usize) {
    let Some((_, first)) = lines.next() else {
        return;
    };
    if !first.trim_end().ends_with('{') {
        return;
    }
    let close = format!("{}}}", " ".repeat(indent));
    for (_, line) in lines {
        if line.trim_end() == close {
            return;
        }
    }
}

/// The banned modules a whitespace-free `use` statement imports through `std::{…}`.
fn grouped_std_modules(statement: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    let mut rest = statement;
    while let Some(at) = rest.find("std::{") {
        rest = &rest[at + "std::{".len()..];
        let mut depth = 0;
        let mut item_start = true;
        for (i, c) in rest.char_indices() {
            if depth == 0 && item_start {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.extend(BANNED_STD_MODULES.iter().filter(|m| **m == name));
                item_start = false;
            }
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                _ => {}
            }
        }
    }
    found
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

#[test]
fn core_sources_do_no_io() {
    let mut files = Vec::new();
    rust_files(Path::new(SOURCES), &mut files);
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("session.rs")),
        "no sources found under {SOURCES}"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("/"));
    let mut report = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(root).unwrap_or(file).display();
        for finding in scan(&source) {
            let why = BANNED
                .iter()
                .find(|(p, _)| *p == finding.pattern)
                .map_or("I/O", |(_, why)| why);
            let text = source.lines().nth(finding.line - 1).unwrap_or("").trim();
            report.push(format!(
                "{shown}:{}: `{}` ({why}): {text}",
                finding.line, finding.pattern
            ));
        }
    }
    assert!(
        report.is_empty(),
        "tern-core must stay sans-IO:\n{}",
        report.join("\n")
    );
}

#[test]
fn scanner_finds_what_it_should_and_only_that() {
    let source = "\
//! Mentions std::net in a comment only.
use std::{
    collections::HashMap,
    fs::File,
    io,
};
use std::{net, time::Instant};
pub(crate) use std::thread::sleep;

fn f() {
    let now = Instant::now(); // with a trailing comment
}

#[cfg(test)]
mod tests {
    fn g() {
        let t0 = std::time::Instant::now();
    }
}

async fn h() {}
";
    let found: Vec<(usize, String)> = scan(source)
        .into_iter()
        .map(|f| (f.line, f.pattern))
        .collect();
    let expected = [
        (2, "std::fs"),
        (7, "std::net"),
        (8, "std::thread"),
        (11, "Instant::now"),
        (21, "async fn"),
    ]
    .map(|(line, pattern)| (line, pattern.to_string()));
    assert_eq!(found, expected);
}
