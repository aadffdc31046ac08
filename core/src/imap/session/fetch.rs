//! FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY): one storage request loads what the attributes
//! need; responses are built from the stored structure without parsing the message again.

use std::ops::Range;

use bytes::Bytes;

use super::{Finish, ImapSession, Pending as SessionPending};
use crate::imap::command::{Command, CommandLine, Tag};
use crate::imap::encode::StreamedItem;
use crate::imap::response::{Code, FetchItem};
use crate::imap::types::{FetchAttr, FetchItems, FetchModifiers, Partial, SequenceSet};
use crate::mail::flags::Flag;
use crate::mail::section::{
    binary_extent, filter_fields, section_extent, BinaryError, BinaryExtent, Extent, Section,
    SectionText,
};
use crate::store::{
    Body, BodyStream, FetchWant, FetchedMessage, StorageOp, StorageReply, StorageResult, Transfer,
    Uid,
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
    rest: Vec<Uid>,
    /// Some messages of an earlier batch had been expunged meanwhile, and storage no longer
    /// had them.
    missing: bool,
    /// Some were expunged by another session, and answered as they were (RFC 2180 §4.1.2).
    expunged: bool,
    /// The first message data that could not be answered (BINARY could not decode a part,
    /// a stored body could not be read), in this or an earlier batch.
    failure: Option<Failure>,
}

/// Why a message's data could not be sent.
#[derive(Debug)]
enum Failure {
    Binary(BinaryError),
    /// The stored body could not be read (a damaged store).
    Unreadable,
}

/// Messages per storage request when bodies are fetched: the response for one batch is built
/// before any of it is sent, so this bounds a session's memory however much a
/// `FETCH 1:* BODY[]` asks for, and a client that stops reading stalls the next batch instead
/// of growing a buffer. Large bodies are streams in that response, not octets, so a batch
/// holds at most this many small (inline) bodies.
const CONTENT_BATCH: usize = 8;
/// Messages per storage request for stored structure (envelopes, body structures), some
/// hundreds of octets each.
const STRUCTURE_BATCH: usize = 1024;
/// Messages per storage request for the per-message row alone (UID, flags, size, date):
/// under a hundred octets of response each, so a `FETCH 1:* (FLAGS)` of 100,000 messages
/// takes 25 round trips to storage rather than 100.
const ROW_BATCH: usize = 4096;

impl ImapSession {
    pub(super) fn fetch(
        &mut self,
        tag: Tag,
        uid: bool,
        set: SequenceSet,
        items: FetchItems,
        modifiers: FetchModifiers,
    ) {
        if modifiers != FetchModifiers::default() {
            self.bad(
                Some(tag),
                None,
                "FETCH modifiers need CONDSTORE, which is not enabled.",
            );
            return;
        }
        let mut attrs = items.expand();
        if attrs.iter().any(|a| {
            matches!(
                a,
                FetchAttr::EmailId
                    | FetchAttr::ThreadId
                    | FetchAttr::SaveDate
                    | FetchAttr::Preview { .. }
                    | FetchAttr::ModSeq
            )
        }) {
            self.bad(Some(tag), None, "FETCH attribute not supported.");
            return;
        }
        if uid && !attrs.contains(&FetchAttr::Uid) {
            // RFC 9051 §6.4.9: UID FETCH always reports the UID.
            attrs.insert(0, FetchAttr::Uid);
        }
        let (rerun_set, rerun_items, rerun_tag) = (set.clone(), items.clone(), tag.clone());
        let Some(uids) = self.resolve(&tag, uid, &set, move || CommandLine {
            tag: rerun_tag,
            command: Command::Fetch {
                uid,
                set: rerun_set,
                items: rerun_items,
                modifiers: FetchModifiers::default(),
            },
        }) else {
            return;
        };
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
        // RFC 9051 §6.4.5: BODY[...] without PEEK sets \Seen, unless the mailbox is read-only.
        let mark_seen = !view.read_only
            && attrs.iter().any(|a| {
                matches!(
                    a,
                    FetchAttr::Rfc822
                        | FetchAttr::Rfc822Text
                        | FetchAttr::BodySection { peek: false, .. }
                        | FetchAttr::Binary { peek: false, .. }
                )
            });
        if uids.is_empty() {
            self.finish(Finish::ok(tag, "FETCH completed.").no_expunge());
            return;
        }
        let want = FetchWant { content, info };
        self.fetch_batch(Pending {
            tag,
            attrs,
            requested: 0,
            mark_seen,
            want,
            rest: uids,
            missing: false,
            expunged: false,
            failure: None,
        });
    }

    /// Asks storage for the next batch of a FETCH.
    fn fetch_batch(&mut self, mut p: Pending) {
        let Some(view) = self.selected_view() else {
            return;
        };
        let batch = if p.want.content {
            CONTENT_BATCH
        } else if p.want.info {
            STRUCTURE_BATCH
        } else {
            ROW_BATCH
        };
        let rest = p.rest.split_off(p.rest.len().min(batch));
        let uids = std::mem::replace(&mut p.rest, rest);
        p.requested = uids.len();
        let op = StorageOp::Fetch {
            account: self.account().unwrap_or("").to_string(),
            mailbox: view.id,
            uids,
            want: p.want,
            mark_seen: p.mark_seen,
        };
        self.request(op, SessionPending::Fetch(p));
    }

    pub(super) fn fetch_reply(&mut self, mut p: Pending, reply: StorageResult) {
        let messages = match reply {
            Ok(StorageReply::Fetched(m)) => m,
            Err(e) => return self.storage_failed(p.tag, &e),
            Ok(_) => return self.unexpected(p.tag),
        };
        p.missing |= messages.len() < p.requested;
        p.expunged |= messages.iter().any(|m| m.expunged);
        let mut hint = 0;
        for m in &messages {
            let mut failure = None;
            let fetched = self.fetch_items(&p, m, &mut hint, &mut failure);
            if failure.is_some() {
                p.failure = p.failure.take().or(failure);
                continue;
            }
            if let Some((seq, items)) = fetched.filter(|(_, items)| !items.is_empty()) {
                if items.iter().any(|(i, _)| matches!(i, FetchItem::Flags(_))) {
                    self.announce_keywords(&m.flags);
                }
                // Written as it is (no copy into a `Response` first): a FETCH of every
                // message's flags is mostly this loop.
                let opts = self.encode_options();
                crate::imap::encode::fetch_streamed(&mut self.out, seq, items, &opts);
            }
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

    /// The FETCH items for one message; `None` when the message is not in the view. A part
    /// BINARY cannot decode is noted in `failure` (the items are then not sent).
    ///
    /// `hint` is where the previous message of the batch was in the view: batches come in
    /// ascending UID order, so the next one is usually right after it.
    fn fetch_items(
        &mut self,
        p: &Pending,
        m: &FetchedMessage,
        hint: &mut usize,
        failure: &mut Option<Failure>,
    ) -> Option<(u32, Vec<StreamedItem>)> {
        let rev1 = !self.enabled.rev2;
        let view = self.selected_view_mut()?;
        let seq = view.seq_near(m.uid, *hint)?;
        *hint = seq as usize;
        // Flags this response reports need not be reported again by the next synchronisation
        // (the same message would otherwise get a second, unsolicited FETCH). That reports
        // only changes above the view's MODSEQ, so older ones need no note.
        let changed_since_sync = m.modseq > view.modseq;
        let newly_seen = p.mark_seen && changed_since_sync;
        if changed_since_sync && (p.mark_seen || p.attrs.contains(&FetchAttr::Flags)) {
            view.own_changes.insert(m.uid, m.modseq);
        }
        let recent = rev1 && view.is_recent(m.uid);
        let flags = || {
            let mut f = m.flags.to_flags();
            if recent {
                f.push(Flag::Recent);
            }
            f
        };
        let body = m.content.clone().unwrap_or_default();
        let len = usize::try_from(body.len()).unwrap_or(usize::MAX);
        let root = m.info.as_ref().map(|i| &i.root);
        // A message-data item: its octets in place, or a stream sent after its prefix.
        let data = |octets: Octets, make: &dyn Fn(Bytes) -> FetchItem| match octets {
            Octets::Bytes(b) => (make(b), None),
            Octets::Stream(s) => (make(Bytes::new()), Some(Box::new(s))),
        };
        let mut items = Vec::with_capacity(p.attrs.len() + 1);
        for attr in &p.attrs {
            let item = match attr {
                FetchAttr::Uid => FetchItem::Uid(m.uid),
                FetchAttr::Flags => FetchItem::Flags(flags()),
                FetchAttr::InternalDate => FetchItem::InternalDate(m.internal_date),
                FetchAttr::Rfc822Size => FetchItem::Rfc822Size(m.size),
                FetchAttr::Envelope => match &m.info {
                    Some(info) => FetchItem::Envelope(Box::new(info.envelope.clone())),
                    None => continue,
                },
                FetchAttr::Body => match &m.info {
                    Some(info) => FetchItem::Body(Box::new(info.body.clone())),
                    None => continue,
                },
                FetchAttr::BodyStructure => match &m.info {
                    Some(info) => FetchItem::BodyStructure(Box::new(info.body.clone())),
                    None => continue,
                },
                FetchAttr::Rfc822 => {
                    items.push(data(octets(&body, 0..len), &|d| FetchItem::Rfc822(Some(d))));
                    continue;
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
                    items.push(data(octets(&body, range), &make));
                    continue;
                }
                FetchAttr::BodySection {
                    section, partial, ..
                } => {
                    let extent = root.and_then(|r| section_extent(r, section, len));
                    let found = match extent {
                        Some(Extent::Range(r)) => {
                            let (origin, r) = cut(r, *partial);
                            Ok((origin, octets(&body, r)))
                        }
                        Some(Extent::Fields {
                            header,
                            names,
                            keep,
                        }) => read(&body, header).map(|h| {
                            let f = filter_fields(&h, names, keep);
                            let (origin, r) = cut(0..f.len(), *partial);
                            (origin, Octets::Bytes(f.slice(r)))
                        }),
                        None => Ok((partial.map(|p| p.origin), Octets::Bytes(Bytes::new()))),
                    };
                    let (origin, found) = match found {
                        Ok(found) => found,
                        Err(e) => {
                            failure.get_or_insert(e);
                            continue;
                        }
                    };
                    let section = echoed(section);
                    items.push(data(found, &|d| FetchItem::BodySection {
                        section: section.clone(),
                        origin,
                        data: Some(d),
                    }));
                    continue;
                }
                FetchAttr::Binary { part, partial, .. } => {
                    let found = match root.map(|r| binary_extent(r, part, len)) {
                        Some(Ok(Some(BinaryExtent::Range(r)))) => {
                            let (origin, r) = cut(r, *partial);
                            Ok((origin, octets(&body, r)))
                        }
                        Some(Ok(Some(extent))) => decoded(&body, &extent).map(|d| {
                            let (origin, r) = cut(0..d.len(), *partial);
                            (origin, Octets::Bytes(d.slice(r)))
                        }),
                        // A part that does not exist is empty, as Dovecot answers it
                        // (BINARY[5] {0}), like BODY[5].
                        Some(Ok(None)) | None => Ok((None, Octets::Bytes(Bytes::new()))),
                        Some(Err(e)) => Err(Failure::Binary(e)),
                    };
                    match found {
                        Ok((origin, found)) => items.push(data(found, &|d| FetchItem::Binary {
                            part: part.clone(),
                            origin,
                            data: Some(d),
                        })),
                        Err(e) => {
                            failure.get_or_insert(e);
                        }
                    }
                    continue;
                }
                FetchAttr::BinarySize { part } => {
                    let size = match root.map(|r| binary_extent(r, part, len)) {
                        Some(Ok(Some(BinaryExtent::Range(r)))) => Ok(r.len() as u64),
                        Some(Ok(Some(extent))) => decoded(&body, &extent).map(|d| d.len() as u64),
                        Some(Ok(None)) | None => Ok(0),
                        Some(Err(e)) => Err(Failure::Binary(e)),
                    };
                    match size {
                        Ok(size) => FetchItem::BinarySize {
                            part: part.clone(),
                            size,
                        },
                        Err(e) => {
                            failure.get_or_insert(e);
                            continue;
                        }
                    }
                }
                // Refused before the request was made.
                FetchAttr::ModSeq
                | FetchAttr::EmailId
                | FetchAttr::ThreadId
                | FetchAttr::SaveDate
                | FetchAttr::Preview { .. } => continue,
            };
            items.push((item, None));
        }
        if newly_seen && !p.attrs.contains(&FetchAttr::Flags) {
            // RFC 9051 §6.4.5: flags changed by the fetch are reported with it.
            items.push((FetchItem::Flags(flags()), None));
        }
        Some((seq, items))
    }
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

/// The octets of `range`, read whole: only for what must be transformed (a header to filter,
/// a part to decode), so at most that part of a large message is in memory.
fn read(body: &Body, range: Range<usize>) -> Result<Bytes, Failure> {
    body.read_range(range.start as u64..range.end as u64)
        .map_err(|_| Failure::Unreadable)
}

/// A part's decoded content for BINARY.
fn decoded(body: &Body, extent: &BinaryExtent) -> Result<Bytes, Failure> {
    extent
        .decode(read(body, extent.range())?)
        .map_err(Failure::Binary)
}
