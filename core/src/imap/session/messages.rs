//! Selecting a mailbox and changing its messages: SELECT, EXAMINE, the synchronisation that
//! reports other sessions' changes, CLOSE, UNSELECT, EXPUNGE, STORE, COPY, MOVE, APPEND,
//! REPLACE, IDLE.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::view::{to_set, View};
use super::{Expect, Finish, ImapSession, Pending as SessionPending, State};
use crate::imap::command::{CommandLine, Tag};
use crate::imap::response::{Code, Condition, Data, FetchItem, ListItem, Response};
use crate::imap::types::{AppendMessage, MailboxArg, SelectParam, SeqNo, SeqRange, SequenceSet};
use crate::mail::flags::{Flag, Flags, StoreMode, SystemFlag};
use crate::mail::text::crlf;
use crate::store::objectid;
use crate::store::{
    ChangeSet, MailboxId, MessageState, NewMessage, Snapshot, StorageError, StorageOp,
    StorageReply, StorageResult, Uid,
};
use crate::time::Timer;

#[derive(Debug)]
pub(super) enum Pending {
    Select {
        tag: Tag,
        read_only: bool,
        name: String,
        /// The name as the client sent it, for OLDNAME.
        sent: Bytes,
        /// QRESYNC's parameters (RFC 7162 §3.2.5).
        resync: Option<Box<SelectParam>>,
    },
    Append {
        tag: Tag,
        target: String,
    },
    Replace {
        tag: Tag,
        /// The message replaced, to be announced as expunged.
        uid: Uid,
    },
    Store {
        tag: Tag,
        uid: bool,
        silent: bool,
    },
    Expunge {
        tag: Tag,
        silent_close: bool,
    },
    Copy {
        tag: Tag,
        remove: bool,
    },
}

impl ImapSession {
    pub(super) fn selected_view(&self) -> Option<&View> {
        match &self.state {
            State::Selected { view, .. } => Some(view),
            _ => None,
        }
    }

    pub(super) fn selected_view_mut(&mut self) -> Option<&mut View> {
        match &mut self.state {
            State::Selected { view, .. } => Some(view),
            _ => None,
        }
    }

    /// Leaves the selected state (if in it), keeping the account.
    pub(super) fn deselect(&mut self) -> bool {
        let previous = std::mem::replace(&mut self.state, State::NotAuthenticated);
        let (state, was) = match previous {
            State::Selected { account, .. } => (State::Authenticated { account }, true),
            other => (other, false),
        };
        self.state = state;
        self.dirty = false;
        self.notice = 0;
        self.synced = None;
        was
    }

    pub(super) fn select(
        &mut self,
        tag: Tag,
        mailbox: &MailboxArg,
        params: &[SelectParam],
        read_only: bool,
    ) {
        let mut resync = None;
        let mut condstore = false;
        for param in params {
            match param {
                SelectParam::CondStore if !condstore => condstore = true,
                SelectParam::QResync { .. } if resync.is_none() => {
                    // RFC 7162 §3.2.5: BAD unless ENABLE QRESYNC came first.
                    if !self.enabled.qresync {
                        self.bad(Some(tag), None, "QRESYNC is not enabled.");
                        return;
                    }
                    resync = Some(Box::new(param.clone()));
                }
                _ => {
                    self.bad(Some(tag), None, "SELECT parameter given twice.");
                    return;
                }
            }
        }
        let Some(name) = self.mailbox_name(&tag, mailbox) else {
            return;
        };
        if condstore {
            // RFC 7162 §3.1.8: a CONDSTORE-enabling command; the HIGHESTMODSEQ it calls for
            // comes with the new mailbox's.
            self.enabled.condstore = true;
        }
        // RFC 9051 §6.3.2: selecting ends the previous selection, even if this one fails.
        if self.deselect() {
            self.untagged(
                Condition::Ok,
                Some(Code::Closed),
                "Previous mailbox closed.",
            );
        }
        let Some(account) = self.account_name() else {
            return;
        };
        self.request(
            StorageOp::Open {
                account,
                name: name.clone(),
                // IMAP4rev2 has no \Recent (RFC 9051 §2.3.2): its sessions must not take it
                // from IMAP4rev1 sessions, at SELECT as at every later synchronisation.
                read_only: read_only || self.enabled.rev2,
            },
            SessionPending::Message(Pending::Select {
                tag,
                read_only,
                name,
                sent: mailbox.0.clone(),
                resync,
            }),
        );
    }

    fn opened(
        &mut self,
        tag: Tag,
        read_only: bool,
        name: &str,
        sent: &Bytes,
        snap: Snapshot,
        resync: Option<Box<SelectParam>>,
    ) {
        let rev1 = !self.enabled.rev2;
        let first_unseen = snap
            .first_unseen
            .and_then(|uid| snap.uids.binary_search(&uid).ok())
            .map(|i| i as u32 + 1);
        let view = View::of(snap, name.to_string(), read_only, rev1);
        let exists = view.uids.len() as u32;
        self.send_flags(&view.keywords.clone(), read_only);
        self.send(Response::Data(Data::Exists(exists)));
        if !rev1 {
            // RFC 9051 §6.3.2: IMAP4rev2 SELECT names the mailbox in a LIST response. No
            // attributes are claimed, as in the RFC's own example, so none can be wrong.
            let item = self.oldname(name, sent).unwrap_or_else(|| ListItem {
                attributes: Vec::new(),
                delimiter: Some(b'/'),
                name: self.wire_name(name),
                extended: Vec::new(),
            });
            self.send(Response::Data(Data::List(item)));
        }
        if rev1 {
            self.send(Response::Data(Data::Recent(view.recent.len() as u32)));
            // RFC 9586 §3: no message numbers once UIDONLY is on.
            if let Some(n) = first_unseen.filter(|_| !self.enabled.uidonly) {
                self.untagged(Condition::Ok, Some(Code::Unseen(n)), "First unseen.");
            }
        }
        self.untagged(
            Condition::Ok,
            Some(Code::UidValidity(view.uid_validity)),
            "UIDs valid.",
        );
        self.untagged(
            Condition::Ok,
            Some(Code::UidNext(view.uid_next)),
            "Predicted next UID.",
        );
        if self.enabled.condstore {
            // RFC 7162 §3.1.2.1; the store keeps MODSEQs for every mailbox, so never NOMODSEQ.
            self.untagged(
                Condition::Ok,
                Some(Code::HighestModSeq(view.modseq)),
                "Highest",
            );
        }
        // RFC 8474 §4.2.
        let mailbox_id = objectid::mailbox(view.object_key, view.id);
        self.untagged(
            Condition::Ok,
            Some(Code::MailboxId(mailbox_id.to_bytes())),
            "Mailbox identifier.",
        );
        let current_validity = view.uid_validity;
        let account = self.account_name().unwrap_or_default();
        self.state = State::Selected {
            account,
            view: Box::new(view),
        };
        let (code, text) = if read_only {
            (Code::ReadOnly, "EXAMINE completed.")
        } else {
            (Code::ReadWrite, "SELECT completed.")
        };
        let finish = Finish::ok(tag, text).with_code(code);
        match resync.map(|r| *r) {
            Some(SelectParam::QResync {
                uid_validity,
                mod_seq,
                known_uids,
                seq_match,
            }) if uid_validity == current_validity => {
                self.resync_select(finish, mod_seq, known_uids, seq_match)
            }
            // §3.2.5: another UIDVALIDITY, and the rest of the parameters are ignored.
            _ => self.finish(finish),
        }
    }

    /// `* FLAGS` and `* OK [PERMANENTFLAGS]` (RFC 9051 §7.3.5, §7.1).
    fn send_flags(&mut self, keywords: &[Bytes], read_only: bool) {
        let mut flags: Vec<Flag> = SystemFlag::ALL.iter().map(|f| f.flag()).collect();
        flags.extend(keywords.iter().cloned().map(Flag::Keyword));
        self.send(Response::Data(Data::Flags(flags.clone())));
        let (flags, keywords) = if read_only {
            (Vec::new(), false)
        } else {
            (flags, true)
        };
        self.untagged(
            Condition::Ok,
            Some(Code::PermanentFlags { flags, keywords }),
            if read_only {
                "No permanent flags permitted."
            } else {
                "Flags permitted."
            },
        );
    }

    /// Sends FLAGS and PERMANENTFLAGS first when `flags` holds a keyword this session has
    /// not been told of (RFC 9051 §7.3.5: the FLAGS list names every flag the mailbox
    /// uses), as Dovecot does, so that no FETCH uses a keyword before it is announced: one
    /// another session's STORE created, or this session's own.
    pub(super) fn announce_keywords(&mut self, flags: &Flags) {
        let Some(view) = self.selected_view_mut() else {
            return;
        };
        let mut new = false;
        for k in flags.keywords() {
            if !view.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                view.keywords.push(k.clone());
                new = true;
            }
        }
        if new {
            let (keywords, read_only) = (view.keywords.clone(), view.read_only);
            self.send_flags(&keywords, read_only);
        }
    }

    /// The Changes request for the selected mailbox, if any. Issuing it settles what made
    /// the view look behind: the synchronisation sees every change committed before it, so
    /// the notices received so far (even one whose MODSEQ was unknown) are covered.
    pub(super) fn take_sync(&mut self) -> Option<StorageOp> {
        let State::Selected { account, view } = &self.state else {
            return None;
        };
        let op = StorageOp::Changes {
            account: account.clone(),
            mailbox: view.id,
            uid_next: view.uid_next,
            since: view.modseq,
            claim_recent: !view.read_only && !self.enabled.rev2,
        };
        self.dirty = false;
        self.notice = 0;
        Some(op)
    }

    /// Whether the selected mailbox may hold changes the view has not seen.
    pub(super) fn needs_sync(&self) -> bool {
        self.dirty || self.selected_view().is_some_and(|v| self.notice > v.modseq)
    }

    /// A command's request, joined by the synchronisation its end would ask for next (a write
    /// to the selected mailbox, or a view that is behind): one round trip instead of two.
    /// The store runs the synchronisation right after the request, so it also covers the
    /// request's own change.
    pub(super) fn with_sync(&mut self, op: StorageOp) -> StorageOp {
        let inner = match &op {
            StorageOp::WithinQuota { op, .. } => op,
            op => op,
        };
        let writes = matches!(
            inner,
            StorageOp::SetFlags { .. }
                | StorageOp::Expunge { .. }
                | StorageOp::Append { .. }
                | StorageOp::CopyMove { .. }
                | StorageOp::Replace { .. }
        );
        let joins = writes
            || matches!(
                inner,
                StorageOp::Fetch { .. }
                    | StorageOp::Status { .. }
                    | StorageOp::ListMailboxes { .. }
            );
        // One per command: a later request of the same command (a FETCH in batches) goes
        // alone, and the command's end looks again if needed.
        if !joins || self.synced.is_some() || !(writes || self.needs_sync()) {
            return op;
        }
        let Some(sync) = self.take_sync() else {
            return op;
        };
        StorageOp::Then {
            first: Box::new(op),
            then: Box::new(sync),
        }
    }

    /// Notes that this session changed the selected mailbox: the command's end must look,
    /// unless the reply already carried a synchronisation made after the change.
    fn own_write(&mut self) {
        if !self.covered {
            self.dirty = true;
        }
    }

    /// Reports a ChangeSet: EXPUNGE (when allowed), then EXISTS and RECENT, then flag changes.
    pub(super) fn apply_sync(&mut self, reply: StorageResult, expunge_ok: bool) {
        let changes = match reply {
            Ok(StorageReply::Changes(c)) => c,
            // A failed synchronisation is retried at the next command.
            _ => {
                self.dirty = true;
                return;
            }
        };
        if changes.gone {
            self.untagged(
                Condition::Bye,
                None,
                "The selected mailbox was deleted; reconnecting is needed.",
            );
            self.close();
            return;
        }
        let rev1 = !self.enabled.rev2;
        let ChangeSet {
            added,
            changed,
            expunged,
            recent,
            highest_modseq,
            uid_next,
            keywords,
            gone: _,
        } = changes;
        let Some(view) = self.selected_view_mut() else {
            return;
        };
        for uid in expunged {
            if view.seq(uid).is_some() {
                view.hold_expunge(uid);
            }
        }
        // By name, not by count: this session may have learned some of them from its own
        // STOREs and FETCHes already.
        let mut keywords_changed = false;
        for k in keywords {
            if !view.keywords.iter().any(|x| x.eq_ignore_ascii_case(&k)) {
                view.keywords.push(k);
                keywords_changed = true;
            }
        }
        let announce = keywords_changed.then(|| view.keywords.clone());
        view.modseq = view.modseq.max(highest_modseq);
        view.uid_next = view.uid_next.max(uid_next);
        let before = view.uids.len();
        for m in &added {
            if view.uids.last().is_none_or(|&last| m.uid > last) {
                Arc::make_mut(&mut view.uids).push(m.uid);
            }
        }
        let grew = view.uids.len() != before;
        for uid in &recent {
            if let Err(i) = view.recent.binary_search(uid) {
                view.recent.insert(i, *uid);
            }
        }
        let own = std::mem::take(&mut view.own_changes);
        let read_only = view.read_only;
        if expunge_ok {
            self.flush_expunges();
        }
        // Counted after the EXPUNGEs above: EXISTS must not count messages they removed.
        let Some(view) = self.selected_view() else {
            return;
        };
        let exists = view.uids.len() as u32;
        let recent_count = view.recent.len() as u32;
        if let Some(keywords) = announce {
            self.send_flags(&keywords, read_only);
        }
        if grew {
            self.send(Response::Data(Data::Exists(exists)));
            if rev1 {
                self.send(Response::Data(Data::Recent(recent_count)));
            }
        }
        for m in changed {
            if own.get(&m.uid) == Some(&m.modseq) {
                continue;
            }
            self.send_flag_update(&m, false);
        }
        if let Some(view) = self.selected_view() {
            view.settle();
        }
    }

    /// Announces expunges held back while they were not allowed.
    pub(super) fn flush_expunges(&mut self) {
        let Some(view) = self.selected_view_mut() else {
            return;
        };
        let mut doomed = std::mem::take(&mut view.pending_expunges);
        doomed.sort_unstable();
        let mut numbers = Vec::with_capacity(doomed.len());
        let mut gone = Vec::with_capacity(doomed.len());
        // Ascending, each number as it is after the previous removals: RFC 9051 §7.5.1's
        // example (messages 3, 4, 7, 11 go out as 3, 3, 5, 8).
        for uid in doomed {
            if let Some(seq) = view.remove(uid) {
                numbers.push(seq);
                gone.push(uid);
            }
        }
        view.settle();
        if self.enabled.qresync || self.enabled.uidonly {
            // RFC 7162 §3.2.10.2, RFC 9586 §3.4: VANISHED, one response for all, instead of
            // EXPUNGE.
            if !gone.is_empty() {
                self.send(Response::Data(Data::Vanished {
                    earlier: false,
                    uids: to_set(&gone),
                }));
            }
            return;
        }
        for seq in numbers {
            self.send(Response::Data(Data::Expunge(seq)));
        }
    }

    /// `* n FETCH ([UID u] FLAGS (...) [MODSEQ (m)])` for one message's new flags.
    pub(super) fn send_flag_update(&mut self, m: &MessageState, with_uid: bool) {
        self.send_update(m, with_uid, true);
    }

    /// `* n FETCH ([UID u] [FLAGS (...)] [MODSEQ (m)])` for a message this session or another
    /// changed. Under CONDSTORE it carries the MODSEQ (RFC 7162 §3.1), under QRESYNC and
    /// IMAP4rev2 the UID (RFC 7162 §3.2.4, RFC 9051 §7.5.2); without `flags` (a STORE with
    /// .SILENT) it is sent only for the MODSEQ.
    pub(super) fn send_update(&mut self, m: &MessageState, with_uid: bool, flags: bool) {
        let rev1 = !self.enabled.rev2;
        let condstore = self.enabled.condstore;
        let uidonly = self.enabled.uidonly;
        // Under UIDONLY the UID opens the response (RFC 9586 §3.3), so it is not repeated.
        let with_uid = (with_uid || !rev1 || self.enabled.qresync) && !uidonly;
        if !flags && !condstore {
            return;
        }
        let Some(view) = self.selected_view() else {
            return;
        };
        let Some(seq) = view.seq(m.uid) else { return };
        let mut items = Vec::with_capacity(3);
        if with_uid {
            items.push(FetchItem::Uid(m.uid));
        }
        if flags {
            let mut flags = m.flags.to_flags();
            if rev1 && view.is_recent(m.uid) {
                flags.push(Flag::Recent);
            }
            items.push(FetchItem::Flags(flags));
        }
        if condstore {
            items.push(FetchItem::ModSeq(m.modseq));
        }
        self.send(Response::Data(if uidonly {
            Data::UidFetch { uid: m.uid, items }
        } else {
            Data::Fetch { seq, items }
        }));
    }

    pub(super) fn close_mailbox(&mut self, tag: Tag, expunge: bool) {
        let Some(view) = self.selected_view() else {
            return;
        };
        if expunge && !view.read_only {
            // RFC 9051 §6.4.1: CLOSE expunges silently.
            let op = StorageOp::Expunge {
                account: self.account_name().unwrap_or_default(),
                mailbox: view.id,
                uids: None,
            };
            self.request_alone(
                op,
                SessionPending::Message(Pending::Expunge {
                    tag,
                    silent_close: true,
                }),
            );
            return;
        }
        self.deselect();
        let text = if expunge {
            "CLOSE completed."
        } else {
            "UNSELECT completed."
        };
        self.status(Some(tag), Condition::Ok, None, text);
    }

    pub(super) fn expunge(&mut self, tag: Tag, set: Option<SequenceSet>) {
        let Some(view) = self.selected_view() else {
            return;
        };
        if view.read_only {
            self.no(tag, Some(Code::Cannot), "Mailbox is read-only.");
            return;
        }
        let uids = set.map(|s| view.resolve_uid(&s));
        let op = StorageOp::Expunge {
            account: self.account_name().unwrap_or_default(),
            mailbox: view.id,
            uids,
        };
        self.request(
            op,
            SessionPending::Message(Pending::Expunge {
                tag,
                silent_close: false,
            }),
        );
    }

    /// Resolves a message set for a command, answering BAD itself for bad numbers. For UID
    /// commands naming UIDs the view has not heard of, synchronises first and re-runs the
    /// command, so that messages another session just added are found.
    pub(super) fn resolve(
        &mut self,
        tag: &Tag,
        uid: bool,
        set: &SequenceSet,
        rerun: impl FnOnce() -> CommandLine,
    ) -> Option<Vec<Uid>> {
        let view = self.selected_view()?;
        if uid {
            if view.names_unknown_uids(set) && !self.presynced {
                if let Some(op) = self.take_sync() {
                    self.request(op, SessionPending::PreSync(Box::new(rerun())));
                    return None;
                }
            }
            return self.selected_view().map(|v| v.resolve_uid(set));
        }
        match view.resolve_seq(set) {
            Ok(uids) => Some(uids),
            Err(_) => {
                self.bad(Some(tag.clone()), None, "Invalid message sequence number.");
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn store(
        &mut self,
        tag: Tag,
        uid: bool,
        set: SequenceSet,
        unchanged_since: Option<u64>,
        mode: StoreMode,
        silent: bool,
        flags: Vec<Flag>,
    ) {
        if flags.iter().any(|f| matches!(f, Flag::Recent)) {
            // RFC 9051 §2.3.2: \Recent is the server's to set.
            self.bad(Some(tag), None, "The \\Recent flag cannot be changed.");
            return;
        }
        if self.selected_view().is_some_and(|v| v.read_only) {
            self.no(tag, Some(Code::Cannot), "Mailbox is read-only.");
            return;
        }
        if unchanged_since.is_some() {
            self.condstore_on();
        }
        let line_set = set.clone();
        let line_flags = flags.clone();
        let rerun_tag = tag.clone();
        let Some(uids) = self.resolve(&tag, uid, &set, move || CommandLine {
            tag: rerun_tag,
            command: crate::imap::command::Command::Store {
                uid,
                set: line_set,
                unchanged_since,
                mode,
                silent,
                flags: line_flags,
            },
        }) else {
            return;
        };
        let Some(view) = self.selected_view() else {
            return;
        };
        let op = StorageOp::SetFlags {
            account: self.account_name().unwrap_or_default(),
            mailbox: view.id,
            uids,
            mode,
            flags,
            unchanged_since,
        };
        self.request(
            op,
            SessionPending::Message(Pending::Store { tag, uid, silent }),
        );
    }

    pub(super) fn copy_move(
        &mut self,
        tag: Tag,
        uid: bool,
        set: SequenceSet,
        mailbox: &MailboxArg,
        remove: bool,
    ) {
        let Some(target) = self.mailbox_name(&tag, mailbox) else {
            return;
        };
        if remove && self.selected_view().is_some_and(|v| v.read_only) {
            self.no(tag, Some(Code::Cannot), "Mailbox is read-only.");
            return;
        }
        let (line_set, line_box, rerun_tag) = (set.clone(), mailbox.clone(), tag.clone());
        let Some(uids) = self.resolve(&tag, uid, &set, move || CommandLine {
            tag: rerun_tag,
            command: if remove {
                crate::imap::command::Command::Move {
                    uid,
                    set: line_set,
                    mailbox: line_box,
                }
            } else {
                crate::imap::command::Command::Copy {
                    uid,
                    set: line_set,
                    mailbox: line_box,
                }
            },
        }) else {
            return;
        };
        let Some(view) = self.selected_view() else {
            return;
        };
        // A MOVE stays in the account's one quota root: the store sees it add nothing.
        let op = self.quota.hold(StorageOp::CopyMove {
            account: self.account_name().unwrap_or_default(),
            mailbox: view.id,
            uids,
            target,
            remove,
        });
        self.request(op, SessionPending::Message(Pending::Copy { tag, remove }));
    }

    pub(super) fn append(&mut self, tag: Tag, mailbox: &MailboxArg, messages: Vec<AppendMessage>) {
        let Some(target) = self.mailbox_name(&tag, mailbox) else {
            return;
        };
        let Some(account) = self.account_name() else {
            return;
        };
        let mut new = Vec::with_capacity(messages.len());
        for m in messages {
            let Some(message) = self.new_message(&tag, m) else {
                return;
            };
            new.push(message);
        }
        // MULTIAPPEND is one request: all of it fits, or none is stored (RFC 3502 §6.3.11).
        self.request(
            self.quota.hold(StorageOp::Append {
                account,
                name: target.clone(),
                messages: new,
            }),
            SessionPending::Message(Pending::Append { tag, target }),
        );
    }

    /// An APPENDed message as storage takes it, or the command's refusal.
    fn new_message(&mut self, tag: &Tag, m: AppendMessage) -> Option<NewMessage> {
        if m.data.is_empty() {
            self.no(tag.clone(), None, "Cannot save an empty message.");
            return None;
        }
        if m.flags.iter().any(|f| matches!(f, Flag::Recent)) {
            self.bad(Some(tag.clone()), None, "The \\Recent flag cannot be set.");
            return None;
        }
        let data = if m.binary { m.data } else { crlf(m.data) };
        Some(NewMessage {
            flags: m.flags,
            internal_date: m.date,
            data,
        })
    }

    /// [UID] REPLACE (RFC 8508 §3.4): APPEND and the expunge of one message of the selected
    /// mailbox as a single change. The replaced message must be removable, so a read-only
    /// selection refuses it as it refuses EXPUNGE.
    pub(super) fn replace(
        &mut self,
        tag: Tag,
        uid: bool,
        target: SeqNo,
        mailbox: &MailboxArg,
        message: AppendMessage,
    ) {
        let Some(name) = self.mailbox_name(&tag, mailbox) else {
            return;
        };
        if self.selected_view().is_some_and(|v| v.read_only) {
            self.no(tag, Some(Code::Cannot), "Mailbox is read-only.");
            return;
        }
        let set = SequenceSet::Ranges(vec![SeqRange {
            from: target,
            to: target,
        }]);
        let (line_box, line_message, rerun_tag) = (mailbox.clone(), message.clone(), tag.clone());
        let Some(uids) = self.resolve(&tag, uid, &set, move || CommandLine {
            tag: rerun_tag,
            command: crate::imap::command::Command::Replace {
                uid,
                target,
                mailbox: line_box,
                message: line_message,
            },
        }) else {
            return;
        };
        let Some(&replaced) = uids.first() else {
            // A UID that is not (or no longer) in the mailbox: there is nothing to replace.
            self.no(tag, None, "No such message.");
            return;
        };
        let Some(message) = self.new_message(&tag, message) else {
            return;
        };
        let (Some(account), Some(view)) = (self.account_name(), self.selected_view()) else {
            return;
        };
        // The net change counts: a smaller replacement passes even over quota.
        let op = self.quota.hold(StorageOp::Replace {
            account,
            mailbox: view.id,
            uid: replaced,
            name,
            message: Box::new(message),
        });
        self.request(
            op,
            SessionPending::Message(Pending::Replace { tag, uid: replaced }),
        );
    }

    pub(super) fn idle(&mut self, tag: Tag, now: Instant) {
        self.send(Response::Continue(Bytes::from_static(b"idling")));
        let keepalive = self.limits().imap_idle_keepalive;
        self.timers.set(Timer::IdleKeepalive, now + keepalive);
        if self.selected_view().is_some() {
            self.idle_sync(tag, now);
        } else {
            self.expect = Expect::IdleDone { tag };
        }
    }

    /// Looks for changes while idling; updates go out at once (RFC 2177).
    pub(super) fn idle_sync(&mut self, tag: Tag, _now: Instant) {
        match self.take_sync() {
            Some(op) => {
                self.request(op, SessionPending::IdleSync { tag });
            }
            None => self.expect = Expect::IdleDone { tag },
        }
    }

    pub(super) fn idle_line(&mut self, line: &[u8], _now: Instant) {
        let Expect::IdleDone { tag } = std::mem::replace(&mut self.expect, Expect::Command) else {
            return;
        };
        self.timers.clear(Timer::IdleKeepalive);
        if line.eq_ignore_ascii_case(b"DONE") {
            self.finish(Finish::ok(tag, "IDLE terminated."));
        } else {
            self.status(Some(tag), Condition::Bad, None, "Expected DONE.");
        }
    }

    pub(super) fn message_reply(&mut self, pending: Pending, reply: StorageResult) {
        match (pending, reply) {
            (
                Pending::Select {
                    tag,
                    read_only,
                    name,
                    sent,
                    resync,
                },
                Ok(StorageReply::Opened(snap)),
            ) => self.opened(tag, read_only, &name, &sent, snap, resync),
            (Pending::Select { tag, .. }, Err(StorageError::NoSuchMailbox)) => {
                self.no(tag, Some(Code::NonExistent), "Mailbox does not exist.")
            }
            (
                Pending::Append { tag, target },
                Ok(StorageReply::Appended {
                    uid_validity,
                    uids,
                    mailbox,
                }),
            ) => {
                let code = Code::AppendUid {
                    uid_validity,
                    uids: to_set(&uids),
                };
                if self.is_selected(mailbox) {
                    self.own_write();
                }
                let _ = target;
                self.finish(Finish::ok(tag, "APPEND completed.").with_code(code));
            }
            (
                Pending::Append { tag, .. } | Pending::Replace { tag, .. },
                Err(StorageError::NoSuchMailbox),
            ) => {
                // RFC 9051 §6.3.12: TRYCREATE tells the client CREATE would help.
                self.no(tag, Some(Code::TryCreate), "Mailbox does not exist.")
            }
            (
                Pending::Replace { tag, uid },
                Ok(StorageReply::Appended {
                    uid_validity, uids, ..
                }),
            ) => {
                // RFC 8508 §4.3: APPENDUID in an untagged OK, before the EXPUNGE it goes with.
                self.untagged(
                    Condition::Ok,
                    Some(Code::AppendUid {
                        uid_validity,
                        uids: to_set(&uids),
                    }),
                    "Replacement message ready.",
                );
                if let Some(view) = self.selected_view_mut() {
                    if !view.pending_expunges.contains(&uid) {
                        view.pending_expunges.push(uid);
                    }
                }
                self.own_write();
                self.finish(Finish::ok(tag, "REPLACE completed."));
            }
            (
                Pending::Store { tag, uid, silent },
                Ok(StorageReply::FlagsSet { updated, modified }),
            ) => {
                if let Some(view) = self.selected_view_mut() {
                    for m in &updated {
                        view.own_changes.insert(m.uid, m.modseq);
                    }
                }
                for m in &updated {
                    self.announce_keywords(&m.flags);
                }
                // Under CONDSTORE even .SILENT reports the new MODSEQs (RFC 7162 §3.1.3;
                // Dovecot does so for every STORE, conditional or not).
                for m in &updated {
                    self.send_update(m, uid, !silent);
                }
                self.own_write();
                let mut finish = Finish::ok(tag, "STORE completed.").no_expunge();
                // §3.1.3: UIDs for UID STORE, message numbers for STORE.
                let mut failed: Vec<u32> = if uid {
                    modified
                } else {
                    let view = self.selected_view();
                    modified
                        .iter()
                        .filter_map(|&u| view.and_then(|v| v.seq(u)))
                        .collect()
                };
                failed.sort_unstable();
                if !failed.is_empty() {
                    finish = finish.with_code(Code::Modified(to_set(&failed)));
                }
                self.finish(finish);
            }
            (Pending::Expunge { tag, silent_close }, Ok(StorageReply::Expunged(uids))) => {
                if silent_close {
                    self.deselect();
                    self.status(Some(tag), Condition::Ok, None, "CLOSE completed.");
                    return;
                }
                let any = !uids.is_empty();
                if let Some(view) = self.selected_view_mut() {
                    for uid in uids {
                        view.hold_expunge(uid);
                    }
                }
                self.own_write();
                let mut finish = Finish::ok(tag, "EXPUNGE completed.");
                // RFC 7162 §3.2.7, §3.2.9: under QRESYNC an EXPUNGE that removed something
                // tells the new HIGHESTMODSEQ.
                finish.report_modseq = any && self.enabled.qresync;
                self.finish(finish);
            }
            (
                Pending::Copy { tag, remove },
                Ok(StorageReply::Copied {
                    uid_validity,
                    pairs,
                }),
            ) => {
                let (source, target): (Vec<Uid>, Vec<Uid>) = pairs.iter().copied().unzip();
                let code = (!pairs.is_empty()).then(|| Code::CopyUid {
                    uid_validity,
                    source: to_set(&source),
                    target: to_set(&target),
                });
                if remove {
                    // RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
                    if let Some(code) = code {
                        self.untagged(Condition::Ok, Some(code), "Moved UIDs.");
                    }
                    if let Some(view) = self.selected_view_mut() {
                        for &uid in &source {
                            view.hold_expunge(uid);
                        }
                    }
                    self.own_write();
                    let mut finish = Finish::ok(tag, "MOVE completed.");
                    // RFC 6851 §4.4: as for EXPUNGE under QRESYNC.
                    finish.report_modseq = !source.is_empty() && self.enabled.qresync;
                    self.finish(finish);
                } else {
                    self.own_write();
                    let mut finish = Finish::ok(tag, "COPY completed.");
                    if let Some(code) = code {
                        finish = finish.with_code(code);
                    }
                    self.finish(finish);
                }
            }
            (Pending::Copy { tag, .. }, Err(StorageError::NoSuchMailbox)) => {
                self.no(tag, Some(Code::TryCreate), "Mailbox does not exist.")
            }
            (
                Pending::Select { tag, .. }
                | Pending::Append { tag, .. }
                | Pending::Replace { tag, .. }
                | Pending::Store { tag, .. }
                | Pending::Expunge { tag, .. }
                | Pending::Copy { tag, .. },
                Err(e),
            ) => self.storage_failed(tag, &e),
            (
                Pending::Select { tag, .. }
                | Pending::Append { tag, .. }
                | Pending::Replace { tag, .. }
                | Pending::Store { tag, .. }
                | Pending::Expunge { tag, .. }
                | Pending::Copy { tag, .. },
                Ok(_),
            ) => self.unexpected(tag),
        }
    }

    fn is_selected(&self, mailbox: MailboxId) -> bool {
        self.selected_view().is_some_and(|v| v.id == mailbox)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_line_feeds_become_crlf() {
        assert_eq!(
            crlf(Bytes::from_static(b"a\nb\r\nc\n")),
            &b"a\r\nb\r\nc\r\n"[..]
        );
        let same = Bytes::from_static(b"a\r\n");
        assert_eq!(crlf(same.clone()), same);
    }
}
