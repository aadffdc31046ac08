#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use bytes::Bytes;
use tern_core::mail::date::{from_unix, Date};
use tern_core::mail::flags::{Flag, StoreMode};
use tern_core::mail::preview::preview;
use tern_core::store::query::DateCmp;
use tern_core::store::query::Query;
use tern_core::store::sort::{SortCriterion, SortKey};
use tern_core::store::{
    Body, FetchWant, FetchedMessage, MailboxId, NewMessage, PreviewWant, Snapshot,
};

use super::*;

const INBOX: MailboxId = MailboxId(1);

fn message(subject: &str, body_len: usize) -> Bytes {
    let body: String = "lorem ipsum dolor sit amet\r\n"
        .chars()
        .cycle()
        .take(body_len)
        .collect();
    Bytes::from(format!(
        "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: {subject}\r\n\r\n{body}\r\n"
    ))
}

fn append(store: &mut SqliteStore, name: &str, data: Bytes) -> u32 {
    let reply = store
        .execute(StorageOp::Append {
            account: "alice".into(),
            name: name.into(),
            messages: vec![NewMessage {
                flags: vec![Flag::Keyword(Bytes::from_static(b"work"))],
                internal_date: None,
                data,
            }],
        })
        .unwrap();
    match reply {
        StorageReply::Appended { uids, .. } => uids[0],
        other => panic!("{other:?}"),
    }
}

fn open_inbox(store: &mut SqliteStore) -> Snapshot {
    match store
        .execute(StorageOp::Open {
            account: "alice".into(),
            name: "INBOX".into(),
            read_only: true,
        })
        .unwrap()
    {
        StorageReply::Opened(s) => s,
        other => panic!("{other:?}"),
    }
}

fn fetch_content(store: &mut SqliteStore, uid: u32) -> Option<Bytes> {
    match store
        .execute(StorageOp::Fetch {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![uid],
            want: FetchWant {
                content: true,
                info: true,
                header_only: false,
                ..Default::default()
            },
            mark_seen: false,
        })
        .unwrap()
    {
        StorageReply::Fetched(mut v) => v
            .pop()
            .and_then(|m| m.content)
            .map(|c| c.to_bytes().unwrap()),
        other => panic!("{other:?}"),
    }
}

fn count(store: &mut SqliteStore, sql: &str) -> i64 {
    store.with_connection("alice", |c| c.query_row(sql, [], |r| r.get(0)).unwrap())
}

fn blob_files(store: &SqliteStore) -> Vec<PathBuf> {
    let dir = store.account_dir("alice").unwrap().join(BLOB_FOLDER);
    let mut out = Vec::new();
    for fan in fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in fs::read_dir(fan.path()).into_iter().flatten().flatten() {
            out.push(f.path());
        }
    }
    out
}

#[test]
fn store_is_send() {
    fn send<T: Send>() {}
    send::<SqliteStore>();
}

#[test]
fn data_survives_reopen_and_counters_stay_monotonic() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let small = message("small one", 100);
    let large = message("large one", 300_000);
    let u1 = append(&mut store, "INBOX", small.clone());
    let u2 = append(&mut store, "INBOX", large.clone());
    store
        .execute(StorageOp::SetFlags {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![u1, u2],
            mode: StoreMode::Add,
            flags: vec![Flag::Deleted],
            unchanged_since: None,
        })
        .unwrap();
    let u3 = append(&mut store, "INBOX", message("third", 10));
    store
        .execute(StorageOp::Expunge {
            account: "alice".into(),
            mailbox: INBOX,
            uids: Some(vec![u1]),
        })
        .unwrap();
    let before = open_inbox(&mut store);
    drop(store);

    let mut store = SqliteStore::open(dir.path()).unwrap();
    let after = open_inbox(&mut store);
    assert_eq!(before, after);
    assert_eq!(fetch_content(&mut store, u2), Some(large));
    assert_eq!(fetch_content(&mut store, u1), None);
    // Expunging the highest UID and restarting must not let UIDNEXT or MODSEQ go back.
    store
        .execute(StorageOp::Remove {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![u3],
            seen: Vec::new(),
        })
        .unwrap();
    let removed = open_inbox(&mut store);
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let u4 = append(&mut store, "INBOX", message("fourth", 10));
    assert!(u4 > u3);
    let last = open_inbox(&mut store);
    assert!(last.highest_modseq > removed.highest_modseq);
    assert_eq!(last.uid_next, u4 + 1);
    assert_eq!(last.uid_validity, before.uid_validity);
    store.check("alice").unwrap();
    let octets = inbox_size(&mut store);
    assert_eq!(
        store.usage("alice").unwrap(),
        Usage {
            messages: 2,
            octets,
        }
    );
}

fn inbox_size(store: &mut SqliteStore) -> u64 {
    match store
        .execute(StorageOp::Status {
            account: "alice".into(),
            name: "INBOX".into(),
        })
        .unwrap()
    {
        StorageReply::Status(s) => s.size,
        other => panic!("{other:?}"),
    }
}

#[test]
fn copy_and_duplicate_appends_store_the_bytes_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(1000);
    let large = message("shared", 5000);
    let uid = append(&mut store, "INBOX", large.clone());
    append(&mut store, "Archive", large.clone());
    store
        .execute(StorageOp::CopyMove {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![uid],
            target: "Trash".into(),
            remove: false,
        })
        .unwrap();
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM messages"), 3);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM bodies"), 1);
    assert_eq!(count(&mut store, "SELECT refs FROM bodies"), 3);
    assert_eq!(blob_files(&store).len(), 1);
    assert_eq!(store.usage("alice").unwrap().messages, 3);

    // The body goes only with its last message.
    for name in ["INBOX", "Archive", "Trash"] {
        let id = match store
            .execute(StorageOp::Status {
                account: "alice".into(),
                name: name.into(),
            })
            .unwrap()
        {
            StorageReply::Status(s) => s.id.unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(blob_files(&store).len(), 1);
        store
            .execute(StorageOp::Remove {
                account: "alice".into(),
                mailbox: id,
                uids: vec![1],
                seen: Vec::new(),
            })
            .unwrap();
    }
    // Unreferenced now; reclaimed by the indexer (here, at once).
    store.index_now("alice").unwrap();
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM bodies"), 0);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM texts"), 0);
    assert!(blob_files(&store).is_empty());
    store.check("alice").unwrap();
}

#[test]
fn orphan_body_files_are_collected_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(100);
    let data = message("kept", 1000);
    let uid = append(&mut store, "INBOX", data.clone());
    let files = blob_files(&store);
    assert_eq!(files.len(), 1);
    let fan = files[0].parent().unwrap().to_path_buf();
    // What a crash leaves: a renamed file whose row never committed, a half-written one.
    fs::write(fan.join(format!("{:016x}", 999)), b"orphan").unwrap();
    fs::write(fan.join(format!("{:016x}.tmp", 1000)), b"half").unwrap();
    fs::create_dir_all(fan.with_file_name("ff")).unwrap();
    fs::write(fan.with_file_name("ff").join("00000000000000ff"), b"x").unwrap();
    drop(store);

    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.open_account("alice").unwrap();
    assert_eq!(blob_files(&store), files);
    assert_eq!(fetch_content(&mut store, uid), Some(data));
}

#[test]
fn a_failed_append_leaves_no_file_and_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(100);
    store.open_account("alice").unwrap();
    // Fail after the body file is written, before the commit.
    store.with_connection("alice", |c| c.execute_batch(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        ))
        .unwrap();
    let err = store
        .execute(StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data: message("doomed", 5000),
            }],
        })
        .unwrap_err();
    assert!(matches!(err, StorageError::Internal(_)), "{err:?}");
    assert!(blob_files(&store).is_empty());
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM bodies"), 0);
    assert_eq!(open_inbox(&mut store).uid_next, 1);
    assert!(store.take_changes().is_empty());
}

#[test]
fn a_full_disk_refuses_writes_but_keeps_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let uid = append(&mut store, "INBOX", message("before", 100));
    let pages = count(&mut store, "PRAGMA page_count");
    // SQLite reports a database at its page limit exactly as a full disk (SQLITE_FULL).
    store
        .with_connection("alice", |c| {
            c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
        })
        .unwrap();
    let mut failed = false;
    for i in 0..50 {
        let r = store.execute(StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data: message(&format!("after {i}"), 20_000),
            }],
        });
        if let Err(e) = r {
            assert_eq!(e, StorageError::Unavailable("disk full".into()));
            failed = true;
            break;
        }
    }
    assert!(failed);
    assert!(fetch_content(&mut store, uid).is_some());
    let found = store
        .execute(StorageOp::Search {
            account: "alice".into(),
            mailbox: INBOX,
            uids: (1..100).collect(),
            query: Query::Text("before".into()),
        })
        .unwrap();
    assert_eq!(found, StorageReply::Found(vec![uid]));
    store.check("alice").unwrap();
}

#[test]
fn unusable_folders_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(
        SqliteStore::open(&file),
        Err(OpenError::Folder { .. })
    ));

    let mut store = SqliteStore::open(dir.path()).unwrap();
    // An account whose folder cannot be created.
    fs::write(store.account_dir("carol").unwrap(), b"in the way").unwrap();
    let r = store.execute(StorageOp::ListMailboxes {
        account: "carol".into(),
    });
    assert!(matches!(r, Err(StorageError::Unavailable(_))), "{r:?}");
    // A database path that is a folder.
    fs::create_dir_all(store.account_dir("dave").unwrap().join(DATABASE_FILE)).unwrap();
    let r = store.execute(StorageOp::ListMailboxes {
        account: "dave".into(),
    });
    assert!(matches!(r, Err(StorageError::Unavailable(_))), "{r:?}");

    // Permission bits only bind an unprivileged user (root writes anyway), so this part is
    // checked only where it can be.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("read-only");
        fs::create_dir_all(ro.join(ACCOUNTS_FOLDER)).unwrap();
        fs::set_permissions(ro.join(ACCOUNTS_FOLDER), fs::Permissions::from_mode(0o555)).unwrap();
        let privileged = fs::write(ro.join(ACCOUNTS_FOLDER).join("probe"), b"x").is_ok();
        if !privileged {
            let mut store = SqliteStore::open(&ro).unwrap();
            let r = store.execute(StorageOp::ListMailboxes {
                account: "erin".into(),
            });
            assert!(matches!(r, Err(StorageError::Unavailable(_))), "{r:?}");
        }
        fs::set_permissions(ro.join(ACCOUNTS_FOLDER), fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn a_newer_schema_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.open_account("alice").unwrap();
    store
        .with_connection("alice", |c| {
            c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        })
        .unwrap();
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let err = store.open_account("alice").unwrap_err();
    assert!(matches!(err, OpenError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1));
    assert!(err.to_string().contains("newer tern"), "{err}");
    let r = store.execute(StorageOp::ListMailboxes {
        account: "alice".into(),
    });
    assert!(matches!(r, Err(StorageError::Internal(m)) if m.contains("schema version")));
}

#[test]
fn a_new_account_gets_the_default_mailboxes_at_the_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let list = store
        .execute(StorageOp::ListMailboxes {
            account: "alice".into(),
        })
        .unwrap();
    let mut mem = tern_core::MemStore::new();
    assert_eq!(
        list,
        mem.execute(StorageOp::ListMailboxes {
            account: "alice".into()
        })
        .unwrap()
    );
    assert_eq!(count(&mut store, "PRAGMA user_version"), SCHEMA_VERSION);
    let mode: String = store
        .with_connection("alice", |c| {
            c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        })
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(count(&mut store, "PRAGMA synchronous"), 2);
    assert!(dir
        .path()
        .join("accounts/alice")
        .join(DATABASE_FILE)
        .is_file());
}

/// Issue 13: the mailboxes of a new account are the template's (the session's rules), in
/// its order, as in `MemStore`; the store adds none of its own.
#[test]
fn a_new_account_gets_the_template_it_is_given() {
    use tern_core::store::{AccountTemplate, NewMailbox, SpecialUse};
    let template = AccountTemplate {
        mailboxes: vec![
            NewMailbox {
                name: "INBOX".into(),
                special_use: None,
                subscribed: false,
            },
            NewMailbox {
                name: "Papers".into(),
                special_use: None,
                subscribed: true,
            },
            NewMailbox {
                name: "Papers/Bin".into(),
                special_use: Some(SpecialUse::Trash),
                subscribed: true,
            },
        ],
    };
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_account_template(template.clone());
    let mut mem = tern_core::MemStore::new();
    mem.set_account_template(template);
    let list = StorageOp::ListMailboxes {
        account: "alice".into(),
    };
    let reply = store.execute(list.clone()).unwrap();
    assert_eq!(reply, mem.execute(list).unwrap());
    let StorageReply::Mailboxes(list) = reply else {
        panic!("{reply:?}");
    };
    let names: Vec<&str> = list.mailboxes.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["INBOX", "Papers", "Papers/Bin"]);
    assert_eq!(list.subscribed, ["Papers", "Papers/Bin"]);
    let StorageReply::Opened(inbox) = store
        .execute(StorageOp::Open {
            account: "alice".into(),
            name: "INBOX".into(),
            read_only: true,
        })
        .unwrap()
    else {
        panic!("INBOX does not open");
    };
    assert_eq!(inbox.id, MailboxId(1));
}

#[test]
fn account_folder_names_are_safe_and_distinct() {
    assert_eq!(folder_name("demo").as_deref(), Some("demo"));
    assert_eq!(
        folder_name("bob@example.com").as_deref(),
        Some("bob@example.com")
    );
    assert_eq!(folder_name("..").as_deref(), Some("%2E."));
    assert_eq!(folder_name(".").as_deref(), Some("%2E"));
    assert_eq!(folder_name("a/../b").as_deref(), Some("a%2F..%2Fb"));
    assert_eq!(folder_name("Alice").as_deref(), Some("%41lice"));
    assert_eq!(folder_name("").as_deref(), Some("%"));
    assert_eq!(folder_name("ü").as_deref(), Some("%C3%BC"));
    assert_ne!(folder_name("a%41"), folder_name("aA"));
    assert_eq!(folder_name(&"x".repeat(300)), None);
}

#[test]
fn maildrop_lock_is_exclusive_and_process_local() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let lock = |s: &mut SqliteStore| {
        s.execute(StorageOp::LockMaildrop {
            account: "Alice".into(),
        })
    };
    assert_eq!(lock(&mut store), Ok(StorageReply::Done));
    assert_eq!(lock(&mut store), Err(StorageError::InUse));
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(lock(&mut store), Ok(StorageReply::Done));
}

#[test]
fn a_mass_expunge_leaves_reclaiming_to_the_indexer() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_background_indexing(false);
    store.set_inline_limit(500);
    let messages = (0..100)
        .map(|i| NewMessage {
            flags: vec![Flag::Deleted],
            internal_date: None,
            data: message(&format!("m{i}"), if i % 2 == 0 { 100 } else { 1000 }),
        })
        .collect();
    store
        .execute(StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages,
        })
        .unwrap();
    assert_eq!(blob_files(&store).len(), 50);
    let r = store
        .execute(StorageOp::Expunge {
            account: "alice".into(),
            mailbox: INBOX,
            uids: None,
        })
        .unwrap();
    assert!(matches!(r, StorageReply::Expunged(v) if v.len() == 100));
    // The expunge reclaimed nothing: that is the indexer's work, off the write path.
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM bodies"), 100);
    assert_eq!(store.index_backlog("alice").unwrap(), (100, 100));
    // Unreferenced bodies are invisible to SEARCH (their index rows match no message).
    let found = store
        .execute(StorageOp::Search {
            account: "alice".into(),
            mailbox: INBOX,
            uids: (1..200).collect(),
            query: Query::Text("lorem".into()),
        })
        .unwrap();
    assert_eq!(found, StorageReply::Found(Vec::new()));
    // Never indexed: reclaimed without an FTS 'delete' (which would corrupt the index).
    assert_eq!(store.reclaim("alice").unwrap(), 100);
    assert_eq!(store.index_backlog("alice").unwrap(), (0, 0));
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM bodies"), 0);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM contents"), 0);
    assert!(blob_files(&store).is_empty());
    store.check("alice").unwrap();
}

#[test]
fn one_store_per_folder_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    assert!(matches!(
        SqliteStore::open(dir.path()),
        Err(OpenError::InUse { .. })
    ));
    drop(store);
    SqliteStore::open(dir.path()).unwrap();
}

/// Flags, MODSEQs and UIDs of every INBOX message, as FETCH reports them.
fn states(store: &mut SqliteStore) -> Vec<(u32, Vec<Flag>, u64)> {
    let snap = open_inbox(store);
    match store
        .execute(StorageOp::Fetch {
            account: "alice".into(),
            mailbox: INBOX,
            uids: snap.uids.to_vec(),
            want: FetchWant::default(),
            mark_seen: false,
        })
        .unwrap()
    {
        StorageReply::Fetched(v) => v
            .into_iter()
            .map(|m| (m.uid, m.flags.to_flags(), m.modseq))
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn set_flags(store: &mut SqliteStore, uids: Vec<u32>, mode: StoreMode, flag: Flag) {
    store
        .execute(StorageOp::SetFlags {
            account: "alice".into(),
            mailbox: INBOX,
            uids,
            mode,
            flags: vec![flag],
            unchanged_since: None,
        })
        .unwrap();
}

/// The cached rows (`rows.rs`) must follow every kind of change, whether it catches up from
/// a few changed rows or is read again after many; a store reopened from disk (no cache) is
/// the reference.
#[test]
fn cached_rows_follow_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    for i in 0..300 {
        append(&mut store, "INBOX", message(&format!("m{i}"), 40));
    }
    let fresh = |store: SqliteStore| {
        drop(store);
        let mut again = SqliteStore::open(dir.path()).unwrap();
        let s = states(&mut again);
        (again, s)
    };
    let cached = states(&mut store);
    let (mut store, reference) = fresh(store);
    assert_eq!(cached, reference);
    // A few changes: the cache catches up (flags, an expunge in the middle, a new message).
    states(&mut store);
    set_flags(&mut store, vec![5, 150], StoreMode::Add, Flag::Deleted);
    store
        .execute(StorageOp::Expunge {
            account: "alice".into(),
            mailbox: INBOX,
            uids: None,
        })
        .unwrap();
    set_flags(&mut store, vec![7], StoreMode::Add, Flag::Seen);
    append(&mut store, "INBOX", message("late", 10));
    let cached = states(&mut store);
    assert_eq!(open_inbox(&mut store).first_unseen, Some(1));
    let (mut store, reference) = fresh(store);
    assert_eq!(cached, reference);
    assert_eq!(cached.len(), 299);
    // Many changes: more than the catch-up limit, so the rows are read again.
    states(&mut store);
    set_flags(&mut store, (1..=301).collect(), StoreMode::Add, Flag::Seen);
    let cached = states(&mut store);
    assert_eq!(open_inbox(&mut store).first_unseen, None);
    let (_, reference) = fresh(store);
    assert_eq!(cached, reference);
}

/// A mailbox over the store-wide byte budget is served straight from the database.
#[test]
fn a_mailbox_over_the_row_budget_is_read_uncached() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_row_cache_bytes(1000);
    for i in 0..40 {
        append(&mut store, "INBOX", message(&format!("m{i}"), 40));
    }
    let first = states(&mut store);
    assert_eq!(store.budget.used(), 0);
    set_flags(&mut store, vec![3], StoreMode::Add, Flag::Flagged);
    let second = states(&mut store);
    assert_eq!(first.len(), 40);
    assert_ne!(first, second);
    assert!(second[2].1.contains(&Flag::Flagged));
    assert_eq!(store.budget.used(), 0);
}

fn search(store: &mut SqliteStore, query: Query) -> StorageReply {
    store
        .execute(StorageOp::Search {
            account: "alice".into(),
            mailbox: INBOX,
            uids: (1..100).collect(),
            query,
        })
        .unwrap()
}

/// Schema version 2 derives a headline for every body a version 1 database holds, and
/// header searches answer from them as they did from the whole text.
#[test]
fn version_one_databases_gain_headlines() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    append(&mut store, "INBOX", message("first", 40));
    let other = Bytes::from_static(
        b"From: Carol <carol@music.test>\r\nCc: dave@example.net\r\nSubject: second\r\n\r\nhi\r\n",
    );
    append(&mut store, "INBOX", other);
    let from = Query::Header("from".into(), "carol@music".into());
    let cc = Query::Header("cc".into(), "dave".into());
    let before = (
        search(&mut store, from.clone()),
        search(&mut store, cc.clone()),
    );
    assert_eq!(before.0, StorageReply::Found(vec![2]));
    assert_eq!(before.1, StorageReply::Found(vec![2]));
    store.open_account("alice").unwrap();
    store
        .with_connection("alice", |c| {
            undo_metadata(c);
            undo_sort_keys(c);
            undo_object_ids(c);
            c.execute_batch(
                "DROP TABLE headlines; DROP TABLE retained; DROP TABLE fts_pending; \
                 DROP TABLE previews; ALTER TABLE messages DROP COLUMN saved; \
                 DELETE FROM meta WHERE key = 'preview_backfill'; \
                 PRAGMA user_version = 1;",
            )
        })
        .unwrap();
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(count(&mut store, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM headlines"), 2);
    let after = (search(&mut store, from), search(&mut store, cc));
    assert_eq!(before, after);
    store.check("alice").unwrap();
}

/// Header searches on headline fields are ruled out by each headline's per-field trigrams
/// before its text is read: an address in To is not one in From, NOT inverts exactly, and a
/// needle too short to have trigrams still finds its matches.
#[test]
fn headline_trigrams_rule_out_only_what_cannot_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    append(
        &mut store,
        "INBOX",
        Bytes::from_static(b"From: Carol <carol@music.test>\r\nSubject: one\r\n\r\nhi\r\n"),
    );
    append(
        &mut store,
        "INBOX",
        Bytes::from_static(b"From: dave@example.net\r\nTo: Carol <carol@music.test>\r\n\r\nhi\r\n"),
    );
    append(&mut store, "INBOX", message("third", 40));
    let from = || Query::Header("from".into(), "carol@music".into());
    let to = Query::Header("to".into(), "carol@music".into());
    // Twice each: the first search loads the headlines, the second finds them cached.
    for _ in 0..2 {
        assert_eq!(search(&mut store, from()), StorageReply::Found(vec![1]));
        assert_eq!(search(&mut store, to.clone()), StorageReply::Found(vec![2]));
        assert_eq!(
            search(&mut store, Query::Not(Box::new(from()))),
            StorageReply::Found(vec![2, 3])
        );
        assert_eq!(
            search(&mut store, Query::Header("from".into(), "ca".into())),
            StorageReply::Found(vec![1])
        );
        assert_eq!(
            search(
                &mut store,
                Query::Or(Box::new(from()), Box::new(to.clone()))
            ),
            StorageReply::Found(vec![1, 2])
        );
    }
}

/// Requests lock only their own account: while one of alice's is in progress, bob's runs at
/// once, and a request that would have to wait for alice's is handed back, untouched.
#[test]
fn accounts_are_locked_separately() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.open_account("bob").unwrap();
    let list = |account: &str| StorageOp::ListMailboxes {
        account: account.into(),
    };
    store.with_connection("alice", |_| {
        let (reply, _) = store.try_execute_shared(list("bob"), 0).unwrap();
        assert!(matches!(reply, Ok(StorageReply::Mailboxes(_))));
        let back = store.try_execute_shared(list("alice"), 0).unwrap_err();
        assert_eq!(back, list("alice"));
    });
    let (reply, _) = store.try_execute_shared(list("alice"), 0).unwrap();
    assert!(matches!(reply, Ok(StorageReply::Mailboxes(_))));
    // An account not open yet is opened only by a request that may wait.
    assert!(store.try_execute_shared(list("carol"), 0).is_err());
    assert!(store.execute_shared(list("carol"), 0).0.is_ok());
}

/// Only short reads run through `try_execute_shared`: a SELECT once the mailbox's rows are
/// cached, a synchronisation, a small FETCH, never a SEARCH or a write. Claiming `\Recent`
/// is not a write that needs an fsync, so it does not stop a SELECT or a NOOP from being quick.
#[test]
fn only_short_reads_are_quick() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    // A batch of the indexer holds the account's lock too (a quick read is then handed back,
    // as it is while any request holds it): kept out of the way here.
    store.set_background_indexing(false);
    append(&mut store, "INBOX", message("one", 40));
    let select = |read_only| StorageOp::Open {
        account: "alice".into(),
        name: "INBOX".into(),
        read_only,
    };
    // Not cached yet.
    assert!(store.try_execute_shared(select(true), 0).is_err());
    assert!(store.try_execute_shared(select(false), 0).is_err());
    store.execute(select(true)).unwrap();
    assert!(store.try_execute_shared(select(true), 0).is_ok());
    // The first read-write SELECT claims message 1 as \Recent, quickly.
    let (reply, _) = store.try_execute_shared(select(false), 0).unwrap();
    let Ok(StorageReply::Opened(snapshot)) = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(snapshot.recent, vec![1]);
    // A new message is claimed by the next synchronisation, quickly too, and only once.
    append(&mut store, "INBOX", message("two", 40));
    let sync = StorageOp::Changes {
        account: "alice".into(),
        mailbox: INBOX,
        uid_next: 2,
        since: snapshot.highest_modseq,
        claim_recent: true,
    };
    for claimed in [vec![2], vec![]] {
        let (reply, _) = store.try_execute_shared(sync.clone(), 0).unwrap();
        let Ok(StorageReply::Changes(changes)) = reply else {
            panic!("{reply:?}");
        };
        assert_eq!(changes.recent, claimed);
    }
    let fetch = StorageOp::Fetch {
        account: "alice".into(),
        mailbox: INBOX,
        uids: vec![1],
        want: FetchWant {
            content: true,
            info: true,
            header_only: false,
            ..Default::default()
        },
        mark_seen: false,
    };
    assert!(store.try_execute_shared(fetch, 0).is_ok());
    // A large body is not a short read; its flags and size are.
    let big = append(&mut store, "INBOX", message("big", 2 << 20));
    let fetch_big = |content| StorageOp::Fetch {
        account: "alice".into(),
        mailbox: INBOX,
        uids: vec![big],
        want: FetchWant {
            content,
            info: false,
            header_only: false,
            ..Default::default()
        },
        mark_seen: false,
    };
    assert!(store.try_execute_shared(fetch_big(true), 0).is_err());
    assert!(store.try_execute_shared(fetch_big(false), 0).is_ok());
    let search = StorageOp::Search {
        account: "alice".into(),
        mailbox: INBOX,
        uids: vec![1, 2],
        query: Query::All,
    };
    assert!(store.try_execute_shared(search, 0).is_err());
    let store_flags = StorageOp::SetFlags {
        account: "alice".into(),
        mailbox: INBOX,
        uids: vec![1],
        mode: StoreMode::Add,
        flags: vec![Flag::Seen],
        unchanged_since: None,
    };
    assert!(store.try_execute_shared(store_flags, 0).is_err());
}

/// Headlines count against the cache's byte budget: a search that loads more than fits
/// leaves the mailbox uncached rather than over budget, and answers all the same.
#[test]
fn loaded_headlines_are_charged_to_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    // Room for the rows, with a little to spare, not for 40 headlines of 4 KB.
    store.set_row_cache_bytes(40 * crate::rows::ROW_BYTES + 2000);
    let long_to: String = (0..200).map(|i| format!("user{i}@example.org, ")).collect();
    for i in 0..40 {
        let data = format!("To: {long_to}\r\nSubject: m{i}\r\n\r\nbody\r\n");
        append(&mut store, "INBOX", Bytes::from(data));
    }
    states(&mut store);
    let cached = store.budget.used();
    assert!(cached > 0 && cached <= 40 * crate::rows::ROW_BYTES);
    let query = Query::Header("to".into(), "user199@example.org".into());
    let all: Vec<u32> = (1..=40).collect();
    for _ in 0..2 {
        assert_eq!(
            search(&mut store, query.clone()),
            StorageReply::Found(all.clone())
        );
        assert_eq!(store.budget.used(), 0, "the entry should have been dropped");
        states(&mut store);
    }
}

/// Sessions that SELECT an unchanged mailbox share one UID list (each copies it only when its
/// own view changes); a change gives later sessions a new one.
#[test]
fn selects_of_an_unchanged_mailbox_share_the_uid_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    for i in 0..3 {
        append(&mut store, "INBOX", message(&format!("m{i}"), 40));
    }
    let first = open_inbox(&mut store);
    let second = open_inbox(&mut store);
    assert!(std::sync::Arc::ptr_eq(&first.uids, &second.uids));
    append(&mut store, "INBOX", message("new", 40));
    let third = open_inbox(&mut store);
    assert!(!std::sync::Arc::ptr_eq(&first.uids, &third.uids));
    assert_eq!(*first.uids, [1, 2, 3]);
    assert_eq!(*third.uids, [1, 2, 3, 4]);
}

/// Requests that queue while the account is busy run as one group commit; each still gets its
/// own reply, a failing one is rolled back alone, and everything acknowledged is there after
/// a reopen.
#[test]
fn queued_writes_share_one_commit_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let first = append(&mut store, "INBOX", message("first", 100));
    let store = std::sync::Arc::new(store);
    let handle = store.account("alice").unwrap();
    // Hold the account, so that everything submitted meanwhile queues.
    let held = lock(&handle.account);
    let submit = |op: StorageOp| {
        let store = store.clone();
        std::thread::spawn(move || store.execute_shared(op, 1_767_225_600).0)
    };
    let append_op = |subject: &str| StorageOp::Append {
        account: "alice".into(),
        name: "INBOX".into(),
        messages: vec![NewMessage {
            flags: Vec::new(),
            internal_date: None,
            data: message(subject, 50),
        }],
    };
    // The first becomes the leader of a batch of one and waits for the account...
    let lead = submit(append_op("lead"));
    // Pushed and taken: waiting for an empty queue alone could pass before the lead was
    // pushed, and the leader could then take the later requests into its batch too.
    spin_until(|| handle.all_taken(1));
    // ...while these four queue behind it, one of them bound to fail.
    let mut rest = vec![
        submit(append_op("two")),
        submit(StorageOp::SetFlags {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![first],
            mode: StoreMode::Add,
            flags: vec![Flag::Flagged],
            unchanged_since: None,
        }),
        submit(StorageOp::CreateMailbox {
            account: "alice".into(),
            name: "INBOX".into(),
            special_use: None,
        }),
    ];
    rest.push(submit(append_op("three")));
    spin_until(|| handle.waiting() >= 4);
    drop(held);
    assert!(lead.join().unwrap().is_ok());
    let replies: Vec<_> = rest.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(replies[0].is_ok(), "{:?}", replies[0]);
    assert!(replies[1].is_ok(), "{:?}", replies[1]);
    assert_eq!(replies[2], Err(StorageError::AlreadyExists));
    assert!(replies[3].is_ok(), "{:?}", replies[3]);
    assert_eq!(
        store.batch_stats("alice").unwrap(),
        BatchStats {
            batches: 1,
            batched: 4
        }
    );
    drop(handle);
    let Ok(store) = std::sync::Arc::try_unwrap(store) else {
        panic!("the store is still shared");
    };
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let snapshot = open_inbox(&mut store);
    assert_eq!(snapshot.uids.len(), 4);
    let flagged = states(&mut store)
        .into_iter()
        .find(|(uid, _, _)| *uid == first)
        .unwrap();
    assert!(flagged.1.contains(&Flag::Flagged));
    assert_eq!(
        count(
            &mut store,
            "SELECT count(*) FROM mailboxes WHERE name = 'INBOX'"
        ),
        1
    );
}

/// A read that runs inside a group commit sees the writes queued before it, and its own
/// read transaction is not attempted inside the batch's.
#[test]
fn a_read_in_a_batch_sees_the_writes_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
    let handle = store.account("alice").unwrap();
    let held = lock(&handle.account);
    let submit = |op: StorageOp| {
        let store = store.clone();
        std::thread::spawn(move || store.execute_shared(op, 1_767_225_600).0)
    };
    let lead = submit(StorageOp::CreateMailbox {
        account: "alice".into(),
        name: "Lead".into(),
        special_use: None,
    });
    spin_until(|| handle.all_taken(1));
    let write = submit(StorageOp::Append {
        account: "alice".into(),
        name: "INBOX".into(),
        messages: vec![NewMessage {
            flags: Vec::new(),
            internal_date: None,
            data: message("seen by the search", 50),
        }],
    });
    spin_until(|| handle.waiting() >= 1);
    // (A read that writes nothing takes the lock outside the queue, as SEARCH does; a FETCH
    // that sets \Seen goes through it.)
    let read = submit(StorageOp::Fetch {
        account: "alice".into(),
        mailbox: INBOX,
        uids: vec![1, 2, 3],
        want: FetchWant {
            content: true,
            info: true,
            header_only: false,
            ..Default::default()
        },
        mark_seen: true,
    });
    spin_until(|| handle.waiting() >= 2);
    // A pure read does not queue behind the writes: it waits for the lock only.
    let peek = submit(StorageOp::Fetch {
        account: "alice".into(),
        mailbox: INBOX,
        uids: vec![1],
        want: FetchWant::default(),
        mark_seen: false,
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        handle.waiting(),
        2,
        "a read that writes nothing joined the queue"
    );
    drop(held);
    assert!(lead.join().unwrap().is_ok());
    assert!(write.join().unwrap().is_ok());
    assert!(peek.join().unwrap().is_ok());
    match read.join().unwrap() {
        Ok(StorageReply::Fetched(found)) => {
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].uid, 1);
            assert!(found[0].content.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.batch_stats("alice").unwrap().batched, 2);
}

fn append_many(store: &mut SqliteStore, n: usize, body: &str) {
    let messages = (0..n)
        .map(|i| NewMessage {
            flags: Vec::new(),
            internal_date: None,
            data: Bytes::from(format!(
                "From: a@example.com\r\nSubject: m{i}\r\n\r\n{body} {i}\r\n"
            )),
        })
        .collect();
    store
        .execute(StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages,
        })
        .unwrap();
}

fn search_op(uids: Vec<u32>, query: Query) -> StorageOp {
    StorageOp::Search {
        account: "alice".into(),
        mailbox: INBOX,
        uids,
        query,
    }
}

/// Issue 19: a SEARCH that needs text holds the account's lock for one batch of loads at a
/// time, not for its whole evaluation: while the text of the later batches is matched, the
/// lock is free for the account's other requests (a SELECT was refused for a minute).
#[test]
fn search_lets_the_account_lock_go_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    append_many(&mut store, 300, "plain words");
    let account = store.account("alice").unwrap();
    let (free, busy) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    // Asked at every step of the meter, on this thread, in the middle of the search.
    let probe = || {
        match account.account.try_lock() {
            Ok(_) => free.set(free.get() + 1),
            Err(_) => busy.set(busy.get() + 1),
        }
        false
    };
    let query = Query::Text("words".into());
    let (reply, _) = store.execute_interruptible(search_op((1..=300).collect(), query), 0, &probe);
    assert_eq!(reply.unwrap(), StorageReply::Found((1..=300).collect()));
    assert!(busy.get() > 0, "the first step runs under the lock");
    // 300 messages, batches of 64: matching each batch's text happens outside the lock.
    assert!(free.get() >= 300, "free {} busy {}", free.get(), busy.get());
}

/// Issue 19: a search whose session is gone stops at its next step.
#[test]
fn an_abandoned_search_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    append_many(&mut store, 200, "plain words");
    let asked = std::cell::Cell::new(0u32);
    let gone = || {
        asked.set(asked.get() + 1);
        asked.get() > 10
    };
    let heavy = Query::And(
        (0..500)
            .map(|i| Query::Not(Box::new(Query::Body(format!("q{}", i % 10)))))
            .collect(),
    );
    let (reply, _) = store.execute_interruptible(search_op((1..=200).collect(), heavy), 0, &gone);
    assert!(
        matches!(reply, Err(StorageError::Unavailable(_))),
        "{reply:?}"
    );
    assert_eq!(
        asked.get(),
        11,
        "stopped at the first step after it was told"
    );
}

/// Issue 19: the programs that ran for a minute are decided by set algebra and the index, in
/// a bounded number of meter units, and a program beyond the budget is refused with LIMIT.
#[test]
fn hostile_search_programs_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let n = 2_000u32;
    append_many(&mut store, n as usize, "plain words");
    // Bodies not indexed yet are candidates of every text criterion: the figures below are
    // those of an index that has caught up.
    store.index_now("alice").unwrap();
    let all: Vec<u32> = (1..=n).collect();
    let every = || Query::Uids(tern_core::store::query::UidSet::from_ranges([(1, n)]));
    let units = |store: &SqliteStore, q: Query| {
        let used = std::cell::Cell::new(0u64);
        let count = || {
            used.set(used.get() + 1);
            false
        };
        let (reply, _) = store.execute_interruptible(search_op(all.clone(), q), 0, &count);
        (reply, used.get())
    };
    let ors = Query::And(
        (0..2_000)
            .map(|_| Query::Or(Box::new(every()), Box::new(every())))
            .collect(),
    );
    let (reply, steps) = units(&store, ors);
    assert_eq!(reply.unwrap(), StorageReply::Found(all.clone()));
    // Per node, not per node and message: 6,000 nodes, 2,000 messages.
    assert!(steps < 20_000, "{steps} meter steps");
    let nots = Query::And(
        (0..1_000)
            .map(|i| Query::Not(Box::new(Query::Text(format!("zz{i}")))))
            .collect(),
    );
    let (reply, steps) = units(&store, nots);
    assert_eq!(reply.unwrap(), StorageReply::Found(all.clone()));
    // The index rules every needle out: no text is loaded, no message tested one by one.
    assert!(steps < 10_000, "{steps} meter steps");

    store.set_limits(StoreLimits {
        search_work: 200_000,
        ..StoreLimits::default()
    });
    let unindexable = Query::And(
        (0..1_000)
            .map(|i| Query::Not(Box::new(Query::Text(format!("z{}", i % 10)))))
            .collect(),
    );
    let (reply, _) = units(&store, unindexable);
    assert_eq!(
        reply,
        Err(StorageError::Limit(tern_core::store::LimitKind::SearchWork))
    );
}

/// Issue 19: the per-account mailbox bound is the configured one.
#[test]
fn the_mailbox_limit_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_limits(StoreLimits {
        max_mailboxes: 8,
        ..StoreLimits::default()
    });
    let create = |store: &mut SqliteStore, name: &str| {
        store.execute(StorageOp::CreateMailbox {
            account: "alice".into(),
            name: name.into(),
            special_use: None,
        })
    };
    // INBOX and the five default mailboxes, then two more.
    assert!(matches!(
        create(&mut store, "a"),
        Ok(StorageReply::Created { .. })
    ));
    assert!(matches!(
        create(&mut store, "b"),
        Ok(StorageReply::Created { .. })
    ));
    assert_eq!(
        create(&mut store, "c"),
        Err(StorageError::Limit(tern_core::store::LimitKind::Mailboxes))
    );
}

fn expunge_all(store: &mut SqliteStore) {
    set_flags(store, vec![1, 2, 3], StoreMode::Add, Flag::Deleted);
    store
        .execute(StorageOp::Expunge {
            account: "alice".into(),
            mailbox: INBOX,
            uids: None,
        })
        .unwrap();
}

fn expunged_fetch(store: &mut SqliteStore, uid: u32) -> Option<(bool, Option<Bytes>)> {
    match store
        .execute(StorageOp::Fetch {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![uid],
            want: FetchWant {
                content: true,
                info: false,
                header_only: false,
                ..Default::default()
            },
            mark_seen: false,
        })
        .unwrap()
    {
        StorageReply::Fetched(mut v) => v
            .pop()
            .map(|m| (m.expunged, m.content.map(|c| c.to_bytes().unwrap()))),
        other => panic!("{other:?}"),
    }
}

/// An account with a selected mailbox is never the one evicted when many accounts are open:
/// reopening it would forget the expunged messages kept for its sessions.
#[test]
fn an_account_with_a_selection_outlives_the_open_account_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    append(&mut store, "INBOX", message("a", 10));
    append(&mut store, "INBOX", message("b", 10));
    let view = open_inbox(&mut store);
    expunge_all(&mut store);
    assert_eq!(
        expunged_fetch(&mut store, 1).map(|(gone, _)| gone),
        Some(true)
    );
    // Many other accounts open (and are used) after it: alice is the least recently used.
    for i in 0..crate::MAX_OPEN_ACCOUNTS + 10 {
        store
            .execute(StorageOp::ListMailboxes {
                account: format!("user{i}"),
            })
            .unwrap();
    }
    assert_eq!(
        expunged_fetch(&mut store, 1),
        Some((true, Some(message("a", 10)))),
        "the session's expunged message is still readable"
    );
    drop(view);
    // Without a selection, alice may go like any other.
    for i in 0..crate::MAX_OPEN_ACCOUNTS + 10 {
        store
            .execute(StorageOp::ListMailboxes {
                account: format!("other{i}"),
            })
            .unwrap();
    }
    assert_eq!(expunged_fetch(&mut store, 1), None);
}

/// Issue 14 item 7: an expunged message's row and body stay readable while a session that
/// has not been told of the expunge has the mailbox selected, and are released (body file
/// included) once it has been told, once its view is gone, or at the latest when the
/// account is opened again.
#[test]
fn expunged_messages_stay_readable_until_every_view_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(500);
    let big = message("big", 2000);
    for data in [message("a", 10), big.clone(), message("c", 10)] {
        append(&mut store, "INBOX", data);
    }
    // Without a view nothing is kept.
    set_flags(&mut store, vec![1], StoreMode::Add, Flag::Deleted);
    store
        .execute(StorageOp::Expunge {
            account: "alice".into(),
            mailbox: INBOX,
            uids: None,
        })
        .unwrap();
    assert_eq!(expunged_fetch(&mut store, 1), None);

    let view = open_inbox(&mut store);
    expunge_all(&mut store);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM messages"), 0);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM retained"), 2);
    assert_eq!(
        expunged_fetch(&mut store, 2),
        Some((true, Some(big.clone())))
    );
    assert_eq!(blob_files(&store).len(), 1);
    // Told up to before the expunge: still kept, whatever else is written.
    view.pin.told(view.highest_modseq);
    append(&mut store, "Drafts", message("d", 10));
    assert_eq!(
        expunged_fetch(&mut store, 2),
        Some((true, Some(big.clone())))
    );
    // Told of it: released at the next write, the body with it.
    view.pin.told(u64::MAX);
    append(&mut store, "Drafts", message("e", 10));
    assert_eq!(expunged_fetch(&mut store, 2), None);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM retained"), 0);
    store.reclaim("alice").unwrap();
    assert!(blob_files(&store).is_empty());
    assert_eq!(
        count(&mut store, "SELECT COUNT(*) FROM bodies WHERE refs != 0"),
        2
    );
    drop(view);

    // A view that goes away releases too; and a restart releases what a live view held.
    for data in [message("f", 10), big.clone(), message("g", 10)] {
        append(&mut store, "INBOX", data);
    }
    let view = open_inbox(&mut store);
    let uids: Vec<u32> = view.uids.to_vec();
    set_flags(&mut store, uids.clone(), StoreMode::Add, Flag::Deleted);
    store
        .execute(StorageOp::Expunge {
            account: "alice".into(),
            mailbox: INBOX,
            uids: None,
        })
        .unwrap();
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM retained"), 3);
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(500);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM retained"), 0);
    assert_eq!(expunged_fetch(&mut store, uids[1]), None);
    store.reclaim("alice").unwrap();
    assert!(blob_files(&store).is_empty());
    store.check("alice").unwrap();
    drop(view);
}

/// The row cache catches up from the tombstones above its MODSEQ through the
/// `expunged_modseq` index, not by walking every tombstone the mailbox ever had (the table
/// only grows: the mixed workload spent a tenth of its time there after one run).
#[test]
fn catching_up_reads_tombstones_by_modseq() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let plan: Vec<String> = store.with_connection("alice", |c| {
        let mut stmt = c
            .prepare(&format!("EXPLAIN QUERY PLAN {}", rows::CATCH_UP_EXPUNGED))
            .unwrap();
        stmt.query_map(rusqlite::params![1, 5, 10], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    });
    assert!(
        plan.iter().any(|d| d.contains("expunged_modseq")),
        "{plan:?}"
    );
    assert!(!plan.iter().any(|d| d.contains("TEMP B-TREE")), "{plan:?}");
}

/// `Changes` (every synchronisation, FETCH CHANGEDSINCE, SELECT QRESYNC) finds the messages
/// changed since a MODSEQ through the `(mailbox, modseq)` index, not by reading the mailbox:
/// 10 changes in 100,000 messages cost 10 rows.
#[test]
fn changes_read_messages_by_modseq() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let plan: Vec<String> = store.with_connection("alice", |c| {
        let mut stmt = c
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                &crate::account::changed_since()
            ))
            .unwrap();
        stmt.query_map(rusqlite::params![1, 5, 10], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    });
    assert!(
        plan.iter().any(|d| d.contains("messages_modseq")),
        "{plan:?}"
    );
}

/// Waits (bounded) until the background indexer has no work left on alice's account.
fn wait_for_indexer(store: &SqliteStore) {
    for _ in 0..2_000 {
        if store.index_backlog("alice").unwrap() == (0, 0) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "the indexer did not finish: {:?}",
        store.index_backlog("alice")
    );
}

fn indexed(store: &mut SqliteStore, trigram: &str) -> i64 {
    count(
        store,
        &format!("SELECT COUNT(*) FROM fts WHERE fts MATCH '\"{trigram}\"'"),
    )
}

/// Issue 13 item 3: APPEND queues the body for the indexer instead of indexing it, and SEARCH
/// counts every queued body as a possible match, so a message is found before and after it
/// is indexed, and ruled out by NOT alike.
#[test]
fn search_finds_messages_not_indexed_yet() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_background_indexing(false);
    append(&mut store, "INBOX", message("first", 40));
    store.index_now("alice").unwrap();
    append(&mut store, "INBOX", message("zebrafish", 40));
    assert_eq!(store.index_backlog("alice").unwrap(), (1, 0));
    assert_eq!(indexed(&mut store, "zeb"), 0);
    let queries = [
        (Query::Text("zebrafish".into()), vec![2]),
        (Query::Header("subject".into(), "zebra".into()), vec![2]),
        (Query::Body("lorem".into()), vec![1, 2]),
        (
            Query::Not(Box::new(Query::Text("zebrafish".into()))),
            vec![1],
        ),
        (Query::Text("first".into()), vec![1]),
    ];
    let mut before = Vec::new();
    for (q, want) in &queries {
        before.push(search(&mut store, q.clone()));
        assert_eq!(before.last(), Some(&StorageReply::Found(want.clone())));
    }
    store.index_now("alice").unwrap();
    assert_eq!(store.index_backlog("alice").unwrap(), (0, 0));
    assert_eq!(indexed(&mut store, "zeb"), 1);
    for ((q, _), was) in queries.iter().zip(before) {
        assert_eq!(search(&mut store, q.clone()), was);
    }
    store.check("alice").unwrap();
}

/// The queue is durable: bodies queued (and bodies left unreferenced) before the store closes
/// are indexed (and reclaimed) by the next store's indexer once the account opens.
#[test]
fn queued_index_work_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_background_indexing(false);
    append_many(&mut store, 300, "kestrel");
    set_flags(
        &mut store,
        (1..=100).collect(),
        StoreMode::Add,
        Flag::Deleted,
    );
    store
        .execute(StorageOp::Expunge {
            account: "alice".into(),
            mailbox: INBOX,
            uids: None,
        })
        .unwrap();
    assert_eq!(store.index_backlog("alice").unwrap(), (300, 100));
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.open_account("alice").unwrap();
    wait_for_indexer(&store);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM bodies"), 200);
    assert_eq!(indexed(&mut store, "kes"), 200);
    let found = store
        .execute(search_op(
            (1..=400).collect(),
            Query::Text("kestrel".into()),
        ))
        .unwrap();
    assert_eq!(found, StorageReply::Found((101..=300).collect()));
    store.check("alice").unwrap();
}

/// The indexer working in the background, batch by batch, alongside writes: every body ends up
/// indexed once, every unreferenced one reclaimed with its index row, and FTS5's integrity
/// check passes.
#[test]
fn background_indexing_and_reclaiming_keep_the_index_sound() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    for round in 0..3 {
        append_many(&mut store, 2 * INDEX_BATCH, &format!("heron{round}"));
        let uids: Vec<u32> = (1..=6 * INDEX_BATCH as u32)
            .filter(|u| u % 3 == 0)
            .collect();
        set_flags(&mut store, uids, StoreMode::Add, Flag::Deleted);
        store
            .execute(StorageOp::Expunge {
                account: "alice".into(),
                mailbox: INBOX,
                uids: None,
            })
            .unwrap();
    }
    wait_for_indexer(&store);
    let left = count(&mut store, "SELECT COUNT(*) FROM messages");
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM bodies"), left);
    assert_eq!(indexed(&mut store, "her"), left);
    store.check("alice").unwrap();
    let found = store
        .execute(search_op(
            (1..=6 * INDEX_BATCH as u32).collect(),
            Query::Text("heron1".into()),
        ))
        .unwrap();
    let StorageReply::Found(found) = found else {
        panic!("{found:?}")
    };
    assert!(found
        .iter()
        .all(|u| u % 3 != 0 && (*u as usize) > 2 * INDEX_BATCH));
    let sql = format!(
        "SELECT COUNT(*) FROM messages WHERE uid > {} AND uid <= {}",
        2 * INDEX_BATCH,
        4 * INDEX_BATCH
    );
    assert_eq!(found.len() as i64, count(&mut store, &sql));
}

/// Back-pressure: with more than `FTS_QUEUE_BOUND` bodies queued, APPEND indexes inline again
/// (as before the queue existed), so the queue, and the candidates it adds to every text
/// SEARCH, stay bounded.
#[test]
fn a_long_index_queue_makes_append_index_inline() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_background_indexing(false);
    append(&mut store, "INBOX", message("queued", 40));
    assert_eq!(store.index_backlog("alice").unwrap(), (1, 0));
    lock(&store.account("alice").unwrap().account).set_fts_queued(FTS_QUEUE_BOUND);
    append(&mut store, "INBOX", message("inline", 40));
    assert_eq!(store.index_backlog("alice").unwrap(), (1, 0));
    assert_eq!(indexed(&mut store, "inl"), 1);
    assert_eq!(indexed(&mut store, "que"), 0);
    store.index_now("alice").unwrap();
    // The count is exact again after a batch: the next APPEND queues.
    append(&mut store, "INBOX", message("later", 40));
    assert_eq!(store.index_backlog("alice").unwrap(), (1, 0));
    store.index_now("alice").unwrap();
    assert_eq!(indexed(&mut store, "que"), 1);
    store.check("alice").unwrap();
}

/// The index's superset for a text criterion maps to exactly the messages of the bodies it
/// names: only those have their text loaded (a mapping that ran on past a hit's body made
/// every later message a candidate, and SEARCH TEXT of a rare word over 100,000 messages went
/// from 6 ms to almost a second).
#[test]
fn a_rare_word_loads_only_the_texts_of_its_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    append_many(&mut store, 300, "plain words");
    append(
        &mut store,
        "INBOX",
        message("the rare word tk0421 is here", 20),
    );
    append_many(&mut store, 300, "more plain words");
    store.index_now("alice").unwrap();
    let uids: Vec<u32> = (1..=601).collect();
    let handle = store.account("alice").unwrap();
    let mut account = lock(&handle.account);
    let never = || false;
    let mut meter = Meter::new(u64::MAX, &never);
    let job = account
        .search_start(
            INBOX,
            &uids,
            &Query::Text("tk0421".into()),
            1_767_225_600,
            &mut meter,
        )
        .unwrap();
    let undecided: Vec<u32> = job.undecided.iter().map(|m| m.uid).collect();
    assert_eq!(undecided, vec![301]);
    drop(account);
    drop(handle);
    assert_eq!(
        store
            .execute(search_op(uids, Query::Text("tk0421".into())))
            .unwrap(),
        StorageReply::Found(vec![301])
    );
}

/// A cached statement is planned once: binding other values (another mailbox, UID or LIMIT)
/// must not make SQLite parse and plan it again. Without the planner stability guarantee it
/// did, at every lookup (about an eighth of the CPU of the mixed workload).
#[test]
fn cached_statements_are_not_replanned_when_bound_values_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    append(&mut store, "INBOX", message("one", 100));
    append(&mut store, "Archive", message("two", 100));
    let replanned = store.with_connection("alice", |c| {
        let sql = "SELECT COUNT(*) FROM messages WHERE mailbox = ?1 AND uid >= ?2 LIMIT ?3";
        for (mailbox, uid, limit) in [(1i64, 1i64, 10i64), (2, 5, 3), (3, 100, 1), (1, 2, 7)] {
            let mut stmt = c.prepare_cached(sql).unwrap();
            let _: i64 = stmt
                .query_row(rusqlite::params![mailbox, uid, limit], |r| r.get(0))
                .unwrap();
        }
        let stmt = c.prepare_cached(sql).unwrap();
        stmt.get_status(rusqlite::StatementStatus::RePrepare)
    });
    assert_eq!(replanned, 0, "bound values re-planned a cached statement");
}

/// The indexer takes new work up only after `indexer::SETTLE`, so a message that dies young
/// is reclaimed without ever being indexed, and a burst is indexed together. Checked only when
/// this thread was not held up past the settle time itself (a loaded machine).
#[test]
fn the_indexer_lets_new_work_settle_before_indexing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let started = std::time::Instant::now();
    append(&mut store, "INBOX", message("kingfisher", 40));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let backlog = store.index_backlog("alice").unwrap();
    if started.elapsed() < crate::indexer::SETTLE {
        assert_eq!(backlog, (1, 0), "indexed before the settle time");
        assert_eq!(indexed(&mut store, "kin"), 0);
    }
    wait_for_indexer(&store);
    assert_eq!(indexed(&mut store, "kin"), 1);
}

/// Issue 19 item 2: a body kept as a file is handed out as an open handle, never read whole
/// to be sent; the handle stays readable after the file is removed, so a FETCH or RETR under
/// way finishes whatever happens to the message meanwhile.
#[test]
fn file_bodies_are_handed_out_as_sources_that_outlive_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(100);
    let large = message("large", 5000);
    let small = message("s", 10);
    let uid = append(&mut store, "INBOX", large.clone());
    let small_uid = append(&mut store, "INBOX", small.clone());
    let fetched = match store
        .execute(StorageOp::Fetch {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![uid, small_uid],
            want: FetchWant {
                content: true,
                info: false,
                header_only: false,
                ..Default::default()
            },
            mark_seen: false,
        })
        .unwrap()
    {
        StorageReply::Fetched(v) => v,
        other => panic!("{other:?}"),
    };
    let [big, little] = &fetched[..] else {
        panic!("{fetched:?}")
    };
    let Some(Body::Source(source)) = &big.content else {
        panic!("{:?}", big.content)
    };
    assert!(matches!(&little.content, Some(Body::Inline(b)) if *b == small));
    assert_eq!(source.len(), large.len() as u64);
    let mut part = [0u8; 10];
    assert_eq!(source.read_at(3, &mut part).unwrap(), 10);
    assert_eq!(&part[..], &large[3..13]);

    // However the file goes (an expunge's reclaim unlinks it), the open handle still reads it.
    let files = blob_files(&store);
    assert_eq!(files.len(), 1);
    for f in files {
        fs::remove_file(f).unwrap();
    }
    assert_eq!(
        Body::Source(source.clone()).to_bytes().unwrap(),
        large,
        "the open handle still reads the removed file"
    );
}

/// Requests submitted with a callback (the server's path, `MailStore::try_submit`) are run by
/// a worker thread of the account and answered through the callback, writes once durable, in
/// one batch when they queue together; the worker ends once the account is quiet. SEARCH and
/// accounts not open yet are handed back for `execute`.
#[test]
fn submitted_requests_are_answered_by_the_accounts_worker() {
    use std::sync::mpsc;
    use std::time::Duration;
    use tern_core::store::MailStore;

    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
    let status = |account: &str| StorageOp::Status {
        account: account.into(),
        name: "INBOX".into(),
    };
    // Not open yet: opening reads the disk, which is for a thread that may wait.
    let refused = store.try_submit(status("alice"), 1_767_225_600, Box::new(|_| {}));
    assert!(matches!(refused, Err((StorageOp::Status { .. }, _))));
    MailStore::execute(&*store, status("alice"), 1_767_225_600, &|| false).unwrap();
    let search = StorageOp::Search {
        account: "alice".into(),
        mailbox: INBOX,
        uids: vec![1],
        query: Query::All,
    };
    assert!(store
        .try_submit(search, 1_767_225_600, Box::new(|_| {}))
        .is_err());

    let handle = store.account("alice").unwrap();
    let held = lock(&handle.account);
    let (tx, rx) = mpsc::channel();
    for i in 0..20 {
        let append = StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data: message(&format!("submitted {i}"), 50),
            }],
        };
        let to = tx.clone();
        let sent = store.try_submit(
            append,
            1_767_225_600,
            Box::new(move |r| to.send(("append", r)).unwrap()),
        );
        assert!(sent.is_ok());
        let to = tx.clone();
        let sent = store.try_submit(
            status("alice"),
            1_767_225_600,
            Box::new(move |r| to.send(("status", r)).unwrap()),
        );
        assert!(sent.is_ok());
    }
    // Nothing runs while the account is held; then the worker answers everything.
    std::thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err());
    drop(held);
    let mut uids = Vec::new();
    for _ in 0..40 {
        match rx.recv_timeout(Duration::from_secs(20)).unwrap() {
            ("append", Ok(StorageReply::Appended { uids: u, .. })) => uids.extend(u),
            ("status", Ok(StorageReply::Status(_))) => {}
            other => panic!("{other:?}"),
        }
    }
    uids.sort_unstable();
    assert_eq!(uids, (1..=20).collect::<Vec<u32>>());
    // The appends went together, in few commits.
    assert!(store.batch_stats("alice").unwrap().batches >= 1);
    // Acknowledged means durable: a fresh store on the folder sees all of them.
    for _ in 0..200 {
        if !handle.leading() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!handle.leading(), "the worker outlived its linger time");
    drop(handle);
    drop(store);
    let mut reopened = SqliteStore::open(dir.path()).unwrap();
    match tern_core::Store::execute(&mut reopened, status("alice")).unwrap() {
        StorageReply::Status(s) => assert_eq!(s.messages, 20),
        other => panic!("{other:?}"),
    }
}

/// Callers that wait on their own thread (`execute`, leading the queue in turn) and requests
/// with callbacks (the worker's) share one account's queue at once: every request is answered
/// once, writes in order with unique UIDs, and a joined request (`Then`) comes back whole,
/// its synchronisation seeing its own APPEND.
#[test]
fn waiting_callers_and_the_worker_share_the_queue() {
    use std::sync::mpsc;
    use std::time::Duration;
    use tern_core::store::{ChangeSet, MailStore};

    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
    let append = |i: usize| StorageOp::Append {
        account: "alice".into(),
        name: "INBOX".into(),
        messages: vec![NewMessage {
            flags: Vec::new(),
            internal_date: None,
            data: message(&format!("shared {i}"), 50),
        }],
    };
    let uids_of = |r: StorageResult| match r {
        Ok(StorageReply::Appended { uids, .. }) => uids,
        other => panic!("{other:?}"),
    };
    MailStore::execute(&*store, append(0), 1_767_225_600, &|| false).unwrap();
    let (tx, rx) = mpsc::channel();
    let callers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..25)
                    .flat_map(|i| {
                        let r = MailStore::execute(
                            &*store,
                            append(1000 + t * 100 + i),
                            1_767_225_600,
                            &|| false,
                        );
                        uids_of(r)
                    })
                    .collect::<Vec<u32>>()
            })
        })
        .collect();
    let mut sent = 0;
    for i in 0..60 {
        let op = if i % 3 == 0 {
            StorageOp::Then {
                first: Box::new(append(i)),
                then: Box::new(StorageOp::Changes {
                    account: "alice".into(),
                    mailbox: INBOX,
                    uid_next: 1,
                    since: 0,
                    claim_recent: false,
                }),
            }
        } else {
            append(i)
        };
        let to = tx.clone();
        match store.try_submit(op, 1_767_225_600, Box::new(move |r| to.send(r).unwrap())) {
            Ok(()) => sent += 1,
            // The account's handle was busy being looked up: the server would run it on a
            // thread that may wait, as this does.
            Err((op, _)) => {
                tx.send(MailStore::execute(&*store, op, 1_767_225_600, &|| false))
                    .unwrap();
                sent += 1;
            }
        }
    }
    let mut uids: Vec<u32> = vec![1];
    for _ in 0..sent {
        match rx.recv_timeout(Duration::from_secs(30)).unwrap() {
            Ok(StorageReply::Then { first, then }) => {
                let own = uids_of(*first);
                let Ok(StorageReply::Changes(ChangeSet { added, .. })) = *then else {
                    panic!("the joined synchronisation failed");
                };
                assert!(
                    own.iter().all(|u| added.iter().any(|m| m.uid == *u)),
                    "the synchronisation runs after its own APPEND"
                );
                uids.extend(own);
            }
            other => uids.extend(uids_of(other)),
        }
    }
    for caller in callers {
        uids.extend(caller.join().unwrap());
    }
    uids.sort_unstable();
    assert_eq!(uids, (1..=161).collect::<Vec<u32>>(), "each request once");
}

/// Rewrites every packed value of `table` in the form tern wrote before schema version 5: LZ4
/// (tag 1) when that saves anything, else raw, exactly as `pack` did then.
fn rewrite_as_lz4(c: &rusqlite::Connection, table: &str) -> usize {
    let rows: Vec<(i64, Vec<u8>)> = c
        .prepare(&format!("SELECT id, data FROM {table}"))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut lz4 = 0;
    for (id, stored) in rows {
        let data = tern_core::store::stored::unpack(stored, &mut Default::default()).unwrap();
        let packed = lz4_flex::block::compress_prepend_size(&data);
        let old = if data.len() >= 64 && packed.len() + packed.len() / 8 < data.len() {
            lz4 += 1;
            [&[1u8][..], &packed].concat()
        } else {
            [&[0u8][..], &data].concat()
        };
        c.execute(
            &format!("UPDATE {table} SET data = ?1 WHERE id = ?2"),
            rusqlite::params![old, id],
        )
        .unwrap();
    }
    lz4
}

/// The tag bytes of a table's values, counted: (raw, LZ4, zstd in one frame or, for a
/// message, two).
fn packing_tags(store: &mut SqliteStore, table: &str) -> (i64, i64, i64) {
    let mut n = |tag: u8| {
        count(
            store,
            &format!("SELECT COUNT(*) FROM {table} WHERE substr(data, 1, 1) = x'0{tag}'"),
        )
    };
    (n(0), n(1), n(2) + n(3))
}

/// Schema version 5 packs inline bodies with zstd; a version 4 database (bodies and texts
/// packed with LZ4) opens at version 5 without rewriting its rows, and its messages read,
/// search (through the index and before it), expunge (FTS5's 'delete' re-derives the indexed
/// values from the old rows) and reclaim as before, next to messages stored after the step.
#[test]
fn version_four_databases_keep_their_lz4_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(2000);
    let old: Vec<Bytes> = (0..6)
        .map(|i| message(&format!("heron old{i}"), 300 + 500 * i))
        .collect();
    for m in &old {
        append(&mut store, "INBOX", m.clone());
    }
    store.index_now("alice").unwrap();
    // New rows are zstd (every message here compresses), the search texts too.
    assert_eq!(packing_tags(&mut store, "contents"), (0, 0, 4));
    assert_eq!(packing_tags(&mut store, "texts"), (0, 0, 6));
    let (contents, texts) = store.with_connection("alice", |c| {
        let contents = rewrite_as_lz4(c, "contents");
        let texts = rewrite_as_lz4(c, "texts");
        undo_metadata(c);
        undo_sort_keys(c);
        undo_object_ids(c);
        c.execute_batch(UNDO_V6).unwrap();
        c.pragma_update(None, "user_version", 4).unwrap();
        (contents, texts)
    });
    assert_eq!((contents, texts), (4, 6));
    drop(store);

    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(2000);
    store.set_background_indexing(false);
    assert_eq!(count(&mut store, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(packing_tags(&mut store, "contents"), (0, 4, 0));
    let new = message("heron new", 900);
    append(&mut store, "INBOX", new.clone());
    assert_eq!(packing_tags(&mut store, "contents"), (0, 4, 1));
    for (uid, m) in old.iter().chain([&new]).enumerate() {
        assert_eq!(fetch_content(&mut store, uid as u32 + 1).as_ref(), Some(m));
    }
    let all: Vec<u32> = (1..=7).collect();
    // The new message is still queued for the indexer, the old ones are in the index.
    assert_eq!(
        search(&mut store, Query::Text("heron".into())),
        StorageReply::Found(all.clone())
    );
    assert_eq!(
        search(&mut store, Query::Header("subject".into(), "old3".into())),
        StorageReply::Found(vec![4])
    );
    store.index_now("alice").unwrap();
    set_flags(&mut store, vec![2, 4, 7], StoreMode::Add, Flag::Deleted);
    store
        .execute(StorageOp::Expunge {
            account: "alice".into(),
            mailbox: INBOX,
            uids: None,
        })
        .unwrap();
    // Reclaiming deletes the index rows of the old and the new form alike.
    store.index_now("alice").unwrap();
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM bodies"), 4);
    assert_eq!(indexed(&mut store, "her"), 4);
    assert_eq!(indexed(&mut store, "old"), 4);
    assert_eq!(indexed(&mut store, "new"), 0);
    store.check("alice").unwrap();
    assert_eq!(
        search(&mut store, Query::Text("heron".into())),
        StorageReply::Found(vec![1, 3, 5, 6])
    );
    assert_eq!(
        search(&mut store, Query::Body("ipsum".into())),
        StorageReply::Found(vec![1, 3, 5, 6])
    );
    assert_eq!(
        search(&mut store, Query::Header("subject".into(), "old3".into())),
        StorageReply::Found(vec![])
    );
    for uid in [1, 3, 5, 6] {
        assert_eq!(
            fetch_content(&mut store, uid).as_ref(),
            old.get(uid as usize - 1)
        );
    }
}

/// When the background indexer empties its queue it returns the free pages past
/// `FREE_PAGES_KEPT` to the file system: here those of 400 reclaimed bodies (before, they
/// stayed in the file until the account was opened again).
#[test]
fn the_indexer_returns_free_pages_when_its_queue_empties() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    // Bodies that do not compress (printable noise), so each takes its own pages.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let messages = (0..400)
        .map(|i| {
            let noise: String = (0..3000)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    char::from(b'!' + (seed % 90) as u8)
                })
                .collect();
            NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data: Bytes::from(format!("Subject: m{i}\r\n\r\n{noise}\r\n")),
            }
        })
        .collect();
    store
        .execute(StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages,
        })
        .unwrap();
    wait_for_indexer(&store);
    let uids: Vec<u32> = (1..=400).collect();
    set_flags(&mut store, uids, StoreMode::Add, Flag::Deleted);
    store
        .execute(StorageOp::Expunge {
            account: "alice".into(),
            mailbox: INBOX,
            uids: None,
        })
        .unwrap();
    wait_for_indexer(&store);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM bodies"), 0);
    let free = count(&mut store, "PRAGMA freelist_count");
    assert!(free <= 2 * account::FREE_PAGES_KEPT, "{free} free pages");
    store.check("alice").unwrap();
}

/// The indexer gives way to clients: a batch that sees a request waiting for the account ends
/// after a few bodies (the rest stay queued for the next batch), one that sees none goes on.
#[test]
fn an_indexer_batch_ends_early_when_a_client_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_background_indexing(false);
    for i in 0..40 {
        append(&mut store, "INBOX", message(&format!("m{i}"), 200));
    }
    assert_eq!(store.index_backlog("alice").unwrap(), (40, 0));
    let handle = store.account("alice").unwrap();
    let more = lock(&handle.account).index_batch(&|| true).unwrap();
    assert!(more);
    assert_eq!(
        store.index_backlog("alice").unwrap(),
        (40 - crate::account::INDEX_BATCH_YIELDING, 0)
    );
    let more = lock(&handle.account).index_batch(&|| false).unwrap();
    assert!(!more);
    assert_eq!(store.index_backlog("alice").unwrap(), (0, 0));
}

/// `StorageOp::Usage` answers from the mailboxes' kept totals, and asking about an account
/// that does not exist neither fails nor creates it.
#[test]
fn usage_through_the_contract_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let usage = |store: &mut SqliteStore| match store
        .execute(StorageOp::Usage {
            account: "alice".into(),
        })
        .unwrap()
    {
        StorageReply::Usage(u) => u,
        other => panic!("{other:?}"),
    };
    assert_eq!(usage(&mut store), Usage::default());
    assert!(!store.account_dir("alice").unwrap().exists());
    let a = message("one", 100);
    let b = message("two", 5000);
    append(&mut store, "INBOX", a.clone());
    let u2 = append(&mut store, "INBOX", b.clone());
    // A copy counts again (quota semantics).
    store
        .execute(StorageOp::CopyMove {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![u2],
            target: "Trash".into(),
            remove: false,
        })
        .unwrap();
    let both = Usage {
        messages: 3,
        octets: (a.len() + 2 * b.len()) as u64,
    };
    assert_eq!(usage(&mut store), both);
    assert_eq!(store.usage("alice").unwrap(), both);
    store
        .execute(StorageOp::Remove {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![u2],
            seen: Vec::new(),
        })
        .unwrap();
    assert_eq!(
        usage(&mut store),
        Usage {
            messages: 2,
            octets: (a.len() + b.len()) as u64,
        }
    );
}

/// RFC 9208 quota is decided inside each write's own savepoint of a group commit: of five
/// appends queued together, each of which fits alone, only as many as fit together succeed;
/// the refused ones leave nothing (not even a UID), and the usage after a reopen is exact.
#[test]
fn queued_writes_over_quota_fail_alone_and_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    append(&mut store, "INBOX", message("first", 100));
    let store = std::sync::Arc::new(store);
    let handle = store.account("alice").unwrap();
    let quota = tern_core::store::Quota {
        octets: None,
        messages: Some(3),
    };
    let held = lock(&handle.account);
    let submit = |subject: String| {
        let store = store.clone();
        let op = quota.hold(StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data: message(&subject, 50),
            }],
        });
        std::thread::spawn(move || store.execute_shared(op, 1_767_225_600).0)
    };
    let lead = submit("lead".into());
    spin_until(|| handle.all_taken(1));
    let rest: Vec<_> = (0..4).map(|i| submit(format!("queued {i}"))).collect();
    spin_until(|| handle.waiting() >= 4);
    drop(held);
    let mut replies = vec![lead.join().unwrap()];
    replies.extend(rest.into_iter().map(|t| t.join().unwrap()));
    let ok: Vec<u32> = replies
        .iter()
        .filter_map(|r| match r {
            Ok(StorageReply::Appended { uids, .. }) => Some(uids[0]),
            _ => None,
        })
        .collect();
    assert_eq!(ok.len(), 2, "{replies:?}");
    assert_eq!(
        replies
            .iter()
            .filter(|r| **r == Err(StorageError::OverQuota))
            .count(),
        3
    );
    drop(handle);
    let Ok(store) = std::sync::Arc::try_unwrap(store) else {
        panic!("the store is still shared");
    };
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.usage("alice").unwrap().messages, 3);
    // A refused write took no UID: the next one continues right after the accepted ones.
    let next = append(&mut store, "INBOX", message("after", 10));
    assert_eq!(next, 4);
}

/// What a quota refuses and lets through: a change that raises a resource over its bound is
/// refused whole, one that lowers or keeps it passes even above the bound (MOVE within the
/// account, REPLACE by a smaller message), so an account over a lowered quota can shrink.
#[test]
fn quota_refuses_growth_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let big = append(&mut store, "INBOX", message("big", 3000));
    let used = store.usage("alice").unwrap();
    let tight = tern_core::store::Quota {
        octets: Some(used.octets),
        messages: None,
    };
    let mut run = |op: StorageOp| store.execute(tight.hold(op));
    let new = |subject: &str, len: usize| NewMessage {
        flags: Vec::new(),
        internal_date: None,
        data: message(subject, len),
    };
    // Full: any addition is refused, a MULTIAPPEND as a whole.
    assert_eq!(
        run(StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![new("a", 1), new("b", 1)],
        }),
        Err(StorageError::OverQuota)
    );
    assert_eq!(
        run(StorageOp::CopyMove {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![big],
            target: "Trash".into(),
            remove: false,
        }),
        Err(StorageError::OverQuota)
    );
    // A mailbox that does not exist is that error, not the quota's.
    assert_eq!(
        run(StorageOp::Append {
            account: "alice".into(),
            name: "Nowhere".into(),
            messages: vec![new("a", 1)],
        }),
        Err(StorageError::NoSuchMailbox)
    );
    // MOVE within the account and a smaller REPLACE pass.
    let Ok(StorageReply::Copied { pairs, .. }) = run(StorageOp::CopyMove {
        account: "alice".into(),
        mailbox: INBOX,
        uids: vec![big],
        target: "Archive".into(),
        remove: true,
    }) else {
        panic!("MOVE within the account was refused");
    };
    let archive = match store
        .execute(StorageOp::Status {
            account: "alice".into(),
            name: "Archive".into(),
        })
        .unwrap()
    {
        StorageReply::Status(s) => s.id.unwrap(),
        other => panic!("{other:?}"),
    };
    let mut run = |op: StorageOp| store.execute(tight.hold(op));
    assert!(run(StorageOp::Replace {
        account: "alice".into(),
        mailbox: archive,
        uid: pairs[0].1,
        name: "Archive".into(),
        message: Box::new(new("smaller", 100)),
    })
    .is_ok());
    let after = store.usage("alice").unwrap();
    assert!(after.octets < used.octets, "{after:?}");
    assert_eq!(after.messages, 1);
}

/// STATUS answers DELETED-STORAGE (RFC 9208 §4.1.4) exactly, and stays a quick read only while
/// the `\Deleted` messages it sums are few.
#[test]
fn status_deleted_storage_is_exact_and_quick_only_for_few_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_background_indexing(false);
    let status = || StorageOp::Status {
        account: "alice".into(),
        name: "INBOX".into(),
    };
    let deleted_size = |store: &mut SqliteStore| match store.execute(status()).unwrap() {
        StorageReply::Status(s) => (s.deleted, s.deleted_size),
        other => panic!("{other:?}"),
    };
    let a = message("a", 100);
    let b = message("b", 300);
    let ua = append(&mut store, "INBOX", a.clone());
    append(&mut store, "INBOX", b.clone());
    assert_eq!(deleted_size(&mut store), (0, 0));
    store
        .execute(StorageOp::SetFlags {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![ua],
            mode: StoreMode::Add,
            flags: vec![Flag::Deleted],
            unchanged_since: None,
        })
        .unwrap();
    assert_eq!(deleted_size(&mut store), (1, a.len() as u64));
    assert!(store.try_execute_shared(status(), 0).is_ok());
    let many: Vec<NewMessage> = (0..600)
        .map(|_| NewMessage {
            flags: vec![Flag::Deleted],
            internal_date: None,
            data: Bytes::from_static(b"Subject: d\r\n\r\nx\r\n"),
        })
        .collect();
    store
        .execute(StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: many,
        })
        .unwrap();
    assert_eq!(deleted_size(&mut store), (601, a.len() as u64 + 600 * 17));
    assert!(store.try_execute_shared(status(), 0).is_err());
}

/// An account created by a request takes its mailboxes' UIDVALIDITY from the request's time,
/// so an account whose folder was removed and made again never repeats the old identifiers
/// (RFC 9051 §2.3.1.1: UIDs reassigned need a new UIDVALIDITY).
#[test]
fn a_new_account_takes_uidvalidity_from_the_request_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let status = |now| {
        let (reply, _) = store.execute_shared(
            StorageOp::Status {
                account: "alice".into(),
                name: "INBOX".into(),
            },
            now,
        );
        match reply {
            Ok(StorageReply::Status(s)) => s.uid_validity,
            other => panic!("{other:?}"),
        }
    };
    let first = status(1_800_000_000);
    assert_eq!(first, 1_800_000_000);
    store.close_all();
    std::fs::remove_dir_all(store.account_dir("alice").unwrap()).unwrap();
    let second = status(1_800_000_500);
    assert_ne!(first, second);
    assert_eq!(second, 1_800_000_500);
}

/// EMAILID and THREADID numbers of INBOX's messages.
fn object_ids(store: &mut SqliteStore) -> Vec<(u32, u64, u64)> {
    match store
        .execute(StorageOp::Fetch {
            account: "alice".into(),
            mailbox: INBOX,
            uids: (1..100).collect(),
            want: FetchWant::default(),
            mark_seen: false,
        })
        .unwrap()
    {
        StorageReply::Fetched(v) => v
            .into_iter()
            .map(|m| (m.uid, m.email_id.0, m.thread_id.0))
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// What schema version 6 adds, taken away again: the database an older tern left.
const UNDO_V6: &str = "DROP TABLE previews; ALTER TABLE messages DROP COLUMN saved; \
                       ALTER TABLE retained DROP COLUMN saved; \
                       DELETE FROM meta WHERE key = 'preview_backfill';";

fn fetch_with(
    store: &mut SqliteStore,
    uids: Vec<u32>,
    preview: PreviewWant,
) -> Vec<FetchedMessage> {
    match store
        .execute(StorageOp::Fetch {
            account: "alice".into(),
            mailbox: INBOX,
            uids,
            want: FetchWant {
                preview,
                ..Default::default()
            },
            mark_seen: false,
        })
        .unwrap()
    {
        StorageReply::Fetched(v) => v,
        other => panic!("{other:?}"),
    }
}

/// Schema version 7 (RFC 8474): messages stored before it get EMAILIDs in (mailbox, UID)
/// order and THREADIDs from their headers (a reply stored before its parent still meets
/// it), bodies too large to be inline included; the account gets a key; messages stored
/// after the step go on from there.
#[test]
fn version_five_databases_gain_object_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(100);
    let with = |headers: &str, body: usize| {
        let mut m = headers.to_string();
        m.push_str(std::str::from_utf8(&message("s", body)).unwrap());
        Bytes::from(m)
    };
    append(
        &mut store,
        "INBOX",
        with("Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n", 10),
    );
    append(&mut store, "INBOX", with("Message-ID: <c@x>\r\n", 5000));
    append(&mut store, "INBOX", with("Message-ID: <a@x>\r\n", 5000));
    store.open_account("alice").unwrap();
    store
        .with_connection("alice", |c| {
            undo_metadata(c);
            undo_sort_keys(c);
            undo_object_ids(c);
            c.pragma_update(None, "user_version", 6)
        })
        .unwrap();
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(count(&mut store, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_ne!(
        count(
            &mut store,
            "SELECT value FROM meta WHERE key = 'object_key'"
        ),
        0
    );
    assert_eq!(
        object_ids(&mut store),
        vec![(1, 1, 1), (2, 2, 2), (3, 3, 1)]
    );
    append(
        &mut store,
        "INBOX",
        with("Message-ID: <d@x>\r\nReferences: <a@x> <b@x>\r\n", 10),
    );
    assert_eq!(object_ids(&mut store).last(), Some(&(4, 4, 1)));
    store.check("alice").unwrap();
}

/// The account's key is drawn at random when the account is made, and kept.
#[test]
fn accounts_get_their_own_object_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let key = |store: &mut SqliteStore, account: &str| match store
        .execute(StorageOp::Status {
            account: account.into(),
            name: "INBOX".into(),
        })
        .unwrap()
    {
        StorageReply::Status(s) => s.object_key,
        other => panic!("{other:?}"),
    };
    let alice = key(&mut store, "alice");
    let bob = key(&mut store, "bob");
    assert_ne!(alice, bob);
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(key(&mut store, "alice"), alice);
}

/// A message with ten thousand References leaves at most 16 of them in `threads` (the root
/// and the nearest 15), besides its own Message-ID.
#[test]
fn long_references_keep_a_bounded_map() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let refs: String = (0..10_000).map(|i| format!(" <{i}@x>\r\n")).collect();
    append(
        &mut store,
        "INBOX",
        Bytes::from(format!(
            "Message-ID: <m@x>\r\nReferences:{refs}\r\n\r\nx\r\n"
        )),
    );
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM threads"), 17);
    assert_eq!(
        count(
            &mut store,
            "SELECT COUNT(*) FROM threads WHERE msgid = '0@x' OR msgid = '9999@x'"
        ),
        2
    );
}

/// Takes a database back to before schema version 8 (sort keys), for tests that open
/// databases of older versions.
fn undo_sort_keys(c: &rusqlite::Connection) {
    c.execute_batch("DROP TABLE sortkeys;").unwrap();
}

/// Takes a database back to before schema version 7 (RFC 8474 object identifiers), for tests
/// that open databases of older versions.
/// Takes a database back before schema version 9 (METADATA).
fn undo_metadata(c: &rusqlite::Connection) {
    c.execute_batch("DROP TABLE metadata;").unwrap();
}

fn undo_object_ids(c: &rusqlite::Connection) {
    c.execute_batch(
        "ALTER TABLE messages DROP COLUMN email; ALTER TABLE messages DROP COLUMN thread; \
         ALTER TABLE retained DROP COLUMN email; ALTER TABLE retained DROP COLUMN thread; \
         DROP TABLE threads; DELETE FROM meta WHERE key IN ('object_key', 'last_email');",
    )
    .unwrap();
}

/// Schema version 6 keeps a preview per body and a save date per message. A version 5
/// database opens at version 6 without rewriting anything: its bodies (inline or in files)
/// get their previews computed when a FETCH PREVIEW asks (RFC 8970 §3.2: never NIL without
/// LAZY), `PREVIEW (LAZY)` answers NIL for them (§4.1), and its messages answer and search
/// their internal date as save date; messages stored after the step have both stored.
#[test]
fn version_five_databases_gain_previews_and_save_dates() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(2000);
    store.set_now(1_767_225_600); // 2026-01-01
    let small = message("small", 100);
    let large = message("large", 5000);
    append(&mut store, "INBOX", small.clone());
    append(&mut store, "INBOX", large.clone());
    store.with_connection("alice", |c| {
        undo_metadata(c);
        undo_sort_keys(c);
        undo_object_ids(c);
        c.execute_batch(UNDO_V6).unwrap();
        c.pragma_update(None, "user_version", 5).unwrap();
    });
    drop(store);

    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_inline_limit(2000);
    store.set_background_indexing(false);
    store.set_now(1_767_225_600 + 3 * 86_400); // 2026-01-04
    assert_eq!(count(&mut store, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM previews"), 0);
    let newer = Bytes::from_static(b"Subject: new\r\n\r\nFresh words.\r\n");
    append(&mut store, "INBOX", newer.clone());
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM previews"), 1);

    let lazy = fetch_with(&mut store, vec![1, 2, 3], PreviewWant::Lazy);
    let lazy: Vec<Option<&str>> = lazy.iter().map(|m| m.preview.as_deref()).collect();
    assert_eq!(lazy, [None, None, Some("Fresh words.")]);
    let eager = fetch_with(&mut store, vec![1, 2, 3], PreviewWant::Always);
    for (m, raw) in eager.iter().zip([&small, &large, &newer]) {
        assert_eq!(
            m.preview.as_deref(),
            Some(preview(raw).as_str()),
            "{}",
            m.uid
        );
    }
    assert!(eager[0]
        .preview
        .as_deref()
        .unwrap()
        .starts_with("lorem ipsum"));
    // The old messages' save date is their internal date; the new one's is today.
    for m in &eager[..2] {
        assert_eq!(m.save_date, m.internal_date);
    }
    assert_eq!(eager[2].save_date, from_unix(1_767_225_600 + 3 * 86_400, 0));
    let day = |d: u8| Date {
        year: 2026,
        month: 1,
        day: d,
    };
    assert_eq!(
        search(&mut store, Query::SaveDate(DateCmp::On, day(1))),
        StorageReply::Found(vec![1, 2])
    );
    assert_eq!(
        search(&mut store, Query::SaveDate(DateCmp::Since, day(2))),
        StorageReply::Found(vec![3])
    );
    // The indexer gives the old bodies their previews; LAZY then has them all.
    assert_eq!(
        count(
            &mut store,
            "SELECT value FROM meta WHERE key = 'preview_backfill'"
        ),
        2
    );
    store.index_now("alice").unwrap();
    let lazy = fetch_with(&mut store, vec![1, 2, 3], PreviewWant::Lazy);
    for (m, raw) in lazy.iter().zip([&small, &large, &newer]) {
        assert_eq!(
            m.preview.as_deref(),
            Some(preview(raw).as_str()),
            "{}",
            m.uid
        );
    }
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM previews"), 3);
    assert_eq!(
        count(
            &mut store,
            "SELECT value FROM meta WHERE key = 'preview_backfill'"
        ),
        0
    );
    store.check("alice").unwrap();
}

/// COPY and MOVE save the copy at the request's time (RFC 8514 §3): the save date moves on,
/// the internal date stays; the preview is the body's and goes with it.
#[test]
fn copies_get_their_own_save_date() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.set_now(1_767_225_600);
    append(&mut store, "INBOX", message("one", 50));
    store.set_now(1_767_225_600 + 86_400);
    store
        .execute(StorageOp::CopyMove {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![1],
            target: "INBOX".into(),
            remove: false,
        })
        .unwrap();
    let both = fetch_with(&mut store, vec![1, 2], PreviewWant::Lazy);
    assert_eq!(both[0].internal_date, both[1].internal_date);
    assert_eq!(both[0].save_date, from_unix(1_767_225_600, 0));
    assert_eq!(both[1].save_date, from_unix(1_767_225_600 + 86_400, 0));
    assert_eq!(both[0].preview, both[1].preview);
    assert!(both[1].preview.is_some());
}

/// RFC 5464 §4.3: SETMETADATA past the account's entry limit changes nothing (all or none);
/// removing entries works above it; a deleted mailbox's entries are gone and no longer count;
/// the entries of a renamed mailbox follow it, and RENAME of INBOX copies INBOX's. MemStore
/// must agree step by step.
#[test]
fn metadata_limits_and_lifecycle() {
    use tern_core::store::metadata::Depth;
    use tern_core::store::LimitKind;
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteStore::open(dir.path()).unwrap();
    let mut mem = tern_core::MemStore::new();
    let limits = StoreLimits {
        metadata_entries: 3,
        ..StoreLimits::default()
    };
    sqlite.set_limits(limits);
    mem.set_limits(limits);
    let set = |mailbox: Option<&str>, entries: &[(&str, Option<&str>)]| StorageOp::SetMetadata {
        account: "alice".into(),
        mailbox: mailbox.map(str::to_string),
        entries: entries
            .iter()
            .map(|(n, v)| (n.to_string(), v.map(|v| Bytes::from(v.to_string()))))
            .collect(),
    };
    let get = |mailbox: Option<&str>| StorageOp::GetMetadata {
        account: "alice".into(),
        mailbox: mailbox.map(str::to_string),
        names: vec!["/private".to_string(), "/shared".to_string()].into(),
        depth: Depth::Infinity,
    };
    let both = |sqlite: &mut SqliteStore, mem: &mut tern_core::MemStore, op: StorageOp| {
        let a = sqlite.execute(op.clone());
        assert_eq!(a, mem.execute(op.clone()), "{op:?}");
        a
    };
    let create = |name: &str| StorageOp::CreateMailbox {
        account: "alice".into(),
        name: name.into(),
        special_use: None,
    };
    let entries = |r: StorageResult| match r {
        Ok(StorageReply::Metadata(e)) => e
            .into_iter()
            .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(&v)))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    // Object keys are random per store: only that both made it is compared.
    sqlite.execute(create("Box")).unwrap();
    mem.execute(create("Box")).unwrap();
    let two = [("/private/a", Some("1")), ("/shared/b", Some("2"))];
    assert_eq!(
        both(&mut sqlite, &mut mem, set(Some("Box"), &two)),
        Ok(StorageReply::Done)
    );
    let over = [("/private/c", Some("3")), ("/private/d", Some("4"))];
    assert_eq!(
        both(&mut sqlite, &mut mem, set(None, &over)),
        Err(StorageError::Limit(LimitKind::MetadataEntries))
    );
    // Nothing of the refused command was written.
    assert!(entries(both(&mut sqlite, &mut mem, get(None))).is_empty());
    both(
        &mut sqlite,
        &mut mem,
        set(None, &[("/private/c", Some("3"))]),
    )
    .unwrap();
    // Renamed, the mailbox keeps its entries; INBOX's are copied by RENAME INBOX.
    both(
        &mut sqlite,
        &mut mem,
        StorageOp::RenameMailbox {
            account: "alice".into(),
            from: "Box".into(),
            to: "Moved".into(),
        },
    )
    .unwrap();
    assert_eq!(
        entries(both(&mut sqlite, &mut mem, get(Some("Moved")))),
        ["/private/a=1", "/shared/b=2"]
    );
    // Deleted, its entries no longer count: two more fit.
    both(
        &mut sqlite,
        &mut mem,
        StorageOp::DeleteMailbox {
            account: "alice".into(),
            name: "Moved".into(),
        },
    )
    .unwrap();
    both(&mut sqlite, &mut mem, set(Some("INBOX"), &two)).unwrap();
    both(
        &mut sqlite,
        &mut mem,
        StorageOp::MoveAllMessages {
            account: "alice".into(),
            from: "INBOX".into(),
            to: "Old".into(),
        },
    )
    .unwrap();
    assert_eq!(
        entries(both(&mut sqlite, &mut mem, get(Some("Old")))),
        ["/private/a=1", "/shared/b=2"]
    );
    assert_eq!(
        entries(both(&mut sqlite, &mut mem, get(Some("INBOX")))),
        ["/private/a=1", "/shared/b=2"]
    );
    // Five entries now, over the limit: removing one works, adding one does not.
    both(
        &mut sqlite,
        &mut mem,
        set(Some("Old"), &[("/private/a", None)]),
    )
    .unwrap();
    assert_eq!(
        both(
            &mut sqlite,
            &mut mem,
            set(Some("Old"), &[("/private/z", Some("z"))])
        ),
        Err(StorageError::Limit(LimitKind::MetadataEntries))
    );
    // Replacing a value does not grow the account.
    both(
        &mut sqlite,
        &mut mem,
        set(Some("Old"), &[("/shared/b", Some("new"))]),
    )
    .unwrap();
    assert_eq!(
        both(
            &mut sqlite,
            &mut mem,
            set(Some("Nope"), &[("/shared/b", Some("x"))])
        ),
        Err(StorageError::NoSuchMailbox)
    );
}

fn sort_by(store: &mut SqliteStore, keys: &[(SortKey, bool)]) -> Vec<u32> {
    let criteria = keys
        .iter()
        .map(|&(key, reverse)| SortCriterion { key, reverse })
        .collect();
    match store
        .execute(StorageOp::Sort {
            account: "alice".into(),
            mailbox: INBOX,
            uids: (1..100).collect(),
            query: Query::All,
            criteria,
        })
        .unwrap()
    {
        StorageReply::Found(uids) => uids,
        other => panic!("{other:?}"),
    }
}

fn sorting_messages(store: &mut SqliteStore) {
    for (subject, from, date) in [
        ("Re: beta", "zed@x", "Tue, 2 Jan 2001 00:00:00 +0000"),
        ("alpha", "amy@x", "Wed, 3 Jan 2001 00:00:00 +0000"),
        (
            "[list] Gamma (fwd)",
            "Bob@x",
            "Mon, 1 Jan 2001 00:00:00 +0000",
        ),
    ] {
        append(
            store,
            "INBOX",
            Bytes::from(format!(
                "From: {from}\r\nSubject: {subject}\r\nDate: {date}\r\n\r\nx\r\n"
            )),
        );
    }
}

/// Every stored body has its sort fields in `sortkeys` (schema version 8), reclaimed with it;
/// SORT answers from them, and a row missing or damaged is derived again from the stored
/// structure, so the answer never changes.
#[test]
fn sort_keys_are_stored_with_bodies_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    sorting_messages(&mut store);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM sortkeys"), 3);
    let subject = [(SortKey::Subject, false)];
    let date = [(SortKey::Date, true)];
    let from = [(SortKey::From, false)];
    assert_eq!(sort_by(&mut store, &subject), [2, 1, 3]);
    assert_eq!(sort_by(&mut store, &date), [2, 1, 3]);
    assert_eq!(sort_by(&mut store, &from), [2, 3, 1]);
    // A fresh store reads them from the table; damaged and missing rows sort all the same.
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store.with_connection("alice", |c| {
        c.execute_batch(
            "UPDATE sortkeys SET data = x'07' WHERE id = 1; DELETE FROM sortkeys WHERE id = 2;",
        )
        .unwrap();
    });
    assert_eq!(sort_by(&mut store, &subject), [2, 1, 3]);
    assert_eq!(sort_by(&mut store, &from), [2, 3, 1]);
    assert_eq!(sort_by(&mut store, &date), [2, 1, 3]);
    // Equal arrivals (one clock second) keep mailbox order, reversed or not.
    assert_eq!(sort_by(&mut store, &[(SortKey::Arrival, true)]), [1, 2, 3]);
    // Reclaimed with their bodies.
    store
        .execute(StorageOp::SetFlags {
            account: "alice".into(),
            mailbox: INBOX,
            uids: vec![3],
            mode: StoreMode::Add,
            flags: vec![Flag::Deleted],
            unchanged_since: None,
        })
        .unwrap();
    store
        .execute(StorageOp::Expunge {
            account: "alice".into(),
            mailbox: INBOX,
            uids: None,
        })
        .unwrap();
    let third = "SELECT COUNT(*) FROM sortkeys WHERE id = 3";
    assert_eq!(count(&mut store, third), 1);
    store.reclaim("alice").unwrap();
    assert_eq!(count(&mut store, third), 0);
    assert_eq!(sort_by(&mut store, &subject), [2, 1]);
}

/// Schema version 8: a version 7 database gains the sort fields of every body it holds, and
/// SORT answers as before; bodies stored after the step get theirs when stored.
#[test]
fn version_seven_databases_gain_sort_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    sorting_messages(&mut store);
    let programs: [&[(SortKey, bool)]; 4] = [
        &[(SortKey::Subject, false)],
        &[(SortKey::Date, false)],
        &[(SortKey::From, true), (SortKey::Arrival, false)],
        &[(SortKey::DisplayTo, false), (SortKey::Size, true)],
    ];
    let before: Vec<Vec<u32>> = programs.iter().map(|p| sort_by(&mut store, p)).collect();
    store.with_connection("alice", |c| {
        undo_metadata(c);
        undo_sort_keys(c);
        c.pragma_update(None, "user_version", 7).unwrap();
    });
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(count(&mut store, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM sortkeys"), 3);
    let after: Vec<Vec<u32>> = programs.iter().map(|p| sort_by(&mut store, p)).collect();
    assert_eq!(before, after);
    append(&mut store, "INBOX", message("aardvark", 10));
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM sortkeys"), 4);
    assert_eq!(
        sort_by(&mut store, &[(SortKey::Subject, false)]),
        [4, 2, 1, 3]
    );
    store.check("alice").unwrap();
}

/// Previews and sort fields loaded into the cached rows are charged to the budget once, and
/// kept when flags change, whether the rows catch up or are read again.
#[test]
fn what_the_rows_load_of_bodies_is_charged_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let raw: Vec<Bytes> = (0..300)
        .map(|i| message(&format!("m{i}"), 40 + i))
        .collect();
    for m in &raw {
        append(&mut store, "INBOX", m.clone());
    }
    let all: Vec<u32> = (1..=300).collect();
    states(&mut store);
    let rows_only = store.budget.used();
    let fetched = fetch_with(&mut store, all.clone(), PreviewWant::Lazy);
    for (m, raw) in fetched.iter().zip(&raw) {
        assert_eq!(m.preview.as_deref(), Some(preview(raw).as_str()));
    }
    let with_previews = store.budget.used();
    assert!(
        with_previews > rows_only + 300 * 16,
        "{rows_only} {with_previews}"
    );
    assert_eq!(
        fetch_with(&mut store, all.clone(), PreviewWant::Always),
        fetched
    );
    assert_eq!(store.budget.used(), with_previews);
    let order = sort_by(&mut store, &[(SortKey::Subject, false)]);
    let loaded = store.budget.used();
    assert!(loaded > with_previews);
    // A few flags: the rows catch up. All of them: the rows are read again.
    set_flags(&mut store, vec![5, 150], StoreMode::Add, Flag::Flagged);
    states(&mut store);
    assert_eq!(store.budget.used(), loaded);
    set_flags(&mut store, all.clone(), StoreMode::Add, Flag::Seen);
    states(&mut store);
    assert_eq!(store.budget.used(), loaded);
    assert_eq!(sort_by(&mut store, &[(SortKey::Subject, false)]), order);
    assert_eq!(store.budget.used(), loaded);
    let again = fetch_with(&mut store, all, PreviewWant::Lazy);
    assert_eq!(
        again.iter().map(|m| m.preview.clone()).collect::<Vec<_>>(),
        fetched
            .iter()
            .map(|m| m.preview.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(store.budget.used(), loaded);
}

/// Waits for a condition another thread brings about, and fails the test rather than hang
/// when it does not come within 30 seconds.
fn spin_until(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "the queue never reached the expected state"
        );
        std::thread::yield_now();
    }
}
