//! The reference model of one account: mailboxes as vectors of messages, written to be read,
//! not to be fast. Every rule here is a rule of RFC 9051/3501 (or of RFC 1939 for the POP3
//! part), or a documented tern choice where the RFCs leave room; each says which.
//!
//! The model knows nothing of sessions' views: those live in the runner, built only from what
//! each session was told.

use std::collections::{BTreeMap, BTreeSet};

use tern_core::mail::date::{from_unix, Date, DateTime};

use super::pool::{self, Crit, Fl, StoreOp};

pub type Uid = u32;

/// Flags as a set of lower-case names (`\seen`, `$work`): keywords compare case-insensitively
/// (RFC 9051 §2.3.2), and the order of a FLAGS list carries no meaning.
pub type FlagSet = BTreeSet<String>;

pub fn flag_set(flags: &[Fl]) -> FlagSet {
    flags
        .iter()
        .map(|f| f.name().to_ascii_lowercase())
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub uid: Uid,
    pub flags: FlagSet,
    pub date: DateTime,
    /// Index into [`pool::MESSAGES`]: the octets never change after APPEND.
    pub body: usize,
    /// Some session was told about it while holding the mailbox read-write under IMAP4rev1,
    /// so it is `\Recent` there and nowhere else (RFC 3501 §2.3.2).
    pub claimed: bool,
}

impl Msg {
    pub fn bytes(&self) -> &'static [u8] {
        pool::raw(self.body)
    }
    pub fn size(&self) -> u64 {
        self.bytes().len() as u64
    }
}

#[derive(Clone, Debug)]
pub struct Mailbox {
    /// The model's identity for the mailbox: it survives RENAME (sessions keep it selected)
    /// and is never reused.
    pub id: u64,
    /// False for a name kept as `\Noselect` because it has children (RFC 9051 §6.3.5).
    pub selectable: bool,
    pub uid_next: Uid,
    /// By ascending UID.
    pub messages: Vec<Msg>,
    /// Contents or flags changed since HIGHESTMODSEQ was last observed.
    pub changed: bool,
    /// Expunged messages as they were then: a session not yet told of the expunge still
    /// FETCHes them (RFC 2180 §4.1.2).
    pub gone: Vec<Msg>,
}

impl Mailbox {
    fn new(id: u64) -> Mailbox {
        Mailbox {
            id,
            selectable: true,
            uid_next: 1,
            messages: Vec::new(),
            changed: true,
            gone: Vec::new(),
        }
    }

    pub fn uids(&self) -> Vec<Uid> {
        self.messages.iter().map(|m| m.uid).collect()
    }

    pub fn get(&self, uid: Uid) -> Option<&Msg> {
        self.messages.iter().find(|m| m.uid == uid)
    }

    /// A message, or one expunged that a session not yet told may still FETCH.
    pub fn get_any(&self, uid: Uid) -> Option<&Msg> {
        self.get(uid)
            .or_else(|| self.gone.iter().find(|m| m.uid == uid))
    }

    fn get_mut(&mut self, uid: Uid) -> Option<&mut Msg> {
        self.messages.iter_mut().find(|m| m.uid == uid)
    }

    fn add(&mut self, flags: FlagSet, date: DateTime, body: usize) -> Uid {
        let uid = self.uid_next;
        self.uid_next += 1;
        self.messages.push(Msg {
            uid,
            flags,
            date,
            body,
            claimed: false,
        });
        self.changed = true;
        uid
    }

    fn remove(&mut self, uids: &[Uid]) -> Vec<Uid> {
        let before = self.uids();
        let (gone, kept): (Vec<Msg>, Vec<Msg>) = std::mem::take(&mut self.messages)
            .into_iter()
            .partition(|m| uids.contains(&m.uid));
        self.messages = kept;
        self.gone.extend(gone);
        let gone: Vec<Uid> = before.into_iter().filter(|u| uids.contains(u)).collect();
        if !gone.is_empty() {
            self.changed = true;
        }
        gone
    }

    pub fn status(&self) -> StatusFigures {
        StatusFigures {
            messages: self.messages.len() as u64,
            recent: self.messages.iter().filter(|m| !m.claimed).count() as u64,
            uid_next: u64::from(self.uid_next),
            unseen: self
                .messages
                .iter()
                .filter(|m| !m.flags.contains("\\seen"))
                .count() as u64,
            deleted: self
                .messages
                .iter()
                .filter(|m| m.flags.contains("\\deleted"))
                .count() as u64,
            size: self.messages.iter().map(Msg::size).sum(),
        }
    }
}

/// STATUS items the model predicts exactly (UIDVALIDITY and HIGHESTMODSEQ are checked as
/// invariants instead: their values are the store's to choose).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusFigures {
    pub messages: u64,
    /// RFC 3501 §6.3.10 RECENT: messages no session has been told about yet.
    pub recent: u64,
    pub uid_next: u64,
    pub unseen: u64,
    pub deleted: u64,
    pub size: u64,
}

/// Why an operation is refused, as the response code the client sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NonExistent,
    AlreadyExists,
    Cannot,
    HasChildren,
    TryCreate,
}

#[derive(Clone, Debug)]
pub struct Account {
    /// By canonical name.
    pub mailboxes: BTreeMap<String, Mailbox>,
    next_id: u64,
    /// The store's clock, Unix seconds: the INTERNALDATE of an APPEND without a date.
    pub now: i64,
    /// The POP3 connection holding the maildrop lock (RFC 1939 §8).
    pub pop3_lock: Option<usize>,
}

/// The mailboxes every new account has (tern's defaults).
const DEFAULTS: [&str; 6] = ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"];

/// MemStore's clock at creation (2026-01-01T00:00:00Z).
pub const EPOCH: i64 = 1_767_225_600;

impl Default for Account {
    fn default() -> Account {
        Account::new()
    }
}

impl Account {
    pub fn new() -> Account {
        let mut a = Account {
            mailboxes: BTreeMap::new(),
            next_id: 0,
            now: EPOCH,
            pop3_lock: None,
        };
        for name in DEFAULTS {
            a.insert(name);
        }
        a
    }

    fn insert(&mut self, name: &str) {
        self.next_id += 1;
        self.mailboxes
            .insert(name.to_string(), Mailbox::new(self.next_id));
    }

    pub fn by_id(&self, id: u64) -> Option<(&String, &Mailbox)> {
        self.mailboxes
            .iter()
            .find(|(_, m)| m.id == id && m.selectable)
    }

    pub fn by_id_mut(&mut self, id: u64) -> Option<&mut Mailbox> {
        self.mailboxes
            .values_mut()
            .find(|m| m.id == id && m.selectable)
    }

    pub fn selectable(&self, name: &str) -> Option<&Mailbox> {
        self.mailboxes.get(name).filter(|m| m.selectable)
    }

    fn has_children(&self, name: &str) -> bool {
        let prefix = format!("{name}/");
        self.mailboxes.keys().any(|n| n.starts_with(&prefix))
    }

    pub fn default_date(&self) -> DateTime {
        from_unix(self.now, 0)
    }

    /// RFC 9051 §6.3.4: superior names are created too; INBOX always exists.
    pub fn create(&mut self, name: &str) -> Result<(), Refusal> {
        if name == "INBOX" {
            return Err(Refusal::AlreadyExists);
        }
        if let Some(m) = self.mailboxes.get_mut(name) {
            if m.selectable {
                return Err(Refusal::AlreadyExists);
            }
            // A \Noselect name becomes a mailbox again. tern keeps its UID counter, so UIDs
            // are not reused under the same UIDVALIDITY (RFC 9051 §2.3.1.1).
            m.selectable = true;
            return Ok(());
        }
        let mut parent = String::new();
        for level in name.split('/') {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(level);
            if !self.mailboxes.contains_key(&parent) {
                self.insert(&parent);
            }
        }
        Ok(())
    }

    /// RFC 9051 §6.3.5. Returns the identity that stopped being selectable, if any.
    pub fn delete(&mut self, name: &str) -> Result<Option<u64>, Refusal> {
        if name == "INBOX" {
            return Err(Refusal::Cannot);
        }
        let children = self.has_children(name);
        let Some(m) = self.mailboxes.get_mut(name) else {
            return Err(Refusal::NonExistent);
        };
        let id = m.id;
        if children {
            if !m.selectable {
                return Err(Refusal::HasChildren);
            }
            // The name stays, \Noselect, without messages.
            m.selectable = false;
            if !m.messages.is_empty() {
                m.messages.clear();
                m.changed = true;
            }
            // Nothing is kept: a mailbox that is not selectable cannot be fetched from.
            m.gone.clear();
            return Ok(Some(id));
        }
        let was = m.selectable;
        self.mailboxes.remove(name);
        Ok(was.then_some(id))
    }

    /// RFC 9051 §6.3.6. RENAME keeps the identity (and so UIDVALIDITY and UIDs) of the mailbox
    /// and its children; RENAME INBOX moves INBOX's messages to a new mailbox instead.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Refusal> {
        if to == "INBOX" {
            return Err(Refusal::AlreadyExists);
        }
        let from_selectable = self.mailboxes.get(from).is_some_and(|m| m.selectable);
        if !self.mailboxes.contains_key(from) || (!from_selectable && !self.has_children(from)) {
            return Err(Refusal::NonExistent);
        }
        if self.mailboxes.get(to).is_some_and(|m| m.selectable) || self.has_children(to) {
            return Err(Refusal::AlreadyExists);
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(Refusal::Cannot);
        }
        self.mailboxes.remove(to);
        let levels: Vec<&str> = to.split('/').collect();
        let mut parent = String::new();
        for level in &levels[..levels.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(level);
            if !self.mailboxes.contains_key(&parent) {
                self.insert(&parent);
            }
        }
        if from == "INBOX" {
            self.insert(to);
            let inbox = self
                .mailboxes
                .get_mut("INBOX")
                .ok_or(Refusal::NonExistent)?;
            let moved = inbox.messages.clone();
            let uids: Vec<Uid> = moved.iter().map(|m| m.uid).collect();
            inbox.remove(&uids);
            let target = self.mailboxes.get_mut(to).ok_or(Refusal::NonExistent)?;
            for m in moved {
                target.add(m.flags, m.date, m.body);
            }
            return Ok(());
        }
        let prefix = format!("{from}/");
        let moving: Vec<String> = self
            .mailboxes
            .keys()
            .filter(|n| *n == from || n.starts_with(&prefix))
            .cloned()
            .collect();
        for old in moving {
            if let Some(m) = self.mailboxes.remove(&old) {
                self.mailboxes
                    .insert(format!("{to}{}", &old[from.len()..]), m);
            }
        }
        Ok(())
    }

    /// APPEND (MULTIAPPEND: all or nothing). RFC 9051 §6.3.12: TRYCREATE for a missing target.
    pub fn append(
        &mut self,
        name: &str,
        messages: &[(usize, FlagSet, Option<DateTime>)],
    ) -> Result<Vec<Uid>, Refusal> {
        let date = self.default_date();
        let m = self
            .mailboxes
            .get_mut(name)
            .filter(|m| m.selectable)
            .ok_or(Refusal::TryCreate)?;
        Ok(messages
            .iter()
            .map(|(body, flags, d)| m.add(flags.clone(), d.unwrap_or(date), *body))
            .collect())
    }

    /// COPY/MOVE of the messages of `uids` that still exist, by ascending UID; the copies get
    /// new UIDs in that order, the same flags and INTERNALDATE, and are not yet `\Recent`.
    pub fn copy(
        &mut self,
        source: u64,
        uids: &[Uid],
        target: &str,
        remove: bool,
    ) -> Result<Vec<(Uid, Uid)>, Refusal> {
        let src = self.by_id(source).ok_or(Refusal::NonExistent)?.1.clone();
        // The target may be the source: copies at its end, originals gone for MOVE.
        self.selectable(target).ok_or(Refusal::TryCreate)?;
        let picked: Vec<Msg> = src
            .messages
            .iter()
            .filter(|m| uids.contains(&m.uid))
            .cloned()
            .collect();
        let tgt = self.mailboxes.get_mut(target).ok_or(Refusal::TryCreate)?;
        let pairs: Vec<(Uid, Uid)> = picked
            .iter()
            .map(|m| (m.uid, tgt.add(m.flags.clone(), m.date, m.body)))
            .collect();
        if remove {
            let from: Vec<Uid> = pairs.iter().map(|p| p.0).collect();
            if let Some(s) = self.by_id_mut(source) {
                s.remove(&from);
            }
        }
        Ok(pairs)
    }

    /// STORE: the messages of `uids` that still exist get their new flags; returns them.
    pub fn store(&mut self, id: u64, uids: &[Uid], op: StoreOp, flags: &FlagSet) -> Vec<Uid> {
        let Some(m) = self.by_id_mut(id) else {
            return Vec::new();
        };
        let mut done = Vec::new();
        for &uid in uids {
            let Some(msg) = m.get_mut(uid) else { continue };
            let new: FlagSet = match op {
                StoreOp::Replace => flags.clone(),
                StoreOp::Add => msg.flags.union(flags).cloned().collect(),
                StoreOp::Remove => msg.flags.difference(flags).cloned().collect(),
            };
            let changed = new != msg.flags;
            msg.flags = new;
            done.push(uid);
            if changed {
                m.changed = true;
            }
        }
        done
    }

    /// FETCH BODY[] (not PEEK) in a read-write session, and what POP3 RETR sent once its
    /// session ends: `\Seen` is set.
    pub fn mark_seen(&mut self, id: u64, uids: &[Uid]) {
        if let Some(m) = self.by_id_mut(id) {
            for &uid in uids {
                if let Some(msg) = m.get_mut(uid) {
                    if msg.flags.insert("\\seen".to_string()) {
                        m.changed = true;
                    }
                }
            }
        }
    }

    /// EXPUNGE (all `\Deleted`) or UID EXPUNGE (those of `only` that are `\Deleted`).
    pub fn expunge(&mut self, id: u64, only: Option<&[Uid]>) -> Vec<Uid> {
        let Some(m) = self.by_id_mut(id) else {
            return Vec::new();
        };
        let doomed: Vec<Uid> = m
            .messages
            .iter()
            .filter(|x| x.flags.contains("\\deleted"))
            .filter(|x| only.is_none_or(|o| o.contains(&x.uid)))
            .map(|x| x.uid)
            .collect();
        m.remove(&doomed)
    }

    /// POP3 UPDATE (RFC 1939 §6): the marked messages that still exist go, whatever their flags.
    pub fn remove(&mut self, id: u64, uids: &[Uid]) -> Vec<Uid> {
        match self.by_id_mut(id) {
            Some(m) => m.remove(uids),
            None => Vec::new(),
        }
    }

    /// Marks unclaimed messages of a mailbox as claimed (`\Recent` in the claiming session).
    pub fn claim(&mut self, id: u64, uids: &[Uid]) -> Vec<Uid> {
        let Some(m) = self.by_id_mut(id) else {
            return Vec::new();
        };
        let mut got = Vec::new();
        for msg in m.messages.iter_mut().filter(|x| uids.contains(&x.uid)) {
            if !msg.claimed {
                msg.claimed = true;
                got.push(msg.uid);
            }
        }
        got
    }
}

/// Whether a message matches a SEARCH criterion (RFC 9051 §6.4.4). `recent` is the searching
/// session's `\Recent` set; `sets(i, uid)` whether the step's i-th message set holds a UID.
pub fn matches(
    c: &Crit,
    m: &Msg,
    recent: &BTreeSet<Uid>,
    sets: &dyn Fn(usize, Uid) -> bool,
) -> bool {
    let text = pool::message(m.body);
    match c {
        Crit::All => true,
        Crit::Flag(f, on) => m.flags.contains(&f.name().to_ascii_lowercase()) == *on,
        Crit::Larger(n) => m.size() > *n,
        Crit::Smaller(n) => m.size() < *n,
        Crit::Subject(w) => text.subject.to_lowercase().contains(w),
        Crit::From(w) => text.from.to_lowercase().contains(w),
        Crit::Body(w) => text.body.to_lowercase().contains(w),
        Crit::Text(w) => String::from_utf8_lossy(m.bytes())
            .to_lowercase()
            .contains(w),
        Crit::Since(d) => m.date.date >= date(*d),
        Crit::Before(d) => m.date.date < date(*d),
        Crit::On(d) => m.date.date == date(*d),
        Crit::Recent => recent.contains(&m.uid),
        Crit::New => recent.contains(&m.uid) && !m.flags.contains("\\seen"),
        Crit::Old => !recent.contains(&m.uid),
        Crit::Set(i) => sets(*i, m.uid),
        Crit::Not(c) => !matches(c, m, recent, sets),
        Crit::Or(a, b) => matches(a, m, recent, sets) || matches(b, m, recent, sets),
        Crit::And(v) => v.iter().all(|c| matches(c, m, recent, sets)),
    }
}

fn date(i: usize) -> Date {
    pool::SEARCH_DATES[i % pool::SEARCH_DATES.len()]
}
