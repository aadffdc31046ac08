//! Search criteria as storage sees them: everything session-relative (sequence numbers,
//! `\Recent`, `$`) already resolved to UIDs, text already folded. One evaluator serves every
//! store, so a durable store can fall back to it and must agree with it.

use std::sync::Arc;

use bytes::Bytes;

use super::{EmailId, ModSeq, ThreadId, Uid};
use crate::mail::date::Date;
use crate::mail::flags::{Flags, SystemFlag};
use crate::mail::text::SearchText;

/// Date comparisons of SEARCH (RFC 9051 §6.4.4: the date part only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DateCmp {
    /// Strictly earlier than the day.
    Before,
    /// Within the day.
    On,
    /// On or after the day.
    Since,
}

/// A search criterion tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Query {
    /// Every message.
    All,
    /// No message.
    Nothing,
    /// All of these.
    And(Vec<Query>),
    /// Either.
    Or(Box<Query>, Box<Query>),
    /// Not this.
    Not(Box<Query>),
    /// UID in this set.
    Uids(UidSet),
    /// A system flag set (true) or clear (false).
    Flag(SystemFlag, bool),
    /// A keyword set (true) or clear (false).
    Keyword(Bytes, bool),
    /// RFC822.SIZE larger than.
    Larger(u64),
    /// RFC822.SIZE smaller than.
    Smaller(u64),
    /// INTERNALDATE compared by day.
    InternalDate(DateCmp, Date),
    /// The Date header compared by day.
    SentDate(DateCmp, Date),
    /// The save date compared by day (RFC 8514 §4.2: SAVEDBEFORE, SAVEDON, SAVEDSINCE).
    SaveDate(DateCmp, Date),
    /// A header field (lower-case name) containing folded text; empty text tests presence.
    Header(String, String),
    /// The body containing folded text.
    Body(String),
    /// Header or body containing folded text.
    Text(String),
    /// INTERNALDATE at least this many seconds before now (RFC 5032 OLDER).
    Older(u32),
    /// INTERNALDATE at most this many seconds before now (RFC 5032 YOUNGER).
    Younger(u32),
    /// MODSEQ at least this (RFC 7162).
    ModSeq(ModSeq),
    /// EMAILID is this (RFC 8474 §6; the session turned the string into its number).
    EmailId(EmailId),
    /// THREADID is this (RFC 8474 §6).
    ThreadId(ThreadId),
}

/// UIDs as ascending, disjoint, non-adjacent inclusive ranges.
///
/// `1:*` over a mailbox of any size is one range, not a list of every UID, so a command that
/// repeats it thousands of times stays as small in memory as on the wire; and clones share
/// the ranges, so a session can hand the same `$` or `\Recent` set to many criteria.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UidSet(Arc<[(Uid, Uid)]>);

impl UidSet {
    /// The set of these ranges (either end first, in any order, overlapping or not).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (Uid, Uid)>) -> UidSet {
        let mut v: Vec<(Uid, Uid)> = ranges
            .into_iter()
            .map(|(a, b)| (a.min(b), a.max(b)))
            .collect();
        v.sort_unstable();
        let mut merged: Vec<(Uid, Uid)> = Vec::with_capacity(v.len());
        for (lo, hi) in v {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        UidSet(merged.into())
    }

    /// Whether `uid` is in the set.
    pub fn contains(&self, uid: Uid) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < uid);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= uid)
    }

    /// The ranges, ascending.
    pub fn ranges(&self) -> &[(Uid, Uid)] {
        &self.0
    }
}

impl FromIterator<Uid> for UidSet {
    fn from_iter<I: IntoIterator<Item = Uid>>(uids: I) -> UidSet {
        UidSet::from_ranges(uids.into_iter().map(|u| (u, u)))
    }
}

/// What the evaluator needs to know about a message.
pub trait Candidate {
    /// Its UID.
    fn uid(&self) -> Uid;
    /// Its flags.
    fn flags(&self) -> &Flags;
    /// RFC822.SIZE.
    fn size(&self) -> u64;
    /// The internal date's day (in the zone it was recorded with).
    fn internal_day(&self) -> Date;
    /// The internal date as Unix seconds.
    fn internal_unix(&self) -> i64;
    /// The save date's day (RFC 8514 §3), in the zone it was recorded with (UTC: it comes from
    /// the request's clock).
    fn saved_day(&self) -> Date;
    /// Its MODSEQ.
    fn modseq(&self) -> ModSeq;
    /// Its EMAILID's number.
    fn email_id(&self) -> EmailId;
    /// Its THREADID's number.
    fn thread_id(&self) -> ThreadId;
    /// Its decoded text; only called for text criteria, so stores may compute it lazily.
    fn text(&self) -> &SearchText;
    /// [`SearchText::octets`] of its text, for the work meter; a store that knows it without
    /// walking the text (a headline's, measured once when loaded) says so.
    fn text_octets(&self) -> usize {
        self.text().octets()
    }
}

impl<T: Candidate + ?Sized> Candidate for &T {
    fn uid(&self) -> Uid {
        (**self).uid()
    }
    fn flags(&self) -> &Flags {
        (**self).flags()
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn internal_day(&self) -> Date {
        (**self).internal_day()
    }
    fn internal_unix(&self) -> i64 {
        (**self).internal_unix()
    }
    fn saved_day(&self) -> Date {
        (**self).saved_day()
    }
    fn modseq(&self) -> ModSeq {
        (**self).modseq()
    }
    fn email_id(&self) -> EmailId {
        (**self).email_id()
    }
    fn thread_id(&self) -> ThreadId {
        (**self).thread_id()
    }
    fn text(&self) -> &SearchText {
        (**self).text()
    }
    fn text_octets(&self) -> usize {
        (**self).text_octets()
    }
}

impl Query {
    /// Whether the query needs message text (so a store can prepare it once).
    pub fn needs_text(&self) -> bool {
        match self {
            Query::Header(..) | Query::Body(_) | Query::Text(_) | Query::SentDate(..) => true,
            Query::And(v) => v.iter().any(Query::needs_text),
            Query::Or(a, b) => a.needs_text() || b.needs_text(),
            Query::Not(q) => q.needs_text(),
            _ => false,
        }
    }

    /// Whether the criterion is a leaf that reads message text.
    pub fn is_text_leaf(&self) -> bool {
        matches!(
            self,
            Query::Header(..) | Query::Body(_) | Query::Text(_) | Query::SentDate(..)
        )
    }

    /// Evaluates the query on one message; `now` is Unix seconds for OLDER/YOUNGER. The
    /// specification of SEARCH's answer; stores evaluate whole mailboxes with
    /// [`super::evaluate::evaluate`], which must agree with it.
    pub fn matches(&self, m: &dyn Candidate, now: i64) -> bool {
        match self {
            Query::All => true,
            Query::Nothing => false,
            Query::And(v) => v.iter().all(|q| q.matches(m, now)),
            Query::Or(a, b) => a.matches(m, now) || b.matches(m, now),
            Query::Not(q) => !q.matches(m, now),
            Query::Uids(uids) => uids.contains(m.uid()),
            Query::Flag(f, on) => m.flags().has(*f) == *on,
            Query::Keyword(k, on) => m.flags().has_keyword(k) == *on,
            Query::Larger(n) => m.size() > *n,
            Query::Smaller(n) => m.size() < *n,
            Query::InternalDate(cmp, d) => compare(*cmp, m.internal_day(), *d),
            Query::SaveDate(cmp, d) => compare(*cmp, m.saved_day(), *d),
            Query::SentDate(cmp, d) => m.text().sent.is_some_and(|s| compare(*cmp, s, *d)),
            Query::Header(name, needle) => m.text().header_contains(name, needle),
            Query::Body(needle) => m.text().body.contains(needle.as_str()),
            Query::Text(needle) => m.text().text_contains(needle),
            Query::Older(secs) => now - m.internal_unix() >= i64::from(*secs),
            Query::Younger(secs) => now - m.internal_unix() <= i64::from(*secs),
            Query::ModSeq(n) => m.modseq() >= *n,
            Query::EmailId(id) => m.email_id() == *id,
            Query::ThreadId(id) => m.thread_id() == *id,
        }
    }
}

fn compare(cmp: DateCmp, day: Date, reference: Date) -> bool {
    match cmp {
        DateCmp::Before => day < reference,
        DateCmp::On => day == reference,
        DateCmp::Since => day >= reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_merge_and_answer_membership() {
        let s = UidSet::from_ranges([(9, 7), (1, 2), (3, 3), (10, 12), (20, 20), (2, 2)]);
        assert_eq!(s.ranges(), &[(1, 3), (7, 12), (20, 20)]);
        for (uid, inside) in [(0, false), (1, true), (3, true), (4, false), (7, true)] {
            assert_eq!(s.contains(uid), inside, "{uid}");
        }
        assert!(s.contains(12) && !s.contains(13) && s.contains(20) && !s.contains(21));
        assert_eq!(UidSet::from_iter([5, 4, 6]).ranges(), &[(4, 6)]);
        assert!(!UidSet::default().contains(1));
        assert_eq!(
            UidSet::from_ranges([(1, Uid::MAX), (5, 5)]).ranges(),
            &[(1, Uid::MAX)]
        );
    }
}
