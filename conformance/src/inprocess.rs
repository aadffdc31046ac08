//! Runs transcripts against `tern-core` directly: `MemStore`, `MemDirectory`, a virtual clock,
//! no sockets.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tern_core::drive::{pump, Blocked};
use tern_core::mail::flags::Flag;
use tern_core::sasl::ChannelBindings;
use tern_core::store::NewMessage;
use tern_core::{
    Input, MemDirectory, MemStore, Protocol, Session, SessionConfig, StorageError, StorageOp,
    Store, Transport,
};

use crate::runner::{Received, Target, TargetError, AUTO_ADVANCE};
use crate::transcript::{Proto, Security, Setup, Transcript, User};
use crate::wire;

/// The binary reads at most this much per wake-up; feeding the same keeps the two alike.
const READ_CHUNK: usize = 16 * 1024;

/// Bounds the timer loop, in case a session keeps re-arming a deadline that has passed.
const MAX_TIMER_FIRINGS: usize = 10_000;

/// Bounds change notifications that cause further changes.
const MAX_NOTIFY_ROUNDS: usize = 100;

struct Conn {
    session: Session,
    imap: bool,
    /// Sent by the client but not yet read by the session (back-pressure, see `wants_read`).
    inbox: Vec<u8>,
    /// Written by the session, not yet taken by the runner.
    out: Vec<u8>,
    blocked: Blocked,
}

/// The core on a virtual clock. Connections share one store, one directory and one clock, as
/// sessions of one server do.
pub struct InProcess {
    security: Security,
    chunk: usize,
    store: MemStore,
    /// The transcript's users.
    directory: MemDirectory,
    /// Some user has a `@quota`: sessions offer QUOTA, as the binary does with `[quota]`.
    quota: bool,
    /// The virtual clock, and where it started.
    now: Instant,
    start: Instant,
    /// The store's own clock (Unix seconds, for internal dates) when the virtual clock started.
    store_epoch: i64,
    conns: Vec<Option<Conn>>,
}

impl InProcess {
    /// A fresh store, and a directory of the transcript's users.
    pub fn new(transcript: &Transcript, security: Security) -> InProcess {
        Self::with_users(&transcript.users, security)
    }

    /// A fresh store, and a directory of these users.
    pub fn with_users(users: &[User], security: Security) -> InProcess {
        let store = MemStore::new();
        let mut directory = MemDirectory::new();
        for user in users {
            directory.add_user(&user.name, &user.password);
            if let Some(q) = user.quota {
                directory.set_quota(
                    &user.name,
                    tern_core::store::Quota {
                        // 0 is no limit, as in the binary's configuration (Dovecot's rule).
                        octets: q
                            .storage_kib
                            .filter(|k| *k > 0)
                            .map(|k| k.saturating_mul(1024)),
                        messages: q.messages.filter(|n| *n > 0),
                    },
                );
            }
        }
        let quota = users.iter().any(|u| u.quota.is_some());
        // Only differences between instants matter to the core; any origin will do.
        let start = Instant::now();
        InProcess {
            security,
            chunk: READ_CHUNK,
            store_epoch: store.now(),
            store,
            directory,
            quota,
            now: start,
            start,
            conns: Vec::new(),
        }
    }

    /// Feeds input at most `chunk` octets at a time; 1 checks that the core answers the same
    /// however the input is split.
    pub fn with_chunk(mut self, chunk: usize) -> InProcess {
        self.chunk = chunk.max(1);
        self
    }

    fn conn(&mut self, conn: usize) -> Result<&mut Conn, TargetError> {
        self.conns
            .get_mut(conn)
            .and_then(Option::as_mut)
            .ok_or(TargetError::Closed)
    }

    /// Runs the session's outputs, hands it as much pending input as it will take, then tells
    /// every session of an account whose mailboxes changed, as the binary does.
    fn settle(&mut self, conn: usize) -> Result<(), TargetError> {
        self.settle_one(conn)?;
        self.notify()
    }

    /// Hands the store's change notifications to every session of the account, until no
    /// session makes further changes.
    fn notify(&mut self) -> Result<(), TargetError> {
        for _ in 0..MAX_NOTIFY_ROUNDS {
            let changes = self.store.take_changes();
            if changes.is_empty() {
                return Ok(());
            }
            let now = self.now;
            for change in changes {
                for index in 0..self.conns.len() {
                    let Some(Some(c)) = self.conns.get_mut(index) else {
                        continue;
                    };
                    if c.blocked == Blocked::Close || c.session.account() != Some(&change.account) {
                        continue;
                    }
                    c.session.handle_input(Input::MailboxChanged {
                        now,
                        account: &change.account,
                        mailbox: change.mailbox,
                        modseq: change.modseq,
                    })?;
                    self.settle_one(index)?;
                }
            }
        }
        Err(TargetError::Unsupported(
            "change notifications keep causing changes".into(),
        ))
    }

    fn settle_one(&mut self, conn: usize) -> Result<(), TargetError> {
        let now = self.now;
        let chunk = self.chunk;
        let InProcess {
            store,
            directory,
            conns,
            ..
        } = self;
        let Some(Some(c)) = conns.get_mut(conn) else {
            return Ok(());
        };
        loop {
            let out = &mut c.out;
            c.blocked = pump(&mut c.session, store, directory, now, &mut |b| {
                out.extend_from_slice(b)
            })?;
            if c.inbox.is_empty() || c.blocked == Blocked::Close || !c.session.wants_read() {
                return Ok(());
            }
            let take = chunk.min(c.inbox.len());
            let data: Vec<u8> = c.inbox.drain(..take).collect();
            c.session.handle_input(Input::Bytes { now, data: &data })?;
        }
    }

    /// Moves the clock to `target`, firing every deadline on the way in order.
    fn advance_to(&mut self, target: Instant) -> Result<(), TargetError> {
        for _ in 0..MAX_TIMER_FIRINGS {
            let next = self
                .conns
                .iter()
                .flatten()
                .filter_map(|c| match c.blocked {
                    Blocked::Until(at) if at <= target => Some(at),
                    _ => None,
                })
                .min();
            let Some(at) = next else {
                self.set_now(self.now.max(target));
                return Ok(());
            };
            self.set_now(self.now.max(at));
            let now = self.now;
            for index in 0..self.conns.len() {
                let due = matches!(
                    self.conns.get(index),
                    Some(Some(c)) if matches!(c.blocked, Blocked::Until(at) if at <= now)
                );
                if due {
                    self.conn(index)?
                        .session
                        .handle_input(Input::Timeout { now })?;
                    self.settle(index)?;
                }
            }
        }
        Err(TargetError::Unsupported(
            "a session keeps asking for timers that have already passed".into(),
        ))
    }
}

impl InProcess {
    fn set_now(&mut self, now: Instant) {
        self.now = now;
        let elapsed = now.saturating_duration_since(self.start).as_secs();
        self.store
            .set_now(self.store_epoch + i64::try_from(elapsed).unwrap_or(i64::MAX / 2));
    }
}

/// What the binary hands a session on TLS 1.3 (its `tls-exporter`), so that both offer the
/// same mechanisms. The value is fixed: nothing in-process can check it.
fn channel_bindings() -> ChannelBindings {
    ChannelBindings {
        tls_exporter: Some(vec![0x42; 32]),
        ..ChannelBindings::default()
    }
}

/// `\Seen` and the other system flags, `\Other` extensions, and keywords.
fn flag(text: &str) -> Flag {
    match text.strip_prefix('\\') {
        Some(name) => match name.to_ascii_lowercase().as_str() {
            "seen" => Flag::Seen,
            "answered" => Flag::Answered,
            "flagged" => Flag::Flagged,
            "deleted" => Flag::Deleted,
            "draft" => Flag::Draft,
            "recent" => Flag::Recent,
            _ => Flag::Extension(Bytes::copy_from_slice(name.as_bytes())),
        },
        None => Flag::Keyword(Bytes::copy_from_slice(text.as_bytes())),
    }
}

impl Target for InProcess {
    fn skip_reason(&self, _transcript: &Transcript) -> Option<String> {
        None
    }

    /// Straight into the store, which is what a client's CREATE and APPEND would end in.
    fn set_up(&mut self, transcript: &Transcript) -> Result<(), TargetError> {
        for setup in &transcript.setup {
            let (line, op) = match setup {
                Setup::Mailbox { line, user, name } => (
                    *line,
                    StorageOp::CreateMailbox {
                        account: user.clone(),
                        name: name.clone(),
                        special_use: None,
                    },
                ),
                Setup::Message {
                    line,
                    user,
                    mailbox,
                    flags,
                    source,
                } => (
                    *line,
                    StorageOp::Append {
                        account: user.clone(),
                        name: mailbox.clone(),
                        messages: vec![NewMessage {
                            flags: flags.iter().map(|f| flag(f)).collect(),
                            internal_date: None,
                            data: Bytes::copy_from_slice(source.data()),
                        }],
                    },
                ),
            };
            let is_mailbox = matches!(setup, Setup::Mailbox { .. });
            match self.store.execute(op) {
                Ok(_) => {}
                // @mailbox makes sure the mailbox exists; servers differ in what they create.
                Err(StorageError::AlreadyExists) if is_mailbox => {}
                Err(e) => {
                    return Err(TargetError::SetUp {
                        line,
                        message: format!("the store refused it: {e}"),
                    })
                }
            }
        }
        // Nobody is connected yet to be told.
        let _ = self.store.take_changes();
        Ok(())
    }

    fn open(&mut self, conn: usize, protocol: Proto) -> Result<(), TargetError> {
        let protocol = match protocol {
            Proto::Imap => Protocol::Imap,
            Proto::Pop3 => Protocol::Pop3,
        };
        let transport = match self.security {
            Security::Plain => Transport::StartTlsAvailable,
            Security::Tls => Transport::ImplicitTls,
        };
        let mut config = SessionConfig::new(protocol, transport);
        // As the binary does for loopback peers, which is where its transcripts run.
        config.plaintext_auth_without_tls = true;
        // As the binary: its transcripts end at COMPRESS's OK (see `receive`).
        config.compression = true;
        config.quota = self.quota;
        if self.security == Security::Tls {
            config.channel_bindings = channel_bindings();
        }
        let session = Session::new(config, self.now);
        if self.conns.len() <= conn {
            self.conns.resize_with(conn + 1, || None);
        }
        if let Some(slot) = self.conns.get_mut(conn) {
            *slot = Some(Conn {
                session,
                imap: protocol == Protocol::Imap,
                inbox: Vec::new(),
                out: Vec::new(),
                blocked: Blocked::Close,
            });
        }
        self.settle(conn)
    }

    fn send(&mut self, conn: usize, data: &[u8]) -> Result<(), TargetError> {
        let c = self.conn(conn)?;
        if c.blocked == Blocked::Close {
            return Err(TargetError::Closed);
        }
        c.inbox.extend_from_slice(data);
        self.settle(conn)
    }

    fn receive(&mut self, conn: usize) -> Result<Received, TargetError> {
        loop {
            let now = self.now;
            let c = self.conn(conn)?;
            if let Some(unit) = wire::take_unit(&mut c.out, c.imap) {
                return Ok(Received::Unit(unit));
            }
            match c.blocked {
                Blocked::Close => {
                    return Ok(Received::Closed {
                        partial: std::mem::take(&mut c.out),
                    })
                }
                Blocked::StartTls => return Err(TargetError::WaitsForTls),
                Blocked::StartCompression => {
                    return Err(TargetError::Unsupported(
                        "the server compresses from here on (RFC 4978): end the transcript at \
                         COMPRESS's OK"
                            .into(),
                    ))
                }
                Blocked::Until(at) => {
                    let wait = at.saturating_duration_since(now);
                    if wait > AUTO_ADVANCE {
                        return Err(TargetError::NoAnswer(wait));
                    }
                    self.advance_to(at)?;
                }
            }
        }
    }

    fn pending(&mut self, conn: usize) -> Result<Vec<u8>, TargetError> {
        Ok(std::mem::take(&mut self.conn(conn)?.out))
    }

    fn start_tls(&mut self, conn: usize) -> Result<(), TargetError> {
        let now = self.now;
        let c = self.conn(conn)?;
        if c.blocked != Blocked::StartTls {
            return Err(TargetError::NoTlsRequested);
        }
        c.session.handle_input(Input::TlsEstablished {
            now,
            channel_bindings: channel_bindings(),
        })?;
        self.settle(conn)
    }

    fn close(&mut self, conn: usize) -> Result<(), TargetError> {
        let now = self.now;
        let InProcess {
            store,
            directory,
            conns,
            ..
        } = self;
        if let Some(slot) = conns.get_mut(conn) {
            if let Some(mut c) = slot.take() {
                // A session that closed first has nothing left to say about it. One that did
                // not may still have work to do, such as releasing a POP3 maildrop lock: it
                // runs, as the binary's connection task runs it, with its output going nowhere.
                if c.session.handle_input(Input::PeerClosed { now }).is_ok() {
                    let _ = pump(&mut c.session, store, directory, now, &mut |_| {});
                }
            }
        }
        // What that clean-up changed (POP3's \Seen) reaches the other sessions.
        self.notify()
    }

    fn advance(&mut self, by: Duration) -> Result<(), TargetError> {
        let target = self.now + by;
        self.advance_to(target)
    }
}
