//! The message rows of an account's recently used mailboxes, kept in memory between requests.
//!
//! SELECT, `FETCH 1:* (FLAGS)`, POP3's login and every SEARCH need each message's UID, flags,
//! MODSEQ, date and size. Read from SQLite that is a scan of the whole mailbox each time
//! (about 40 ms for 100,000 messages); from memory it is a copy. Dovecot gets the same effect
//! from its memory-mapped index.
//!
//! Coherence needs no invalidation hooks: every change to a mailbox's messages raises its
//! HIGHESTMODSEQ (MemStore's rule, which this store follows), and the rows of a change carry
//! that MODSEQ, or leave a tombstone with it. So an entry remembers the HIGHESTMODSEQ it was
//! read at; when the mailbox's row says otherwise, the entry catches up by reading just the
//! rows and tombstones above it. A transaction that rolls back changes nothing, so an entry is
//! never ahead of the database. Mailbox ids are never reused, so a deleted mailbox's entry can
//! only go stale, never wrong.
//!
//! Memory is bounded twice: each account keeps at most [`MAILBOXES_PER_ACCOUNT`] entries, and
//! all accounts of a store share a budget of bytes ([`Budget`]), counting each row and each
//! headline a search loaded (a hostile message's headline can be megabytes); a mailbox that
//! does not fit is read from SQLite as before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rusqlite::{params, Connection};
use tern_core::store::{ModSeq, Uid};

use crate::account::{finish_msg, read_msg, scan, Mailbox, Msg, MSG_COLUMNS};
use crate::error::Fail;

/// Mailboxes whose rows one account keeps.
const MAILBOXES_PER_ACCOUNT: usize = 4;

/// Bytes all accounts of a store may keep together by default: about 100 bytes a row and a
/// few hundred more for a loaded headline, so a million or so messages; enough for the hot
/// mailboxes of many users, never the whole disk in memory.
pub(crate) const DEFAULT_BUDGET_BYTES: usize = 256 << 20;

/// What one cached row costs, headline aside (the row itself, its UID in the listing, and
/// a margin for allocator overhead).
pub(crate) const ROW_BYTES: usize = std::mem::size_of::<Msg>() + std::mem::size_of::<Uid>() + 16;

/// Catching up reads the changed rows one by one through an index; past this share of the
/// mailbox a fresh scan is cheaper.
const CATCH_UP_LIMIT_DIVISOR: usize = 4;

/// The store-wide byte budget, shared by its accounts' caches.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: Arc<AtomicUsize>,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Bytes cached now, store-wide.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    pub(crate) fn give_back(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

struct Entry {
    mailbox: i64,
    /// The mailbox's HIGHESTMODSEQ when `rows` were last brought up to date.
    modseq: ModSeq,
    /// Ascending by UID.
    rows: Vec<Msg>,
    /// What SELECT needs, kept apart: gathering the UIDs out of 100,000 rows of 80-odd
    /// bytes each reads 8 MB and was most of a SELECT; this list is handed out shared.
    listing: Listing,
    /// What the entry holds, as charged to the budget.
    bytes: usize,
}

/// Every UID of a mailbox, ascending (shared with the sessions that selected it), and the
/// lowest one without `\Seen`.
pub(crate) type Listing = (Arc<Vec<Uid>>, Option<Uid>);

fn listing_of(rows: &[Msg]) -> Listing {
    (
        Arc::new(rows.iter().map(|r| r.uid).collect()),
        rows.iter().find(|r| !r.is_seen()).map(|r| r.uid),
    )
}

impl Entry {
    fn new(mailbox: i64, modseq: ModSeq, rows: Vec<Msg>) -> Entry {
        let listing = listing_of(&rows);
        let bytes = bytes_of(&rows);
        Entry {
            mailbox,
            modseq,
            rows,
            listing,
            bytes,
        }
    }
}

/// What rows cost in memory, loaded headlines and sort fields included.
fn bytes_of(rows: &[Msg]) -> usize {
    rows.iter()
        .map(|r| ROW_BYTES.saturating_add(r.loaded_bytes()))
        .fold(0, usize::saturating_add)
}

/// One account's cache.
pub(crate) struct RowCache {
    budget: Budget,
    /// Least recently used first.
    entries: Vec<Entry>,
}

/// A mailbox's rows: from the cache, or read for this request only.
pub(crate) enum Rows<'a> {
    /// Mutable so that lazily loaded parts (headlines) can be filled in place.
    Cached(&'a mut [Msg]),
    Read(Vec<Msg>),
}

impl std::ops::Deref for Rows<'_> {
    type Target = [Msg];
    fn deref(&self) -> &[Msg] {
        match self {
            Rows::Cached(rows) => rows,
            Rows::Read(rows) => rows,
        }
    }
}

impl std::ops::DerefMut for Rows<'_> {
    fn deref_mut(&mut self) -> &mut [Msg] {
        match self {
            Rows::Cached(rows) => rows,
            Rows::Read(rows) => rows,
        }
    }
}

impl RowCache {
    pub(crate) fn new(budget: Budget) -> RowCache {
        RowCache {
            budget,
            entries: Vec::new(),
        }
    }

    /// Forgets every entry (after a failed group commit, whose rows an entry may have read).
    pub(crate) fn clear(&mut self) {
        let held = self
            .entries
            .drain(..)
            .map(|e| e.bytes)
            .fold(0, usize::saturating_add);
        self.budget.give_back(held);
    }

    /// Every message row of `m` (read from the mailbox's row just now), ascending by UID.
    pub(crate) fn rows(&mut self, conn: &Connection, m: &Mailbox) -> Result<Rows<'_>, Fail> {
        if let Some(i) = self.entries.iter().position(|e| e.mailbox == m.id) {
            let mut entry = self.entries.remove(i);
            let before = entry.bytes;
            let stale = entry.modseq != m.highest_modseq;
            let caught_up = if stale {
                catch_up(conn, &mut entry, m)
            } else {
                Ok(true)
            };
            let current = match caught_up {
                Ok(current) => current,
                Err(e) => {
                    // The entry is dropped: so is its share of the budget.
                    self.budget.give_back(before);
                    return Err(e);
                }
            };
            if current && stale {
                entry.bytes = bytes_of(&entry.rows);
            }
            if current && self.resize(before, entry.bytes) {
                self.entries.push(entry);
                return Ok(Rows::Cached(self.last_rows()));
            }
            self.budget.give_back(before);
            if !current {
                // Too much changed to catch up (a STORE on most of the mailbox): read afresh,
                // keeping what was loaded of the bodies that stayed.
                let mut rows = scan(conn, m.id, 0, Uid::MAX)?;
                adopt_all(&mut rows, entry.rows);
                return Ok(self.insert(m, rows));
            }
        }
        let rows = scan(conn, m.id, 0, Uid::MAX)?;
        Ok(self.insert(m, rows))
    }

    /// Caches `rows`, read just now, as `m`'s entry, if the budget allows.
    fn insert(&mut self, m: &Mailbox, rows: Vec<Msg>) -> Rows<'_> {
        while self.entries.len() >= MAILBOXES_PER_ACCOUNT {
            self.evict_oldest();
        }
        let entry = Entry::new(m.id, m.highest_modseq, rows);
        let mut fits = self.budget.take(entry.bytes);
        while !fits && !self.entries.is_empty() {
            self.evict_oldest();
            fits = self.budget.take(entry.bytes);
        }
        if !fits {
            return Rows::Read(entry.rows);
        }
        self.entries.push(entry);
        Rows::Cached(self.last_rows())
    }

    /// Charges `added` bytes loaded into `mailbox`'s cached rows (the headlines a search
    /// filled in); an entry that no longer fits the budget is dropped.
    pub(crate) fn charge(&mut self, mailbox: i64, added: usize) {
        if added == 0 {
            return;
        }
        let Some(i) = self.entries.iter().position(|e| e.mailbox == mailbox) else {
            return;
        };
        if self.budget.take(added) {
            if let Some(entry) = self.entries.get_mut(i) {
                entry.bytes = entry.bytes.saturating_add(added);
            }
        } else {
            let gone = self.entries.remove(i);
            self.budget.give_back(gone.bytes);
        }
    }

    /// `m`'s UIDs and first unseen UID, for SELECT.
    pub(crate) fn listing(&mut self, conn: &Connection, m: &Mailbox) -> Result<Listing, Fail> {
        let uncached = match self.rows(conn, m)? {
            Rows::Cached(_) => None,
            Rows::Read(rows) => Some(listing_of(&rows)),
        };
        Ok(match uncached {
            Some(listing) => listing,
            None => self
                .entries
                .last()
                .map(|e| e.listing.clone())
                .unwrap_or_default(),
        })
    }

    /// Whether the cache holds `m`'s rows as they are now.
    pub(crate) fn is_current(&self, m: &Mailbox) -> bool {
        self.entries
            .iter()
            .any(|e| e.mailbox == m.id && e.modseq == m.highest_modseq)
    }

    /// Rows of `m` with UIDs in `lo..=hi`, for work that visits most of a mailbox (SEARCH).
    pub(crate) fn range(
        &mut self,
        conn: &Connection,
        m: &Mailbox,
        lo: Uid,
        hi: Uid,
    ) -> Result<Rows<'_>, Fail> {
        Ok(match self.rows(conn, m)? {
            Rows::Cached(rows) => Rows::Cached(slice(rows, lo, hi)),
            Rows::Read(mut rows) => {
                rows.retain(|r| (lo..=hi).contains(&r.uid));
                Rows::Read(rows)
            }
        })
    }

    fn last_rows(&mut self) -> &mut [Msg] {
        match self.entries.last_mut() {
            Some(e) => &mut e.rows[..],
            None => &mut [],
        }
    }

    /// Accounts for an entry that went from `before` to `after` bytes; false if it no longer
    /// fits the budget (then `before` is still counted).
    fn resize(&mut self, before: usize, after: usize) -> bool {
        if after <= before {
            self.budget.give_back(before - after);
            return true;
        }
        self.budget.take(after - before)
    }

    fn evict_oldest(&mut self) {
        if !self.entries.is_empty() {
            let gone = self.entries.remove(0);
            self.budget.give_back(gone.bytes);
        }
    }
}

impl Drop for RowCache {
    fn drop(&mut self) {
        let held = self
            .entries
            .iter()
            .map(|e| e.bytes)
            .fold(0, usize::saturating_add);
        self.budget.give_back(held);
    }
}

/// The tombstones above a MODSEQ, for [`catch_up`].
pub(crate) const CATCH_UP_EXPUNGED: &str =
    "SELECT uid FROM expunged WHERE mailbox = ?1 AND modseq > ?2 ORDER BY modseq LIMIT ?3";

/// Brings an entry up to `m`'s HIGHESTMODSEQ from the rows and tombstones above its own;
/// false when that would cost more than a fresh scan.
fn catch_up(conn: &Connection, entry: &mut Entry, m: &Mailbox) -> Result<bool, Fail> {
    let since = i64::try_from(entry.modseq).unwrap_or(i64::MAX);
    let limit = entry.rows.len() / CATCH_UP_LIMIT_DIVISOR + 64;
    // In MODSEQ order, so SQLite walks the (mailbox, modseq) index from `since` on; in UID
    // order it walked the whole mailbox by its primary key to find the few recent rows (the
    // expunged table grows with every expunge ever made: a tenth of the mixed workload's time
    // after one run).
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MSG_COLUMNS} FROM messages WHERE mailbox = ?1 AND modseq > ?2 \
         ORDER BY modseq LIMIT ?3"
    ))?;
    let changed = stmt
        .query_map(params![m.id, since, limit as i64 + 1], read_msg)?
        .map(|r| r.map_err(Fail::from).and_then(finish_msg))
        .collect::<Result<Vec<Msg>, Fail>>()?;
    drop(stmt);
    if changed.len() > limit {
        return Ok(false);
    }
    let mut stmt = conn.prepare_cached(CATCH_UP_EXPUNGED)?;
    let mut gone = stmt
        .query_map(params![m.id, since, limit as i64 + 1], |r| {
            r.get::<_, Uid>(0)
        })?
        .collect::<Result<Vec<Uid>, _>>()?;
    drop(stmt);
    gone.sort_unstable();
    if gone.len() > limit {
        return Ok(false);
    }
    if !gone.is_empty() {
        entry.rows.retain(|r| gone.binary_search(&r.uid).is_err());
    }
    for mut row in changed {
        match entry.rows.binary_search_by_key(&row.uid, |r| r.uid) {
            Ok(i) => {
                if let Some(slot) = entry.rows.get_mut(i) {
                    row.adopt_loaded(slot);
                    *slot = row;
                }
            }
            Err(i) => entry.rows.insert(i, row),
        }
    }
    entry.listing = listing_of(&entry.rows);
    entry.modseq = m.highest_modseq;
    Ok(true)
}

/// Gives each of `rows` what was loaded of its body in `old` (both ascending by UID).
fn adopt_all(rows: &mut [Msg], old: Vec<Msg>) {
    let mut old = old.into_iter().peekable();
    for row in rows.iter_mut() {
        while old.next_if(|o| o.uid < row.uid).is_some() {}
        if let Some(mut o) = old.next_if(|o| o.uid == row.uid) {
            row.adopt_loaded(&mut o);
        }
    }
}

/// The rows with UIDs in `lo..=hi`.
fn slice(rows: &mut [Msg], lo: Uid, hi: Uid) -> &mut [Msg] {
    let start = rows.partition_point(|r| r.uid < lo);
    let end = rows.partition_point(|r| r.uid <= hi);
    match rows.get_mut(start..end.max(start)) {
        Some(range) => range,
        None => &mut [],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_never_exceeded() {
        let budget = Budget::new(10);
        let other = budget.clone();
        assert!(budget.take(6));
        assert!(!other.take(5));
        assert!(other.take(4));
        assert_eq!(budget.used(), 10);
        other.give_back(4);
        budget.give_back(100);
        assert_eq!(budget.used(), 0);
    }
}
