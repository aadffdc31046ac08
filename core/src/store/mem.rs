//! The in-memory store: the reference every other store must agree with, and the store of
//! every core test and in-process conformance run.
//!
//! Written for obviousness over speed. Its clock is set by whoever drives it, since the core
//! reads none. It knows no users: logins are the directory's business
//! ([`crate::directory::MemDirectory`] is its in-memory counterpart).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::evaluate::{evaluate, Halt, Meter};
use super::import;
use super::metadata;
use super::query::{Candidate, Query};
use super::sort::{self, SortFields, Sortable};
use super::threading::{self, ThreadFields, Threadable};
use super::{
    AccountTemplate, AccountUsage, Body, ChangeSet, Changed, EmailId, FetchWant, FetchedMessage,
    LimitKind, MailboxEntry, MailboxId, MailboxList, MailboxStatus, MessageState, ModSeq,
    NewMessage, ObjectKey, Pins, PreviewWant, Snapshot, SpecialUse, StorageError, StorageOp,
    StorageReply, StorageResult, Store, StoreLimits, ThreadId, Uid, UNKNOWN_MODSEQ,
};
use crate::mail::analyze::{analyze, MessageInfo};
use crate::mail::date::{from_unix, to_unix, Date, DateTime};
use crate::mail::flags::{Flag, Flags, StoreMode, SystemFlag};
use crate::mail::mailbox_name::DELIMITER;
use crate::mail::preview::preview;
use crate::mail::text::{extract, SearchText};
use crate::mail::thread::ThreadKeys;

/// An in-memory multi-account store.
#[derive(Debug, Default)]
pub struct MemStore {
    accounts: HashMap<String, Account>,
    /// Unix seconds; the driver advances it.
    now: i64,
    changes: Vec<Changed>,
    uid_validity_seed: u32,
    /// Accounts whose POP3 maildrop is locked.
    locked: std::collections::HashSet<String>,
    /// Mailboxes per account (so CREATE cannot grow memory without limit), SEARCH work.
    limits: StoreLimits,
    /// What a new account holds.
    template: AccountTemplate,
    /// Bodies larger than this are handed out as a [`Body::Source`], as a store with files
    /// hands out large ones, so that drivers and tests exercise streaming.
    stream_over: Option<usize>,
    /// Accounts made so far: the source of their [`ObjectKey`]s, counted rather than drawn
    /// so that in-process runs are reproducible (this store keeps no secrets).
    accounts_made: u64,
}

#[derive(Debug, Default)]
struct Account {
    mailboxes: BTreeMap<String, Mailbox>,
    subscribed: BTreeSet<String>,
    next_id: u64,
    /// For MAILBOXID, EMAILID and THREADID strings.
    object_key: ObjectKey,
    /// The last [`EmailId`] given.
    last_email: u64,
    /// Message identifiers to their conversations ([`crate::mail::thread`]).
    threads: HashMap<String, ThreadId>,
    /// The account's own METADATA entries (RFC 5464), by canonical name.
    metadata: BTreeMap<String, Bytes>,
}

#[derive(Debug)]
struct Mailbox {
    id: MailboxId,
    uid_validity: u32,
    uid_next: Uid,
    highest_modseq: ModSeq,
    special_use: Option<SpecialUse>,
    selectable: bool,
    messages: Vec<Message>,
    /// (UID, MODSEQ of its expunge), for sessions catching up.
    expunged: Vec<(Uid, ModSeq)>,
    /// UIDs below this have been claimed as `\Recent` by some session.
    recent_claimed: Uid,
    keywords: Vec<Bytes>,
    /// The sessions that have it selected.
    pins: Pins,
    /// Expunged messages some session may still ask for, by UID, with the MODSEQ of their
    /// expunge (see [`super::pins`]).
    retained: BTreeMap<Uid, (ModSeq, Message)>,
    /// METADATA entries (RFC 5464), by canonical name.
    metadata: BTreeMap<String, Bytes>,
}

#[derive(Debug, Clone)]
struct Message {
    uid: Uid,
    flags: Flags,
    modseq: ModSeq,
    internal_date: DateTime,
    email_id: EmailId,
    thread_id: ThreadId,
    /// The save date (RFC 8514), stamped by [`Mailbox::add`].
    saved: DateTime,
    data: Bytes,
    info: Arc<MessageInfo>,
    preview: Arc<str>,
    text: Arc<OnceLock<SearchText>>,
}

impl Message {
    /// A message as APPEND gives it, analysed, before the mailbox gives it a UID and MODSEQ.
    fn new(message: NewMessage, now: i64) -> Message {
        let NewMessage {
            flags,
            internal_date,
            data,
        } = message;
        Message {
            uid: 0,
            flags: Flags::from_flags(&flags),
            modseq: 0,
            internal_date: internal_date.unwrap_or_else(|| from_unix(now, 0)),
            email_id: EmailId(0),
            thread_id: ThreadId(0),
            saved: from_unix(now, 0),
            info: Arc::new(analyze(&data)),
            preview: preview(&data).into(),
            data,
            text: Arc::default(),
        }
    }
}

impl Candidate for Message {
    fn uid(&self) -> Uid {
        self.uid
    }
    fn flags(&self) -> &Flags {
        &self.flags
    }
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn internal_day(&self) -> Date {
        self.internal_date.date
    }
    fn internal_unix(&self) -> i64 {
        to_unix(&self.internal_date)
    }
    fn saved_day(&self) -> Date {
        self.saved.date
    }
    fn modseq(&self) -> ModSeq {
        self.modseq
    }
    fn email_id(&self) -> EmailId {
        self.email_id
    }
    fn thread_id(&self) -> ThreadId {
        self.thread_id
    }
    fn text(&self) -> &SearchText {
        self.text.get_or_init(|| extract(&self.data))
    }
}

impl MemStore {
    /// An empty store with no accounts, its clock at 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        MemStore {
            now: 1_767_225_600,
            ..Self::default()
        }
    }

    /// Hands out bodies larger than `octets` as [`Body::Source`] rather than in memory.
    pub fn stream_bodies_over(&mut self, octets: usize) {
        self.stream_over = Some(octets);
    }

    /// Sets the store's clock (Unix seconds): the default internal date and OLDER/YOUNGER.
    pub fn set_now(&mut self, unix: i64) {
        self.now = unix;
    }

    /// The store's clock.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Sets the bounds on mailboxes per account and on SEARCH work.
    pub fn set_limits(&mut self, limits: StoreLimits) {
        self.limits = limits;
    }

    /// Sets what a new account holds (the session's rules choose it; the default is
    /// [`AccountTemplate::default`]).
    pub fn set_account_template(&mut self, template: AccountTemplate) {
        self.template = template;
    }

    fn account(&mut self, name: &str) -> &mut Account {
        let seed = &mut self.uid_validity_seed;
        let now = self.now;
        let template = &self.template;
        let made = &mut self.accounts_made;
        self.accounts.entry(name.to_string()).or_insert_with(|| {
            *made += 1;
            let mut account = Account {
                object_key: ObjectKey(mix(*made)),
                ..Account::default()
            };
            for m in &template.mailboxes {
                account.insert(&m.name, m.special_use, now, seed);
                if m.subscribed {
                    account.subscribed.insert(m.name.clone());
                }
            }
            account
        })
    }

    /// RENAME (`messages_only` false) or MoveAllMessages (true): the same checks and parents,
    /// then either the names move or the messages do.
    fn rename(
        &mut self,
        account: String,
        from: String,
        to: String,
        messages_only: bool,
    ) -> StorageResult {
        let now = self.now;
        let mut seed = self.uid_validity_seed;
        let a = self.account(&account);
        if !a.mailboxes.get(&from).is_some_and(|m| m.selectable) && !a.has_children(&from) {
            return Err(StorageError::NoSuchMailbox);
        }
        if !a.mailboxes.contains_key(&from) {
            return Err(StorageError::NoSuchMailbox);
        }
        if a.mailboxes.get(&to).is_some_and(|m| m.selectable) || a.has_children(&to) {
            return Err(StorageError::AlreadyExists);
        }
        if to.starts_with(&format!("{from}{DELIMITER}")) {
            return Err(StorageError::IntoItself);
        }
        a.mailboxes.remove(&to);
        // Parents of the new name, as CREATE would make them.
        let mut parent = String::new();
        let levels: Vec<&str> = to.split(DELIMITER).collect();
        for level in levels.iter().take(levels.len().saturating_sub(1)) {
            if !parent.is_empty() {
                parent.push(DELIMITER);
            }
            parent.push_str(level);
            if !a.mailboxes.contains_key(&parent) {
                a.insert(&parent, None, now, &mut seed);
            }
        }
        if messages_only {
            a.insert(&to, None, now, &mut seed);
            let source = a
                .mailboxes
                .get_mut(&from)
                .ok_or(StorageError::NoSuchMailbox)?;
            // As expunges, so that sessions with the source selected can still read
            // them until told.
            let messages = source.messages.clone();
            let uids: Vec<Uid> = messages.iter().map(|m| m.uid).collect();
            if uids.is_empty() {
                source.bump();
            } else {
                source.remove(&uids);
            }
            let source_id = source.id;
            // RFC 5464 §4.1: the new mailbox gets a copy of the entries; the source keeps its.
            let metadata = source.metadata.clone();
            let target = a
                .mailboxes
                .get_mut(&to)
                .ok_or(StorageError::NoSuchMailbox)?;
            target.metadata = metadata;
            for m in messages {
                target.add(m, now);
            }
            self.uid_validity_seed = seed;
            self.changes.push(Changed {
                account,
                mailbox: source_id,
                modseq: UNKNOWN_MODSEQ,
            });
            return Ok(StorageReply::Done);
        }
        let prefix = format!("{from}{DELIMITER}");
        let moving: Vec<String> = a
            .mailboxes
            .keys()
            .filter(|n| **n == from || n.starts_with(&prefix))
            .cloned()
            .collect();
        for old in moving {
            if let Some(m) = a.mailboxes.remove(&old) {
                let new = format!("{to}{}", &old[from.len()..]);
                a.mailboxes.insert(new, m);
            }
        }
        self.uid_validity_seed = seed;
        Ok(StorageReply::Done)
    }
}

impl Account {
    /// Gives a message just stored by APPEND or an import its EMAILID and THREADID.
    fn stamp(&mut self, mut message: Message) -> Message {
        self.last_email += 1;
        message.email_id = EmailId(self.last_email);
        let keys = ThreadKeys::of(&message.data);
        let fresh = ThreadId(self.last_email);
        let threads = &mut self.threads;
        let Ok(thread) = keys.thread(fresh, |id| {
            Ok::<_, std::convert::Infallible>(threads.get(id).copied())
        });
        for id in keys.lookups() {
            threads.entry(id.to_string()).or_insert(thread);
        }
        message.thread_id = thread;
        message
    }

    fn insert(
        &mut self,
        name: &str,
        special_use: Option<SpecialUse>,
        now: i64,
        seed: &mut u32,
    ) -> MailboxId {
        self.next_id += 1;
        *seed = seed.wrapping_add(1);
        // Distinct per mailbox, and never repeated for a name re-created later in the run.
        let uid_validity = (now as u32).wrapping_add(*seed).max(1);
        self.mailboxes.insert(
            name.to_string(),
            Mailbox {
                id: MailboxId(self.next_id),
                uid_validity,
                uid_next: 1,
                highest_modseq: 1,
                special_use,
                selectable: true,
                messages: Vec::new(),
                expunged: Vec::new(),
                recent_claimed: 1,
                keywords: Vec::new(),
                pins: Pins::default(),
                retained: BTreeMap::new(),
                metadata: BTreeMap::new(),
            },
        );
        MailboxId(self.next_id)
    }

    fn by_id(&mut self, id: MailboxId) -> Result<&mut Mailbox, StorageError> {
        self.mailboxes
            .values_mut()
            .find(|m| m.id == id && m.selectable)
            .ok_or(StorageError::NoSuchMailbox)
    }

    fn selectable(&mut self, name: &str) -> Result<&mut Mailbox, StorageError> {
        self.mailboxes
            .get_mut(name)
            .filter(|m| m.selectable)
            .ok_or(StorageError::NoSuchMailbox)
    }

    fn has_children(&self, name: &str) -> bool {
        let prefix = format!("{name}{DELIMITER}");
        self.mailboxes
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(n, _)| n.starts_with(&prefix))
    }
}

impl Mailbox {
    /// The messages among `uids` that `query` matches, in UID order.
    fn search(
        &self,
        uids: &[Uid],
        query: &Query,
        now: i64,
        work: u64,
    ) -> Result<Vec<&Message>, StorageError> {
        let candidates: Vec<&Message> = self
            .messages
            .iter()
            .filter(|msg| uids.binary_search(&msg.uid).is_ok())
            .collect();
        let mut meter = Meter::new(work, &|| false);
        let outcome = evaluate(query, &candidates, true, now, &mut meter, &mut |_, _| {
            Ok::<_, Halt>(None)
        })?;
        Ok(outcome
            .yes
            .iter()
            .filter_map(|i| candidates.get(i).copied())
            .collect())
    }

    fn position(&self, uid: Uid) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    fn bump(&mut self) -> ModSeq {
        self.highest_modseq += 1;
        self.highest_modseq
    }

    fn note_keywords(&mut self, flags: &Flags) {
        for k in flags.keywords() {
            if !self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                self.keywords.push(k.clone());
            }
        }
    }

    fn state(m: &Message) -> MessageState {
        MessageState {
            uid: m.uid,
            flags: m.flags.clone(),
            modseq: m.modseq,
        }
    }

    fn claim_recent(&mut self) -> Vec<Uid> {
        let from = self.recent_claimed;
        self.recent_claimed = self.uid_next;
        self.messages
            .iter()
            .filter(|m| m.uid >= from)
            .map(|m| m.uid)
            .collect()
    }

    fn status(&self) -> MailboxStatus {
        let count =
            |f: &dyn Fn(&Message) -> bool| self.messages.iter().filter(|m| f(m)).count() as u32;
        MailboxStatus {
            id: Some(self.id),
            messages: self.messages.len() as u32,
            recent: count(&|m| m.uid >= self.recent_claimed),
            uid_next: self.uid_next,
            uid_validity: self.uid_validity,
            unseen: count(&|m| !m.flags.has(SystemFlag::Seen)),
            deleted: count(&|m| m.flags.has(SystemFlag::Deleted)),
            deleted_size: self
                .messages
                .iter()
                .filter(|m| m.flags.has(SystemFlag::Deleted))
                .map(|m| m.data.len() as u64)
                .sum(),
            size: self.messages.iter().map(|m| m.data.len() as u64).sum(),
            highest_modseq: self.highest_modseq,
            object_key: ObjectKey::default(),
        }
    }

    /// Saves a message into the mailbox at `now` (its save date, RFC 8514 §3: APPEND, COPY
    /// and MOVE alike) under the next UID and MODSEQ.
    fn add(&mut self, mut message: Message, now: i64) -> Uid {
        message.saved = from_unix(now, 0);
        message.uid = self.uid_next;
        self.uid_next += 1;
        message.modseq = self.bump();
        self.note_keywords(&message.flags);
        let uid = message.uid;
        self.messages.push(message);
        uid
    }

    fn remove(&mut self, uids: &[Uid]) -> Vec<Uid> {
        if uids.is_empty() {
            return Vec::new();
        }
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        let modseq = self.bump();
        let keep = self.pins.holds(modseq);
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        self.messages.retain(|m| {
            let gone = uids.binary_search(&m.uid).is_ok();
            if gone {
                removed.push(m.uid);
                if keep {
                    kept.push((m.uid, (modseq, m.clone())));
                }
            }
            !gone
        });
        self.retained.extend(kept);
        self.expunged.extend(removed.iter().map(|&u| (u, modseq)));
        removed
    }

    /// Lets go of expunged messages that every session with the mailbox selected has been
    /// told of.
    fn release(&mut self) {
        if self.retained.is_empty() {
            return;
        }
        match self.pins.oldest() {
            None => self.retained.clear(),
            Some(told) => self.retained.retain(|_, (expunged, _)| *expunged > told),
        }
    }

    /// A message as FETCH answers it: present, or expunged and still retained.
    fn fetched(
        &self,
        uid: Uid,
        want: FetchWant,
        stream_over: Option<usize>,
    ) -> Option<FetchedMessage> {
        let (msg, expunged) = match self.position(uid) {
            Some(i) => (self.messages.get(i)?, false),
            None => (&self.retained.get(&uid)?.1, true),
        };
        Some(FetchedMessage {
            uid,
            flags: msg.flags.clone(),
            modseq: msg.modseq,
            internal_date: msg.internal_date,
            size: msg.data.len() as u64,
            email_id: msg.email_id,
            thread_id: msg.thread_id,
            content: want.content.then(|| {
                let body = match stream_over {
                    Some(limit) if msg.data.len() > limit => {
                        Body::Source(Arc::new(msg.data.clone()))
                    }
                    _ => Body::Inline(msg.data.clone()),
                };
                if want.header_only {
                    body.header_only(&msg.info.root)
                } else {
                    body
                }
            }),
            info: want.info.then(|| msg.info.clone()),
            preview: (want.preview != PreviewWant::No).then(|| msg.preview.clone()),
            save_date: msg.saved,
            expunged,
        })
    }
}

impl Store for MemStore {
    fn execute(&mut self, op: StorageOp) -> StorageResult {
        if let StorageOp::Then { first, then } = op {
            let first = self.execute(*first);
            let then = self.execute(*then);
            return Ok(StorageReply::Then {
                first: Box::new(first),
                then: Box::new(then),
            });
        }
        let mark = self.changes.len();
        let reply = self.execute_one(op);
        let accounts = &self.accounts;
        for change in self.changes.iter_mut().skip(mark) {
            change.modseq = accounts
                .get(&change.account)
                .and_then(|a| {
                    a.mailboxes
                        .values()
                        .find(|m| m.id == change.mailbox && m.selectable)
                })
                .map_or(UNKNOWN_MODSEQ, |m| m.highest_modseq);
        }
        reply
    }

    fn take_changes(&mut self) -> Vec<Changed> {
        let mut seen = std::collections::HashSet::new();
        let mut out = std::mem::take(&mut self.changes);
        out.retain(|c| seen.insert(c.clone()));
        out
    }
}

impl MemStore {
    /// Summed, not kept: the specification store has no disk to spare the walk.
    fn usage(&self, account: &str) -> AccountUsage {
        self.accounts
            .get(account)
            .map_or(AccountUsage::default(), |a| AccountUsage {
                messages: a.mailboxes.values().map(|m| m.messages.len() as u64).sum(),
                octets: a
                    .mailboxes
                    .values()
                    .flat_map(|m| &m.messages)
                    .map(|m| m.data.len() as u64)
                    .sum(),
            })
    }

    /// What the account would hold after `op`, from `before`, failing as `op` itself would
    /// (and in the same order) when it cannot run: [`StorageOp::WithinQuota`] decides before
    /// anything changes, since this store has no transaction to roll back.
    fn usage_after(
        &mut self,
        op: &StorageOp,
        before: AccountUsage,
    ) -> Result<AccountUsage, StorageError> {
        let plus = |messages: u64, octets: u64| AccountUsage {
            messages: before.messages + messages,
            octets: before.octets + octets,
        };
        Ok(match op {
            StorageOp::Append {
                account,
                name,
                messages,
            } => {
                self.account(account).selectable(name)?;
                let octets = messages.iter().map(|m| m.data.len() as u64).sum();
                plus(messages.len() as u64, octets)
            }
            // A MOVE stays within the account: it frees what it adds.
            StorageOp::CopyMove {
                account,
                mailbox,
                uids,
                target,
                remove,
            } => {
                let a = self.account(account);
                let source = a.by_id(*mailbox)?;
                let picked: Vec<u64> = uids
                    .iter()
                    .filter_map(|&u| source.position(u).map(|i| source.messages[i].data.len()))
                    .map(|n| n as u64)
                    .collect();
                a.selectable(target)?;
                if *remove {
                    before
                } else {
                    plus(picked.len() as u64, picked.iter().sum())
                }
            }
            StorageOp::Replace {
                account,
                mailbox,
                uid,
                name,
                message,
            } => {
                let a = self.account(account);
                let source = a.by_id(*mailbox)?;
                let old = source
                    .position(*uid)
                    .map(|i| source.messages[i].data.len() as u64)
                    .ok_or(StorageError::NoSuchMessage)?;
                a.selectable(name)?;
                AccountUsage {
                    messages: before.messages,
                    octets: (before.octets + message.data.len() as u64).saturating_sub(old),
                }
            }
            _ => before,
        })
    }

    /// One request that is not a [`StorageOp::Then`].
    fn execute_one(&mut self, op: StorageOp) -> StorageResult {
        let now = self.now;
        if let Some(account) = op.account().and_then(|a| self.accounts.get_mut(a)) {
            for m in account.mailboxes.values_mut() {
                m.release();
            }
        }
        match op {
            // A `Then` inside a `Then` is not part of the contract.
            StorageOp::Then { .. } => Err(StorageError::Internal(
                "a combined request inside another".into(),
            )),
            StorageOp::GetMetadata {
                account,
                mailbox,
                names,
                depth,
            } => {
                let a = self.account(&account);
                let entries = match &mailbox {
                    None => &a.metadata,
                    Some(name) => {
                        &a.mailboxes
                            .get(name)
                            .ok_or(StorageError::NoSuchMailbox)?
                            .metadata
                    }
                };
                let found = entries
                    .iter()
                    .filter(|(n, _)| names.iter().any(|r| metadata::within(r, n, depth)))
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect();
                Ok(StorageReply::Metadata(found))
            }
            StorageOp::SetMetadata {
                account,
                mailbox,
                entries,
            } => {
                let limit = self.limits.metadata_entries;
                let a = self.account(&account);
                let held = a.metadata.len()
                    + a.mailboxes
                        .values()
                        .map(|m| m.metadata.len())
                        .sum::<usize>();
                let target = match &mailbox {
                    None => &mut a.metadata,
                    Some(name) => {
                        &mut a
                            .mailboxes
                            .get_mut(name)
                            .ok_or(StorageError::NoSuchMailbox)?
                            .metadata
                    }
                };
                let mut next = target.clone();
                for (name, value) in entries.into_vec() {
                    match value {
                        Some(v) => next.insert(name, v),
                        None => next.remove(&name),
                    };
                }
                let after = held - target.len() + next.len();
                // Only growth is refused: removing entries must work above a lowered limit.
                if after > limit && after > held {
                    return Err(StorageError::Limit(LimitKind::MetadataEntries));
                }
                *target = next;
                Ok(StorageReply::Done)
            }
            StorageOp::WithinQuota { quota, op } => {
                let before = op
                    .account()
                    .map_or_else(AccountUsage::default, |a| self.usage(a));
                if quota.refuses(before, self.usage_after(&op, before)?) {
                    return Err(StorageError::OverQuota);
                }
                self.execute_one(*op)
            }
            StorageOp::ListMailboxes { account } => {
                let a = self.account(&account);
                Ok(StorageReply::Mailboxes(MailboxList {
                    mailboxes: a
                        .mailboxes
                        .iter()
                        .map(|(name, m)| MailboxEntry {
                            name: name.clone(),
                            special_use: m.special_use,
                            selectable: m.selectable,
                        })
                        .collect(),
                    subscribed: a.subscribed.iter().cloned().collect(),
                }))
            }
            StorageOp::CreateMailbox {
                account,
                name,
                special_use,
            } => {
                let mut seed = self.uid_validity_seed;
                let max_mailboxes = self.limits.max_mailboxes;
                let a = self.account(&account);
                if let Some(existing) = a.mailboxes.get_mut(&name) {
                    if existing.selectable {
                        return Err(StorageError::AlreadyExists);
                    }
                    // A \Noselect placeholder becomes a real mailbox again.
                    existing.selectable = true;
                    existing.special_use = special_use;
                    return Ok(StorageReply::Created {
                        mailbox: existing.id,
                        object_key: a.object_key,
                    });
                }
                if a.mailboxes.len() >= max_mailboxes {
                    return Err(StorageError::Limit(LimitKind::Mailboxes));
                }
                // RFC 9051 §6.3.4: superior names are created too.
                let mut parent = String::new();
                for level in name.split(DELIMITER) {
                    if !parent.is_empty() {
                        parent.push(DELIMITER);
                    }
                    parent.push_str(level);
                    if parent != name && !a.mailboxes.contains_key(&parent) {
                        a.insert(&parent, None, now, &mut seed);
                    }
                }
                let id = a.insert(&name, special_use, now, &mut seed);
                let object_key = a.object_key;
                self.uid_validity_seed = seed;
                Ok(StorageReply::Created {
                    mailbox: id,
                    object_key,
                })
            }
            StorageOp::DeleteMailbox { account, name } => {
                let a = self.account(&account);
                let children = a.has_children(&name);
                let mailbox = a
                    .mailboxes
                    .get_mut(&name)
                    .ok_or(StorageError::NoSuchMailbox)?;
                let id = mailbox.id;
                if children {
                    // RFC 9051 §6.3.5: the name stays, as \Noselect, and loses its messages.
                    if !mailbox.selectable {
                        return Err(StorageError::HasChildren);
                    }
                    mailbox.selectable = false;
                    // RFC 5464 §4.1: a mailbox's entries go with it.
                    mailbox.metadata.clear();
                    // As expunges with a new MODSEQ, not a silent clear: CREATE can make the
                    // name a mailbox again (same UIDVALIDITY), and a session that still has
                    // it selected must then learn that these messages are gone.
                    let uids: Vec<Uid> = mailbox.messages.iter().map(|m| m.uid).collect();
                    mailbox.remove(&uids);
                    // Nothing to keep: a mailbox that is not selectable cannot be fetched from.
                    mailbox.retained.clear();
                } else {
                    a.mailboxes.remove(&name);
                }
                self.changes.push(Changed {
                    account,
                    mailbox: id,
                    modseq: UNKNOWN_MODSEQ,
                });
                Ok(StorageReply::Done)
            }
            StorageOp::RenameMailbox { account, from, to } => self.rename(account, from, to, false),
            StorageOp::MoveAllMessages { account, from, to } => {
                self.rename(account, from, to, true)
            }
            StorageOp::Subscribe {
                account,
                name,
                subscribed,
            } => {
                let a = self.account(&account);
                if subscribed {
                    a.subscribed.insert(name);
                } else {
                    a.subscribed.remove(&name);
                }
                Ok(StorageReply::Done)
            }
            StorageOp::Usage { account } => Ok(StorageReply::Usage(self.usage(&account))),
            StorageOp::Status { account, name } => {
                let a = self.account(&account);
                let object_key = a.object_key;
                Ok(StorageReply::Status(MailboxStatus {
                    object_key,
                    ..a.selectable(&name)?.status()
                }))
            }
            StorageOp::Open {
                account,
                name,
                read_only,
            } => {
                let a = self.account(&account);
                let object_key = a.object_key;
                let m = a.selectable(&name)?;
                // EXAMINE shows what SELECT would show (RFC 3501 §6.3.2) but claims nothing.
                let recent = if read_only {
                    let from = m.recent_claimed;
                    m.messages
                        .iter()
                        .filter(|x| x.uid >= from)
                        .map(|x| x.uid)
                        .collect()
                } else {
                    m.claim_recent()
                };
                Ok(StorageReply::Opened(Snapshot {
                    id: m.id,
                    object_key,
                    uid_validity: m.uid_validity,
                    uid_next: m.uid_next,
                    highest_modseq: m.highest_modseq,
                    uids: Arc::new(m.messages.iter().map(|x| x.uid).collect()),
                    first_unseen: m
                        .messages
                        .iter()
                        .find(|x| !x.flags.has(SystemFlag::Seen))
                        .map(|x| x.uid),
                    recent,
                    keywords: m.keywords.clone(),
                    pin: m.pins.pin(m.highest_modseq),
                }))
            }
            StorageOp::Changes {
                account,
                mailbox,
                uid_next,
                since,
                claim_recent,
            } => {
                let a = self.account(&account);
                let Ok(m) = a.by_id(mailbox) else {
                    return Ok(StorageReply::Changes(ChangeSet {
                        gone: true,
                        ..ChangeSet::default()
                    }));
                };
                let recent = if claim_recent {
                    m.claim_recent()
                } else {
                    Vec::new()
                };
                Ok(StorageReply::Changes(ChangeSet {
                    added: m
                        .messages
                        .iter()
                        .filter(|x| x.uid >= uid_next)
                        .map(Mailbox::state)
                        .collect(),
                    changed: m
                        .messages
                        .iter()
                        .filter(|x| x.uid < uid_next && x.modseq > since)
                        .map(Mailbox::state)
                        .collect(),
                    expunged: m
                        .expunged
                        .iter()
                        .filter(|(u, ms)| *u < uid_next && *ms > since)
                        .map(|(u, _)| *u)
                        .collect(),
                    recent,
                    highest_modseq: m.highest_modseq,
                    uid_next: m.uid_next,
                    keywords: m.keywords.clone(),
                    gone: false,
                }))
            }
            StorageOp::Append {
                account,
                name,
                messages,
            } => {
                let a = self.account(&account);
                a.selectable(&name)?;
                let stamped: Vec<Message> = messages
                    .into_iter()
                    .map(|message| a.stamp(Message::new(message, now)))
                    .collect();
                let m = a.selectable(&name)?;
                let mut uids = Vec::with_capacity(stamped.len());
                for message in stamped {
                    uids.push(m.add(message, now));
                }
                let (uid_validity, id) = (m.uid_validity, m.id);
                self.changes.push(Changed {
                    account,
                    mailbox: id,
                    modseq: UNKNOWN_MODSEQ,
                });
                Ok(StorageReply::Appended {
                    uid_validity,
                    uids,
                    mailbox: id,
                })
            }
            StorageOp::Fetch {
                account,
                mailbox,
                uids,
                want,
                mark_seen,
            } => {
                let stream_over = self.stream_over;
                let a = self.account(&account);
                let m = a.by_id(mailbox)?;
                let mut out = Vec::with_capacity(uids.len());
                let mut changed = false;
                for uid in uids {
                    if let Some(i) = m.position(uid) {
                        if mark_seen && !m.messages[i].flags.has(SystemFlag::Seen) {
                            let modseq = m.bump();
                            let msg = &mut m.messages[i];
                            msg.flags.set(SystemFlag::Seen, true);
                            msg.modseq = modseq;
                            changed = true;
                        }
                    }
                    out.extend(m.fetched(uid, want, stream_over));
                }
                if changed {
                    self.changes.push(Changed {
                        account,
                        mailbox,
                        modseq: UNKNOWN_MODSEQ,
                    });
                }
                Ok(StorageReply::Fetched(out))
            }
            StorageOp::Search {
                account,
                mailbox,
                uids,
                query,
            } => {
                let work = self.limits.search_work;
                let a = self.account(&account);
                let m = a.by_id(mailbox)?;
                let found = m.search(&uids, &query, now, work)?;
                Ok(StorageReply::Found(
                    found.into_iter().map(|msg| msg.uid).collect(),
                ))
            }
            StorageOp::Sort {
                account,
                mailbox,
                uids,
                query,
                criteria,
            } => {
                let work = self.limits.search_work;
                let a = self.account(&account);
                let m = a.by_id(mailbox)?;
                let found = m.search(&uids, &query, now, work)?;
                let fields: Vec<SortFields> = found
                    .iter()
                    .map(|msg| SortFields::of(&msg.info.envelope))
                    .collect();
                let items = found
                    .iter()
                    .zip(&fields)
                    .map(|(msg, fields)| Sortable {
                        uid: msg.uid,
                        arrival: to_unix(&msg.internal_date),
                        size: msg.data.len() as u64,
                        fields,
                    })
                    .collect();
                Ok(StorageReply::Found(sort::sort(items, &criteria)))
            }
            StorageOp::Thread {
                account,
                mailbox,
                uids,
                query,
                algorithm,
            } => {
                let work = self.limits.search_work;
                let a = self.account(&account);
                let m = a.by_id(mailbox)?;
                let found = m.search(&uids, &query, now, work)?;
                let fields: Vec<ThreadFields> = found
                    .iter()
                    .map(|msg| {
                        let end = msg.info.root.header.end.min(threading::MAX_HEADER as usize);
                        let header = msg.data.get(..end).unwrap_or(&msg.data);
                        ThreadFields::of(&msg.info.envelope, header)
                    })
                    .collect();
                let items = found
                    .iter()
                    .zip(&fields)
                    .map(|(msg, fields)| Threadable {
                        uid: msg.uid,
                        arrival: to_unix(&msg.internal_date),
                        fields,
                    })
                    .collect();
                Ok(StorageReply::Threads(threading::thread(items, algorithm)))
            }
            StorageOp::SetFlags {
                account,
                mailbox,
                uids,
                mode,
                flags,
                unchanged_since,
            } => {
                let a = self.account(&account);
                let m = a.by_id(mailbox)?;
                let mut updated = Vec::new();
                let mut modified = Vec::new();
                for uid in uids {
                    let Some(i) = m.position(uid) else { continue };
                    if unchanged_since.is_some_and(|u| m.messages[i].modseq > u) {
                        modified.push(uid);
                        continue;
                    }
                    let new = m.messages[i].flags.stored(mode, &flags);
                    if new != m.messages[i].flags {
                        let modseq = m.bump();
                        m.note_keywords(&new);
                        let msg = &mut m.messages[i];
                        msg.flags = new;
                        msg.modseq = modseq;
                    }
                    updated.push(Mailbox::state(&m.messages[i]));
                }
                self.changes.push(Changed {
                    account,
                    mailbox,
                    modseq: UNKNOWN_MODSEQ,
                });
                Ok(StorageReply::FlagsSet { updated, modified })
            }
            StorageOp::Expunge {
                account,
                mailbox,
                uids,
            } => {
                let a = self.account(&account);
                let m = a.by_id(mailbox)?;
                let doomed: Vec<Uid> = m
                    .messages
                    .iter()
                    .filter(|x| x.flags.has(SystemFlag::Deleted))
                    .filter(|x| {
                        uids.as_ref()
                            .is_none_or(|u| u.binary_search(&x.uid).is_ok())
                    })
                    .map(|x| x.uid)
                    .collect();
                let removed = m.remove(&doomed);
                if !removed.is_empty() {
                    self.changes.push(Changed {
                        account,
                        mailbox,
                        modseq: UNKNOWN_MODSEQ,
                    });
                }
                Ok(StorageReply::Expunged(removed))
            }
            StorageOp::Remove {
                account,
                mailbox,
                uids,
                seen,
            } => {
                let a = self.account(&account);
                let m = a.by_id(mailbox)?;
                let mut uids = uids;
                uids.sort_unstable();
                uids.dedup();
                let mut seen = seen;
                seen.sort_unstable();
                seen.dedup();
                seen.retain(|u| uids.binary_search(u).is_err());
                let mut changed = false;
                for uid in seen {
                    let Some(i) = m.position(uid) else { continue };
                    if !m.messages[i].flags.has(SystemFlag::Seen) {
                        let modseq = m.bump();
                        let msg = &mut m.messages[i];
                        msg.flags.set(SystemFlag::Seen, true);
                        msg.modseq = modseq;
                        changed = true;
                    }
                }
                let removed = m.remove(&uids);
                if changed || !removed.is_empty() {
                    self.changes.push(Changed {
                        account,
                        mailbox,
                        modseq: UNKNOWN_MODSEQ,
                    });
                }
                Ok(StorageReply::Expunged(removed))
            }
            StorageOp::LockMaildrop { account } => {
                if self.locked.insert(account.to_lowercase()) {
                    Ok(StorageReply::Done)
                } else {
                    Err(StorageError::InUse)
                }
            }
            StorageOp::UnlockMaildrop { account, seen } => {
                // The lock goes whatever becomes of the flags: a lost \Seen costs an unread
                // mark, a kept lock the whole maildrop.
                let flagged = match seen {
                    Some((mailbox, uids)) if !uids.is_empty() => self
                        .execute(StorageOp::SetFlags {
                            account: account.clone(),
                            mailbox,
                            uids,
                            mode: StoreMode::Add,
                            flags: vec![Flag::Seen],
                            unchanged_since: None,
                        })
                        .map(|_| StorageReply::Done),
                    _ => Ok(StorageReply::Done),
                };
                self.locked.remove(&account.to_lowercase());
                flagged
            }
            StorageOp::Replace {
                account,
                mailbox,
                uid,
                name,
                message,
            } => {
                let a = self.account(&account);
                // Both checks come before any change, so a failure leaves everything as it was.
                if a.by_id(mailbox)?.position(uid).is_none() {
                    return Err(StorageError::NoSuchMessage);
                }
                // The target too, before the message takes an EMAILID (as in one transaction).
                a.selectable(&name)?;
                let message = a.stamp(Message::new(*message, now));
                let target = a.selectable(&name)?;
                let new = target.add(message, now);
                let (uid_validity, target_id) = (target.uid_validity, target.id);
                a.by_id(mailbox)?.remove(&[uid]);
                let mut changed = vec![mailbox];
                if target_id != mailbox {
                    changed.push(target_id);
                }
                self.changes
                    .extend(changed.into_iter().map(|mailbox| Changed {
                        account: account.clone(),
                        mailbox,
                        modseq: UNKNOWN_MODSEQ,
                    }));
                Ok(StorageReply::Appended {
                    uid_validity,
                    uids: vec![new],
                    mailbox: target_id,
                })
            }
            StorageOp::CopyMove {
                account,
                mailbox,
                uids,
                target,
                remove,
            } => {
                let a = self.account(&account);
                let source = a.by_id(mailbox)?;
                let picked: Vec<Message> = uids
                    .iter()
                    .filter_map(|&u| source.position(u).map(|i| source.messages[i].clone()))
                    .collect();
                let source_uids: Vec<Uid> = picked.iter().map(|m| m.uid).collect();
                // The target may be the source itself: the copies get new UIDs at its end
                // and, for MOVE, the originals go (RFC 6851 allows it; Dovecot does it).
                let target_box = a.selectable(&target)?;
                let target_id = target_box.id;
                let uid_validity = target_box.uid_validity;
                let mut pairs = Vec::with_capacity(picked.len());
                for m in picked {
                    let from = m.uid;
                    pairs.push((from, target_box.add(m, now)));
                }
                if remove {
                    a.by_id(mailbox)?.remove(&source_uids);
                    self.changes.push(Changed {
                        account: account.clone(),
                        mailbox,
                        modseq: UNKNOWN_MODSEQ,
                    });
                }
                self.changes.push(Changed {
                    account,
                    mailbox: target_id,
                    modseq: UNKNOWN_MODSEQ,
                });
                Ok(StorageReply::Copied {
                    uid_validity,
                    pairs,
                })
            }
            StorageOp::ImportMessages {
                account,
                name,
                uid_validity,
                uid_next,
                messages,
            } => {
                let uids: Vec<Uid> = messages.iter().map(|(uid, _)| *uid).collect();
                let exists = self
                    .account(&account)
                    .mailboxes
                    .get(&name)
                    .is_some_and(|m| m.selectable);
                if !exists {
                    // Checked before creating, so that a refusal changes nothing.
                    import::check(0, 1, uid_validity, uids.iter().copied())?;
                    self.execute(StorageOp::CreateMailbox {
                        account: account.clone(),
                        name: name.clone(),
                        special_use: None,
                    })?;
                }
                let a = self.account(&account);
                let m = a.selectable(&name)?;
                let fresh = import::check(m.uid_validity, m.uid_next, uid_validity, uids)?;
                // Stamped as APPEND stamps them, once nothing can refuse the import.
                let stamped: Vec<(Uid, Message)> = messages
                    .into_iter()
                    .map(|(uid, message)| (uid, a.stamp(Message::new(message, now))))
                    .collect();
                let m = a.selectable(&name)?;
                let before = (m.uid_validity, m.uid_next);
                if fresh {
                    m.uid_validity = uid_validity;
                }
                let mut uids = Vec::with_capacity(stamped.len());
                for (uid, message) in stamped {
                    // `add` gives out UIDNEXT: the checks above made this UID at least that.
                    m.uid_next = uid;
                    uids.push(m.add(message, now));
                }
                m.uid_next = m.uid_next.max(uid_next);
                if uids.is_empty() && before != (m.uid_validity, m.uid_next) {
                    m.bump();
                }
                let (id, uid_validity) = (m.id, m.uid_validity);
                self.changes.push(Changed {
                    account,
                    mailbox: id,
                    modseq: UNKNOWN_MODSEQ,
                });
                Ok(StorageReply::Appended {
                    uid_validity,
                    uids,
                    mailbox: id,
                })
            }
        }
    }
}

/// SplitMix64's finaliser: spreads a counter over 64 bits.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's quota: growth over a bound is refused before anything changes (the
    /// next APPEND gets the UID the refused one would have had), the op's own errors come
    /// first, and a MOVE within the account passes when full.
    #[test]
    fn within_quota_refuses_growth_and_changes_nothing() {
        let mut store = MemStore::new();
        let data = Bytes::from_static(b"Subject: q\r\n\r\nbody\r\n");
        let full = super::super::Quota {
            octets: None,
            messages: Some(1),
        };
        let append = |name: &str| StorageOp::Append {
            account: "alice".into(),
            name: name.into(),
            messages: vec![NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data: data.clone(),
            }],
        };
        let StorageReply::Appended { uids, .. } = run(&mut store, full.hold(append("INBOX")))
        else {
            panic!("the first message fits");
        };
        assert_eq!(uids, vec![1]);
        assert_eq!(
            store.execute(full.hold(append("INBOX"))),
            Err(StorageError::OverQuota)
        );
        assert_eq!(
            store.execute(full.hold(append("Nowhere"))),
            Err(StorageError::NoSuchMailbox)
        );
        let copy = |remove| StorageOp::CopyMove {
            account: "alice".into(),
            mailbox: MailboxId(1),
            uids: vec![1],
            target: "Archive".into(),
            remove,
        };
        assert_eq!(
            store.execute(full.hold(copy(false))),
            Err(StorageError::OverQuota)
        );
        assert!(store.execute(full.hold(copy(true))).is_ok());
        let StorageReply::Appended { uids, .. } = run(&mut store, append("INBOX")) else {
            panic!("unlimited");
        };
        assert_eq!(uids, vec![2], "a refused APPEND used no UID");
    }

    fn run(store: &mut MemStore, op: StorageOp) -> StorageReply {
        match store.execute(op) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    fn fetch(store: &mut MemStore, mailbox: MailboxId, uid: Uid) -> Option<(bool, Bytes)> {
        match run(
            store,
            StorageOp::Fetch {
                account: "alice".into(),
                mailbox,
                uids: vec![uid],
                want: FetchWant {
                    content: true,
                    info: false,
                    header_only: false,
                    ..Default::default()
                },
                mark_seen: false,
            },
        ) {
            StorageReply::Fetched(v) => v
                .first()
                .and_then(|m| Some((m.expunged, m.content.as_ref()?.to_bytes().ok()?))),
            other => panic!("{other:?}"),
        }
    }

    /// Usage sums every mailbox (a copy counts again), forgets expunged messages, and asking
    /// about an unknown account creates nothing.
    #[test]
    fn usage_counts_every_mailbox_and_creates_no_account() {
        let mut store = MemStore::new();
        let usage = |store: &mut MemStore| match run(
            store,
            StorageOp::Usage {
                account: "alice".into(),
            },
        ) {
            StorageReply::Usage(u) => u,
            other => panic!("{other:?}"),
        };
        assert_eq!(usage(&mut store), AccountUsage::default());
        assert!(store.accounts.is_empty());
        let data = Bytes::from_static(b"Subject: x\r\n\r\nbody\r\n");
        let append = |flags| StorageOp::Append {
            account: "alice".into(),
            name: "INBOX".into(),
            messages: vec![NewMessage {
                flags,
                internal_date: None,
                data: data.clone(),
            }],
        };
        run(&mut store, append(vec![]));
        run(&mut store, append(vec![crate::mail::flags::Flag::Deleted]));
        run(
            &mut store,
            StorageOp::CreateMailbox {
                account: "alice".into(),
                name: "Copies".into(),
                special_use: None,
            },
        );
        run(
            &mut store,
            StorageOp::CopyMove {
                account: "alice".into(),
                mailbox: MailboxId(1),
                uids: vec![1],
                target: "Copies".into(),
                remove: false,
            },
        );
        let size = data.len() as u64;
        assert_eq!(
            usage(&mut store),
            AccountUsage {
                messages: 3,
                octets: 3 * size
            }
        );
        run(
            &mut store,
            StorageOp::Expunge {
                account: "alice".into(),
                mailbox: MailboxId(1),
                uids: None,
            },
        );
        assert_eq!(
            usage(&mut store),
            AccountUsage {
                messages: 2,
                octets: 2 * size
            }
        );
    }

    /// Issue 14 item 7: what a view may still FETCH after another session's expunge is kept
    /// until it has been told, or until it is gone.
    #[test]
    fn expunged_messages_are_kept_while_a_view_needs_them() {
        let mut store = MemStore::new();
        let data = Bytes::from_static(b"Subject: x\r\n\r\nbody\r\n");
        run(
            &mut store,
            StorageOp::Append {
                account: "alice".into(),
                name: "INBOX".into(),
                messages: vec![NewMessage {
                    flags: vec![crate::mail::flags::Flag::Deleted],
                    internal_date: None,
                    data: data.clone(),
                }],
            },
        );
        let StorageReply::Opened(snap) = run(
            &mut store,
            StorageOp::Open {
                account: "alice".into(),
                name: "INBOX".into(),
                read_only: true,
            },
        ) else {
            panic!("not opened");
        };
        let expunge = StorageOp::Expunge {
            account: "alice".into(),
            mailbox: snap.id,
            uids: None,
        };
        assert_eq!(run(&mut store, expunge), StorageReply::Expunged(vec![1]));
        assert_eq!(fetch(&mut store, snap.id, 1), Some((true, data.clone())));
        snap.pin.told(snap.highest_modseq);
        assert_eq!(fetch(&mut store, snap.id, 1), Some((true, data)));
        snap.pin.told(snap.highest_modseq + 1);
        assert_eq!(fetch(&mut store, snap.id, 1), None);
        assert!(store
            .accounts
            .values()
            .all(|a| a.mailboxes.values().all(|m| m.retained.is_empty())));
    }

    fn status(store: &mut MemStore, name: &str) -> Result<MailboxStatus, StorageError> {
        match store.execute(StorageOp::Status {
            account: "alice".into(),
            name: name.into(),
        })? {
            StorageReply::Status(s) => Ok(s),
            other => panic!("{other:?}"),
        }
    }

    /// Issue 13: the store holds no rules about INBOX (the session's `rules` do); every name
    /// gets the same mechanism.
    #[test]
    fn the_store_treats_inbox_like_any_name() {
        let mut store = MemStore::new();
        let append = |name: &str| StorageOp::Append {
            account: "alice".into(),
            name: name.into(),
            messages: vec![NewMessage {
                flags: vec![Flag::Flagged],
                internal_date: None,
                data: Bytes::from_static(b"Subject: x\r\n\r\nbody\r\n"),
            }],
        };
        run(&mut store, append("Drafts"));
        run(&mut store, append("Drafts"));
        let before = status(&mut store, "Drafts").unwrap();
        run(
            &mut store,
            StorageOp::MoveAllMessages {
                account: "alice".into(),
                from: "Drafts".into(),
                to: "Old/Drafts".into(),
            },
        );
        let after = status(&mut store, "Drafts").unwrap();
        assert_eq!((after.messages, after.uid_next), (0, 3));
        assert_eq!(after.highest_modseq, before.highest_modseq + 1);
        assert_eq!(after.uid_validity, before.uid_validity);
        let moved = status(&mut store, "Old/Drafts").unwrap();
        assert_eq!((moved.messages, moved.uid_next), (2, 3));
        assert!(status(&mut store, "Old").is_ok());
        // Nothing stops a store from deleting INBOX: refusing is the session's business.
        run(
            &mut store,
            StorageOp::DeleteMailbox {
                account: "alice".into(),
                name: "INBOX".into(),
            },
        );
        assert_eq!(
            status(&mut store, "INBOX"),
            Err(StorageError::NoSuchMailbox)
        );
    }
}
