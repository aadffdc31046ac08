//! The account database's schema and its forward migrations.
//!
//! `PRAGMA user_version` holds the schema version. `MIGRATIONS[i]` takes a database from
//! version `i` to `i + 1`, so version 0 (a new, empty file) runs them all. A database whose
//! version is above [`SCHEMA_VERSION`] was written by a newer tern and is refused rather
//! than guessed at.

/// The version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Each step's SQL, applied in one transaction together with the new `user_version`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

/// Version 1.
///
/// - `meta`: counters that must never go backwards (mailbox ids, UIDVALIDITY).
/// - `mailboxes`: one row per name; `messages`/`size`/`unseen`/`deleted` are kept by triggers
///   so STATUS and quota never scan messages.
/// - `messages`: the per-mailbox view (flags, MODSEQ, internal date); the bytes and everything
///   derived from them live once per distinct body, shared by COPY and duplicates.
/// - `expunged`: tombstones (UID, MODSEQ of the expunge) for QRESYNC-style catch-up.
/// - `bodies` (+ `infos`, `texts`, `contents`, `fts`): content-derived data, reference
///   counted by trigger. `contents` holds bodies up to the inline limit; larger ones are files.
///   A body whose count reaches zero is reclaimed later, in batches, by the background
///   indexer (see `reclaim`; before version 4, a few at a time by later writes), so an
///   EXPUNGE of thousands costs only its message rows.
///   Split into tables so a refcount update never rewrites a large value. `texts`,
///   `contents` and `headlines` values carry a one-byte tag: raw, LZ4, or (from version 5)
///   zstd (`tern_core::store::stored::pack`).
const V1: &str = r#"
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    special_use INTEGER,
    selectable INTEGER NOT NULL,
    uid_validity INTEGER NOT NULL,
    uid_next INTEGER NOT NULL,
    highest_modseq INTEGER NOT NULL,
    recent_claimed INTEGER NOT NULL,
    messages INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    unseen INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE subscriptions (
    name TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE keywords (
    mailbox INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    name BLOB NOT NULL,
    PRIMARY KEY (mailbox, seq)
) WITHOUT ROWID;

CREATE TABLE messages (
    mailbox INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    keywords BLOB,
    idate INTEGER NOT NULL,
    zone INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body INTEGER NOT NULL,
    PRIMARY KEY (mailbox, uid)
) WITHOUT ROWID;
CREATE INDEX messages_modseq ON messages (mailbox, modseq);
CREATE INDEX messages_deleted ON messages (mailbox, uid) WHERE flags & 8 != 0;

CREATE TABLE expunged (
    mailbox INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged (mailbox, modseq);

CREATE TABLE bodies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash INTEGER NOT NULL,
    size INTEGER NOT NULL,
    refs INTEGER NOT NULL,
    external INTEGER NOT NULL,
    sent INTEGER
);
CREATE INDEX bodies_hash ON bodies (hash);
CREATE INDEX bodies_unreferenced ON bodies (id) WHERE refs = 0;
CREATE TABLE infos (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE texts (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE contents (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE VIRTUAL TABLE fts USING fts5 (
    subj, sender, hdr, body,
    content = '', detail = column,
    tokenize = 'trigram case_sensitive 1'
);

CREATE TRIGGER messages_insert AFTER INSERT ON messages BEGIN
    UPDATE mailboxes SET
        messages = messages + 1,
        size = size + NEW.size,
        unseen = unseen + ((NEW.flags & 1) = 0),
        deleted = deleted + ((NEW.flags & 8) != 0)
    WHERE id = NEW.mailbox;
    UPDATE bodies SET refs = refs + 1 WHERE id = NEW.body;
END;
CREATE TRIGGER messages_delete AFTER DELETE ON messages BEGIN
    UPDATE mailboxes SET
        messages = messages - 1,
        size = size - OLD.size,
        unseen = unseen - ((OLD.flags & 1) = 0),
        deleted = deleted - ((OLD.flags & 8) != 0)
    WHERE id = OLD.mailbox;
    UPDATE bodies SET refs = refs - 1 WHERE id = OLD.body;
END;
CREATE TRIGGER messages_flags AFTER UPDATE OF flags ON messages BEGIN
    UPDATE mailboxes SET
        unseen = unseen + ((NEW.flags & 1) = 0) - ((OLD.flags & 1) = 0),
        deleted = deleted + ((NEW.flags & 8) != 0) - ((OLD.flags & 8) != 0)
    WHERE id = NEW.mailbox;
END;
"#;

/// Version 2: `headlines`, per body, the few header fields searches name most (From, To, Cc,
/// Bcc, Subject) and the sent date, encoded as a small `SearchText` (`tern_core::store::headline`).
/// SEARCH FROM and its kind read these from the row cache instead of every message's whole
/// text. The rows for bodies stored before this version are derived from `texts` by the
/// migration step in `Account::migrate`.
const V2: &str = r#"
CREATE TABLE headlines (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
"#;

/// Version 3: `retained`, expunged messages' rows kept while a session that has not been
/// told of the expunge may still FETCH them (RFC 2180 §4.1.2; `tern_core::store::pins`).
/// Each row holds a reference on its body, kept by trigger like a message's. Rows live only
/// as long as the sessions that need them: the account deletes them all when it opens.
const V3: &str = r#"
CREATE TABLE retained (
    mailbox INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    expunged INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    keywords BLOB,
    idate INTEGER NOT NULL,
    zone INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body INTEGER NOT NULL,
    PRIMARY KEY (mailbox, uid)
) WITHOUT ROWID;
CREATE TRIGGER retained_insert AFTER INSERT ON retained BEGIN
    UPDATE bodies SET refs = refs + 1 WHERE id = NEW.body;
END;
CREATE TRIGGER retained_delete AFTER DELETE ON retained BEGIN
    UPDATE bodies SET refs = refs - 1 WHERE id = OLD.body;
END;
"#;

/// Version 4: `fts_pending`, the bodies whose FTS row is not written yet. APPEND queues a
/// body here inside its transaction instead of indexing it; the store's background indexer
/// (`indexer.rs`) writes the rows in batches and empties the queue, durably, so work queued
/// before a crash is finished after it. SEARCH treats every body still queued as a possible
/// match of any text criterion, so answers never depend on how far indexing has got. Bodies
/// stored before this version were all indexed at APPEND: the queue starts empty.
const V4: &str = r#"
CREATE TABLE fts_pending (id INTEGER PRIMARY KEY);
"#;

/// Version 5: inline bodies (`contents`) are written with zstd instead of LZ4 (a third smaller
/// on the realistic spool; `tern_core::store::stored::Packing`). No table changes and no
/// rewrite: each value's tag byte says how it was packed, so the rows of earlier versions are
/// read as they are, and new rows get the new form. The step exists so that an older tern,
/// which cannot unpack zstd, refuses the database as newer instead of reporting its new rows
/// as damaged.
const V5: &str = "";

/// Version 6: PREVIEW (RFC 8970) and SAVEDATE (RFC 8514).
///
/// - `previews`: per body, its preview (`tern_core::mail::preview`, at most 200 characters of
///   UTF-8), computed with the rest of the analysis when the body is stored. Bodies stored
///   before this version have no row: the background indexer fills theirs in, newest first,
///   a batch at a time, below the `preview_backfill` mark in `meta` (the highest body id at
///   the step; 0 once done), so the step itself rewrites nothing. Until then a FETCH PREVIEW
///   computes a missing one from the body, and `PREVIEW (LAZY)` answers NIL for it.
/// - `messages.saved`, `retained.saved`: the save date, Unix seconds, stamped by every write
///   that puts a message into a mailbox (APPEND, COPY, MOVE, RENAME INBOX, import). NULL
///   for messages saved before this version, which answer their internal date instead.
const V6: &str = r#"
CREATE TABLE previews (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
ALTER TABLE messages ADD COLUMN saved INTEGER;
ALTER TABLE retained ADD COLUMN saved INTEGER;
INSERT OR REPLACE INTO meta (key, value)
    SELECT 'preview_backfill', COALESCE(MAX(id), 0) FROM bodies;
"#;

/// Version 7: RFC 8474 object identifiers (`tern_core::store::objectid`).
///
/// - `messages.email`, `messages.thread` (and the same in `retained`): each message's EMAILID
///   and THREADID numbers, given when APPEND (or an import) stores it and copied with the row
///   by COPY, MOVE and RENAME of INBOX.
/// - `threads`: message identifiers (Message-ID, In-Reply-To, References) to the conversation
///   they belong to, so that a reply finds its parent's THREADID (`tern_core::mail::thread`).
///   Kept when messages go: a reply to a deleted message still joins its conversation.
/// - `meta.object_key`: the account's secret for the identifier strings, drawn once here from
///   SQLite's random generator; `meta.last_email`, the last EMAILID number given.
///
/// Messages stored before this version get numbers in (mailbox, UID) order and their
/// conversations from their headers, in that order, by the migration step in
/// `Account::migrate`, before any client can see them.
const V7: &str = r#"
ALTER TABLE messages ADD COLUMN email INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread INTEGER NOT NULL DEFAULT 0;
ALTER TABLE retained ADD COLUMN email INTEGER NOT NULL DEFAULT 0;
ALTER TABLE retained ADD COLUMN thread INTEGER NOT NULL DEFAULT 0;
CREATE TABLE threads (
    msgid TEXT PRIMARY KEY,
    thread INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('object_key', random());
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_email', 0);
"#;

/// Version 8: `sortkeys`, per body, what SORT (RFC 5256, RFC 5957) compares of it beside
/// INTERNALDATE and size (`tern_core::store::sort::SortFields`: sent date, base subject,
/// first From/To/Cc addr-mailbox, DISPLAYFROM/DISPLAYTO, already case-mapped), encoded by
/// `SortFields::encode`. Written when the body is stored, reclaimed with it, so that SORT
/// never decodes a stored structure (`infos`). The rows for bodies stored before this version
/// are derived from `infos` by the migration step in `Account::migrate`; a row missing or
/// unreadable all the same is derived again from `infos` when a SORT needs it.
const V8: &str = r#"
CREATE TABLE sortkeys (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
"#;

/// Version 9: METADATA (RFC 5464).
///
/// - `metadata`: each entry's canonical name (`tern_core::store::metadata::entry_name`) and
///   value, keyed by mailbox id, 0 for the account's own (server) entries. Keyed by id, so an
///   entry follows its mailbox through RENAME; DELETE removes a mailbox's entries, and RENAME
///   of INBOX copies INBOX's to the new mailbox.
const V9: &str = r#"
CREATE TABLE metadata (
    mailbox INTEGER NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (mailbox, name)
) WITHOUT ROWID;
"#;
