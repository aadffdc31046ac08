//! IMAP semantics across sessions on one in-memory store: selection, FETCH, STORE, SEARCH,
//! EXPUNGE rules, COPY/MOVE, APPEND, IDLE and `\Recent` (RFC 9051, RFC 3501).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tern_core::drive::{pump, Blocked};
use tern_core::store::Changed;
use tern_core::{
    Input, MemDirectory, MemStore, Protocol, Session, SessionConfig, StorageOp, StorageResult,
    Store, Transport,
};

/// The reference store, noting the kind of each request it answers (`Then(Fetch, Changes)`
/// for a joined one), so tests can tell how many round trips a command took.
struct Counted {
    inner: MemStore,
    requests: Vec<String>,
}

fn kind(op: &StorageOp) -> String {
    match op {
        StorageOp::Then { first, then } => format!("Then({}, {})", kind(first), kind(then)),
        other => {
            let debug = format!("{other:?}");
            debug
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .to_string()
        }
    }
}

impl Store for Counted {
    fn execute(&mut self, op: StorageOp) -> StorageResult {
        self.requests.push(kind(&op));
        self.inner.execute(op)
    }

    fn take_changes(&mut self) -> Vec<Changed> {
        self.inner.take_changes()
    }
}

/// Several sessions of one account over one store, with change notifications delivered the
/// way the runtime delivers them.
struct World {
    store: Counted,
    directory: MemDirectory,
    now: Instant,
    sessions: Vec<(Session, Vec<u8>)>,
}

impl World {
    fn new() -> World {
        let store = Counted {
            inner: MemStore::new(),
            requests: Vec::new(),
        };
        let mut directory = MemDirectory::new();
        directory.add_user("alice", "pw");
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        World {
            store,
            directory,
            now,
            sessions: Vec::new(),
        }
    }

    /// Opens a logged-in session; returns its index.
    fn login(&mut self) -> usize {
        let mut config = SessionConfig::new(Protocol::Imap, Transport::ImplicitTls);
        config.plaintext_auth_without_tls = true;
        self.sessions
            .push((Session::new(config, self.now), Vec::new()));
        let i = self.sessions.len() - 1;
        self.run(i);
        self.take(i);
        let out = self.send(i, "l LOGIN alice pw\r\n");
        assert!(out.starts_with("l OK"), "{out}");
        i
    }

    fn run(&mut self, i: usize) -> Blocked {
        let (session, wire) = &mut self.sessions[i];
        let blocked = pump(
            session,
            &mut self.store,
            &mut self.directory,
            self.now,
            &mut |b| wire.extend_from_slice(b),
        )
        .unwrap();
        let changes = self.store.take_changes();
        for change in changes {
            for j in 0..self.sessions.len() {
                if j == i {
                    continue;
                }
                let (s, _) = &mut self.sessions[j];
                s.handle_input(Input::MailboxChanged {
                    now: self.now,
                    account: &change.account,
                    mailbox: change.mailbox,
                    modseq: change.modseq,
                })
                .unwrap();
                self.run(j);
            }
        }
        blocked
    }

    fn take(&mut self, i: usize) -> String {
        String::from_utf8(std::mem::take(&mut self.sessions[i].1)).unwrap()
    }

    fn send(&mut self, i: usize, data: &str) -> String {
        self.sessions[i]
            .0
            .handle_input(Input::Bytes {
                now: self.now,
                data: data.as_bytes(),
            })
            .unwrap();
        self.run(i);
        self.take(i)
    }

    fn append(&mut self, i: usize, mailbox: &str, message: &str) -> String {
        self.send(
            i,
            &format!("a APPEND {mailbox} {{{}+}}\r\n{message}\r\n", message.len()),
        )
    }
}

const MSG1: &str = "From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: Hello world\r\nDate: Mon, 2 Feb 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nFirst message body.\r\n";
const MSG2: &str = "From: Carol <carol@example.net>\r\nSubject: Second\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nplain part\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX--\r\n";

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn rfc9051_6_3_2_select_reports_the_mailbox() {
    let mut w = World::new();
    let a = w.login();
    w.append(a, "INBOX", MSG1);
    w.append(a, "INBOX", MSG2);
    let out = w.send(a, "s SELECT INBOX\r\n");
    let l = lines(&out);
    assert_eq!(
        l[0],
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
    );
    assert_eq!(
        l[1],
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted."
    );
    assert_eq!(l[2], "* 2 EXISTS");
    assert_eq!(l[3], "* 2 RECENT");
    assert_eq!(l[4], "* OK [UNSEEN 1] First unseen.");
    assert!(l[5].starts_with("* OK [UIDVALIDITY "));
    assert_eq!(l[6], "* OK [UIDNEXT 3] Predicted next UID.");
    // RFC 8474 §4.2.
    assert!(l[7].starts_with("* OK [MAILBOXID (F"), "{}", l[7]);
    assert_eq!(l[8], "s OK [READ-WRITE] SELECT completed.");
    // \Recent goes to the first session only.
    let b = w.login();
    let out = w.send(b, "e EXAMINE INBOX\r\n");
    assert!(out.contains("* 0 RECENT"), "{out}");
    assert!(out.contains("e OK [READ-ONLY] EXAMINE completed."), "{out}");
    assert!(out.contains("[PERMANENTFLAGS ()]"), "{out}");
}

#[test]
fn rfc9051_6_4_5_fetch_items_and_implicit_seen() {
    let mut w = World::new();
    let a = w.login();
    w.append(a, "INBOX", MSG1);
    w.append(a, "INBOX", MSG2);
    w.send(a, "s SELECT INBOX\r\n");
    let out = w.send(a, "f FETCH 1 (FLAGS RFC822.SIZE ENVELOPE)\r\n");
    assert_eq!(
        out,
        format!(
            "* 1 FETCH (FLAGS (\\Recent) RFC822.SIZE {} ENVELOPE (\"Mon, 2 Feb 2026 10:00:00 +0000\" \"Hello world\" ((\"Bob\" NIL \"bob\" \"example.org\")) ((\"Bob\" NIL \"bob\" \"example.org\")) ((\"Bob\" NIL \"bob\" \"example.org\")) ((NIL NIL \"alice\" \"example.com\")) NIL NIL NIL \"<1@example.org>\"))\r\nf OK FETCH completed.\r\n",
            MSG1.len()
        )
    );
    let out = w.send(a, "g FETCH 2 BODYSTRUCTURE\r\n");
    assert_eq!(
        out,
        "* 2 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL)(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 8 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"XX\") NIL NIL NIL))\r\ng OK FETCH completed.\r\n"
    );
    // PEEK leaves \Seen alone; BODY[] sets it and reports the new flags.
    let out = w.send(
        a,
        "h FETCH 2 (BODY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2])\r\n",
    );
    assert_eq!(
        out,
        "* 2 FETCH (BODY[1] {10}\r\nplain part BINARY[2] {5}\r\nhello BINARY.SIZE[2] 5)\r\nh OK FETCH completed.\r\n"
    );
    let out = w.send(a, "i FETCH 1 BODY[TEXT]<0.5>\r\n");
    assert_eq!(
        out,
        "* 1 FETCH (BODY[TEXT]<0> {5}\r\nFirst FLAGS (\\Seen \\Recent))\r\ni OK FETCH completed.\r\n"
    );
    let out = w.send(a, "j UID FETCH 1:* (FLAGS) \r\n");
    assert!(
        out.starts_with("j BAD") || out.contains("* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))"),
        "{out}"
    );
    let out = w.send(a, "k FETCH 1 (BODY.PEEK[HEADER.FIELDS (subject from)])\r\n");
    assert_eq!(
        out,
        "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {53}\r\nFrom: Bob <bob@example.org>\r\nSubject: Hello world\r\n\r\n)\r\nk OK FETCH completed.\r\n"
    );
    assert!(w.send(a, "l FETCH 3 FLAGS\r\n").starts_with("l BAD"));
}

#[test]
fn rfc9051_6_4_6_store_and_flag_propagation() {
    let mut w = World::new();
    let a = w.login();
    let b = w.login();
    w.append(a, "INBOX", MSG1);
    w.send(a, "s SELECT INBOX\r\n");
    w.send(b, "s SELECT INBOX\r\n");
    assert_eq!(
        w.send(a, "t STORE 1 +FLAGS (\\Flagged $Work)\r\n"),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags permitted.\r\n* 1 FETCH (FLAGS (\\Flagged $Work \\Recent))\r\nt OK STORE completed.\r\n"
    );
    // The other session hears it on NOOP.
    let out = w.send(b, "n NOOP\r\n");
    assert!(out.contains("* 1 FETCH (FLAGS (\\Flagged $Work))"), "{out}");
    assert!(out.ends_with("n OK NOOP completed.\r\n"), "{out}");
    assert_eq!(
        w.send(a, "u STORE 1 -FLAGS.SILENT (\\Flagged)\r\n"),
        "u OK STORE completed.\r\n"
    );
    assert!(w
        .send(a, "v STORE 1 +FLAGS (\\Recent)\r\n")
        .starts_with("v BAD"));
}

#[test]
fn rfc9051_7_5_1_no_expunge_during_fetch_store_search() {
    let mut w = World::new();
    let a = w.login();
    let b = w.login();
    w.append(a, "INBOX", MSG1);
    w.append(a, "INBOX", MSG2);
    w.send(a, "s SELECT INBOX\r\n");
    w.send(b, "s SELECT INBOX\r\n");
    assert_eq!(
        w.send(a, "x STORE 1 +FLAGS.SILENT (\\Deleted)\r\ny EXPUNGE\r\n"),
        "x OK STORE completed.\r\n* 1 EXPUNGE\r\ny OK EXPUNGE completed.\r\n"
    );
    // Session b must not hear of the expunge during FETCH, STORE or SEARCH...
    let out = w.send(b, "f FETCH 2 FLAGS\r\n");
    assert!(!out.contains("EXPUNGE"), "{out}");
    let out = w.send(b, "g SEARCH ALL\r\n");
    assert_eq!(
        out,
        "* SEARCH 1 2\r\ng OK SEARCH completed.\r\n".replace("1 2", "2"),
        "{out}"
    );
    // ...but hears it at NOOP, with renumbering.
    let out = w.send(b, "n NOOP\r\n");
    assert!(out.starts_with("* 1 EXPUNGE\r\n"), "{out}");
    assert_eq!(
        w.send(b, "h SEARCH ALL\r\n"),
        "* SEARCH 1\r\nh OK SEARCH completed.\r\n"
    );
}

#[test]
fn rfc9051_6_4_4_search_keys_and_esearch() {
    let mut w = World::new();
    let a = w.login();
    w.append(a, "INBOX", MSG1);
    w.append(a, "INBOX", MSG2);
    w.send(a, "s SELECT INBOX\r\n");
    let s = |w: &mut World, q: &str| w.send(a, &format!("q SEARCH {q}\r\n"));
    assert_eq!(
        s(&mut w, "FROM bob"),
        "* SEARCH 1\r\nq OK SEARCH completed.\r\n"
    );
    assert_eq!(
        s(&mut w, "SUBJECT \"hello WORLD\""),
        "* SEARCH 1\r\nq OK SEARCH completed.\r\n"
    );
    assert_eq!(
        s(&mut w, "BODY \"plain part\""),
        "* SEARCH 2\r\nq OK SEARCH completed.\r\n"
    );
    assert_eq!(
        s(&mut w, "OR FROM carol TEXT first"),
        "* SEARCH 1 2\r\nq OK SEARCH completed.\r\n"
    );
    assert_eq!(
        s(&mut w, "NOT SEEN LARGER 200"),
        "* SEARCH 2\r\nq OK SEARCH completed.\r\n"
    );
    assert_eq!(
        s(&mut w, "SENTON 2-Feb-2026"),
        "* SEARCH 1\r\nq OK SEARCH completed.\r\n"
    );
    assert_eq!(
        s(&mut w, "HEADER Message-ID \"\""),
        "* SEARCH 1\r\nq OK SEARCH completed.\r\n"
    );
    assert!(s(&mut w, "CHARSET KOI8-R FROM x").starts_with("q NO [BADCHARSET (UTF-8 US-ASCII)]"));
    assert_eq!(
        w.send(a, "r SEARCH RETURN (MIN MAX COUNT ALL) ALL\r\n"),
        "* ESEARCH (TAG \"r\") MIN 1 MAX 2 COUNT 2 ALL 1:2\r\nr OK SEARCH completed.\r\n"
    );
    // RFC 5182: save, then use $.
    assert_eq!(
        w.send(a, "t UID SEARCH RETURN (SAVE) FROM carol\r\n"),
        "t OK SEARCH completed.\r\n"
    );
    assert_eq!(
        w.send(a, "u FETCH $ (UID)\r\n"),
        "* 2 FETCH (UID 2)\r\nu OK FETCH completed.\r\n"
    );
}

#[test]
fn rfc9051_6_4_7_copy_move_and_uidplus() {
    let mut w = World::new();
    let a = w.login();
    w.append(a, "INBOX", MSG1);
    w.append(a, "INBOX", MSG2);
    w.send(a, "s SELECT INBOX\r\n");
    let out = w.send(a, "c COPY 1:2 Archive\r\n");
    assert!(out.starts_with("c OK [COPYUID "), "{out}");
    assert!(out.contains(" 1:2 1:2] COPY completed."), "{out}");
    assert!(w
        .send(a, "d COPY 1 Nowhere\r\n")
        .starts_with("d NO [TRYCREATE]"));
    let out = w.send(a, "m MOVE 1 Trash\r\n");
    let l = lines(&out);
    assert!(
        l[0].starts_with("* OK [COPYUID ") && l[0].ends_with(" 1 1] Moved UIDs."),
        "{out}"
    );
    assert_eq!(l[1], "* 1 EXPUNGE");
    assert_eq!(l[2], "m OK MOVE completed.");
    let out = w.send(a, "st STATUS Trash (MESSAGES UIDNEXT UNSEEN SIZE)\r\n");
    assert_eq!(
        out,
        format!(
            "* STATUS Trash (MESSAGES 1 UIDNEXT 2 UNSEEN 1 SIZE {})\r\nst OK STATUS completed.\r\n",
            MSG1.len()
        )
    );
}

#[test]
fn rfc9051_6_3_mailbox_management() {
    let mut w = World::new();
    let a = w.login();
    // RFC 8474 §4.1: the new mailbox's MAILBOXID comes with the OK.
    let created = w.send(a, "c CREATE a/b/c\r\n");
    assert!(
        created.starts_with("c OK [MAILBOXID (F") && created.ends_with(")] CREATE completed.\r\n"),
        "{created}"
    );
    assert!(w
        .send(a, "d CREATE a\r\n")
        .starts_with("d NO [ALREADYEXISTS]"));
    let out = w.send(a, "l LIST \"\" *\r\n");
    assert_eq!(
        out,
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren \\Archive) \"/\" Archive\r\n* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts\r\n* LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n* LIST (\\HasChildren) \"/\" a\r\n* LIST (\\HasChildren) \"/\" a/b\r\n* LIST (\\HasNoChildren) \"/\" a/b/c\r\nl OK LIST completed.\r\n"
    );
    assert_eq!(
        w.send(a, "m LIST \"\" \"\"\r\n"),
        "* LIST (\\Noselect) \"/\" \"\"\r\nm OK LIST completed.\r\n"
    );
    assert_eq!(
        w.send(a, "n LIST \"\" a/%\r\n"),
        "* LIST (\\HasChildren) \"/\" a/b\r\nn OK LIST completed.\r\n"
    );
    // RFC 9051 §6.3.5: deleting a parent leaves a \Noselect name.
    assert_eq!(w.send(a, "x DELETE a/b\r\n"), "x OK DELETE completed.\r\n");
    assert_eq!(
        w.send(a, "y LIST \"\" a/%\r\n"),
        "* LIST (\\Noselect \\HasChildren) \"/\" a/b\r\ny OK LIST completed.\r\n"
    );
    assert!(w.send(a, "z DELETE INBOX\r\n").starts_with("z NO"));
    assert_eq!(w.send(a, "r RENAME a x\r\n"), "r OK RENAME completed.\r\n");
    assert_eq!(
        w.send(a, "s LIST \"\" x*\r\n"),
        "* LIST (\\HasChildren) \"/\" x\r\n* LIST (\\Noselect \\HasChildren) \"/\" x/b\r\n* LIST (\\HasNoChildren) \"/\" x/b/c\r\ns OK LIST completed.\r\n"
    );
    // RENAME INBOX moves its messages and leaves INBOX empty.
    w.append(a, "INBOX", MSG1);
    assert_eq!(
        w.send(a, "t RENAME INBOX Old\r\n"),
        "t OK RENAME completed.\r\n"
    );
    assert!(w
        .send(a, "u STATUS INBOX (MESSAGES)\r\n")
        .starts_with("* STATUS INBOX (MESSAGES 0)"));
    assert!(w
        .send(a, "v STATUS Old (MESSAGES)\r\n")
        .starts_with("* STATUS Old (MESSAGES 1)"));
    assert_eq!(
        w.send(a, "w SUBSCRIBE nothing/here\r\n"),
        "w OK SUBSCRIBE completed.\r\n"
    );
    assert_eq!(
        w.send(a, "l LIST (SUBSCRIBED) \"\" nothing*\r\n"),
        "* LIST (\\NonExistent \\Subscribed) \"/\" nothing/here\r\nl OK LIST completed.\r\n"
    );
}

#[test]
fn rfc2177_idle_reports_at_once_and_pipelining_after_done_works() {
    let mut w = World::new();
    let a = w.login();
    let b = w.login();
    w.send(a, "s SELECT INBOX\r\n");
    assert_eq!(w.send(a, "i IDLE\r\n"), "+ idling\r\n");
    w.append(b, "INBOX", MSG1);
    assert_eq!(w.take(a), "* 1 EXISTS\r\n* 1 RECENT\r\n");
    // iOS Mail pipelines a command right after DONE.
    assert_eq!(
        w.send(a, "DONE\r\nn NOOP\r\n"),
        "i OK IDLE terminated.\r\nn OK NOOP completed.\r\n"
    );
    assert_eq!(w.send(a, "j IDLE\r\n"), "+ idling\r\n");
    w.now += Duration::from_secs(120);
    let now = w.now;
    w.sessions[a]
        .0
        .handle_input(Input::Timeout { now })
        .unwrap();
    w.run(a);
    assert_eq!(w.take(a), "* OK Still here\r\n");
    assert_eq!(w.send(a, "DONE\r\n"), "j OK IDLE terminated.\r\n");
}

#[test]
fn rfc9051_enable_imap4rev2_changes_the_dialect() {
    let mut w = World::new();
    let a = w.login();
    w.append(a, "INBOX", MSG1);
    assert_eq!(
        w.send(a, "e ENABLE IMAP4rev2 X-UNKNOWN\r\n"),
        "* ENABLED IMAP4rev2\r\ne OK ENABLE completed.\r\n"
    );
    let out = w.send(a, "s SELECT INBOX\r\n");
    assert!(!out.contains("RECENT") && !out.contains("UNSEEN"), "{out}");
    assert_eq!(
        w.send(a, "f SEARCH ALL\r\n"),
        "* ESEARCH (TAG \"f\") ALL 1\r\nf OK SEARCH completed.\r\n"
    );
    assert_eq!(
        w.send(a, "g FETCH 1 FLAGS\r\n"),
        "* 1 FETCH (FLAGS ())\r\ng OK FETCH completed.\r\n"
    );
    assert!(w.send(a, "h CREATE \"Entwürfe\"\r\n").starts_with("h OK"));
    assert!(w
        .send(a, "i LIST \"\" Entw*\r\n")
        .contains("\"/\" \"Entwürfe\""));
}

#[test]
fn uid_commands_find_messages_the_session_has_not_heard_of() {
    let mut w = World::new();
    let a = w.login();
    w.send(a, "s SELECT INBOX\r\n");
    // Appended directly to storage: no notification reaches the session.
    w.store
        .inner
        .execute(tern_core::StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![tern_core::store::NewMessage {
                flags: vec![],
                internal_date: None,
                data: bytes::Bytes::from_static(MSG1.as_bytes()),
            }],
        })
        .unwrap();
    let _ = w.store.inner.take_changes();
    let out = w.send(a, "u UID FETCH 1 (FLAGS)\r\n");
    assert_eq!(
        out,
        "* 1 EXISTS\r\n* 1 RECENT\r\n* 1 FETCH (UID 1 FLAGS (\\Recent))\r\nu OK FETCH completed.\r\n"
    );
}

/// The synchronisation a command ends with travels with the command's own request when the
/// view is known to be behind: one round trip, and the news still comes before the tagged
/// response (RFC 9051 §5.2: size changes observed while a command runs are reported).
#[test]
fn rfc9051_5_2_a_command_behind_the_mailbox_asks_for_news_with_its_request() {
    let mut w = World::new();
    let a = w.login();
    let b = w.login();
    w.append(a, "INBOX", MSG1);
    w.send(a, "s SELECT INBOX\r\n");
    w.append(b, "INBOX", MSG2);
    w.store.requests.clear();
    let out = w.send(a, "f FETCH 1 (FLAGS)\r\n");
    assert_eq!(
        out,
        "* 1 FETCH (FLAGS (\\Recent))\r\n* 2 EXISTS\r\n* 2 RECENT\r\nf OK FETCH completed.\r\n"
    );
    assert_eq!(w.store.requests, ["Then(Fetch, Changes)"]);
    // Up to date now: the next read goes alone.
    w.store.requests.clear();
    w.send(a, "g FETCH 2 (FLAGS)\r\n");
    assert_eq!(w.store.requests, ["Fetch"]);
}

/// A write and the look at the mailbox after it are one request; the session's own change is
/// reported once (by STORE's FETCH), not again by the synchronisation.
#[test]
fn rfc9051_6_4_6_a_store_and_its_synchronisation_are_one_request() {
    let mut w = World::new();
    let a = w.login();
    w.append(a, "INBOX", MSG1);
    w.send(a, "s SELECT INBOX\r\n");
    w.store.requests.clear();
    let out = w.send(a, "t STORE 1 +FLAGS (\\Flagged)\r\n");
    assert_eq!(
        out,
        "* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\nt OK STORE completed.\r\n"
    );
    assert_eq!(w.store.requests, ["Then(SetFlags, Changes)"]);
    w.store.requests.clear();
    let out = w.send(a, "n NOOP\r\n");
    assert_eq!(out, "n OK NOOP completed.\r\n");
    assert_eq!(w.store.requests, ["Changes"], "NOOP always looks");
}

/// A change notice names the MODSEQ the change reached: a session that has seen it (its own
/// change, or news a synchronisation already brought) does not look again, even in IDLE; a
/// newer one wakes it.
#[test]
fn rfc2177_a_notice_of_a_change_already_seen_wakes_nobody() {
    let mut w = World::new();
    let a = w.login();
    let b = w.login();
    w.append(a, "INBOX", MSG1);
    w.send(a, "s SELECT INBOX\r\n");
    assert_eq!(w.send(a, "i IDLE\r\n"), "+ idling\r\n");
    // b's STORE reaches a through the notice, and a reports it at once.
    w.send(b, "s SELECT INBOX\r\n");
    w.send(b, "t STORE 1 +FLAGS.SILENT (\\Flagged)\r\n");
    let out = w.take(a);
    assert_eq!(out, "* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n");
    // The same notice again (a runtime may deliver a late or repeated one): nothing to do.
    let Ok(tern_core::StorageReply::Status(status)) = w.store.inner.execute(StorageOp::Status {
        account: "alice".into(),
        name: "INBOX".into(),
    }) else {
        panic!("STATUS failed");
    };
    w.store.requests.clear();
    w.sessions[a]
        .0
        .handle_input(Input::MailboxChanged {
            now: w.now,
            account: "alice",
            mailbox: tern_core::store::MailboxId(1),
            modseq: status.highest_modseq,
        })
        .unwrap();
    w.run(a);
    assert_eq!(w.take(a), "");
    assert!(w.store.requests.is_empty(), "{:?}", w.store.requests);
    // A notice beyond what the view holds makes the idling session look.
    w.sessions[a]
        .0
        .handle_input(Input::MailboxChanged {
            now: w.now,
            account: "alice",
            mailbox: tern_core::store::MailboxId(1),
            modseq: status.highest_modseq + 1,
        })
        .unwrap();
    w.run(a);
    assert_eq!(w.store.requests, ["Changes"]);
    assert_eq!(w.send(a, "DONE\r\n"), "i OK IDLE terminated.\r\n");
}

/// RFC 3516 §4.2 and RFC 9051 §6.4.5: a non-PEEK BINARY sets `\Seen` even when the part cannot
/// be decoded, as Dovecot 2.3 does on the wire (`* 2 FETCH (FLAGS (\Seen \Recent))`, then
/// `NO [UNKNOWN-CTE]`; for UID FETCH `* 2 FETCH (UID 2 FLAGS (\Seen \Recent))`). The change
/// must reach the client: with the FETCH, and not a second time at the next NOOP. Other
/// sessions hear it at their next synchronisation.
#[test]
fn rfc3516_failed_binary_reports_the_seen_it_set() {
    const ODD: &str = "Subject: odd\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nplain part\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-weird\r\n\r\naGVsbG8=\r\n--XX--\r\n";
    let mut w = World::new();
    let a = w.login();
    let b = w.login();
    w.append(a, "INBOX", ODD);
    w.append(a, "INBOX", ODD);
    w.send(a, "s SELECT INBOX\r\n");
    w.send(b, "s SELECT INBOX\r\n");
    assert_eq!(
        w.send(a, "f FETCH 1 (BINARY[2])\r\n"),
        "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\nf NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding.\r\n"
    );
    assert_eq!(w.send(a, "n NOOP\r\n"), "n OK NOOP completed.\r\n");
    // The items that could be answered are; the one that could not is left out.
    assert_eq!(
        w.send(a, "u UID FETCH 2 (BODY[1] BINARY[2] RFC822.SIZE)\r\n"),
        format!(
            "* 2 FETCH (UID 2 BODY[1] {{10}}\r\nplain part RFC822.SIZE {} FLAGS (\\Seen \\Recent))\r\nu NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding.\r\n",
            ODD.len()
        )
    );
    assert_eq!(w.send(a, "n NOOP\r\n"), "n OK NOOP completed.\r\n");
    // Already seen: nothing changes, nothing to report.
    assert_eq!(
        w.send(a, "g FETCH 1 (BINARY[2])\r\n"),
        "g NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding.\r\n"
    );
    let other = w.send(b, "n NOOP\r\n");
    assert!(other.contains("* 1 FETCH (FLAGS (\\Seen))"), "{other}");
    assert!(other.contains("* 2 FETCH (FLAGS (\\Seen))"), "{other}");
}

/// A FETCH of headers only (what a client listing a mailbox sends) asks storage for the
/// header octets and so for many messages at a time; the answers are those of the whole
/// message (RFC 9051 §6.4.5: HEADER.FIELDS, RFC822.HEADER).
#[test]
fn rfc9051_6_4_5_a_fetch_of_headers_takes_few_requests() {
    let mut w = World::new();
    let a = w.login();
    for i in 0..60 {
        let body = "x".repeat(3000);
        w.append(
            a,
            "INBOX",
            &format!("Subject: number {i}\r\nFrom: a@example.org\r\n\r\n{body}\r\n"),
        );
    }
    w.send(a, "s SELECT INBOX\r\n");
    w.store.requests.clear();
    let out = w.send(
        a,
        "f FETCH 1:60 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE RFC822.HEADER)\r\n",
    );
    assert_eq!(w.store.requests.len(), 2, "{:?}", w.store.requests);
    for i in 0..60u32 {
        let header = format!("Subject: number {i}\r\nFrom: a@example.org\r\n\r\n");
        let size = header.len() + 3002;
        let line = format!(
            "* {} FETCH (UID {} BODY[HEADER.FIELDS (SUBJECT)] {{{}}}\r\nSubject: number {i}\r\n\r\n RFC822.SIZE {size} RFC822.HEADER {{{}}}\r\n{header})\r\n",
            i + 1,
            i + 1,
            format!("Subject: number {i}\r\n\r\n").len(),
            header.len(),
        );
        assert!(out.contains(&line), "{line}\nnot in\n{out}");
    }
    // Anything beyond the header still gets the whole message.
    w.store.requests.clear();
    let out = w.send(a, "g FETCH 1:60 (BODY.PEEK[HEADER] BODY.PEEK[TEXT])\r\n");
    assert_eq!(w.store.requests.len(), 8, "{:?}", w.store.requests);
    assert!(out.contains(&"x".repeat(3000)));
}

/// A notice whose MODSEQ is unknown (one was lost to a full queue) makes the session look once,
/// with its next command, whichever mailbox it names (the lost one may have been the selected
/// one); the look covers it, and later commands go alone again.
#[test]
fn a_notice_of_unknown_modseq_costs_one_look() {
    let mut w = World::new();
    let a = w.login();
    w.append(a, "INBOX", MSG1);
    w.send(a, "s SELECT INBOX\r\n");
    w.sessions[a]
        .0
        .handle_input(Input::MailboxChanged {
            now: w.now,
            account: "alice",
            mailbox: tern_core::store::MailboxId(99),
            modseq: tern_core::store::UNKNOWN_MODSEQ,
        })
        .unwrap();
    w.run(a);
    w.store.requests.clear();
    w.send(a, "f FETCH 1 (FLAGS)\r\n");
    w.send(a, "g FETCH 1 (FLAGS)\r\n");
    assert_eq!(w.store.requests, ["Then(Fetch, Changes)", "Fetch"]);
}

/// A FETCH in several batches joins its synchronisation to the last one only: joined to the
/// first, it reported a message's flags as another session left them, after a later batch had
/// set `\Seen` on it and said so (RFC 9051 §6.4.5: the FLAGS last sent must be the current).
#[test]
fn rfc9051_6_4_5_a_batched_fetch_reports_its_own_seen_last() {
    let mut w = World::new();
    let a = w.login();
    let b = w.login();
    for _ in 0..20 {
        w.append(a, "INBOX", MSG1);
    }
    w.send(a, "s SELECT INBOX\r\n");
    w.send(b, "s SELECT INBOX\r\n");
    w.send(b, "t STORE 15 +FLAGS.SILENT (\\Flagged)\r\n");
    w.store.requests.clear();
    let out = w.send(a, "f FETCH 1:20 (BODY[TEXT])\r\n");
    assert!(out.contains(" FLAGS (\\Flagged \\Seen \\Recent))"), "{out}");
    // No later, older FLAGS for it (the stale synchronisation said `(\Flagged \Recent)`).
    assert!(
        out.lines()
            .filter(|l| l.starts_with("* 15 FETCH (FLAGS"))
            .all(|l| l.contains("\\Seen")),
        "{out}"
    );
    assert_eq!(
        w.store.requests,
        ["Fetch", "Fetch", "Then(Fetch, Changes)"],
        "{out}"
    );
}
