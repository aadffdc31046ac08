//! `tern import` and `tern export` with the real binary: an mbox goes in and comes back out
//! byte for byte, a second import adds nothing, corrupt messages are skipped with their
//! place, a running server keeps them out (exit 75), and a Dovecot Maildir (written by a real
//! Dovecot over IMAP) comes in with the UIDVALIDITY, UIDs, UIDNEXT, flags and keywords
//! Dovecot answered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{config_text, have, python, Server, BIN};

/// Runs `tern ARGS`; returns the exit status, stdout and stderr.
fn tern(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder with `tern.toml` (user alice, store in `data/`).
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tern.toml");
    std::fs::write(&config, config_text("")).unwrap();
    (dir, config)
}

fn import(config: &Path, path: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "import",
        "--user",
        "alice",
        "--config",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(path.to_str().unwrap());
    tern(&args)
}

/// An mboxrd file as a delivery agent writes it: LF line ends, `>From ` quoting (and a
/// quoted quote), `From ` lines naming the Return-Path, a message ending in empty lines.
const MBOX: &[u8] = b"From alice@example.org Mon Dec  7 19:39:56 2026
Return-Path: <alice@example.org>
From: Alice <alice@example.org>
Subject: first

>From the top of the body
>>From already quoted
>From inside a paragraph
body

From MAILER-DAEMON Tue Dec  8 01:02:03 2026
Subject: second

two empty lines follow


From MAILER-DAEMON Wed Dec  9 00:00:00 2026
Subject: third
X-Binary: \xc3\xa9\xff

last
";

#[test]
fn an_mbox_goes_in_and_comes_back_byte_for_byte_and_only_once() {
    let (dir, config) = setup();
    let mbox = dir.path().join("in.mbox");
    // Each message is followed by its separating empty line.
    let mut file = MBOX.to_vec();
    file.push(b'\n');
    std::fs::write(&mbox, &file).unwrap();

    let (code, out, err) = import(&config, &mbox, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("imported 3 messages"), "{out}");

    // Again: nothing new.
    let (code, out, err) = import(&config, &mbox, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("imported 0 messages") && out.contains("3 already there"),
        "{out}"
    );

    let exported = dir.path().join("out.mbox");
    let (code, out, err) = tern(&[
        "export",
        "--user",
        "alice",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "mbox",
        exported.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        file,
        "the export differs from the import"
    );

    // An existing file is never overwritten.
    let (code, _, err) = tern(&[
        "export",
        "--user",
        "alice",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "mbox",
        exported.to_str().unwrap(),
    ]);
    assert_eq!(code, 73, "{err}");

    // What IMAP sees: CRLF messages, internal dates from the From_ lines, the quoting undone.
    let server = Server::start_with(dir, &config);
    let seen = python(
        r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice", "wonderland")
m.select("INBOX")
typ, data = m.fetch("1:*", "(INTERNALDATE BODY.PEEK[])")
for item in data:
    if isinstance(item, tuple):
        print(item[0].decode())
        print(repr(item[1]))
"#,
        &[server.port("imap").to_string()],
    );
    assert!(
        seen.contains("INTERNALDATE \" 7-Dec-2026 19:39:56 +0000\""),
        "{seen}"
    );
    assert!(
        seen.contains(r"\r\n\r\nFrom the top of the body\r\n>From already quoted\r\nFrom inside"),
        "{seen}"
    );
    assert!(seen.contains(r"two empty lines follow\r\n\r\n'"), "{seen}");
}

#[test]
fn mbox_variant_o_keeps_quotes() {
    let (dir, config) = setup();
    let mbox = dir.path().join("o.mbox");
    std::fs::write(
        &mbox,
        b"From x Mon Dec  7 19:39:56 2026\nSubject: o\n\n>From kept\n",
    )
    .unwrap();
    let (code, out, err) = import(&config, &mbox, &["--mbox-variant", "o"]);
    assert_eq!(code, 0, "{out}{err}");
    let exported = dir.path().join("out.mbox");
    let (code, _, err) = tern(&[
        "export",
        "--user",
        "alice",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "mbox",
        exported.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    // Kept as `>From ` in the store, so written as `>>From `.
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("\n>>From kept\n"), "{text}");
}

#[test]
fn a_folder_of_eml_files_goes_into_the_named_mailbox_once() {
    let (dir, config) = setup();
    let emls = dir.path().join("emls");
    std::fs::create_dir(&emls).unwrap();
    std::fs::write(emls.join("a.eml"), "Subject: a\r\n\r\ncrlf\r\n").unwrap();
    std::fs::write(emls.join("b.EML"), "Subject: b\n\nlf\n").unwrap();
    // The same octets twice in the source: both come in, once.
    std::fs::write(emls.join("c.eml"), "Subject: b\n\nlf\n").unwrap();
    std::fs::write(emls.join("notes.txt"), "not mail").unwrap();
    let (code, out, err) = import(&config, &emls, &["--mailbox", "Old/Mail"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("imported 3 messages"), "{out}");
    let (code, out, err) = import(&config, &emls, &["--mailbox", "Old/Mail"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("imported 0 messages") && out.contains("3 already there"),
        "{out}"
    );
    let server = Server::start_with(dir, &config);
    let mut c = common::Client::connect(server.port("imap"));
    c.line();
    c.send("a LOGIN alice wonderland\r\nb STATUS Old/Mail (MESSAGES)\r\nc LSUB \"\" Old/*\r\n");
    let mut text = String::new();
    while let Some(line) = c.line() {
        text.push_str(&line);
        text.push('\n');
        if line.starts_with("c ") {
            break;
        }
    }
    assert!(text.contains("(MESSAGES 3)"), "{text}");
    assert!(
        text.contains("LSUB () \"/\" Old/Mail"),
        "imported mailboxes are subscribed\n{text}"
    );
}

/// RFC 8474 through `tern import` (`StorageOp::ImportMessages`): imported messages get
/// EMAILIDs of their own and a reply shares its parent's THREADID, whichever comes first.
#[test]
fn imported_messages_get_object_ids_and_conversations() {
    let (dir, config) = setup();
    let emls = dir.path().join("emls");
    std::fs::create_dir(&emls).unwrap();
    std::fs::write(
        emls.join("a.eml"),
        "Message-ID: <reply@x>\r\nIn-Reply-To: <root@x>\r\nSubject: Re: r\r\n\r\nb\r\n",
    )
    .unwrap();
    std::fs::write(
        emls.join("b.eml"),
        "Message-ID: <root@x>\r\nSubject: r\r\n\r\nb\r\n",
    )
    .unwrap();
    std::fs::write(
        emls.join("c.eml"),
        "Message-ID: <other@x>\r\nSubject: o\r\n\r\nb\r\n",
    )
    .unwrap();
    let (code, out, err) = import(&config, &emls, &["--mailbox", "Imported"]);
    assert_eq!(code, 0, "{out}{err}");
    let server = Server::start_with(dir, &config);
    let mut c = common::Client::connect(server.port("imap"));
    c.line();
    c.send("a LOGIN alice wonderland\r\nb SELECT Imported\r\nc FETCH 1:* (EMAILID THREADID)\r\n");
    let mut fetched = Vec::new();
    while let Some(line) = c.line() {
        if line.contains(" FETCH (") {
            let field = |name: &str| {
                let start = line.find(&format!("{name} (")).unwrap() + name.len() + 2;
                line[start..].split(')').next().unwrap().to_string()
            };
            fetched.push((field("EMAILID"), field("THREADID")));
        }
        if line.starts_with("c ") {
            assert!(line.starts_with("c OK"), "{line}");
            break;
        }
    }
    assert_eq!(fetched.len(), 3, "{fetched:?}");
    assert!(fetched
        .iter()
        .all(|(e, t)| e.starts_with('M') && t.starts_with('T')));
    assert_eq!(
        fetched[0].1, fetched[1].1,
        "the reply and its parent: {fetched:?}"
    );
    assert_ne!(fetched[2].1, fetched[0].1, "{fetched:?}");
    let emails: std::collections::HashSet<_> = fetched.iter().map(|f| &f.0).collect();
    assert_eq!(emails.len(), 3);
}

#[test]
fn corrupt_messages_are_skipped_with_their_place() {
    let (dir, config) = setup();
    let mbox = dir.path().join("bad.mbox");
    let good = b"From x Mon Dec  7 19:39:56 2026\nSubject: good\n\nok\n\n";
    let bad = b"From nobody-knows-when\nSubject: bad date\n\nx\n\n";
    let mut file = good.to_vec();
    let bad_at = file.len();
    file.extend_from_slice(bad);
    file.extend_from_slice(b"From y Mon Dec  7 19:39:57 2026\nSubject: good too\n\nok\n");
    std::fs::write(&mbox, &file).unwrap();
    let (code, out, err) = import(&config, &mbox, &[]);
    assert_eq!(
        code, 65,
        "EX_DATAERR when something was skipped\n{out}{err}"
    );
    assert!(
        err.contains(&format!("bad.mbox at byte {bad_at}: no readable date")),
        "{err}"
    );
    assert!(
        out.contains("imported 2 messages") && out.contains("1 skipped"),
        "{out}"
    );

    // A Maildir with an empty file and an unreadable one among good ones.
    let maildir = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp", ".Work/cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("cur/1.a.host:2,S"), "Subject: a\n\nx\n").unwrap();
    std::fs::write(maildir.join("cur/2.b.host:2,"), "").unwrap();
    std::fs::create_dir(maildir.join("cur/3.c.host:2,F")).unwrap(); // not a file: ignored
    std::fs::write(maildir.join(".Work/cur/4.d.host:2,F"), "Subject: d\n\ny\n").unwrap();
    let (code, out, err) = import(&config, &maildir, &[]);
    assert_eq!(code, 65, "{out}{err}");
    assert!(err.contains("2.b.host:2,: empty message"), "{err}");
    assert!(out.contains("imported 2 messages"), "{out}");

    // Missing input, unknown account.
    let (code, _, err) = import(&config, &dir.path().join("nothing"), &[]);
    assert_eq!(code, 66, "{err}");
    let (code, _, err) = tern(&[
        "import",
        "--user",
        "nobody",
        "--config",
        config.to_str().unwrap(),
        mbox.to_str().unwrap(),
    ]);
    assert_eq!(code, 67, "{err}");
}

#[test]
fn a_running_server_keeps_import_and_export_out() {
    let server = Server::start("");
    let config = server.dir.path().join("tern.toml");
    let mbox = server.dir.path().join("in.mbox");
    std::fs::write(&mbox, b"From x Mon Dec  7 19:39:56 2026\nSubject: a\n\nx\n").unwrap();
    let (code, _, err) = import(&config, &mbox, &[]);
    assert_eq!(code, 75, "{err}");
    assert!(
        err.contains("the store is in use by a running tern; stop it first"),
        "{err}"
    );
    let out = server.dir.path().join("out.mbox");
    let (code, _, err) = tern(&[
        "export",
        "--user",
        "alice",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "mbox",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 75, "{err}");
}

/// A Maildir with a `dovecot-uidlist` (written by hand, so this runs where Dovecot is
/// absent): listed files keep their UIDs and the folder its UIDVALIDITY, UIDNEXT reaches the
/// list's N, an unlisted file in new/ comes after it, keywords come from `dovecot-keywords`.
#[test]
fn a_maildir_with_a_uidlist_keeps_its_identifiers() {
    let (dir, config) = setup();
    let md = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp", ".Lists.rust/cur", ".Lists.rust/new"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    std::fs::write(
        md.join("dovecot-uidlist"),
        "3 V12345 N20 G0123456789abcdef0123456789abcdef\n\
         3 W30 :100.M1P1.host,S=28\n\
         7 G00112233445566778899aabbccddeeff :101.M2P2.host\n\
         9 :gone.host\n",
    )
    .unwrap();
    std::fs::write(md.join("dovecot-keywords"), "0 $Label1\n1 Work\n").unwrap();
    std::fs::write(
        md.join("cur/100.M1P1.host,S=28:2,FSa"),
        "Subject: three\n\nbody\n",
    )
    .unwrap();
    std::fs::write(
        md.join("cur/101.M2P2.host:2,RTb"),
        "Subject: seven\n\nbody\n",
    )
    .unwrap();
    std::fs::write(md.join("new/102.M3P3.host"), "Subject: new\n\nbody\n").unwrap();
    std::fs::write(md.join(".Lists.rust/cur/1.x:2,"), "Subject: list\n\nbody\n").unwrap();

    let (code, out, err) = import(&config, &md, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("imported 4 messages"), "{out}");
    let (code, out, err) = import(&config, &md, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("imported 0 messages") && out.contains("4 already there"),
        "{out}"
    );

    let exported = dir.path().join("exported");
    let (code, out, err) = tern(&[
        "export",
        "--user",
        "alice",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "maildir",
        exported.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let list = std::fs::read_to_string(exported.join("dovecot-uidlist")).unwrap();
    let uids: Vec<&str> = list.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(uids, ["3", "3", "7", "20"], "{list}");
    assert!(list.starts_with("3 V12345 N21\n"), "{list}");
    let names: Vec<String> = std::fs::read_dir(exported.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let named = |uid: &str| {
        names
            .iter()
            .find(|n| n.contains(&format!(".T{uid}.")))
            .unwrap_or_else(|| panic!("no file for UID {uid}: {names:?}"))
            .clone()
    };
    let infos: Vec<String> = ["3", "7", "20"]
        .iter()
        .map(|u| named(u).split_once(":2,").unwrap().1.to_string())
        .collect();
    assert_eq!(infos, ["FSa", "RTb", ""], "{names:?}");
    let keywords = std::fs::read_to_string(exported.join("dovecot-keywords")).unwrap();
    assert_eq!(keywords, "0 $Label1\n1 Work\n");
    let body = std::fs::read(exported.join("cur").join(named("3"))).unwrap();
    assert_eq!(body, b"Subject: three\n\nbody\n", "LF again, byte for byte");
    assert!(exported.join(".Lists.rust/dovecot-uidlist").is_file());

    let server = Server::start_with(dir, &config);
    let mut c = common::Client::connect(server.port("imap"));
    c.line();
    c.send("a LOGIN alice wonderland\r\n");
    assert!(c.tagged("a").unwrap().starts_with("a OK"));
    c.send("b SELECT INBOX\r\nc UID FETCH 1:* (FLAGS)\r\n");
    let mut lines = Vec::new();
    loop {
        let line = c.line().unwrap();
        let done = line.starts_with("c ");
        lines.push(line);
        if done {
            break;
        }
    }
    let text = lines.join("\n");
    assert!(text.contains("[UIDVALIDITY 12345]"), "{text}");
    assert!(text.contains("[UIDNEXT 21]"), "{text}");
    assert!(
        text.contains("UID 3 FLAGS (\\Flagged \\Seen $Label1 \\Recent)"),
        "{text}"
    );
    assert!(
        text.contains("UID 7 FLAGS (\\Answered \\Deleted Work \\Recent)"),
        "{text}"
    );
    assert!(text.contains("UID 20 FLAGS (\\Recent)"), "{text}");
}

/// Prints, as JSON, every folder's UIDVALIDITY, UIDNEXT and messages (UID, flags without
/// `\Recent`, INTERNALDATE as Unix time, size, a hash of the octets), and INBOX's POP3 UIDLs when a POP3
/// port is given: the same script describes Dovecot and tern.
const DESCRIBE: &str = r#"
import hashlib, imaplib, json, poplib, re, sys, time
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice", "wonderland")
typ, boxes = m.list()
out = {}
for line in boxes:
    name = re.match(rb'\(.*?\) "." (.*)$', line).group(1).decode().strip('"')
    if "\\Noselect" in line.decode():
        continue
    typ, data = m.select('"%s"' % name, readonly=True)
    assert typ == "OK", (name, data)
    typ, st = m.status('"%s"' % name, "(UIDVALIDITY UIDNEXT MESSAGES)")
    fields = dict(re.findall(rb"(UIDVALIDITY|UIDNEXT|MESSAGES) (\d+)", st[0]))
    msgs = []
    if int(fields[b"MESSAGES"]):
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            head = item[0].decode()
            uid = int(re.search(r"UID (\d+)", head).group(1))
            flags = sorted(f for f in re.search(r"FLAGS \(([^)]*)\)", head).group(1).split() if f != "\\Recent")
            # As an instant: Dovecot shows the machine's zone, tern +0000.
            date = int(time.mktime(imaplib.Internaldate2tuple(item[0])))
            size = int(re.search(r"RFC822.SIZE (\d+)", head).group(1))
            msgs.append([uid, flags, date, size, hashlib.sha256(item[1]).hexdigest()])
    out[name] = {"uidvalidity": int(fields[b"UIDVALIDITY"]), "uidnext": int(fields[b"UIDNEXT"]), "messages": sorted(msgs)}
m.logout()
if len(sys.argv) > 2:
    p = poplib.POP3("127.0.0.1", int(sys.argv[2]))
    p.user("alice"); p.pass_("wonderland")
    out["POP3 UIDL"] = [l.decode() for l in p.uidl()[1]]
    p.quit()
print(json.dumps(out, sort_keys=True))
"#;

/// Fills Dovecot's account over IMAP: flags, keywords, expunges (so UIDs have gaps) and
/// subfolders.
const FILL: &str = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice", "wonderland")
def msg(i, extra=b""):
    return b"From: bob@example.org\r\nSubject: message %d\r\nMessage-ID: <%d@example.org>\r\n%s\r\nbody of %d\r\nFrom here on\r\n" % (i, i, extra, i)
for box in ["Projects", "Projects/2026", "Archive/Old"]:
    assert m.create(box)[0] == "OK", box
plan = [
    ("INBOX", 1, r"(\Seen)"), ("INBOX", 2, r"(\Flagged $Label1)"), ("INBOX", 3, r"(\Deleted)"),
    ("INBOX", 4, r"(\Seen \Answered Work)"), ("INBOX", 5, None), ("INBOX", 6, r"(\Deleted \Seen)"),
    ("INBOX", 7, r"(\Draft Junk $Label1)"),
    ("Projects", 8, r"(Work)"), ("Projects/2026", 9, r"(\Flagged)"), ("Projects/2026", 10, r"(\Deleted)"),
    ("Projects/2026", 11, r"(\Seen Later)"), ("Archive/Old", 12, None),
]
for box, i, flags in plan:
    typ, data = m.append('"%s"' % box, flags, imaplib.Time2Internaldate(1700000000 + i * 3600), msg(i))
    assert typ == "OK", data
for box in ["INBOX", "Projects/2026"]:
    m.select('"%s"' % box)
    assert m.expunge()[0] == "OK"
m.select("INBOX")
m.store("5", "+FLAGS", r"(\Seen)")
m.logout()
"#;

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Dovecot peer of `scripts/dovecot-peer.sh` in `dir`, stopped when dropped.
struct Dovecot {
    dir: PathBuf,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("doveadm")
            .arg("-c")
            .arg(self.dir.join("dovecot.conf"))
            .arg("stop")
            .status();
    }
}

#[test]
fn a_dovecot_maildir_comes_in_with_its_identifiers() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n");
    if !have("python3")
        || Command::new("dovecot").arg("--version").output().is_err()
        || root.ok() != Some(true)
    {
        eprintln!("SKIPPED: needs python3, Dovecot (apt-get install dovecot-imapd dovecot-pop3d) and root to start it");
        return;
    }
    let (dir, config) = setup();
    // Dovecot's mail processes run as another user: the folder must be reachable.
    let dove_dir = dir.path().join("dovecot");
    std::fs::create_dir(&dove_dir).unwrap();
    for p in [dir.path(), dove_dir.as_path()] {
        Command::new("chmod").arg("755").arg(p).status().unwrap();
    }
    let (imap_port, pop3_port) = (27143u16, 27110u16);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/dovecot-peer.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(&dove_dir)
        .arg(imap_port.to_string())
        .arg(pop3_port.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "dovecot-peer.sh failed");
    let dovecot = Dovecot {
        dir: dove_dir.clone(),
    };
    wait_for_port(imap_port);
    python(FILL, &[imap_port.to_string()]);
    let before = python(DESCRIBE, &[imap_port.to_string(), pop3_port.to_string()]);
    drop(dovecot);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", imap_port)).is_ok() {
        assert!(Instant::now() < deadline, "dovecot did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }

    let maildir = dove_dir.join("mail/alice/Maildir");
    let (code, out, err) = import(&config, &maildir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    // Again: nothing new.
    let (code, out, err) = import(&config, &maildir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("imported 0 messages"), "{out}");

    // Export as a Maildir for Dovecot: the same UIDs in its uidlist.
    let exported = dir.path().join("exported");
    let (code, out, err) = tern(&[
        "export",
        "--user",
        "alice",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "maildir",
        exported.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let original = std::fs::read_to_string(maildir.join(".Projects.2026/dovecot-uidlist")).unwrap();
    let copy = std::fs::read_to_string(exported.join(".Projects.2026/dovecot-uidlist")).unwrap();
    let header = |s: &str| {
        let h = s.lines().next().unwrap().to_string();
        h.split(' ')
            .filter(|f| f.starts_with('V') || f.starts_with('N'))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(header(&original), header(&copy), "{original}\n{copy}");

    let server = Server::start_with(dir, &config);
    let after = python(
        DESCRIBE,
        &[
            server.port("imap").to_string(),
            server.port("pop3").to_string(),
        ],
    );
    let report = python(
        COMPARE,
        &[before.trim().to_string(), after.trim().to_string()],
    );
    // INBOX, the five special folders, Projects, Projects/2026, Archive/Old.
    assert!(report.contains("compared 9 folders"), "{report}");
}

/// Checks tern's description (argv[2]) against Dovecot's (argv[1]).
const COMPARE: &str = r#"
import json, sys
want, got = json.loads(sys.argv[1]), json.loads(sys.argv[2])
n = 0
for name, w in want.items():
    g = got.get(name)
    assert g is not None, ("missing in tern", name, sorted(got))
    if name == "POP3 UIDL":
        assert g == w, ("POP3 UIDLs", w, g)
        continue
    assert g["uidvalidity"] == w["uidvalidity"], (name, w, g)
    assert g["uidnext"] >= w["uidnext"], (name, w, g)
    assert g["messages"] == w["messages"], (name, w["messages"], g["messages"])
    n += 1
# The expunges left gaps; flags and keywords are there to compare.
assert [m[0] for m in want["INBOX"]["messages"]] == [1, 2, 4, 5, 7], want["INBOX"]
flat = json.dumps(want)
assert "$Label1" in flat and "Work" in flat and "\\Flagged" in flat, flat
print("compared %d folders" % n)
"#;
