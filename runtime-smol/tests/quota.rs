//! QUOTA (RFC 9208) end to end: the real binary with `[quota]`, Python's imaplib and
//! smtplib. APPENDs racing at the boundary (exactly as many succeed as fit), usage exact after
//! a SIGKILL (in the middle of a flood of APPENDs too), and LMTP delivery refused with
//! `552 5.2.2` once the account is full.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config_text, have, python, Server};

/// alice: the `[quota]` default (64 KiB, 1000 messages). bob: his own values, large, for
/// the flood. An LMTP listener.
const QUOTA_CONFIG: &str = r#"
[quota]
storage = "64"
messages = 1000

[[directory.users]]
name = "bob"
secret = "{plain}builder"
quota-storage = "1G"
quota-messages = 100000

[server.listener."lmtp"]
bind = ["127.0.0.1:0"]
protocol = "lmtp"
"#;

const SCRIPT: &str = r#"
import imaplib, re, smtplib, sys, threading, time
phase, port = sys.argv[1], int(sys.argv[2])

def login(user="alice", password="wonderland"):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(user, password)
    return m

def message(n, size):
    head = ("Subject: quota %d\r\n\r\n" % n).encode()
    return head + b"x" * (size - len(head) - 2) + b"\r\n"

def quota(m, root="INBOX"):
    typ, data = m.getquotaroot(root)
    assert typ == "OK", (typ, data)
    roots, quotas = data
    assert roots == [b'INBOX "User quota"'], roots
    return quotas[0].decode()

if phase == "boundary":
    m = login()
    typ, caps = m.capability()
    assert b" QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE " in caps[0], caps
    assert quota(m) == '"User quota" (STORAGE 0 64 MESSAGE 0 1000)', quota(m)
    # SETQUOTA is the administrator's.
    typ, data = m.setquota('"User quota"', "(STORAGE 1000)")
    assert typ == "NO" and data[0].startswith(b"[NOPERM]"), (typ, data)
    # 20 sessions APPEND 10,000 octets each at once: 6 fit in 65,536 octets.
    sessions = [login() for _ in range(20)]
    barrier = threading.Barrier(len(sessions))
    results = []
    def one(i, s):
        barrier.wait()
        typ, data = s.append("INBOX", None, None, message(i, 10000))
        results.append((typ, data[0]))
    threads = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(sessions)]
    for t in threads: t.start()
    for t in threads: t.join()
    ok = [r for r in results if r[0] == "OK"]
    refused = [r for r in results if r[0] == "NO" and r[1].startswith(b"[OVERQUOTA]")]
    assert len(ok) == 6 and len(refused) == 14, results
    assert quota(m) == '"User quota" (STORAGE 59 64 MESSAGE 6 1000)', quota(m)
    print("boundary 6")

elif phase == "after-kill":
    m = login()
    assert quota(m) == '"User quota" (STORAGE 59 64 MESSAGE 6 1000)', quota(m)
    typ, data = m.append("INBOX", None, None, message(99, 10000))
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), (typ, data)
    # 5,000 more octets still fit (65,000 of 65,536).
    typ, data = m.append("INBOX", None, None, message(100, 5000))
    assert typ == "OK", (typ, data)
    # Delivery is refused per recipient once the account is full (RFC 3463 X.2.2).
    lmtp = smtplib.LMTP("127.0.0.1", int(sys.argv[3]))
    lmtp.ehlo("mta.test")
    assert lmtp.mail("sender@remote.test")[0] == 250
    assert lmtp.rcpt("alice@example.org")[0] == 250
    assert lmtp.rcpt("bob@example.org")[0] == 250
    code, text = lmtp.data(message(101, 2000))
    assert code == 552 and text.startswith(b"5.2.2"), (code, text)
    code, text = lmtp.getreply()
    assert code == 250, (code, text)
    lmtp.quit()
    # EXPUNGE frees: STATUS DELETED-STORAGE first says how much.
    m.select("INBOX")
    m.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
    typ, data = m.status("INBOX", "(MESSAGES DELETED DELETED-STORAGE)")
    assert data == [b"INBOX (MESSAGES 7 DELETED 7 DELETED-STORAGE 65000)"], data
    m.expunge()
    assert quota(m) == '"User quota" (STORAGE 0 64 MESSAGE 0 1000)', quota(m)
    typ, data = m.append("INBOX", None, None, message(102, 2000))
    assert typ == "OK", (typ, data)
    print("after-kill ok")

elif phase == "flood":
    # Four sessions APPEND until the server is killed under them.
    def flood(t):
        try:
            s = login("bob", "builder")
            n = 0
            while True:
                n += 1
                mailbox = "INBOX" if n % 3 else "Archive"
                s.append(mailbox, None, None, message(t * 100000 + n, 300 + (n * 7919 + t) % 5000))
        except Exception:
            pass
    threads = [threading.Thread(target=flood, args=(t,)) for t in range(4)]
    for t in threads: t.start()
    print("flooding", flush=True)
    for t in threads: t.join()

elif phase == "exact":
    m = login("bob", "builder")
    messages = octets = 0
    for name in ("INBOX", "Archive"):
        typ, data = m.status(name, "(MESSAGES SIZE)")
        found = re.search(rb"MESSAGES (\d+) SIZE (\d+)", data[0])
        messages += int(found.group(1))
        octets += int(found.group(2))
        # The mailbox's kept size is its messages' sizes.
        m.select(name, readonly=True)
        if int(found.group(1)):
            typ, data = m.fetch("1:*", "(RFC822.SIZE)")
            sizes = [int(re.search(rb"RFC822.SIZE (\d+)", d).group(1)) for d in data]
            assert sum(sizes) == int(found.group(2)), (name, sum(sizes), found.group(2))
    assert messages > 0
    expected = '"User quota" (STORAGE %d 1048576 MESSAGE %d 100000)' % (-(-octets // 1024), messages)
    assert quota(m) == expected, (quota(m), expected)
    print("exact", messages)
"#;

fn run(phase: &str, args: &[String]) -> String {
    let mut all = vec![phase.to_string()];
    all.extend_from_slice(args);
    python(SCRIPT, &all)
}

fn kill_and_restart(mut server: Server, config: &std::path::Path) -> Server {
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    drop(server);
    Server::start_with(dir, config)
}

/// APPENDs racing at the quota's boundary, the usage after a SIGKILL, LMTP refusals, and
/// EXPUNGE freeing space.
#[test]
fn python_imaplib_quota_is_exact_under_races_and_crashes() {
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tern.toml");
    std::fs::write(&config, config_text(QUOTA_CONFIG)).unwrap();
    let server = Server::start_with(dir, &config);
    let out = run("boundary", &[server.port("imap").to_string()]);
    assert_eq!(out, "boundary 6\n");
    let server = kill_and_restart(server, &config);
    let out = run(
        "after-kill",
        &[
            server.port("imap").to_string(),
            server.port("lmtp").to_string(),
        ],
    );
    assert_eq!(out, "after-kill ok\n");

    // A SIGKILL in the middle of a flood of APPENDs: the kept totals still match the
    // messages after the restart.
    let port = server.port("imap").to_string();
    let flood = std::thread::spawn(move || run("flood", &[port]));
    std::thread::sleep(std::time::Duration::from_millis(700));
    let server = kill_and_restart(server, &config);
    flood.join().unwrap();
    let out = run("exact", &[server.port("imap").to_string()]);
    assert!(out.starts_with("exact "), "{out}");
}
