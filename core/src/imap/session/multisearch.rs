//! MULTISEARCH (RFC 7377): `ESEARCH IN (sources) ...`, a UID SEARCH of several mailboxes at
//! once, answered with one ESEARCH response per mailbox that has matches, each naming the
//! command's tag, the mailbox and its UIDVALIDITY.
//!
//! The selected mailbox is searched through the session's view, as UID SEARCH would be (its
//! message numbers, `$` and `\Recent` are the session's). Every other mailbox is opened
//! read-only, which claims nothing, and searched in the snapshot the opening returned; the
//! snapshot goes when the next mailbox is opened. One mailbox is in flight at a time, so a
//! search of a thousand mailboxes holds one mailbox's UIDs, not a thousand.

use std::collections::VecDeque;

use bytes::Bytes;

use super::search::{esearch_results, resolve};
use super::view::View;
use super::{progress_counts, Finish, ImapSession, Pending as SessionPending, State};
use crate::imap::command::{SearchProgram, Tag};
use crate::imap::response::{Data, Response};
use crate::imap::types::{MailboxArg, NotifyFilter, SearchReturn};
use crate::mail::mailbox_name::DELIMITER;
use crate::store::{MailboxList, ModSeq, StorageOp, StorageReply, StorageResult, Uid};

/// An ESEARCH over other mailboxes in progress.
#[derive(Debug)]
pub(super) struct Pending {
    tag: Tag,
    returns: Vec<SearchReturn>,
    program: SearchProgram,
    /// RFC 7162 §3.1.5: the criteria name a MODSEQ, so each answer carries the highest
    /// MODSEQ of its matches, all of which lie above this.
    modseq_floor: Option<ModSeq>,
    /// The mailboxes still to search, canonical names in the order they are answered.
    queue: VecDeque<String>,
    /// How many mailboxes the sources named.
    total: usize,
    step: Step,
}

#[derive(Debug)]
enum Step {
    /// The account's mailboxes are being listed, to resolve these sources.
    List(Vec<Source>),
    /// Mailbox `name` is being opened.
    Open(String),
    /// Mailbox `name`, of this UIDVALIDITY, is being searched.
    Search {
        name: String,
        uid_validity: u32,
        mailbox: crate::store::MailboxId,
        uid_next: Uid,
    },
    /// The MODSEQs of `found`, the matches in mailbox `name`, are being looked up.
    ModSeq {
        name: String,
        uid_validity: u32,
        found: Vec<Uid>,
    },
}

impl Pending {
    /// Mailboxes searched so far and in all, for INPROGRESS (RFC 9585).
    pub(super) fn progress(&self) -> (Option<u32>, Option<u32>) {
        match self.step {
            Step::List(_) => (None, None),
            _ => progress_counts(self.total - self.queue.len() - 1, self.total),
        }
    }
}

impl ImapSession {
    /// ESEARCH (RFC 7377 §2).
    pub(super) fn esearch(
        &mut self,
        tag: Tag,
        sources: Option<Vec<NotifyFilter>>,
        returns: Option<Vec<SearchReturn>>,
        program: SearchProgram,
    ) {
        let selected = matches!(self.state, State::Selected { .. });
        let sources = sources.unwrap_or_else(|| vec![NotifyFilter::Selected]);
        let only_selected = sources.iter().all(|s| *s == NotifyFilter::Selected);
        let why = if sources.contains(&NotifyFilter::SelectedDelayed) {
            // §2.2, item 1.
            Some("selected-delayed is not a search source.")
        } else if sources.contains(&NotifyFilter::Selected) && !selected {
            Some("No mailbox selected.")
        } else if returns
            .as_deref()
            .is_some_and(|r| r.contains(&SearchReturn::Save))
            && !only_selected
        {
            // §2.2: SAVE only when the selected mailbox is the sole source.
            Some("SAVE is only allowed when searching the selected mailbox alone.")
        } else {
            None
        };
        if let Some(why) = why {
            self.bad(Some(tag), None, why);
            return;
        }
        if only_selected {
            let Some(correlator) = self.selected_correlator() else {
                return;
            };
            return self.search_selected(tag, true, returns, program, Some(correlator));
        }
        let Some(modseq_floor) = self.check_search(&tag, returns.as_deref(), &program, false)
        else {
            return;
        };
        let mut decoded = Vec::with_capacity(sources.len());
        for source in &sources {
            // An undecodable name has been answered (NO or BAD) already.
            let Some(source) = self.decode_source(&tag, source) else {
                return;
            };
            decoded.push(source);
        }
        let Some(account) = self.account_name() else {
            return;
        };
        // §2.1: a source without return options means ALL.
        let returns = match returns {
            Some(r) if !r.is_empty() => r,
            _ => vec![SearchReturn::All],
        };
        let pending = Pending {
            tag,
            returns,
            program,
            modseq_floor,
            queue: VecDeque::new(),
            total: 0,
            step: Step::List(decoded),
        };
        self.request_alone(
            StorageOp::ListMailboxes { account },
            SessionPending::MultiSearch(Box::new(pending)),
        );
    }

    fn decode_source(&mut self, tag: &Tag, source: &NotifyFilter) -> Option<Source> {
        let mut names = |boxes: &[MailboxArg]| -> Option<Vec<String>> {
            boxes.iter().map(|b| self.mailbox_name(tag, b)).collect()
        };
        Some(match source {
            NotifyFilter::Selected | NotifyFilter::SelectedDelayed => Source::Selected,
            NotifyFilter::Inboxes => Source::Inboxes,
            NotifyFilter::Personal => Source::Personal,
            NotifyFilter::Subscribed => Source::Subscribed,
            NotifyFilter::Subtree(b) => Source::Subtree(names(b)?),
            NotifyFilter::SubtreeOne(b) => Source::SubtreeOne(names(b)?),
            NotifyFilter::Mailboxes(b) => Source::Mailboxes(names(b)?),
        })
    }

    /// The selected mailbox's MAILBOX and UIDVALIDITY correlators.
    fn selected_correlator(&self) -> Option<(Bytes, u32)> {
        let State::Selected { view, .. } = &self.state else {
            return None;
        };
        Some((self.wire_name(&view.name), view.uid_validity))
    }

    pub(super) fn multisearch_reply(&mut self, mut p: Box<Pending>, reply: StorageResult) {
        let step = std::mem::replace(&mut p.step, Step::List(Vec::new()));
        match (step, reply) {
            (Step::List(sources), Ok(StorageReply::Mailboxes(list))) => {
                let selected = match &self.state {
                    State::Selected { view, .. } => Some(view.name.clone()),
                    _ => None,
                };
                p.queue = sources_to_names(&sources, &list, selected.as_deref());
                p.total = p.queue.len();
                self.next_mailbox(p);
            }
            (Step::Open(name), Ok(StorageReply::Opened(snap))) => {
                let uid_validity = snap.uid_validity;
                let view = View::of(snap, name.clone(), true, !self.enabled.rev2);
                let query = match resolve(&view, &p.program) {
                    Ok(q) => q,
                    Err(why) => return self.bad(Some(p.tag), None, why),
                };
                let Some(account) = self.account_name() else {
                    return;
                };
                p.step = Step::Search {
                    name,
                    uid_validity,
                    mailbox: view.id,
                    uid_next: view.uid_next,
                };
                let op = StorageOp::Search {
                    account,
                    mailbox: view.id,
                    uids: view.uids.to_vec(),
                    query,
                };
                self.request_alone(op, SessionPending::MultiSearch(p));
            }
            // A mailbox deleted (or renamed) since it was listed is not searched, as one
            // the client may not see is not (§2.2).
            (Step::Open(_), Err(crate::store::StorageError::NoSuchMailbox)) => self.next_mailbox(p),
            (
                Step::Search {
                    name,
                    uid_validity,
                    mailbox,
                    uid_next,
                },
                Ok(StorageReply::Found(found)),
            ) => match p.modseq_floor {
                Some(since) if !found.is_empty() => {
                    let Some(account) = self.account_name() else {
                        return;
                    };
                    p.step = Step::ModSeq {
                        name,
                        uid_validity,
                        found,
                    };
                    let op = StorageOp::Changes {
                        account,
                        mailbox,
                        uid_next,
                        since,
                        claim_recent: false,
                    };
                    self.request_alone(op, SessionPending::MultiSearch(p));
                }
                _ => {
                    self.answer_mailbox(&p, &name, uid_validity, &found, None);
                    self.next_mailbox(p);
                }
            },
            (
                Step::ModSeq {
                    name,
                    uid_validity,
                    found,
                },
                Ok(StorageReply::Changes(changes)),
            ) => {
                let highest = changes
                    .changed
                    .iter()
                    .filter(|m| found.binary_search(&m.uid).is_ok())
                    .map(|m| m.modseq)
                    .max();
                self.answer_mailbox(&p, &name, uid_validity, &found, highest);
                self.next_mailbox(p);
            }
            (_, Err(e)) => self.storage_failed(p.tag, &e),
            (_, Ok(_)) => self.unexpected(p.tag),
        }
    }

    /// Opens the next mailbox to search, or ends the command.
    fn next_mailbox(&mut self, mut p: Box<Pending>) {
        let Some(name) = p.queue.pop_front() else {
            return self.finish(Finish::ok(p.tag, "ESEARCH completed.").no_expunge());
        };
        let Some(account) = self.account_name() else {
            return;
        };
        if let State::Selected { view, .. } = &self.state {
            if view.name == name {
                // Searched in the session's view; the answer comes straight away, and the
                // rest follow from the reply.
                let (mailbox, uid_validity) = (view.id, view.uid_validity);
                let query = match resolve(view, &p.program) {
                    Ok(q) => q,
                    Err(why) => return self.bad(Some(p.tag), None, why),
                };
                p.step = Step::Search {
                    name,
                    uid_validity,
                    mailbox,
                    uid_next: view.uid_next,
                };
                let op = StorageOp::Search {
                    account,
                    mailbox,
                    uids: view.uids.to_vec(),
                    query,
                };
                return self.request_alone(op, SessionPending::MultiSearch(p));
            }
        }
        p.step = Step::Open(name.clone());
        let op = StorageOp::Open {
            account,
            name,
            read_only: true,
        };
        self.request_alone(op, SessionPending::MultiSearch(p));
    }

    /// One mailbox's ESEARCH response, when it has matches (§2.1).
    fn answer_mailbox(
        &mut self,
        p: &Pending,
        name: &str,
        uid_validity: u32,
        found: &[Uid],
        modseq: Option<ModSeq>,
    ) {
        if found.is_empty() {
            return;
        }
        let results = esearch_results(&p.returns, found, modseq);
        self.send(Response::Data(Data::ESearch {
            tag: Some(p.tag.clone()),
            mailbox: Some((self.wire_name(name), uid_validity)),
            uid: true,
            results,
        }));
    }
}

/// A search source with its mailbox names decoded (RFC 5465 §6, RFC 7377 §2.2).
#[derive(Debug)]
enum Source {
    Selected,
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    SubtreeOne(Vec<String>),
    Mailboxes(Vec<String>),
}

impl Source {
    /// Whether mailbox `name` is one this source names.
    fn names(&self, name: &str, subscribed: &[String]) -> bool {
        let under = |root: &String, one_level: bool| match name
            .strip_prefix(root.as_str())
            .and_then(|r| r.strip_prefix(DELIMITER))
        {
            Some(rest) => !one_level || !rest.contains(DELIMITER),
            None => name == root,
        };
        match self {
            Source::Selected => false,
            // Where a delivery agent puts new mail: LMTP and `tern deliver` deliver to INBOX.
            Source::Inboxes => name == "INBOX",
            Source::Personal => true,
            Source::Subscribed => subscribed.iter().any(|s| s == name),
            Source::Subtree(roots) => roots.iter().any(|r| under(r, false)),
            Source::SubtreeOne(roots) => roots.iter().any(|r| under(r, true)),
            Source::Mailboxes(names) => names.iter().any(|n| n == name),
        }
    }
}

/// The mailboxes the sources name, each once and only those that exist and can be selected:
/// the selected mailbox first when named, then the others in the account's listing order.
fn sources_to_names(
    sources: &[Source],
    list: &MailboxList,
    selected: Option<&str>,
) -> VecDeque<String> {
    let named = |name: &str| sources.iter().any(|s| s.names(name, &list.subscribed));
    let mut queue = VecDeque::new();
    if let Some(selected) = selected {
        if sources.iter().any(|s| matches!(s, Source::Selected)) || named(selected) {
            queue.push_back(selected.to_string());
        }
    }
    for m in &list.mailboxes {
        if m.selectable && Some(m.name.as_str()) != selected && named(&m.name) {
            queue.push_back(m.name.clone());
        }
    }
    queue
}
