//! FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY): one storage request loads what the attributes
//! need; responses are built from the stored structure without parsing the message again.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;

use bytes::Bytes;

use super::{condstore, progress_counts, Finish, ImapSession, Pending as SessionPending};
use crate::imap::command::{Command, CommandLine, Tag};
use crate::imap::encode::{self, StreamedItem};
use crate::imap::response::{Code, FetchItem};
use crate::imap::types::{FetchAttr, FetchItems, FetchModifiers, Partial, SequenceSet};
use crate::mail::decoded_size::DecodedSize;
use crate::mail::flags::Flag;
use crate::mail::section::{
    binary_extent, filter_fields, section_extent, BinaryError, BinaryExtent, Extent, Section,
    SectionText,
};
use crate::store::query::UidSet;
use crate::store::{
    objectid, Body, BodyStream, FetchWant, FetchedMessage, ModSeq, ObjectKey, PreviewWant,
    StorageOp, StorageReply, StorageResult, Transfer, Uid,
};

#[derive(Debug)]
pub(super) struct Pending {
    tag: Tag,
    attrs: Vec<FetchAttr>,
    /// Messages asked for in the batch in flight.
    requested: usize,
    mark_seen: bool,
    want: FetchWant,
    /// UIDs for the batches still to come, in order.
    rest: VecDeque<Uid>,
    /// Messages the FETCH names in all.
    total: usize,
    /// The message whose response a batch left open when it paused.
    open: Option<Resume>,
    /// Messages per request when only headers are fetched: as many as the largest header
    /// seen so far lets fit in [`HEADER_OCTETS`].
    header_batch: usize,
    /// Some messages of an earlier batch had been expunged meanwhile, and storage no longer
    /// had them.
    missing: bool,
    /// Some were expunged by another session, and answered as they were (RFC 2180 §4.1.2).
    expunged: bool,
    /// The first message data that could not be answered (BINARY could not decode a part,
    /// a stored body could not be read), in this or an earlier batch.
    failure: Option<Failure>,
    /// CHANGEDSINCE (RFC 7162 §3.1.4.1): the reply in flight is the mailbox's `Changes`
    /// since this MODSEQ, which narrows `rest` before the first batch; with VANISHED
    /// (§3.2.6), the UIDs whose expunges since are reported.
    changed_since: Option<(ModSeq, Option<UidSet>)>,
}

/// Where a response left open goes on: the message, and the attribute to answer next.
#[derive(Debug, Clone, Copy)]
struct Resume {
    uid: Uid,
    next: usize,
}

/// Why a message's data could not be sent.
#[derive(Debug, Clone)]
enum Failure {
    Binary(BinaryError),
    /// The stored body could not be read (a damaged store).
    Unreadable,
}

/// Messages per storage request when bodies are fetched: a batch's messages are in memory
/// while their responses are written, and a client that stops reading stalls the next batch
/// instead of growing a buffer. Large bodies are streams, not octets, so a batch holds at most
/// this many small (inline) bodies.
const CONTENT_BATCH: usize = 8;
/// Messages per storage request at most when only their headers are fetched (a client
/// listing a mailbox asks `BODY.PEEK[HEADER.FIELDS (...)]` of every message).
const HEADER_BATCH: usize = 128;
/// The header octets a header-only batch may hold: as much as [`CONTENT_BATCH`] inline
/// bodies of the largest inline size.
const HEADER_OCTETS: u64 = 1024 * 1024;
/// Octets of FETCH responses written (streamed bodies aside) before the FETCH stops for the
/// driver to send them: the batch's remaining messages, or the rest of a message's response,
/// come with the next storage request, which the driver carries out only once it has written
/// everything before it. However many attributes a command names (distinct partial ranges of
/// one body, say), a session holds at most this much output, plus one item: an inline body
/// (at most 128 KiB), or a header or decoded part read whole.
const HELD_OUTPUT: usize = 1024 * 1024;
/// What a queued body stream holds besides its literal's prefix, charged against
/// [`HELD_OUTPUT`]: thousands of ranges of a large message are thousands of streams.
const STREAM_ENTRY: usize =
    std::mem::size_of::<crate::session::Output>() + std::mem::size_of::<BodyStream>();
/// Encoded octets read at a time to count a part's decoded size.
const SIZE_CHUNK: usize = 64 * 1024;
/// Messages per storage request for stored structure (envelopes, body structures), some
/// hundreds of octets each.
const STRUCTURE_BATCH: usize = 1024;
/// Messages per storage request for the per-message row alone (UID, flags, size, date):
/// under a hundred octets of response each, so a `FETCH 1:* (FLAGS)` of 100,000 messages
/// takes 25 round trips to storage rather than 100.
const ROW_BATCH: usize = 4096;

impl Pending {
    /// Messages answered so far and in all, for INPROGRESS (RFC 9585).
    pub(super) fn progress(&self) -> (Option<u32>, Option<u32>) {
        let done = self.total.saturating_sub(self.rest.len() + self.requested);
        progress_counts(done, self.total)
    }
}

impl ImapSession {
    pub(super) fn fetch(
        &mut self,
        tag: Tag,
        uid: bool,
        set: SequenceSet,
        items: FetchItems,
        modifiers: FetchModifiers,
    ) {
        if modifiers.vanished {
            // RFC 7162 §3.2.6: UID FETCH only, with CHANGEDSINCE, after ENABLE QRESYNC.
            let why = if !uid {
                Some("VANISHED is allowed with UID FETCH only.")
            } else if !self.enabled.qresync {
                Some("VANISHED needs ENABLE QRESYNC first.")
            } else if modifiers.changed_since.is_none() {
                Some("VANISHED needs CHANGEDSINCE.")
            } else {
                None
            };
            if let Some(why) = why {
                self.bad(Some(tag), None, why);
                return;
            }
        }
        if modifiers.partial.is_some() && !uid {
            // RFC 9394 §3.3 extends UID FETCH only.
            self.bad(Some(tag), None, "PARTIAL is a UID FETCH modifier.");
            return;
        }
        let mut attrs = items.expand();
        if modifiers.changed_since.is_some() || attrs.contains(&FetchAttr::ModSeq) {
            // RFC 7162 §3.1: CONDSTORE-enabling.
            self.condstore_on();
        }
        if modifiers.changed_since.is_some() && !attrs.contains(&FetchAttr::ModSeq) {
            // §3.1.4.1: CHANGEDSINCE implies MODSEQ.
            attrs.push(FetchAttr::ModSeq);
        }
        // RFC 9051 §6.4.5: BODY[...] without PEEK sets \Seen, unless the mailbox is read-only.
        let sets_seen = attrs.iter().any(|a| {
            matches!(
                a,
                FetchAttr::Rfc822
                    | FetchAttr::Rfc822Text
                    | FetchAttr::BodySection { peek: false, .. }
                    | FetchAttr::Binary { peek: false, .. }
            )
        });
        let mut attrs = merged(attrs);
        if uid && !attrs.contains(&FetchAttr::Uid) && !self.enabled.uidonly {
            // RFC 9051 §6.4.9: UID FETCH always reports the UID; under UIDONLY it opens the
            // UIDFETCH response instead (RFC 9586 §3.3).
            attrs.insert(0, FetchAttr::Uid);
        }
        let (rerun_set, rerun_items, rerun_tag) = (set.clone(), items.clone(), tag.clone());
        let rerun_modifiers = modifiers.clone();
        let Some(mut uids) = self.resolve(&tag, uid, &set, move || CommandLine {
            tag: rerun_tag,
            command: Command::Fetch {
                uid,
                set: rerun_set,
                items: rerun_items,
                modifiers: rerun_modifiers,
            },
        }) else {
            return;
        };
        if let Some(range) = modifiers.partial {
            // RFC 9394 §3.3: only the messages at those positions among the ones the set
            // names (in UID order, as the set is resolved).
            uids = range.pick(&uids).to_vec();
        }
        let Some(view) = self.selected_view() else {
            return;
        };
        let content = attrs.iter().any(|a| {
            matches!(
                a,
                FetchAttr::Rfc822
                    | FetchAttr::Rfc822Header
                    | FetchAttr::Rfc822Text
                    | FetchAttr::BodySection { .. }
                    | FetchAttr::Binary { .. }
                    | FetchAttr::BinarySize { .. }
            )
        });
        let info = content
            || attrs.iter().any(|a| {
                matches!(
                    a,
                    FetchAttr::Envelope | FetchAttr::Body | FetchAttr::BodyStructure
                )
            });
        // Every content item is the top-level header or some of its fields: its octets are
        // enough, and many more messages fit in a batch.
        let header_only = content
            && attrs.iter().all(|a| match a {
                FetchAttr::Rfc822Header => true,
                FetchAttr::BodySection { section, .. } => {
                    section.part.is_empty()
                        && matches!(
                            section.text,
                            Some(
                                SectionText::Header
                                    | SectionText::HeaderFields(_)
                                    | SectionText::HeaderFieldsNot(_)
                            )
                        )
                }
                FetchAttr::Rfc822
                | FetchAttr::Rfc822Text
                | FetchAttr::Binary { .. }
                | FetchAttr::BinarySize { .. } => false,
                _ => true,
            });
        let mark_seen = sets_seen && !view.read_only;
        // §3.2.6: the expunges within the set the client named, not only the view's UIDs.
        let vanished = modifiers
            .vanished
            .then(|| condstore::uid_set(&set, view.uid_next.saturating_sub(1), view));
        if uids.is_empty() && vanished.is_none() {
            self.finish(Finish::ok(tag, "FETCH completed.").no_expunge());
            return;
        }
        // RFC 8970 §4.1: LAZY lets a preview not at hand be NIL; asked for both ways, the
        // preview is answered once, without LAZY (`merged`).
        let preview = if attrs.contains(&FetchAttr::Preview { lazy: false }) {
            PreviewWant::Always
        } else if attrs.contains(&FetchAttr::Preview { lazy: true }) {
            PreviewWant::Lazy
        } else {
            PreviewWant::No
        };
        let want = FetchWant {
            content,
            info,
            header_only,
            preview,
        };
        let p = Pending {
            tag,
            attrs,
            requested: 0,
            mark_seen,
            want,
            total: uids.len(),
            rest: uids.into(),
            open: None,
            header_batch: CONTENT_BATCH,
            missing: false,
            expunged: false,
            failure: None,
            changed_since: modifiers.changed_since.map(|m| (m, vanished)),
        };
        match p
            .changed_since
            .as_ref()
            .and_then(|(m, _)| self.changes_since(*m))
        {
            Some(op) => self.request(op, SessionPending::Fetch(p)),
            None => self.fetch_batch(p),
        }
    }

    /// CHANGEDSINCE's look at the mailbox came back: VANISHED (EARLIER) first when asked,
    /// then the messages changed since, as a FETCH of those alone.
    fn changed_since_reply(&mut self, mut p: Pending, since: ModSeq, reply: StorageResult) {
        let vanished = p.changed_since.take().and_then(|(_, v)| v);
        let changes = match reply {
            Ok(StorageReply::Changes(c)) => c,
            Err(e) => return self.storage_failed(p.tag, &e),
            Ok(_) => return self.unexpected(p.tag),
        };
        if let Some(within) = &vanished {
            self.send_vanished_earlier(changes.expunged, within, 0);
        }
        // The changed messages among those named (both ascending): a lookup per change, not
        // a pass over a set that may name every message of a large mailbox.
        let named = std::mem::take(&mut p.rest);
        let mut changed: Vec<Uid> = changes
            .changed
            .iter()
            .filter(|m| m.modseq > since && named.binary_search(&m.uid).is_ok())
            .map(|m| m.uid)
            .collect();
        changed.sort_unstable();
        p.rest = changed.into();
        p.total = p.rest.len();
        if p.rest.is_empty() {
            self.finish(Finish::ok(p.tag, "FETCH completed.").no_expunge());
            return;
        }
        self.fetch_batch(p);
    }

    /// Asks storage for the next batch of a FETCH.
    fn fetch_batch(&mut self, mut p: Pending) {
        let Some(view) = self.selected_view() else {
            return;
        };
        let batch = if p.want.content && p.want.header_only {
            p.header_batch
        } else if p.want.content {
            CONTENT_BATCH
        } else if p.want.info || p.want.preview != PreviewWant::No {
            STRUCTURE_BATCH
        } else {
            ROW_BATCH
        };
        let uids: Vec<Uid> = p.rest.drain(..p.rest.len().min(batch)).collect();
        p.requested = uids.len();
        let op = StorageOp::Fetch {
            account: self.account().unwrap_or("").to_string(),
            mailbox: view.id,
            uids,
            want: p.want,
            mark_seen: p.mark_seen,
        };
        // Only the last batch carries the synchronisation: joined to an earlier one it would
        // be reported after later batches had set `\Seen`, with flags older than theirs.
        if p.rest.is_empty() {
            self.request(op, SessionPending::Fetch(p));
        } else {
            self.request_alone(op, SessionPending::Fetch(p));
        }
    }

    pub(super) fn fetch_reply(&mut self, mut p: Pending, reply: StorageResult) {
        if let Some((since, _)) = &p.changed_since {
            let since = *since;
            return self.changed_since_reply(p, since, reply);
        }
        let messages = match reply {
            Ok(StorageReply::Fetched(m)) => m,
            Err(e) => {
                self.close_open(&mut p);
                return self.storage_failed(p.tag, &e);
            }
            Ok(_) => {
                self.close_open(&mut p);
                return self.unexpected(p.tag);
            }
        };
        p.missing |= messages.len() < p.requested;
        p.expunged |= messages.iter().any(|m| m.expunged);
        if p.want.header_only {
            let largest = messages
                .iter()
                .filter_map(|m| m.content.as_ref().map(Body::len))
                .max()
                .unwrap_or(0);
            let fit = usize::try_from(HEADER_OCTETS / largest.max(1)).unwrap_or(usize::MAX);
            p.header_batch = fit.clamp(CONTENT_BATCH, HEADER_BATCH);
        }
        // The driver sent everything written before it fed this reply back.
        let mut held = 0;
        let mut hint = 0;
        let open = p.open.take();
        if let Some(open) = &open {
            if messages.first().map(|m| m.uid) != Some(open.uid) {
                // Storage no longer has the message whose response was left open (a mailbox
                // deleted and re-created under the session): it ends with what was sent.
                encode::fetch_close(&mut self.out);
            }
        }
        for (i, m) in messages.iter().enumerate() {
            let from = open
                .as_ref()
                .filter(|o| i == 0 && o.uid == m.uid)
                .map(|o| o.next);
            let again = match self.fetch_message(&mut p, m, from, &mut hint, &mut held) {
                Some(next) => {
                    p.open = Some(Resume { uid: m.uid, next });
                    i
                }
                None if held >= HELD_OUTPUT => i + 1,
                None => continue,
            };
            // Enough is written for now: the rest of this batch comes again, with the next
            // request, which the driver carries out only once it has sent all of this (a
            // client that stops reading stalls the FETCH, not a growing buffer).
            let unanswered = messages.get(again..).unwrap_or_default();
            for m in unanswered.iter().rev() {
                p.rest.push_front(m.uid);
            }
            if !p.rest.is_empty() {
                self.fetch_batch(p);
                return;
            }
            break;
        }
        if !p.rest.is_empty() {
            // The driver writes this batch before it feeds the next reply back.
            self.fetch_batch(p);
            return;
        }
        // The other messages were reported; the failure is told once, as Dovecot words it
        // (Dovecot stops at the first such message instead).
        let failed = |tag, text, code| Finish {
            condition: crate::imap::response::Condition::No,
            ..Finish::ok(tag, text).with_code(code)
        };
        let finish = if let Some(failure) = p.failure {
            match failure {
                Failure::Unreadable => {
                    failed(p.tag, "Message data could not be read.", Code::ServerBug)
                }
                Failure::Binary(BinaryError::UnknownCte) => failed(
                    p.tag,
                    "Unknown Content-Transfer-Encoding.",
                    Code::UnknownCte,
                ),
                Failure::Binary(BinaryError::Corrupt) => {
                    failed(p.tag, "Invalid data in MIME part.", Code::Parse)
                }
            }
        } else if p.missing {
            // Storage lost messages this session still sees, which it keeps while the session
            // has the mailbox selected: only a mailbox deleted and re-created under it.
            Finish {
                condition: crate::imap::response::Condition::No,
                ..Finish::ok(p.tag, "Some of the requested messages no longer exist.")
                    .with_code(Code::ExpungeIssued)
            }
        } else if p.expunged {
            // RFC 2180 §4.1.2: the data of a message another session expunged, as it was, with
            // the EXPUNGE at the next command that may carry it; RFC 9051 §7.1's EXPUNGEISSUED
            // hints that a NOOP would bring it.
            Finish::ok(
                p.tag,
                "FETCH completed; some messages were expunged meanwhile.",
            )
            .with_code(Code::ExpungeIssued)
        } else {
            Finish::ok(p.tag, "FETCH completed.")
        };
        self.finish(finish.no_expunge());
    }

    /// Ends the response a paused batch left open, before anything else is written.
    fn close_open(&mut self, p: &mut Pending) {
        if p.open.take().is_some() {
            encode::fetch_close(&mut self.out);
        }
    }

    /// Writes one message's FETCH response, an item at a time, adding the octets written to
    /// `held`; `from` is the attribute to go on with when the response was left open. Returns
    /// where to go on when it stops, leaving the response open, because `held` reached
    /// [`HELD_OUTPUT`]. A message not in the view gets nothing.
    ///
    /// An item that cannot be answered (BINARY of a part it cannot decode, a stored body that
    /// cannot be read) is left out and noted in `p.failure`; the others are sent, flags
    /// changed by the FETCH included, as Dovecot 2.3 does (it sends
    /// `* 2 FETCH (FLAGS (\Seen))` for a `BINARY[2]` it cannot decode, then the NO).
    ///
    /// `hint` is where the previous message of the batch was in the view: batches come in
    /// ascending UID order, so the next one is usually right after it.
    fn fetch_message(
        &mut self,
        p: &mut Pending,
        m: &FetchedMessage,
        from: Option<usize>,
        hint: &mut usize,
        held: &mut usize,
    ) -> Option<usize> {
        let rev1 = !self.enabled.rev2;
        let Some(seq) = self.selected_view().and_then(|v| v.seq_near(m.uid, *hint)) else {
            if from.is_some() {
                *held += encode::fetch_close(&mut self.out);
            }
            return None;
        };
        *hint = seq as usize;
        let view = self.selected_view()?;
        let object_key = view.object_key;
        // The next synchronisation reports only changes above the view's MODSEQ.
        let changed_since_sync = m.modseq > view.modseq;
        let recent = rev1 && view.is_recent(m.uid);
        let flags = || {
            let mut f = m.flags.to_flags();
            if recent {
                f.push(Flag::Recent);
            }
            f
        };
        // RFC 9051 §6.4.5: flags changed by the fetch are reported with it, after the items
        // asked for; a change this session reported already (an earlier FETCH set the same
        // \Seen) is not reported again.
        let asked_flags = p.attrs.contains(&FetchAttr::Flags);
        let add_flags = p.mark_seen
            && changed_since_sync
            && !asked_flags
            && view.own_changes.get(&m.uid) != Some(&m.modseq);
        // A FETCH that sets \Seen reports it as an unsolicited FETCH would: with the MODSEQ
        // under CONDSTORE, and the UID too under QRESYNC (RFC 7162 §3.2.4).
        let reports_seen = p.mark_seen && changed_since_sync && (asked_flags || add_flags);
        let mut extra = Vec::new();
        if add_flags {
            extra.push(FetchAttr::Flags);
        }
        if reports_seen && self.enabled.condstore && !p.attrs.contains(&FetchAttr::ModSeq) {
            extra.push(FetchAttr::ModSeq);
        }
        if reports_seen
            && self.enabled.qresync
            && !self.enabled.uidonly
            && !p.attrs.contains(&FetchAttr::Uid)
        {
            extra.push(FetchAttr::Uid);
        }
        let count = p.attrs.len() + extra.len();
        let start = match from {
            Some(next) => next,
            None => {
                if asked_flags || add_flags {
                    // Before the response: nothing may come between its items.
                    self.announce_keywords(&m.flags);
                }
                0
            }
        };
        let opts = self.encode_options();
        let mut open = from.is_some();
        let mut source = Source::new(m, object_key);
        for i in start..count {
            let attr = p
                .attrs
                .get(i)
                .or_else(|| extra.get(i.saturating_sub(p.attrs.len())));
            let item = match attr {
                Some(attr) => source.item(attr, &flags),
                None => Ok(None),
            };
            let item = match item {
                Ok(Some(item)) => item,
                Ok(None) => continue,
                Err(failure) => {
                    p.failure.get_or_insert(failure);
                    continue;
                }
            };
            if changed_since_sync && matches!(item.0, FetchItem::Flags(_)) {
                // This response reports the change, so the next synchronisation need not
                // (the message would otherwise get a second, unsolicited FETCH).
                if let Some(view) = self.selected_view_mut() {
                    view.own_changes.insert(m.uid, m.modseq);
                }
            }
            let first = !open;
            if first {
                *held += if self.enabled.uidonly {
                    encode::uid_fetch_open(&mut self.out, m.uid)
                } else {
                    encode::fetch_open(&mut self.out, seq)
                };
                open = true;
            }
            if item.1.is_some() {
                *held += STREAM_ENTRY;
            }
            *held += encode::fetch_item(&mut self.out, first, item, &opts);
            if *held >= HELD_OUTPUT && i + 1 < count {
                return Some(i + 1);
            }
        }
        if open {
            *held += encode::fetch_close(&mut self.out);
        }
        None
    }
}

/// One message as the items of its response read it.
struct Source<'a> {
    m: &'a FetchedMessage,
    /// For EMAILID and THREADID.
    key: ObjectKey,
    body: Body,
    len: usize,
    /// The last header read whole to be filtered, and the last part BINARY decoded, with
    /// their outcomes: a FETCH that names one header or part in many forms (field lists,
    /// partial ranges, BINARY.SIZE) reads and decodes it once, and holds at most one of each.
    read: Option<(Range<usize>, Result<Bytes, Failure>)>,
    decoded: Option<(Vec<u32>, Result<Bytes, Failure>)>,
}

impl<'a> Source<'a> {
    fn new(m: &'a FetchedMessage, key: ObjectKey) -> Self {
        let body = m.content.clone().unwrap_or_default();
        let len = usize::try_from(body.len()).unwrap_or(usize::MAX);
        Source {
            m,
            key,
            body,
            len,
            read: None,
            decoded: None,
        }
    }

    /// The item answering `attr`: `Ok(None)` when there is nothing to send (the structure was
    /// not loaded, or the attribute was refused before the request was made).
    fn item(
        &mut self,
        attr: &FetchAttr,
        flags: &dyn Fn() -> Vec<Flag>,
    ) -> Result<Option<StreamedItem>, Failure> {
        let m = self.m;
        let root = m.info.as_ref().map(|i| &i.root);
        let len = self.len;
        let item = match attr {
            FetchAttr::Uid => FetchItem::Uid(m.uid),
            FetchAttr::Flags => FetchItem::Flags(flags()),
            FetchAttr::InternalDate => FetchItem::InternalDate(m.internal_date),
            FetchAttr::SaveDate => FetchItem::SaveDate(Some(m.save_date)),
            // Loaded when asked for; NIL only for LAZY without one at hand (RFC 8970 §3.2).
            FetchAttr::Preview { .. } => FetchItem::Preview(
                m.preview
                    .as_deref()
                    .map(|p| Bytes::copy_from_slice(p.as_bytes())),
            ),
            FetchAttr::Rfc822Size => FetchItem::Rfc822Size(m.size),
            FetchAttr::Envelope => match &m.info {
                Some(info) => FetchItem::Envelope(Box::new(info.envelope.clone())),
                None => return Ok(None),
            },
            FetchAttr::Body => match &m.info {
                Some(info) => FetchItem::Body(Box::new(info.body.clone())),
                None => return Ok(None),
            },
            FetchAttr::BodyStructure => match &m.info {
                Some(info) => FetchItem::BodyStructure(Box::new(info.body.clone())),
                None => return Ok(None),
            },
            FetchAttr::Rfc822 => {
                let found = octets(&self.body, 0..len);
                return Ok(Some(data(found, &|d| FetchItem::Rfc822(Some(d)))));
            }
            FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => {
                let header = matches!(attr, FetchAttr::Rfc822Header);
                let range = root
                    .map(|r| {
                        if header {
                            r.header.clone()
                        } else {
                            r.body.clone()
                        }
                    })
                    .filter(|r| r.start <= r.end && r.end <= len)
                    .unwrap_or(0..0);
                let make = |d| {
                    if header {
                        FetchItem::Rfc822Header(Some(d))
                    } else {
                        FetchItem::Rfc822Text(Some(d))
                    }
                };
                return Ok(Some(data(octets(&self.body, range), &make)));
            }
            FetchAttr::BodySection {
                section, partial, ..
            } => {
                let (origin, found) = match root.and_then(|r| section_extent(r, section, len)) {
                    Some(Extent::Range(r)) => {
                        let (origin, r) = cut(r, *partial);
                        (origin, octets(&self.body, r))
                    }
                    Some(Extent::Fields {
                        header,
                        names,
                        keep,
                    }) => {
                        let f = filter_fields(&self.read(header)?, names, keep);
                        let (origin, r) = cut(0..f.len(), *partial);
                        (origin, Octets::Bytes(f.slice(r)))
                    }
                    None => (partial.map(|p| p.origin), Octets::Bytes(Bytes::new())),
                };
                // Named as asked: `fetch` upper-cased the field names already.
                return Ok(Some(data(found, &|d| FetchItem::BodySection {
                    section: section.clone(),
                    origin,
                    data: Some(d),
                })));
            }
            FetchAttr::Binary { part, partial, .. } => {
                let (origin, found) = match root.map(|r| binary_extent(r, part, len)) {
                    Some(Ok(Some(BinaryExtent::Range(r)))) => {
                        let (origin, r) = cut(r, *partial);
                        (origin, octets(&self.body, r))
                    }
                    Some(Ok(Some(extent))) => {
                        let d = self.decoded(part, &extent)?;
                        let (origin, r) = cut(0..d.len(), *partial);
                        (origin, Octets::Bytes(d.slice(r)))
                    }
                    // A part that does not exist is empty, as Dovecot answers it
                    // (BINARY[5] {0}), like BODY[5].
                    Some(Ok(None)) | None => (None, Octets::Bytes(Bytes::new())),
                    Some(Err(e)) => return Err(Failure::Binary(e)),
                };
                return Ok(Some(data(found, &|d| FetchItem::Binary {
                    part: part.clone(),
                    origin,
                    data: Some(d),
                })));
            }
            FetchAttr::BinarySize { part } => {
                let size = match root.map(|r| binary_extent(r, part, len)) {
                    Some(Ok(Some(BinaryExtent::Range(r)))) => r.len() as u64,
                    Some(Ok(Some(extent))) => self.decoded_size(part, &extent)?,
                    Some(Ok(None)) | None => 0,
                    Some(Err(e)) => return Err(Failure::Binary(e)),
                };
                FetchItem::BinarySize {
                    part: part.clone(),
                    size,
                }
            }
            // RFC 8474 §5.3. Every message is threaded when stored, so THREADID is never NIL.
            FetchAttr::EmailId => {
                FetchItem::EmailId(objectid::email(self.key, m.email_id).to_bytes())
            }
            FetchAttr::ThreadId => {
                FetchItem::ThreadId(Some(objectid::thread(self.key, m.thread_id).to_bytes()))
            }
            FetchAttr::ModSeq => FetchItem::ModSeq(m.modseq),
        };
        Ok(Some((item, None)))
    }

    /// The octets of `range`, read whole: only for what must be transformed (a header to
    /// filter), so at most that part of a large message is in memory.
    fn read(&mut self, range: Range<usize>) -> Result<Bytes, Failure> {
        match &self.read {
            Some((r, got)) if *r == range => got.clone(),
            _ => {
                let got = read(&self.body, range.clone());
                self.read = Some((range, got.clone()));
                got
            }
        }
    }

    /// A part's decoded size for BINARY.SIZE: counted as its octets are read, a chunk at a
    /// time, unless BINARY decoded it already.
    fn decoded_size(&mut self, part: &[u32], extent: &BinaryExtent) -> Result<u64, Failure> {
        if let Some((p, got)) = &self.decoded {
            if p == part {
                return got.as_ref().map(|d| d.len() as u64).map_err(Clone::clone);
            }
        }
        let mut size = DecodedSize::new(extent);
        let range = extent.range();
        let mut at = range.start;
        while at < range.end {
            let end = range.end.min(at.saturating_add(SIZE_CHUNK));
            size.push(&read(&self.body, at..end)?);
            at = end;
        }
        size.finish().map_err(Failure::Binary)
    }

    /// A part's decoded content for BINARY.
    fn decoded(&mut self, part: &[u32], extent: &BinaryExtent) -> Result<Bytes, Failure> {
        match &self.decoded {
            Some((p, got)) if p == part => got.clone(),
            _ => {
                let got = read(&self.body, extent.range())
                    .and_then(|raw| extent.decode(raw).map_err(Failure::Binary));
                self.decoded = Some((part.to_vec(), got.clone()));
                got
            }
        }
    }
}

/// A message-data item: its octets in place, or a stream sent after its prefix.
fn data(octets: Octets, make: &dyn Fn(Bytes) -> FetchItem) -> StreamedItem {
    match octets {
        Octets::Bytes(b) => (make(b), None),
        Octets::Stream(s) => (make(Bytes::new()), Some(Box::new(s))),
    }
}

/// The attributes without repeats, in the order first asked, each as its response names it:
/// RFC 9051 §7.5.2 answers `BODY[x]` and `BODY.PEEK[x]` alike as `BODY[x]` (and BINARY
/// likewise), and header field names go upper-cased. An attribute asked for again would get
/// the same data again (RFC 9051 §6.4.5: a client "can safely ignore" data it already has),
/// so it is answered once: thousands of repeats fit in a command line, and each would be read,
/// decoded and written again. Dovecot 2.3 merges repeats of FLAGS, UID, RFC822.SIZE,
/// ENVELOPE and the like but answers each repeat of a section; tern answers sections once too.
///
/// `PREVIEW` and `PREVIEW (LAZY)` name one item: asked for both ways, it is answered once, as
/// the one without LAZY (which may not be NIL).
fn merged(attrs: Vec<FetchAttr>) -> Vec<FetchAttr> {
    let mut seen = HashSet::with_capacity(attrs.len());
    let eager = attrs.contains(&FetchAttr::Preview { lazy: false });
    attrs
        .into_iter()
        .map(|attr| match attr {
            FetchAttr::BodySection {
                section, partial, ..
            } => FetchAttr::BodySection {
                peek: true,
                section: echoed(&section),
                partial,
            },
            FetchAttr::Binary { part, partial, .. } => FetchAttr::Binary {
                peek: true,
                part,
                partial,
            },
            FetchAttr::Preview { .. } if eager => FetchAttr::Preview { lazy: false },
            other => other,
        })
        .filter(|attr| seen.insert(attr.clone()))
        .collect()
}

/// The section as the response names it: header field names upper-cased, as Dovecot
/// sends them (clients compare them case-insensitively, RFC 9051 §7.5.2).
fn echoed(section: &Section) -> Section {
    let upper = |names: &[Bytes]| {
        names
            .iter()
            .map(|n| Bytes::from(n.to_ascii_uppercase()))
            .collect()
    };
    let text = match &section.text {
        Some(SectionText::HeaderFields(n)) => Some(SectionText::HeaderFields(upper(n))),
        Some(SectionText::HeaderFieldsNot(n)) => Some(SectionText::HeaderFieldsNot(upper(n))),
        other => other.clone(),
    };
    Section {
        part: section.part.clone(),
        text,
    }
}

/// Applies `<origin.length>` to a range: the octets from origin, at most length of them.
fn cut(range: Range<usize>, partial: Option<Partial>) -> (Option<u32>, Range<usize>) {
    match partial {
        None => (None, range),
        Some(Partial { origin, length }) => {
            let start = range.start.saturating_add(origin as usize).min(range.end);
            let end = start.saturating_add(length.get() as usize).min(range.end);
            (Some(origin), start..end)
        }
    }
}

/// A message-data item's octets.
enum Octets {
    Bytes(Bytes),
    /// Read by the driver as it sends them.
    Stream(BodyStream),
}

/// `range` of the message (within it): sliced from memory, or streamed from a source, so that
/// a large message is never loaded whole to be sent.
fn octets(body: &Body, range: Range<usize>) -> Octets {
    match body {
        Body::Inline(b) => Octets::Bytes(
            b.get(range.clone())
                .map_or_else(Bytes::new, |_| b.slice(range)),
        ),
        Body::Source(s) => Octets::Stream(BodyStream::new(
            s.clone(),
            range.start as u64..range.end as u64,
            Transfer::Verbatim,
        )),
    }
}

/// The octets of `range`, read whole.
fn read(body: &Body, range: Range<usize>) -> Result<Bytes, Failure> {
    body.read_range(range.start as u64..range.end as u64)
        .map_err(|_| Failure::Unreadable)
}
