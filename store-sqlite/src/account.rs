//! One account: its database connection, its large-body folder, and every operation, each
//! in one transaction that either commits whole or leaves nothing behind.
//!
//! The operations follow `MemStore` step for step (it is the specification), including the
//! order in which MODSEQs and UIDs are assigned and which changes are announced.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tern_core::mail::analyze::{analyze_all, Analysis};
use tern_core::mail::date::{from_unix, to_unix, Date, DateTime};
use tern_core::mail::flags::{Flag, Flags, StoreMode, SystemFlag};
use tern_core::mail::mailbox_name::DELIMITER;
use tern_core::mail::preview::preview;
use tern_core::mail::text::SearchText;
use tern_core::mail::thread::ThreadKeys;
use tern_core::store::evaluate::{evaluate, Bits, Halt, Meter};
use tern_core::store::metadata::{self, Depth};
use tern_core::store::query::{Candidate, Query};
use tern_core::store::sort::SortFields;
use tern_core::store::threading::{self, ThreadFields};
use tern_core::store::{import, AccountTemplate, LimitKind};
use tern_core::store::{
    AccountUsage, Body, ChangeSet, EmailId, FetchWant, FetchedMessage, MailboxEntry, MailboxId,
    MailboxList, MailboxStatus, MessageState, ModSeq, NewMessage, ObjectKey, Pins, PreviewWant,
    Quota, Snapshot, SpecialUse, StorageError, StorageOp, StorageReply, ThreadId, Uid,
    UNKNOWN_MODSEQ,
};

use crate::analysed::{AnalysedCache, ENTRIES as ANALYSED_ENTRIES};
use crate::blobs::BlobDir;
use crate::error::{Fail, OpenError};
use crate::rows::{Budget, RowCache, Rows};
use crate::schema::{MIGRATIONS, SCHEMA_VERSION};
use crate::search;
use tern_core::store::headline;
use tern_core::store::stored as codec;
use tern_core::store::stored::{CodecError, Packing, Zstd};

/// Prepared statements kept per connection: every statement this module issues fits.
const STATEMENT_CACHE: usize = 96;

/// Requests with at least this many UIDs, in strictly ascending order, read one range scan
/// instead of one lookup per UID.
const SCAN_THRESHOLD: usize = 32;

/// A fetch of at most this many messages may be quick (a POP3 RETR, a batch of an IMAP body
/// FETCH)...
const QUICK_FETCH: usize = 16;

/// ... if their octets, when asked for, come to no more than this.
const QUICK_FETCH_OCTETS: u64 = 1 << 20;
/// A STATUS is a quick read while the mailbox has at most this many `\Deleted` messages,
/// whose sizes it sums for DELETED-STORAGE (RFC 9208).
const QUICK_STATUS_DELETED: i64 = 512;

/// A range scan of `sortkeys` reads a mailbox's sort fields when its bodies' ids spread over
/// at most this many times their number (other mailboxes' bodies lie between).
const SORT_SCAN_SPREAD: usize = 4;

/// A read of at least this many messages is bulk work (a client synchronising, POP3's login):
/// it reads from the mailbox's cached rows, caching them first if need be.
const BULK_REQUEST: usize = 256;

/// Unreferenced bodies reclaimed per transaction by [`Account::reclaim_all`].
const RECLAIM_BATCH: usize = 1000;

/// Bodies the background indexer indexes, and unreferenced bodies it reclaims, in one
/// transaction (see [`SqliteStore::index_now`](crate::SqliteStore::index_now)): the
/// account's lock is held for one batch only.
pub const INDEX_BATCH: usize = 256;

/// Bodies a batch indexes at least before it gives way to a client's request that waits for
/// the account (so that indexing still progresses under a steady stream of requests).
pub(crate) const INDEX_BATCH_YIELDING: usize = 8;

/// ... and text it indexes in one transaction at most (a batch of large messages stops early).
const INDEX_BATCH_BYTES: usize = 4 << 20;

/// Free pages the indexer leaves in the file when its queue empties, for the next writes to
/// reuse (256 KiB); the rest go back to the file system (see [`Account::index_batch`]).
pub(crate) const FREE_PAGES_KEPT: i64 = 64;

/// Free pages returned to the file system at most per step (16 MiB of 4 KiB pages): a step
/// holds the account's lock (at open, the store's map of open accounts too), so a database
/// left very fragmented shrinks over several steps instead of stalling everyone at once.
const VACUUM_STEP: i64 = 4096;

/// Bodies waiting in `fts_pending` beyond which APPEND indexes inline again, as before the
/// queue existed: the indexer is not keeping up, and every queued body is a candidate of
/// every text SEARCH (its text loaded and checked), so the queue must stay bounded. At 10,000
/// that costs a SEARCH at most what a full text scan of 10,000 messages costs.
pub const FTS_QUEUE_BOUND: usize = 10_000;

/// What an operation did besides its reply: mailboxes to announce, in `MemStore`'s order.
pub type Outcome = (StorageReply, Vec<MailboxId>);

/// An open account.
pub struct Account {
    conn: Connection,
    /// The account's secret for RFC 8474 identifier strings (`meta.object_key`).
    object_key: ObjectKey,
    blobs: BlobDir,
    path: PathBuf,
    rows: RowCache,
    /// Structures and headers of recently fetched bodies.
    analysed: AnalysedCache,
    /// The keywords of recently synchronised mailboxes, as of the HIGHESTMODSEQ they were read
    /// at: a keyword is only ever added by a write that raises it.
    keyword_lists: HashMap<i64, (ModSeq, Vec<Bytes>)>,
    /// Within a group commit ([`Account::begin_batch`]): files of bodies the batch's writes
    /// dropped, unlinked once the batch commits.
    batch_doomed: Vec<i64>,
    /// The sessions that have each mailbox selected (`tern_core::store::pins`).
    pins: HashMap<i64, Pins>,
    /// Mailboxes that may have `retained` rows: released at the next write once every
    /// session that sees them has been told.
    retaining: HashSet<i64>,
    /// Bodies in `fts_pending`, as far as this connection knows: exact after open and after
    /// each indexer batch, possibly high in between (a rolled-back write), which only makes
    /// APPEND index inline a little early.
    fts_queued: usize,
    /// A committed write queued bodies for the index or left unreferenced bodies: the store
    /// hands the account to its indexer ([`Account::take_background_work`]).
    background_work: bool,
    /// Files of bodies the indexer reclaimed in a commit that was not fsync'd: unlinked only
    /// after the next durable commit, so a power cut can never bring back a row whose file
    /// is gone.
    unsynced_doomed: Vec<i64>,
    /// False while the connection may be at `synchronous=NORMAL` (the indexer's batches):
    /// no write that a client waits for runs until it is back at FULL.
    synchronous_full: bool,
    /// The quota the request running now is held to (`StorageOp::WithinQuota`): its write
    /// compares the account's totals before and after, in its own transaction, and rolls
    /// back a change that takes a resource over ([`Account::hold_to`]).
    quota: Option<Quota>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The database file inside an account folder.
pub const DATABASE_FILE: &str = "index.sqlite";
/// The large-body folder inside an account folder.
pub const BLOB_FOLDER: &str = "blobs";

#[derive(Clone, Debug)]
pub(crate) struct Mailbox {
    pub(crate) id: i64,
    uid_validity: u32,
    uid_next: Uid,
    pub(crate) highest_modseq: ModSeq,
    recent_claimed: Uid,
    selectable: bool,
}

impl Mailbox {
    fn bump(&mut self) -> ModSeq {
        self.highest_modseq += 1;
        self.highest_modseq
    }
}

/// What SORT compares of one message: UID, INTERNALDATE (Unix seconds), size and, when a
/// key needs them, the body's sort fields.
pub type SortInput = (Uid, i64, u64, Option<Arc<SortFields>>);

/// One message row.
#[derive(Clone, Debug)]
pub(crate) struct Msg {
    pub(crate) uid: Uid,
    flags: Flags,
    modseq: ModSeq,
    date: DateTime,
    /// The save date, Unix seconds; `None` for a message saved before schema version 6.
    saved: Option<i64>,
    size: u64,
    body: i64,
    /// EMAILID's number.
    email: EmailId,
    /// THREADID's number.
    thread: ThreadId,
    /// The body's headline (`tern_core::store::headline`), once a search needed it; only cached rows
    /// keep it between requests.
    headline: Option<Headline>,
    /// The body's sort fields, once a SORT needed them; kept like the headline.
    sort: Option<Arc<SortFields>>,
    /// The body's stored preview (RFC 8970), once a FETCH of the cached rows needed it; kept
    /// like the headline.
    preview: Option<Arc<str>>,
}

/// A loaded headline, with what SEARCH needs of it for every candidate measured once: its
/// [`SearchText::octets`] (for the meter) and its [`headline::Trigrams`]. Walking 100,000
/// headlines' fields for those was most of a SEARCH FROM (cache misses, each).
#[derive(Clone, Debug)]
pub(crate) struct Headline {
    text: Arc<SearchText>,
    octets: usize,
    trigrams: headline::Trigrams,
}

impl Headline {
    fn new(text: SearchText) -> Headline {
        Headline {
            octets: text.octets(),
            trigrams: headline::Trigrams::of_headers(&text),
            text: Arc::new(text),
        }
    }
}

impl Msg {
    pub(crate) fn is_seen(&self) -> bool {
        self.flags.has(SystemFlag::Seen)
    }

    /// The save date (RFC 8514 §3); a message saved before they were recorded answers its
    /// internal date, which is when it was saved for every APPEND without a date and every
    /// delivery.
    fn save_date(&self) -> DateTime {
        self.saved.map_or(self.date, |s| from_unix(s, 0))
    }

    /// Memory held by what was loaded of the body (a headline's strings and headers, sort
    /// fields, preview), for the cache budget.
    pub(crate) fn loaded_bytes(&self) -> usize {
        let headline = self.headline.as_ref().map_or(0, |h| {
            h.text
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 2 * std::mem::size_of::<String>())
                .fold(std::mem::size_of::<SearchText>(), usize::saturating_add)
        });
        let sort = self.sort.as_ref().map_or(0, |f| f.bytes());
        // An `Arc`'s two counts beside the text.
        let preview = self.preview.as_ref().map_or(0, |p| p.len() + 16);
        headline.saturating_add(sort).saturating_add(preview)
    }

    /// Takes over what was loaded of the body from an older copy of this row (flags changed,
    /// the body did not): bodies never change, so neither does anything derived from them.
    pub(crate) fn adopt_loaded(&mut self, old: &mut Msg) {
        if self.uid == old.uid && self.body == old.body {
            self.headline = self.headline.take().or_else(|| old.headline.take());
            self.sort = self.sort.take().or_else(|| old.sort.take());
            self.preview = self.preview.take().or_else(|| old.preview.take());
        }
    }

    fn state(&self) -> MessageState {
        MessageState {
            uid: self.uid,
            flags: self.flags.clone(),
            modseq: self.modseq,
        }
    }
}

/// A message as the search evaluator sees it; `text` is filled only when the query needs it,
/// borrowed when the headline suffices.
pub(crate) struct Searched<'a> {
    msg: &'a Msg,
    text: Cow<'a, SearchText>,
}

/// The text of a message not loaded (the first step of SEARCH never reads it).
static NO_TEXT: SearchText = SearchText {
    headers: Vec::new(),
    body: String::new(),
    sent: None,
};

/// What text a search's undecided messages need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TextNeed {
    /// None: everything was decided without text (headline queries are decided in the
    /// first step, on the headlines held with the rows).
    None,
    /// Only the sent date.
    Sent,
    /// The whole stored text.
    Full,
}

/// A SEARCH between its steps: what is decided, and the messages that still need text.
pub(crate) struct SearchJob {
    /// Matches so far, ascending.
    pub(crate) found: Vec<Uid>,
    /// Messages whose answer depends on their text, ascending by UID.
    pub(crate) undecided: Vec<Msg>,
    pub(crate) text: TextNeed,
}

impl Candidate for Searched<'_> {
    fn uid(&self) -> Uid {
        self.msg.uid
    }
    fn flags(&self) -> &Flags {
        &self.msg.flags
    }
    fn size(&self) -> u64 {
        self.msg.size
    }
    fn internal_day(&self) -> Date {
        self.msg.date.date
    }
    fn internal_unix(&self) -> i64 {
        to_unix(&self.msg.date)
    }
    fn saved_day(&self) -> Date {
        self.msg.save_date().date
    }
    fn modseq(&self) -> ModSeq {
        self.msg.modseq
    }
    fn email_id(&self) -> EmailId {
        self.msg.email
    }
    fn thread_id(&self) -> ThreadId {
        self.msg.thread
    }
    fn text(&self) -> &SearchText {
        &self.text
    }
}

/// A row as SEARCH's first step sees it: its text is its headline, loaded when the query
/// reads nothing else (`fill_headlines`), and never asked for otherwise (the first step
/// evaluates without text). A reference to the row is all a candidate takes: 8 bytes
/// instead of a [`Searched`]'s 80, which made the first step write 8 MB over 100,000
/// messages, in fresh pages each time.
impl Candidate for Msg {
    fn uid(&self) -> Uid {
        self.uid
    }
    fn flags(&self) -> &Flags {
        &self.flags
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn internal_day(&self) -> Date {
        self.date.date
    }
    fn internal_unix(&self) -> i64 {
        to_unix(&self.date)
    }
    fn saved_day(&self) -> Date {
        self.save_date().date
    }
    fn modseq(&self) -> ModSeq {
        self.modseq
    }
    fn email_id(&self) -> EmailId {
        self.email
    }
    fn thread_id(&self) -> ThreadId {
        self.thread
    }
    fn text(&self) -> &SearchText {
        self.headline.as_ref().map_or(&NO_TEXT, |h| &h.text)
    }
    fn text_octets(&self) -> usize {
        self.headline.as_ref().map_or(0, |h| h.octets)
    }
}

pub(crate) const MSG_COLUMNS: &str =
    "uid, flags, keywords, modseq, idate, zone, size, body, saved, email, thread";

/// The known messages changed after a MODSEQ (`Changes`), through the MODSEQ index: named,
/// because without statistics SQLite prefers the primary key (to skip the sort) and reads
/// every message of the mailbox, where the cost must follow the changes (every NOOP, FETCH
/// CHANGEDSINCE, SELECT QRESYNC).
pub(crate) fn changed_since() -> String {
    // The row as every reader of messages reads it (`read_msg`): a shorter list here once
    // made every synchronisation fail after a schema step added columns.
    format!(
        "SELECT {MSG_COLUMNS} FROM messages INDEXED BY messages_modseq \
         WHERE mailbox = ?1 AND modseq > ?2 AND uid < ?3 ORDER BY uid"
    )
}

fn sys_bit(f: SystemFlag) -> i64 {
    match f {
        SystemFlag::Seen => 1,
        SystemFlag::Answered => 2,
        SystemFlag::Flagged => 4,
        SystemFlag::Deleted => 8,
        SystemFlag::Draft => 16,
    }
}

fn flag_bits(flags: &Flags) -> i64 {
    SystemFlag::ALL
        .iter()
        .filter(|f| flags.has(**f))
        .map(|f| sys_bit(*f))
        .sum()
}

fn keyword_blob(flags: &Flags) -> Option<Vec<u8>> {
    (!flags.keywords().is_empty()).then(|| codec::encode_keywords(flags.keywords()))
}

/// Packs a date-time field by field: a leap second (`:60`) survives, which a Unix time would
/// not.
fn pack_datetime(d: &DateTime) -> i64 {
    (i64::from(d.date.year) << 40)
        | (i64::from(d.date.month) << 32)
        | (i64::from(d.date.day) << 24)
        | (i64::from(d.hour) << 16)
        | (i64::from(d.minute) << 8)
        | i64::from(d.second)
}

fn unpack_datetime(v: i64, zone: i64) -> DateTime {
    DateTime {
        date: Date {
            year: (v >> 40) as u16,
            month: (v >> 32) as u8,
            day: (v >> 24) as u8,
        },
        hour: (v >> 16) as u8,
        minute: (v >> 8) as u8,
        second: v as u8,
        zone_minutes: zone as i16,
    }
}

pub(crate) fn read_msg(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Msg, Option<Vec<u8>>, i64)> {
    let bits: i64 = r.get(1)?;
    let keywords: Option<Vec<u8>> = r.get(2)?;
    let mut flags = Flags::new();
    for f in SystemFlag::ALL {
        if bits & sys_bit(f) != 0 {
            flags.set(f, true);
        }
    }
    let msg = Msg {
        uid: r.get(0)?,
        flags,
        modseq: r.get::<_, i64>(3)? as u64,
        date: unpack_datetime(r.get(4)?, r.get(5)?),
        size: r.get::<_, i64>(6)? as u64,
        body: r.get(7)?,
        saved: r.get(8)?,
        email: EmailId(r.get::<_, i64>(9)? as u64),
        thread: ThreadId(r.get::<_, i64>(10)? as u64),
        headline: None,
        sort: None,
        preview: None,
    };
    Ok((msg, keywords, bits))
}

/// Finishes a row read by [`read_msg`]: keywords decode outside rusqlite's error type.
pub(crate) fn finish_msg((mut msg, keywords, _): (Msg, Option<Vec<u8>>, i64)) -> Result<Msg, Fail> {
    if let Some(k) = keywords {
        for k in codec::decode_keywords(Bytes::from(k))? {
            msg.flags.insert(&Flag::Keyword(k));
        }
    }
    Ok(msg)
}

fn special_code(s: SpecialUse) -> i64 {
    match s {
        SpecialUse::All => 1,
        SpecialUse::Archive => 2,
        SpecialUse::Drafts => 3,
        SpecialUse::Flagged => 4,
        SpecialUse::Junk => 5,
        SpecialUse::Sent => 6,
        SpecialUse::Trash => 7,
    }
}

fn special_from_code(c: i64) -> Option<SpecialUse> {
    Some(match c {
        1 => SpecialUse::All,
        2 => SpecialUse::Archive,
        3 => SpecialUse::Drafts,
        4 => SpecialUse::Flagged,
        5 => SpecialUse::Junk,
        6 => SpecialUse::Sent,
        7 => SpecialUse::Trash,
        _ => return None,
    })
}

/// A stable, fast 64-bit hash for finding duplicate bodies. Not collision resistant, and it
/// need not be: a hash match is confirmed by comparing the bytes.
pub fn body_hash(data: &[u8]) -> i64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = (data.len() as u64).wrapping_mul(K);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
    }
    h ^= h >> 32;
    h.wrapping_mul(K) as i64
}

/// The keywords a mailbox has seen, loaded once per operation.
struct Keywords {
    mailbox: i64,
    list: Vec<Bytes>,
}

impl Keywords {
    fn load(conn: &Connection, mailbox: i64) -> Result<Keywords, Fail> {
        let mut stmt =
            conn.prepare_cached("SELECT name FROM keywords WHERE mailbox = ?1 ORDER BY seq")?;
        let list = stmt
            .query_map([mailbox], |r| r.get::<_, Vec<u8>>(0))?
            .map(|r| r.map(Bytes::from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Keywords { mailbox, list })
    }

    fn note(&mut self, conn: &Connection, flags: &Flags) -> Result<(), Fail> {
        for k in flags.keywords() {
            if !self.list.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                conn.prepare_cached(
                    "INSERT INTO keywords (mailbox, seq, name) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![self.mailbox, self.list.len() as i64, &k[..]])?;
                self.list.push(k.clone());
            }
        }
        Ok(())
    }
}

/// Where a write runs: its own transaction, or a savepoint of a group commit's.
enum Scope<'c> {
    Transaction(rusqlite::Transaction<'c>),
    Savepoint(rusqlite::Savepoint<'c>),
}

impl std::ops::Deref for Scope<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Scope::Transaction(tx) => tx,
            Scope::Savepoint(sp) => sp,
        }
    }
}

impl Scope<'_> {
    fn commit(self) -> rusqlite::Result<()> {
        match self {
            Scope::Transaction(tx) => tx.commit(),
            Scope::Savepoint(sp) => sp.commit(),
        }
    }
}

/// Files written in the current transaction (removed if it fails) and files to unlink once
/// it commits; index rows to add just before it commits.
#[derive(Default)]
struct Pending {
    written: Vec<i64>,
    doomed: Vec<i64>,
    /// FTS rows (body id, column values) this transaction writes: the indexer's batch, or
    /// bodies APPEND indexes inline because the queue is over its bound. FTS5
    /// writes its pending terms out as a new segment at every statement savepoint, and each
    /// message INSERT (it fires triggers) opens one: inserted one by one between those, a
    /// MULTIAPPEND of 100 made 100 tiny segments for the automerge to fold together again.
    /// Added together at the end, they make one segment per transaction.
    fts: Vec<(i64, [String; 4])>,
    /// Index new bodies in this transaction (the queue is over [`FTS_QUEUE_BOUND`]) rather
    /// than queue them.
    inline_fts: bool,
    /// Bodies queued in `fts_pending` by this transaction.
    queued: usize,
    /// Bodies taken out of `fts_pending` by this transaction (indexed, or reclaimed unindexed).
    unqueued: usize,
}

impl Account {
    /// Opens (creating and migrating as needed) the account in `dir`; a new account gets the
    /// mailboxes of `template`.
    pub fn open(
        dir: &Path,
        now: i64,
        budget: Budget,
        template: &AccountTemplate,
    ) -> Result<Account, OpenError> {
        let folder = |source| OpenError::Folder {
            path: dir.to_path_buf(),
            source,
        };
        let new = !dir.exists();
        std::fs::create_dir_all(dir.join(BLOB_FOLDER)).map_err(folder)?;
        let path = dir.join(DATABASE_FILE);
        let db = |source| OpenError::Database {
            path: path.clone(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(db)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Without the planner's stability guarantee, SQLite re-plans a cached statement whenever
        // a value bound to `x = ?` or `LIMIT ?` changes (to use the value's statistics): every
        // lookup of another mailbox or UID parsed its SQL again, about an eighth of the CPU
        // under the mixed workload. Our statements have one good plan whatever the values.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(db)?;
        // One process owns the store; a second one (a backup tool, sqlite3) only waits briefly.
        conn.busy_timeout(Duration::from_secs(5)).map_err(db)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        if version > SCHEMA_VERSION {
            return Err(OpenError::NewerSchema {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 0 {
            // Only takes effect before the first table exists; lets deleted bodies' pages be
            // returned to the file system instead of only reused.
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
                .map_err(db)?;
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenError::Database {
                path,
                source: rusqlite::Error::InvalidQuery,
            });
        }
        // FULL: a commit fsyncs the WAL, so an acknowledged change survives power loss, not
        // just a process crash (NORMAL would only promise the latter).
        conn.execute_batch("PRAGMA synchronous = FULL")
            .map_err(db)?;
        let mut account = Account {
            conn,
            object_key: ObjectKey::default(),
            blobs: BlobDir::new(dir.join(BLOB_FOLDER)),
            path: path.clone(),
            rows: RowCache::new(budget.clone()),
            analysed: AnalysedCache::new(budget),
            keyword_lists: HashMap::new(),
            batch_doomed: Vec::new(),
            pins: HashMap::new(),
            retaining: HashSet::new(),
            fts_queued: 0,
            background_work: false,
            unsynced_doomed: Vec::new(),
            quota: None,
            synchronous_full: true,
        };
        account
            .migrate(version, now, template)
            .map_err(|e| OpenError::Migration {
                path: path.clone(),
                detail: StorageError::from(e).to_string(),
            })?;
        account.object_key =
            ObjectKey(
                get_meta(&account.conn, "object_key").map_err(|e| OpenError::Migration {
                    path: path.clone(),
                    detail: StorageError::from(e).to_string(),
                })? as u64,
            );
        if new {
            // The account's folder entries must survive a crash as well as its first commit.
            for d in [
                dir.join(BLOB_FOLDER).as_path(),
                dir,
                dir.parent().unwrap_or(dir),
            ] {
                crate::blobs::sync_dir(d).map_err(folder)?;
            }
        }
        // Best effort: a store on a full or read-only disk must still open for reading.
        // No session survives a restart, so no expunged message needs keeping any more (a
        // failure here leaves their bodies referenced until an open that succeeds).
        let _ = account.write(|tx, _, _| {
            tx.execute("DELETE FROM retained", [])?;
            Ok(())
        });
        let _ = account.collect_garbage();
        let _ = incremental_vacuum(&account.conn, Some(VACUUM_STEP));
        // Work queued before a restart (or a crash) is resumed by the indexer.
        if let Ok((queued, dead)) = account.backlog() {
            account.fts_queued = queued;
            account.background_work = queued > 0 || dead > 0;
        }
        // Bodies stored before previews were still lack theirs (schema version 6).
        if get_meta(&account.conn, PREVIEW_BACKFILL).is_ok_and(|mark| mark > 0) {
            account.background_work = true;
        }
        Ok(account)
    }

    fn migrate(&mut self, from: i64, now: i64, template: &AccountTemplate) -> Result<(), Fail> {
        for version in from..SCHEMA_VERSION {
            let Some(sql) = MIGRATIONS.get(version as usize) else {
                break;
            };
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            if version == 1 {
                derive_headlines(&tx)?;
            }
            if version == 6 {
                number_stored_messages(&tx, &self.blobs)?;
            }
            if version == 7 {
                derive_sort_fields(&tx)?;
            }
            if version == 0 {
                // A new account: the mailboxes the template holds, in its order.
                for m in &template.mailboxes {
                    insert_mailbox(&tx, &m.name, m.special_use, now)?;
                    if m.subscribed {
                        subscribe(&tx, &m.name, true)?;
                    }
                }
            }
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Removes body files no row refers to (left by a crash between file and commit).
    pub fn collect_garbage(&mut self) -> Result<usize, Fail> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM bodies WHERE external = 1")?;
        let live: HashSet<i64> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        Ok(self.blobs.collect_garbage(|id| live.contains(&id))?)
    }

    /// `PRAGMA integrity_check` and FTS5's own check; `Ok` when both pass.
    pub fn check(&mut self) -> Result<(), Fail> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if result != "ok" {
            return Err(Fail::Storage(StorageError::Internal(format!(
                "integrity check: {result}"
            ))));
        }
        self.conn
            .execute("INSERT INTO fts (fts) VALUES ('integrity-check')", [])?;
        Ok(())
    }

    /// Messages and octets in all mailboxes (as QUOTA counts them: shared bodies count in
    /// every mailbox that holds them).
    pub fn usage(&mut self) -> Result<AccountUsage, Fail> {
        totals(&self.conn)
    }

    /// Holds the next write (the one write of the request about to run) to `quota`.
    pub fn hold_to(&mut self, quota: Option<Quota>) {
        self.quota = quota;
    }

    /// Reclaims every unreferenced body and returns free pages to the file system; returns
    /// how many bodies went. Maintenance work, in batches of short transactions.
    pub fn reclaim_all(&mut self) -> Result<usize, Fail> {
        let mut total = 0;
        loop {
            let n = self.write(|tx, _, pending| reclaim(tx, pending, RECLAIM_BATCH))?;
            total += n;
            if n < RECLAIM_BATCH {
                break;
            }
        }
        incremental_vacuum(&self.conn, None)?;
        Ok(total)
    }

    /// Bodies waiting to be indexed and unreferenced bodies waiting to be reclaimed.
    pub fn backlog(&self) -> Result<(usize, usize), Fail> {
        let (queued, dead): (i64, i64) = self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM fts_pending), \
             (SELECT COUNT(*) FROM bodies WHERE refs = 0)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((queued as usize, dead as usize))
    }

    /// Whether a write since the last call left work for the indexer; clears the mark.
    pub fn take_background_work(&mut self) -> bool {
        std::mem::take(&mut self.background_work)
    }

    /// One batch of the background indexer's work, in a transaction of its own: writes the
    /// FTS rows of up to [`INDEX_BATCH`] queued bodies (or [`INDEX_BATCH_BYTES`] of text) and
    /// reclaims up to [`INDEX_BATCH`] unreferenced bodies. Returns whether work remains.
    /// Inside a group commit (never: the indexer holds the account's lock, as a batch does
    /// from start to commit) it does nothing.
    ///
    /// The batch commits without an fsync (`synchronous=NORMAL`): everything it does can be
    /// done again, and a commit lost to a power cut leaves the database as before it (WAL
    /// frames are replayed in order, and the next durable commit's fsync covers this one's
    /// frames too). Only unlinking reclaimed bodies' files must wait for that durable commit.
    ///
    /// `wanted` tells whether a client's request waits for the account: the batch then ends
    /// after the bodies indexed so far (at least [`INDEX_BATCH_YIELDING`]), so that a request
    /// arriving while a large import is being indexed waits milliseconds, not a whole batch.
    pub fn index_batch(&mut self, wanted: &dyn Fn() -> bool) -> Result<bool, Fail> {
        if !self.conn.is_autocommit() {
            return Ok(false);
        }
        self.synchronous_full = false;
        self.conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        let done = self.index_batch_unsynced(wanted);
        if matches!(done, Ok(false)) {
            // Best effort: pages left free by FTS5's segment merges and by reclaimed bodies
            // (2 MB, 400 bytes per message, after appending 5,000 realistic messages) are
            // otherwise only returned at the account's next open.
            let _ = self.return_free_pages();
        }
        // Every other commit must stay durable, whatever became of the batch: if this fails,
        // `durable` tries again before the next write and refuses the write otherwise.
        self.durable()?;
        done
    }

    /// Returns the free pages past [`FREE_PAGES_KEPT`] to the file system (the file shrinks at
    /// the next checkpoint). A no-op in a database made before `auto_vacuum` was set.
    fn return_free_pages(&mut self) -> Result<(), Fail> {
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        if free > 2 * FREE_PAGES_KEPT {
            incremental_vacuum(&self.conn, Some((free - FREE_PAGES_KEPT).min(VACUUM_STEP)))?;
        }
        Ok(())
    }

    /// Puts the connection back at `synchronous=FULL` if the indexer left it otherwise; a
    /// write that a client waits for runs only then.
    fn durable(&mut self) -> Result<(), Fail> {
        if !self.synchronous_full {
            self.conn.execute_batch("PRAGMA synchronous = FULL")?;
            self.synchronous_full = true;
        }
        Ok(())
    }

    fn index_batch_unsynced(&mut self, wanted: &dyn Fn() -> bool) -> Result<bool, Fail> {
        let mut pending = Pending::default();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Bodies already unreferenced are not indexed: `reclaim` below (or a later batch's)
        // takes them out of the queue with the rest of them, and a message appended and
        // expunged between two batches (the common case under load) costs the index nothing.
        let mut stmt = tx.prepare_cached(
            "SELECT p.id FROM fts_pending p JOIN bodies b ON b.id = p.id \
             WHERE b.refs > 0 ORDER BY p.id LIMIT ?1",
        )?;
        let ids: Vec<i64> = stmt
            .query_map([INDEX_BATCH as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        let mut bytes = 0;
        let mut more = ids.len() == INDEX_BATCH;
        let mut yielding = false;
        for (done, id) in ids.into_iter().enumerate() {
            if bytes >= INDEX_BATCH_BYTES {
                more = true;
                break;
            }
            if done >= INDEX_BATCH_YIELDING && wanted() {
                (more, yielding) = (true, true);
                break;
            }
            // A queued body always has its text (both are written by `store_body`, and
            // removed together by `reclaim`); one without would be dropped from the queue.
            if let Some(text) = load_text_if_any(&tx, id)? {
                let row = search::fts_row(text);
                bytes += row.iter().map(String::len).sum::<usize>();
                pending.fts.push((id, row));
            }
            tx.prepare_cached("DELETE FROM fts_pending WHERE id = ?1")?
                .execute([id])?;
            pending.unqueued += 1;
        }
        index_pending(&tx, &mut pending)?;
        let reclaim_at_most = if yielding {
            INDEX_BATCH_YIELDING
        } else {
            INDEX_BATCH
        };
        let reclaimed = reclaim(&tx, &mut pending, reclaim_at_most)?;
        more |= reclaimed == reclaim_at_most;
        if !yielding {
            more |= backfill_previews(&tx, &self.blobs, wanted)?;
        }
        tx.commit()?;
        self.unsynced_doomed.append(&mut pending.doomed);
        // Made exact again (a write rolled back since the last count left it high).
        self.fts_queued = self
            .conn
            .query_row("SELECT COUNT(*) FROM fts_pending", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_or(self.fts_queued, |n| n as usize);
        Ok(more)
    }

    /// Pretends the index queue is this long (to test the bound without 10,000 messages).
    #[cfg(test)]
    pub fn set_fts_queued(&mut self, bodies: usize) {
        self.fts_queued = bodies;
    }

    #[cfg(test)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in an immediate transaction; on failure nothing it did remains, files
    /// included. Files of dropped bodies are unlinked after the commit.
    ///
    /// Inside a group commit ([`Account::begin_batch`]) `f` runs in a savepoint of the
    /// batch's transaction instead: a failure rolls back this write alone, and the one
    /// commit (and fsync) at the end of the batch makes every write of it durable together.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&Connection, &BlobDir, &mut Pending) -> Result<T, Fail>,
    ) -> Result<T, Fail> {
        self.durable()?;
        let quota = self.quota.take();
        let mut pending = Pending {
            inline_fts: self.fts_queued >= FTS_QUEUE_BOUND,
            ..Pending::default()
        };
        let batched = !self.conn.is_autocommit();
        let Account {
            conn,
            blobs,
            batch_doomed,
            pins,
            retaining,
            fts_queued,
            background_work,
            unsynced_doomed,
            ..
        } = self;
        let tx = if batched {
            Scope::Savepoint(conn.savepoint()?)
        } else {
            Scope::Transaction(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
        };
        // Before the operation, in its transaction: rows it moves to `retained` belong to
        // views not yet told, and `retaining` hears of them only once it has committed.
        let released = release(&tx, pins, retaining)?;
        // The totals the mailbox rows keep, read inside the transaction that changes them:
        // what the check sees is what commits, whatever runs concurrently.
        let before = match quota {
            Some(_) => Some(totals(&tx)?),
            None => None,
        };
        // Indexing queued bodies and reclaiming unreferenced ones is the indexer's work, off
        // this path (`indexer.rs`); the write only notes whether it left any.
        let out = match f(&tx, blobs, &mut pending)
            .and_then(|out| match (quota, before) {
                (Some(quota), Some(before)) if quota.refuses(before, totals(&tx)?) => {
                    Err(StorageError::OverQuota.into())
                }
                _ => Ok(out),
            })
            .and_then(|out| index_pending(&tx, &mut pending).map(|_| out))
            .and_then(|out| Ok((out, any_unreferenced(&tx)?)))
        {
            Ok(out) => out,
            Err(e) => {
                drop(tx);
                // Rolled back for certain: the new files belong to nothing.
                for id in pending.written {
                    let _ = blobs.remove(id);
                }
                return Err(e);
            }
        };
        // A failed COMMIT (an fsync error, say) may still have reached the disk and be
        // replayed after a crash, so its files stay; if the rows really are gone, the next
        // open collects the files as orphans. Never a row without its body.
        tx.commit()?;
        let (out, dead) = out;
        *fts_queued = (*fts_queued + pending.queued).saturating_sub(pending.unqueued);
        *background_work |= pending.queued > 0 || dead;
        for id in released {
            retaining.remove(&id);
            if pins.get_mut(&id).is_some_and(|p| p.oldest().is_none()) {
                pins.remove(&id);
            }
        }
        // This commit (or the batch's, which is durable too) makes the indexer's earlier
        // commits durable as well: their files may go with it.
        pending.doomed.append(unsynced_doomed);
        if batched {
            batch_doomed.append(&mut pending.doomed);
            return Ok(out);
        }
        for id in pending.doomed {
            // An unlink that fails leaves an orphan, collected at the next open.
            let _ = blobs.remove(id);
        }
        Ok(out)
    }

    /// Starts a group commit: the requests run until [`Account::end_batch`] share one
    /// transaction, each write in a savepoint of its own.
    pub fn begin_batch(&mut self) -> Result<(), Fail> {
        self.durable()?;
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// Commits a group commit: one fsync for all its writes. If the commit fails, nothing of
    /// the batch is acknowledged, and the row cache (which may have read rows the batch
    /// wrote) starts afresh.
    pub fn end_batch(&mut self) -> Result<(), Fail> {
        let committed = self.conn.execute_batch("COMMIT");
        if committed.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        let doomed = std::mem::take(&mut self.batch_doomed);
        if let Err(e) = committed {
            // Bodies of the batch may have been fetched, and their ids are given out again.
            self.rows.clear();
            self.analysed.clear();
            self.keyword_lists.clear();
            return Err(e.into());
        }
        for id in doomed {
            let _ = self.blobs.remove(id);
        }
        Ok(())
    }

    /// Whether a group commit is open (a request panicked in one: the caller rolls it back).
    pub fn in_batch(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Rolls back a group commit that cannot finish (a request in it panicked).
    pub fn abort_batch(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
        self.batch_doomed.clear();
        self.rows.clear();
        self.analysed.clear();
        self.keyword_lists.clear();
    }

    /// A read transaction for a request made of many lookups, or none inside a group commit
    /// (whose transaction already gives the request one consistent view).
    fn read_scope(conn: &Connection) -> Result<Option<rusqlite::Transaction<'_>>, Fail> {
        Ok(if conn.is_autocommit() {
            Some(conn.unchecked_transaction()?)
        } else {
            None
        })
    }

    /// `write` for an operation that may move expunged rows of `kept` to `retained`.
    fn write_retaining<T>(
        &mut self,
        kept: Option<i64>,
        f: impl FnOnce(&Connection, &BlobDir, &mut Pending) -> Result<T, Fail>,
    ) -> Result<T, Fail> {
        let out = self.write(f)?;
        if let Some(id) = kept {
            self.retaining.insert(id);
        }
        Ok(out)
    }

    /// The mailbox's row id when some session has it selected: its expunged messages are
    /// then kept (`retained`) until every such session has been told.
    fn viewed(&mut self, mailbox: MailboxId) -> Option<i64> {
        let id = i64::try_from(mailbox.0).ok()?;
        self.pins.get_mut(&id).and_then(Pins::oldest).map(|_| id)
    }

    // ---- operations ----

    pub fn list(&mut self) -> Result<Outcome, Fail> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, special_use, selectable FROM mailboxes ORDER BY name")?;
        let mailboxes = stmt
            .query_map([], |r| {
                Ok(MailboxEntry {
                    name: r.get(0)?,
                    special_use: r.get::<_, Option<i64>>(1)?.and_then(special_from_code),
                    selectable: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM subscriptions ORDER BY name")?;
        let subscribed = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok((
            StorageReply::Mailboxes(MailboxList {
                mailboxes,
                subscribed,
            }),
            Vec::new(),
        ))
    }

    pub fn create(
        &mut self,
        name: &str,
        special_use: Option<SpecialUse>,
        now: i64,
        max_mailboxes: usize,
    ) -> Result<Outcome, Fail> {
        let object_key = self.object_key;
        self.write(|tx, _, _| {
            if let Some(existing) = by_name(tx, name)? {
                if existing.selectable {
                    return Err(StorageError::AlreadyExists.into());
                }
                // A \Noselect placeholder becomes a real mailbox again.
                tx.prepare_cached(
                    "UPDATE mailboxes SET selectable = 1, special_use = ?2 WHERE id = ?1",
                )?
                .execute(params![existing.id, special_use.map(special_code)])?;
                let created = StorageReply::Created {
                    mailbox: MailboxId(existing.id as u64),
                    object_key,
                };
                return Ok((created, Vec::new()));
            }
            let count: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM mailboxes")?
                .query_row([], |r| r.get(0))?;
            if usize::try_from(count).is_ok_and(|c| c >= max_mailboxes) {
                return Err(StorageError::Limit(LimitKind::Mailboxes).into());
            }
            // RFC 9051 §6.3.4: superior names are created too.
            let mut parent = String::new();
            for level in name.split(DELIMITER) {
                if !parent.is_empty() {
                    parent.push(DELIMITER);
                }
                parent.push_str(level);
                if parent != name && by_name(tx, &parent)?.is_none() {
                    insert_mailbox(tx, &parent, None, now)?;
                }
            }
            let id = insert_mailbox(tx, name, special_use, now)?;
            let created = StorageReply::Created {
                mailbox: MailboxId(id as u64),
                object_key,
            };
            Ok((created, Vec::new()))
        })
    }

    pub fn delete(&mut self, name: &str) -> Result<Outcome, Fail> {
        self.write(|tx, _, _| {
            let children = has_children(tx, name)?;
            let mailbox = by_name(tx, name)?.ok_or(StorageError::NoSuchMailbox)?;
            if children {
                // RFC 9051 §6.3.5: the name stays, as \Noselect, and loses its messages.
                if !mailbox.selectable {
                    return Err(StorageError::HasChildren.into());
                }
                tx.prepare_cached("UPDATE mailboxes SET selectable = 0 WHERE id = ?1")?
                    .execute([mailbox.id])?;
                // As expunges with a new MODSEQ (as MemStore), not a silent clear: CREATE can
                // make the name a mailbox again (same UIDVALIDITY), and a session that still
                // has it selected must then learn that these messages are gone.
                let mut m = mailbox.clone();
                let uids: Vec<Uid> = tx
                    .prepare_cached("SELECT uid FROM messages WHERE mailbox = ?1 ORDER BY uid")?
                    .query_map([m.id], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                // Nothing kept: a mailbox that is no longer selectable cannot be fetched from.
                remove(tx, &mut m, &uids, false)?;
                tx.prepare_cached("DELETE FROM retained WHERE mailbox = ?1")?
                    .execute([m.id])?;
                save(tx, &m)?;
            } else {
                delete_all_messages(tx, mailbox.id)?;
                for sql in [
                    "DELETE FROM keywords WHERE mailbox = ?1",
                    "DELETE FROM expunged WHERE mailbox = ?1",
                    "DELETE FROM mailboxes WHERE id = ?1",
                ] {
                    tx.prepare_cached(sql)?.execute([mailbox.id])?;
                }
            }
            // RFC 5464 §4.1: a mailbox's METADATA entries go with it.
            tx.prepare_cached("DELETE FROM metadata WHERE mailbox = ?1")?
                .execute([mailbox.id])?;
            Ok((StorageReply::Done, vec![MailboxId(mailbox.id as u64)]))
        })
    }

    /// RENAME (`messages_only` false) or MoveAllMessages (true): the same checks and parents,
    /// then either the names move or the messages do.
    pub fn rename(
        &mut self,
        from: &str,
        to: &str,
        messages_only: bool,
        now: i64,
    ) -> Result<Outcome, Fail> {
        let source_viewed = match by_name(&self.conn, from)? {
            Some(source) if messages_only => self.viewed(MailboxId(source.id as u64)),
            _ => None,
        };
        self.write_retaining(source_viewed, |tx, _, _| {
            let source = by_name(tx, from)?;
            if !source.as_ref().is_some_and(|m| m.selectable) && !has_children(tx, from)? {
                return Err(StorageError::NoSuchMailbox.into());
            }
            if source.is_none() {
                return Err(StorageError::NoSuchMailbox.into());
            }
            let target = by_name(tx, to)?;
            if target.as_ref().is_some_and(|m| m.selectable) || has_children(tx, to)? {
                return Err(StorageError::AlreadyExists.into());
            }
            if to.starts_with(&format!("{from}{DELIMITER}")) {
                return Err(StorageError::IntoItself.into());
            }
            if let Some(placeholder) = target {
                delete_all_messages(tx, placeholder.id)?;
                for sql in [
                    "DELETE FROM keywords WHERE mailbox = ?1",
                    "DELETE FROM expunged WHERE mailbox = ?1",
                    "DELETE FROM metadata WHERE mailbox = ?1",
                    "DELETE FROM mailboxes WHERE id = ?1",
                ] {
                    tx.prepare_cached(sql)?.execute([placeholder.id])?;
                }
            }
            // Parents of the new name, as CREATE would make them.
            let levels: Vec<&str> = to.split(DELIMITER).collect();
            let mut parent = String::new();
            for level in levels.iter().take(levels.len().saturating_sub(1)) {
                if !parent.is_empty() {
                    parent.push(DELIMITER);
                }
                parent.push_str(level);
                if by_name(tx, &parent)?.is_none() {
                    insert_mailbox(tx, &parent, None, now)?;
                }
            }
            if messages_only {
                insert_mailbox(tx, to, None, now)?;
                let mut source = by_name(tx, from)?.ok_or(StorageError::NoSuchMailbox)?;
                let mut target = by_name(tx, to)?.ok_or(StorageError::NoSuchMailbox)?;
                let messages = scan(tx, source.id, 0, Uid::MAX)?;
                let uids: Vec<Uid> = messages.iter().map(|m| m.uid).collect();
                // As expunges (MemStore's order: the source's MODSEQ first, even when empty),
                // so that sessions with the source selected can still read them until told.
                if uids.is_empty() {
                    source.bump();
                } else {
                    remove(tx, &mut source, &uids, source_viewed.is_some())?;
                }
                let mut keywords = Keywords::load(tx, target.id)?;
                for m in &messages {
                    add(tx, &mut target, &mut keywords, m, now)?;
                }
                // RFC 5464 §4.1: the new mailbox gets a copy of the entries; the source keeps
                // its own.
                tx.prepare_cached(
                    "INSERT INTO metadata (mailbox, name, value) \
                     SELECT ?2, name, value FROM metadata WHERE mailbox = ?1",
                )?
                .execute(params![source.id, target.id])?;
                save(tx, &source)?;
                save(tx, &target)?;
                return Ok((StorageReply::Done, vec![MailboxId(source.id as u64)]));
            }
            let prefix = format!("{from}{DELIMITER}");
            let mut stmt = tx.prepare_cached("SELECT id, name FROM mailboxes")?;
            let moving: Vec<(i64, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<(i64, String)>, _>>()?
                .into_iter()
                .filter(|(_, n)| n == from || n.starts_with(&prefix))
                .collect();
            drop(stmt);
            for (id, old) in moving {
                let new = format!("{to}{}", &old[from.len()..]);
                tx.prepare_cached("UPDATE mailboxes SET name = ?2 WHERE id = ?1")?
                    .execute(params![id, new])?;
            }
            Ok((StorageReply::Done, Vec::new()))
        })
    }

    /// GETMETADATA: the entries of `mailbox` (the account's own for `None`) within `depth`
    /// of one of `names`, ascending by name.
    pub fn get_metadata(
        &mut self,
        mailbox: Option<&str>,
        names: &[String],
        depth: Depth,
    ) -> Result<Outcome, Fail> {
        let id = metadata_owner(&self.conn, mailbox)?;
        let mut found = Vec::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, value FROM metadata WHERE mailbox = ?1 AND name >= ?2 ORDER BY name",
        )?;
        for root in names {
            // Every name within `root` sorts at or after it; the scan stops at the first that
            // is neither it nor below it.
            let rows = stmt.query_map(params![id, root], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            for row in rows {
                let (name, value) = row?;
                if name != *root && !name.starts_with(&format!("{root}/")) {
                    break;
                }
                if metadata::within(root, &name, depth) {
                    found.push((name, Bytes::from(value)));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        Ok((StorageReply::Metadata(found), Vec::new()))
    }

    /// SETMETADATA: every entry set or removed in one transaction, or none when the account
    /// would grow past `limit` entries.
    pub fn set_metadata(
        &mut self,
        mailbox: Option<&str>,
        entries: &[(String, Option<Bytes>)],
        limit: usize,
    ) -> Result<Outcome, Fail> {
        self.write(|tx, _, _| {
            let id = metadata_owner(tx, mailbox)?;
            let count = |tx: &Connection| -> Result<usize, Fail> {
                let n: i64 = tx
                    .prepare_cached("SELECT COUNT(*) FROM metadata")?
                    .query_row([], |r| r.get(0))?;
                Ok(n as usize)
            };
            let held = count(tx)?;
            for (name, value) in entries {
                match value {
                    Some(v) => tx
                        .prepare_cached(
                            "INSERT OR REPLACE INTO metadata (mailbox, name, value) \
                             VALUES (?1, ?2, ?3)",
                        )?
                        .execute(params![id, name, &v[..]])?,
                    None => tx
                        .prepare_cached("DELETE FROM metadata WHERE mailbox = ?1 AND name = ?2")?
                        .execute(params![id, name])?,
                };
            }
            let after = count(tx)?;
            // Only growth is refused: removing entries must work above a lowered limit. The
            // error rolls the transaction back.
            if after > limit && after > held {
                return Err(StorageError::Limit(LimitKind::MetadataEntries).into());
            }
            Ok((StorageReply::Done, Vec::new()))
        })
    }

    pub fn subscribe(&mut self, name: &str, subscribed: bool) -> Result<Outcome, Fail> {
        self.write(|tx, _, _| {
            subscribe(tx, name, subscribed)?;
            Ok((StorageReply::Done, Vec::new()))
        })
    }

    pub fn status(&mut self, name: &str) -> Result<Outcome, Fail> {
        let m = selectable(&self.conn, name)?;
        let (messages, size, unseen, deleted): (i64, i64, i64, i64) = self
            .conn
            .prepare_cached("SELECT messages, size, unseen, deleted FROM mailboxes WHERE id = ?1")?
            .query_row([m.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        let recent: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM messages WHERE mailbox = ?1 AND uid >= ?2")?
            .query_row(params![m.id, m.recent_claimed], |r| r.get(0))?;
        // DELETED-STORAGE: through the partial index of `\Deleted` messages, so its cost is
        // theirs (none when the kept count says there are none).
        let deleted_size: i64 = if deleted > 0 {
            self.conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(size), 0) FROM messages \
                     WHERE mailbox = ?1 AND flags & 8 != 0",
                )?
                .query_row([m.id], |r| r.get(0))?
        } else {
            0
        };
        Ok((
            StorageReply::Status(MailboxStatus {
                id: Some(MailboxId(m.id as u64)),
                messages: messages as u32,
                recent: recent as u32,
                uid_next: m.uid_next,
                uid_validity: m.uid_validity,
                unseen: unseen as u32,
                deleted: deleted as u32,
                deleted_size: u64::try_from(deleted_size).unwrap_or(0),
                size: size as u64,
                highest_modseq: m.highest_modseq,
                object_key: self.object_key,
            }),
            Vec::new(),
        ))
    }

    /// Whether `op` is a short read: no write, no scan, no body beyond a few (see
    /// [`crate::SqliteStore::try_execute_shared`]). Reads one mailbox row to tell.
    pub fn is_quick(&self, op: &StorageOp) -> bool {
        let current = |m: Result<Mailbox, Fail>| m.is_ok_and(|m| self.rows.is_current(&m));
        match op {
            StorageOp::Then { first, then } => self.is_quick(first) && self.is_quick(then),
            StorageOp::Fetch {
                mailbox,
                uids,
                want,
                mark_seen: false,
                ..
            } => {
                if uids.len() > QUICK_FETCH {
                    !want.content && !want.info && current(by_id(&self.conn, *mailbox))
                } else if want.content {
                    // Octets: only as many as a short read moves (a body may be 64 MB).
                    self.octets(*mailbox, uids)
                        .is_ok_and(|octets| octets <= QUICK_FETCH_OCTETS)
                } else {
                    true
                }
            }
            // Claiming `\Recent` costs no fsync (see `claim_recent`).
            StorageOp::Open { name, .. } => {
                selectable(&self.conn, name).is_ok_and(|m| self.rows.is_current(&m))
            }
            StorageOp::Changes { .. } => true,
            StorageOp::Status { name, .. } => self
                .conn
                .prepare_cached("SELECT deleted FROM mailboxes WHERE name = ?1")
                .and_then(|mut s| s.query_row([name], |r| r.get::<_, i64>(0)))
                .map_or(true, |deleted| deleted <= QUICK_STATUS_DELETED),
            StorageOp::ListMailboxes { .. } => true,
            _ => false,
        }
    }

    /// The summed size of the named messages (those that exist).
    fn octets(&self, mailbox: MailboxId, uids: &[Uid]) -> Result<u64, Fail> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT size FROM messages WHERE mailbox = ?1 AND uid = ?2")?;
        let mut total = 0u64;
        for &uid in uids {
            let size: Option<i64> = stmt
                .query_row(params![mailbox.0 as i64, uid], |r| r.get(0))
                .optional()?;
            total = total.saturating_add(size.map_or(0, |s| s.max(0) as u64));
        }
        Ok(total)
    }

    pub fn open_mailbox(&mut self, name: &str, read_only: bool) -> Result<Outcome, Fail> {
        let m = selectable(&self.conn, name)?;
        // EXAMINE shows what SELECT would show (RFC 3501 §6.3.2) but claims nothing.
        let recent = if read_only {
            let mut stmt = self.conn.prepare_cached(
                "SELECT uid FROM messages WHERE mailbox = ?1 AND uid >= ?2 ORDER BY uid",
            )?;
            let uids = stmt
                .query_map(params![m.id, m.recent_claimed], |r| r.get(0))?
                .collect::<Result<Vec<Uid>, _>>()?;
            uids
        } else {
            self.claim_recent(&m)?
        };
        let keywords = self.keyword_list(&m)?;
        let (uids, first_unseen) = self.rows.listing(&self.conn, &m)?;
        let pin = self.pins.entry(m.id).or_default().pin(m.highest_modseq);
        Ok((
            StorageReply::Opened(Snapshot {
                id: MailboxId(m.id as u64),
                object_key: self.object_key,
                uid_validity: m.uid_validity,
                uid_next: m.uid_next,
                highest_modseq: m.highest_modseq,
                uids,
                first_unseen,
                recent,
                keywords,
                pin,
            }),
            Vec::new(),
        ))
    }

    /// The keywords mailbox `m` has seen, from memory when they were read at its current
    /// HIGHESTMODSEQ (every synchronisation of every session asks for them).
    fn keyword_list(&mut self, m: &Mailbox) -> Result<Vec<Bytes>, Fail> {
        /// Mailboxes whose lists one account keeps.
        const KEPT: usize = 8;
        if let Some((modseq, list)) = self.keyword_lists.get(&m.id) {
            if *modseq == m.highest_modseq {
                return Ok(list.clone());
            }
        }
        let list = Keywords::load(&self.conn, m.id)?.list;
        if self.keyword_lists.len() >= KEPT && !self.keyword_lists.contains_key(&m.id) {
            self.keyword_lists.clear();
        }
        self.keyword_lists
            .insert(m.id, (m.highest_modseq, list.clone()));
        Ok(list)
    }

    /// Claims the mailbox's unclaimed messages as `\Recent` for the calling session.
    ///
    /// The claim is written without an fsync (as the indexer's batches are; the next durable
    /// commit's fsync covers it): a session's `\Recent` does not outlive the process, and a
    /// claim lost to a power cut only shows a message as recent once more, to a session after
    /// the restart. A process crash loses nothing (the log is written before the reply). So a
    /// SELECT or a NOOP that finds new mail costs no fsync, and can run on the quick path.
    fn claim_recent(&mut self, m: &Mailbox) -> Result<Vec<Uid>, Fail> {
        let from = m.recent_claimed;
        if from != m.uid_next {
            const CLAIM: &str = "UPDATE mailboxes SET recent_claimed = ?2 WHERE id = ?1";
            if self.conn.is_autocommit() {
                if self.synchronous_full {
                    self.conn.execute_batch("PRAGMA synchronous = NORMAL")?;
                    self.synchronous_full = false;
                }
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.prepare_cached(CLAIM)?
                    .execute(params![m.id, m.uid_next])?;
                tx.commit()?;
            } else {
                // Inside a group commit: part of its transaction.
                self.conn
                    .prepare_cached(CLAIM)?
                    .execute(params![m.id, m.uid_next])?;
            }
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT uid FROM messages WHERE mailbox = ?1 AND uid >= ?2 ORDER BY uid",
        )?;
        let uids = stmt
            .query_map(params![m.id, from], |r| r.get(0))?
            .collect::<Result<Vec<Uid>, _>>()?;
        Ok(uids)
    }

    /// Whether a session has a mailbox of the account selected (a live view pin).
    pub fn has_views(&mut self) -> bool {
        self.pins.values_mut().any(|p| p.oldest().is_some())
    }

    /// The mailbox's HIGHESTMODSEQ now, for a change notice; [`UNKNOWN_MODSEQ`] when it is
    /// gone or cannot be read (every session then looks).
    pub fn modseq_for_notice(&self, mailbox: MailboxId) -> ModSeq {
        by_id(&self.conn, mailbox).map_or(UNKNOWN_MODSEQ, |m| m.highest_modseq)
    }

    pub fn changes(
        &mut self,
        mailbox: MailboxId,
        uid_next: Uid,
        since: ModSeq,
        claim_recent: bool,
    ) -> Result<Outcome, Fail> {
        let Ok(m) = by_id(&self.conn, mailbox) else {
            return Ok((
                StorageReply::Changes(ChangeSet {
                    gone: true,
                    ..ChangeSet::default()
                }),
                Vec::new(),
            ));
        };
        let recent = if claim_recent {
            self.claim_recent(&m)?
        } else {
            Vec::new()
        };
        let added = scan(&self.conn, m.id, uid_next, Uid::MAX)?
            .iter()
            .map(Msg::state)
            .collect();
        let since_i = i64::try_from(since).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(&changed_since())?;
        let changed = stmt
            .query_map(params![m.id, since_i, uid_next], read_msg)?
            .map(|r| r.map_err(Fail::from).and_then(finish_msg))
            .map(|r| r.map(|m| m.state()))
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        // MemStore lists tombstones in the order the expunges happened.
        let mut stmt = self.conn.prepare_cached(
            "SELECT uid FROM expunged WHERE mailbox = ?1 AND modseq > ?2 AND uid < ?3 \
             ORDER BY modseq, uid",
        )?;
        let expunged = stmt
            .query_map(params![m.id, since_i, uid_next], |r| r.get(0))?
            .collect::<Result<Vec<Uid>, _>>()?;
        drop(stmt);
        let keywords = self.keyword_list(&m)?;
        Ok((
            StorageReply::Changes(ChangeSet {
                added,
                changed,
                expunged,
                recent,
                highest_modseq: m.highest_modseq,
                uid_next: m.uid_next,
                keywords,
                gone: false,
            }),
            Vec::new(),
        ))
    }

    pub fn append(
        &mut self,
        name: &str,
        messages: Vec<NewMessage>,
        now: i64,
        inline_limit: usize,
    ) -> Result<Outcome, Fail> {
        self.write(|tx, blobs, pending| {
            let mut m = selectable(tx, name)?;
            let mut keywords = Keywords::load(tx, m.id)?;
            let mut uids = Vec::with_capacity(messages.len());
            for message in messages {
                let msg = new_msg(tx, blobs, pending, message, now, inline_limit)?;
                uids.push(add(tx, &mut m, &mut keywords, &msg, now)?);
            }
            save(tx, &m)?;
            let id = MailboxId(m.id as u64);
            Ok((
                StorageReply::Appended {
                    uid_validity: m.uid_validity,
                    uids,
                    mailbox: id,
                },
                vec![id],
            ))
        })
    }

    /// `StorageOp::ImportMessages`, as `MemStore` does it: the mailbox is created first
    /// (its own transaction: an interrupted import leaves an empty mailbox, which the next
    /// run gives the source's UIDVALIDITY since it never held a message).
    pub fn import(
        &mut self,
        name: &str,
        (uid_validity, uid_next): (u32, Uid),
        messages: Vec<(Uid, NewMessage)>,
        now: i64,
        inline_limit: usize,
        max_mailboxes: usize,
    ) -> Result<Outcome, Fail> {
        let uids: Vec<Uid> = messages.iter().map(|(uid, _)| *uid).collect();
        if !by_name(&self.conn, name)?.is_some_and(|m| m.selectable) {
            // Checked before creating, so that a refusal changes nothing.
            import::check(0, 1, uid_validity, uids.iter().copied())?;
            self.create(name, None, now, max_mailboxes)?;
        }
        self.write(|tx, blobs, pending| {
            let mut m = selectable(tx, name)?;
            let fresh = import::check(m.uid_validity, m.uid_next, uid_validity, uids)?;
            let before = (m.uid_validity, m.uid_next);
            if fresh && m.uid_validity != uid_validity {
                m.uid_validity = uid_validity;
                tx.prepare_cached("UPDATE mailboxes SET uid_validity = ?2 WHERE id = ?1")?
                    .execute(params![m.id, uid_validity])?;
                // A name re-created later must still get a UIDVALIDITY it never had.
                let last = get_meta(tx, "last_uid_validity")?;
                set_meta(tx, "last_uid_validity", last.max(i64::from(uid_validity)))?;
            }
            let mut keywords = Keywords::load(tx, m.id)?;
            let mut uids = Vec::with_capacity(messages.len());
            for (uid, message) in messages {
                let msg = new_msg(tx, blobs, pending, message, now, inline_limit)?;
                // `add` gives out UIDNEXT: the checks above made this UID at least that.
                m.uid_next = uid;
                uids.push(add(tx, &mut m, &mut keywords, &msg, now)?);
            }
            m.uid_next = m.uid_next.max(uid_next);
            if uids.is_empty() && before != (m.uid_validity, m.uid_next) {
                m.bump();
            }
            save(tx, &m)?;
            let id = MailboxId(m.id as u64);
            Ok((
                StorageReply::Appended {
                    uid_validity: m.uid_validity,
                    uids,
                    mailbox: id,
                },
                vec![id],
            ))
        })
    }

    pub fn fetch(
        &mut self,
        mailbox: MailboxId,
        uids: &[Uid],
        want: FetchWant,
        mark_seen: bool,
    ) -> Result<Outcome, Fail> {
        // A request for more bodies than the cache holds (a whole large mailbox) would only
        // push out what clients keep asking for.
        let keep = uids.len() <= ANALYSED_ENTRIES;
        let load = |conn: &Connection,
                    blobs: &BlobDir,
                    cache: &mut AnalysedCache,
                    msg: &Msg|
         -> Result<_, Fail> {
            let cut = want.content && want.header_only;
            let info = if want.info || cut {
                Some(match cache.info(msg.body) {
                    Some(info) => info,
                    None => {
                        let (info, stored_len) = load_info(conn, msg.body)?;
                        let info = Arc::new(info);
                        if keep {
                            cache.keep_info(msg.body, &info, stored_len);
                        }
                        info
                    }
                })
            } else {
                None
            };
            let content = match (&info, want.content, cut) {
                (Some(info), true, true) => Some(match cache.head(msg.body) {
                    Some(head) => Body::Inline(head),
                    None => {
                        let head = load_head(conn, blobs, msg.body)?.header_only(&info.root);
                        if let (true, Body::Inline(octets)) = (keep, &head) {
                            cache.keep_head(msg.body, octets);
                        }
                        head
                    }
                }),
                (_, true, _) => Some(load_content(conn, blobs, msg.body)?),
                _ => None,
            };
            let stored = |conn: &Connection| match &msg.preview {
                Some(p) => Ok(Some(p.clone())),
                None => load_preview(conn, msg.body),
            };
            let preview = match want.preview {
                PreviewWant::No => None,
                PreviewWant::Lazy => stored(conn)?,
                PreviewWant::Always => Some(match stored(conn)? {
                    Some(p) => p,
                    // Stored before previews were (schema version 6): computed now.
                    None => compute_preview(conn, blobs, msg.body)?,
                }),
            };
            Ok(FetchedMessage {
                uid: msg.uid,
                flags: msg.flags.clone(),
                modseq: msg.modseq,
                internal_date: msg.date,
                size: msg.size,
                email_id: msg.email,
                thread_id: msg.thread,
                content,
                info: if want.info { info } else { None },
                preview,
                save_date: msg.save_date(),
                expunged: false,
            })
        };
        // Requested messages that were expunged but are kept for a session that has not been
        // told (`retained`), merged in request order as MemStore answers them.
        let retaining = i64::try_from(mailbox.0).is_ok_and(|id| self.retaining.contains(&id));
        let with_retained = |conn: &Connection,
                             blobs: &BlobDir,
                             cache: &mut AnalysedCache,
                             found: Vec<FetchedMessage>,
                             m: &Mailbox| {
            if found.len() == uids.len() || !retaining {
                return Ok(found);
            }
            let mut found = found.into_iter().peekable();
            let mut out = Vec::with_capacity(uids.len());
            for &uid in uids {
                if let Some(f) = found.next_if(|f| f.uid == uid) {
                    out.push(f);
                } else if let Some(msg) = lookup_retained(conn, m.id, uid)? {
                    let mut f = load(conn, blobs, cache, &msg)?;
                    f.expunged = true;
                    out.push(f);
                }
            }
            Ok::<_, Fail>(out)
        };
        if !mark_seen {
            let Account {
                conn,
                blobs,
                rows,
                analysed,
                ..
            } = self;
            // One read transaction for the whole request: in autocommit mode each lookup
            // took and released SQLite's WAL locks itself (system calls that were a tenth of
            // a 1,000-message FETCH ENVELOPE).
            let scope = Account::read_scope(conn)?;
            let tx: &Connection = scope.as_deref().unwrap_or(conn);
            let m = by_id(tx, mailbox)?;
            let mut out = Vec::with_capacity(uids.len());
            // A small request uses the cache only when it is current: bringing it up to date
            // could cost a scan, more than the few lookups (and this may be running on an
            // executor thread, see the runtime's `try_inline`).
            if uids.len() >= BULK_REQUEST || rows.is_current(&m) {
                let mut cached = rows.rows(tx, &m)?;
                let keep = matches!(cached, Rows::Cached(_));
                let mut added = 0usize;
                // MemStore's order: as requested, duplicates included.
                for uid in uids {
                    if let Ok(i) = cached.binary_search_by_key(uid, |r| r.uid) {
                        if let Some(msg) = cached.get_mut(i) {
                            // Kept with the row: a client lists the same newest mail again
                            // and again, and the lookup, copy and UTF-8 check of each stored
                            // preview were half of a repeated 1,000-message FETCH PREVIEW.
                            if keep
                                && msg.preview.is_none()
                                && !matches!(want.preview, PreviewWant::No)
                            {
                                let before = msg.loaded_bytes();
                                msg.preview = load_preview(tx, msg.body)?;
                                added =
                                    added.saturating_add(msg.loaded_bytes().saturating_sub(before));
                            }
                            out.push(load(tx, blobs, analysed, msg)?);
                        }
                    }
                }
                drop(cached);
                rows.charge(m.id, added);
            } else {
                for_each_msg(tx, m.id, uids, |conn, msg| {
                    out.push(load(conn, blobs, analysed, &msg)?);
                    Ok(())
                })?;
            }
            let out = with_retained(tx, blobs, analysed, out, &m)?;
            if let Some(scope) = scope {
                scope.commit()?;
            }
            return Ok((StorageReply::Fetched(out), Vec::new()));
        }
        let mut analysed = self.analysed.detach();
        let done = self.write(|tx, blobs, _| {
            let mut m = by_id(tx, mailbox)?;
            let mut out = Vec::with_capacity(uids.len());
            let mut changed = false;
            for_each_msg(tx, m.id, uids, |tx, mut msg| {
                if !msg.flags.has(SystemFlag::Seen) {
                    msg.flags.set(SystemFlag::Seen, true);
                    msg.modseq = m.bump();
                    update_flags(tx, m.id, &msg)?;
                    changed = true;
                }
                out.push(load(tx, blobs, &mut analysed, &msg)?);
                Ok(())
            })?;
            let out = with_retained(tx, blobs, &mut analysed, out, &m)?;
            let mut announce = Vec::new();
            if changed {
                save(tx, &m)?;
                announce.push(mailbox);
            }
            Ok((StorageReply::Fetched(out), announce))
        });
        self.analysed = analysed;
        done
    }

    /// SEARCH's first step, under the account's lock: decides every candidate that flags,
    /// sizes, dates, UIDs and the text index can decide, and lists the rest, whose text
    /// [`search_texts`] then loads a batch at a time.
    pub fn search_start(
        &mut self,
        mailbox: MailboxId,
        uids: &[Uid],
        query: &Query,
        now: i64,
        meter: &mut Meter<'_>,
    ) -> Result<SearchJob, Fail> {
        let m = by_id(&self.conn, mailbox)?;
        let mut job = SearchJob {
            found: Vec::new(),
            undecided: Vec::new(),
            text: TextNeed::None,
        };
        if uids.is_empty() {
            return Ok(job);
        }
        // MemStore's candidates are the messages whose UID is in `uids`; on a sorted list the
        // range below holds them all.
        let (lo, hi) = match (uids.first(), uids.last()) {
            (Some(&lo), Some(&hi)) if uids.is_sorted() => (lo, hi),
            _ => (0, Uid::MAX),
        };
        let Account {
            conn, rows: cache, ..
        } = self;
        let tx = conn.unchecked_transaction()?;
        let conn: &Connection = &tx;
        // Bodies not indexed yet (`fts_pending`): each may match any text criterion, so each
        // joins every superset the index gives, and results never depend on indexing progress.
        let mut unindexed: Option<Vec<i64>> = None;
        // Header criteria on From/To/Cc/Bcc/Subject (and sent dates) are decided on the
        // headlines, held with the cached rows: a scan of memory beats the trigram index,
        // whose candidates would each need their whole text loaded.
        let by_headline = query.needs_text() && headline::headline_suffices(query);
        job.text = if by_headline {
            TextNeed::None
        } else if search::needs_full_text(query) {
            TextNeed::Full
        } else if query.needs_text() {
            TextNeed::Sent
        } else {
            TextNeed::None
        };
        let mut rows = cache.range(conn, &m, lo, hi)?;
        let loaded = if by_headline {
            fill_headlines(conn, &mut rows, uids)?
        } else {
            0
        };
        let cached = matches!(rows, Rows::Cached(_));
        // Bodies are numbered as they arrive, so candidates (in UID order) are usually in body
        // order too, and the index's answers map onto them by binary search; otherwise
        // (COPY, MOVE) through `by_body`, sorted when first needed (a copy and a sort of
        // 100,000 pairs was a tenth of a rare-word SEARCH TEXT).
        let mut in_body_order = true;
        let mut last_body = i64::MIN;
        let candidates: Vec<&Msg> = requested(&rows, uids)
            .inspect(|c| {
                in_body_order &= last_body <= c.body;
                last_body = c.body;
            })
            .collect();
        let mut by_body: Vec<(i64, usize)> = Vec::new();
        let mut narrow = |leaf: &Query, meter: &mut Meter<'_>| -> Result<Option<Bits>, Fail> {
            if by_headline {
                return Ok(by_trigrams(&candidates, leaf, meter)?);
            }
            meter.charge(search::INDEX_QUERY_UNITS)?;
            let Some(mut bodies) = search::narrow(conn, leaf)? else {
                return Ok(None);
            };
            let unindexed = match &mut unindexed {
                Some(ids) => ids,
                None => {
                    let ids = search::unindexed(conn)?;
                    meter.charge(ids.len() as u64)?;
                    unindexed.insert(ids)
                }
            };
            bodies.extend(unindexed.iter().copied());
            let mut bits = Bits::none(candidates.len());
            if in_body_order {
                meter.charge(bodies.len() as u64 * 2)?;
                mark_bodies(&candidates, |i, c| (c.body, i), bodies, &mut bits);
                return Ok(Some(bits));
            }
            if by_body.is_empty() {
                by_body = candidates
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.body, i))
                    .collect();
                by_body.sort_unstable();
                meter.charge(by_body.len() as u64)?;
            }
            meter.charge(bodies.len() as u64 * 2 + by_body.len() as u64 / 64)?;
            mark_bodies(&by_body, |_, &(b, i)| (b, i), bodies, &mut bits);
            Ok(Some(bits))
        };
        let outcome = evaluate(query, &candidates, false, now, meter, &mut narrow)?;
        job.found = outcome
            .yes
            .iter()
            .filter_map(|i| candidates.get(i).map(|c| c.uid))
            .collect();
        if by_headline {
            // The rest is decided on the headlines, here: they are in memory like flags, and
            // listing the candidates as undecided would clone each row to match the same
            // headlines between batches (100,000 rows for a SEARCH FROM). The trigrams left
            // few of them to read.
            let maybe: Vec<&Msg> = outcome
                .maybe
                .iter()
                .filter_map(|i| candidates.get(i).copied())
                .collect();
            let mut no_index = |_: &Query, _: &mut Meter<'_>| Ok::<_, Fail>(None);
            let decided = evaluate(query, &maybe, true, now, meter, &mut no_index)?;
            job.found.extend(
                decided
                    .yes
                    .iter()
                    .filter_map(|i| maybe.get(i).map(|c| c.uid)),
            );
            job.found.sort_unstable();
        } else {
            job.undecided = outcome
                .maybe
                .iter()
                .filter_map(|i| candidates.get(i).map(|&c| c.clone()))
                .collect();
        }
        drop(candidates);
        drop(rows);
        if cached {
            cache.charge(m.id, loaded);
        }
        tx.commit()?;
        Ok(job)
    }

    /// Loads the text a search needs for some of its undecided messages, in one read
    /// transaction. A message whose body went meanwhile (expunged and reclaimed between two
    /// batches) is left out: it no longer exists.
    /// What SORT compares of the messages `uids` (ascending, found by a search): UID,
    /// INTERNALDATE, size and, when `fields` (a key other than ARRIVAL and SIZE), the body's
    /// [`SortFields`], kept with the cached rows once loaded from `sortkeys`.
    pub fn sort_inputs(
        &mut self,
        mailbox: MailboxId,
        uids: &[Uid],
        fields: bool,
    ) -> Result<Vec<SortInput>, Fail> {
        let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
            return Ok(Vec::new());
        };
        let m = by_id(&self.conn, mailbox)?;
        let Account {
            conn, rows: cache, ..
        } = self;
        let tx = conn.unchecked_transaction()?;
        let mut rows = cache.range(&tx, &m, lo, hi)?;
        let loaded = if fields {
            fill_sort_fields(&tx, &mut rows, uids)?
        } else {
            0
        };
        let cached = matches!(rows, Rows::Cached(_));
        let out = requested(&rows, uids)
            .map(|msg| {
                (
                    msg.uid,
                    to_unix(&msg.date),
                    msg.size,
                    msg.sort.clone().filter(|_| fields),
                )
            })
            .collect();
        drop(rows);
        if cached {
            cache.charge(m.id, loaded);
        }
        tx.commit()?;
        Ok(out)
    }

    /// What THREAD reads of the messages `uids` (ascending, found by a search): UID,
    /// INTERNALDATE and [`ThreadFields`], from the rows, the stored structures and at most
    /// [`threading::MAX_HEADER`] octets of each header (the analysed cache first).
    pub fn thread_inputs(
        &mut self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<(Uid, i64, ThreadFields)>, Fail> {
        let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
            return Ok(Vec::new());
        };
        let m = by_id(&self.conn, mailbox)?;
        let Account {
            conn,
            rows: cache,
            analysed,
            blobs,
            ..
        } = self;
        let rows = cache.range(conn, &m, lo, hi)?;
        let tx = conn.unchecked_transaction()?;
        let mut out = Vec::with_capacity(uids.len());
        for msg in requested(&rows, uids) {
            let info = match analysed.info(msg.body) {
                Some(info) => info,
                None => Arc::new(load_info(&tx, msg.body)?.0),
            };
            let head = match analysed.head(msg.body) {
                Some(head) => Body::Inline(head),
                None => load_head(&tx, blobs, msg.body)?.header_only(&info.root),
            };
            let header = head.read_range(0..head.len().min(threading::MAX_HEADER))?;
            out.push((
                msg.uid,
                to_unix(&msg.date),
                ThreadFields::of(&info.envelope, &header),
            ));
        }
        tx.commit()?;
        Ok(out)
    }

    pub fn search_texts<'m>(
        &self,
        need: TextNeed,
        msgs: &'m [Msg],
    ) -> Result<Vec<Searched<'m>>, Fail> {
        let tx = self.conn.unchecked_transaction()?;
        let mut out = Vec::with_capacity(msgs.len());
        for msg in msgs {
            let text = match need {
                TextNeed::Full => match load_text_if_any(&tx, msg.body)? {
                    Some(t) => Cow::Owned(t),
                    None => continue,
                },
                TextNeed::Sent => match load_sent(&tx, msg.body)? {
                    Some(sent) => Cow::Owned(SearchText {
                        sent,
                        ..SearchText::default()
                    }),
                    None => continue,
                },
                TextNeed::None => Cow::Borrowed(&NO_TEXT),
            };
            out.push(Searched { msg, text });
        }
        tx.commit()?;
        Ok(out)
    }

    pub fn set_flags(
        &mut self,
        mailbox: MailboxId,
        uids: &[Uid],
        mode: StoreMode,
        flags: &[Flag],
        unchanged_since: Option<ModSeq>,
    ) -> Result<Outcome, Fail> {
        self.write(|tx, _, _| {
            let mut m = by_id(tx, mailbox)?;
            let mut keywords: Option<Keywords> = None;
            let mut updated = Vec::new();
            let mut modified = Vec::new();
            let mut changed = false;
            for_each_msg(tx, m.id, uids, |tx, mut msg| {
                if unchanged_since.is_some_and(|u| msg.modseq > u) {
                    modified.push(msg.uid);
                    return Ok(());
                }
                let new = msg.flags.stored(mode, flags);
                if new != msg.flags {
                    msg.modseq = m.bump();
                    let kw = match &mut keywords {
                        Some(k) => k,
                        None => keywords.insert(Keywords::load(tx, m.id)?),
                    };
                    kw.note(tx, &new)?;
                    msg.flags = new;
                    update_flags(tx, m.id, &msg)?;
                    changed = true;
                }
                updated.push(msg.state());
                Ok(())
            })?;
            if changed {
                save(tx, &m)?;
            }
            Ok((StorageReply::FlagsSet { updated, modified }, vec![mailbox]))
        })
    }

    pub fn expunge(&mut self, mailbox: MailboxId, uids: Option<&[Uid]>) -> Result<Outcome, Fail> {
        let keep = self.viewed(mailbox);
        self.write_retaining(keep, |tx, _, _| {
            let mut m = by_id(tx, mailbox)?;
            let mut stmt = tx.prepare_cached(
                "SELECT uid FROM messages WHERE mailbox = ?1 AND flags & 8 != 0 ORDER BY uid",
            )?;
            let doomed: Vec<Uid> = stmt
                .query_map([m.id], |r| r.get(0))?
                .collect::<Result<Vec<Uid>, _>>()?
                .into_iter()
                .filter(|u| uids.is_none_or(|list| list.binary_search(u).is_ok()))
                .collect();
            drop(stmt);
            let removed = remove(tx, &mut m, &doomed, keep.is_some())?;
            let mut announce = Vec::new();
            if !removed.is_empty() {
                save(tx, &m)?;
                announce.push(mailbox);
            }
            Ok((StorageReply::Expunged(removed), announce))
        })
    }

    /// POP3's UPDATE: `seen` get `\Seen`, then `uids` go, in one transaction.
    pub fn remove(
        &mut self,
        mailbox: MailboxId,
        uids: &[Uid],
        seen: &[Uid],
    ) -> Result<Outcome, Fail> {
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        let mut seen = seen.to_vec();
        seen.sort_unstable();
        seen.dedup();
        seen.retain(|u| uids.binary_search(u).is_err());
        let keep = self.viewed(mailbox);
        self.write_retaining(keep, |tx, _, _| {
            let mut m = by_id(tx, mailbox)?;
            let mut changed = false;
            for_each_msg(tx, m.id, &seen, |tx, mut msg| {
                if !msg.flags.has(SystemFlag::Seen) {
                    msg.flags.set(SystemFlag::Seen, true);
                    msg.modseq = m.bump();
                    update_flags(tx, m.id, &msg)?;
                    changed = true;
                }
                Ok(())
            })?;
            let removed = remove(tx, &mut m, &uids, keep.is_some())?;
            // MemStore's remove advances MODSEQ for any non-empty request, found or not.
            save(tx, &m)?;
            let announce = if changed || !removed.is_empty() {
                vec![mailbox]
            } else {
                Vec::new()
            };
            Ok((StorageReply::Expunged(removed), announce))
        })
    }

    /// `StorageOp::Replace`: both checks before any write, then the append and the expunge
    /// in one transaction.
    pub fn replace(
        &mut self,
        (mailbox, uid): (MailboxId, Uid),
        name: &str,
        message: NewMessage,
        now: i64,
        inline_limit: usize,
    ) -> Result<Outcome, Fail> {
        let keep = self.viewed(mailbox);
        self.write_retaining(keep, |tx, blobs, pending| {
            let source = by_id(tx, mailbox)?;
            if lookup(tx, source.id, uid)?.is_none() {
                return Err(StorageError::NoSuchMessage.into());
            }
            let mut target = selectable(tx, name)?;
            let mut keywords = Keywords::load(tx, target.id)?;
            let msg = new_msg(tx, blobs, pending, message, now, inline_limit)?;
            let new = add(tx, &mut target, &mut keywords, &msg, now)?;
            save(tx, &target)?;
            // The target's row is saved: re-read the source in case it is the same one.
            let mut source = by_id(tx, mailbox)?;
            remove(tx, &mut source, &[uid], keep.is_some())?;
            save(tx, &source)?;
            let target_id = MailboxId(target.id as u64);
            let mut announce = vec![mailbox];
            if target_id != mailbox {
                announce.push(target_id);
            }
            Ok((
                StorageReply::Appended {
                    uid_validity: target.uid_validity,
                    uids: vec![new],
                    mailbox: target_id,
                },
                announce,
            ))
        })
    }

    pub fn copy_move(
        &mut self,
        mailbox: MailboxId,
        uids: &[Uid],
        target: &str,
        remove_source: bool,
        now: i64,
    ) -> Result<Outcome, Fail> {
        let keep = self.viewed(mailbox).filter(|_| remove_source);
        self.write_retaining(keep, |tx, _, _| {
            let mut source = by_id(tx, mailbox)?;
            let mut picked = Vec::new();
            for_each_msg(tx, source.id, uids, |_, msg| {
                picked.push(msg);
                Ok(())
            })?;
            let source_uids: Vec<Uid> = picked.iter().map(|m| m.uid).collect();
            // As in MemStore, the target may be the source itself.
            let mut target_box = selectable(tx, target)?;
            let mut keywords = Keywords::load(tx, target_box.id)?;
            let mut pairs = Vec::with_capacity(picked.len());
            for msg in &picked {
                pairs.push((msg.uid, add(tx, &mut target_box, &mut keywords, msg, now)?));
            }
            save(tx, &target_box)?;
            let target_id = MailboxId(target_box.id as u64);
            let mut announce = Vec::new();
            if remove_source {
                let mut sorted = source_uids;
                sorted.sort_unstable();
                // The target's row is saved: re-read the source in case it is the same one.
                source = by_id(tx, mailbox)?;
                remove(tx, &mut source, &sorted, keep.is_some())?;
                save(tx, &source)?;
                announce.push(mailbox);
            }
            announce.push(target_id);
            Ok((
                StorageReply::Copied {
                    uid_validity: target_box.uid_validity,
                    pairs,
                },
                announce,
            ))
        })
    }
}

// ---- helpers over a connection or transaction ----

/// The account's messages and octets, from the totals each mailbox row keeps: a cost of
/// the account's mailboxes, never of its messages.
fn totals(conn: &Connection) -> Result<AccountUsage, Fail> {
    let (messages, octets): (i64, i64) = conn
        .prepare_cached("SELECT COALESCE(SUM(messages), 0), COALESCE(SUM(size), 0) FROM mailboxes")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(AccountUsage {
        messages: u64::try_from(messages).unwrap_or(0),
        octets: u64::try_from(octets).unwrap_or(0),
    })
}

fn get_meta(conn: &Connection, key: &str) -> Result<i64, Fail> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn set_meta(conn: &Connection, key: &str, value: i64) -> Result<(), Fail> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![key, value])?;
    Ok(())
}

/// Creates a mailbox row, as `MemStore`'s `insert`: a new id (never reused) and a
/// UIDVALIDITY that is the clock, or one past the previous one if the clock has not moved
/// on, so a re-created name never repeats an old UIDVALIDITY, even across restarts.
fn insert_mailbox(
    conn: &Connection,
    name: &str,
    special_use: Option<SpecialUse>,
    now: i64,
) -> Result<i64, Fail> {
    let id = get_meta(conn, "last_mailbox_id")? + 1;
    set_meta(conn, "last_mailbox_id", id)?;
    let last = get_meta(conn, "last_uid_validity")?;
    let uid_validity = now.clamp(1, i64::from(u32::MAX)).max(last + 1);
    if uid_validity > i64::from(u32::MAX) {
        return Err(StorageError::Limit(LimitKind::UidValidity).into());
    }
    set_meta(conn, "last_uid_validity", uid_validity)?;
    conn.prepare_cached(
        "INSERT INTO mailboxes (id, name, special_use, selectable, uid_validity, uid_next, \
         highest_modseq, recent_claimed) VALUES (?1, ?2, ?3, 1, ?4, 1, 1, 1)",
    )?
    .execute(params![
        id,
        name,
        special_use.map(special_code),
        uid_validity
    ])?;
    Ok(id)
}

fn subscribe(conn: &Connection, name: &str, subscribed: bool) -> Result<(), Fail> {
    let sql = if subscribed {
        "INSERT OR IGNORE INTO subscriptions (name) VALUES (?1)"
    } else {
        "DELETE FROM subscriptions WHERE name = ?1"
    };
    conn.prepare_cached(sql)?.execute([name])?;
    Ok(())
}

const MAILBOX_COLUMNS: &str =
    "id, uid_validity, uid_next, highest_modseq, recent_claimed, selectable";

fn read_mailbox(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        id: r.get(0)?,
        uid_validity: r.get(1)?,
        uid_next: r.get(2)?,
        highest_modseq: r.get::<_, i64>(3)? as u64,
        recent_claimed: r.get(4)?,
        selectable: r.get(5)?,
    })
}

fn by_name(conn: &Connection, name: &str) -> Result<Option<Mailbox>, Fail> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE name = ?1"
        ))?
        .query_row([name], read_mailbox)
        .optional()?)
}

fn selectable(conn: &Connection, name: &str) -> Result<Mailbox, Fail> {
    match by_name(conn, name)? {
        Some(m) if m.selectable => Ok(m),
        _ => Err(StorageError::NoSuchMailbox.into()),
    }
}

fn by_id(conn: &Connection, id: MailboxId) -> Result<Mailbox, Fail> {
    let Ok(id) = i64::try_from(id.0) else {
        return Err(StorageError::NoSuchMailbox.into());
    };
    match conn
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?1"
        ))?
        .query_row([id], read_mailbox)
        .optional()?
    {
        Some(m) if m.selectable => Ok(m),
        _ => Err(StorageError::NoSuchMailbox.into()),
    }
}

fn has_children(conn: &Connection, name: &str) -> Result<bool, Fail> {
    // Names under "a/" sort between "a/" and "a0" ('0' follows '/').
    let low = format!("{name}{DELIMITER}");
    let high = format!("{name}{}", char::from(DELIMITER as u8 + 1));
    Ok(conn
        .prepare_cached("SELECT 1 FROM mailboxes WHERE name >= ?1 AND name < ?2 LIMIT 1")?
        .query_row(params![low, high], |_| Ok(()))
        .optional()?
        .is_some())
}

fn save(conn: &Connection, m: &Mailbox) -> Result<(), Fail> {
    conn.prepare_cached(
        "UPDATE mailboxes SET uid_next = ?2, highest_modseq = ?3, recent_claimed = ?4 \
         WHERE id = ?1",
    )?
    .execute(params![
        m.id,
        m.uid_next,
        m.highest_modseq as i64,
        m.recent_claimed
    ])?;
    Ok(())
}

/// Messages of a mailbox with `lo <= uid <= hi`, ascending.
pub(crate) fn scan(conn: &Connection, mailbox: i64, lo: Uid, hi: Uid) -> Result<Vec<Msg>, Fail> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MSG_COLUMNS} FROM messages WHERE mailbox = ?1 AND uid >= ?2 AND uid <= ?3 \
         ORDER BY uid"
    ))?;
    let rows = stmt.query_map(params![mailbox, lo, hi], read_msg)?;
    rows.map(|r| r.map_err(Fail::from).and_then(finish_msg))
        .collect()
}

fn lookup(conn: &Connection, mailbox: i64, uid: Uid) -> Result<Option<Msg>, Fail> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {MSG_COLUMNS} FROM messages WHERE mailbox = ?1 AND uid = ?2"
        ))?
        .query_row(params![mailbox, uid], read_msg)
        .optional()?;
    row.map(finish_msg).transpose()
}

/// Calls `f` for each existing message of `uids`, in request order (duplicates included, as
/// `MemStore` does). Each lookup happens when its turn comes, so `f` sees its own earlier
/// writes; a long strictly ascending request (no duplicates, so nothing to see) is read with
/// one range scan instead.
fn for_each_msg(
    conn: &Connection,
    mailbox: i64,
    uids: &[Uid],
    mut f: impl FnMut(&Connection, Msg) -> Result<(), Fail>,
) -> Result<(), Fail> {
    let ascending = uids.windows(2).all(|w| w[0] < w[1]);
    match (uids.first(), uids.last()) {
        (Some(&lo), Some(&hi)) if ascending && uids.len() >= SCAN_THRESHOLD => {
            let rows = scan(conn, mailbox, lo, hi)?;
            let mut want = uids.iter().peekable();
            for msg in rows {
                while want.next_if(|&&u| u < msg.uid).is_some() {}
                if want.next_if(|&&u| u == msg.uid).is_some() {
                    f(conn, msg)?;
                }
            }
        }
        _ => {
            for &uid in uids {
                if let Some(msg) = lookup(conn, mailbox, uid)? {
                    f(conn, msg)?;
                }
            }
        }
    }
    Ok(())
}

fn update_flags(conn: &Connection, mailbox: i64, msg: &Msg) -> Result<(), Fail> {
    conn.prepare_cached(
        "UPDATE messages SET flags = ?3, keywords = ?4, modseq = ?5 \
         WHERE mailbox = ?1 AND uid = ?2",
    )?
    .execute(params![
        mailbox,
        msg.uid,
        flag_bits(&msg.flags),
        keyword_blob(&msg.flags),
        msg.modseq as i64
    ])?;
    Ok(())
}

/// A message as APPEND gives it, its body stored, before `add` gives it a UID and MODSEQ.
fn new_msg(
    tx: &Connection,
    blobs: &BlobDir,
    pending: &mut Pending,
    message: NewMessage,
    now: i64,
    inline_limit: usize,
) -> Result<Msg, Fail> {
    let NewMessage {
        flags,
        internal_date,
        data,
    } = message;
    let size = data.len() as u64;
    let (email, thread) = stamp(tx, &data)?;
    let body = store_body(tx, blobs, pending, data, inline_limit)?;
    Ok(Msg {
        uid: 0,
        flags: Flags::from_flags(&flags),
        modseq: 0,
        date: internal_date.unwrap_or_else(|| from_unix(now, 0)),
        saved: Some(now),
        size,
        body,
        email,
        thread,
        headline: None,
        sort: None,
        preview: None,
    })
}

/// A new message's EMAILID (the next number) and THREADID (`tern_core::mail::thread`: the
/// conversation of the first of its identifiers `threads` knows, else its own), recording its
/// identifiers, as `MemStore` does.
fn stamp(tx: &Connection, message: &[u8]) -> Result<(EmailId, ThreadId), Fail> {
    let email = get_meta(tx, "last_email")?.saturating_add(1);
    set_meta(tx, "last_email", email)?;
    let keys = ThreadKeys::of(message);
    let mut lookup = tx.prepare_cached("SELECT thread FROM threads WHERE msgid = ?1")?;
    let thread = keys.thread(ThreadId(email as u64), |id| {
        lookup
            .query_row([id], |r| r.get::<_, i64>(0))
            .optional()
            .map(|t| t.map(|t| ThreadId(t as u64)))
    })?;
    drop(lookup);
    let mut record =
        tx.prepare_cached("INSERT OR IGNORE INTO threads (msgid, thread) VALUES (?1, ?2)")?;
    for id in keys.lookups() {
        record.execute(params![id, thread.0 as i64])?;
    }
    Ok((EmailId(email as u64), thread))
}

/// Version 7's step for messages stored before it: numbers in (mailbox, UID) order, expunged
/// ones kept for a session last (none survive a restart anyway), conversations from their
/// headers in that order.
fn number_stored_messages(tx: &Connection, blobs: &BlobDir) -> Result<(), Fail> {
    for table in ["messages", "retained"] {
        let rows: Vec<(i64, i64, i64)> = tx
            .prepare(&format!(
                "SELECT mailbox, uid, body FROM {table} ORDER BY mailbox, uid"
            ))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (mailbox, uid, body) in rows {
            // A body that cannot be read is numbered all the same, in a conversation of its own.
            let head = load_head(tx, blobs, body)
                .ok()
                .and_then(|b| b.to_bytes().ok())
                .unwrap_or_default();
            let (email, thread) = stamp(tx, &head)?;
            tx.prepare_cached(&format!(
                "UPDATE {table} SET email = ?3, thread = ?4 WHERE mailbox = ?1 AND uid = ?2"
            ))?
            .execute(params![mailbox, uid, email.0 as i64, thread.0 as i64])?;
        }
    }
    Ok(())
}

/// Saves a message (its body already stored) into the mailbox at `now` (its save date, RFC
/// 8514 §3: APPEND, COPY and MOVE alike) under the next UID and MODSEQ.
fn add(
    conn: &Connection,
    m: &mut Mailbox,
    keywords: &mut Keywords,
    msg: &Msg,
    now: i64,
) -> Result<Uid, Fail> {
    let uid = m.uid_next;
    if uid == Uid::MAX {
        return Err(StorageError::Limit(LimitKind::Uids).into());
    }
    m.uid_next += 1;
    let modseq = m.bump();
    keywords.note(conn, &msg.flags)?;
    conn.prepare_cached(
        "INSERT INTO messages \
         (mailbox, uid, modseq, flags, keywords, idate, zone, size, body, saved, email, thread) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        m.id,
        uid,
        modseq as i64,
        flag_bits(&msg.flags),
        keyword_blob(&msg.flags),
        pack_datetime(&msg.date),
        i64::from(msg.date.zone_minutes),
        msg.size as i64,
        msg.body,
        now,
        msg.email.0 as i64,
        msg.thread.0 as i64
    ])?;
    Ok(uid)
}

fn tombstone(conn: &Connection, mailbox: i64, uid: Uid, modseq: ModSeq) -> Result<(), Fail> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO expunged (mailbox, uid, modseq) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![mailbox, uid, modseq as i64])?;
    Ok(())
}

/// `MemStore`'s `remove`: one MODSEQ for the whole request (if non-empty), tombstones for the
/// messages that existed. `uids` is ascending. With `keep` (some session has the mailbox
/// selected) their rows move to `retained` instead of going.
fn remove(conn: &Connection, m: &mut Mailbox, uids: &[Uid], keep: bool) -> Result<Vec<Uid>, Fail> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let modseq = m.bump();
    let mut removed = Vec::new();
    for &uid in uids {
        if removed.last() == Some(&uid) {
            continue;
        }
        if keep {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO retained (mailbox, uid, expunged, modseq, flags, \
                 keywords, idate, zone, size, body, saved, email, thread) \
                 SELECT mailbox, uid, ?3, modseq, flags, keywords, idate, zone, size, body, \
                 saved, email, thread FROM messages WHERE mailbox = ?1 AND uid = ?2",
            )?
            .execute(params![m.id, uid, modseq as i64])?;
        }
        let deleted = conn
            .prepare_cached("DELETE FROM messages WHERE mailbox = ?1 AND uid = ?2")?
            .execute(params![m.id, uid])?;
        if deleted > 0 {
            tombstone(conn, m.id, uid, modseq)?;
            removed.push(uid);
        }
    }
    Ok(removed)
}

/// Removes every message of a mailbox without tombstones or MODSEQ (DELETE, as `MemStore`),
/// and whatever expunged ones it kept.
fn delete_all_messages(conn: &Connection, mailbox: i64) -> Result<(), Fail> {
    for sql in [
        "DELETE FROM messages WHERE mailbox = ?1",
        "DELETE FROM retained WHERE mailbox = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([mailbox])?;
    }
    Ok(())
}

/// Deletes the `retained` rows of `retaining` that every session with the mailbox selected
/// has been told of (all of them when none has it selected); returns the mailboxes left
/// with none.
fn release(
    conn: &Connection,
    pins: &mut HashMap<i64, Pins>,
    retaining: &HashSet<i64>,
) -> Result<Vec<i64>, Fail> {
    let mut emptied = Vec::new();
    for &id in retaining {
        match pins.get_mut(&id).and_then(Pins::oldest) {
            None => {
                conn.prepare_cached("DELETE FROM retained WHERE mailbox = ?1")?
                    .execute([id])?;
                emptied.push(id);
            }
            Some(told) => {
                conn.prepare_cached("DELETE FROM retained WHERE mailbox = ?1 AND expunged <= ?2")?
                    .execute(params![id, i64::try_from(told).unwrap_or(i64::MAX)])?;
                let left: bool = conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM retained WHERE mailbox = ?1)")?
                    .query_row([id], |r| r.get(0))?;
                if !left {
                    emptied.push(id);
                }
            }
        }
    }
    Ok(emptied)
}

/// An expunged message kept in `retained`.
fn lookup_retained(conn: &Connection, mailbox: i64, uid: Uid) -> Result<Option<Msg>, Fail> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {MSG_COLUMNS} FROM retained WHERE mailbox = ?1 AND uid = ?2"
        ))?
        .query_row(params![mailbox, uid], read_msg)
        .optional()?;
    row.map(finish_msg).transpose()
}

/// Drops up to `limit` bodies that no message refers to any more (the triggers keep the
/// counts); their files go once the transaction commits. A body's id is never reused
/// (AUTOINCREMENT), so index entries of a body not yet reclaimed can match no message.
fn reclaim(conn: &Connection, pending: &mut Pending, limit: usize) -> Result<usize, Fail> {
    let mut stmt =
        conn.prepare_cached("SELECT id, external FROM bodies WHERE refs = 0 LIMIT ?1")?;
    let dead = stmt
        .query_map([limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    drop(stmt);
    for &(id, external) in &dead {
        let unindexed = conn
            .prepare_cached("DELETE FROM fts_pending WHERE id = ?1")?
            .execute([id])?
            > 0;
        if unindexed {
            // Never indexed: a 'delete' of a row FTS5 does not hold would corrupt the index.
            pending.unqueued += 1;
        } else {
            // FTS5's 'delete' command with the values once indexed (re-derived from the stored
            // text, so identical): a quarter of the cost of a contentless_delete table's DELETE,
            // which measured about 1 ms per row in a 100,000-message account.
            let [subj, sender, hdr, body] = search::fts_row(load_text(conn, id)?);
            conn.prepare_cached(&format!(
                "INSERT INTO fts (fts, rowid, {}) VALUES ('delete', ?1, ?2, ?3, ?4, ?5)",
                search::FTS_COLUMNS
            ))?
            .execute(params![id, subj, sender, hdr, body])?;
        }
        for sql in [
            "DELETE FROM infos WHERE id = ?1",
            "DELETE FROM texts WHERE id = ?1",
            "DELETE FROM headlines WHERE id = ?1",
            "DELETE FROM previews WHERE id = ?1",
            "DELETE FROM sortkeys WHERE id = ?1",
            "DELETE FROM contents WHERE id = ?1",
            "DELETE FROM bodies WHERE id = ?1",
        ] {
            conn.prepare_cached(sql)?.execute([id])?;
        }
        if external {
            pending.doomed.push(id);
        }
    }
    Ok(dead.len())
}

/// zstd working memory not in use (see [`tern_core::store::stored::Zstd`]): taken for one
/// value and put back, at most [`ZSTD_KEPT`] kept. A pool rather than one per thread: a
/// compressor that has packed a 128 KiB body holds about half a megabyte, and requests run on
/// whichever thread leads an account's queue (smol's blocking pool may have hundreds).
static ZSTD_SPARE: Mutex<Vec<Zstd>> = Mutex::new(Vec::new());

/// Working memories kept for reuse: more than the threads that pack or unpack at once on
/// most machines; beyond it, a value's memory is made afresh (slower, never wrong).
const ZSTD_KEPT: usize = 16;

/// Runs `f` with zstd working memory from the pool.
fn with_zstd<T>(f: impl FnOnce(&mut Zstd) -> T) -> T {
    let mut zstd = crate::lock(&ZSTD_SPARE).pop().unwrap_or_default();
    let out = f(&mut zstd);
    let mut spare = crate::lock(&ZSTD_SPARE);
    if spare.len() < ZSTD_KEPT {
        spare.push(zstd);
    }
    out
}

/// [`tern_core::store::stored::pack`] with pooled zstd memory.
fn pack(data: &[u8], packing: Packing) -> Vec<u8> {
    with_zstd(|z| codec::pack(data, packing, z))
}

/// [`tern_core::store::stored::unpack`] with pooled zstd memory.
fn unpack(stored: Vec<u8>) -> Result<Bytes, CodecError> {
    with_zstd(|z| codec::unpack(stored, z))
}

/// How search texts are packed: zstd, 1.4 KB instead of LZ4's 2.1 KB on the realistic spool,
/// which brings the store's size per message under Dovecot's (issue 13). The price is paid by
/// a SEARCH that reads every text (a common word, a needle under three characters): 30 to 45%
/// longer than with LZ4 (20,000 messages: 259 against 202 ms for a common word), as unpacking
/// is most of its per-message cost; searches the index narrows read few texts and do not
/// notice. Headlines, read by the thousand for FROM/TO/SUBJECT, stay LZ4; inline bodies, read
/// one at a time, are zstd too. Rows written with LZ4 before stay readable (tagged per row).
const TEXT_PACKING: Packing = Packing::Dense;

/// Returns up to `pages` free pages (all when `None`) to the file system. The pragma frees one
/// page per step (each step yields an empty row), so it is stepped to its end: run once, as
/// `execute_batch` did here before, it freed a single page.
fn incremental_vacuum(conn: &Connection, pages: Option<i64>) -> rusqlite::Result<()> {
    let sql = match pages {
        Some(n) => format!("PRAGMA incremental_vacuum({n})"),
        None => "PRAGMA incremental_vacuum".to_string(),
    };
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// Stores a body, or finds the identical one already stored; returns its id. Everything
/// FETCH and SEARCH need is computed here, once.
///
/// Takes the octets by value and lets go of them as soon as they are stored, before the search
/// text is encoded: for a large message that is the difference between two and three copies
/// of it in memory at once.
fn store_body(
    conn: &Connection,
    blobs: &BlobDir,
    pending: &mut Pending,
    data: Bytes,
    inline_limit: usize,
) -> Result<i64, Fail> {
    let hash = body_hash(&data);
    let mut stmt = conn.prepare_cached("SELECT id FROM bodies WHERE hash = ?1 AND size = ?2")?;
    let same: Vec<i64> = stmt
        .query_map(params![hash, data.len() as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    drop(stmt);
    for id in same {
        let same = match load_content(conn, blobs, id)? {
            Body::Inline(stored) => stored == data,
            Body::Source(stored) => crate::blobs::same_content(&*stored, &data)?,
        };
        if same {
            return Ok(id);
        }
    }
    let Analysis {
        info,
        text,
        preview,
    } = analyze_all(&data);
    let external = data.len() > inline_limit;
    conn.prepare_cached(
        "INSERT INTO bodies (hash, size, refs, external, sent) VALUES (?1, ?2, 0, ?3, ?4)",
    )?
    .execute(params![
        hash,
        data.len() as i64,
        external,
        text.sent.map(codec::pack_date)
    ])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO infos (id, data) VALUES (?1, ?2)")?
        .execute(params![id, codec::encode_info(&info)])?;
    conn.prepare_cached("INSERT INTO previews (id, data) VALUES (?1, ?2)")?
        .execute(params![id, preview])?;
    insert_sort_fields(conn, id, &SortFields::of(&info.envelope))?;
    let head = info.root.header.end;
    drop(info);
    if external {
        // Written and fsync'd before the row can commit: a committed row has its file.
        pending.written.push(id);
        blobs.write(id, &data)?;
    } else {
        // Header and body in separate frames: a FETCH of headers unpacks only the first.
        let packed = with_zstd(|z| codec::pack_message(&data, head, z));
        conn.prepare_cached("INSERT INTO contents (id, data) VALUES (?1, ?2)")?
            .execute(params![id, packed])?;
    }
    drop(data);
    insert_headline(conn, id, &text)?;
    let row = pending.inline_fts.then(|| search::fts_row(text.clone()));
    conn.prepare_cached("INSERT INTO texts (id, data) VALUES (?1, ?2)")?
        .execute(params![id, pack(&codec::encode_text(text), TEXT_PACKING)])?;
    if let Some(row) = row {
        pending.fts.push((id, row));
    } else {
        conn.prepare_cached("INSERT INTO fts_pending (id) VALUES (?1)")?
            .execute([id])?;
        pending.queued += 1;
    }
    Ok(id)
}

/// Whether some body is unreferenced (through the partial index on `refs = 0`).
fn any_unreferenced(conn: &Connection) -> Result<bool, Fail> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM bodies WHERE refs = 0)")?
        .query_row([], |r| r.get(0))?)
}

/// Adds the transaction's FTS rows (see [`Pending::fts`]).
fn index_pending(conn: &Connection, pending: &mut Pending) -> Result<(), Fail> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO fts (rowid, {}) VALUES (?1, ?2, ?3, ?4, ?5)",
        search::FTS_COLUMNS
    ))?;
    for (id, [subj, sender, hdr, body]) in pending.fts.drain(..) {
        stmt.execute(params![id, subj, sender, hdr, body])?;
    }
    Ok(())
}

/// A body: inline ones from the database, files as an open handle (never read whole).
/// At least the header of a body (all of it unless it was packed in two frames); the caller
/// cuts it ([`Body::header_only`]).
fn load_head(conn: &Connection, blobs: &BlobDir, id: i64) -> Result<Body, Fail> {
    let inline: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM contents WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match inline {
        Some(stored) => Ok(Body::Inline(with_zstd(|z| codec::unpack_head(stored, z))?)),
        None => Ok(Body::Source(Arc::new(blobs.open(id)?))),
    }
}

fn load_content(conn: &Connection, blobs: &BlobDir, id: i64) -> Result<Body, Fail> {
    let inline: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM contents WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match inline {
        Some(stored) => Ok(Body::Inline(unpack(stored)?)),
        None => Ok(Body::Source(Arc::new(blobs.open(id)?))),
    }
}

/// A body's structure, and the length of its stored form.
fn load_info(
    conn: &Connection,
    id: i64,
) -> Result<(tern_core::mail::analyze::MessageInfo, usize), Fail> {
    let data: Vec<u8> = conn
        .prepare_cached("SELECT data FROM infos WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    let stored_len = data.len();
    Ok((codec::decode_info(Bytes::from(data))?, stored_len))
}

/// The `meta` key below which bodies may lack a preview (schema version 6).
const PREVIEW_BACKFILL: &str = "preview_backfill";
/// Bodies given their preview per indexer batch: each is parsed, a body of several megabytes
/// among them costs milliseconds.
const PREVIEW_BATCH: usize = 32;

/// Computes the previews of up to [`PREVIEW_BATCH`] bodies stored before previews were, the
/// newest first (the ones clients list), and moves the mark below them; returns whether some
/// may remain. Stops early, after one, when a client's request waits.
fn backfill_previews(
    conn: &Connection,
    blobs: &BlobDir,
    wanted: &dyn Fn() -> bool,
) -> Result<bool, Fail> {
    let mark = get_meta(conn, PREVIEW_BACKFILL)?;
    if mark <= 0 {
        return Ok(false);
    }
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM bodies WHERE id <= ?1 AND refs > 0 \
             AND id NOT IN (SELECT id FROM previews) ORDER BY id DESC LIMIT ?2",
        )?
        .query_map(params![mark, PREVIEW_BATCH as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut lowest = 0;
    for (done, &id) in ids.iter().enumerate() {
        if done > 0 && wanted() {
            break;
        }
        lowest = id;
        // A body that cannot be read (a damaged store) is passed over: FETCH reports it.
        if let Ok(preview) = compute_preview(conn, blobs, id) {
            conn.prepare_cached("INSERT INTO previews (id, data) VALUES (?1, ?2)")?
                .execute(params![id, &*preview])?;
        }
    }
    // Below the last one done, or nothing left when the query found fewer than asked.
    let next = if ids.len() < PREVIEW_BATCH && lowest == ids.last().copied().unwrap_or(0) {
        0
    } else {
        lowest - 1
    };
    set_meta(conn, PREVIEW_BACKFILL, next.max(0))?;
    Ok(next > 0)
}

/// A body's stored preview; `None` for a body stored before previews were.
fn load_preview(conn: &Connection, id: i64) -> Result<Option<Arc<str>>, Fail> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT data FROM previews WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(stored.map(Arc::from))
}

/// The preview of a body stored without one, from its octets (read whole: at most the
/// largest message the server accepts).
fn compute_preview(conn: &Connection, blobs: &BlobDir, id: i64) -> Result<Arc<str>, Fail> {
    let body = load_content(conn, blobs, id)?;
    let octets = body.read_range(0..body.len())?;
    Ok(Arc::from(preview(&octets)))
}

fn load_text(conn: &Connection, id: i64) -> Result<SearchText, Fail> {
    let data: Vec<u8> = conn
        .prepare_cached("SELECT data FROM texts WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    Ok(codec::decode_text(unpack(data)?)?)
}

fn insert_headline(conn: &Connection, id: i64, text: &SearchText) -> Result<(), Fail> {
    conn.prepare_cached("INSERT INTO headlines (id, data) VALUES (?1, ?2)")?
        .execute(params![
            id,
            pack(&codec::encode_text(headline::headline(text)), Packing::Fast)
        ])?;
    Ok(())
}

/// Loads the headlines the rows named in `uids` lack (rows cached earlier keep theirs);
/// returns the memory they take, for the cache budget.
fn fill_headlines(conn: &Connection, rows: &mut [Msg], uids: &[Uid]) -> Result<usize, Fail> {
    let mut stmt = conn.prepare_cached("SELECT data FROM headlines WHERE id = ?1")?;
    let mut added = 0usize;
    for msg in rows.iter_mut() {
        if msg.headline.is_some() || uids.binary_search(&msg.uid).is_err() {
            continue;
        }
        let data: Vec<u8> = stmt.query_row([msg.body], |r| r.get(0))?;
        msg.headline = Some(Headline::new(codec::decode_text(unpack(data)?)?));
        added = added.saturating_add(msg.loaded_bytes());
    }
    Ok(added)
}

/// Adds to `bits` the candidates of `bodies`, found in `sorted` (ascending by body; `key`
/// gives an entry's body and candidate from its position and itself) by binary search. A
/// body may have several candidates (COPYs share one), all found, and no other.
fn mark_bodies<T>(
    sorted: &[T],
    key: impl Fn(usize, &T) -> (i64, usize),
    bodies: impl IntoIterator<Item = i64>,
    bits: &mut Bits,
) {
    for body in bodies {
        let from = sorted.partition_point(|t| key(0, t).0 < body);
        for (j, t) in sorted.iter().enumerate().skip(from) {
            let (b, i) = key(j, t);
            if b != body {
                break;
            }
            bits.insert(i);
        }
    }
}

/// The candidates whose headline may satisfy the header criterion `leaf` (a superset, by
/// their [`headline::Trigrams`]), or `None` when the needle has no trigram to test. A candidate
/// without a headline stays in: it is decided on its text like any other.
fn by_trigrams(
    candidates: &[&Msg],
    leaf: &Query,
    meter: &mut Meter<'_>,
) -> Result<Option<Bits>, Halt> {
    let Query::Header(name, needle) = leaf else {
        return Ok(None);
    };
    let Some(want) = headline::Trigrams::of_needle(name, needle) else {
        return Ok(None);
    };
    // Four words compared per candidate, in order: a sixteenth of a criterion test.
    meter.charge(candidates.len() as u64 / 16 + 1)?;
    let mut bits = Bits::none(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        if c.headline
            .as_ref()
            .is_none_or(|h| h.trigrams.may_contain(&want))
        {
            bits.insert(i);
        }
    }
    Ok(Some(bits))
}

/// The rows (ascending by UID) whose UID is in `uids`: a merge of the two lists when `uids`
/// is sorted, as SEARCH's always is (a binary search per row was a third of a rare-word
/// SEARCH TEXT over 100,000 messages), else a binary search per row as `MemStore` does.
fn requested<'r>(rows: &'r [Msg], uids: &'r [Uid]) -> impl Iterator<Item = &'r Msg> + 'r {
    let sorted = uids.is_sorted();
    let mut next = 0;
    rows.iter().filter(move |msg| {
        if !sorted {
            return uids.binary_search(&msg.uid).is_ok();
        }
        while uids.get(next).is_some_and(|&u| u < msg.uid) {
            next += 1;
        }
        uids.get(next) == Some(&msg.uid)
    })
}

/// Loads the sort fields the rows named in `uids` lack (rows cached earlier keep theirs);
/// returns the memory they take, for the cache budget. Bodies are numbered as they arrive, so
/// a mailbox's usually lie close together: then one range scan of `sortkeys` reads them (a
/// lookup per body was most of a first SORT), else a lookup each.
fn fill_sort_fields(conn: &Connection, rows: &mut [Msg], uids: &[Uid]) -> Result<usize, Fail> {
    let mut wanted: Vec<(i64, usize)> = rows
        .iter()
        .enumerate()
        .filter(|(_, m)| m.sort.is_none() && uids.binary_search(&m.uid).is_ok())
        .map(|(i, m)| (m.body, i))
        .collect();
    wanted.sort_unstable();
    let mut added = 0usize;
    let mut keep = |msg: &mut Msg, fields: SortFields| {
        added = added.saturating_add(fields.bytes());
        msg.sort = Some(Arc::new(fields));
    };
    if let (Some(&(lo, _)), Some(&(hi, _))) = (wanted.first(), wanted.last()) {
        let span = usize::try_from(hi - lo).unwrap_or(usize::MAX);
        if wanted.len() >= SCAN_THRESHOLD && span <= wanted.len().saturating_mul(SORT_SCAN_SPREAD) {
            let mut stmt =
                conn.prepare_cached("SELECT id, data FROM sortkeys WHERE id BETWEEN ?1 AND ?2")?;
            let mut found = stmt.query(params![lo, hi])?;
            let mut next = wanted.iter().peekable();
            while let Some(row) = found.next()? {
                let id: i64 = row.get(0)?;
                while next.next_if(|&&(body, _)| body < id).is_some() {}
                let data = row.get_ref(1)?.as_blob().ok();
                // Copies in one mailbox share a body: each row gets the fields.
                while let Some(&(_, i)) = next.next_if(|&&(body, _)| body == id) {
                    let fields = data.and_then(SortFields::decode);
                    if let (Some(msg), Some(fields)) = (rows.get_mut(i), fields) {
                        keep(msg, fields);
                    }
                }
            }
        }
    }
    // Rows the scan did not fill (no scan, or a missing or damaged row).
    for (_, i) in wanted {
        if let Some(msg) = rows.get_mut(i).filter(|m| m.sort.is_none()) {
            let fields = load_sort_fields(conn, msg.body)?;
            keep(msg, fields);
        }
    }
    Ok(added)
}

/// A body's sort fields from `sortkeys` (schema version 8), or derived from its stored
/// structure if its row is missing or unreadable: a SORT is never refused for it.
fn load_sort_fields(conn: &Connection, id: i64) -> Result<SortFields, Fail> {
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM sortkeys WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    if let Some(fields) = data.as_deref().and_then(SortFields::decode) {
        return Ok(fields);
    }
    Ok(SortFields::of(&load_info(conn, id)?.0.envelope))
}

fn insert_sort_fields(conn: &Connection, id: i64, fields: &SortFields) -> Result<(), Fail> {
    conn.prepare_cached("INSERT INTO sortkeys (id, data) VALUES (?1, ?2)")?
        .execute(params![id, fields.encode()])?;
    Ok(())
}

/// Schema version 8's data step: the sort fields of every body stored before it, from its
/// stored structure.
fn derive_sort_fields(conn: &Connection) -> Result<(), Fail> {
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM infos ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in ids {
        let fields = SortFields::of(&load_info(conn, id)?.0.envelope);
        insert_sort_fields(conn, id, &fields)?;
    }
    Ok(())
}

/// Schema version 2's data step: a headline for every body stored before it.
fn derive_headlines(conn: &Connection) -> Result<(), Fail> {
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM texts ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in ids {
        insert_headline(conn, id, &load_text(conn, id)?)?;
    }
    Ok(())
}

/// A body's sent date (`Some(None)` if it has none), or `None` if the body is gone.
fn load_sent(conn: &Connection, id: i64) -> Result<Option<Option<Date>>, Fail> {
    let sent: Option<Option<i64>> = conn
        .prepare_cached("SELECT sent FROM bodies WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(sent
        .map(|s| s.map(codec::unpack_date).transpose())
        .transpose()?)
}

/// As [`load_text`], or `None` if the body is gone.
fn load_text_if_any(conn: &Connection, id: i64) -> Result<Option<SearchText>, Fail> {
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM texts WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    data.map(|d| Ok(codec::decode_text(unpack(d)?)?))
        .transpose()
}

/// The `metadata.mailbox` key of a GETMETADATA/SETMETADATA target: the mailbox's id (any
/// mailbox, `\Noselect` ones included: RFC 5464 §4.1), 0 for the account's own entries.
fn metadata_owner(conn: &Connection, mailbox: Option<&str>) -> Result<i64, Fail> {
    match mailbox {
        None => Ok(0),
        Some(name) => Ok(by_name(conn, name)?.ok_or(StorageError::NoSuchMailbox)?.id),
    }
}

#[cfg(test)]
mod search_tests {
    use super::*;

    fn row(uid: Uid, body: i64) -> Msg {
        Msg {
            uid,
            flags: Flags::default(),
            modseq: 1,
            date: from_unix(0, 0),
            saved: None,
            size: 1,
            body,
            email: EmailId(0),
            thread: ThreadId(0),
            headline: None,
            sort: None,
            preview: None,
        }
    }

    fn uids_of<'a>(rows: impl Iterator<Item = &'a Msg>) -> Vec<Uid> {
        rows.map(|r| r.uid).collect()
    }

    #[test]
    fn requested_rows_are_those_of_the_uids_sorted_or_not() {
        let rows: Vec<Msg> = [1, 2, 4, 7, 9].iter().map(|&u| row(u, 0)).collect();
        assert_eq!(uids_of(requested(&rows, &[2, 3, 7, 10])), vec![2, 7]);
        assert_eq!(uids_of(requested(&rows, &[0, 1, 9])), vec![1, 9]);
        assert_eq!(uids_of(requested(&rows, &[])), Vec::<Uid>::new());
        assert_eq!(
            uids_of(requested(&rows, &[1, 2, 4, 7, 9])),
            vec![1, 2, 4, 7, 9]
        );
        assert_eq!(uids_of(requested(&[], &[1, 2])), Vec::<Uid>::new());
        // Unsorted, as MemStore filters: a binary search per row.
        assert_eq!(
            uids_of(requested(&rows, &[1, 2, 4, 9, 7])),
            uids_of(
                rows.iter()
                    .filter(|r| [1, 2, 4, 9, 7].binary_search(&r.uid).is_ok())
            )
        );
    }

    #[test]
    fn bodies_map_to_all_their_candidates_and_no_other() {
        // Candidates in body order, a body shared by two (a COPY within the mailbox).
        let rows: Vec<Msg> = [(1, 10), (2, 11), (3, 11), (4, 12), (5, 14)]
            .iter()
            .map(|&(u, b)| row(u, b))
            .collect();
        let cands: Vec<&Msg> = rows.iter().collect();
        let mut bits = Bits::none(cands.len());
        mark_bodies(&cands, |i, c| (c.body, i), [11, 13, 14, 9], &mut bits);
        assert_eq!(bits.iter().collect::<Vec<_>>(), vec![1, 2, 4]);
        // The same through pairs sorted by body, candidates out of body order.
        let by_body = vec![(10, 3), (11, 0), (11, 4), (12, 1), (14, 2)];
        let mut bits = Bits::none(5);
        mark_bodies(&by_body, |_, &(b, i)| (b, i), [11, 14, 15], &mut bits);
        assert_eq!(bits.iter().collect::<Vec<_>>(), vec![0, 2, 4]);
    }
}
