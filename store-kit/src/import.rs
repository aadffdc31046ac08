//! [`import_identifiers`]: `StorageOp::ImportMessages` keeps the identifiers it is given and
//! refuses the ones that do not fit, in every store alike (`tern import` from Dovecot relies
//! on it; the session never sends it, so the random histories do not cover it).

use bytes::Bytes;
use tern_core::mail::date::from_unix;
use tern_core::mail::flags::Flag;
use tern_core::store::{
    FetchWant, MailStore, NewMessage, StorageError, StorageOp, StorageReply, StorageResult, Uid,
};

use crate::Backend;

const NOW: i64 = 1_767_225_600;

fn run(store: &dyn MailStore, op: StorageOp) -> StorageResult {
    store.execute(op, NOW, &|| false)
}

fn message(n: u32, flags: Vec<Flag>) -> NewMessage {
    NewMessage {
        flags,
        internal_date: Some(from_unix(1_600_000_000 + i64::from(n), 60)),
        data: Bytes::from(format!("Subject: {n}\r\n\r\nbody {n}\r\n")),
    }
}

fn import(name: &str, uid_validity: u32, uid_next: Uid, uids: &[Uid]) -> StorageOp {
    StorageOp::ImportMessages {
        account: "alice".into(),
        name: name.into(),
        uid_validity,
        uid_next,
        messages: uids
            .iter()
            .map(|&u| {
                let flags = if u % 2 == 0 {
                    vec![Flag::Flagged, Flag::Keyword(Bytes::from_static(b"$Label1"))]
                } else {
                    vec![Flag::Seen]
                };
                (u, message(u, flags))
            })
            .collect(),
    }
}

fn status(store: &dyn MailStore, name: &str) -> (u32, Uid, u32, u64) {
    match run(
        store,
        StorageOp::Status {
            account: "alice".into(),
            name: name.into(),
        },
    ) {
        Ok(StorageReply::Status(s)) => (s.uid_validity, s.uid_next, s.messages, s.highest_modseq),
        other => panic!("STATUS {name}: {other:?}"),
    }
}

fn conflict(result: StorageResult) -> bool {
    matches!(result, Err(StorageError::UidConflict(_)))
}

/// Runs the check on a fresh store of `backend`; panics with what differs.
pub fn import_identifiers(backend: &mut dyn Backend) {
    let store = backend.fresh(None);
    let store = &*store;

    // A missing mailbox (and its parent) is created with the source's UIDVALIDITY; UIDs keep
    // their gaps; UIDNEXT ends at the source's.
    let reply = run(store, import("a/b", 1_234_567, 40, &[2, 5, 17]));
    let Ok(StorageReply::Appended {
        uid_validity,
        uids,
        mailbox,
    }) = reply
    else {
        panic!("import into a new mailbox: {reply:?}");
    };
    assert_eq!((uid_validity, uids), (1_234_567, vec![2, 5, 17]));
    let (validity, next, messages, _) = status(store, "a/b");
    assert_eq!(
        (validity, next, messages),
        (1_234_567, 40, 3),
        "UIDVALIDITY and UIDNEXT are the source's"
    );
    let list = run(
        store,
        StorageOp::ListMailboxes {
            account: "alice".into(),
        },
    );
    assert!(
        matches!(&list, Ok(StorageReply::Mailboxes(l)) if l.mailboxes.iter().any(|m| m.name == "a")),
        "the parent is created: {list:?}"
    );

    // Flags, keywords and internal dates are the given ones.
    let fetched = run(
        store,
        StorageOp::Fetch {
            account: "alice".into(),
            mailbox,
            uids: vec![2, 5, 17],
            want: FetchWant {
                content: true,
                info: false,
                header_only: false,
                ..Default::default()
            },
            mark_seen: false,
        },
    );
    let Ok(StorageReply::Fetched(fetched)) = fetched else {
        panic!("FETCH: {fetched:?}");
    };
    assert_eq!(fetched.len(), 3);
    for m in &fetched {
        let want = if m.uid % 2 == 0 {
            vec![Flag::Flagged, Flag::Keyword(Bytes::from_static(b"$Label1"))]
        } else {
            vec![Flag::Seen]
        };
        let mut got = m.flags.to_flags();
        got.sort_by_key(|f| format!("{f:?}"));
        let mut want = want;
        want.sort_by_key(|f| format!("{f:?}"));
        assert_eq!(got, want, "flags of UID {}", m.uid);
        assert_eq!(
            m.internal_date,
            from_unix(1_600_000_000 + i64::from(m.uid), 60)
        );
        let body = m.content.as_ref().map(|b| b.to_bytes().unwrap());
        assert_eq!(
            body.as_deref(),
            Some(format!("Subject: {}\r\n\r\nbody {}\r\n", m.uid, m.uid).as_bytes())
        );
    }

    // Refusals change nothing: another UIDVALIDITY, a UID below UIDNEXT, UIDs out of order.
    let before = status(store, "a/b");
    assert!(conflict(run(store, import("a/b", 7, 50, &[41]))));
    assert!(conflict(run(store, import("a/b", 1_234_567, 50, &[39]))));
    assert!(conflict(run(
        store,
        import("a/b", 1_234_567, 50, &[45, 41])
    )));
    assert!(conflict(run(store, import("c", 0, 50, &[1]))));
    assert_eq!(status(store, "a/b"), before);
    assert!(
        matches!(
            run(
                store,
                StorageOp::Status {
                    account: "alice".into(),
                    name: "c".into()
                }
            ),
            Err(StorageError::NoSuchMailbox)
        ),
        "a refused import into a missing mailbox does not create it"
    );

    // More, above UIDNEXT; a smaller source UIDNEXT does not lower it.
    let reply = run(store, import("a/b", 1_234_567, 3, &[40, 44]));
    assert!(
        matches!(&reply, Ok(StorageReply::Appended { uids, .. }) if *uids == [40, 44]),
        "{reply:?}"
    );
    assert_eq!(status(store, "a/b").1, 45);

    // Nothing to add but a higher UIDNEXT: MODSEQ rises, so sessions re-synchronise.
    let before = status(store, "a/b");
    assert!(run(store, import("a/b", 1_234_567, 60, &[])).is_ok());
    let after = status(store, "a/b");
    assert_eq!(after.1, 60);
    assert!(
        after.3 > before.3,
        "HIGHESTMODSEQ rises: {before:?} → {after:?}"
    );

    // An existing mailbox that never held a message (INBOX of a new account) takes the
    // source's UIDVALIDITY; a normal APPEND afterwards goes on above the imported UIDs.
    assert!(run(store, import("INBOX", 99, 10, &[3])).is_ok());
    assert_eq!(status(store, "INBOX").0, 99);
    let appended = run(
        store,
        StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![message(1, Vec::new())],
        },
    );
    assert!(
        matches!(&appended, Ok(StorageReply::Appended { uid_validity: 99, uids, .. }) if *uids == [10]),
        "{appended:?}"
    );
}
