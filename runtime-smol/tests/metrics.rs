//! Issue 15, operator metrics: a `protocol = "metrics"` listener serves what the server
//! counted in the OpenMetrics text format, checked with the Prometheus project's own parser
//! (Python's `prometheus_client`), and every command's answer is logged with its result.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{Client, Server};

/// Fetches `/metrics` and parses it with `prometheus_client`'s OpenMetrics parser; one line
/// per sample, `name{label=value,...} value`, labels sorted. `None` when the parser is not
/// installed.
fn scrape(port: u16) -> Option<HashMap<String, f64>> {
    let script = r#"
import sys, urllib.request
try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError:
    print("NO-PARSER")
    sys.exit(0)
with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10) as r:
    assert r.status == 200, r.status
    assert r.headers["Content-Type"].startswith("application/openmetrics-text"), r.headers
    text = r.read().decode()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %r" % (s.name, labels, s.value))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "scrape failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.trim() == "NO-PARSER" {
        return None;
    }
    Some(
        stdout
            .lines()
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect(),
    )
}

#[test]
fn the_metrics_listener_serves_what_was_counted() {
    let server = Server::start(
        r#"
[server.listener."metrics"]
bind = ["127.0.0.1:0"]
protocol = "metrics"

[auth]
failure-delay = 0.0
"#,
    );
    let mut c = Client::connect(server.port("imap"));
    c.line();
    c.send("a LOGIN alice not-the-password\r\n");
    assert!(c.tagged("a").unwrap().starts_with("a NO"));
    c.send("b LOGIN alice wonderland\r\n");
    assert!(c.tagged("b").unwrap().starts_with("b OK"));
    c.send("c SELECT INBOX\r\nd SELECT Nowhere\r\ne FROBNICATE\r\n");
    assert!(c.tagged("c").unwrap().starts_with("c OK"));
    assert!(c.tagged("d").unwrap().starts_with("d NO"));
    assert!(c.tagged("e").unwrap().starts_with("e BAD"));
    let Some(m) = scrape(server.port("metrics")) else {
        eprintln!(
            "skipped: Python's prometheus_client is not installed (pip install prometheus-client)"
        );
        return;
    };
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("{k} missing: {m:#?}"))
    };
    assert_eq!(get("tern_logins_total{protocol=imap,result=failed}"), 1.0);
    assert_eq!(
        get("tern_logins_total{protocol=imap,result=succeeded}"),
        1.0
    );
    assert_eq!(
        get("tern_commands_total{command=SELECT,protocol=imap,result=ok}"),
        1.0
    );
    assert_eq!(
        get("tern_commands_total{command=SELECT,protocol=imap,result=no}"),
        1.0
    );
    assert_eq!(
        get("tern_commands_total{command=(unknown),protocol=imap,result=bad}"),
        1.0
    );
    assert_eq!(
        get("tern_command_seconds_count{command=SELECT,protocol=imap}"),
        2.0
    );
    assert_eq!(get("tern_connections_total{protocol=imap,tls=none}"), 1.0);
    assert_eq!(get("tern_connections_open{protocol=imap}"), 1.0);
    assert!(get("tern_storage_request_seconds_count{}") >= 2.0);
    assert_eq!(get("tern_blocked_addresses{}"), 0.0);
    // A client's words never become a label: FROBNICATE is `(unknown)`.
    assert!(m.keys().all(|k| !k.contains("FROBNICATE")));

    // Every answer is logged with its result and code; failures at info level; no password.
    c.send("z LOGOUT\r\n");
    c.tagged("z");
    let log = server.log();
    let answered: Vec<&str> = log.lines().filter(|l| l.contains("answered")).collect();
    assert!(
        answered.iter().any(|l| l.contains("INFO")
            && l.contains("command=SELECT")
            && l.contains("result=\"no\"")
            && l.contains("NONEXISTENT")),
        "{answered:#?}"
    );
    assert!(
        answered
            .iter()
            .any(|l| l.contains("command=LOGIN") && l.contains("result=\"ok\"")),
        "{answered:#?}"
    );
    assert!(!log.contains("not-the-password") && !log.contains("wonderland"));
    // A closed connection is no longer open; other paths answer 404.
    drop(c);
    let status = common::python(
        r#"
import sys, time, urllib.request, urllib.error
try:
    urllib.request.urlopen("http://127.0.0.1:%s/other" % sys.argv[1], timeout=10)
except urllib.error.HTTPError as e:
    print(e.code)
"#,
        &[server.port("metrics").to_string()],
    );
    assert_eq!(status.trim(), "404");
    for _ in 0..50 {
        if scrape(server.port("metrics")).unwrap()["tern_connections_open{protocol=imap}"] == 0.0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the closed connection is still counted open");
}

/// Store size per account: read when an account changed, and for every account of the
/// directory (created or not) without a client first, after a restart too.
#[test]
fn store_size_per_account_follows_append_and_expunge() {
    let config = r#"
[[directory.users]]
name = "bob"
secret = "{plain}builder"

[server.listener."metrics"]
bind = ["127.0.0.1:0"]
protocol = "metrics"
"#;
    let mut server = Server::start(config);
    let Some(m) = scrape(server.port("metrics")) else {
        eprintln!(
            "skipped: Python's prometheus_client is not installed (pip install prometheus-client)"
        );
        return;
    };
    // Nobody logged in yet: both accounts of the directory show, empty.
    for account in ["alice", "bob"] {
        assert_eq!(
            m[&format!("tern_account_messages{{account={account}}}")],
            0.0
        );
        assert_eq!(m[&format!("tern_account_octets{{account={account}}}")], 0.0);
    }
    // Asking made no account.
    assert!(!server.dir.path().join("data/accounts/bob").exists());
    assert!(server.dir.path().join("data/accounts").exists());
    let first = "Subject: one\r\n\r\nfirst message\r\n";
    let second = "Subject: two\r\n\r\nthe second, longer message\r\n";
    let mut c = Client::connect(server.port("imap"));
    c.line();
    c.send("a LOGIN alice wonderland\r\n");
    assert!(c.tagged("a").unwrap().starts_with("a OK"));
    for (tag, body) in [("b", first), ("c", second)] {
        c.send(&format!(
            "{tag} APPEND INBOX {{{}+}}\r\n{body}\r\n",
            body.len()
        ));
        assert!(c.tagged(tag).unwrap().starts_with(&format!("{tag} OK")));
    }
    let m = scrape(server.port("metrics")).unwrap();
    assert_eq!(m["tern_account_messages{account=alice}"], 2.0);
    assert_eq!(
        m["tern_account_octets{account=alice}"],
        (first.len() + second.len()) as f64
    );
    assert_eq!(m["tern_account_messages{account=bob}"], 0.0);
    c.send("d SELECT INBOX\r\n");
    assert!(c.tagged("d").unwrap().starts_with("d OK"));
    c.send("e STORE 1 +FLAGS (\\Deleted)\r\nf EXPUNGE\r\n");
    assert!(c.tagged("f").unwrap().starts_with("f OK"));
    let m = scrape(server.port("metrics")).unwrap();
    assert_eq!(m["tern_account_messages{account=alice}"], 1.0);
    assert_eq!(m["tern_account_octets{account=alice}"], second.len() as f64);
    c.send("z LOGOUT\r\n");
    c.tagged("z");

    // After a restart the stored figures show at the first scrape, before any login.
    assert!(server.terminate().is_some());
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    let config = dir.path().join("tern.toml");
    let server = Server::start_with(dir, &config);
    let m = scrape(server.port("metrics")).unwrap();
    assert_eq!(m["tern_account_messages{account=alice}"], 1.0);
    assert_eq!(m["tern_account_octets{account=alice}"], second.len() as f64);
    assert_eq!(m["tern_account_messages{account=bob}"], 0.0);
}
