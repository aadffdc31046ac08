//! CONDSTORE and QRESYNC (RFC 7162) where they need more than one storage request: the
//! resynchronisation of SELECT/EXAMINE (QRESYNC ...), and the highest MODSEQ of a SEARCH's
//! matches. Both ask storage for the mailbox's `Changes` since a MODSEQ: the store answers
//! from its `(mailbox, modseq)` indexes and its tombstones of expunged UIDs, so the cost
//! follows what changed, not the size of the mailbox.

use super::search::Pending as SearchPending;
use super::view::{to_set, View};
use super::{Finish, ImapSession, Pending as SessionPending, State};
use crate::imap::response::{Code, Condition, Data, Response};
use crate::imap::types::{SeqNo, SeqRange, SequenceSet};
use crate::store::query::UidSet;
use crate::store::{ChangeSet, ModSeq, StorageOp, StorageReply, StorageResult, Uid};

/// What to do with the `Changes` asked for.
#[derive(Debug)]
pub(super) enum Pending {
    /// SELECT/EXAMINE (QRESYNC ...) reports what changed since `since` (RFC 7162 §3.2.5).
    Select {
        finish: Finish,
        /// The UIDs the client knows.
        known: UidSet,
        /// UIDs at or below this need no VANISHED: the sequence match data showed that the
        /// client knows every expunge up to it (§3.2.5.2).
        floor: Uid,
    },
    /// SEARCH with a MODSEQ criterion answers the highest MODSEQ of its matches (§3.1.5).
    Search {
        search: SearchPending,
        found: Vec<Uid>,
    },
}

impl ImapSession {
    /// A CONDSTORE-enabling command (RFC 7162 §3.1): from now on every unsolicited FETCH
    /// carries the MODSEQ; the first one with a mailbox selected reports its HIGHESTMODSEQ.
    pub(super) fn condstore_on(&mut self) {
        if self.enabled.condstore {
            return;
        }
        self.enabled.condstore = true;
        if let Some(modseq) = self.selected_view().map(View::announced_modseq) {
            self.untagged(Condition::Ok, Some(Code::HighestModSeq(modseq)), "Highest");
        }
    }

    /// Asks for the `Changes` since `since` of the selected mailbox, for a look that is not
    /// the view's own synchronisation: nothing is claimed, and the view stays where it is.
    pub(super) fn changes_since(&mut self, since: ModSeq) -> Option<StorageOp> {
        let State::Selected { account, view } = &self.state else {
            return None;
        };
        Some(StorageOp::Changes {
            account: account.clone(),
            mailbox: view.id,
            uid_next: view.uid_next,
            since,
            claim_recent: false,
        })
    }

    /// The QRESYNC step of SELECT/EXAMINE, once the mailbox is open and its UIDVALIDITY is
    /// the client's.
    pub(super) fn resync_select(
        &mut self,
        finish: Finish,
        since: ModSeq,
        known: Option<SequenceSet>,
        seq_match: Option<(SequenceSet, SequenceSet)>,
    ) {
        let Some(view) = self.selected_view() else {
            return self.finish(finish);
        };
        // §3.2.5.1: without known UIDs, 1:<UIDNEXT-1>.
        let last = view.uid_next.saturating_sub(1);
        let known = match &known {
            Some(set) => uid_set(set, last, view),
            None => UidSet::from_ranges((last > 0).then_some((1, last))),
        };
        let floor = seq_match.map_or(0, |(seqs, uids)| matched_floor(view, &seqs, &uids));
        let Some(op) = self.changes_since(since) else {
            return self.finish(finish);
        };
        self.request(
            op,
            SessionPending::Resync(Pending::Select {
                finish,
                known,
                floor,
            }),
        );
    }

    /// Asks for the highest MODSEQ among a SEARCH's matches, all of which have a MODSEQ
    /// above `floor`.
    pub(super) fn search_modseq(&mut self, search: SearchPending, found: Vec<Uid>, floor: ModSeq) {
        match self.changes_since(floor) {
            Some(op) => self.request(
                op,
                SessionPending::Resync(Pending::Search { search, found }),
            ),
            None => self.search_answer(search, found, None),
        }
    }

    pub(super) fn resync_reply(&mut self, pending: Pending, reply: StorageResult) {
        let changes = match reply {
            // A mailbox gone meanwhile has no changes to report; the next synchronisation
            // says it went.
            Ok(StorageReply::Changes(c)) => Ok(c),
            Ok(_) => Err(None),
            Err(e) => Err(Some(e)),
        };
        match pending {
            Pending::Select {
                finish,
                known,
                floor,
            } => match changes {
                Ok(c) => {
                    self.report_resync(c, &known, floor);
                    self.finish(finish);
                }
                Err(e) => {
                    // The client would think itself synchronised: the selection fails.
                    self.deselect();
                    match e {
                        Some(e) => self.storage_failed(finish.tag, &e),
                        None => self.unexpected(finish.tag),
                    }
                }
            },
            Pending::Search { search, found } => {
                // SORT's matches come in sort order.
                let mut matched = found.clone();
                matched.sort_unstable();
                let highest = changes.ok().and_then(|c| {
                    c.changed
                        .iter()
                        .filter(|m| matched.binary_search(&m.uid).is_ok())
                        .map(|m| m.modseq)
                        .max()
                });
                self.search_answer(search, found, highest);
            }
        }
    }

    /// `* VANISHED (EARLIER)` for the known UIDs expunged since, then a FETCH with the flags of
    /// each known message changed since (§3.2.5.1).
    fn report_resync(&mut self, changes: ChangeSet, known: &UidSet, floor: Uid) {
        self.send_vanished_earlier(changes.expunged, known, floor);
        for m in changes.changed {
            if !known.contains(m.uid) {
                continue;
            }
            self.announce_keywords(&m.flags);
            self.send_flag_update(&m, true);
            // Reported; the next synchronisation need not again.
            if let Some(view) = self.selected_view_mut() {
                view.own_changes.insert(m.uid, m.modseq);
            }
        }
    }

    /// `* VANISHED (EARLIER) uids` for the expunged UIDs within `within` and above `floor`.
    /// A UID still in the view is left out: it was expunged after the view was made, and
    /// is announced as any other expunge (VANISHED without EARLIER), when that is allowed.
    pub(super) fn send_vanished_earlier(
        &mut self,
        expunged: Vec<Uid>,
        within: &UidSet,
        floor: Uid,
    ) {
        let Some(view) = self.selected_view() else {
            return;
        };
        let mut gone: Vec<Uid> = expunged
            .into_iter()
            .filter(|&u| u > floor && within.contains(u) && view.seq(u).is_none())
            .collect();
        if gone.is_empty() {
            return;
        }
        gone.sort_unstable();
        gone.dedup();
        self.send(Response::Data(Data::Vanished {
            earlier: true,
            uids: to_set(&gone),
        }));
    }
}

/// A UID set as the client wrote it, `*` standing for `star`; `$` is the saved result.
pub(super) fn uid_set(set: &SequenceSet, star: Uid, view: &View) -> UidSet {
    match set {
        SequenceSet::Saved => view.saved.iter().flatten().copied().collect(),
        SequenceSet::Ranges(ranges) => UidSet::from_ranges(ranges.iter().map(|r| {
            let (a, b) = (value(r.from, star), value(r.to, star));
            (a.min(b), a.max(b))
        })),
    }
}

fn value(n: SeqNo, star: u32) -> u32 {
    match n {
        SeqNo::Star => star,
        SeqNo::Value(v) => v.get(),
    }
}

/// The sequence match data of §3.2.5.2: pairs of a message number and the UID the client
/// had for it, compared in order with the view; the highest UID of the matching pairs
/// before the first mismatch. Pairs must ascend, so the walk ends after at most as many
/// steps as the mailbox has messages, however large the sets.
fn matched_floor(view: &View, seqs: &SequenceSet, uids: &SequenceSet) -> Uid {
    let (SequenceSet::Ranges(seqs), SequenceSet::Ranges(uids)) = (seqs, uids) else {
        return 0;
    };
    let count = view.uids.len() as u32;
    let mut floor = 0;
    let mut last_seq = 0;
    for (seq, uid) in numbers(seqs, count).zip(numbers(uids, u32::MAX)) {
        if seq <= last_seq || view.uids.get(seq as usize - 1) != Some(&uid) {
            break;
        }
        last_seq = seq;
        floor = uid;
    }
    floor
}

/// The numbers of a set in the order written, each range ascending.
fn numbers(ranges: &[SeqRange], star: u32) -> impl Iterator<Item = u32> + '_ {
    ranges.iter().flat_map(move |r| {
        let (a, b) = (value(r.from, star), value(r.to, star));
        a.min(b)..=a.max(b)
    })
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::{set, view};
    use super::*;

    #[test]
    fn rfc7162_3_2_5_2_sequence_match() {
        // The RFC's words: message 4 is UID 8 (matches), the next pair (12, 24) does not
        // (message 12 is UID 25): no UID up to 8 is reported.
        let mut uids: Vec<Uid> = vec![2, 5, 7, 8];
        uids.extend(9..=16);
        uids.extend([25, 26]);
        let v = view(&uids);
        assert_eq!(v.uids.get(3), Some(&8));
        assert_eq!(
            matched_floor(&v, &set(&[(4, 4), (12, 12)]), &set(&[(8, 8), (24, 24)])),
            8
        );
        // Every pair matches: the last one's UID.
        assert_eq!(
            matched_floor(&v, &set(&[(1, 4)]), &set(&[(2, 2), (5, 5), (7, 8)])),
            8
        );
        // The first pair fails: nothing is known.
        assert_eq!(matched_floor(&v, &set(&[(1, 1)]), &set(&[(3, 3)])), 0);
        // Not ascending, or past the end: the walk stops.
        assert_eq!(
            matched_floor(&v, &set(&[(2, 2), (1, 1)]), &set(&[(5, 5), (2, 2)])),
            5
        );
        assert_eq!(matched_floor(&v, &set(&[(99, 99)]), &set(&[(1, 1)])), 0);
        // Huge sets cost at most the mailbox's length.
        let huge = set(&vec![(1, u32::MAX - 1); 1000]);
        assert_eq!(matched_floor(&view(&[1, 2, 3]), &huge, &huge), 3);
    }

    #[test]
    fn known_uids_with_star() {
        let v = view(&[3, 9]);
        assert_eq!(uid_set(&set(&[(5, 0)]), 20, &v).ranges(), &[(5, 20)]);
        assert!(uid_set(&SequenceSet::Saved, 20, &v).ranges().is_empty());
    }
}
