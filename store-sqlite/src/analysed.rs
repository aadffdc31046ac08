//! The analysed structure and the header octets of recently fetched bodies, kept in memory.
//!
//! Mail clients fetch the same few things of the same messages again and again (ENVELOPE,
//! BODYSTRUCTURE, a few header fields of the newest mail), and each time the store read the
//! body's stored structure, decoded it into a fresh tree, unpacked the header, and the session
//! freed it all after encoding: under the mixed workload about a twentieth of the server's CPU.
//! Both are immutable for a body id, and ids are never reused (`AUTOINCREMENT`), so an entry
//! never needs invalidating: one whose body is gone is simply never asked for again and ages
//! out.
//!
//! Bounded twice, like the row cache: at most [`ENTRIES`] bodies per account, and every entry
//! is charged to the store-wide [`Budget`]; what does not fit is not kept.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use tern_core::mail::analyze::MessageInfo;

use crate::rows::Budget;

/// Bodies one account keeps: more than a client's listing of its newest mail.
pub(crate) const ENTRIES: usize = 512;

/// What a decoded structure costs in memory per octet of its stored form (the tree's strings,
/// vectors and their allocator overhead), measured on realistic mail: about 3.
const INFO_BYTES_PER_STORED_OCTET: usize = 4;

/// Fixed cost of an entry beside its contents.
const ENTRY_BYTES: usize = 128;

struct Entry {
    info: Arc<MessageInfo>,
    /// The header octets, once a FETCH of headers loaded them.
    head: Option<Bytes>,
    /// What the entry holds, as charged to the budget.
    bytes: usize,
}

/// One account's cache.
pub(crate) struct AnalysedCache {
    budget: Budget,
    entries: HashMap<i64, Entry>,
    /// Oldest first; evicted in that order (a listing refetched keeps its bodies young enough).
    order: VecDeque<i64>,
}

impl AnalysedCache {
    pub(crate) fn new(budget: Budget) -> AnalysedCache {
        AnalysedCache {
            budget,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The structure of body `id`, if kept.
    pub(crate) fn info(&self, id: i64) -> Option<Arc<MessageInfo>> {
        self.entries.get(&id).map(|e| e.info.clone())
    }

    /// The header octets of body `id`, if kept.
    pub(crate) fn head(&self, id: i64) -> Option<Bytes> {
        self.entries.get(&id).and_then(|e| e.head.clone())
    }

    /// Keeps the structure of body `id`, decoded from `stored_len` stored octets.
    pub(crate) fn keep_info(&mut self, id: i64, info: &Arc<MessageInfo>, stored_len: usize) {
        if self.entries.contains_key(&id) {
            return;
        }
        let bytes = stored_len
            .saturating_mul(INFO_BYTES_PER_STORED_OCTET)
            .saturating_add(ENTRY_BYTES);
        if !self.make_room(bytes) {
            return;
        }
        self.entries.insert(
            id,
            Entry {
                info: info.clone(),
                head: None,
                bytes,
            },
        );
        self.order.push_back(id);
    }

    /// Keeps the header octets of body `id`, whose structure is kept. `head` is copied when it
    /// is a view of a larger buffer, so that no whole message stays alive through it.
    pub(crate) fn keep_head(&mut self, id: i64, head: &Bytes) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        if entry.head.is_some() || !self.budget.take(head.len()) {
            return;
        }
        let head = Bytes::copy_from_slice(head);
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.bytes = entry.bytes.saturating_add(head.len());
            entry.head = Some(head);
        }
    }

    /// Evicts the oldest entries until one more of `bytes` fits; false if the budget has no
    /// room even so (other accounts hold it).
    fn make_room(&mut self, bytes: usize) -> bool {
        while self.entries.len() >= ENTRIES {
            if !self.evict_oldest() {
                break;
            }
        }
        loop {
            if self.budget.take(bytes) {
                return true;
            }
            if !self.evict_oldest() {
                return false;
            }
        }
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some(id) = self.order.pop_front() {
            if let Some(entry) = self.entries.remove(&id) {
                self.budget.give_back(entry.bytes);
                return true;
            }
        }
        false
    }

    /// The cache's contents, leaving this one empty (to lend them to a closure that cannot
    /// borrow the account).
    pub(crate) fn detach(&mut self) -> AnalysedCache {
        AnalysedCache {
            budget: self.budget.clone(),
            entries: std::mem::take(&mut self.entries),
            order: std::mem::take(&mut self.order),
        }
    }

    /// Empties the cache.
    pub(crate) fn clear(&mut self) {
        let bytes = self
            .entries
            .values()
            .map(|e| e.bytes)
            .fold(0, usize::saturating_add);
        self.budget.give_back(bytes);
        self.entries.clear();
        self.order.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Drop for AnalysedCache {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::mail::analyze::analyze;

    fn info() -> Arc<MessageInfo> {
        Arc::new(analyze(b"Subject: hi\r\nFrom: a@b.example\r\n\r\nbody\r\n"))
    }

    #[test]
    fn keeps_at_most_its_entries_and_gives_back_what_it_evicts() {
        let budget = Budget::new(usize::MAX / 2);
        let mut cache = AnalysedCache::new(budget.clone());
        let i = info();
        for id in 0..(ENTRIES as i64 + 10) {
            cache.keep_info(id, &i, 100);
        }
        assert_eq!(cache.len(), ENTRIES);
        assert!(cache.info(0).is_none(), "the oldest went first");
        assert!(cache.info(ENTRIES as i64 + 9).is_some());
        assert_eq!(
            budget.used(),
            ENTRIES * (100 * INFO_BYTES_PER_STORED_OCTET + ENTRY_BYTES)
        );
        drop(cache);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn keeps_nothing_beyond_the_budget() {
        let budget = Budget::new(1000);
        let mut cache = AnalysedCache::new(budget.clone());
        let i = info();
        cache.keep_info(1, &i, 10_000);
        assert!(cache.info(1).is_none());
        cache.keep_info(2, &i, 100);
        assert!(cache.info(2).is_some());
        // A second entry evicts the first to fit.
        cache.keep_info(3, &i, 100);
        assert!(cache.info(2).is_none() && cache.info(3).is_some());
        assert!(budget.used() <= 1000);
    }

    #[test]
    fn a_kept_header_is_a_copy_of_its_own() {
        let budget = Budget::new(usize::MAX / 2);
        let mut cache = AnalysedCache::new(budget.clone());
        let whole = Bytes::from(vec![b'x'; 10_000]);
        let head = whole.slice(..100);
        cache.keep_head(7, &head);
        assert!(
            cache.head(7).is_none(),
            "only for a body whose structure is kept"
        );
        cache.keep_info(7, &info(), 100);
        cache.keep_head(7, &head);
        let kept = cache.head(7).unwrap();
        assert_eq!(kept, head);
        drop(whole);
        drop(head);
        assert_eq!(kept.len(), 100);
        cache.clear();
        assert_eq!(budget.used(), 0);
    }
}
