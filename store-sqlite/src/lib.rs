//! `tern-store-sqlite`: the durable embedded mail store of tern, implementing the core's
//! [`Store`] with one SQLite database per account.
//!
//! `MemStore` is the specification: for every operation this store gives the same reply and
//! announces the same changes (the store battery of `tern-store-kit`, run by
//! `tests/battery.rs`, checks that on random histories, restarts and crashes included). Only
//! UIDVALIDITY values differ, which the protocol allows.
//!
//! # Layout
//!
//! ```text
//! <root>/accounts/<account>/index.sqlite    (+ -wal, -shm)   everything but large bodies
//! <root>/accounts/<account>/blobs/<xx>/<id>                  bodies over 128 KiB
//! ```
//!
//! One database per account: a user's writes never wait on another's lock, and an account is
//! one folder to back up, move or delete. Folder names come from [`folder_name`], which
//! percent-encodes anything but `[a-z0-9_@+-]` and inner dots, so no name can escape
//! `accounts/` or collide with another on a case-insensitive file system. Connections open
//! lazily and at most 128 stay open.
//!
//! # Durability
//!
//! WAL with `synchronous=FULL`: every commit fsyncs the log, so a reply is sent only after the
//! change would survive a power cut. Each operation is one transaction; its changes are
//! announced (through [`Store::take_changes`]) only after it commits. A body file is written
//! to a temporary name, fsync'd, renamed and its folder fsync'd *before* the row that refers
//! to it commits, and unlinked only *after* the row's removal commits; a crash in between
//! leaves an orphan file, collected when the account next opens. So nothing unacknowledged is
//! ever half-present. UIDNEXT, MODSEQ, mailbox ids and UIDVALIDITY are stored counters that
//! only grow, across expunges, restarts and crashes. `PRAGMA user_version` is the schema
//! version: older databases migrate forward on open, newer ones are refused with
//! [`OpenError::NewerSchema`].
//!
//! The background indexer's work (see Search) is the one exception to "every commit
//! fsyncs": its batches commit with `synchronous=NORMAL`, because all they do can be done
//! again. A batch lost to a power cut leaves the database as it was before it (WAL frames
//! replay in order), its bodies still in the durable queue `fts_pending`, which was written
//! in the fsync'd transaction of the APPEND itself; the next durable commit's fsync covers
//! the batch's frames too. The files of bodies a batch reclaimed are unlinked only after that
//! next durable commit, so no row can come back without its file.
//!
//! A full disk or an unusable folder is [`StorageError::Unavailable`] (a file-system quota is
//! `OverQuota`), never a panic, and reads keep working.
//!
//! # What APPEND computes once
//!
//! A body is analysed when it is first stored: [`tern_core::mail::analyze::analyze`]'s
//! `MessageInfo` (ENVELOPE, BODYSTRUCTURE, part offsets) and
//! [`tern_core::mail::text::extract`]'s `SearchText` are kept in a compact binary encoding of
//! the core's (`tern_core::store::stored`), its preview (RFC 8970, [`tern_core::mail::preview`])
//! in the `previews` table, what SORT compares of it (`tern_core::store::sort::SortFields`)
//! in the `sortkeys` table, and the body is queued for the FTS5 index (see Search).
//! FETCH of metadata,
//! SEARCH and SORT never parse a message again; `FetchWant` decides whether the octets, the
//! structure, or neither are read. The cached rows (`rows.rs`) keep the previews and sort
//! fields read once, charged to the store's memory budget.
//!
//! Identical bodies are stored once: a 64-bit hash finds candidates, a byte comparison
//! confirms, and a reference count (kept by triggers) frees the body with its last message.
//! So COPY, MOVE and duplicate APPENDs cost no body bytes. Quota figures ([`Usage`]) still
//! count every copy, as RFC 9208 asks.
//!
//! # Search
//!
//! An FTS5 table with the trigram tokenizer (case-sensitive, since text is already folded)
//! indexes each body's Subject, From, all header lines, and body text. A text criterion becomes
//! an AND of its needle's trigrams in the right column; its result is a superset of the
//! matches. The core's set evaluator (`tern_core::store::evaluate`, which `MemStore` uses too)
//! decides what flags, sizes, dates, UID sets and these supersets decide (outside its superset
//! a text criterion is false, so `NOT TEXT` of an absent word needs no text), and the
//! undecided messages, and only they, have their stored `SearchText` loaded, 64 at a time,
//! and are evaluated again with it, so answers equal `MemStore`'s exactly. Needles shorter
//! than three characters simply do not narrow (a scan). The index is contentless with
//! `detail=column`: positions would only serve phrase queries, which the exact evaluator does
//! anyway.
//!
//! Every step is charged to a work meter: a search beyond [`StoreLimits::search_work`] stops
//! with `StorageError::Limit` (`NO [LIMIT]`), and one whose client left stops at its next step
//! ([`SqliteStore::execute_interruptible`]). The account's lock is held for the first step and
//! for each batch of text loads, never while text is matched. Figures (`benches/hostile.rs`,
//! 20,000 messages): `OR 1:* 1:*` repeated 5,000 times 63 s before, 14 ms now; 2,000 ANDed
//! `1:*` 10 s, 3.4 ms; 4,000 `NOT TEXT zzN` 9.0 s, 0.23 s.
//!
//! ## The index queue and the indexer
//!
//! APPEND does not write the FTS row: it queues the body's id in `fts_pending` (schema
//! version 4) inside its own transaction, and a write no longer reclaims unreferenced bodies
//! either (it used to reclaim up to 32 per write, FTS 'delete' rows included). Both are the
//! work of one background thread per store, `tern-indexer` (`indexer.rs`): a write that
//! queued bodies or left bodies unreferenced hands the account to it through a channel, as
//! does an account that opens with work left (after a restart or a crash). The thread takes an
//! account up 2 s (`indexer::SETTLE`) after its first wake-up, so that messages which die
//! young (moved to Trash and expunged, replaced drafts, the churn of a busy shared mailbox)
//! are never indexed at all and a burst is indexed in a few large batches; then it works
//! through the accounts in turn, one batch per turn: up
//! to [`INDEX_BATCH`] (256) bodies or 4 MiB of text indexed and up to 256 unreferenced
//! bodies reclaimed, in one transaction under the account's lock (taken directly, as SEARCH
//! does, outside the group-commit queue), so client requests run between batches. It ends
//! when the store is dropped. [`SqliteStore::index_now`] does the same work at once, and
//! [`SqliteStore::set_background_indexing`] holds the thread back (tests, maintenance).
//!
//! SEARCH stays exact at every moment: every body still queued joins every superset the
//! index gives for a text criterion, so it is a candidate whose text is loaded and checked,
//! and answers never depend on how far indexing has got (the equivalence property runs half
//! its histories with the indexer held back). Back-pressure: with more than
//! [`FTS_QUEUE_BOUND`] (10,000) bodies queued, APPEND indexes inline again, as it did before
//! the queue, so a text SEARCH never loads more than 10,000 extra texts because of it.
//!
//! Measured with `cargo run --release -p tern-store-sqlite --example concurrent 10 400` (10
//! threads APPEND / STORE / STORE / UID EXPUNGE on one account; 2-core VM shared with other
//! builds, so noisy: runs of the same build varied by 2x), group commit, requests/s, three
//! pairs of runs alternated: before 6,870, 9,016, 8,385; after 11,019, 9,927, 9,556 (median
//! 8,385 -> 9,927, +18 %, ahead in every pair). The indexer's first version committed each
//! small batch with an fsync, right after each write: 7,464, slower than before, hence the
//! unsynced batches, the 50 ms gathering, and leaving bodies that died while queued unindexed.
//!
//! Queries whose text criteria only name From, To, Cc, Bcc or Subject (or the sent date) skip
//! the index: each body also has a headline (those fields and the date, a few hundred bytes,
//! schema version 2), loaded once into the row cache (`rows.rs`), and the evaluator runs on
//! it; a scan of memory beats fetching thousands of candidates' whole texts.
//!
//! # Where bodies live: measured
//!
//! `benches/blobs.rs` stores the same messages durably both ways (SQLite blob in the same
//! transaction, versus a file written, fsync'd and renamed, its folder fsync'd, then the row
//! committed) and reads them back at random. On the development machine (2 cores, ext4 on a
//! virtual disk), messages per second:
//!
//! | size | batch | blob append | file append | blob read | file read |
//! |---:|---:|---:|---:|---:|---:|
//! | 2 KB | 1 | 3,658 | 1,522 | 547,399 | 124,433 |
//! | 2 KB | 10 | 35,359 | 3,265 | 565,684 | 122,908 |
//! | 20 KB | 1 | 4,094 | 1,414 | 112,956 | 88,096 |
//! | 20 KB | 10 | 12,448 | 3,065 | 112,047 | 90,883 |
//! | 64 KB | 1 | 2,788 | 1,371 | 40,981 | 55,775 |
//! | 128 KB | 1 | 1,622 | 562 | 21,470 | 38,098 |
//! | 200 KB | 1 | 1,362 | 1,039 | 17,258 | 33,382 |
//! | 200 KB | 10 | 1,610 | 2,196 | 14,209 | 31,549 |
//! | 2 MB | 1 | 146 | 174 | 573 | 3,979 |
//! | 2 MB | 10 | 149 | 545 | 1,338 | 4,116 |
//!
//! Inline blobs win appends by 2–10× up to ~128 KB (one fsync per commit instead of three or
//! more), files win above it (no double write through the WAL, and reads 3–7× faster for
//! megabyte bodies). Most mail is well under 128 KB, so bodies up to
//! [`DEFAULT_INLINE_LIMIT`] (128 KiB) are inline and larger ones are files.
//!
//! # Figures
//!
//! `cargo bench -p tern-store-sqlite --bench store` (`TERN_BENCH_MESSAGES` overrides N =
//! 100,000) builds one INBOX of generated mail (16.7 KB average: plain, quoted-printable,
//! base64 and HTML text, alternatives, forwarded messages, 4% with 40–400 KB attachments),
//! the first 5,000 messages one APPEND each, the rest as MULTIAPPENDs of 100, every commit
//! durable, then runs each operation once, in this order, so the first read of the mailbox
//! (SELECT) includes filling the row cache and the first header search loads the headlines.
//! Release build on a 2-core VM, 2026-11-26; the whole run took 1 min 31 s.
//!
//! | operation, 100,000 messages | time | note |
//! |---|---:|---|
//! | APPEND, one message per command | 1.1 ms each | 893 msg/s, 16.8 MB/s: one fsync'd commit each |
//! | APPEND, 100 per command (MULTIAPPEND) | 0.5 ms each | 1,969 msg/s, 32.8 MB/s |
//! | SELECT | 69 ms | reads every row into the row cache; later SELECTs copy the cached UID list |
//! | FETCH 1:* (UID FLAGS) | 17.6 ms | from the row cache |
//! | FETCH ENVELOPE of the last 1,000 | 4.0 ms | stored structure, no parsing |
//! | SEARCH TEXT rare word (75 hits) | 11.3 ms | FTS narrows to the hits |
//! | SEARCH FROM address (13,943 hits) | 123 ms | loads 100,000 headlines once; about 12 ms after that |
//! | SEARCH BODY two words (12,869 hits) | 733 ms | trigrams alone do not narrow: text of ~90% loaded |
//! | SEARCH TEXT common word (93,341 hits) | 837 ms | every text loaded and checked |
//! | SEARCH TEXT of 2 characters (scan) | 707 ms | below the trigram length: full scan |
//! | SEARCH UNSEEN (no text) | 3.3 ms | rows only |
//! | STORE +FLAGS on 10,000 | 31 ms | one transaction |
//! | EXPUNGE 10,000 | 63 ms | bodies are reclaimed later |
//! | reclaim 9,680 expunged bodies (maintenance) | 2.6 s | measured when writes reclaimed 32 each; now the indexer's work |
//! | reopen account | 14 ms | includes orphan-file scan |
//!
//! Disk after expunging 10,000: 1,971 MB for 90,000 messages, 21.9 KB per message against
//! 16.6 KB raw (1.32x): 967 MB database, 1,004 MB body files. Per message (from
//! `examples/space.rs`, 5,000 messages): inline bodies 3.8 KB (LZ4), stored search text
//! 2.8 KB (LZ4), FTS index 2.3 KB, structure 0.5 KB, headline about 0.2 KB, message rows and
//! indexes under 0.1 KB; the attachments in files are stored raw. Single-message APPEND is
//! bound by the fsync of each commit, which `synchronous=FULL` makes the price of durability.
//!
//! Since schema version 5, inline bodies are packed with zstd (level 1) instead: 2.9 KB per
//! message instead of 4.0 KB on the server's disk run (`loadgen` realistic spool, 5,000
//! messages appended over IMAP, `dbstat` page sizes: values plus the pages' unused space), and
//! the free pages the indexer leaves behind go back to the file system when its queue empties
//! (0.4 KB per message were left free): 20,247 bytes per message in all against 21,732 (the
//! attachments in files, 11.3 KB per message, unchanged). Packing a 5.9 KB body takes 25 µs
//! and unpacking it 9 µs (LZ4: 15 and 3 µs). The search texts are zstd too since: 1.8 KB per
//! message instead of 2.9 KB, 19,125 bytes per message in all on the same run (Dovecot's
//! Maildir with its index: 19,601 on the 100,000-message run of `scripts/bench-vs-dovecot.sh`),
//! at the price of a SEARCH that reads every text being 30 to 45% slower than with LZ4 (the
//! index spares most searches that; `TEXT_PACKING` in `account.rs`,
//! `tern_core::store::stored::Packing`).
//!
//! The APPEND figures above predate the index queue (APPEND then wrote the FTS rows itself).
//! FTS rows are added together just before a transaction commits (see `Pending::fts` in
//! `account.rs`; the indexer's batches and APPEND over the queue bound): FTS5 writes its
//! pending terms out at every statement savepoint, and each message INSERT opens one, so
//! indexing message by message wrote a segment per message and spent most of a MULTIAPPEND
//! merging them.
//!
//! # Users
//!
//! Authentication is not the store's job: logins are directory requests
//! (`tern_core::directory`), which the runtime answers from its own users and which never
//! reach a store.
//!
//! # Concurrency
//!
//! The store is `Sync`: [`SqliteStore::execute_shared`] locks only the account a request
//! names, so requests of different users run in parallel and one user's long SEARCH holds up
//! nobody else (and lets its own account's other sessions in between its batches); the
//! background indexer likewise holds an account for one batch at a time (see Search), and it
//! is the store's only thread of its own. [`SqliteStore::try_execute_shared`] runs a request only if that needs no
//! waiting (the runtime uses it for short reads on its executor threads). The POP3 maildrop
//! lock is an in-process set, deliberately not persisted: a lock must die with the process
//! that held it. One process per store folder is enforced by a
//! lock on [`LOCK_FILE`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tern_core::store::contract::Sinks;
use tern_core::store::Changed;
use tern_core::{StorageError, StorageOp, StorageReply, StorageResult, Store};

mod account;
mod analysed;
mod blobs;
mod error;
mod group;
mod indexer;
mod rows;
mod schema;
mod search;

use account::Account;
pub use account::{BLOB_FOLDER, DATABASE_FILE};
pub use account::{FTS_QUEUE_BOUND, INDEX_BATCH};
pub use error::OpenError;
use group::Handle;
pub use group::{BatchStats, MAX_BATCH};
pub use schema::SCHEMA_VERSION;
use tern_core::store::evaluate::{evaluate, Meter};
use tern_core::store::query::{Candidate, Query};
use tern_core::store::sort::{SortCriterion, Sortable, NO_FIELDS};
use tern_core::store::{AccountTemplate, MailboxId, StoreLimits, Uid};

/// Bodies up to this size live in the database, larger ones in files (see the crate docs for
/// the measurement behind it).
pub const DEFAULT_INLINE_LIMIT: usize = 128 * 1024;

/// Account databases kept open at once; beyond it the least recently used is closed, so the
/// number of file descriptors stays bounded however many accounts exist.
pub(crate) const MAX_OPEN_ACCOUNTS: usize = 128;

/// A file in the root that an open store holds an exclusive lock on. Two processes on one
/// store would each collect the other's not-yet-committed body files as orphans and keep
/// separate POP3 maildrop locks, so the second is refused ([`OpenError::InUse`]).
pub const LOCK_FILE: &str = "store.lock";

/// The folder under the root that holds one folder per account.
pub const ACCOUNTS_FOLDER: &str = "accounts";

/// Longest folder name produced for an account (file systems allow 255 octets).
const MAX_FOLDER_NAME: usize = 200;

/// Messages and octets of an account, ready for QUOTA (RFC 9208 STORAGE and MESSAGE): a body
/// shared by COPY counts once per copy, as quota semantics require, though it is stored once.
pub use tern_core::store::AccountUsage as Usage;

/// The durable store: `<root>/accounts/<account>/index.sqlite` plus `blobs/` for large bodies.
///
/// `Sync`: [`SqliteStore::execute_shared`] takes `&self` and locks only the account it works
/// on, so one user's long SEARCH or fsync'd APPEND never holds up another user. The core's
/// [`Store`] trait (`&mut self`) is served by the same code.
pub struct SqliteStore {
    /// First, so that it is dropped first: its thread ends before anything it uses goes.
    indexer: indexer::Indexer,
    root: PathBuf,
    /// Held (locked) for the store's lifetime: see [`LOCK_FILE`].
    _lock: std::fs::File,
    open: Arc<Mutex<OpenAccounts>>,
    now: i64,
    inline_limit: usize,
    changes: Vec<Changed>,
    /// Accounts whose POP3 maildrop is locked. Process-local on purpose: a lock must not
    /// outlive the process that took it (a crash would otherwise lock the maildrop for good).
    locked: Mutex<HashSet<String>>,
    /// Message rows the accounts keep in memory, store-wide (see `rows.rs`).
    budget: rows::Budget,
    /// Requests one group commit may take (see `group.rs`).
    max_batch: usize,
    /// Who hears of committed changes (`MailStore::subscribe`).
    sinks: Arc<Sinks>,
    /// Mailboxes per account, SEARCH work.
    limits: StoreLimits,
    /// What a new account holds.
    template: AccountTemplate,
}

/// The open account databases, each behind its own lock, with a use counter for closing the
/// least recently used.
#[derive(Default)]
pub(crate) struct OpenAccounts {
    pub(crate) map: HashMap<String, (Arc<Handle>, u64)>,
    tick: u64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("root", &self.root)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store under `root`. Accounts open lazily on first use.
    pub fn open(root: &Path) -> Result<SqliteStore, OpenError> {
        let accounts = root.join(ACCOUNTS_FOLDER);
        std::fs::create_dir_all(&accounts).map_err(|source| OpenError::Folder {
            path: accounts.clone(),
            source,
        })?;
        let lock_path = root.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| OpenError::Folder {
                path: lock_path.clone(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::InUse { path: lock_path })
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(OpenError::Folder {
                    path: lock_path,
                    source,
                })
            }
        }
        let open = Arc::new(Mutex::new(OpenAccounts::default()));
        Ok(SqliteStore {
            indexer: indexer::Indexer::start(open.clone()),
            _lock: lock,
            root: root.to_path_buf(),
            open,
            // The same epoch as MemStore, so the two agree until someone sets the clock.
            now: 1_767_225_600,
            inline_limit: DEFAULT_INLINE_LIMIT,
            changes: Vec::new(),
            locked: Mutex::new(HashSet::new()),
            budget: rows::Budget::new(rows::DEFAULT_BUDGET_BYTES),
            max_batch: MAX_BATCH,
            sinks: Arc::new(Sinks::default()),
            limits: StoreLimits::default(),
            template: AccountTemplate::default(),
        })
    }

    /// Sets the store's clock (Unix seconds) for [`Store::execute`]: the default internal
    /// date, OLDER/YOUNGER and new UIDVALIDITYs. Tests freeze it; the runtime passes the time
    /// with each [`SqliteStore::execute_shared`] instead.
    pub fn set_now(&mut self, unix: i64) {
        self.now = unix;
    }

    /// The store's clock.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Changes the size above which bodies are kept in files rather than in the database, for
    /// the accounts opened from now on (call it before any request).
    pub fn set_inline_limit(&mut self, bytes: usize) {
        self.inline_limit = bytes;
    }

    /// Sets how many bytes of message rows (and loaded headlines) all accounts together may
    /// keep in memory (default 256 MiB; see `rows.rs`). Takes effect for accounts opened from
    /// now on.
    pub fn set_row_cache_bytes(&mut self, bytes: usize) {
        self.budget = rows::Budget::new(bytes);
    }

    /// Sets how many queued requests one group commit may take (default [`MAX_BATCH`]; 1
    /// commits every request alone, for comparisons). Takes effect for accounts opened from
    /// now on.
    pub fn set_max_batch(&mut self, requests: usize) {
        self.max_batch = requests;
    }

    /// Sets what a new account holds (default [`AccountTemplate::default`], the session's
    /// rules). Accounts that exist already keep what they have.
    pub fn set_account_template(&mut self, template: AccountTemplate) {
        self.template = template;
    }

    /// Sets the bounds on mailboxes per account and on the work of one SEARCH (the mailbox
    /// bound for the accounts opened from now on: call it before any request).
    pub fn set_limits(&mut self, limits: StoreLimits) {
        self.limits = limits;
    }

    /// Opens an account now (creating or migrating it), to surface problems at start-up
    /// rather than at a client's first command.
    pub fn open_account(&self, account: &str) -> Result<(), OpenError> {
        self.account(account).map(|_| ())
    }

    /// Messages and octets stored for an account.
    pub fn usage(&self, account: &str) -> Result<Usage, StorageError> {
        let account = self.account(account)?;
        let usage = lock(&account.account).usage()?;
        Ok(usage)
    }

    /// Reclaims every body no message refers to any more (normally the background indexer's
    /// work, a batch at a time) and returns free pages to the file system; returns how many
    /// bodies went.
    pub fn reclaim(&self, account: &str) -> Result<usize, StorageError> {
        let account = self.account(account)?;
        let reclaimed = lock(&account.account).reclaim_all()?;
        Ok(reclaimed)
    }

    /// Holds the background indexer back (`false`: bodies stay queued, unreferenced bodies
    /// stay, until [`SqliteStore::index_now`]) or lets it work again (`true`, the default).
    /// For tests and maintenance windows; SEARCH is exact either way.
    pub fn set_background_indexing(&self, on: bool) {
        self.indexer.set_running(on);
        if on {
            let names: Vec<String> = lock(&self.open).map.keys().cloned().collect();
            for name in names {
                self.indexer.wake(&name);
            }
        }
    }

    /// Does an account's background work now, on this thread: indexes every queued body and
    /// reclaims every unreferenced one, a batch per transaction.
    pub fn index_now(&self, account: &str) -> Result<(), StorageError> {
        let account = self.account(account)?;
        while lock(&account.account).index_batch(&|| false)? {}
        // A durable commit, so that reclaimed bodies' files go now too.
        lock(&account.account).reclaim_all()?;
        Ok(())
    }

    /// Bodies of an account waiting to be indexed, and unreferenced bodies waiting to be
    /// reclaimed.
    pub fn index_backlog(&self, account: &str) -> Result<(usize, usize), StorageError> {
        let account = self.account(account)?;
        let backlog = lock(&account.account).backlog()?;
        Ok(backlog)
    }

    /// Group commits run so far for an account (batches of more than one request).
    pub fn batch_stats(&self, account: &str) -> Result<BatchStats, StorageError> {
        Ok(self.account(account)?.stats())
    }

    /// Runs SQLite's and FTS5's integrity checks on an account.
    pub fn check(&self, account: &str) -> Result<(), StorageError> {
        let account = self.account(account)?;
        let checked = lock(&account.account).check();
        Ok(checked?)
    }

    /// The folder of an account (whether or not it exists yet).
    pub fn account_dir(&self, account: &str) -> Result<PathBuf, OpenError> {
        Ok(self
            .root
            .join(ACCOUNTS_FOLDER)
            .join(folder_name(account).ok_or(OpenError::AccountName)?))
    }

    /// Closes every open account database (they reopen on next use; one in use closes when
    /// its request ends).
    pub fn close_all(&self) {
        lock(&self.open).map.clear();
    }

    /// Runs one request at time `now` (Unix seconds), locking only the account it names;
    /// returns the reply and the mailboxes it changed, to announce once the reply is out.
    pub fn execute_shared(&self, op: StorageOp, now: i64) -> (StorageResult, Vec<Changed>) {
        self.execute_interruptible(op, now, &|| false)
    }

    /// As [`SqliteStore::execute_shared`], for a driver that can tell when nobody waits for
    /// the reply any more (its client left): a SEARCH asks `abandoned` as it goes and stops
    /// when it says so.
    pub fn execute_interruptible(
        &self,
        op: StorageOp,
        now: i64,
        abandoned: &dyn Fn() -> bool,
    ) -> (StorageResult, Vec<Changed>) {
        if let StorageOp::UnlockMaildrop {
            account,
            seen: Some((mailbox, uids)),
        } = op
        {
            // The flags first, then the lock, whatever became of them: a lost \Seen costs an
            // unread mark, a kept lock the whole maildrop.
            let (flagged, changes) = self.execute_shared(
                StorageOp::SetFlags {
                    account: account.clone(),
                    mailbox,
                    uids,
                    mode: tern_core::mail::flags::StoreMode::Add,
                    flags: vec![tern_core::mail::flags::Flag::Seen],
                    unchanged_since: None,
                },
                now,
            );
            lock(&self.locked).remove(&account.to_lowercase());
            return (flagged.map(|_| StorageReply::Done), changes);
        }
        match self.without_account(op) {
            Ok(reply) => (reply, Vec::new()),
            Err(op) => match op.account().map(str::to_string) {
                None => (
                    Err(StorageError::Internal("operation without account".into())),
                    Vec::new(),
                ),
                Some(name) => match (self.account_at(&name, now), op) {
                    // SEARCH takes the account's lock in steps (see `search`), outside the
                    // group-commit queue: it writes nothing.
                    (
                        Ok(handle),
                        StorageOp::Search {
                            mailbox,
                            uids,
                            query,
                            ..
                        },
                    ) => {
                        let mut meter = Meter::new(self.limits.search_work, abandoned);
                        let found =
                            search(&handle.account, mailbox, &uids, &query, now, &mut meter);
                        (found.map_err(StorageError::from), Vec::new())
                    }
                    (
                        Ok(handle),
                        StorageOp::Sort {
                            mailbox,
                            uids,
                            query,
                            criteria,
                            ..
                        },
                    ) => {
                        let mut meter = Meter::new(self.limits.search_work, abandoned);
                        let sorted = sort(
                            &handle.account,
                            (mailbox, &uids),
                            &query,
                            &criteria,
                            now,
                            &mut meter,
                        );
                        (sorted.map_err(StorageError::from), Vec::new())
                    }
                    (
                        Ok(handle),
                        StorageOp::Thread {
                            mailbox,
                            uids,
                            query,
                            algorithm,
                            ..
                        },
                    ) => {
                        let mut meter = Meter::new(self.limits.search_work, abandoned);
                        let threads = thread(
                            &handle.account,
                            (mailbox, &uids),
                            &query,
                            algorithm,
                            now,
                            &mut meter,
                        );
                        (threads.map_err(StorageError::from), Vec::new())
                    }
                    // A read waits only for the batch running now, not for the next one's
                    // fsync as a member of it (reads batched with writes made every FETCH
                    // under concurrent writers wait for two commits).
                    (Ok(handle), op) if group::reads_only(&op) => handle.read(op, now),
                    (Ok(handle), op) => handle.submit(op, now),
                    (Err(e), _) => (Err(e.into()), Vec::new()),
                },
            },
        }
    }

    /// As [`SqliteStore::execute_shared`], but only for quick work that can start at once:
    /// the account is open, no other request holds it, and the request is a short read that
    /// needs no disk write and no scan (a POP3 RETR, a NOOP's changes, a SELECT or a
    /// `FETCH 1:* (FLAGS)` batch of a mailbox whose rows are cached). Otherwise the request
    /// comes back untouched, for a thread that may wait.
    pub fn try_execute_shared(
        &self,
        op: StorageOp,
        now: i64,
    ) -> Result<(StorageResult, Vec<Changed>), StorageOp> {
        let op = match self.without_account(op) {
            Ok(reply) => return Ok((reply, Vec::new())),
            Err(op) => op,
        };
        let Some(name) = op.account().map(str::to_string) else {
            return Err(op);
        };
        let account = match self.open.try_lock() {
            Ok(open) => match open.map.get(&name) {
                Some((account, _)) => account.clone(),
                None => return Err(op),
            },
            Err(_) => return Err(op),
        };
        let Ok(mut locked) = account.account.try_lock() else {
            return Err(op);
        };
        if !locked.is_quick(&op) {
            return Err(op);
        }
        Ok(account.run(&mut locked, op, now))
    }

    /// Answers the requests that need no account database, or hands the request back.
    fn without_account(&self, op: StorageOp) -> Result<StorageResult, StorageOp> {
        Ok(match op {
            StorageOp::LockMaildrop { account } => {
                if lock(&self.locked).insert(account.to_lowercase()) {
                    Ok(StorageReply::Done)
                } else {
                    Err(StorageError::InUse)
                }
            }
            StorageOp::UnlockMaildrop {
                account,
                seen: None,
            } => {
                lock(&self.locked).remove(&account.to_lowercase());
                Ok(StorageReply::Done)
            }
            // An account without a folder holds nothing, and is not made by being asked.
            StorageOp::Usage { account } => match self.account_dir(&account) {
                Ok(dir) if !dir.exists() && !lock(&self.open).map.contains_key(&account) => {
                    Ok(StorageReply::Usage(Usage::default()))
                }
                _ => return Err(StorageOp::Usage { account }),
            },
            op => return Err(op),
        })
    }

    /// How requests run against the account `name`: the one dispatch every path of its handle
    /// uses (quick reads, waiting callers, its worker). Made when the account opens, so a
    /// [`SqliteStore::set_inline_limit`] applies to accounts opened after it.
    fn runner(&self, name: &str) -> group::Runner {
        let (name, inline_limit, limits, wake) = (
            name.to_string(),
            self.inline_limit,
            self.limits,
            self.indexer.waker(),
        );
        Arc::new(move |account, op, now| {
            let done = run(account, &name, op, now, inline_limit, &limits);
            if account.take_background_work() {
                wake.wake(&name);
            }
            done
        })
    }

    /// The account's handle, opening it (under the map's lock, so never twice at once: a
    /// second handle's orphan collection could take the first one's uncommitted files).
    /// Maintenance calls that have no request's time use the store's clock ([`SqliteStore::set_now`]).
    fn account(&self, name: &str) -> Result<Arc<Handle>, OpenError> {
        self.account_at(name, self.now)
    }

    /// [`SqliteStore::account`] for a request made at `now`: an account created by it gets
    /// its mailboxes' UIDVALIDITY from that time, so an account removed and created again
    /// never shows clients the identifiers of the old one (with a fixed clock every INBOX had
    /// the same UIDVALIDITY).
    fn account_at(&self, name: &str, now: i64) -> Result<Arc<Handle>, OpenError> {
        let mut open = lock(&self.open);
        open.tick += 1;
        let tick = open.tick;
        if let Some((account, used)) = open.map.get_mut(name) {
            *used = tick;
            return Ok(account.clone());
        }
        let dir = self.account_dir(name)?;
        let account = Arc::new(Handle::new(
            Account::open(&dir, now, self.budget.clone(), &self.template)?,
            self.max_batch,
            self.runner(name),
        ));
        if open.map.len() >= MAX_OPEN_ACCOUNTS {
            // Only an account no request holds (its handle is dropped with the map entry)
            // and no session has a mailbox selected in: reopening forgets the expunged
            // messages kept for such sessions (`retained`) and the pins that say who still
            // needs them. When every open account has a selection, the map grows past the
            // bound instead; selections are bounded by connections.
            let oldest = open
                .map
                .iter()
                .filter(|(_, (a, _))| {
                    Arc::strong_count(a) == 1
                        && a.account.try_lock().is_ok_and(|mut a| !a.has_views())
                })
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                open.map.remove(&k);
            }
        }
        open.map.insert(name.to_string(), (account.clone(), tick));
        // Work left from before a restart (or a crash) is resumed.
        if lock(&account.account).take_background_work() {
            self.indexer.wake(name);
        }
        Ok(account)
    }

    /// Runs `f` on an open account's database connection (tests reach below the interface).
    #[cfg(test)]
    fn with_connection<T>(&self, name: &str, f: impl FnOnce(&rusqlite::Connection) -> T) -> T {
        let account = self.account(name).expect("account opens");
        let account = lock(&account.account);
        f(account.connection())
    }
}

/// Locks a mutex; a panic elsewhere while it was held (a transaction then rolled back on
/// drop) does not make the data unusable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Messages whose text a SEARCH loads under one hold of the account's lock.
const TEXT_BATCH: usize = 64;

/// Messages whose sort fields a SORT takes under one hold of the account's lock: each is a
/// copy from the cached rows, or one lookup in `sortkeys` the first time (about a millisecond
/// for a batch); batches of [`TEXT_BATCH`] made a 20,000-message SORT take the lock and open a
/// transaction 300 times.
const SORT_BATCH: usize = 2048;

/// SEARCH in steps, so that the account's lock is held for the first step (everything but
/// text, bounded by the meter) and then for one batch of text loads at a time, never for the
/// whole evaluation: the account's other sessions get their turn between batches. Text is
/// matched outside the lock. A message expunged between batches is simply not found.
fn search(
    account: &Mutex<Account>,
    mailbox: MailboxId,
    uids: &[Uid],
    query: &Query,
    now: i64,
    meter: &mut Meter<'_>,
) -> Result<StorageReply, error::Fail> {
    let job = lock(account).search_start(mailbox, uids, query, now, meter)?;
    let mut found = job.found;
    let mut no_index = |_: &Query, _: &mut Meter<'_>| Ok::<_, error::Fail>(None);
    for batch in job.undecided.chunks(TEXT_BATCH) {
        let texts = lock(account).search_texts(job.text, batch)?;
        let outcome = evaluate(query, &texts, true, now, meter, &mut no_index)?;
        found.extend(
            outcome
                .yes
                .iter()
                .filter_map(|i| texts.get(i).map(|t| t.uid())),
        );
    }
    found.sort_unstable();
    Ok(StorageReply::Found(found))
}

/// SORT: the search, then the sort fields of what it found, a batch at a time under the
/// account's lock (each message one unit of work, as SEARCH counts).
fn sort(
    account: &Mutex<Account>,
    (mailbox, uids): (MailboxId, &[Uid]),
    query: &Query,
    criteria: &[SortCriterion],
    now: i64,
    meter: &mut Meter<'_>,
) -> Result<StorageReply, error::Fail> {
    let StorageReply::Found(found) = search(account, mailbox, uids, query, now, meter)? else {
        return Ok(StorageReply::Found(Vec::new()));
    };
    // ARRIVAL and SIZE are in the rows: their sorts read nothing of the bodies.
    let fields = criteria.iter().any(|c| c.key.needs_fields());
    let mut inputs = Vec::with_capacity(found.len());
    for batch in found.chunks(SORT_BATCH) {
        meter.charge(batch.len() as u64)?;
        inputs.extend(lock(account).sort_inputs(mailbox, batch, fields)?);
    }
    let items = inputs
        .iter()
        .map(|(uid, arrival, size, fields)| Sortable {
            uid: *uid,
            arrival: *arrival,
            size: *size,
            fields: fields.as_deref().unwrap_or(&NO_FIELDS),
        })
        .collect();
    Ok(StorageReply::Found(tern_core::store::sort::sort(
        items, criteria,
    )))
}

/// THREAD: the search, then the threading fields of what it found, a batch at a time under
/// the account's lock (each message one unit of work, as SORT counts).
fn thread(
    account: &Mutex<Account>,
    (mailbox, uids): (MailboxId, &[Uid]),
    query: &Query,
    algorithm: tern_core::store::threading::Algorithm,
    now: i64,
    meter: &mut Meter<'_>,
) -> Result<StorageReply, error::Fail> {
    let StorageReply::Found(found) = search(account, mailbox, uids, query, now, meter)? else {
        return Ok(StorageReply::Threads(Vec::new()));
    };
    let mut inputs = Vec::with_capacity(found.len());
    for batch in found.chunks(TEXT_BATCH) {
        meter.charge(batch.len() as u64)?;
        inputs.extend(lock(account).thread_inputs(mailbox, batch)?);
    }
    let items = inputs
        .iter()
        .map(
            |(uid, arrival, fields)| tern_core::store::threading::Threadable {
                uid: *uid,
                arrival: *arrival,
                fields,
            },
        )
        .collect();
    Ok(StorageReply::Threads(tern_core::store::threading::thread(
        items, algorithm,
    )))
}

/// One request on one account.
fn run(
    a: &mut Account,
    name: &str,
    op: StorageOp,
    now: i64,
    inline_limit: usize,
    limits: &StoreLimits,
) -> (StorageResult, Vec<Changed>) {
    let outcome = match op {
        // Both parts run on this account's database: one naming another account is refused.
        StorageOp::Then { first, then } if first.account() != then.account() => {
            return (
                Err(StorageError::Internal(
                    "a joined request names two accounts".into(),
                )),
                Vec::new(),
            )
        }
        StorageOp::Then { first, then } => {
            let (first, mut changed) = run(a, name, *first, now, inline_limit, limits);
            let (then, more) = run(a, name, *then, now, inline_limit, limits);
            changed.extend(more);
            let reply = StorageReply::Then {
                first: Box::new(first),
                then: Box::new(then),
            };
            return (Ok(reply), changed);
        }
        StorageOp::ListMailboxes { .. } => a.list(),
        StorageOp::CreateMailbox {
            name, special_use, ..
        } => a.create(&name, special_use, now, limits.max_mailboxes),
        StorageOp::DeleteMailbox { name, .. } => a.delete(&name),
        StorageOp::RenameMailbox { from, to, .. } => a.rename(&from, &to, false, now),
        StorageOp::MoveAllMessages { from, to, .. } => a.rename(&from, &to, true, now),
        StorageOp::Subscribe {
            name, subscribed, ..
        } => a.subscribe(&name, subscribed),
        StorageOp::Status { name, .. } => a.status(&name),
        StorageOp::GetMetadata {
            mailbox,
            names,
            depth,
            ..
        } => a.get_metadata(mailbox.as_deref(), &names, depth),
        StorageOp::SetMetadata {
            mailbox, entries, ..
        } => a.set_metadata(mailbox.as_deref(), &entries, limits.metadata_entries),
        // From the totals every mailbox row keeps, in the transaction that changes them.
        StorageOp::Usage { .. } => a
            .usage()
            .map(|usage| (StorageReply::Usage(usage), Vec::new())),
        // Decided inside the write's own transaction (`Account::write`).
        StorageOp::WithinQuota { quota, op } => {
            a.hold_to(Some(quota));
            let done = run(a, name, *op, now, inline_limit, limits);
            a.hold_to(None);
            return done;
        }
        StorageOp::Open {
            name, read_only, ..
        } => a.open_mailbox(&name, read_only),
        StorageOp::Changes {
            mailbox,
            uid_next,
            since,
            claim_recent,
            ..
        } => a.changes(mailbox, uid_next, since, claim_recent),
        StorageOp::Append { name, messages, .. } => a.append(&name, messages, now, inline_limit),
        StorageOp::Fetch {
            mailbox,
            uids,
            want,
            mark_seen,
            ..
        } => a.fetch(mailbox, &uids, want, mark_seen),
        StorageOp::SetFlags {
            mailbox,
            uids,
            mode,
            flags,
            unchanged_since,
            ..
        } => a.set_flags(mailbox, &uids, mode, &flags, unchanged_since),
        StorageOp::Expunge { mailbox, uids, .. } => a.expunge(mailbox, uids.as_deref()),
        StorageOp::Remove {
            mailbox,
            uids,
            seen,
            ..
        } => a.remove(mailbox, &uids, &seen),
        StorageOp::CopyMove {
            mailbox,
            uids,
            target,
            remove,
            ..
        } => a.copy_move(mailbox, &uids, &target, remove, now),
        StorageOp::Replace {
            mailbox,
            uid,
            name,
            message,
            ..
        } => a.replace((mailbox, uid), &name, *message, now, inline_limit),
        StorageOp::ImportMessages {
            name: target,
            uid_validity,
            uid_next,
            messages,
            ..
        } => a.import(
            &target,
            (uid_validity, uid_next),
            messages,
            now,
            inline_limit,
            limits.max_mailboxes,
        ),
        _ => {
            return (
                Err(StorageError::Internal("unsupported operation".into())),
                Vec::new(),
            )
        }
    };
    match outcome {
        // Announced only after the commit: a notified session must find the change.
        Ok((reply, changed)) => (
            Ok(reply),
            changed
                .into_iter()
                .map(|mailbox| Changed {
                    account: name.to_string(),
                    mailbox,
                    modseq: a.modseq_for_notice(mailbox),
                })
                .collect(),
        ),
        Err(e) => (Err(e.into()), Vec::new()),
    }
}

/// The contract the server drives: changes are published to subscribers once committed.
impl tern_core::store::MailStore for SqliteStore {
    fn execute(&self, op: StorageOp, now: i64, abandoned: &dyn Fn() -> bool) -> StorageResult {
        let (reply, changes) = self.execute_interruptible(op, now, abandoned);
        self.sinks.publish(&changes);
        reply
    }

    fn try_execute_quick(&self, op: StorageOp, now: i64) -> Result<StorageResult, StorageOp> {
        let (reply, changes) = self.try_execute_shared(op, now)?;
        self.sinks.publish(&changes);
        Ok(reply)
    }

    /// Every request of an open account but SEARCH (which takes the account's lock in steps
    /// and stops when abandoned) and the maildrop lease goes to the account's queue; a worker
    /// thread per busy account answers it (`group.rs`).
    // The request comes back as it went in, on the hot path: boxing it would allocate per
    // request for nothing.
    #[allow(clippy::result_large_err)]
    fn try_submit(
        &self,
        op: StorageOp,
        now: i64,
        reply: tern_core::store::ReplySink,
    ) -> Result<(), (StorageOp, tern_core::store::ReplySink)> {
        if matches!(
            op,
            StorageOp::Search { .. }
                | StorageOp::Sort { .. }
                | StorageOp::Thread { .. }
                | StorageOp::LockMaildrop { .. }
                | StorageOp::UnlockMaildrop { .. }
        ) {
            return Err((op, reply));
        }
        let Some(name) = op.account().map(str::to_string) else {
            return Err((op, reply));
        };
        // Opening an account reads the disk: that is for a thread that may wait.
        let handle = match self.open.try_lock() {
            Ok(open) => open.map.get(&name).map(|(h, _)| h.clone()),
            Err(_) => None,
        };
        let Some(handle) = handle else {
            return Err((op, reply));
        };
        let sinks = self.sinks.clone();
        let deliver = Box::new(move |(result, changes): group::Done| {
            sinks.publish(&changes);
            reply(result);
        });
        handle.enqueue(op, now, deliver);
        Ok(())
    }

    fn subscribe(&self, sink: Arc<dyn tern_core::store::ChangeSink>) {
        self.sinks.add(sink);
    }

    fn close(&self) {
        self.close_all();
    }
}

impl Store for SqliteStore {
    fn execute(&mut self, op: StorageOp) -> StorageResult {
        let (reply, changes) = self.execute_shared(op, self.now);
        self.changes.extend(changes);
        reply
    }

    fn take_changes(&mut self) -> Vec<Changed> {
        let mut seen = HashSet::new();
        let mut out = std::mem::take(&mut self.changes);
        out.retain(|c| seen.insert(c.clone()));
        out
    }
}

/// The folder name of an account: readable for ordinary names, and for any other name an
/// unambiguous percent-encoding. The runtime already refuses names with `/`, white space or
/// control characters, but the store does not rely on it: only `[a-z0-9_@+-]` and non-leading
/// dots pass through, so no name can climb out of `accounts/`, be "." or "..", or collide
/// with another on a case-insensitive file system (upper-case letters are encoded).
pub fn folder_name(account: &str) -> Option<String> {
    if account.is_empty() {
        // '%' alone is no valid encoding of anything else.
        return Some("%".to_string());
    }
    let mut out = String::with_capacity(account.len());
    for (i, b) in account.bytes().enumerate() {
        let plain = b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b'_' | b'@' | b'+' | b'-')
            || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    (out.len() <= MAX_FOLDER_NAME).then_some(out)
}

#[cfg(test)]
mod tests;
