//! RFC 8474 OBJECTID end to end: Python's imaplib against the real binary and its SQLite
//! store. Identifiers stay the same over a restart, a moved message keeps its EMAILID, a
//! renamed mailbox keeps its MAILBOXID, a reply lands in its parent's THREADID, and an
//! identical message APPENDed again is another message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{have, python, Server};

const SCRIPT: &str = r#"
import imaplib, json, re, sys
port, phase = int(sys.argv[1]), sys.argv[2]
m = imaplib.IMAP4("127.0.0.1", port)
assert m.login("alice", "wonderland")[0] == "OK"
typ, caps = m.capability()
assert b"OBJECTID" in caps[0].split(), caps
OID = r"([A-Za-z0-9_-]{1,255})"

def ids(mailbox):
    typ, _ = m.select(mailbox)
    assert typ == "OK", typ
    mailboxid = re.search(r"MAILBOXID \(" + OID + r"\)", str(m.untagged_responses.get("OK"))).group(1)
    typ, data = m.fetch("1:*", "(UID EMAILID THREADID)")
    assert typ == "OK", data
    out = {}
    for line in data:
        line = line.decode()
        uid = int(re.search(r"UID (\d+)", line).group(1))
        out[uid] = (re.search(r"EMAILID \(" + OID + r"\)", line).group(1),
                    re.search(r"THREADID \(" + OID + r"\)", line).group(1))
    return mailboxid, out

def status_id(mailbox):
    typ, data = m.status(mailbox, "(MAILBOXID)")
    assert typ == "OK", data
    return re.search(r"MAILBOXID \(" + OID + r"\)", data[0].decode()).group(1)

if phase == "before":
    typ, data = m.create("Work")
    assert typ == "OK", data
    created = re.search(r"\[MAILBOXID \(" + OID + r"\)\]", data[0].decode()).group(1)
    assert status_id("Work") == created
    parent = b"Message-ID: <parent@example.org>\r\nSubject: plans\r\n\r\nshall we?\r\n"
    reply = (b"Message-ID: <reply@example.net>\r\nIn-Reply-To: <parent@example.org>\r\n"
             b"References: <parent@example.org>\r\nSubject: Re: plans\r\n\r\nyes\r\n")
    other = b"Message-ID: <other@example.com>\r\nSubject: lunch\r\n\r\nnoon\r\n"
    for msg in (parent, reply, other, other):
        assert m.append("INBOX", None, None, msg)[0] == "OK"
    inbox, before = ids("INBOX")
    assert before[1][1] == before[2][1], ("a reply lands in its parent's thread", before)
    assert before[3][1] != before[1][1], before
    assert before[3][0] != before[4][0], ("identical APPENDs are two messages", before)
    assert len({e for e, _ in before.values()}) == 4
    typ, data = m.uid("SEARCH", "THREADID", before[1][1])
    assert data[0].split() == [b"1", b"2"], data
    typ, data = m.uid("MOVE", "1", "Work")
    assert typ == "OK", data
    work, moved = ids("Work")
    assert work == created
    assert moved[1] == before[1], ("a moved message keeps EMAILID and THREADID", moved, before)
    assert m.rename("Work", "Projects")[0] == "OK"
    assert status_id("Projects") == created, "a renamed mailbox keeps MAILBOXID"
    print(json.dumps({"inbox": [inbox, ids("INBOX")[1]], "projects": [created, ids("Projects")[1]]}))
else:
    print(json.dumps({"inbox": list(ids("INBOX")), "projects": list(ids("Projects"))}))
    # A reply arriving after the restart still finds its conversation.
    late = (b"Message-ID: <late@example.net>\r\nReferences: <parent@example.org> <reply@example.net>\r\n"
            b"Subject: Re: Re: plans\r\n\r\nlate\r\n")
    assert m.append("INBOX", None, None, late)[0] == "OK"
    _, now = ids("INBOX")
    print(json.dumps(now[max(now)]))
m.logout()
"#;

#[test]
fn identifiers_survive_a_restart_and_follow_their_objects() {
    if !have("python3") {
        eprintln!("skipped: no python3");
        return;
    }
    let mut server = Server::start("");
    let port = server.port("imap").to_string();
    let before = python(SCRIPT, &[port, "before".into()]);
    assert!(server.terminate().is_some());
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
    drop(server);
    let config = dir.path().join("tern.toml");
    let server = Server::start_with(dir, &config);
    let after = python(SCRIPT, &[server.port("imap").to_string(), "after".into()]);
    let mut lines = after.lines();
    // Both phases print the same structure, so the text must match.
    assert_eq!(
        lines.next().unwrap(),
        before.trim(),
        "identifiers are the same after a restart"
    );
    let late = lines.next().unwrap();
    let reply_thread = before
        .split('"')
        .find(|s| s.starts_with('T'))
        .unwrap()
        .to_string();
    assert!(
        late.contains(&reply_thread),
        "a reply stored after the restart joins the conversation: {late} vs {before}"
    );
}
