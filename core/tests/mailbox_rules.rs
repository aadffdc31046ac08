//! The protocol's rules about particular mailboxes (`tern_core::store::rules`), checked through
//! the session: INBOX cannot be deleted or created, RENAME INBOX moves its messages, and a new
//! account starts with the mailboxes of the template its store is given. The stores treat
//! every name alike; these rules hold whatever store answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use tern_core::directory::MemDirectory;
use tern_core::drive::pump;
use tern_core::store::{AccountTemplate, Changed, NewMailbox, SpecialUse, StorageReply};
use tern_core::{
    Input, MemStore, Protocol, Session, SessionConfig, StorageOp, StorageResult, Store, Transport,
};

/// A store in front of `MemStore` that records every request and, when `obliging`, answers
/// every mailbox change with success without doing anything: a store with no rules at all.
struct Recording {
    inner: MemStore,
    ops: Vec<StorageOp>,
    obliging: bool,
}

impl Recording {
    fn new(obliging: bool) -> Recording {
        let inner = MemStore::new();
        Recording {
            inner,
            ops: Vec::new(),
            obliging,
        }
    }

    fn mailbox_changes(&self) -> Vec<&StorageOp> {
        self.ops
            .iter()
            .filter(|op| {
                matches!(
                    op,
                    StorageOp::CreateMailbox { .. }
                        | StorageOp::DeleteMailbox { .. }
                        | StorageOp::RenameMailbox { .. }
                        | StorageOp::MoveAllMessages { .. }
                )
            })
            .collect()
    }
}

impl Store for Recording {
    fn execute(&mut self, op: StorageOp) -> StorageResult {
        self.ops.push(op.clone());
        let change = matches!(
            op,
            StorageOp::CreateMailbox { .. }
                | StorageOp::DeleteMailbox { .. }
                | StorageOp::RenameMailbox { .. }
                | StorageOp::MoveAllMessages { .. }
        );
        if self.obliging && change {
            return Ok(StorageReply::Done);
        }
        self.inner.execute(op)
    }

    fn take_changes(&mut self) -> Vec<Changed> {
        self.inner.take_changes()
    }
}

/// Sessions of alice on one store, with change notices delivered as the runtime does.
struct World {
    store: Recording,
    directory: MemDirectory,
    now: Instant,
    sessions: Vec<(Session, Vec<u8>)>,
}

impl World {
    fn new(store: Recording) -> World {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut directory = MemDirectory::new();
        directory.add_user("alice", "pw");
        World {
            store,
            directory,
            now,
            sessions: Vec::new(),
        }
    }

    fn login(&mut self) -> usize {
        let mut config = SessionConfig::new(Protocol::Imap, Transport::ImplicitTls);
        config.plaintext_auth_without_tls = true;
        self.sessions
            .push((Session::new(config, self.now), Vec::new()));
        let i = self.sessions.len() - 1;
        self.run(i);
        self.sessions[i].1.clear();
        let out = self.send(i, "l LOGIN alice pw\r\n");
        assert!(out.starts_with("l OK"), "{out}");
        i
    }

    fn run(&mut self, i: usize) {
        let (session, wire) = &mut self.sessions[i];
        pump(
            session,
            &mut self.store,
            &mut self.directory,
            self.now,
            &mut |b| wire.extend_from_slice(b),
        )
        .unwrap();
        for change in self.store.take_changes() {
            for j in 0..self.sessions.len() {
                if j != i {
                    self.sessions[j]
                        .0
                        .handle_input(Input::MailboxChanged {
                            now: self.now,
                            account: &change.account,
                            mailbox: change.mailbox,
                            modseq: change.modseq,
                        })
                        .unwrap();
                    self.run(j);
                }
            }
        }
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
        String::from_utf8(std::mem::take(&mut self.sessions[i].1)).unwrap()
    }

    fn append(&mut self, i: usize, mailbox: &str, flags: &str, message: &str) -> String {
        self.send(
            i,
            &format!(
                "a APPEND {mailbox} ({flags}) {{{}+}}\r\n{message}\r\n",
                message.len()
            ),
        )
    }
}

const MSG: &str = "From: Bob <bob@example.org>\r\nSubject: one\r\n\r\nbody\r\n";

/// RFC 9051 §6.3.5: "It is an error to attempt to delete the name INBOX". The refusal is the
/// session's, before storage is asked, so its wording is the same whatever the store (before,
/// each store refused with its own text).
#[test]
fn deleting_inbox_is_refused_the_same_way_whatever_the_store() {
    let mut answers = Vec::new();
    for obliging in [false, true] {
        let mut w = World::new(Recording::new(obliging));
        let a = w.login();
        let out = [
            w.send(a, "d1 DELETE INBOX\r\n"),
            w.send(a, "d2 DELETE inbox\r\n"),
            w.send(a, "d3 DELETE \"InBoX\"\r\n"),
        ];
        assert_eq!(
            out,
            [
                "d1 NO [CANNOT] INBOX cannot be deleted.\r\n",
                "d2 NO [CANNOT] INBOX cannot be deleted.\r\n",
                "d3 NO [CANNOT] INBOX cannot be deleted.\r\n",
            ]
        );
        assert!(w.store.mailbox_changes().is_empty(), "{:?}", w.store.ops);
        // CREATE INBOX and RENAME onto it are refused the same way, whatever attribute
        // comes with the CREATE.
        assert_eq!(
            w.send(a, "c1 CREATE inbox\r\n"),
            "c1 NO [ALREADYEXISTS] INBOX always exists.\r\n"
        );
        assert_eq!(
            w.send(a, "c2 CREATE INBOX (USE (\\Bogus))\r\n"),
            "c2 NO [ALREADYEXISTS] INBOX always exists.\r\n"
        );
        assert_eq!(
            w.send(a, "r1 RENAME Drafts Inbox\r\n"),
            "r1 NO [ALREADYEXISTS] INBOX always exists.\r\n"
        );
        assert!(w.store.mailbox_changes().is_empty(), "{:?}", w.store.ops);
        // Children of INBOX are ordinary mailboxes.
        // With MAILBOXID (RFC 8474 §4.1) when the store names the mailbox.
        let created = w.send(a, "c3 CREATE INBOX/old\r\n");
        assert!(
            created.starts_with("c3 OK ") && created.ends_with("CREATE completed.\r\n"),
            "{created}"
        );
        assert_eq!(
            w.send(a, "d4 DELETE inbox/old\r\n"),
            "d4 OK DELETE completed.\r\n"
        );
        answers.push(out);
    }
    assert_eq!(answers[0], answers[1]);
}

/// RFC 9051 §6.3.6: renaming INBOX moves all its messages to a new mailbox with the given
/// name, leaving INBOX empty; its children are not renamed. The session asks the store for
/// `MoveAllMessages`; the store does it as it would for any name.
#[test]
fn renaming_inbox_moves_its_messages_and_leaves_it_empty() {
    let mut w = World::new(Recording::new(false));
    let a = w.login();
    let b = w.login();
    assert!(w.append(a, "INBOX", "\\Flagged", MSG).contains("OK"));
    assert!(w.append(a, "INBOX", "$Label1", MSG).contains("OK"));
    assert!(w
        .send(a, "c CREATE INBOX/kept\r\n")
        .contains("CREATE completed."));
    // Another session has INBOX selected: it hears of the move as expunges.
    assert!(w.send(b, "s SELECT INBOX\r\n").contains("* 2 EXISTS"));

    assert_eq!(
        w.send(a, "r RENAME inbox Archive/2026\r\n"),
        "r OK RENAME completed.\r\n"
    );
    assert_eq!(
        w.store.mailbox_changes().last().copied(),
        Some(&StorageOp::MoveAllMessages {
            account: "alice".into(),
            from: "INBOX".into(),
            to: "Archive/2026".into(),
        })
    );
    assert_eq!(
        w.send(a, "s1 STATUS INBOX (MESSAGES UIDNEXT)\r\n"),
        "* STATUS INBOX (MESSAGES 0 UIDNEXT 3)\r\ns1 OK STATUS completed.\r\n"
    );
    assert_eq!(
        w.send(a, "s2 STATUS Archive/2026 (MESSAGES UIDNEXT)\r\n"),
        "* STATUS Archive/2026 (MESSAGES 2 UIDNEXT 3)\r\ns2 OK STATUS completed.\r\n"
    );
    // Flags travel with the messages; INBOX's child stays where it was.
    assert!(w.send(a, "e EXAMINE Archive/2026\r\n").contains("OK"));
    let flags = w.send(a, "f FETCH 1:* FLAGS\r\n");
    // \Recent too: they are new to the new mailbox (IMAP4rev1 session).
    assert_eq!(
        flags,
        "* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n* 2 FETCH (FLAGS ($Label1 \\Recent))\r\nf OK FETCH completed.\r\n"
    );
    let list = w.send(a, "l LIST \"\" INBOX*\r\n");
    assert_eq!(
        list,
        "* LIST (\\HasChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren) \"/\" INBOX/kept\r\nl OK LIST completed.\r\n"
    );
    let noop = w.send(b, "n NOOP\r\n");
    assert_eq!(
        noop,
        "* 1 EXPUNGE\r\n* 1 EXPUNGE\r\nn OK NOOP completed.\r\n"
    );
    // INBOX goes on receiving mail; the new name is a mailbox like any other.
    assert!(w.append(a, "INBOX", "", MSG).contains("OK"));
    assert_eq!(
        w.send(a, "r2 RENAME inbox Archive/2026\r\n"),
        "r2 NO [ALREADYEXISTS] Mailbox already exists.\r\n"
    );
    assert_eq!(
        w.send(a, "r3 RENAME INBOX INBOX/kept/more\r\n"),
        "r3 NO [CANNOT] Cannot rename a mailbox into itself.\r\n"
    );
}

/// A new account starts with INBOX and the special-use mailboxes, all subscribed: what the
/// rules' template says, which the store is handed.
#[test]
fn a_new_account_starts_with_the_template_its_store_was_given() {
    let mut w = World::new(Recording::new(false));
    let a = w.login();
    assert_eq!(
        w.send(a, "l LIST \"\" * RETURN (SUBSCRIBED SPECIAL-USE)\r\n"),
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX\r\n\
         * LIST (\\HasNoChildren \\Archive \\Subscribed) \"/\" Archive\r\n\
         * LIST (\\HasNoChildren \\Drafts \\Subscribed) \"/\" Drafts\r\n\
         * LIST (\\HasNoChildren \\Junk \\Subscribed) \"/\" Junk\r\n\
         * LIST (\\HasNoChildren \\Sent \\Subscribed) \"/\" Sent\r\n\
         * LIST (\\HasNoChildren \\Trash \\Subscribed) \"/\" Trash\r\n\
         l OK LIST completed.\r\n"
    );
    // No CREATE went to the store: the account came into being with its mailboxes.
    assert!(w.store.mailbox_changes().is_empty());

    // Another template: the store creates what it is given, nothing of its own.
    let mut store = Recording::new(false);
    store.inner.set_account_template(AccountTemplate {
        mailboxes: vec![
            NewMailbox {
                name: "INBOX".into(),
                special_use: None,
                subscribed: true,
            },
            NewMailbox {
                name: "Papierkorb".into(),
                special_use: Some(SpecialUse::Trash),
                subscribed: false,
            },
        ],
    });
    let mut w = World::new(store);
    let a = w.login();
    assert_eq!(
        w.send(a, "l LIST \"\" * RETURN (SUBSCRIBED)\r\n"),
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX\r\n\
         * LIST (\\HasNoChildren \\Trash) \"/\" Papierkorb\r\n\
         l OK LIST completed.\r\n"
    );
}
