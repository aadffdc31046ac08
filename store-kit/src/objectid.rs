//! [`object_ids`]: what RFC 8474 (OBJECTID) asks of the numbers a store gives mailboxes,
//! messages and conversations, and of the account key that makes them strings, through every
//! request that moves them: RENAME, DELETE and CREATE of the same name, RENAME of INBOX
//! (`MoveAllMessages`), COPY, MOVE, `ImportMessages`, and a restart of the store. The random
//! histories compare these numbers between stores; this check says what they must be.

use bytes::Bytes;
use tern_core::mail::date::from_unix;
use tern_core::store::objectid;
use tern_core::store::{
    EmailId, FetchWant, MailStore, MailboxId, NewMessage, ObjectKey, StorageOp, StorageReply,
    StorageResult, ThreadId, Uid,
};

use crate::Backend;

const NOW: i64 = 1_767_225_600;

fn run(store: &dyn MailStore, op: StorageOp) -> StorageResult {
    store.execute(op, NOW, &|| false)
}

fn message(headers: &str, n: i64) -> NewMessage {
    NewMessage {
        flags: Vec::new(),
        internal_date: Some(from_unix(1_600_000_000 + n, 0)),
        data: Bytes::from(format!("{headers}Subject: s\r\n\r\nbody\r\n")),
    }
}

fn append(store: &dyn MailStore, account: &str, name: &str, messages: Vec<NewMessage>) -> Vec<Uid> {
    match run(
        store,
        StorageOp::Append {
            account: account.into(),
            name: name.into(),
            messages,
        },
    ) {
        Ok(StorageReply::Appended { uids, .. }) => uids,
        other => panic!("APPEND to {name}: {other:?}"),
    }
}

fn op_ok(store: &dyn MailStore, op: StorageOp) -> StorageReply {
    let shown = format!("{op:?}");
    match run(store, op) {
        Ok(reply) => reply,
        Err(e) => panic!("{shown}: {e}"),
    }
}

/// (MailboxId, key) of a mailbox, by STATUS.
fn mailbox(store: &dyn MailStore, account: &str, name: &str) -> (MailboxId, ObjectKey) {
    match op_ok(
        store,
        StorageOp::Status {
            account: account.into(),
            name: name.into(),
        },
    ) {
        StorageReply::Status(s) => (
            s.id.unwrap_or_else(|| panic!("STATUS {name} names no mailbox")),
            s.object_key,
        ),
        other => panic!("STATUS {name}: {other:?}"),
    }
}

/// (UID, EMAILID, THREADID) of every message of a mailbox.
fn ids(store: &dyn MailStore, account: &str, name: &str) -> Vec<(Uid, EmailId, ThreadId)> {
    let (id, _) = mailbox(store, account, name);
    match op_ok(
        store,
        StorageOp::Fetch {
            account: account.into(),
            mailbox: id,
            uids: (1..64).collect(),
            want: FetchWant::default(),
            mark_seen: false,
        },
    ) {
        StorageReply::Fetched(f) => f
            .into_iter()
            .map(|m| (m.uid, m.email_id, m.thread_id))
            .collect(),
        other => panic!("FETCH {name}: {other:?}"),
    }
}

fn search(store: &dyn MailStore, name: &str, query: tern_core::store::Query) -> Vec<Uid> {
    let (id, _) = mailbox(store, "alice", name);
    match op_ok(
        store,
        StorageOp::Search {
            account: "alice".into(),
            mailbox: id,
            uids: (1..64).collect(),
            query,
        },
    ) {
        StorageReply::Found(u) => u,
        other => panic!("SEARCH {name}: {other:?}"),
    }
}

fn create(store: &dyn MailStore, name: &str) -> MailboxId {
    match op_ok(
        store,
        StorageOp::CreateMailbox {
            account: "alice".into(),
            name: name.into(),
            special_use: None,
        },
    ) {
        StorageReply::Created { mailbox, .. } => mailbox,
        other => panic!("CREATE {name}: {other:?}"),
    }
}

/// Runs the check on a fresh store of `backend` (restarting it when it can); panics with what
/// is wrong.
pub fn object_ids(backend: &mut dyn Backend) {
    let mut store = backend.fresh(None);

    // Conversations: a reply arriving before its parent, the parent, a sibling naming only
    // the root, an unrelated message, and an identical copy of the unrelated one.
    let root = "Message-ID: <root@x>\r\n";
    let reply = "Message-ID: <reply@x>\r\nReferences: <root@x> <parent@x>\r\n";
    let parent = "Message-ID: <parent@x>\r\nIn-Reply-To: <root@x>\r\n";
    let sibling = "Message-ID: <sibling@x>\r\nReferences: <root@x>\r\n";
    let other = "Message-ID: <other@x>\r\n";
    append(
        &*store,
        "alice",
        "INBOX",
        vec![
            message(reply, 1),
            message(parent, 2),
            message(sibling, 3),
            message(other, 4),
            message(other, 4),
        ],
    );
    append(&*store, "alice", "INBOX", vec![message(root, 5)]);
    let inbox = ids(&*store, "alice", "INBOX");
    assert_eq!(inbox.len(), 6);
    let emails: std::collections::BTreeSet<EmailId> = inbox.iter().map(|m| m.1).collect();
    assert_eq!(
        emails.len(),
        6,
        "every stored message has its own EMAILID, identical ones too: {inbox:?}"
    );
    let thread = |uid: Uid| inbox.iter().find(|m| m.0 == uid).map(|m| m.2);
    assert_eq!(thread(2), thread(1), "a parent joins its earlier reply");
    assert_eq!(thread(3), thread(1), "a sibling joins through the root");
    assert_eq!(thread(6), thread(1), "the root joins its replies");
    assert_ne!(thread(4), thread(1), "an unrelated message has its own");
    assert_eq!(
        thread(5),
        thread(4),
        "a duplicate Message-ID joins the first"
    );
    assert!(
        inbox.iter().all(|m| m.2 .0 != 0 && m.1 .0 != 0),
        "every message is threaded: {inbox:?}"
    );
    let (a, ta) = (inbox[0].1, inbox[0].2);
    assert_eq!(
        search(&*store, "INBOX", tern_core::store::Query::EmailId(a)),
        vec![1]
    );
    assert_eq!(
        search(&*store, "INBOX", tern_core::store::Query::ThreadId(ta)),
        vec![1, 2, 3, 6]
    );

    // COPY keeps both identifiers; MOVE keeps them and the source loses the message.
    let made = create(&*store, "foo");
    let (made_status, key) = mailbox(&*store, "alice", "foo");
    assert_eq!(made, made_status, "CREATE names the mailbox STATUS names");
    let inbox_id = mailbox(&*store, "alice", "INBOX").0;
    for (uid, remove) in [(1, false), (4, true)] {
        op_ok(
            &*store,
            StorageOp::CopyMove {
                account: "alice".into(),
                mailbox: inbox_id,
                uids: vec![uid],
                target: "foo".into(),
                remove,
            },
        );
    }
    let copied = ids(&*store, "alice", "foo");
    assert_eq!(
        copied.iter().map(|m| (m.1, m.2)).collect::<Vec<_>>(),
        vec![(inbox[0].1, inbox[0].2), (inbox[3].1, inbox[3].2)],
        "COPY and MOVE keep EMAILID and THREADID"
    );

    // RENAME keeps the mailbox's identity; DELETE and CREATE of the name give a new one.
    op_ok(
        &*store,
        StorageOp::RenameMailbox {
            account: "alice".into(),
            from: "foo".into(),
            to: "bar/foo".into(),
        },
    );
    assert_eq!(
        mailbox(&*store, "alice", "bar/foo").0,
        made,
        "RENAME keeps MAILBOXID"
    );
    assert_eq!(ids(&*store, "alice", "bar/foo"), copied);
    op_ok(
        &*store,
        StorageOp::DeleteMailbox {
            account: "alice".into(),
            name: "bar/foo".into(),
        },
    );
    let again = create(&*store, "bar/foo");
    assert_ne!(again, made, "a name made again is another mailbox");
    let bar = mailbox(&*store, "alice", "bar").0;
    assert!(![made, inbox_id, bar].contains(&again));

    // RENAME of INBOX: INBOX keeps its identity, the new mailbox gets a new one, and the
    // messages keep theirs.
    let before = ids(&*store, "alice", "INBOX");
    op_ok(
        &*store,
        StorageOp::MoveAllMessages {
            account: "alice".into(),
            from: "INBOX".into(),
            to: "Old".into(),
        },
    );
    assert_eq!(mailbox(&*store, "alice", "INBOX").0, inbox_id);
    let old = mailbox(&*store, "alice", "Old").0;
    assert!(![made, inbox_id, bar, again].contains(&old));
    let moved: Vec<(EmailId, ThreadId)> = ids(&*store, "alice", "Old")
        .into_iter()
        .map(|m| (m.1, m.2))
        .collect();
    assert_eq!(
        moved,
        before.iter().map(|m| (m.1, m.2)).collect::<Vec<_>>(),
        "RENAME of INBOX moves the messages with their identifiers"
    );

    // An import stores messages as APPEND does: new EMAILIDs, conversations joined.
    let imported = op_ok(
        &*store,
        StorageOp::ImportMessages {
            account: "alice".into(),
            name: "Imported".into(),
            uid_validity: 77,
            uid_next: 10,
            messages: vec![(
                3,
                message("Message-ID: <late@x>\r\nIn-Reply-To: <other@x>\r\n", 9),
            )],
        },
    );
    assert!(
        matches!(imported, StorageReply::Appended { .. }),
        "{imported:?}"
    );
    let late = ids(&*store, "alice", "Imported");
    assert_eq!(late.len(), 1);
    assert!(
        !emails.contains(&late[0].1),
        "an imported message has a new EMAILID"
    );
    assert_eq!(
        late[0].2, inbox[3].2,
        "an imported reply joins its parent's conversation"
    );

    // Another account has another key: its identifiers say nothing of this one's.
    append(&*store, "bob", "INBOX", vec![message(root, 1)]);
    let (_, bob_key) = mailbox(&*store, "bob", "INBOX");
    assert_ne!(
        objectid::mailbox(bob_key, MailboxId(1)),
        objectid::mailbox(key, MailboxId(1)),
        "accounts have their own keys"
    );
    let bob = ids(&*store, "bob", "INBOX");
    assert_eq!(
        bob[0].2, inbox[0].2,
        "numbers are per account, the same in both here"
    );
    assert_ne!(
        objectid::thread(bob_key, bob[0].2),
        objectid::thread(key, inbox[0].2),
        "but not their strings"
    );

    // A restart changes nothing: keys, numbers, and the map of conversations.
    if backend.can_restart() {
        let snapshot = (
            ids(&*store, "alice", "Old"),
            ids(&*store, "alice", "Imported"),
            mailbox(&*store, "alice", "INBOX"),
            mailbox(&*store, "alice", "bar/foo"),
        );
        store = backend.restart(store);
        let after = (
            ids(&*store, "alice", "Old"),
            ids(&*store, "alice", "Imported"),
            mailbox(&*store, "alice", "INBOX"),
            mailbox(&*store, "alice", "bar/foo"),
        );
        assert_eq!(after, snapshot, "identifiers survive a restart");
        append(
            &*store,
            "alice",
            "INBOX",
            vec![message(
                "Message-ID: <after@x>\r\nReferences: <root@x>\r\n",
                10,
            )],
        );
        let new = ids(&*store, "alice", "INBOX");
        assert_eq!(new.len(), 1);
        assert_eq!(
            new[0].2, inbox[0].2,
            "the map of conversations survives a restart"
        );
        assert!(
            !emails.contains(&new[0].1) && new[0].1 != late[0].1,
            "EMAILIDs are not given again after a restart"
        );
    }
}
