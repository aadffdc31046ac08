//! The command line: starter config, check-config, hash-password, and one-line errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{config_text, BIN};

fn run(args: &[&str], cwd: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn check(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), text).unwrap();
    let (code, _, err) = run(&["check-config", "t.toml"], dir.path());
    (code, err)
}

/// An error is one line, names the place, and exits non-zero without a panic.
fn assert_one_line_error(text: &str, expect: &[&str]) {
    let (code, err) = check(text);
    assert_ne!(code, 0, "accepted: {text}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("tern: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for e in expect {
        assert!(err.contains(e), "{err:?} lacks {e:?}");
    }
}

#[test]
fn check_config_accepts_a_good_file() {
    let (code, err) = check(&config_text(""));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn bad_configs_give_one_line_errors() {
    let good = config_text("");
    assert_one_line_error(&format!("{good}\n[server]\nbogus = 1\n"), &["t.toml:"]);
    assert_one_line_error(
        &good.replacen("[storage]", "[storage]\nunknown-key = 1", 1),
        &["t.toml:2:1", "unknown field `unknown-key`"],
    );
    assert_one_line_error(
        &good.replacen("path = \"data\"", "path = 7", 1),
        &["t.toml:2:8", "invalid type"],
    );
    assert_one_line_error(
        &good.replacen("protocol = \"imap\"", "protocol = \"smtp\"", 1),
        &["unknown variant `smtp`"],
    );
    assert_one_line_error(
        &good.replacen("127.0.0.1:0", "127.0.0.1", 1),
        &["socket address"],
    );
    assert_one_line_error("[storage\npath = 1", &["t.toml:1:"]);
    assert_one_line_error(
        &good.replace("{plain}wonderland", "md5:abc"),
        &["directory.users[0].secret"],
    );
    assert_one_line_error(
        &format!("{good}\n[server.tls]\ncertificate = \"missing.pem\"\nprivate-key = \"k.pem\"\n"),
        &["missing.pem"],
    );
    let (code, _, err) = run(
        &["check-config", "nope.toml"],
        std::env::temp_dir().as_path(),
    );
    assert_ne!(code, 0);
    assert!(
        err.starts_with("tern: cannot read config file nope.toml"),
        "{err}"
    );
    let (code, _, err) = run(&["--frobnicate"], std::env::temp_dir().as_path());
    assert_ne!(code, 0);
    assert!(err.starts_with("tern: usage:"), "{err}");
}

#[test]
fn a_busy_port_is_a_one_line_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text("").replacen("127.0.0.1:0", &format!("127.0.0.1:{port}"), 1);
    std::fs::write(dir.path().join("t.toml"), text).unwrap();
    let (code, _, err) = run(&["--config", "t.toml"], dir.path());
    assert_ne!(code, 0);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "tern: listener \"imap\": cannot listen on 127.0.0.1:{port}:"
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn hash_password_prints_a_verifiable_argon2id_hash() {
    let hash = common::hash_password("correct horse\n");
    let hash = hash.as_str();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    // The hash goes into a config, and that config authenticates the password.
    let text = config_text("").replace("{plain}wonderland", hash);
    let (code, err) = check(&text);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn first_start_writes_a_starter_config_and_prints_the_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut password = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        if let Some(p) = line.strip_prefix("Password: ") {
            password = Some(p.to_string());
            break;
        }
    }
    // The default ports may be taken on a developer's machine; what matters here is the file.
    let _ = child.kill();
    let _ = child.wait();
    let password = password.expect("no password printed");
    assert_eq!(password.len(), 20);
    let text = std::fs::read_to_string(dir.path().join("tern.toml")).unwrap();
    assert!(text.contains("name = \"demo\""));
    assert!(text.contains("secret = \"$argon2id$"));
    assert!(!text.contains(&password), "the password itself was stored");
    for port in ["1143", "1993", "1110", "1995"] {
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{port}");
    }
    // A second start reuses the file instead of minting a new password.
    let (code, _, err) = run(&["check-config", "tern.toml"], dir.path());
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_readme_reference_config_is_valid() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("```toml\n[storage]")
        .expect("README has the reference config");
    let body = &readme[start + "```toml\n".len()..];
    let text = &body[..body.find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(tls.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(tls.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    std::fs::write(dir.path().join("t.toml"), text).unwrap();
    let (code, _, err) = run(&["check-config", "t.toml"], dir.path());
    assert_eq!(code, 0, "{err}");
}
