//! Runs a history against real sessions over a real store, and against the model, checking
//! after every step.
//!
//! Each IMAP connection is driven by a client that knows only what it was told: its view of the
//! selected mailbox (UIDs in sequence order, flags, `\Recent`) changes only by applying, in
//! order, the EXISTS/EXPUNGE/FETCH responses it receives. The model says what the mailbox
//! really holds. The checks:
//!
//! - the tagged status, its response code and the data of each command equal the model's
//!   (FETCH items, SEARCH/ESEARCH results, STATUS figures, APPENDUID/COPYUID UIDs, LIST);
//! - a session's view never contradicts the model (UIDs ascending, a FETCH's UID matches the
//!   number it is reported under, EXISTS never shrinks, an EXPUNGE names a message that is
//!   gone) and equals it once the session may hear every change (after NOOP, CHECK, and all
//!   the time while idling);
//! - no EXPUNGE during FETCH, STORE or SEARCH, nor to a session with no command running;
//! - the store itself, probed after steps, holds exactly the model's mailboxes and messages:
//!   UIDs ascending and never reused under one UIDVALIDITY, UIDNEXT and MODSEQ never
//!   decreasing, message octets never changed after APPEND;
//! - POP3: message numbers stay fixed for the session, QUIT removes exactly the marked
//!   messages (the probe sees it), UIDL ids are stable and distinct.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::Bytes;
use tern_core::drive::{pump, Blocked};
use tern_core::imap::command::Tag;
use tern_core::imap::response::{
    Code, Condition, Data, ESearchResult, FetchItem, ListItem, Response, StatusResponse,
    StatusValue,
};
use tern_core::imap::response_decode::parse_response;
use tern_core::imap::types::{PartialRange, SeqNo, SequenceSet, StatusItem};
use tern_core::mail::date::DateTime;
use tern_core::mail::flags::{Flag, Flags, SystemFlag};
use tern_core::mail::section::SectionText;
use tern_core::store::{FetchWant, MailboxId, StorageOp, StorageReply};
use tern_core::{Input, MemDirectory, Protocol, Session, SessionConfig, Store, Transport};

use crate::{Backend, Driven};

use super::history::{Cmd, NewMsg, PopCmd, Step};
use super::pool::{
    self, Crit, Fl, Item, Pos, Ret, SetSpec, SortBy, StoreOp, ThreadBy, APPEND_DATES, MAILBOXES,
};
use super::resync::{self, Checkpoint};
use super::spec::{self, flag_set, Account, FlagSet, Refusal, Uid};

pub const USER: &str = "alice";
pub const PASS: &str = "wonderland";

/// One line of what happened, for the transcript.
#[derive(Clone, Debug)]
pub enum Event {
    Open(String, Protocol),
    Client(String, Vec<u8>),
    Server(String, Vec<u8>),
    /// The client closed the connection.
    Close(String),
    Crash,
    Tick(i64),
    Note(String, String),
}

#[derive(Clone, Debug)]
struct Sel {
    id: u64,
    read_only: bool,
    /// UIDs in sequence order and their flags, as told.
    view: Vec<(Uid, FlagSet)>,
    /// The highest UID this session was ever told about in this mailbox.
    max_known: Uid,
    /// This session's `\Recent` messages.
    recent: BTreeSet<Uid>,
    /// The mailbox was deleted under the session; what it says is not checked until it
    /// learns (BYE) or the mailbox comes back.
    orphan: bool,
    /// EXAMINE under IMAP4rev1: the unclaimed messages, which the session may show as
    /// `\Recent` without claiming them (RFC 3501 §2.3.2 lets a read-only first session see
    /// them) or not; its RECENT response says which, and fixes the set.
    examine_recent: Option<BTreeSet<Uid>>,
    /// The keywords the last FLAGS response named (lower-case): a FETCH may show no other
    /// (RFC 9051 §7.3.5).
    announced: BTreeSet<String>,
}

impl Sel {
    fn uids(&self) -> Vec<Uid> {
        self.view.iter().map(|v| v.0).collect()
    }
}

#[derive(Clone, Debug)]
struct ImapClient {
    rev2: bool,
    /// A CONDSTORE-enabling command was sent (STATUS with HIGHESTMODSEQ, RFC 7162 §3.1):
    /// from then on untagged FETCH responses may carry MODSEQ.
    condstore: bool,
    idle: Option<String>,
    sel: Option<Sel>,
}

#[derive(Clone, Debug)]
struct PopClient {
    logged_in: bool,
    inbox: u64,
    /// (UID, size, marked deleted), numbered from 1.
    drop: Vec<(Uid, u64, bool)>,
    /// UIDs sent in full by RETR: they get `\Seen` when the session ends, by QUIT or not.
    retrieved: Vec<Uid>,
}

impl PopClient {
    /// The retrieved messages not marked for deletion.
    fn seen_at_end(&self) -> Vec<Uid> {
        self.drop
            .iter()
            .filter(|m| !m.2 && self.retrieved.contains(&m.0))
            .map(|m| m.0)
            .collect()
    }
}

struct Conn<C> {
    name: String,
    session: Session,
    wire: Vec<u8>,
    closed: bool,
    client: C,
}

pub struct World<'b> {
    backend: &'b mut dyn Backend,
    pub(super) store: Driven,
    pub model: Account,
    /// Knows [`USER`]; logins are never the store's business.
    pub(super) directory: MemDirectory,
    pub(super) now: Instant,
    imap: Vec<Option<Conn<ImapClient>>>,
    pop: Vec<Option<Conn<PopClient>>>,
    pub events: Vec<Event>,
    pub(super) step_no: usize,
    /// Invariant memory: UIDVALIDITY per model identity; message identity per
    /// (name, UIDVALIDITY, UID); HIGHESTMODSEQ per identity; (MODSEQ, flags) per message;
    /// UIDL per (identity, UID).
    uid_validity: BTreeMap<u64, u32>,
    seen: BTreeMap<(String, u32, Uid), (usize, DateTime)>,
    modseq: BTreeMap<u64, u64>,
    msg_modseq: BTreeMap<(u64, Uid), (u64, FlagSet)>,
    uidl: BTreeMap<(u64, Uid), String>,
    /// What an offline client knew of each mailbox at earlier probes ([`resync`]).
    checkpoints: BTreeMap<u64, Vec<Checkpoint>>,
    /// The session those clients resynchronise on (outside the history).
    pub(super) offline: Option<Session>,
    probes: usize,
    since_probe: usize,
}

type R = Result<(), String>;

/// How often each command ended how, across every history of the process (for the summary).
static OUTCOMES: std::sync::Mutex<BTreeMap<String, u64>> = std::sync::Mutex::new(BTreeMap::new());

fn record(key: String) {
    if let Ok(mut m) = OUTCOMES.lock() {
        *m.entry(key).or_default() += 1;
    }
}

/// The outcome counts so far, one `key: n` per line.
pub fn outcomes() -> String {
    OUTCOMES
        .lock()
        .map(|m| {
            m.iter()
                .map(|(k, n)| format!("  {k}: {n}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn fail<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

impl<'b> World<'b> {
    pub fn new(backend: &'b mut dyn Backend, imap: usize, pop3: usize) -> World<'b> {
        let mut store = Driven::new(backend.fresh(None));
        let mut directory = MemDirectory::new();
        directory.add_user(USER, PASS);
        let model = Account::new();
        store.set_now(model.now);
        #[allow(clippy::disallowed_methods)] // One real origin for the sessions' clock.
        let now = Instant::now();
        World {
            backend,
            store,
            directory,
            model,
            now,
            imap: (0..imap).map(|_| None).collect(),
            pop: (0..pop3).map(|_| None).collect(),
            events: Vec::new(),
            step_no: 0,
            uid_validity: BTreeMap::new(),
            seen: BTreeMap::new(),
            modseq: BTreeMap::new(),
            msg_modseq: BTreeMap::new(),
            uidl: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            offline: None,
            probes: 0,
            since_probe: 0,
        }
    }

    /// Runs one step and every check that follows it.
    pub fn step(&mut self, step: &Step) -> R {
        self.step_no += 1;
        let before = self.model.clone();
        match step {
            Step::Open { c, rev2 } => self.open_imap(*c, *rev2)?,
            Step::Cmd { c, cmd } => self.imap_cmd(*c, cmd, &before)?,
            Step::Idle { c } => self.idle(*c, &before)?,
            Step::Done { c } => self.done(*c, &before)?,
            Step::Logout { c } => self.logout(*c, &before)?,
            Step::Drop { c } => {
                if let Some(conn) = self.imap.get_mut(*c).and_then(Option::take) {
                    self.events.push(Event::Close(conn.name.clone()));
                    let mut conn = conn;
                    self.peer_closed(&mut conn.session)?;
                }
            }
            Step::PopOpen { p } => self.open_pop(*p, &before)?,
            Step::Pop { p, cmd } => self.pop_cmd(*p, *cmd, &before)?,
            Step::PopDrop { p } => {
                if let Some(conn) = self.pop.get_mut(*p).and_then(Option::take) {
                    self.events.push(Event::Close(conn.name.clone()));
                    let mut conn = conn;
                    self.peer_closed(&mut conn.session)?;
                    if conn.client.logged_in {
                        let seen = conn.client.seen_at_end();
                        self.model.mark_seen(conn.client.inbox, &seen);
                    }
                    if self.model.pop3_lock == Some(*p) {
                        self.model.pop3_lock = None;
                    }
                }
            }
            Step::Tick => {
                self.model.now += 86_400 + 3_600;
                self.store.set_now(self.model.now);
                self.events.push(Event::Tick(86_400 + 3_600));
            }
            Step::Crash => {
                if self.backend.can_crash() {
                    let backend = &mut *self.backend;
                    self.store.replace_with(|running| backend.crash(running));
                    // The process died: sessions and the maildrop lock with it. Every
                    // acknowledged change must have survived.
                    self.imap.iter_mut().for_each(|c| *c = None);
                    self.pop.iter_mut().for_each(|c| *c = None);
                    self.offline = None;
                    self.model.pop3_lock = None;
                    self.store.set_now(self.model.now);
                    self.events.push(Event::Crash);
                    self.probe(true)?;
                }
            }
        }
        self.after_step(&before)?;
        let every = self.backend.probe_every();
        self.since_probe += 1;
        if every > 0 && self.since_probe >= every {
            self.since_probe = 0;
            // The backend's deferred work (indexing) done now and then: the SEARCHes that
            // follow see messages stored before it through the index, later ones without.
            self.backend.settle(USER);
            // Octets are compared on every tenth probe: they change least and cost most.
            self.probes += 1;
            let octets = self.probes >= 10;
            if octets {
                self.probes = 0;
            }
            self.probe(octets)?;
        }
        Ok(())
    }

    /// The final check of a history: the store holds exactly the model, octets included.
    pub fn finish(&mut self) -> R {
        self.probe(true)
    }

    // ----------------------------------------------------------------- driving sessions

    fn peer_closed(&mut self, session: &mut Session) -> R {
        let now = self.now;
        session
            .handle_input(Input::PeerClosed { now })
            .map_err(|e| format!("PeerClosed: {e}"))?;
        let mut sink = Vec::new();
        pump(
            session,
            &mut self.store,
            &mut self.directory,
            now,
            &mut |b| sink.extend_from_slice(b),
        )
        .map_err(|e| format!("pump after close: {e}"))?;
        self.notify()
    }

    /// Feeds bytes to a connection, runs it and every session a change notification wakes.
    fn send(&mut self, imap: bool, i: usize, data: &[u8]) -> Result<Vec<u8>, String> {
        let now = self.now;
        let store = &mut self.store;
        let directory = &mut self.directory;
        let (session, wire, closed, name) = if imap {
            let c = self.imap[i].as_mut().ok_or("no such connection")?;
            (&mut c.session, &mut c.wire, &mut c.closed, c.name.clone())
        } else {
            let c = self.pop[i].as_mut().ok_or("no such connection")?;
            (&mut c.session, &mut c.wire, &mut c.closed, c.name.clone())
        };
        session
            .handle_input(Input::Bytes { now, data })
            .map_err(|e| format!("{name}: input refused: {e}"))?;
        let blocked = pump(session, store, directory, now, &mut |b| {
            wire.extend_from_slice(b)
        })
        .map_err(|e| format!("{name}: pump: {e}"))?;
        if blocked == Blocked::Close {
            *closed = true;
        }
        self.events.push(Event::Client(name.clone(), data.to_vec()));
        self.notify()?;
        let wire = if imap {
            self.imap[i].as_mut().map(|c| &mut c.wire)
        } else {
            self.pop[i].as_mut().map(|c| &mut c.wire)
        };
        let out = wire.map(std::mem::take).unwrap_or_default();
        self.events.push(Event::Server(name, out.clone()));
        Ok(out)
    }

    /// Tells every open session of the account about changed mailboxes, as the binary does
    /// (the session that made the change included), until nothing changes any more.
    fn notify(&mut self) -> R {
        for _ in 0..10 {
            let changes = self.store.take_changes();
            if changes.is_empty() {
                return Ok(());
            }
            let now = self.now;
            for change in changes {
                let sessions = self
                    .imap
                    .iter_mut()
                    .flatten()
                    .map(|c| (&mut c.session, &mut c.wire, &mut c.closed))
                    .chain(
                        self.pop
                            .iter_mut()
                            .flatten()
                            .map(|c| (&mut c.session, &mut c.wire, &mut c.closed)),
                    );
                for (session, wire, closed) in sessions {
                    if *closed || session.account() != Some(change.account.as_str()) {
                        continue;
                    }
                    session
                        .handle_input(Input::MailboxChanged {
                            now,
                            account: &change.account,
                            mailbox: change.mailbox,
                            modseq: change.modseq,
                        })
                        .map_err(|e| format!("MailboxChanged: {e}"))?;
                    let blocked = pump(
                        session,
                        &mut self.store,
                        &mut self.directory,
                        now,
                        &mut |b| wire.extend_from_slice(b),
                    )
                    .map_err(|e| format!("pump after notification: {e}"))?;
                    if blocked == Blocked::Close {
                        *closed = true;
                    }
                }
            }
        }
        fail("change notifications never settle")
    }

    pub(super) fn new_session(&mut self, protocol: Protocol) -> Result<(Session, Vec<u8>), String> {
        let mut config = SessionConfig::new(protocol, Transport::ImplicitTls);
        config.plaintext_auth_without_tls = true;
        let mut session = Session::new(config, self.now);
        let mut wire = Vec::new();
        pump(
            &mut session,
            &mut self.store,
            &mut self.directory,
            self.now,
            &mut |b| wire.extend_from_slice(b),
        )
        .map_err(|e| format!("greeting: {e}"))?;
        Ok((session, wire))
    }

    // ----------------------------------------------------------------- IMAP steps

    fn open_imap(&mut self, c: usize, rev2: bool) -> R {
        if c >= self.imap.len() || self.imap[c].is_some() {
            return Ok(());
        }
        let name = ["A", "B", "C", "D"][c % 4].to_string();
        let (session, greeting) = self.new_session(Protocol::Imap)?;
        self.events.push(Event::Open(name.clone(), Protocol::Imap));
        self.events
            .push(Event::Server(name.clone(), greeting.clone()));
        if !greeting.starts_with(b"* OK ") {
            return fail(format!("{name}: greeting {:?}", lossy(&greeting)));
        }
        self.imap[c] = Some(Conn {
            name: name.clone(),
            session,
            wire: Vec::new(),
            closed: false,
            client: ImapClient {
                rev2,
                condstore: false,
                idle: None,
                sel: None,
            },
        });
        let out = self.send(true, c, format!("l LOGIN {USER} {PASS}\r\n").as_bytes())?;
        let rs = parse_all(&out)?;
        expect_tagged(&rs, "l", Condition::Ok, &name)?;
        if rev2 {
            let out = self.send(true, c, b"e ENABLE IMAP4rev2\r\n")?;
            let rs = parse_all(&out)?;
            expect_tagged(&rs, "e", Condition::Ok, &name)?;
            if !rs.iter().any(|r| matches!(r, Response::Data(Data::Enabled(v)) if v.iter().any(|x| x.eq_ignore_ascii_case(b"IMAP4rev2")))) {
                return fail(format!("{name}: ENABLE IMAP4rev2 not confirmed"));
            }
        }
        Ok(())
    }

    fn usable(&self, c: usize) -> bool {
        matches!(self.imap.get(c), Some(Some(conn)) if !conn.closed && conn.client.idle.is_none())
    }

    fn logout(&mut self, c: usize, before: &Account) -> R {
        if !self.usable(c) {
            return Ok(());
        }
        let tag = self.tag();
        let out = self.send(true, c, format!("{tag} LOGOUT\r\n").as_bytes())?;
        let name = self.imap_name(c);
        let mut client = self.take_client(c)?;
        let obs = observe(
            &mut client,
            &out,
            before,
            &self.model,
            &mut self.model.clone(),
            &name,
            true,
        )?;
        if !obs.bye {
            return fail(format!("{name}: LOGOUT without BYE"));
        }
        check_status(&obs, &tag, Condition::Ok, None, &name)?;
        if !self.imap[c].as_ref().is_some_and(|x| x.closed) {
            return fail(format!("{name}: still open after LOGOUT"));
        }
        self.imap[c] = None;
        Ok(())
    }

    fn idle(&mut self, c: usize, before: &Account) -> R {
        if !self.usable(c) {
            return Ok(());
        }
        let tag = self.tag();
        let out = self.send(true, c, format!("{tag} IDLE\r\n").as_bytes())?;
        let name = self.imap_name(c);
        let mut client = self.take_client(c)?;
        let mut model = self.model.clone();
        let obs = observe(
            &mut client,
            &out,
            before,
            &self.model,
            &mut model,
            &name,
            true,
        )?;
        self.model = model;
        self.put_client(c, client.clone());
        if !obs.continued || obs.tagged.is_some() {
            return fail(format!("{name}: IDLE not accepted: {:?}", lossy(&out)));
        }
        if self.closed_by_bye(c, &obs)? {
            return Ok(());
        }
        client.idle = Some(tag);
        self.put_client(c, client);
        Ok(())
    }

    fn done(&mut self, c: usize, before: &Account) -> R {
        let Some(Some(conn)) = self.imap.get(c) else {
            return Ok(());
        };
        let Some(tag) = conn.client.idle.clone() else {
            return Ok(());
        };
        if conn.closed {
            return Ok(());
        }
        let out = self.send(true, c, b"DONE\r\n")?;
        let name = self.imap_name(c);
        let mut client = self.take_client(c)?;
        client.idle = None;
        let mut model = self.model.clone();
        let obs = observe(
            &mut client,
            &out,
            before,
            &self.model,
            &mut model,
            &name,
            true,
        )?;
        self.model = model;
        self.put_client(c, client);
        if self.closed_by_bye(c, &obs)? {
            return Ok(());
        }
        check_status(&obs, &tag, Condition::Ok, None, &name)?;
        self.strict(c)
    }

    fn tag(&self) -> String {
        format!("t{}", self.step_no)
    }

    fn imap_name(&self, c: usize) -> String {
        self.imap[c]
            .as_ref()
            .map_or_else(String::new, |x| x.name.clone())
    }

    fn take_client(&mut self, c: usize) -> Result<ImapClient, String> {
        self.imap[c]
            .as_ref()
            .map(|x| x.client.clone())
            .ok_or_else(|| "connection vanished".to_string())
    }

    fn put_client(&mut self, c: usize, client: ImapClient) {
        if let Some(conn) = self.imap[c].as_mut() {
            conn.client = client;
        }
    }

    /// A BYE is allowed only to a session whose mailbox was deleted; the connection is then
    /// gone. Returns whether that happened.
    fn closed_by_bye(&mut self, c: usize, obs: &Observed) -> Result<bool, String> {
        if !obs.bye {
            return Ok(false);
        }
        let conn = self.imap[c].as_ref().ok_or("connection vanished")?;
        let orphan = conn.client.sel.as_ref().is_some_and(|s| s.orphan);
        if !orphan {
            return fail(format!("{}: unexpected BYE", conn.name));
        }
        if !conn.closed {
            return fail(format!("{}: BYE but the connection stays open", conn.name));
        }
        self.imap[c] = None;
        Ok(true)
    }

    fn imap_cmd(&mut self, c: usize, cmd: &Cmd, before: &Account) -> R {
        if !self.usable(c) {
            return Ok(());
        }
        let tag = self.tag();
        let client = self.take_client(c)?;
        let name = self.imap_name(c);
        let orphan = client.sel.as_ref().is_some_and(|s| s.orphan);
        let (text, expect) = self.predict(&client, cmd, &tag)?;
        let out = self.send(true, c, text.as_bytes())?;
        let mut client = client;
        client.condstore |= matches!(cmd, Cmd::Status(_));
        if let (Some(id), Some(s)) = (expect.deleted, client.sel.as_mut()) {
            if s.id == id {
                s.orphan = true;
            }
        }
        if let Cmd::Select(_) | Cmd::Examine(_) = cmd {
            // The previous selection ends before the new one is reported.
            client.sel = expect.select.clone();
        }
        let mut model = self.model.clone();
        let obs = observe(
            &mut client,
            &out,
            before,
            &self.model,
            &mut model,
            &name,
            !cmd.forbids_expunge(),
        )?;
        self.model = model;
        if cmd.forbids_expunge() && obs.expunges > 0 {
            return fail(format!(
                "{name}: EXPUNGE announced during {}",
                first_word(&text)
            ));
        }
        self.put_client(c, client);
        if self.closed_by_bye(c, &obs)? {
            return Ok(());
        }
        if orphan {
            // What a session says about a mailbox deleted under it is its own business, until
            // NOOP, which must tell it.
            if matches!(cmd, Cmd::Noop | Cmd::Check) {
                return self.strict(c);
            }
            let ok = obs
                .tagged
                .as_ref()
                .is_some_and(|t| t.condition == Condition::Ok);
            if matches!(cmd, Cmd::Close | Cmd::Unselect) && ok {
                let mut client = self.take_client(c)?;
                client.sel = None;
                self.put_client(c, client);
            }
            return Ok(());
        }
        check_status(&obs, &tag, expect.cond, expect.code.as_ref(), &name)
            .map_err(|e| format!("{e}\n  command: {}", text.trim_end()))?;
        let words: Vec<&str> = text.split(' ').skip(1).take(2).collect();
        let verb = match words.as_slice() {
            ["UID", w, ..] => format!("UID {}", w.trim_end()),
            [w, ..] => w.trim_end().to_string(),
            [] => String::new(),
        };
        let code = expect
            .code
            .as_ref()
            .map(|c| {
                format!(
                    " [{}]",
                    format!("{c:?}").split('(').next().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let mut detail = String::new();
        if obs.expunges > 0 {
            detail.push_str(" +EXPUNGE");
        }
        if obs.exists.len() > usize::from(matches!(cmd, Cmd::Select(_) | Cmd::Examine(_))) {
            detail.push_str(" +EXISTS");
        }
        record(format!("{verb} {:?}{code}{detail}", expect.cond));
        self.check_data(c, cmd, &expect, &obs, before)
            .map_err(|e| format!("{e}\n  command: {}", text.trim_end()))?;
        match cmd {
            Cmd::Close | Cmd::Unselect => {
                if obs.expunges > 0 {
                    return fail(format!("{name}: EXPUNGE announced by CLOSE/UNSELECT"));
                }
                let mut client = self.take_client(c)?;
                if expect.cond == Condition::Ok {
                    client.sel = None;
                }
                self.put_client(c, client);
            }
            Cmd::Noop | Cmd::Check => self.strict(c)?,
            Cmd::Expunge | Cmd::UidExpunge(_) | Cmd::Move { .. } => {
                // RFC 9051 §6.4.3: every message the command removed is announced.
                let conn = self.imap[c].as_ref().ok_or("connection vanished")?;
                if let Some(sel) = &conn.client.sel {
                    for uid in &expect.removed {
                        if sel.view.iter().any(|v| v.0 == *uid) {
                            return fail(format!(
                                "{name}: UID {uid} was expunged by this command but not announced"
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The command's text and what the model says it must do; applies it to the model.
    fn predict(
        &mut self,
        client: &ImapClient,
        cmd: &Cmd,
        tag: &str,
    ) -> Result<(String, Expect), String> {
        let sel = client.sel.as_ref();
        let mut e = Expect::ok();
        let m = &mut self.model;
        let not_selected = |e: &mut Expect| {
            e.cond = Condition::Bad;
        };
        let text = match cmd {
            Cmd::Select(mb) | Cmd::Examine(mb) => {
                let read_only = matches!(cmd, Cmd::Examine(_));
                let name = MAILBOXES[*mb];
                match m.selectable(name).map(|x| x.id) {
                    None => e.no(Code::NonExistent),
                    Some(id) => {
                        e.code = Some(if read_only {
                            Code::ReadOnly
                        } else {
                            Code::ReadWrite
                        });
                        // IMAP4rev1 `\Recent`: the first read-write session to see a message
                        // holds it. IMAP4rev2 has no `\Recent` (RFC 9051 §2.3.2), so its
                        // sessions claim nothing.
                        let claimed = if !read_only && !client.rev2 {
                            let all = m.by_id(id).map(|x| x.1.uids()).unwrap_or_default();
                            m.claim(id, &all)
                        } else {
                            Vec::new()
                        };
                        let examine_recent = (read_only && !client.rev2).then(|| {
                            m.by_id(id)
                                .map(|x| {
                                    x.1.messages
                                        .iter()
                                        .filter(|m| !m.claimed)
                                        .map(|m| m.uid)
                                        .collect()
                                })
                                .unwrap_or_default()
                        });
                        e.select = Some(Sel {
                            id,
                            read_only,
                            view: Vec::new(),
                            max_known: 0,
                            recent: claimed.into_iter().collect(),
                            orphan: false,
                            examine_recent,
                            announced: BTreeSet::new(),
                        });
                    }
                }
                format!(
                    "{tag} {} {name}\r\n",
                    if read_only { "EXAMINE" } else { "SELECT" }
                )
            }
            Cmd::Status(mb) => {
                let name = MAILBOXES[*mb];
                match m.selectable(name) {
                    None => e.no(Code::NonExistent),
                    Some(x) => e.status = Some((name.to_string(), x.id, x.status())),
                }
                format!("{tag} STATUS {name} (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ)\r\n")
            }
            Cmd::Append(mb, msgs) => {
                let name = MAILBOXES[*mb];
                let new: Vec<_> = msgs
                    .iter()
                    .map(|n| {
                        (
                            n.body,
                            flag_set(&n.flags),
                            n.date.map(|d| APPEND_DATES[d % 3].0),
                        )
                    })
                    .collect();
                match m.append(name, &new) {
                    Err(r) => e.refused(r),
                    Ok(uids) => {
                        let id = m.selectable(name).map_or(0, |x| x.id);
                        e.append_uid = Some((name.to_string(), id, uids));
                    }
                }
                append_text(tag, name, msgs)
            }
            Cmd::Create(mb) => {
                let name = MAILBOXES[*mb];
                if let Err(r) = m.create(name) {
                    e.refused(r);
                }
                format!("{tag} CREATE {name}\r\n")
            }
            Cmd::Delete(mb) => {
                let name = MAILBOXES[*mb];
                match m.delete(name) {
                    Err(r) => e.refused(r),
                    Ok(gone) => e.deleted = gone,
                }
                format!("{tag} DELETE {name}\r\n")
            }
            Cmd::Rename(a, b) => {
                let (from, to) = (MAILBOXES[*a], MAILBOXES[*b]);
                if let Err(r) = m.rename(from, to) {
                    e.refused(r);
                }
                format!("{tag} RENAME {from} {to}\r\n")
            }
            Cmd::List => {
                e.list = Some(
                    m.mailboxes
                        .iter()
                        .map(|(n, x)| {
                            let children =
                                m.mailboxes.keys().any(|k| k.starts_with(&format!("{n}/")));
                            (n.clone(), !x.selectable, children)
                        })
                        .collect(),
                );
                format!("{tag} LIST \"\" *\r\n")
            }
            Cmd::Noop => format!("{tag} NOOP\r\n"),
            Cmd::Check => {
                if sel.is_none() {
                    not_selected(&mut e);
                }
                format!("{tag} CHECK\r\n")
            }
            Cmd::Close | Cmd::Unselect => {
                let close = matches!(cmd, Cmd::Close);
                match sel {
                    None => not_selected(&mut e),
                    Some(s) if close && !s.read_only => {
                        // RFC 9051 §6.4.1: CLOSE expunges, silently.
                        m.expunge(s.id, None);
                    }
                    Some(_) => {}
                }
                format!("{tag} {}\r\n", if close { "CLOSE" } else { "UNSELECT" })
            }
            Cmd::Expunge => {
                match sel {
                    None => not_selected(&mut e),
                    Some(s) if s.read_only => e.no(Code::Cannot),
                    Some(s) => e.removed = m.expunge(s.id, None),
                }
                format!("{tag} EXPUNGE\r\n")
            }
            Cmd::UidExpunge(set) => {
                let text = match sel {
                    None => {
                        not_selected(&mut e);
                        uid_text(set, &[], 0)
                    }
                    Some(s) => {
                        let view = s.uids();
                        let text = uid_text(set, &view, s.max_known);
                        if s.read_only {
                            e.no(Code::Cannot);
                        } else {
                            // Only UIDs the session knows of: UID EXPUNGE never removes a
                            // message its client has not seen (the point of RFC 4315 §2.1).
                            let picked = uid_resolve(set, &view, s.max_known, &view);
                            e.removed = m.expunge(s.id, Some(&picked));
                        }
                        text
                    }
                };
                format!("{tag} UID EXPUNGE {text}\r\n")
            }
            Cmd::Fetch { uid, set, items } => {
                let (set_text, picked) = resolve(sel, *uid, set, m);
                let mut wire: Vec<&str> = items.iter().map(|i| i.wire()).collect();
                if wire.is_empty() {
                    wire.push("UID");
                }
                let text = format!(
                    "{tag} {}FETCH {set_text} ({})\r\n",
                    if *uid { "UID " } else { "" },
                    wire.join(" ")
                );
                match (sel, picked) {
                    (None, _) => not_selected(&mut e),
                    (_, None) => e.cond = Condition::Bad,
                    (Some(s), Some(uids)) => {
                        let present: Vec<Uid> = m
                            .by_id(s.id)
                            .map(|x| x.1.uids())
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|u| uids.contains(u))
                            .collect();
                        let seen_before: BTreeSet<Uid> = m
                            .by_id(s.id)
                            .map(|x| {
                                x.1.messages
                                    .iter()
                                    .filter(|x| x.flags.contains("\\seen"))
                                    .map(|x| x.uid)
                                    .collect()
                            })
                            .unwrap_or_default();
                        let marks = !s.read_only && items.contains(&Item::Body);
                        if marks {
                            m.mark_seen(s.id, &present);
                        }
                        // Messages expunged by another session that this one was not told of
                        // yet are answered as they were, with OK [EXPUNGEISSUED] (RFC 2180
                        // §4.1.2); NO only if they could not be.
                        let answered: Vec<Uid> = uids
                            .iter()
                            .copied()
                            .filter(|u| m.by_id(s.id).is_some_and(|x| x.1.get_any(*u).is_some()))
                            .collect();
                        if answered.len() < uids.len() {
                            e.no(Code::ExpungeIssued);
                        } else if present.len() < uids.len() {
                            e.code = Some(Code::ExpungeIssued);
                        }
                        // An item asked for again is answered once, under the name its
                        // response carries: BODY[] for BODY[] and BODY.PEEK[] alike (RFC 9051
                        // §6.4.5, §7.5.2).
                        let mut attrs: Vec<Item> = Vec::with_capacity(items.len());
                        for item in items {
                            let named = match item {
                                Item::BodyPeek => Item::Body,
                                other => *other,
                            };
                            if !attrs.contains(&named) {
                                attrs.push(named);
                            }
                        }
                        if *uid && !attrs.contains(&Item::Uid) {
                            attrs.insert(0, Item::Uid);
                        }
                        e.fetch = Some(FetchExpect {
                            uids: answered,
                            items: attrs,
                            marks,
                            newly_seen: if marks {
                                present
                                    .iter()
                                    .copied()
                                    .filter(|u| !seen_before.contains(u))
                                    .collect()
                            } else {
                                BTreeSet::new()
                            },
                        });
                    }
                }
                text
            }
            Cmd::Store {
                uid,
                set,
                op,
                silent,
                flags,
            } => {
                let (set_text, picked) = resolve(sel, *uid, set, m);
                let list: Vec<&str> = flags.iter().map(|f| f.name()).collect();
                let text = format!(
                    "{tag} {}STORE {set_text} {}FLAGS{} ({})\r\n",
                    if *uid { "UID " } else { "" },
                    match op {
                        StoreOp::Add => "+",
                        StoreOp::Remove => "-",
                        StoreOp::Replace => "",
                    },
                    if *silent { ".SILENT" } else { "" },
                    list.join(" ")
                );
                match sel {
                    None => not_selected(&mut e),
                    Some(s) if s.read_only => e.no(Code::Cannot),
                    Some(s) => match picked {
                        None => e.cond = Condition::Bad,
                        Some(uids) => {
                            let done = m.store(s.id, &uids, *op, &flag_set(flags));
                            e.stored = Some((done, *silent, *uid));
                        }
                    },
                }
                text
            }
            Cmd::Search {
                uid,
                ret,
                crit,
                sets,
                sort,
                thread,
            } => {
                let view = sel.map(Sel::uids).unwrap_or_default();
                let max_known = sel.map_or(0, |s| s.max_known);
                let mut resolved: Vec<BTreeSet<Uid>> = Vec::new();
                let mut set_texts = Vec::new();
                for (is_uid, set) in sets {
                    if *is_uid {
                        set_texts.push(format!("UID {}", uid_text(set, &view, max_known)));
                        resolved.push(
                            uid_resolve(set, &view, max_known, &view)
                                .into_iter()
                                .collect(),
                        );
                    } else {
                        let t = seq_text(set, view.len());
                        resolved.push(search_seq(&t, &view));
                        set_texts.push(t);
                    }
                }
                let keys: Vec<String> = crit.iter().map(|k| crit_text(k, &set_texts)).collect();
                let ret_text = match ret {
                    None => String::new(),
                    Some(v) => format!(
                        "RETURN ({}) ",
                        v.iter().map(|r| r.text()).collect::<Vec<_>>().join(" ")
                    ),
                };
                match sel {
                    None => not_selected(&mut e),
                    Some(s) => {
                        let all = Crit::And(crit.clone());
                        let mut found: Vec<&spec::Msg> = match m.by_id(s.id) {
                            None => Vec::new(),
                            Some((_, mb)) => view
                                .iter()
                                .filter_map(|u| mb.get(*u))
                                .filter(|msg| {
                                    spec::matches(&all, msg, &s.recent, &|i, u| {
                                        resolved.get(i).is_some_and(|r| r.contains(&u))
                                    })
                                })
                                .collect(),
                        };
                        if let Some(keys) = sort {
                            // The view is in UID order, and a stable sort keeps it for ties
                            // (RFC 5256 §2.2's tie-breaker).
                            found.sort_by(|a, b| {
                                keys.iter()
                                    .map(|&(reverse, key)| {
                                        let o = sort_compare(key, a, b);
                                        if reverse {
                                            o.reverse()
                                        } else {
                                            o
                                        }
                                    })
                                    .find(|o| o.is_ne())
                                    .unwrap_or(std::cmp::Ordering::Equal)
                            });
                        }
                        let number = |u: Uid| {
                            if *uid {
                                Some(u)
                            } else {
                                view.iter().position(|v| *v == u).map(|i| i as u32 + 1)
                            }
                        };
                        e.thread = thread.map(|by| model_thread(by, &found, &number));
                        let found: Vec<Uid> = found.iter().map(|msg| msg.uid).collect();
                        let numbers: Vec<u32> = if *uid {
                            found
                        } else {
                            found
                                .iter()
                                .filter_map(|u| view.iter().position(|v| v == u))
                                .map(|i| i as u32 + 1)
                                .collect()
                        };
                        e.search = Some(SearchExpect {
                            numbers,
                            esearch: ret
                                .clone()
                                .or_else(|| (client.rev2 && sort.is_none()).then(Vec::new)),
                            uid: *uid,
                            sorted: sort.is_some(),
                        });
                    }
                }
                let command = match sort {
                    None if thread.is_some() => {
                        format!("THREAD {} UTF-8 ", thread.map_or("", |t| t.text()))
                    }
                    None => format!("SEARCH {ret_text}"),
                    Some(keys) => format!(
                        "SORT ({}) UTF-8 ",
                        keys.iter()
                            .map(|(reverse, key)| if *reverse {
                                format!("REVERSE {}", key.text())
                            } else {
                                key.text().to_string()
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                };
                format!(
                    "{tag} {}{command}{}\r\n",
                    if *uid { "UID " } else { "" },
                    keys.join(" ")
                )
            }
            Cmd::Copy { uid, set, to } | Cmd::Move { uid, set, to } => {
                let remove = matches!(cmd, Cmd::Move { .. });
                let target = MAILBOXES[*to];
                let (set_text, picked) = resolve(sel, *uid, set, m);
                match sel {
                    None => not_selected(&mut e),
                    Some(s) if remove && s.read_only => e.no(Code::Cannot),
                    Some(s) => match picked {
                        None => e.cond = Condition::Bad,
                        Some(uids) => match m.copy(s.id, &uids, target, remove) {
                            Err(r) => e.refused(r),
                            Ok(pairs) => {
                                let id = m.selectable(target).map_or(0, |x| x.id);
                                if remove {
                                    e.removed = pairs.iter().map(|p| p.0).collect();
                                }
                                e.copy_uid = Some((target.to_string(), id, pairs, remove));
                            }
                        },
                    },
                }
                format!(
                    "{tag} {}{} {set_text} {target}\r\n",
                    if *uid { "UID " } else { "" },
                    if remove { "MOVE" } else { "COPY" }
                )
            }
        };
        if let Some(id) = e.deleted {
            for conn in self.imap.iter_mut().flatten() {
                if let Some(s) = conn.client.sel.as_mut() {
                    if s.id == id {
                        s.orphan = true;
                    }
                }
            }
        }
        Ok((text, e))
    }

    /// Compares the data a command returned with the model's.
    fn check_data(
        &mut self,
        c: usize,
        cmd: &Cmd,
        e: &Expect,
        obs: &Observed,
        before: &Account,
    ) -> R {
        let conn = self.imap[c].as_ref().ok_or("connection vanished")?;
        let name = conn.name.clone();
        let client = conn.client.clone();
        if let (Cmd::Select(_) | Cmd::Examine(_), Some(_)) = (cmd, &e.select) {
            let sel = client.sel.as_ref().ok_or("no selection after SELECT")?;
            let (mb_name, mb) = self
                .model
                .by_id(sel.id)
                .ok_or("selected mailbox vanished")?;
            let mb_name = mb_name.clone();
            let uids = mb.uids();
            let uid_next = mb.uid_next;
            let first_unseen = mb
                .messages
                .iter()
                .position(|m| !m.flags.contains("\\seen"))
                .map(|i| i as u32 + 1);
            let keywords: BTreeSet<String> = mb
                .messages
                .iter()
                .flat_map(|m| m.flags.iter().filter(|f| !f.starts_with('\\')).cloned())
                .collect();
            if obs.exists != vec![uids.len() as u32] {
                return fail(format!(
                    "{name}: SELECT said EXISTS {:?}, the mailbox has {}",
                    obs.exists,
                    uids.len()
                ));
            }
            if sel.uids() != uids {
                return fail(format!(
                    "{name}: view {:?} after SELECT, mailbox {uids:?}",
                    sel.uids()
                ));
            }
            let code = |f: &dyn Fn(&Code) -> Option<u32>| obs.untagged_codes.iter().find_map(f);
            if code(&|c| match c {
                Code::UidNext(n) => Some(*n),
                _ => None,
            }) != Some(uid_next)
            {
                return fail(format!("{name}: UIDNEXT is {uid_next} in the model"));
            }
            match code(&|c| match c {
                Code::UidValidity(n) => Some(*n),
                _ => None,
            }) {
                Some(v) => self.uid_validity_is(sel.id, &mb_name, v)?,
                None => return fail(format!("{name}: no UIDVALIDITY")),
            }
            if client.rev2 {
                if !obs.recent.is_empty() {
                    return fail(format!("{name}: RECENT sent to an IMAP4rev2 session"));
                }
            } else {
                if obs.recent != vec![sel.recent.len() as u32] {
                    return fail(format!(
                        "{name}: RECENT {:?}, the model gives this session {} (\\Recent goes to the first read-write session)",
                        obs.recent,
                        sel.recent.len()
                    ));
                }
                let unseen = code(&|c| match c {
                    Code::Unseen(n) => Some(*n),
                    _ => None,
                });
                if unseen != first_unseen {
                    return fail(format!("{name}: UNSEEN {unseen:?}, model {first_unseen:?}"));
                }
            }
            let flags: BTreeSet<String> = obs
                .flags_lists
                .last()
                .map(|l| l.iter().map(flag_name).collect())
                .unwrap_or_default();
            if let Some(k) = keywords.iter().find(|k| !flags.contains(*k)) {
                return fail(format!(
                    "{name}: FLAGS does not list the keyword {k} in use"
                ));
            }
        }
        if let Some((mb_name, id, figures)) = &e.status {
            let (_, items) = obs.statuses.first().ok_or("no STATUS response")?;
            let get = |want: StatusItem| {
                items.iter().find_map(|(i, v)| match v {
                    StatusValue::Number(n) if *i == want => Some(*n),
                    _ => None,
                })
            };
            let got = spec::StatusFigures {
                messages: get(StatusItem::Messages).unwrap_or(u64::MAX),
                recent: get(StatusItem::Recent).unwrap_or(u64::MAX),
                uid_next: get(StatusItem::UidNext).unwrap_or(u64::MAX),
                unseen: get(StatusItem::Unseen).unwrap_or(u64::MAX),
                deleted: get(StatusItem::Deleted).unwrap_or(u64::MAX),
                size: get(StatusItem::Size).unwrap_or(u64::MAX),
            };
            if &got != figures {
                return fail(format!(
                    "{name}: STATUS {mb_name} gave {got:?}, model {figures:?}"
                ));
            }
            let v = get(StatusItem::UidValidity).ok_or("no UIDVALIDITY in STATUS")?;
            self.uid_validity_is(*id, mb_name, v as u32)?;
            let h = get(StatusItem::HighestModSeq).ok_or("no HIGHESTMODSEQ in STATUS")?;
            self.highest_modseq_is(*id, h)?;
        }
        if let Some((mb_name, id, uids)) = &e.append_uid {
            let (v, set) = obs
                .tagged
                .as_ref()
                .and_then(|t| match &t.code {
                    Some(Code::AppendUid { uid_validity, uids }) => {
                        Some((*uid_validity, uids.clone()))
                    }
                    _ => None,
                })
                .ok_or_else(|| format!("{name}: APPEND without APPENDUID"))?;
            if expand(&set) != *uids {
                return fail(format!(
                    "{name}: APPENDUID {:?}, model {uids:?}",
                    expand(&set)
                ));
            }
            self.uid_validity_is(*id, mb_name, v)?;
        }
        if let Some((mb_name, id, pairs, moved)) = &e.copy_uid {
            let codes: Vec<&Code> = if *moved {
                obs.untagged_codes.iter().collect()
            } else {
                obs.tagged.iter().filter_map(|t| t.code.as_ref()).collect()
            };
            let found = codes.iter().find_map(|c| match c {
                Code::CopyUid {
                    uid_validity,
                    source,
                    target,
                } => Some((*uid_validity, expand(source), expand(target))),
                _ => None,
            });
            match found {
                None if pairs.is_empty() => {}
                None => return fail(format!("{name}: no COPYUID; model copied {pairs:?}")),
                Some((v, src, dst)) => {
                    let want: (Vec<Uid>, Vec<Uid>) = pairs.iter().copied().unzip();
                    if (src.clone(), dst.clone()) != want {
                        return fail(format!(
                            "{name}: COPYUID {src:?} -> {dst:?}, model {:?} -> {:?}",
                            want.0, want.1
                        ));
                    }
                    self.uid_validity_is(*id, mb_name, v)?;
                }
            }
        }
        if let Some(list) = &e.list {
            let mut got = BTreeSet::new();
            for item in &obs.lists {
                let attr = |a: &str| {
                    item.attributes
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(a.as_bytes()))
                };
                got.insert((
                    String::from_utf8_lossy(&item.name).into_owned(),
                    attr("\\Noselect"),
                    attr("\\HasChildren"),
                ));
            }
            let want: BTreeSet<_> = list.iter().cloned().collect();
            if got != want {
                return fail(format!("{name}: LIST gave {got:?}, model {want:?}"));
            }
        }
        if let Some(f) = &e.fetch {
            self.check_fetch(&name, &client, f, obs)?;
        }
        if let Some((done, silent, uid)) = &e.stored {
            let sel = client.sel.as_ref().ok_or("no selection")?;
            let mb = self.model.by_id(sel.id).map(|x| x.1.clone());
            let model_flags = |u: Uid| mb.as_ref().and_then(|m| m.get(u)).map(|m| m.flags.clone());
            if *silent {
                // The client knows what it stored itself (RFC 9051 §6.4.6 .SILENT).
                if let Some(s) = self.imap[c].as_mut().and_then(|x| x.client.sel.as_mut()) {
                    for v in s.view.iter_mut().filter(|v| done.contains(&v.0)) {
                        if let Some(f) = model_flags(v.0) {
                            v.1 = f;
                        }
                    }
                }
            } else {
                for u in done {
                    let seq = sel
                        .view
                        .iter()
                        .position(|v| v.0 == *u)
                        .ok_or("stored message not in view")? as u32
                        + 1;
                    let got: Vec<&Vec<FetchItem>> = obs
                        .fetches
                        .iter()
                        .filter(|f| f.0 == seq)
                        .map(|f| &f.2)
                        .collect();
                    if got.is_empty() {
                        return fail(format!("{name}: no FETCH for message {seq} after STORE"));
                    }
                    if *uid && !got.iter().any(|items| items.contains(&FetchItem::Uid(*u))) {
                        return fail(format!("{name}: UID STORE's FETCH for {seq} lacks UID {u}"));
                    }
                    let want = model_flags(*u);
                    let have = sel.view.get(seq as usize - 1).map(|v| v.1.clone());
                    if want.is_some() && want != have {
                        return fail(format!(
                            "{name}: after STORE message {seq} has {have:?} for the client, {want:?} in the model"
                        ));
                    }
                }
            }
        }
        match (&e.thread, &e.search) {
            (Some(want), _) => match &obs.thread {
                Some(got) if got == want => {}
                got => return fail(format!("{name}: THREAD gave {got:?}, model {want:?}")),
            },
            (None, Some(s)) => check_search(&name, s, obs)?,
            (None, None) => {}
        }
        let _ = before;
        Ok(())
    }

    fn check_fetch(&self, name: &str, client: &ImapClient, f: &FetchExpect, obs: &Observed) -> R {
        let sel = client.sel.as_ref().ok_or("no selection")?;
        let mb = self
            .model
            .by_id(sel.id)
            .ok_or("selected mailbox vanished")?
            .1;
        // Solicited responses come first, in the order of the UIDs, and carry every requested
        // item; what follows (or carries only FLAGS and UID) are unsolicited updates, which an
        // IMAP4rev2 session gets with the UID too (RFC 9051 §7.5.2).
        let kind = |i: &FetchItem| {
            format!("{i:?}")
                .split(['(', ' '])
                .next()
                .unwrap_or_default()
                .to_string()
        };
        let wanted: BTreeSet<String> = f
            .items
            .iter()
            .map(|i| {
                match i {
                    Item::Flags => "Flags",
                    Item::Uid => "Uid",
                    Item::Size => "Rfc822Size",
                    Item::InternalDate => "InternalDate",
                    _ => "BodySection",
                }
                .to_string()
            })
            .collect();
        let mut solicited: Vec<&(u32, Uid, Vec<FetchItem>)> = Vec::new();
        for x in &obs.fetches {
            let kinds: BTreeSet<String> = x.2.iter().map(kind).collect();
            let next = f.uids.get(solicited.len());
            let mut with_flags = wanted.clone();
            with_flags.insert("Flags".to_string());
            // A presync may report flag changes (with the UID, under IMAP4rev2) before the
            // answer; the answer has exactly the requested items (FLAGS too if \Seen was set).
            if next == Some(&x.1) && (kinds == wanted || (f.marks && kinds == with_flags)) {
                solicited.push(x);
            } else if kinds.iter().any(|k| k != "Flags" && k != "Uid") {
                return fail(format!(
                    "{name}: unexpected FETCH data for UID {}: {:?}",
                    x.1, x.2
                ));
            }
        }
        let got: Vec<Uid> = solicited.iter().map(|x| x.1).collect();
        if got != f.uids {
            return fail(format!(
                "{name}: FETCH answered for UIDs {got:?}, model {:?}",
                f.uids
            ));
        }
        for (seq, uid, items) in solicited {
            let msg = mb.get_any(*uid).ok_or("fetched message not in model")?;
            let mut want: Vec<FetchItem> = Vec::new();
            let flags_item = || {
                let mut v: Vec<Flag> = msg.flags.iter().map(|n| to_flag(n)).collect();
                if !client.rev2 && sel.recent.contains(uid) {
                    v.push(Flag::Recent);
                }
                FetchItem::Flags(v)
            };
            for item in &f.items {
                want.push(match item {
                    Item::Flags => flags_item(),
                    Item::Uid => FetchItem::Uid(*uid),
                    Item::Size => FetchItem::Rfc822Size(msg.size()),
                    Item::InternalDate => FetchItem::InternalDate(msg.date),
                    Item::Body | Item::BodyPeek => body_item(None, msg.bytes()),
                    Item::HeaderPeek => {
                        body_item(Some(SectionText::Header), pool::header(msg.body))
                    }
                    Item::TextPeek => body_item(Some(SectionText::Text), pool::text(msg.body)),
                });
            }
            let sent_flags = items.iter().any(|i| matches!(i, FetchItem::Flags(_)));
            if !f.items.contains(&Item::Flags)
                && (f.newly_seen.contains(uid) || (f.marks && sent_flags))
            {
                // RFC 9051 §6.4.5: \Seen set by the fetch is reported with it; the server may
                // add FLAGS whenever a fetch could change them, but they must be right.
                want.push(flags_item());
            }
            let norm = |v: &[FetchItem]| -> Vec<String> {
                let mut s: Vec<String> = v.iter().map(item_key).collect();
                s.sort();
                s
            };
            if norm(items) != norm(&want) {
                return fail(format!(
                    "{name}: FETCH {seq} (UID {uid}) gave\n    {:?}\n  model\n    {:?}",
                    norm(items),
                    norm(&want)
                ));
            }
        }
        Ok(())
    }

    /// The session's view equals the mailbox: it has been allowed to hear everything.
    fn strict(&mut self, c: usize) -> R {
        let Some(Some(conn)) = self.imap.get(c) else {
            return Ok(());
        };
        let name = conn.name.clone();
        let Some(sel) = conn.client.sel.clone() else {
            return Ok(());
        };
        let Some((_, mb)) = self.model.by_id(sel.id) else {
            if sel.orphan {
                return fail(format!(
                    "{name}: its mailbox was deleted, and NOOP/IDLE did not say so"
                ));
            }
            return fail(format!("{name}: selected mailbox is gone from the model"));
        };
        let want: Vec<(Uid, FlagSet)> = mb
            .messages
            .iter()
            .map(|m| (m.uid, m.flags.clone()))
            .collect();
        if sel.view != want {
            return fail(format!(
                "{name}: after the session could hear every change, its view is\n    {:?}\n  but the mailbox holds\n    {want:?}",
                sel.view
            ));
        }
        if sel.orphan {
            // The mailbox came back (CREATE over a \Noselect name) and the session caught up.
            if let Some(Some(conn)) = self.imap.get_mut(c) {
                if let Some(s) = conn.client.sel.as_mut() {
                    s.orphan = false;
                }
            }
        }
        Ok(())
    }

    /// Output other sessions got during the step (idle updates), and the view invariants of
    /// every session.
    fn after_step(&mut self, before: &Account) -> R {
        for c in 0..self.imap.len() {
            let Some(conn) = self.imap[c].as_mut() else {
                continue;
            };
            let out = std::mem::take(&mut conn.wire);
            let name = conn.name.clone();
            let idle = conn.client.idle.is_some();
            if !out.is_empty() {
                self.events.push(Event::Server(name.clone(), out.clone()));
                let mut client = self.take_client(c)?;
                let mut model = self.model.clone();
                let obs = observe(
                    &mut client,
                    &out,
                    before,
                    &self.model,
                    &mut model,
                    &name,
                    idle,
                )?;
                self.model = model;
                self.put_client(c, client);
                if obs.tagged.is_some() {
                    return fail(format!("{name}: a tagged response with no command running"));
                }
                if self.closed_by_bye(c, &obs)? {
                    continue;
                }
            }
            if idle {
                self.strict(c)?;
            }
            self.weak(c)?;
        }
        for p in 0..self.pop.len() {
            if let Some(conn) = self.pop[p].as_mut() {
                if !conn.wire.is_empty() {
                    let out = std::mem::take(&mut conn.wire);
                    return fail(format!(
                        "{}: unsolicited POP3 output {:?}",
                        conn.name,
                        lossy(&out)
                    ));
                }
            }
        }
        Ok(())
    }

    /// What holds for a view at all times: it may lag, never contradict.
    fn weak(&self, c: usize) -> R {
        let Some(Some(conn)) = self.imap.get(c) else {
            return Ok(());
        };
        let Some(sel) = &conn.client.sel else {
            return Ok(());
        };
        if sel.orphan {
            return Ok(());
        }
        let name = &conn.name;
        let uids = sel.uids();
        if uids.windows(2).any(|w| w[0] >= w[1]) {
            return fail(format!(
                "{name}: UIDs not ascending in sequence order: {uids:?}"
            ));
        }
        let Some((_, mb)) = self.model.by_id(sel.id) else {
            return fail(format!(
                "{name}: selected mailbox gone but the session was not told"
            ));
        };
        if let Some(u) = uids.iter().find(|u| **u >= mb.uid_next) {
            return fail(format!(
                "{name}: knows UID {u}, never assigned (UIDNEXT {})",
                mb.uid_next
            ));
        }
        for m in &mb.messages {
            if m.uid <= sel.max_known && !uids.contains(&m.uid) {
                return fail(format!(
                    "{name}: lost message UID {} that still exists",
                    m.uid
                ));
            }
        }
        if !sel.recent.iter().all(|u| uids.contains(u)) {
            return fail(format!("{name}: \\Recent outside the view"));
        }
        Ok(())
    }

    // ----------------------------------------------------------------- invariants over the store

    fn uid_validity_is(&mut self, id: u64, name: &str, v: u32) -> R {
        if v == 0 {
            return fail(format!("UIDVALIDITY 0 for {name}"));
        }
        match self.uid_validity.insert(id, v) {
            Some(old) if old != v => fail(format!(
                "UIDVALIDITY of {name} changed from {old} to {v} while the mailbox lived"
            )),
            _ => Ok(()),
        }
    }

    fn highest_modseq_is(&mut self, id: u64, h: u64) -> R {
        let changed = self
            .model
            .mailboxes
            .values_mut()
            .find(|m| m.id == id)
            .map(|m| std::mem::replace(&mut m.changed, false))
            .unwrap_or(false);
        match self.modseq.insert(id, h) {
            Some(old) if h < old => fail(format!("HIGHESTMODSEQ went down from {old} to {h}")),
            Some(old) if changed && h == old => fail(format!(
                "HIGHESTMODSEQ stayed {h} although the mailbox changed"
            )),
            _ => Ok(()),
        }
    }

    /// Reads the store directly and compares it with the model.
    fn probe(&mut self, octets: bool) -> R {
        let account = USER.to_string();
        let list = match self.store.execute(StorageOp::ListMailboxes {
            account: account.clone(),
        }) {
            Ok(StorageReply::Mailboxes(l)) => l,
            other => return fail(format!("probe: ListMailboxes gave {other:?}")),
        };
        let got: BTreeSet<(String, bool)> = list
            .mailboxes
            .iter()
            .map(|m| (m.name.clone(), m.selectable))
            .collect();
        let want: BTreeSet<(String, bool)> = self
            .model
            .mailboxes
            .iter()
            .map(|(n, m)| (n.clone(), m.selectable))
            .collect();
        if got != want {
            return fail(format!(
                "probe: store has mailboxes {got:?}, model {want:?}"
            ));
        }
        let names: Vec<(String, u64)> = self
            .model
            .mailboxes
            .iter()
            .filter(|(_, m)| m.selectable)
            .map(|(n, m)| (n.clone(), m.id))
            .collect();
        for (name, id) in names {
            let status = match self.store.execute(StorageOp::Status {
                account: account.clone(),
                name: name.clone(),
            }) {
                Ok(StorageReply::Status(s)) => s,
                other => return fail(format!("probe: Status {name} gave {other:?}")),
            };
            let mb = self
                .model
                .mailboxes
                .get(&name)
                .ok_or("model lost a mailbox")?
                .clone();
            let fig = mb.status();
            let got = spec::StatusFigures {
                messages: u64::from(status.messages),
                recent: u64::from(status.recent),
                uid_next: u64::from(status.uid_next),
                unseen: u64::from(status.unseen),
                deleted: u64::from(status.deleted),
                size: status.size,
            };
            if got != fig {
                return fail(format!("probe: {name} has {got:?}, model {fig:?}"));
            }
            self.uid_validity_is(id, &name, status.uid_validity)?;
            self.highest_modseq_is(id, status.highest_modseq)?;
            let snap = match self.store.execute(StorageOp::Open {
                account: account.clone(),
                name: name.clone(),
                read_only: true,
            }) {
                Ok(StorageReply::Opened(s)) => s,
                other => return fail(format!("probe: Open {name} gave {other:?}")),
            };
            // The snapshot names the messages; their flags and MODSEQs come from FETCH.
            let states = match self.store.execute(StorageOp::Fetch {
                account: account.clone(),
                mailbox: snap.id,
                uids: snap.uids.to_vec(),
                want: FetchWant::default(),
                mark_seen: false,
            }) {
                Ok(StorageReply::Fetched(f)) => f,
                other => return fail(format!("probe: Fetch {name} gave {other:?}")),
            };
            if states.iter().map(|m| m.uid).collect::<Vec<_>>() != *snap.uids {
                return fail(format!("probe: Fetch {name} did not return every UID"));
            }
            let first_unseen = states
                .iter()
                .find(|m| !m.flags.has(SystemFlag::Seen))
                .map(|m| m.uid);
            if snap.first_unseen != first_unseen {
                return fail(format!(
                    "probe: {name} first unseen {:?}, flags say {first_unseen:?}",
                    snap.first_unseen
                ));
            }
            let got: Vec<(Uid, FlagSet)> =
                states.iter().map(|m| (m.uid, flags_of(&m.flags))).collect();
            let want: Vec<(Uid, FlagSet)> = mb
                .messages
                .iter()
                .map(|m| (m.uid, m.flags.clone()))
                .collect();
            if got != want {
                return fail(format!(
                    "probe: {name} holds\n    {got:?}\n  model\n    {want:?}"
                ));
            }
            if snap.uid_next != mb.uid_next {
                return fail(format!(
                    "probe: {name} UIDNEXT {} model {}",
                    snap.uid_next, mb.uid_next
                ));
            }
            for m in &states {
                if m.modseq > snap.highest_modseq {
                    return fail(format!(
                        "probe: {name} UID {} MODSEQ {} above HIGHESTMODSEQ {}",
                        m.uid, m.modseq, snap.highest_modseq
                    ));
                }
                let flags = flags_of(&m.flags);
                if let Some((old, old_flags)) = self
                    .msg_modseq
                    .insert((id, m.uid), (m.modseq, flags.clone()))
                {
                    if m.modseq < old || (old_flags != flags && m.modseq == old) {
                        return fail(format!("probe: {name} UID {} MODSEQ {old} -> {} with flags {old_flags:?} -> {flags:?}", m.uid, m.modseq));
                    }
                }
            }
            if octets && !mb.messages.is_empty() {
                let fetched = match self.store.execute(StorageOp::Fetch {
                    account: account.clone(),
                    mailbox: snap.id,
                    uids: mb.uids(),
                    want: FetchWant {
                        content: true,
                        info: false,
                        header_only: false,
                        ..Default::default()
                    },
                    mark_seen: false,
                }) {
                    Ok(StorageReply::Fetched(f)) => f,
                    other => return fail(format!("probe: Fetch {name} gave {other:?}")),
                };
                if fetched.len() != mb.messages.len() {
                    return fail(format!(
                        "probe: Fetch {name} returned {} of {}",
                        fetched.len(),
                        mb.messages.len()
                    ));
                }
                for (f, m) in fetched.iter().zip(&mb.messages) {
                    let content = f
                        .content
                        .as_ref()
                        .and_then(|c| c.to_bytes().ok())
                        .unwrap_or_default();
                    let content = &content[..];
                    if f.uid != m.uid
                        || content != m.bytes()
                        || f.internal_date != m.date
                        || f.size != m.size()
                    {
                        return fail(format!(
                            "probe: {name} UID {} changed: octets equal {}, date {:?} vs {:?}",
                            m.uid,
                            content == m.bytes(),
                            f.internal_date,
                            m.date
                        ));
                    }
                }
            }
            // Clients that went offline at earlier probes come back with QRESYNC.
            let now: Vec<(Uid, FlagSet)> = mb
                .messages
                .iter()
                .map(|m| (m.uid, m.flags.clone()))
                .collect();
            let earlier = self.checkpoints.get(&id).cloned().unwrap_or_default();
            if octets || self.step_no % resync::RESYNC_EVERY == 0 {
                self.check_resync(
                    &name,
                    status.uid_validity,
                    status.highest_modseq,
                    &now,
                    &earlier,
                )?;
            }
            resync::remember(
                self.checkpoints.entry(id).or_default(),
                Checkpoint {
                    uid_validity: status.uid_validity,
                    highest_modseq: status.highest_modseq,
                    uid_next: mb.uid_next,
                    messages: now,
                },
            );
            let v = status.uid_validity;
            for m in &mb.messages {
                let key = (name.clone(), v, m.uid);
                match self.seen.get(&key) {
                    Some(old) if *old != (m.body, m.date) => {
                        return fail(format!("probe: UID {} of {name} (UIDVALIDITY {v}) was reused for another message", m.uid));
                    }
                    Some(_) => {}
                    None => {
                        self.seen.insert(key, (m.body, m.date));
                    }
                }
            }
            let _ = MailboxId(0);
        }
        Ok(())
    }

    // ----------------------------------------------------------------- POP3

    fn open_pop(&mut self, p: usize, before: &Account) -> R {
        if p >= self.pop.len() || self.pop[p].is_some() {
            return Ok(());
        }
        let name = ["P", "Q"][p % 2].to_string();
        let (session, greeting) = self.new_session(Protocol::Pop3)?;
        self.events.push(Event::Open(name.clone(), Protocol::Pop3));
        self.events
            .push(Event::Server(name.clone(), greeting.clone()));
        if !greeting.starts_with(b"+OK") {
            return fail(format!("{name}: greeting {:?}", lossy(&greeting)));
        }
        let inbox = self.model.selectable("INBOX").map_or(0, |m| m.id);
        self.pop[p] = Some(Conn {
            name: name.clone(),
            session,
            wire: Vec::new(),
            closed: false,
            client: PopClient {
                logged_in: false,
                inbox,
                drop: Vec::new(),
                retrieved: Vec::new(),
            },
        });
        let out = self.send(false, p, format!("USER {USER}\r\n").as_bytes())?;
        if !out.starts_with(b"+OK") {
            return fail(format!("{name}: USER gave {:?}", lossy(&out)));
        }
        let out = self.send(false, p, format!("PASS {PASS}\r\n").as_bytes())?;
        match self.model.pop3_lock {
            Some(other) if other != p => {
                // RFC 1939 §8 / RFC 2449 IN-USE: one session holds the maildrop.
                if !out.starts_with(b"-ERR [IN-USE]") {
                    return fail(format!(
                        "{name}: second POP3 login got {:?}, want -ERR [IN-USE]",
                        lossy(&out)
                    ));
                }
                let out = self.send(false, p, b"QUIT\r\n")?;
                if !out.starts_with(b"+OK") {
                    return fail(format!("{name}: QUIT gave {:?}", lossy(&out)));
                }
                self.pop[p] = None;
            }
            _ => {
                if !out.starts_with(b"+OK") {
                    return fail(format!("{name}: PASS gave {:?}", lossy(&out)));
                }
                self.model.pop3_lock = Some(p);
                let drop = self
                    .model
                    .by_id(inbox)
                    .map(|(_, m)| {
                        m.messages
                            .iter()
                            .map(|x| (x.uid, x.size(), false))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(conn) = self.pop[p].as_mut() {
                    conn.client.logged_in = true;
                    conn.client.drop = drop;
                }
            }
        }
        let _ = before;
        Ok(())
    }

    fn pop_cmd(&mut self, p: usize, cmd: PopCmd, before: &Account) -> R {
        let Some(Some(conn)) = self.pop.get(p) else {
            return Ok(());
        };
        if conn.closed || !conn.client.logged_in {
            return Ok(());
        }
        let name = conn.name.clone();
        let mut client = conn.client.clone();
        let count = client.drop.len();
        let num = |pos: Pos| -> usize {
            match pos {
                Pos::At(i) if count > 0 => usize::from(i) % count + 1,
                Pos::At(_) | Pos::Star => 1,
                Pos::Past(k) => count + 1 + usize::from(k),
            }
        };
        // The message a number names, if it may be named (RFC 1939 §5).
        let live = |n: usize, client: &PopClient| -> Option<(Uid, u64)> {
            client
                .drop
                .get(n.wrapping_sub(1))
                .filter(|m| !m.2)
                .map(|m| (m.0, m.1))
        };
        let (text, n) = match cmd {
            PopCmd::Stat => ("STAT".to_string(), 0),
            PopCmd::List => ("LIST".to_string(), 0),
            PopCmd::Uidl => ("UIDL".to_string(), 0),
            PopCmd::Retr(pos) => {
                let n = num(pos);
                (format!("RETR {n}"), n)
            }
            PopCmd::Top(pos) => {
                let n = num(pos);
                (format!("TOP {n} 0"), n)
            }
            PopCmd::Dele(pos) => {
                let n = num(pos);
                (format!("DELE {n}"), n)
            }
            PopCmd::Rset => ("RSET".to_string(), 0),
            PopCmd::Noop => ("NOOP".to_string(), 0),
            PopCmd::Quit => ("QUIT".to_string(), 0),
        };
        let out = self.send(false, p, format!("{text}\r\n").as_bytes())?;
        let s = lossy(&out);
        record(format!(
            "POP3 {} {}",
            text.split(' ').next().unwrap_or_default(),
            if out.starts_with(b"+OK") {
                "+OK"
            } else {
                "-ERR"
            }
        ));
        let lines: Vec<&str> = s.split_terminator("\r\n").collect();
        let first = lines.first().copied().unwrap_or_default();
        let bad = |why: String| format!("{name}: {text}: {why}; got {s:?}");
        let live_stat = client.drop.iter().filter(|m| !m.2);
        let (cnt, size) = live_stat.fold((0u64, 0u64), |(c, z), m| (c + 1, z + m.1));
        match cmd {
            PopCmd::Stat => {
                if first != format!("+OK {cnt} {size}") {
                    return fail(bad(format!("want +OK {cnt} {size}")));
                }
            }
            PopCmd::List => {
                let want: Vec<String> = client
                    .drop
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !m.2)
                    .map(|(i, m)| format!("{} {}", i + 1, m.1))
                    .collect();
                if !first.starts_with("+OK")
                    || lines[1..] != [want.as_slice(), &[".".to_string()]].concat()
                {
                    return fail(bad(format!("want {want:?}")));
                }
            }
            PopCmd::Uidl => {
                if !first.starts_with("+OK") || lines.last() != Some(&".") {
                    return fail(bad("malformed".into()));
                }
                let mut ids = BTreeSet::new();
                let mut numbers = Vec::new();
                for line in &lines[1..lines.len() - 1] {
                    let (num, id) = line
                        .split_once(' ')
                        .ok_or_else(|| bad("UIDL line".into()))?;
                    let n: usize = num.parse().map_err(|_| bad("UIDL number".into()))?;
                    let (uid, _, _) = *n
                        .checked_sub(1)
                        .and_then(|i| client.drop.get(i))
                        .ok_or_else(|| bad("UIDL numbers".into()))?;
                    numbers.push(n);
                    if !ids.insert(id.to_string()) {
                        return fail(bad(format!("UIDL {id} given to two messages")));
                    }
                    match self.uidl.insert((client.inbox, uid), id.to_string()) {
                        Some(old) if old != id => {
                            return fail(bad(format!(
                                "UIDL of UID {uid} changed from {old} to {id}"
                            )))
                        }
                        _ => {}
                    }
                }
                let want: Vec<usize> = (1..=count).filter(|n| !client.drop[n - 1].2).collect();
                if numbers != want {
                    return fail(bad(format!("UIDL numbers {numbers:?}, want {want:?}")));
                }
            }
            PopCmd::Retr(_) | PopCmd::Top(_) => {
                let exists = live(n, &client).and_then(|(uid, _)| {
                    self.model
                        .by_id(client.inbox)
                        .and_then(|(_, m)| m.get(uid))
                        .map(|m| (uid, m.body))
                });
                match exists {
                    None => {
                        if !first.starts_with("-ERR") {
                            return fail(bad("message is gone or deleted: want -ERR".into()));
                        }
                    }
                    Some((uid, body)) => {
                        let top = matches!(cmd, PopCmd::Top(_));
                        let want: &[u8] = if top {
                            pool::header(body)
                        } else {
                            pool::raw(body)
                        };
                        let got =
                            unstuff(&out).ok_or_else(|| bad("not a multi-line answer".into()))?;
                        if !first.starts_with("+OK") || got != want {
                            return fail(bad(format!("content differs from UID {uid}")));
                        }
                        if !top && !client.retrieved.contains(&uid) {
                            client.retrieved.push(uid);
                        }
                    }
                }
            }
            PopCmd::Dele(_) => match live(n, &client) {
                Some(_) => {
                    if !first.starts_with("+OK") {
                        return fail(bad("want +OK".into()));
                    }
                    client.drop[n - 1].2 = true;
                }
                None => {
                    if !first.starts_with("-ERR") {
                        return fail(bad("want -ERR".into()));
                    }
                }
            },
            PopCmd::Rset => {
                client.drop.iter_mut().for_each(|m| m.2 = false);
                if first != format!("+OK {count} messages.") {
                    return fail(bad(format!("want +OK {count} messages.")));
                }
            }
            PopCmd::Noop => {
                if !first.starts_with("+OK") {
                    return fail(bad("want +OK".into()));
                }
            }
            PopCmd::Quit => {
                if !first.starts_with("+OK") {
                    return fail(bad("want +OK".into()));
                }
                // RFC 1939 §6: exactly the marked messages go (the probe checks the store),
                // and the retrieved ones that stay are \Seen.
                let marked: Vec<Uid> = client.drop.iter().filter(|m| m.2).map(|m| m.0).collect();
                self.model.mark_seen(client.inbox, &client.seen_at_end());
                self.model.remove(client.inbox, &marked);
                self.model.pop3_lock = None;
                if !self.pop[p].as_ref().is_some_and(|c| c.closed) {
                    return fail(bad("still open after QUIT".into()));
                }
                self.pop[p] = None;
                let _ = before;
                return Ok(());
            }
        }
        if lines.len() > 1
            && matches!(
                cmd,
                PopCmd::Stat | PopCmd::Dele(_) | PopCmd::Rset | PopCmd::Noop
            )
        {
            return fail(bad("one line expected".into()));
        }
        if let Some(conn) = self.pop[p].as_mut() {
            conn.client = client;
        }
        Ok(())
    }
}

/// The body of a POP3 multi-line answer, dot-unstuffed (RFC 1939 §3).
fn unstuff(out: &[u8]) -> Option<Vec<u8>> {
    let first = out.windows(2).position(|w| w == b"\r\n")? + 2;
    let body = out.get(first..)?;
    let body = body.strip_suffix(b".\r\n")?;
    let mut v = Vec::new();
    for line in body.split_inclusive(|&b| b == b'\n') {
        v.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    Some(v)
}

// --------------------------------------------------------------------- expectations

#[derive(Clone, Debug)]
struct FetchExpect {
    uids: Vec<Uid>,
    items: Vec<Item>,
    /// BODY[] in a read-write session: `\Seen` is set.
    marks: bool,
    newly_seen: BTreeSet<Uid>,
}

#[derive(Clone, Debug)]
struct SearchExpect {
    numbers: Vec<u32>,
    /// Some: ESEARCH with these RETURN options (empty: ALL).
    esearch: Option<Vec<Ret>>,
    uid: bool,
    /// SORT: the answer is a SORT response, in this order.
    sorted: bool,
}

type CopyUid = (String, u64, Vec<(Uid, Uid)>, bool);

#[derive(Clone, Debug)]
struct Expect {
    cond: Condition,
    code: Option<Code>,
    select: Option<Sel>,
    status: Option<(String, u64, spec::StatusFigures)>,
    append_uid: Option<(String, u64, Vec<Uid>)>,
    /// (target, its identity, (source, new) UIDs, whether a MOVE).
    copy_uid: Option<CopyUid>,
    list: Option<Vec<(String, bool, bool)>>,
    fetch: Option<FetchExpect>,
    stored: Option<(Vec<Uid>, bool, bool)>,
    search: Option<SearchExpect>,
    /// THREAD: the threads as [`show_threads`] writes them.
    thread: Option<String>,
    removed: Vec<Uid>,
    deleted: Option<u64>,
}

impl Expect {
    fn ok() -> Expect {
        Expect {
            cond: Condition::Ok,
            code: None,
            select: None,
            status: None,
            append_uid: None,
            copy_uid: None,
            list: None,
            fetch: None,
            stored: None,
            search: None,
            thread: None,
            removed: Vec::new(),
            deleted: None,
        }
    }

    fn no(&mut self, code: Code) {
        self.cond = Condition::No;
        self.code = Some(code);
    }

    fn refused(&mut self, r: Refusal) {
        self.no(match r {
            Refusal::NonExistent => Code::NonExistent,
            Refusal::AlreadyExists => Code::AlreadyExists,
            Refusal::Cannot => Code::Cannot,
            Refusal::HasChildren => Code::HasChildren,
            Refusal::TryCreate => Code::TryCreate,
        });
    }
}

// --------------------------------------------------------------------- observing responses

#[derive(Debug, Default)]
struct Observed {
    tagged: Option<StatusResponse>,
    untagged_codes: Vec<Code>,
    bye: bool,
    continued: bool,
    /// (sequence number, the UID the client had under it, items).
    fetches: Vec<(u32, Uid, Vec<FetchItem>)>,
    expunges: usize,
    exists: Vec<u32>,
    recent: Vec<u32>,
    search: Option<Vec<u32>>,
    sort: Option<Vec<u32>>,
    /// THREAD, as [`show_threads`] writes it.
    thread: Option<String>,
    esearch: Option<(Option<Tag>, bool, Vec<ESearchResult>)>,
    statuses: Vec<(Bytes, Vec<(StatusItem, StatusValue)>)>,
    lists: Vec<ListItem>,
    flags_lists: Vec<Vec<Flag>>,
}

pub(super) fn parse_all(out: &[u8]) -> Result<Vec<Response>, String> {
    let mut at = 0;
    let mut v = Vec::new();
    while at < out.len() {
        let (r, used) = parse_response(&out[at..])
            .map_err(|e| format!("unparsable response ({e}) at {:?}", lossy(&out[at..])))?;
        v.push(r);
        at += used;
    }
    Ok(v)
}

/// Applies a session's responses, in order, to what its client knows, checking each against
/// the model. `s0`/`s1` are the model before and after the step: a synchronisation inside the
/// step saw one of them. Claims `\Recent` in `model` when a read-write IMAP4rev1 session is told
/// about unclaimed messages.
fn observe(
    client: &mut ImapClient,
    out: &[u8],
    s0: &Account,
    s1: &Account,
    model: &mut Account,
    name: &str,
    expunge_ok: bool,
) -> Result<Observed, String> {
    let mut obs = Observed::default();
    for r in parse_all(out)? {
        if obs.tagged.is_some() {
            return fail(format!("{name}: response after the tagged one: {r:?}"));
        }
        match r {
            Response::Continue(_) => obs.continued = true,
            Response::Status(s) if s.tag.is_some() => obs.tagged = Some(s),
            Response::Status(s) => {
                if s.condition == Condition::Bye {
                    obs.bye = true;
                }
                if let Some(c) = s.code {
                    obs.untagged_codes.push(c);
                }
            }
            Response::Data(d) => match d {
                Data::Exists(n) => {
                    obs.exists.push(n);
                    let Some(sel) = client.sel.as_mut() else {
                        return fail(format!("{name}: EXISTS without a selected mailbox"));
                    };
                    let len = sel.view.len() as u32;
                    if n < len {
                        return fail(format!("{name}: EXISTS {n} below the {len} messages it knows (only EXPUNGE removes)"));
                    }
                    let k = (n - len) as usize;
                    if k == 0 {
                        continue;
                    }
                    let cands = |a: &Account| -> Vec<Uid> {
                        a.by_id(sel.id)
                            .map(|(_, m)| {
                                m.uids()
                                    .into_iter()
                                    .filter(|u| *u > sel.max_known)
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    let (c0, c1) = (cands(s0), cands(s1));
                    // A MOVE into the selected mailbox itself both adds and removes: an EXISTS
                    // sent before its COPYUID and EXPUNGEs (a UID MOVE's synchronisation
                    // first) announces the messages as they were before it.
                    let moved_yet = obs.expunges > 0
                        || obs
                            .untagged_codes
                            .iter()
                            .any(|c| matches!(c, Code::CopyUid { .. }));
                    let new = if c0.len() == k && c1.len() == k && !moved_yet {
                        c0
                    } else if c1.len() == k {
                        c1
                    } else if c0.len() == k {
                        c0
                    } else {
                        return fail(format!(
                            "{name}: EXISTS {n} announces {k} new messages; the mailbox had {c0:?} then {c1:?} beyond UID {}",
                            sel.max_known
                        ));
                    };
                    for uid in new {
                        let flags = s1
                            .by_id(sel.id)
                            .and_then(|(_, m)| m.get(uid))
                            .or_else(|| s0.by_id(sel.id).and_then(|(_, m)| m.get(uid)))
                            .map(|m| m.flags.clone())
                            .unwrap_or_default();
                        sel.view.push((uid, flags));
                        sel.max_known = sel.max_known.max(uid);
                        if !sel.read_only && !client.rev2 {
                            let unclaimed_before = s0
                                .by_id(sel.id)
                                .and_then(|(_, m)| m.get(uid))
                                .is_some_and(|m| !m.claimed);
                            let claimed_now = !model.claim(sel.id, &[uid]).is_empty();
                            let in_s1 = model.by_id(sel.id).and_then(|(_, m)| m.get(uid)).is_some();
                            if claimed_now || (!in_s1 && unclaimed_before) {
                                sel.recent.insert(uid);
                            }
                        }
                    }
                }
                Data::Recent(n) => {
                    obs.recent.push(n);
                    if client.rev2 {
                        return fail(format!("{name}: RECENT sent to an IMAP4rev2 session"));
                    }
                    if let Some(sel) = client.sel.as_mut() {
                        if let Some(cands) = sel.examine_recent.take() {
                            if n as usize == cands.len() {
                                sel.recent = cands;
                            }
                        }
                        if !sel.orphan && n as usize != sel.recent.len() {
                            return fail(format!(
                                "{name}: RECENT {n}, but the session holds {} \\Recent messages {:?}",
                                sel.recent.len(),
                                sel.recent
                            ));
                        }
                    }
                }
                Data::Expunge(n) => {
                    obs.expunges += 1;
                    if !expunge_ok {
                        return fail(format!("{name}: EXPUNGE {n} when it may not be sent"));
                    }
                    let Some(sel) = client.sel.as_mut() else {
                        return fail(format!("{name}: EXPUNGE without a selected mailbox"));
                    };
                    if n == 0 || n as usize > sel.view.len() {
                        return fail(format!(
                            "{name}: EXPUNGE {n} outside 1..={}",
                            sel.view.len()
                        ));
                    }
                    let (uid, _) = sel.view.remove(n as usize - 1);
                    sel.recent.remove(&uid);
                    if !sel.orphan && s1.by_id(sel.id).and_then(|(_, m)| m.get(uid)).is_some() {
                        return fail(format!(
                            "{name}: EXPUNGE {n} for UID {uid}, which still exists"
                        ));
                    }
                }
                Data::Fetch { seq, items } => {
                    let Some(sel) = client.sel.as_mut() else {
                        return fail(format!("{name}: FETCH without a selected mailbox"));
                    };
                    if seq == 0 || seq as usize > sel.view.len() {
                        return fail(format!(
                            "{name}: FETCH {seq} outside 1..={}",
                            sel.view.len()
                        ));
                    }
                    let uid = sel.view[seq as usize - 1].0;
                    // MODSEQ only after a CONDSTORE-enabling command, never above the
                    // mailbox's HIGHESTMODSEQ; the other checks read the items without it.
                    let mut items = items;
                    let mut bad_modseq = None;
                    items.retain(|i| match i {
                        FetchItem::ModSeq(m) => {
                            if !client.condstore || *m == 0 {
                                bad_modseq = Some(*m);
                            }
                            false
                        }
                        _ => true,
                    });
                    if let Some(m) = bad_modseq {
                        return fail(format!(
                            "{name}: FETCH {seq} carries MODSEQ {m} (CONDSTORE enabled: {})",
                            client.condstore
                        ));
                    }
                    for item in &items {
                        match item {
                            FetchItem::Uid(u) if *u != uid => {
                                return fail(format!("{name}: FETCH {seq} says UID {u}, but the session was told {seq} is UID {uid}"));
                            }
                            FetchItem::Flags(f) => {
                                let has_recent = f.contains(&Flag::Recent);
                                if client.rev2 && has_recent {
                                    return fail(format!(
                                        "{name}: \\Recent shown to an IMAP4rev2 session"
                                    ));
                                }
                                if !client.rev2
                                    && !sel.orphan
                                    && has_recent != sel.recent.contains(&uid)
                                {
                                    return fail(format!("{name}: FETCH {seq} \\Recent is {has_recent}, the session {} it", if sel.recent.contains(&uid) { "holds" } else { "does not hold" }));
                                }
                                if let Some(k) = f
                                    .iter()
                                    .filter(|x| matches!(x, Flag::Keyword(_)))
                                    .map(flag_name)
                                    .find(|k| !sel.announced.contains(k))
                                {
                                    if !sel.orphan {
                                        return fail(format!("{name}: FETCH {seq} shows the keyword {k}, which no FLAGS response of this session announced"));
                                    }
                                }
                                sel.view[seq as usize - 1].1 = f
                                    .iter()
                                    .filter(|x| **x != Flag::Recent)
                                    .map(flag_name)
                                    .collect();
                            }
                            _ => {}
                        }
                    }
                    obs.fetches.push((seq, uid, items));
                }
                Data::Search { numbers, .. } => obs.search = Some(numbers),
                Data::Sort { numbers, .. } => obs.sort = Some(numbers),
                Data::Thread(threads) => obs.thread = Some(show_threads(&threads)),
                Data::ESearch {
                    tag, uid, results, ..
                } => obs.esearch = Some((tag, uid, results)),
                Data::Status { mailbox, items } => obs.statuses.push((mailbox, items)),
                Data::List(item) => obs.lists.push(item),
                Data::Flags(f) => {
                    if let Some(sel) = client.sel.as_mut() {
                        sel.announced = f
                            .iter()
                            .filter(|x| matches!(x, Flag::Keyword(_)))
                            .map(flag_name)
                            .collect();
                    }
                    obs.flags_lists.push(f);
                }
                Data::Enabled(_) | Data::Capability(_) => {}
                other => return fail(format!("{name}: unexpected {other:?}")),
            },
        }
    }
    Ok(obs)
}

fn check_status(obs: &Observed, tag: &str, cond: Condition, code: Option<&Code>, name: &str) -> R {
    let t = obs
        .tagged
        .as_ref()
        .ok_or_else(|| format!("{name}: no tagged response"))?;
    if t.tag.as_ref().map(|t| t.as_bytes()) != Some(tag.as_bytes()) {
        return fail(format!(
            "{name}: tagged response for {:?}, want {tag}",
            t.tag
        ));
    }
    if t.condition != cond {
        return fail(format!(
            "{name}: {:?} [{:?}] {:?}, model says {cond:?} {code:?}",
            t.condition, t.code, t.text
        ));
    }
    if let Some(want) = code {
        let same = match (want, &t.code) {
            (Code::AppendUid { .. }, Some(Code::AppendUid { .. })) => true,
            (w, Some(g)) => std::mem::discriminant(w) == std::mem::discriminant(g),
            (_, None) => false,
        };
        if !same {
            return fail(format!(
                "{name}: {:?} with code {:?}, model says {want:?}",
                t.condition, t.code
            ));
        }
    }
    Ok(())
}

fn expect_tagged(rs: &[Response], tag: &str, cond: Condition, name: &str) -> R {
    match rs.last() {
        Some(Response::Status(s))
            if s.tag.as_ref().map(|t| t.as_bytes()) == Some(tag.as_bytes())
                && s.condition == cond =>
        {
            Ok(())
        }
        other => fail(format!("{name}: want {tag} {cond:?}, got {other:?}")),
    }
}

/// A thread response written out with every node's children in parentheses.
fn show_threads(threads: &[tern_core::imap::response::ThreadNode]) -> String {
    fn one(t: &tern_core::imap::response::ThreadNode, out: &mut String) {
        out.push('(');
        if let Some(n) = t.seq {
            out.push_str(&n.to_string());
        }
        for c in &t.children {
            one(c, out);
        }
        out.push(')');
    }
    let mut out = String::new();
    for t in threads {
        one(t, &mut out);
    }
    out
}

/// The model's THREAD (RFC 5256 §4) of the messages found, in UID order, written as
/// [`show_threads`] does, step by step as the RFC says it, without any of the store's
/// bookkeeping. Pool messages carry no Message-ID or References: under REFERENCES steps 1 to
/// 3 leave every message a thread of its own, so what remains is step 4's order, step 5's
/// merging by base subject and step 6's order.
fn model_thread<'m>(
    by: ThreadBy,
    found: &[&'m spec::Msg],
    number: &dyn Fn(Uid) -> Option<u32>,
) -> String {
    let arrival = |m: &spec::Msg| tern_core::mail::date::to_unix(&m.date);
    let key = |m: &spec::Msg| (SortBy::sent(m.body).unwrap_or_else(|| arrival(m)), m.uid);
    let subject = |m: &spec::Msg| SortBy::Subject.text_key(m.body).unwrap_or_default();
    let mut msgs: Vec<&'m spec::Msg> = found.to_vec();
    msgs.sort_by_key(|m| key(m));
    let n = |m: &spec::Msg| number(m.uid).map(|n| n.to_string()).unwrap_or_default();
    if by == ThreadBy::OrderedSubject {
        // Groups by subject in the order of their first (earliest) message; the first is the
        // parent of the rest.
        let mut out = String::new();
        let mut done: Vec<&str> = Vec::new();
        for m in &msgs {
            if done.contains(&subject(m)) {
                continue;
            }
            done.push(subject(m));
            out.push_str(&format!("({}", n(m)));
            for c in msgs
                .iter()
                .filter(|c| c.uid != m.uid && subject(c) == subject(m))
            {
                out.push_str(&format!("({})", n(c)));
            }
            out.push(')');
        }
        return out;
    }
    if by == ThreadBy::Refs {
        // No subject merging: every message a thread, by its (own, latest) sent date.
        return msgs.iter().map(|m| format!("({})", n(m))).collect();
    }
    // A node: a message (`None`: a dummy) and its replies.
    struct Node<'m> {
        m: Option<&'m spec::Msg>,
        kids: Vec<Node<'m>>,
    }
    let leaf = |m: &'m spec::Msg| Node {
        m: Some(m),
        kids: Vec::new(),
    };
    let mut tops: Vec<Option<Node>> = msgs.iter().map(|m| Some(leaf(m))).collect();
    // 5.B: per subject, the first thread, unless it is a reply and a later one is not.
    let mut table: Vec<(&str, usize)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        match table.iter_mut().find(|(s, _)| *s == subject(m)) {
            None => table.push((subject(m), i)),
            Some((_, held)) => {
                if ThreadBy::reply(msgs[*held].body) && !ThreadBy::reply(m.body) {
                    *held = i;
                }
            }
        }
    }
    // 5.C: the others merged into it.
    for (i, m) in msgs.iter().enumerate() {
        let held = table
            .iter()
            .find(|(s, _)| *s == subject(m))
            .map(|(_, h)| *h);
        let Some(held) = held.filter(|h| *h != i) else {
            continue;
        };
        let Some(this) = tops[i].take() else { continue };
        let Some(mut h) = tops[held].take() else {
            continue;
        };
        let held_reply = h.m.is_some_and(|p| ThreadBy::reply(p.body));
        if h.m.is_none() || (ThreadBy::reply(m.body) && !held_reply) {
            h.kids.push(this);
        } else {
            h = Node {
                m: None,
                kids: vec![h, this],
            };
        }
        tops[held] = Some(h);
    }
    // 6: siblings by sent date, a dummy by its first child.
    fn order<'m>(nodes: &mut [Node<'m>], key: &dyn Fn(&spec::Msg) -> (i64, Uid)) {
        for n in nodes.iter_mut() {
            order(&mut n.kids, key);
        }
        nodes.sort_by_key(|n| n.m.or_else(|| n.kids.first().and_then(|k| k.m)).map(key));
    }
    fn show(nodes: &[Node<'_>], n: &dyn Fn(&spec::Msg) -> String, out: &mut String) {
        for node in nodes {
            out.push('(');
            if let Some(m) = node.m {
                out.push_str(&n(m));
            }
            show(&node.kids, n, out);
            out.push(')');
        }
    }
    let mut tops: Vec<Node> = tops.into_iter().flatten().collect();
    order(&mut tops, &key);
    let mut out = String::new();
    show(&tops, &n, &mut out);
    out
}

/// The model's SORT order of two messages by one key (RFC 5256 §3), from the keys written out
/// for the pool ([`SortBy::text_key`]); DATE falls back to INTERNALDATE (§2.2).
fn sort_compare(key: SortBy, a: &spec::Msg, b: &spec::Msg) -> std::cmp::Ordering {
    let arrival = |m: &spec::Msg| tern_core::mail::date::to_unix(&m.date);
    match key {
        SortBy::Arrival => arrival(a).cmp(&arrival(b)),
        SortBy::Size => a.size().cmp(&b.size()),
        SortBy::Date => SortBy::sent(a.body)
            .unwrap_or_else(|| arrival(a))
            .cmp(&SortBy::sent(b.body).unwrap_or_else(|| arrival(b))),
        text => text.text_key(a.body).cmp(&text.text_key(b.body)),
    }
}

fn check_search(name: &str, s: &SearchExpect, obs: &Observed) -> R {
    if s.sorted {
        return match &obs.sort {
            None => fail(format!("{name}: no SORT response")),
            Some(got) if *got != s.numbers => {
                fail(format!("{name}: SORT gave {got:?}, model {:?}", s.numbers))
            }
            Some(_) => Ok(()),
        };
    }
    match &s.esearch {
        None => {
            let got = obs
                .search
                .as_ref()
                .ok_or_else(|| format!("{name}: no SEARCH response"))?;
            if obs.esearch.is_some() {
                return fail(format!("{name}: ESEARCH to an IMAP4rev1 SEARCH"));
            }
            if *got != s.numbers {
                return fail(format!(
                    "{name}: SEARCH gave {got:?}, model {:?}",
                    s.numbers
                ));
            }
        }
        Some(ret) => {
            let (_, uid, results) = obs
                .esearch
                .as_ref()
                .ok_or_else(|| format!("{name}: no ESEARCH response"))?;
            if *uid != s.uid {
                return fail(format!("{name}: ESEARCH UID marker {uid}"));
            }
            let all = ret.is_empty() || ret.contains(&Ret::All);
            let mut want: Vec<String> = Vec::new();
            if ret.contains(&Ret::Min) {
                want.extend(s.numbers.first().map(|n| format!("MIN {n}")));
            }
            if ret.contains(&Ret::Max) {
                want.extend(s.numbers.last().map(|n| format!("MAX {n}")));
            }
            if ret.contains(&Ret::Count) {
                want.push(format!("COUNT {}", s.numbers.len()));
            }
            if all && !s.numbers.is_empty() {
                want.push(format!("ALL {:?}", s.numbers));
            }
            for r in ret {
                if let Ret::Partial { last, a, b } = *r {
                    // The results whose position (from the first, or from the last) lies
                    // between the two ends.
                    let (lo, hi) = (a.min(b) as usize, a.max(b) as usize);
                    let n = s.numbers.len();
                    let picked: Vec<u32> = (0..n)
                        .filter(|&i| (lo..=hi).contains(&if last { n - i } else { i + 1 }))
                        .filter_map(|i| s.numbers.get(i).copied())
                        .collect();
                    let text = r.text();
                    want.push(if picked.is_empty() {
                        format!("{text} NIL")
                    } else {
                        format!("{text} {picked:?}")
                    });
                }
            }
            let mut got: Vec<String> = results
                .iter()
                .map(|r| match r {
                    ESearchResult::Min(n) => format!("MIN {n}"),
                    ESearchResult::Max(n) => format!("MAX {n}"),
                    ESearchResult::Count(n) => format!("COUNT {n}"),
                    ESearchResult::All(set) => format!("ALL {:?}", expand(set)),
                    ESearchResult::ModSeq(n) => format!("MODSEQ {n}"),
                    ESearchResult::Partial(range, set) => {
                        let (minus, a, b) = match range {
                            PartialRange::First(a, b) => ("", a, b),
                            PartialRange::Last(a, b) => ("-", a, b),
                        };
                        let found = match set {
                            Some(set) => format!("{:?}", expand(set)),
                            None => "NIL".into(),
                        };
                        format!("PARTIAL {minus}{a}:{minus}{b} {found}")
                    }
                })
                .collect();
            got.sort();
            want.sort();
            if got != want {
                return fail(format!("{name}: ESEARCH gave {got:?}, model {want:?}"));
            }
        }
    }
    Ok(())
}

// --------------------------------------------------------------------- message sets

/// Resolves a FETCH/STORE/COPY/MOVE set: sequence numbers against the view (None: a number
/// past the end, BAD); UIDs against the view plus the messages the session has not heard of
/// yet, since the server looks for those first when the set names UIDs it has not announced.
fn resolve(
    sel: Option<&Sel>,
    uid: bool,
    set: &SetSpec,
    model: &Account,
) -> (String, Option<Vec<Uid>>) {
    let Some(s) = sel else {
        return (
            if uid {
                uid_text(set, &[], 0)
            } else {
                seq_text(set, 0)
            },
            Some(Vec::new()),
        );
    };
    let view = s.uids();
    if uid {
        let mut base = view.clone();
        if let Some((_, m)) = model.by_id(s.id) {
            base.extend(m.uids().into_iter().filter(|u| *u > s.max_known));
        }
        let text = uid_text(set, &view, s.max_known);
        (text, Some(uid_resolve(set, &view, s.max_known, &base)))
    } else {
        let text = seq_text(set, view.len());
        let len = view.len() as u32;
        let mut picked = BTreeSet::new();
        for (a, b) in set {
            let n = |p: &Pos| seq_number(p, view.len());
            let (x, y) = (n(a), n(b));
            let (lo, hi) = (x.min(y), x.max(y));
            if lo == 0 || hi > len {
                return (text, None);
            }
            picked.extend(view[lo as usize - 1..hi as usize].iter().copied());
        }
        (text, Some(picked.into_iter().collect()))
    }
}

fn seq_number(p: &Pos, len: usize) -> u32 {
    match p {
        Pos::At(i) if len > 0 => (usize::from(*i) % len + 1) as u32,
        Pos::At(_) => 1,
        Pos::Star => len as u32,
        Pos::Past(k) => (len + 1 + usize::from(*k)) as u32,
    }
}

fn seq_text(set: &SetSpec, len: usize) -> String {
    let one = |p: &Pos| match p {
        Pos::Star => "*".to_string(),
        p => seq_number(p, len).to_string(),
    };
    set.iter()
        .map(|(a, b)| {
            if a == b {
                one(a)
            } else {
                format!("{}:{}", one(a), one(b))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn uid_value(p: &Pos, view: &[Uid], max_known: Uid) -> Option<Uid> {
    match p {
        Pos::At(i) if !view.is_empty() => Some(view[usize::from(*i) % view.len()]),
        Pos::At(_) => Some(1),
        Pos::Star => None,
        Pos::Past(k) => Some(max_known + 1 + u32::from(*k)),
    }
}

fn uid_text(set: &SetSpec, view: &[Uid], max_known: Uid) -> String {
    let one = |p: &Pos| uid_value(p, view, max_known).map_or("*".to_string(), |u| u.to_string());
    set.iter()
        .map(|(a, b)| {
            if a == b {
                one(a)
            } else {
                format!("{}:{}", one(a), one(b))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// UIDs of `base` in the set; `*` is the highest UID of `base` (RFC 9051 §6.4.9).
fn uid_resolve(set: &SetSpec, view: &[Uid], max_known: Uid, base: &[Uid]) -> Vec<Uid> {
    let star = base.iter().copied().max().unwrap_or(0);
    let mut picked = BTreeSet::new();
    for (a, b) in set {
        let x = uid_value(a, view, max_known).unwrap_or(star);
        let y = uid_value(b, view, max_known).unwrap_or(star);
        let (lo, hi) = (x.min(y), x.max(y));
        picked.extend(base.iter().copied().filter(|u| (lo..=hi).contains(u)));
    }
    picked.into_iter().collect()
}

/// A sequence set as a SEARCH key: numbers beyond the mailbox match nothing (tern, as
/// Dovecot; SEARCH asks a question rather than naming messages to act on).
fn search_seq(text: &str, view: &[Uid]) -> BTreeSet<Uid> {
    let len = view.len() as u32;
    let mut out = BTreeSet::new();
    for range in text.split(',') {
        let n = |s: &str| {
            if s == "*" {
                len
            } else {
                s.parse().unwrap_or(0)
            }
        };
        let (a, b) = match range.split_once(':') {
            Some((a, b)) => (n(a), n(b)),
            None => (n(range), n(range)),
        };
        let (lo, hi) = (a.min(b).max(1), a.max(b).min(len));
        for i in lo..=hi {
            if i >= 1 {
                out.extend(view.get(i as usize - 1));
            }
        }
    }
    out
}

fn crit_text(c: &Crit, sets: &[String]) -> String {
    match c {
        Crit::All => "ALL".into(),
        Crit::Flag(f, on) => {
            let sys = match f {
                Fl::Seen => Some("SEEN"),
                Fl::Answered => Some("ANSWERED"),
                Fl::Flagged => Some("FLAGGED"),
                Fl::Deleted => Some("DELETED"),
                Fl::Draft => Some("DRAFT"),
                _ => None,
            };
            match (sys, on) {
                (Some(s), true) => s.to_string(),
                (Some(s), false) => format!("UN{s}"),
                (None, true) => format!("KEYWORD {}", f.name()),
                (None, false) => format!("UNKEYWORD {}", f.name()),
            }
        }
        Crit::Larger(n) => format!("LARGER {n}"),
        Crit::Smaller(n) => format!("SMALLER {n}"),
        Crit::Subject(w) => format!("SUBJECT {w}"),
        Crit::From(w) => format!("FROM {w}"),
        Crit::Body(w) => format!("BODY {w}"),
        Crit::Text(w) => format!("TEXT {w}"),
        Crit::Since(d) => format!("SINCE {}", pool::search_date_text(*d)),
        Crit::Before(d) => format!("BEFORE {}", pool::search_date_text(*d)),
        Crit::On(d) => format!("ON {}", pool::search_date_text(*d)),
        Crit::Recent => "RECENT".into(),
        Crit::New => "NEW".into(),
        Crit::Old => "OLD".into(),
        Crit::Set(i) => sets.get(*i).cloned().unwrap_or_else(|| "ALL".into()),
        Crit::Not(c) => format!("NOT {}", crit_text(c, sets)),
        Crit::Or(a, b) => format!("OR {} {}", crit_text(a, sets), crit_text(b, sets)),
        Crit::And(v) => format!(
            "({})",
            v.iter()
                .map(|c| crit_text(c, sets))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

fn append_text(tag: &str, name: &str, msgs: &[NewMsg]) -> String {
    let mut t = format!("{tag} APPEND {name}");
    for m in msgs {
        if !m.flags.is_empty() {
            let f: Vec<&str> = m.flags.iter().map(|f| f.name()).collect();
            t.push_str(&format!(" ({})", f.join(" ")));
        }
        if let Some(d) = m.date {
            t.push_str(&format!(" \"{}\"", APPEND_DATES[d % 3].1));
        }
        let raw = pool::raw(m.body);
        t.push_str(&format!(" {{{}+}}\r\n", raw.len()));
        t.push_str(&String::from_utf8_lossy(raw));
    }
    t.push_str("\r\n");
    t
}

// --------------------------------------------------------------------- small conversions

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn first_word(s: &str) -> String {
    s.split(' ').nth(1).unwrap_or_default().to_string()
}

pub(super) fn flag_name(f: &Flag) -> String {
    match f {
        Flag::Answered => "\\answered".into(),
        Flag::Flagged => "\\flagged".into(),
        Flag::Deleted => "\\deleted".into(),
        Flag::Seen => "\\seen".into(),
        Flag::Draft => "\\draft".into(),
        Flag::Recent => "\\recent".into(),
        Flag::Keyword(k) => String::from_utf8_lossy(k).to_ascii_lowercase(),
        Flag::Extension(e) => format!("\\{}", String::from_utf8_lossy(e).to_ascii_lowercase()),
    }
}

fn to_flag(name: &str) -> Flag {
    match name {
        "\\answered" => Flag::Answered,
        "\\flagged" => Flag::Flagged,
        "\\deleted" => Flag::Deleted,
        "\\seen" => Flag::Seen,
        "\\draft" => Flag::Draft,
        k => Flag::Keyword(Bytes::from(k.to_string())),
    }
}

fn flags_of(f: &Flags) -> FlagSet {
    f.to_flags().iter().map(flag_name).collect()
}

fn body_item(text: Option<SectionText>, data: &[u8]) -> FetchItem {
    FetchItem::BodySection {
        section: tern_core::mail::section::Section {
            part: Vec::new(),
            text,
        },
        origin: None,
        data: Some(Bytes::copy_from_slice(data)),
    }
}

/// A comparable rendering of a FETCH item: flags as a case-insensitive set.
fn item_key(i: &FetchItem) -> String {
    match i {
        FetchItem::Flags(f) => {
            let s: BTreeSet<String> = f.iter().map(flag_name).collect();
            format!("FLAGS {s:?}")
        }
        FetchItem::BodySection {
            section,
            origin,
            data,
        } => {
            let data = data.as_deref().unwrap_or_default();
            let fnv = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
            });
            format!(
                "BODY[{:?}]<{origin:?}> {} octets #{fnv:016x}",
                section.text,
                data.len()
            )
        }
        other => format!("{other:?}"),
    }
}

pub(super) fn expand(set: &SequenceSet) -> Vec<u32> {
    let mut v = Vec::new();
    if let SequenceSet::Ranges(rs) = set {
        for r in rs {
            let n = |s: SeqNo| match s {
                SeqNo::Value(v) => v.get(),
                SeqNo::Star => u32::MAX,
            };
            let (a, b) = (n(r.from), n(r.to));
            v.extend(a.min(b)..=a.max(b));
        }
    }
    v
}
