//! A session's view of its selected mailbox: the sequence-number ↔ UID map as this session
//! was told it, its `\Recent` messages, and what it has yet to be told.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use std::ops::Range;

use crate::imap::types::{SeqNo, SeqRange, SequenceSet};
use crate::store::query::UidSet;
use crate::store::{MailboxId, ModSeq, ObjectKey, Snapshot, Uid, ViewPin};

#[derive(Debug)]
pub(super) struct View {
    pub(super) id: MailboxId,
    /// The mailbox's canonical name, as selected (and renamed by this session since).
    pub(super) name: String,
    /// Its UIDVALIDITY.
    pub(super) uid_validity: u32,
    /// The account's key for EMAILID and THREADID strings (RFC 8474).
    pub(super) object_key: ObjectKey,
    pub(super) read_only: bool,
    /// UIDs in sequence order: `uids[n - 1]` is message n. Includes messages expunged by
    /// others but not yet announced. Shared with the store's copy (and other sessions) until
    /// this view changes (`Arc::make_mut`).
    pub(super) uids: Arc<Vec<Uid>>,
    /// This session's `\Recent` messages, ascending (IMAP4rev1 only).
    pub(super) recent: Vec<Uid>,
    /// UIDs below this are in (or were removed from) `uids`.
    pub(super) uid_next: Uid,
    /// The MODSEQ the view is synchronised to.
    pub(super) modseq: ModSeq,
    /// Keywords defined in the mailbox, as last announced in FLAGS.
    pub(super) keywords: Vec<Bytes>,
    /// Expunged elsewhere, not yet announced (EXPUNGE must wait, RFC 9051 §7.5.1).
    pub(super) pending_expunges: Vec<Uid>,
    /// The view's MODSEQ when the first of `pending_expunges` was held back: a client told
    /// more (a HIGHESTMODSEQ) could skip those expunges when it resynchronises.
    pub(super) expunge_floor: ModSeq,
    /// Flag changes this session made and already reported, by UID and MODSEQ, so the next
    /// synchronisation does not repeat them.
    pub(super) own_changes: HashMap<Uid, ModSeq>,
    /// SEARCHRES `$` (RFC 5182).
    pub(super) saved: Option<Vec<Uid>>,
    /// Tells the store which expunges this session has announced, so that it keeps the
    /// messages of the others readable meanwhile; dropped with the view.
    pub(super) pin: ViewPin,
}

/// A set that names messages that do not exist (RFC 9051 §6.4: BAD for sequence numbers).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct InvalidSet;

impl View {
    /// The view a mailbox's opening gives: `\Recent` only for IMAP4rev1 (RFC 9051 §2.3.2).
    pub(super) fn of(snap: Snapshot, name: String, read_only: bool, rev1: bool) -> View {
        View {
            id: snap.id,
            name,
            uid_validity: snap.uid_validity,
            object_key: snap.object_key,
            read_only,
            uids: snap.uids,
            recent: if rev1 { snap.recent } else { Vec::new() },
            uid_next: snap.uid_next,
            modseq: snap.highest_modseq,
            keywords: snap.keywords,
            pending_expunges: Vec::new(),
            expunge_floor: snap.highest_modseq,
            own_changes: HashMap::new(),
            saved: None,
            pin: snap.pin,
        }
    }

    /// Message number of a UID.
    pub(super) fn seq(&self, uid: Uid) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    /// Message number of a UID expected at index `hint` (where the previous one ended), found
    /// without a search when it is there.
    pub(super) fn seq_near(&self, uid: Uid, hint: usize) -> Option<u32> {
        match self.uids.get(hint) {
            Some(&at) if at == uid => Some(hint as u32 + 1),
            _ => self.seq(uid),
        }
    }

    pub(super) fn is_recent(&self, uid: Uid) -> bool {
        self.recent.binary_search(&uid).is_ok()
    }

    /// UIDs named by a message-number set, ascending. `*` is the last message; a number past
    /// the end is an error.
    pub(super) fn resolve_seq(&self, set: &SequenceSet) -> Result<Vec<Uid>, InvalidSet> {
        let ranges = match set {
            SequenceSet::Saved => return Ok(self.saved_in_view()),
            SequenceSet::Ranges(r) => r,
        };
        let count = self.uids.len() as u32;
        let mut spans = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges.iter().map(|r| bounds(r, count)) {
            if lo == 0 || hi > count {
                return Err(InvalidSet);
            }
            spans.push(lo as usize - 1..hi as usize);
        }
        Ok(self.pick(spans))
    }

    /// A message-number set as SEARCH reads it, as UID
    /// ranges. Numbers past the end simply name nothing: SEARCH asks a question about
    /// messages rather than acting on them (Dovecot does the same). Each run of message
    /// numbers is the range between its first and last UID, which among the view's messages
    /// (a search's candidates) holds exactly those messages, so `1:*` is one range however
    /// large the mailbox. `$` is [`View::saved_set`].
    pub(super) fn seq_ranges(&self, ranges: &[SeqRange]) -> UidSet {
        let count = self.uids.len() as u32;
        UidSet::from_ranges(
            ranges
                .iter()
                .map(|r| bounds(r, count))
                .map(|(lo, hi)| (lo.max(1), hi.min(count)))
                .filter(|(lo, hi)| lo <= hi)
                .filter_map(|(lo, hi)| {
                    let first = self.uids.get(lo as usize - 1)?;
                    let last = self.uids.get(hi as usize - 1)?;
                    Some((*first, *last))
                }),
        )
    }

    /// A UID set as SEARCH reads it, `*` being the highest UID in the view. Among the view's
    /// messages the ranges need no narrowing.
    pub(super) fn uid_ranges(&self, ranges: &[SeqRange]) -> UidSet {
        let max = self.uids.last().copied().unwrap_or(0);
        UidSet::from_ranges(ranges.iter().map(|r| bounds(r, max)))
    }

    /// `$` among the view's messages.
    pub(super) fn saved_set(&self) -> UidSet {
        self.saved_in_view().into_iter().collect()
    }

    /// UIDs named by a UID set that exist in the view, ascending. `*` is the highest UID in
    /// use, so `n:*` always includes the last message (RFC 9051 §6.4.9).
    pub(super) fn resolve_uid(&self, set: &SequenceSet) -> Vec<Uid> {
        let ranges = match set {
            SequenceSet::Saved => return self.saved_in_view(),
            SequenceSet::Ranges(r) => r,
        };
        let max = self.uids.last().copied().unwrap_or(0);
        let spans = ranges
            .iter()
            .map(|r| bounds(r, max))
            .map(|(lo, hi)| {
                self.uids.partition_point(|&u| u < lo)..self.uids.partition_point(|&u| u <= hi)
            })
            .collect();
        self.pick(spans)
    }

    /// The UIDs at these positions, ascending and without repeats. Spans are merged before
    /// anything is copied, so a set that repeats `1:*` thousands of times (a command line can
    /// hold ~16k ranges) costs one pass over the mailbox, not one per range.
    fn pick(&self, mut spans: Vec<Range<usize>>) -> Vec<Uid> {
        spans.retain(|s| s.start < s.end);
        spans.sort_unstable_by_key(|s| s.start);
        let mut picked = Vec::new();
        let mut merged: Option<Range<usize>> = None;
        for span in spans {
            match &mut merged {
                Some(m) if span.start <= m.end => m.end = m.end.max(span.end),
                _ => {
                    if let Some(m) = merged.replace(span) {
                        picked.extend(self.uids.get(m).unwrap_or_default());
                    }
                }
            }
        }
        if let Some(m) = merged {
            picked.extend(self.uids.get(m).unwrap_or_default());
        }
        picked
    }

    /// Whether a UID set names UIDs this view has not heard of yet.
    pub(super) fn names_unknown_uids(&self, set: &SequenceSet) -> bool {
        match set {
            SequenceSet::Saved => false,
            SequenceSet::Ranges(ranges) => ranges.iter().any(|r| {
                [r.from, r.to].iter().any(|n| match n {
                    SeqNo::Star => true,
                    SeqNo::Value(v) => v.get() >= self.uid_next,
                })
            }),
        }
    }

    fn saved_in_view(&self) -> Vec<Uid> {
        let mut v: Vec<Uid> = self
            .saved
            .iter()
            .flatten()
            .copied()
            .filter(|u| self.uids.binary_search(u).is_ok())
            .collect();
        v.sort_unstable();
        v
    }

    /// Lets the store release what this view no longer needs: once no expunge is waiting to
    /// be announced, every expunge up to the view's MODSEQ is known.
    pub(super) fn settle(&self) {
        if self.pending_expunges.is_empty() {
            self.pin.told(self.modseq);
        }
    }

    /// Holds back the announcement of an expunge until it is allowed.
    pub(super) fn hold_expunge(&mut self, uid: Uid) {
        if self.pending_expunges.contains(&uid) {
            return;
        }
        if self.pending_expunges.is_empty() {
            self.expunge_floor = self.modseq;
        }
        self.pending_expunges.push(uid);
    }

    /// The HIGHESTMODSEQ this session may tell its client (RFC 7162 §3.2): below any expunge
    /// it has not announced yet, so a client that resynchronises from it still learns of it.
    pub(super) fn announced_modseq(&self) -> ModSeq {
        if self.pending_expunges.is_empty() {
            self.modseq
        } else {
            self.expunge_floor.min(self.modseq)
        }
    }

    /// Removes a UID, returning the message number it had.
    pub(super) fn remove(&mut self, uid: Uid) -> Option<u32> {
        let i = self.uids.binary_search(&uid).ok()?;
        Arc::make_mut(&mut self.uids).remove(i);
        if let Ok(r) = self.recent.binary_search(&uid) {
            self.recent.remove(r);
        }
        self.pending_expunges.retain(|&u| u != uid);
        self.own_changes.remove(&uid);
        Some(i as u32 + 1)
    }
}

/// The two ends of a range, low first, with `*` standing for `star`.
fn bounds(range: &SeqRange, star: u32) -> (u32, u32) {
    let num = |n: SeqNo| match n {
        SeqNo::Star => star,
        SeqNo::Value(v) => v.get(),
    };
    let (a, b) = (num(range.from), num(range.to));
    (a.min(b), a.max(b))
}

/// Compresses ascending numbers into a sequence set (`1:3,7`).
pub(super) fn to_set(numbers: &[u32]) -> SequenceSet {
    use std::num::NonZeroU32;
    let mut ranges: Vec<SeqRange> = Vec::new();
    for &n in numbers {
        let Some(v) = NonZeroU32::new(n) else {
            continue;
        };
        if let Some(last) = ranges.last_mut() {
            if let SeqNo::Value(to) = last.to {
                if to.get().checked_add(1) == Some(n) {
                    last.to = SeqNo::Value(v);
                    continue;
                }
            }
        }
        ranges.push(SeqRange {
            from: SeqNo::Value(v),
            to: SeqNo::Value(v),
        });
    }
    SequenceSet::Ranges(ranges)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::imap::types::SeqRange;
    use std::num::NonZeroU32;

    /// A view of these UIDs, synchronised to MODSEQ 1 (also for the other session modules'
    /// tests).
    pub(in crate::imap::session) fn view(uids: &[Uid]) -> View {
        View {
            id: MailboxId(1),
            name: "INBOX".to_string(),
            uid_validity: 1,
            object_key: ObjectKey::default(),
            read_only: false,
            uids: Arc::new(uids.to_vec()),
            recent: Vec::new(),
            uid_next: uids.last().map_or(1, |u| u + 1),
            modseq: 1,
            keywords: Vec::new(),
            pending_expunges: Vec::new(),
            expunge_floor: 1,
            own_changes: HashMap::new(),
            saved: None,
            pin: ViewPin::detached(1),
        }
    }

    /// A set of these ranges, 0 standing for `*`.
    pub(in crate::imap::session) fn set(ranges: &[(u32, u32)]) -> SequenceSet {
        let n = |v: u32| match NonZeroU32::new(v) {
            Some(v) => SeqNo::Value(v),
            None => SeqNo::Star,
        };
        SequenceSet::Ranges(
            ranges
                .iter()
                .map(|&(a, b)| SeqRange {
                    from: n(a),
                    to: n(b),
                })
                .collect(),
        )
    }

    #[test]
    fn rfc9051_sequence_and_uid_sets() {
        let v = view(&[3, 5, 9, 12]);
        assert_eq!(v.resolve_seq(&set(&[(2, 0)])), Ok(vec![5, 9, 12]));
        assert_eq!(v.resolve_seq(&set(&[(4, 2)])), Ok(vec![5, 9, 12]));
        assert_eq!(v.resolve_seq(&set(&[(5, 5)])), Err(InvalidSet));
        assert_eq!(v.resolve_uid(&set(&[(4, 10)])), vec![5, 9]);
        // RFC 9051 §6.4.9: 100:* includes the last message even past the highest UID.
        assert_eq!(v.resolve_uid(&set(&[(100, 0)])), vec![12]);
        assert_eq!(v.resolve_uid(&set(&[(13, 20)])), Vec::<Uid>::new());
        assert!(v.names_unknown_uids(&set(&[(13, 13)])));
        assert!(!v.names_unknown_uids(&set(&[(1, 12)])));
        assert_eq!(view(&[]).resolve_seq(&set(&[(1, 0)])), Err(InvalidSet));
        let ranges = |s: SequenceSet| match s {
            SequenceSet::Ranges(r) => r,
            SequenceSet::Saved => Vec::new(),
        };
        let seq = v.seq_ranges(&ranges(set(&[(3, 9), (0, 0)])));
        assert_eq!(seq.ranges(), &[(9, 12)]);
        assert_eq!(
            v.seq_ranges(&ranges(set(&[(1, 1), (3, 3)]))).ranges(),
            &[(3, 3), (9, 9)]
        );
        assert_eq!(
            v.uid_ranges(&ranges(set(&[(100, 0)]))).ranges(),
            &[(12, 100)]
        );
    }

    #[test]
    fn repeated_ranges_cost_one_pass() {
        // 16,000 copies of 1:* over 100,000 messages: without merging this would copy 1.6
        // billion UIDs before removing the repeats.
        let uids: Vec<Uid> = (1..=100_000).collect();
        let v = view(&uids);
        let many = set(&vec![(1, 0); 16_000]);
        assert_eq!(v.resolve_seq(&many).unwrap().len(), 100_000);
        assert_eq!(v.resolve_uid(&many).len(), 100_000);
        let SequenceSet::Ranges(many) = many else {
            unreachable!()
        };
        assert_eq!(v.seq_ranges(&many).ranges(), &[(1, 100_000)]);
    }

    #[test]
    fn sets_compress() {
        assert_eq!(
            to_set(&[1, 2, 3, 7, 9, 10]),
            set(&[(1, 3), (7, 7), (9, 10)])
        );
    }
}
