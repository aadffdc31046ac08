//! SEARCH (RFC 9051 §6.4.4), ESEARCH results (RFC 4731), SEARCHRES `$` (RFC 5182),
//! WITHIN (RFC 5032), PARTIAL (RFC 9394) and SORT with ESORT (RFC 5256, RFC 5267 §3). The
//! session resolves what only it knows (sequence numbers, `\Recent`, `$`) into UIDs;
//! storage evaluates the rest.

use bytes::Bytes;

use super::view::{to_set, View};
use super::{Finish, ImapSession, Pending as SessionPending};
use crate::imap::command::{SearchProgram, Tag};
use crate::imap::response::{Code, Data, ESearchResult, Response};
use crate::imap::types::{SearchKey, SearchReturn, SequenceSet, SortCriterion};
use crate::mail::flags::SystemFlag;
use crate::mail::text::fold;
use crate::store::objectid::{self, Kind};
use crate::store::query::{DateCmp, Query, UidSet};
use crate::store::{EmailId, ModSeq, StorageOp, StorageReply, StorageResult, ThreadId, Uid};

#[derive(Debug)]
pub(super) struct Pending {
    tag: Tag,
    uid: bool,
    returns: Option<Vec<SearchReturn>>,
    /// SORT: the results come in sort order, and without RETURN the answer is SORT.
    sorted: bool,
    /// The criteria name a MODSEQ (RFC 7162 §3.1.5): the answer carries the highest MODSEQ
    /// of the matches, every one of which has a MODSEQ above this.
    modseq_floor: Option<ModSeq>,
    /// MULTISEARCH's ESEARCH of the selected mailbox (RFC 7377 §2.1): its name on the wire
    /// and UIDVALIDITY, sent with the tag; the answer is ESEARCH (ALL by default), and none
    /// at all when nothing matched.
    correlator: Option<(Bytes, u32)>,
}

impl ImapSession {
    pub(super) fn search(
        &mut self,
        tag: Tag,
        uid: bool,
        returns: Option<Vec<SearchReturn>>,
        program: SearchProgram,
    ) {
        self.search_selected(tag, uid, returns, program, None);
    }

    /// SEARCH, or with `correlator` MULTISEARCH's ESEARCH of the selected mailbox.
    pub(super) fn search_selected(
        &mut self,
        tag: Tag,
        uid: bool,
        returns: Option<Vec<SearchReturn>>,
        program: SearchProgram,
        correlator: Option<(Bytes, u32)>,
    ) {
        let Some((query, modseq_floor)) =
            self.search_query(&tag, returns.as_deref(), &program, false)
        else {
            return;
        };
        let Some(view) = self.selected_view() else {
            return;
        };
        let op = StorageOp::Search {
            account: self.account_name().unwrap_or_default(),
            mailbox: view.id,
            uids: view.uids.to_vec(),
            query,
        };
        let pending = Pending {
            tag,
            uid,
            returns,
            sorted: false,
            modseq_floor,
            correlator,
        };
        self.request(op, SessionPending::Search(pending));
    }

    /// [UID] SORT (RFC 5256 §3), with ESORT's return options (RFC 5267 §3.1): the search, in
    /// the order the criteria give.
    pub(super) fn sort(
        &mut self,
        tag: Tag,
        uid: bool,
        returns: Option<Vec<SearchReturn>>,
        criteria: &[SortCriterion],
        program: SearchProgram,
    ) {
        let Some((query, modseq_floor)) =
            self.search_query(&tag, returns.as_deref(), &program, true)
        else {
            return;
        };
        let Some(view) = self.selected_view() else {
            return;
        };
        let op = StorageOp::Sort {
            account: self.account_name().unwrap_or_default(),
            mailbox: view.id,
            uids: view.uids.to_vec(),
            query,
            criteria: criteria.into(),
        };
        let pending = Pending {
            tag,
            uid,
            returns,
            sorted: true,
            modseq_floor,
            correlator: None,
        };
        self.request(op, SessionPending::Search(pending));
    }

    /// The checks SEARCH and SORT share, their criteria as a query and the MODSEQ floor of
    /// RFC 7162 §3.1.5 when they name one, or the command's refusal.
    pub(super) fn search_query(
        &mut self,
        tag: &Tag,
        returns: Option<&[SearchReturn]>,
        program: &SearchProgram,
        mandatory_charset: bool,
    ) -> Option<(Query, Option<ModSeq>)> {
        let modseq_floor = self.check_search(tag, returns, program, mandatory_charset)?;
        let view = self.selected_view()?;
        match resolve(view, program) {
            Ok(q) => Some((q, modseq_floor)),
            Err(why) => {
                self.bad(Some(tag.clone()), None, why);
                None
            }
        }
    }

    /// What every search checks before its criteria are resolved (return options, charset),
    /// answering the refusal itself; the MODSEQ floor of RFC 7162 §3.1.5 when the criteria
    /// name a MODSEQ.
    pub(super) fn check_search(
        &mut self,
        tag: &Tag,
        returns: Option<&[SearchReturn]>,
        program: &SearchProgram,
        mandatory_charset: bool,
    ) -> Option<Option<ModSeq>> {
        let tag = tag.clone();
        // RFC 5182 §2.1: a SAVE search that fails leaves `$` empty, so later commands using
        // it act on nothing rather than on an older result.
        if returns.is_some_and(|r| r.contains(&SearchReturn::Save)) {
            if let Some(view) = self.selected_view_mut() {
                view.saved = Some(Vec::new());
            }
        }
        let whole = returns.unwrap_or_default().iter();
        if whole
            .filter(|r| matches!(r, SearchReturn::All | SearchReturn::Partial(_)))
            .count()
            > 1
        {
            // RFC 9394 §3.1: "either one PARTIAL, one ALL, or neither".
            self.bad(Some(tag), None, "At most one of PARTIAL and ALL.");
            return None;
        }
        let utf8_label = program
            .charset
            .as_ref()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"UTF-8"));
        if program.charset.is_some() && self.enabled.utf8 && !(mandatory_charset && utf8_label) {
            // RFC 9755 §3: after ENABLE UTF8=ACCEPT, clients send no CHARSET; where it is
            // mandatory (SORT, THREAD) it can only be UTF-8.
            self.bad(
                Some(tag),
                None,
                "CHARSET is not allowed after ENABLE UTF8=ACCEPT.",
            );
            return None;
        }
        if let Some(charset) = &program.charset {
            if !charset.eq_ignore_ascii_case(b"UTF-8") && !charset.eq_ignore_ascii_case(b"US-ASCII")
            {
                // RFC 9051 §6.4.4: name the charsets that are supported.
                self.no(
                    tag,
                    Some(Code::BadCharset(vec![
                        Bytes::from_static(b"UTF-8"),
                        Bytes::from_static(b"US-ASCII"),
                    ])),
                    "Unsupported charset.",
                );
                return None;
            }
        }
        let modseq_floor = modseq_floor(&program.criteria);
        if modseq_floor.is_some() {
            // RFC 7162 §3.1: a MODSEQ criterion enables CONDSTORE.
            self.condstore_on();
        }
        Some(modseq_floor)
    }

    pub(super) fn search_reply(&mut self, p: Pending, reply: StorageResult) {
        let found = match reply {
            Ok(StorageReply::Found(uids)) => uids,
            Err(e) => return self.storage_failed(p.tag, &e),
            Ok(_) => return self.unexpected(p.tag),
        };
        match p.modseq_floor {
            // §3.1.5: only a non-empty result carries a MODSEQ.
            Some(floor) if !found.is_empty() => self.search_modseq(p, found, floor),
            _ => self.search_answer(p, found, None),
        }
    }

    /// The SEARCH, SORT or ESEARCH response and the tagged OK; `modseq` is the highest MODSEQ
    /// of the matches when the criteria named one (RFC 7162 §3.1.5, §3.1.9, §3.1.10).
    pub(super) fn search_answer(&mut self, p: Pending, found: Vec<Uid>, modseq: Option<ModSeq>) {
        let rev2 = self.enabled.rev2;
        let Some(view) = self.selected_view_mut() else {
            return;
        };
        let numbers: Vec<u32> = if p.uid {
            found.clone()
        } else {
            found.iter().filter_map(|&u| view.seq(u)).collect()
        };
        // Without RETURN, IMAP4rev1 answers SEARCH and IMAP4rev2 answers ESEARCH ALL; SORT
        // answers SORT in both (RFC 5256 §4; RFC 5267 §3.1 for RETURN ()).
        let returns = match (&p.returns, (rev2 || p.correlator.is_some()) && !p.sorted) {
            (Some(r), _) if r.is_empty() => Some(vec![SearchReturn::All]),
            (Some(r), _) => Some(r.clone()),
            (None, true) => Some(vec![SearchReturn::All]),
            (None, false) => None,
        };
        let Some(returns) = returns else {
            if p.sorted {
                self.send(Response::Data(Data::Sort {
                    numbers,
                    mod_seq: modseq,
                }));
                self.finish(Finish::ok(p.tag, "SORT completed.").no_expunge());
                return;
            }
            self.send(Response::Data(Data::Search {
                numbers,
                mod_seq: modseq,
            }));
            self.finish(Finish::ok(p.tag, "SEARCH completed.").no_expunge());
            return;
        };
        let partial = returns.iter().find_map(|r| match r {
            SearchReturn::Partial(range) => Some(*range),
            _ => None,
        });
        if returns.contains(&SearchReturn::Save) {
            // RFC 5182 §2.4: with MIN or MAX (and not ALL or COUNT), only those are saved;
            // RFC 9394 §3.2 (Table 1): with PARTIAL and not COUNT, the PARTIAL results and
            // those MIN and MAX.
            let count = returns.contains(&SearchReturn::Count);
            let min_max_only = (returns.contains(&SearchReturn::Min)
                || returns.contains(&SearchReturn::Max))
                && !returns.contains(&SearchReturn::All)
                && !count;
            let saved: Vec<Uid> = if (partial.is_some() && !count) || min_max_only {
                let mut s = partial
                    .map(|range| range.pick(&found).to_vec())
                    .unwrap_or_default();
                if returns.contains(&SearchReturn::Min) {
                    s.extend(found.first());
                }
                if returns.contains(&SearchReturn::Max) {
                    s.extend(found.last());
                }
                s.sort_unstable();
                s.dedup();
                s
            } else {
                // `$` is a set: in mailbox order, whatever order SORT found them in.
                let mut all = found.clone();
                all.sort_unstable();
                all
            };
            view.saved = Some(saved);
        }
        let results = esearch_results(&returns, &numbers, modseq);
        // RFC 5182 §2.1: RETURN (SAVE) alone produces no ESEARCH response.
        let only_save = returns.iter().all(|r| *r == SearchReturn::Save);
        // RFC 7377 §2.1: no ESEARCH response for a mailbox without matches.
        let unmatched = p.correlator.is_some() && found.is_empty();
        if !only_save && !unmatched {
            self.send(Response::Data(Data::ESearch {
                tag: Some(p.tag.clone()),
                mailbox: p.correlator.clone(),
                uid: p.uid,
                results,
            }));
        }
        let done = if p.sorted {
            "SORT completed."
        } else {
            "SEARCH completed."
        };
        self.finish(Finish::ok(p.tag, done).no_expunge());
    }
}

/// The ESEARCH results `returns` ask for (RFC 4731 §3.1, RFC 9394 §3.1, RFC 7162 §3.1.10),
/// of matches numbered `numbers` (ascending, or in SORT's order).
pub(super) fn esearch_results(
    returns: &[SearchReturn],
    numbers: &[u32],
    modseq: Option<ModSeq>,
) -> Vec<ESearchResult> {
    let partial = returns.iter().find_map(|r| match r {
        SearchReturn::Partial(range) => Some(*range),
        _ => None,
    });
    let mut results = Vec::new();
    if returns.contains(&SearchReturn::Min) {
        results.extend(numbers.first().map(|&n| ESearchResult::Min(n)));
    }
    if returns.contains(&SearchReturn::Max) {
        results.extend(numbers.last().map(|&n| ESearchResult::Max(n)));
    }
    if returns.contains(&SearchReturn::Count) {
        results.push(ESearchResult::Count(numbers.len() as u32));
    }
    if returns.contains(&SearchReturn::All) && !numbers.is_empty() {
        results.push(ESearchResult::All(to_set(numbers)));
    }
    if let Some(range) = partial {
        // RFC 9394 §3.1: the range as asked, and NIL when no result lies in it.
        let picked = range.pick(numbers);
        results.push(ESearchResult::Partial(
            range,
            (!picked.is_empty()).then(|| to_set(picked)),
        ));
    }
    // RFC 7162 §3.1.10.
    if let Some(n) = modseq {
        results.push(ESearchResult::ModSeq(n));
    }
    results
}

/// The criteria as a query on `view`'s messages.
pub(super) fn resolve(view: &View, program: &SearchProgram) -> Result<Query, &'static str> {
    and(&program.criteria, &mut Sets::new(view))
}

/// Resolves what only the session knows into UID sets, each of `$` and `\Recent` once per
/// command: repeating `$` a thousand times then shares one set instead of copying it.
struct Sets<'v> {
    view: &'v View,
    recent: Option<UidSet>,
    saved: Option<UidSet>,
}

impl<'v> Sets<'v> {
    fn new(view: &'v View) -> Sets<'v> {
        Sets {
            view,
            recent: None,
            saved: None,
        }
    }

    fn recent(&mut self) -> Query {
        let view = self.view;
        Query::Uids(
            self.recent
                .get_or_insert_with(|| view.recent.iter().copied().collect())
                .clone(),
        )
    }

    fn set(&mut self, set: &SequenceSet, uid: bool) -> Query {
        let view = self.view;
        Query::Uids(match set {
            SequenceSet::Saved => self.saved.get_or_insert_with(|| view.saved_set()).clone(),
            SequenceSet::Ranges(r) if uid => view.uid_ranges(r),
            SequenceSet::Ranges(r) => view.seq_ranges(r),
        })
    }
}

fn and(keys: &[SearchKey], sets: &mut Sets<'_>) -> Result<Query, &'static str> {
    let parts = keys
        .iter()
        .map(|k| to_query(k, sets))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match parts.len() {
        0 => Query::All,
        1 => parts.into_iter().next().unwrap_or(Query::All),
        _ => Query::And(parts),
    })
}

fn text(s: &Bytes) -> String {
    fold(&String::from_utf8_lossy(s))
}

fn to_query(key: &SearchKey, sets: &mut Sets<'_>) -> Result<Query, &'static str> {
    use SearchKey as K;
    let header = |name: &str, s: &Bytes| Query::Header(name.to_string(), text(s));
    Ok(match key {
        K::All => Query::All,
        K::Answered => Query::Flag(SystemFlag::Answered, true),
        K::Unanswered => Query::Flag(SystemFlag::Answered, false),
        K::Deleted => Query::Flag(SystemFlag::Deleted, true),
        K::Undeleted => Query::Flag(SystemFlag::Deleted, false),
        K::Draft => Query::Flag(SystemFlag::Draft, true),
        K::Undraft => Query::Flag(SystemFlag::Draft, false),
        K::Flagged => Query::Flag(SystemFlag::Flagged, true),
        K::Unflagged => Query::Flag(SystemFlag::Flagged, false),
        K::Seen => Query::Flag(SystemFlag::Seen, true),
        K::Unseen => Query::Flag(SystemFlag::Seen, false),
        K::Keyword(k) => Query::Keyword(k.clone(), true),
        K::Unkeyword(k) => Query::Keyword(k.clone(), false),
        K::Recent => sets.recent(),
        K::New => Query::And(vec![sets.recent(), Query::Flag(SystemFlag::Seen, false)]),
        K::Old => Query::Not(Box::new(sets.recent())),
        K::Bcc(s) => header("bcc", s),
        K::Cc(s) => header("cc", s),
        K::From(s) => header("from", s),
        K::To(s) => header("to", s),
        K::Subject(s) => header("subject", s),
        K::Header(name, s) => {
            Query::Header(String::from_utf8_lossy(name).to_ascii_lowercase(), text(s))
        }
        K::Body(s) => Query::Body(text(s)),
        K::Text(s) => Query::Text(text(s)),
        K::Before(d) => Query::InternalDate(DateCmp::Before, *d),
        K::On(d) => Query::InternalDate(DateCmp::On, *d),
        K::Since(d) => Query::InternalDate(DateCmp::Since, *d),
        K::SentBefore(d) => Query::SentDate(DateCmp::Before, *d),
        K::SentOn(d) => Query::SentDate(DateCmp::On, *d),
        K::SentSince(d) => Query::SentDate(DateCmp::Since, *d),
        K::Larger(n) => Query::Larger(*n),
        K::Smaller(n) => Query::Smaller(*n),
        K::Older(s) => Query::Older(*s),
        K::Younger(s) => Query::Younger(*s),
        K::ModSeq { modseq, .. } => Query::ModSeq(*modseq),
        K::Uid(set) => sets.set(set, true),
        K::SequenceSet(set) => sets.set(set, false),
        K::Not(k) => Query::Not(Box::new(to_query(k, sets)?)),
        K::Or(a, b) => Query::Or(Box::new(to_query(a, sets)?), Box::new(to_query(b, sets)?)),
        K::And(keys) => and(keys, sets)?,
        // RFC 8474 §6: a string that is not one of this account's identifiers matches nothing.
        K::EmailId(id) => objectid::decode(sets.view.object_key, Kind::Email, id)
            .map_or(Query::Nothing, |n| Query::EmailId(EmailId(n))),
        K::ThreadId(id) => objectid::decode(sets.view.object_key, Kind::Thread, id)
            .map_or(Query::Nothing, |n| Query::ThreadId(ThreadId(n))),
        K::SavedBefore(d) => Query::SaveDate(DateCmp::Before, *d),
        K::SavedOn(d) => Query::SaveDate(DateCmp::On, *d),
        K::SavedSince(d) => Query::SaveDate(DateCmp::Since, *d),
        // RFC 8514 §4.2: every message of a mailbox that supports save dates, and every
        // mailbox does.
        K::SaveDateSupported => Query::All,
    })
}

/// Where the criteria name a MODSEQ, the MODSEQ every match is above: the greatest of the
/// MODSEQ keys ANDed at the top less one, or 0 when MODSEQ appears only under OR or NOT
/// (a match need not satisfy it then).
fn modseq_floor(keys: &[SearchKey]) -> Option<ModSeq> {
    fn names_modseq(key: &SearchKey) -> bool {
        match key {
            SearchKey::ModSeq { .. } => true,
            SearchKey::Not(k) => names_modseq(k),
            SearchKey::Or(a, b) => names_modseq(a) || names_modseq(b),
            SearchKey::And(keys) => keys.iter().any(names_modseq),
            _ => false,
        }
    }
    if !keys.iter().any(names_modseq) {
        return None;
    }
    let top = keys
        .iter()
        .filter_map(|k| match k {
            SearchKey::ModSeq { modseq, .. } => Some(modseq.saturating_sub(1)),
            _ => None,
        })
        .max();
    Some(top.unwrap_or(0))
}
