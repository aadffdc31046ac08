//! The POP3 session state machine (RFC 1939 §3):
//!
//! ```text
//!   greeting ──▶ AUTHORIZATION ──USER+PASS / AUTH──▶ TRANSACTION ──QUIT──▶ UPDATE ──▶ close
//!                     │ QUIT                                 │ timeout / drop: no UPDATE
//!                     └──────────▶ close                     └──────────▶ close
//! ```

use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes};

use super::command::Command;
use crate::auth::{plaintext_allowed, FailureCounter};
use crate::directory::{
    AuthOutcome, DirectoryError, DirectoryOp, DirectoryReply, DirectoryRequest, DirectoryResult,
};
use crate::lines::{LineFrame, LineReader};
use crate::outbox::Outbox;
use crate::sasl::{
    self, ChannelBindings, Credentials, Exchange, Mechanism, Outcome, SaslContext, SaslError, Step,
};
use crate::secret::Secret;
use crate::session::{
    Completion, Event, Input, MisuseError, Output, RequestIds, SessionConfig, Transport,
    WRONG_KIND_REPLY,
};
use crate::store::{
    Body, BodyStream, DotStuffer, FetchWant, FetchedMessage, MailboxId, RequestId, StorageError,
    StorageOp, StorageReply, StorageRequest, StorageResult, Transfer, Uid,
};
use crate::time::{Timer, Timers};

/// Consecutive unusable commands before the connection is dropped.
const MAX_BAD_COMMANDS: u32 = 20;

#[derive(Debug)]
enum State {
    Authorization {
        user: Option<String>,
    },
    Transaction {
        account: String,
        maildrop: Maildrop,
    },
    /// Over; the account is kept for the driver's closing log line.
    Closed {
        account: Option<String>,
    },
}

#[derive(Debug)]
enum Expect {
    Command,
    SaslResponse(Box<SaslState>),
    /// A storage request is in flight.
    Reply {
        id: RequestId,
        then: AfterReply,
    },
    /// A directory request (a login) is in flight.
    DirectoryReply {
        id: RequestId,
        then: AfterVerdict,
    },
    /// Ending: waiting for the reply `awaiting`, then sending `then` (the release of the
    /// maildrop lock) if it is still to go, or closing.
    Releasing {
        awaiting: RequestId,
        then: Option<StorageOp>,
    },
    AuthDelay,
    TlsHandshake,
    Closed,
}

/// The maildrop as snapshotted at login: message numbers stay fixed for the session
/// whatever IMAP sessions do meanwhile (RFC 1939 §8).
#[derive(Debug)]
struct Maildrop {
    mailbox: MailboxId,
    uid_validity: u32,
    messages: Vec<Message>,
}

#[derive(Debug)]
struct Message {
    uid: Uid,
    size: u64,
    deleted: bool,
    /// Sent in full by RETR: gets `\Seen` when the session ends. Deferring the flag to
    /// UPDATE (one durable write for the session) rather than writing it at each RETR is
    /// what lets a client download new mail at disk-read speed.
    retrieved: bool,
}

/// An AUTH exchange in progress (RFC 5034).
#[derive(Debug)]
struct SaslState {
    mechanism: Mechanism,
    exchange: Exchange,
    /// The account whose SCRAM keys are in use, once the directory named it.
    account: Option<String>,
    username: String,
}

/// What to do with the directory's reply.
#[derive(Debug)]
enum AfterVerdict {
    /// SCRAM keys were asked for.
    ScramKeys(Box<SaslState>),
    /// A password check or an account claim: the verdict ends the command.
    Login {
        username: String,
        mechanism: &'static str,
    },
}

/// What to do with storage's reply.
#[derive(Debug)]
enum AfterReply {
    /// The maildrop lock was asked for.
    Lock { account: String },
    /// INBOX was opened.
    Open { account: String },
    /// The sizes of the maildrop's messages were loaded.
    Sizes {
        account: String,
        mailbox: MailboxId,
        uid_validity: u32,
    },
    /// RETR (`top` none), or TOP with a line count; `index` is the message's place in the
    /// maildrop.
    Retrieve { index: usize, top: Option<u64> },
    /// UPDATE removed the deleted messages.
    Update,
    /// The lock was released; QUIT's answer follows.
    Unlocked,
}

#[derive(Debug)]
pub(crate) struct Pop3Session {
    config: SessionConfig,
    state: State,
    expect: Expect,
    lines: LineReader,
    out: Outbox,
    timers: Timers,
    ids: RequestIds,
    tls_active: bool,
    failures: FailureCounter,
    bad_commands: u32,
    shutting_down: bool,
    /// The time of the latest input (the core reads no clock).
    now: Instant,
    /// The TLS session's channel-binding data, for SCRAM-SHA-256-PLUS.
    channel_bindings: ChannelBindings,
}

impl Pop3Session {
    pub(crate) fn new(config: SessionConfig, now: Instant) -> Self {
        let channel_bindings = config.channel_bindings.clone();
        let mut s = Pop3Session {
            tls_active: config.transport == Transport::ImplicitTls,
            config,
            state: State::Authorization { user: None },
            expect: Expect::Command,
            lines: LineReader::default(),
            out: Outbox::default(),
            timers: Timers::default(),
            ids: RequestIds::default(),
            failures: FailureCounter::default(),
            bad_commands: 0,
            shutting_down: false,
            now,
            channel_bindings,
        };
        let greeting = format!("{} ready.", s.config.server_name);
        s.ok(&greeting);
        s.touch(now);
        s.timers
            .set(Timer::Login, now + s.config.limits.login_timeout);
        s
    }

    fn touch(&mut self, now: Instant) {
        let at = now + self.config.limits.pop3_inactivity;
        self.timers.set(Timer::Inactivity, at);
    }

    pub(crate) fn wants_read(&self) -> bool {
        match self.expect {
            Expect::Closed | Expect::Releasing { .. } => false,
            Expect::Command | Expect::SaslResponse(_) => true,
            Expect::Reply { .. }
            | Expect::DirectoryReply { .. }
            | Expect::AuthDelay
            | Expect::TlsHandshake => self.lines.buffered() < self.config.limits.max_buffered_input,
        }
    }

    pub(crate) fn poll_output(&mut self) -> Output {
        let closed = matches!(self.expect, Expect::Closed);
        self.out.next(closed, self.timers.next())
    }

    pub(crate) fn handle_input(&mut self, input: Input<'_>) -> Result<(), MisuseError> {
        if matches!(self.expect, Expect::Closed) {
            return match input {
                Input::Bytes { .. } | Input::TlsEstablished { .. } => Err(MisuseError::Closed),
                _ => Ok(()),
            };
        }
        if matches!(self.expect, Expect::Releasing { .. }) {
            // Said and done: only the release's progress (or the driver giving up) counts.
            return match input {
                // The release's progress does not depend on what the reply says.
                Input::Storage { now, id, .. } | Input::Directory { now, id, .. } => {
                    self.now = now;
                    self.releasing_reply(id)
                }
                Input::Timeout { now } => {
                    if self.timers.pop_expired(now).is_some() {
                        self.finish_close();
                    }
                    Ok(())
                }
                Input::TlsEstablished { .. } => Err(MisuseError::UnexpectedTls),
                _ => Ok(()),
            };
        }
        let (Input::Bytes { now, .. }
        | Input::Timeout { now }
        | Input::Storage { now, .. }
        | Input::Directory { now, .. }
        | Input::TlsEstablished { now, .. }
        | Input::MailboxChanged { now, .. }
        | Input::PeerClosed { now }
        | Input::Shutdown { now }) = &input;
        self.now = *now;
        match input {
            Input::Bytes { data, .. } => {
                if !matches!(self.expect, Expect::TlsHandshake) {
                    // RFC 2595 §4: nothing sent before the handshake counts after it.
                    self.lines.push(data);
                }
                self.process();
            }
            Input::Timeout { now } => {
                while let Some(timer) = self.timers.pop_expired(now) {
                    match timer {
                        Timer::Inactivity => {
                            // RFC 1939 §3: an expired timer closes the connection without a
                            // response and without entering UPDATE.
                            self.close();
                        }
                        Timer::Login => {
                            self.err("Login timed out.");
                            self.close();
                        }
                        Timer::IdleKeepalive | Timer::Progress => {}
                        Timer::AuthDelay => {
                            if matches!(self.expect, Expect::AuthDelay) {
                                self.expect = Expect::Command;
                                self.answer_failed_auth();
                                self.after_step();
                            }
                        }
                    }
                }
            }
            Input::Storage { id, reply, .. } => {
                match std::mem::replace(&mut self.expect, Expect::Command) {
                    Expect::Reply { id: expected, then } if expected == id => {
                        self.on_reply(then, reply)
                    }
                    Expect::DirectoryReply { id: expected, then } if expected == id => {
                        self.on_verdict(
                            then,
                            Err(DirectoryError::Internal(WRONG_KIND_REPLY.into())),
                        );
                        self.after_step();
                        return Err(MisuseError::WrongReplyKind(id));
                    }
                    other => {
                        self.expect = other;
                        return Err(MisuseError::UnknownRequest(id));
                    }
                }
                self.after_step();
            }
            Input::Directory { id, reply, .. } => {
                match std::mem::replace(&mut self.expect, Expect::Command) {
                    Expect::DirectoryReply { id: expected, then } if expected == id => {
                        self.on_verdict(then, reply)
                    }
                    Expect::Reply { id: expected, then } if expected == id => {
                        self.on_reply(then, Err(StorageError::Internal(WRONG_KIND_REPLY.into())));
                        self.after_step();
                        return Err(MisuseError::WrongReplyKind(id));
                    }
                    other => {
                        self.expect = other;
                        return Err(MisuseError::UnknownRequest(id));
                    }
                }
                self.after_step();
            }
            Input::TlsEstablished {
                now,
                channel_bindings,
            } => {
                if !matches!(self.expect, Expect::TlsHandshake) {
                    return Err(MisuseError::UnexpectedTls);
                }
                self.tls_active = true;
                self.channel_bindings = channel_bindings;
                self.expect = Expect::Command;
                self.touch(now);
                self.after_step();
            }
            // POP3 works on a snapshot of the maildrop (RFC 1939 §8): changes wait for the
            // next session.
            Input::MailboxChanged { .. } => {}
            Input::PeerClosed { .. } => self.close(),
            Input::Shutdown { .. } => {
                self.shutting_down = true;
                self.after_step();
            }
        }
        Ok(())
    }

    fn after_step(&mut self) {
        let idle = matches!(
            self.expect,
            Expect::Command | Expect::SaslResponse(_) | Expect::TlsHandshake
        );
        if self.shutting_down && idle {
            self.err("Server shutting down.");
            self.close();
            return;
        }
        self.process();
    }

    /// Ends the session; a held maildrop lock is released first (without UPDATE: RFC 1939 §6
    /// removes messages only on QUIT). Messages the client retrieved still get `\Seen`, as
    /// IMAP would show them after a read that ended in a dropped connection.
    /// Ends the session however it ends (QUIT aside): a session that holds the maildrop gives
    /// the messages it retrieved `\Seen` and releases the lock first.
    fn close(&mut self) {
        if let State::Transaction { account, maildrop } = &self.state {
            let seen = retrieved_kept(maildrop);
            let op = StorageOp::UnlockMaildrop {
                account: account.clone(),
                seen: (!seen.is_empty()).then_some((maildrop.mailbox, seen)),
            };
            self.release(op);
            return;
        }
        self.close_unlocked();
    }

    /// Closes once `release` (the maildrop lock's release) is done. A session has one request
    /// in flight at a time even as it ends: if another is under way (the client left during a
    /// RETR), the release is sent when that one's reply arrives, which is dropped.
    fn release(&mut self, release: StorageOp) {
        let account = self.account().map(str::to_string);
        self.state = State::Closed { account };
        self.lines.clear();
        self.timers = Timers::default();
        // A driver that never answers must not keep the session forever.
        self.timers.set(
            Timer::Inactivity,
            self.now + self.config.limits.pop3_inactivity,
        );
        self.expect = match std::mem::replace(&mut self.expect, Expect::Closed) {
            Expect::Reply { id, .. } | Expect::DirectoryReply { id, .. } => Expect::Releasing {
                awaiting: id,
                then: Some(release),
            },
            _ => {
                let id = self.ids.next();
                self.out
                    .push(Output::Storage(StorageRequest { id, op: release }));
                Expect::Releasing {
                    awaiting: id,
                    then: None,
                }
            }
        };
    }

    /// A reply while releasing: send the release if it was waiting for this one, or close.
    fn releasing_reply(&mut self, id: RequestId) -> Result<(), MisuseError> {
        let Expect::Releasing { awaiting, then } =
            std::mem::replace(&mut self.expect, Expect::Closed)
        else {
            return Ok(());
        };
        if awaiting != id {
            self.expect = Expect::Releasing { awaiting, then };
            return Err(MisuseError::UnknownRequest(id));
        }
        match then {
            Some(op) => {
                let id = self.ids.next();
                self.out.push(Output::Storage(StorageRequest { id, op }));
                self.expect = Expect::Releasing {
                    awaiting: id,
                    then: None,
                };
            }
            None => self.finish_close(),
        }
        Ok(())
    }

    fn close_unlocked(&mut self) {
        let account = match std::mem::replace(&mut self.state, State::Closed { account: None }) {
            State::Transaction { account, .. } => Some(account),
            State::Closed { account } => account,
            State::Authorization { .. } => None,
        };
        self.state = State::Closed { account };
        self.lines.clear();
        self.finish_close();
    }

    fn finish_close(&mut self) {
        self.expect = Expect::Closed;
        self.timers = Timers::default();
        self.out.push(Output::Close);
    }

    fn process(&mut self) {
        loop {
            let max = match self.expect {
                Expect::Command => self.config.limits.pop3_max_line,
                Expect::SaslResponse(_) => self.config.limits.sasl_max_line,
                _ => return,
            };
            match self.lines.next(max) {
                LineFrame::NeedMore => return,
                LineFrame::TooLong => {
                    if let Expect::SaslResponse(_) = self.expect {
                        self.expect = Expect::Command;
                    }
                    self.bad("Line too long.");
                }
                LineFrame::Line(line) => {
                    // The inactivity timer runs from the last complete line: a client that
                    // trickles bytes without ever finishing one is inactive.
                    self.touch(self.now);
                    match std::mem::replace(&mut self.expect, Expect::Command) {
                        Expect::SaslResponse(state) => self.sasl_response(*state, &line),
                        other => {
                            self.expect = other;
                            self.command(&line);
                        }
                    }
                }
            }
            if matches!(self.expect, Expect::Closed) {
                return;
            }
        }
    }

    fn command(&mut self, line: &Bytes) {
        let command = Command::parse(line);
        self.out.push(Output::Event(Event::Command {
            name: command.name(),
        }));
        if !matches!(command, Command::Invalid { .. }) {
            self.bad_commands = 0;
        }
        match (command, &mut self.state) {
            (Command::Capa, _) => self.capa(),
            (Command::Quit, State::Authorization { .. }) => {
                self.ok("Logging out.");
                self.close();
            }
            (Command::Quit, State::Transaction { account, maildrop }) => {
                // RFC 1939 §6: UPDATE removes the marked messages, all or none, before +OK;
                // the retrieved ones get \Seen in the same transaction.
                let uids: Vec<Uid> = maildrop
                    .messages
                    .iter()
                    .filter(|m| m.deleted)
                    .map(|m| m.uid)
                    .collect();
                let seen = retrieved_kept(maildrop);
                let (account, mailbox) = (account.clone(), maildrop.mailbox);
                if uids.is_empty() && seen.is_empty() {
                    self.unlock_then_quit(account);
                } else {
                    self.request(
                        StorageOp::Remove {
                            account,
                            mailbox,
                            uids,
                            seen,
                        },
                        AfterReply::Update,
                    );
                }
            }
            (Command::Noop, State::Transaction { .. }) => self.ok(""),
            (Command::Stat, State::Transaction { maildrop, .. }) => {
                let live = maildrop.messages.iter().filter(|m| !m.deleted);
                let (count, size) = live.fold((0u64, 0u64), |(c, s), m| (c + 1, s + m.size));
                self.ok(&format!("{count} {size}"));
            }
            (Command::List(None), State::Transaction { maildrop, .. }) => {
                let lines: Vec<String> = maildrop
                    .messages
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !m.deleted)
                    .map(|(i, m)| format!("{} {}", i + 1, m.size))
                    .collect();
                self.ok(&format!("{} messages:", lines.len()));
                self.multiline(lines);
            }
            (Command::List(Some(n)), State::Transaction { maildrop, .. }) => {
                match message(maildrop, n) {
                    Ok(m) => {
                        let size = m.size;
                        self.ok(&format!("{n} {size}"));
                    }
                    Err(why) => self.err(why),
                }
            }
            (Command::Uidl(None), State::Transaction { maildrop, .. }) => {
                let validity = maildrop.uid_validity;
                let lines: Vec<String> = maildrop
                    .messages
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !m.deleted)
                    .map(|(i, m)| format!("{} {}", i + 1, uidl(validity, m.uid)))
                    .collect();
                self.ok("");
                self.multiline(lines);
            }
            (Command::Uidl(Some(n)), State::Transaction { maildrop, .. }) => {
                let validity = maildrop.uid_validity;
                match message(maildrop, n) {
                    Ok(m) => {
                        let id = uidl(validity, m.uid);
                        self.ok(&format!("{n} {id}"));
                    }
                    Err(why) => self.err(why),
                }
            }
            (Command::Dele(n), State::Transaction { maildrop, .. }) => {
                match message_mut(maildrop, n) {
                    Ok(m) => {
                        m.deleted = true;
                        self.ok("Marked to be deleted.");
                    }
                    Err(why) => self.err(why),
                }
            }
            (Command::Rset, State::Transaction { maildrop, .. }) => {
                for m in &mut maildrop.messages {
                    m.deleted = false;
                }
                let count = maildrop.messages.len();
                self.ok(&format!("{count} messages."));
            }
            (Command::Retr(n), State::Transaction { .. }) => self.retrieve(n, None),
            (Command::Top(n, lines), State::Transaction { .. }) => self.retrieve(n, Some(lines)),
            (Command::Apop, State::Authorization { .. }) => {
                // APOP needs a plaintext-equivalent secret on the server; tern keeps hashes.
                self.err("APOP is not enabled on this server.")
            }
            (Command::Stls, State::Authorization { .. }) => {
                if self.tls_active || self.config.transport != Transport::StartTlsAvailable {
                    self.err("TLS is already active or not available.");
                    return;
                }
                self.ok("Begin TLS negotiation now.");
                // RFC 2595 §4 / RFC 3207-class injection: pipelined plaintext is discarded.
                self.lines.clear();
                self.expect = Expect::TlsHandshake;
                self.out.push(Output::StartTls);
            }
            (Command::User(name), State::Authorization { user }) => {
                if !plaintext_allowed(self.tls_active, self.config.plaintext_auth_without_tls) {
                    *user = None;
                    self.err_auth("Plaintext authentication disallowed on non-secure connections.");
                    return;
                }
                match String::from_utf8(name.to_vec()) {
                    Ok(name) => {
                        *user = Some(name);
                        self.ok("");
                    }
                    Err(_) => self.err("Invalid user name."),
                }
            }
            (Command::Pass(pass), State::Authorization { user }) => {
                let Some(username) = user.take() else {
                    self.err("No user name given.");
                    return;
                };
                let creds = Credentials {
                    username,
                    password: Secret::new(pass.into_inner().to_vec()),
                };
                self.authenticate(creds, "USER");
            }
            (
                Command::Auth {
                    mechanism: None, ..
                },
                State::Authorization { .. },
            ) => {
                // The pre-RFC 5034 listing form that some clients still probe with.
                self.ok("");
                let names: Vec<&str> = self.mechanisms().iter().map(|m| m.name()).collect();
                let buf = self.out.bytes();
                for name in names {
                    buf.put_slice(name.as_bytes());
                    buf.put_slice(b"\r\n");
                }
                buf.put_slice(b".\r\n");
            }
            (
                Command::Auth {
                    mechanism: Some(name),
                    initial_response,
                },
                State::Authorization { .. },
            ) => {
                let mechanism = Mechanism::lookup(&name);
                let Some(mechanism) = mechanism.filter(|m| self.mechanisms().contains(m)) else {
                    if mechanism.is_some_and(Mechanism::is_plaintext) {
                        self.err_auth(
                            "Plaintext authentication disallowed on non-secure connections.",
                        );
                    } else {
                        self.err("Unsupported authentication mechanism.");
                    }
                    return;
                };
                let initial = match initial_response {
                    None => None,
                    Some(ir) => match sasl::decode_response(ir.expose()) {
                        Ok(decoded) => Some(decoded),
                        Err(_) => {
                            self.err("Invalid base64 data.");
                            return;
                        }
                    },
                };
                let context = SaslContext::new(self.channel_bindings.clone());
                let mut state = SaslState {
                    mechanism,
                    exchange: Exchange::new(mechanism, &context),
                    account: None,
                    username: String::new(),
                };
                let step = state.exchange.start(initial.as_deref());
                self.sasl_step(state, step);
            }
            (Command::Invalid { reason, .. }, _) => self.bad(reason),
            (_, State::Authorization { .. }) => self.bad("Not allowed before authentication."),
            (_, _) => self.bad("Not allowed in this state."),
        }
    }

    fn capa(&mut self) {
        self.ok("Capability list follows.");
        let plaintext = plaintext_allowed(self.tls_active, self.config.plaintext_auth_without_tls);
        let starttls = !self.tls_active && self.config.transport == Transport::StartTlsAvailable;
        let authorization = matches!(self.state, State::Authorization { .. });
        let mechanisms = self.mechanisms();
        let buf = self.out.bytes();
        buf.put_slice(b"TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
        // RFC 2449 §6.7: tern never deletes mail on its own.
        buf.put_slice(b"EXPIRE NEVER\r\n");
        // RFC 2449 §6.2/§6.3 and RFC 5034 §3: USER and SASL are announced in both states.
        if plaintext {
            buf.put_slice(b"USER\r\n");
        }
        buf.put_slice(b"SASL");
        for m in &mechanisms {
            buf.put_slice(b" ");
            buf.put_slice(m.name().as_bytes());
        }
        buf.put_slice(b"\r\n");
        if authorization && starttls {
            buf.put_slice(b"STLS\r\n");
        }
        buf.put_slice(b"IMPLEMENTATION tern\r\n.\r\n");
    }

    /// The SASL mechanisms this connection offers (RFC 5034 §5: the SASL capability).
    fn mechanisms(&self) -> Vec<Mechanism> {
        let plaintext = plaintext_allowed(self.tls_active, self.config.plaintext_auth_without_tls);
        Mechanism::ALL
            .into_iter()
            .filter(|m| match m {
                Mechanism::ScramSha256Plus => self.channel_bindings.available(),
                m if m.is_plaintext() => plaintext,
                _ => true,
            })
            .collect()
    }

    fn sasl_response(&mut self, mut state: SaslState, line: &[u8]) {
        // RFC 5034 §4: "*" cancels the exchange.
        if line == b"*" {
            self.err("Authentication cancelled.");
            return;
        }
        let step = match sasl::decode_response(line) {
            Ok(decoded) => state.exchange.respond(&decoded),
            Err(e) => Step::Failed(e),
        };
        self.sasl_step(state, step);
    }

    fn sasl_step(&mut self, mut state: SaslState, step: Step) {
        match step {
            Step::Challenge(challenge) => {
                let buf = self.out.bytes();
                buf.put_slice(b"+ ");
                buf.put_slice(sasl::encode_challenge(&challenge).as_bytes());
                buf.put_slice(b"\r\n");
                self.expect = Expect::SaslResponse(Box::new(state));
            }
            Step::NeedCredentials { username } => {
                state.username = username.clone();
                self.ask_directory(
                    DirectoryOp::ScramLookup { username },
                    AfterVerdict::ScramKeys(Box::new(state)),
                );
            }
            Step::Done(Outcome::Verify(creds)) => self.authenticate(creds, state.mechanism.name()),
            Step::Done(Outcome::Authenticated { .. }) => match state.account {
                // The proof is right; the account's connection limit still applies.
                Some(account) => self.ask_directory(
                    DirectoryOp::ClaimAccount { account },
                    AfterVerdict::Login {
                        username: state.username,
                        mechanism: state.mechanism.name(),
                    },
                ),
                None => self.failed_login(state.username, state.mechanism.name()),
            },
            Step::Failed(SaslError::BadBase64) => self.err("Invalid base64 data."),
            Step::Failed(SaslError::InvalidProof) => {
                self.failed_login(state.username, state.mechanism.name())
            }
            Step::Failed(_) => self.err_auth("Authentication failed."),
        }
    }

    fn authenticate(&mut self, creds: Credentials, mechanism: &'static str) {
        let username = creds.username.clone();
        self.ask_directory(
            DirectoryOp::Authenticate {
                username: creds.username,
                password: creds.password,
            },
            AfterVerdict::Login {
                username,
                mechanism,
            },
        );
    }

    fn request(&mut self, op: StorageOp, then: AfterReply) {
        let id = self.ids.next();
        self.expect = Expect::Reply { id, then };
        self.out.push(Output::Storage(StorageRequest { id, op }));
    }

    fn ask_directory(&mut self, op: DirectoryOp, then: AfterVerdict) {
        let id = self.ids.next();
        self.expect = Expect::DirectoryReply { id, then };
        self.out
            .push(Output::Directory(DirectoryRequest { id, op }));
    }

    fn on_verdict(&mut self, then: AfterVerdict, reply: DirectoryResult) {
        match then {
            AfterVerdict::Login {
                username,
                mechanism,
            } => match reply {
                Ok(DirectoryReply::Authenticated(AuthOutcome::Accepted { account, .. })) => {
                    self.logged_in(account, mechanism)
                }
                Ok(DirectoryReply::Authenticated(AuthOutcome::Rejected)) => {
                    self.failed_login(username, mechanism)
                }
                // The account is at its connection limit (one POP3 session): RFC 2449 §8.1.1.
                Err(DirectoryError::InUse) => {
                    self.err("[IN-USE] Mailbox is locked by another POP3 session.")
                }
                Err(DirectoryError::Blocked) => self.blocked(),
                Err(_) | Ok(_) => self.temporary_failure(),
            },
            AfterVerdict::ScramKeys(state) => match reply {
                Ok(DirectoryReply::Scram {
                    account,
                    credentials,
                    nonce,
                }) => {
                    let mut state = *state;
                    state.account = account;
                    let step = state.exchange.credentials(&credentials, &nonce);
                    self.sasl_step(state, step);
                }
                Err(DirectoryError::Blocked) => self.blocked(),
                Err(_) | Ok(_) => self.temporary_failure(),
            },
        }
    }

    fn on_reply(&mut self, then: AfterReply, reply: StorageResult) {
        match then {
            AfterReply::Lock { account } => match reply {
                Ok(StorageReply::Done) => self.request(
                    StorageOp::Open {
                        account: account.clone(),
                        name: crate::store::rules::INBOX.to_string(),
                        read_only: true,
                    },
                    AfterReply::Open { account },
                ),
                // RFC 2449 §8.1.1: IN-USE, so the client knows retrying later may work.
                Err(StorageError::InUse) => {
                    self.err("[IN-USE] Mailbox is locked by another POP3 session.")
                }
                Err(_) | Ok(_) => self.temporary_failure(),
            },
            AfterReply::Open { account } => match reply {
                Ok(StorageReply::Opened(snapshot)) => {
                    let uids = Arc::unwrap_or_clone(snapshot.uids);
                    self.request(
                        StorageOp::Fetch {
                            account: account.clone(),
                            mailbox: snapshot.id,
                            uids,
                            want: FetchWant::default(),
                            mark_seen: false,
                        },
                        AfterReply::Sizes {
                            account,
                            mailbox: snapshot.id,
                            uid_validity: snapshot.uid_validity,
                        },
                    );
                }
                Err(_) | Ok(_) => self.release_after_failure(account),
            },
            AfterReply::Sizes {
                account,
                mailbox,
                uid_validity,
            } => match reply {
                Ok(StorageReply::Fetched(found)) => {
                    // Messages expunged meanwhile are kept for IMAP sessions that still see
                    // them; a maildrop is what exists now.
                    let messages = found
                        .iter()
                        .filter(|m| !m.expunged)
                        .map(|m| Message {
                            uid: m.uid,
                            size: m.size,
                            deleted: false,
                            retrieved: false,
                        })
                        .collect();
                    self.state = State::Transaction {
                        account,
                        maildrop: Maildrop {
                            mailbox,
                            uid_validity,
                            messages,
                        },
                    };
                    self.ok("Logged in.");
                }
                Err(_) | Ok(_) => self.release_after_failure(account),
            },
            AfterReply::Retrieve { index, top } => match reply {
                // A message removed by another session is gone for POP3 (RFC 1939 has no
                // notion of it), even while IMAP sessions may still read it.
                Ok(StorageReply::Fetched(found)) => match found.iter().find(|m| !m.expunged) {
                    Some(m) => {
                        if top.is_none() {
                            if let State::Transaction { maildrop, .. } = &mut self.state {
                                if let Some(kept) = maildrop.messages.get_mut(index) {
                                    kept.retrieved = true;
                                }
                            }
                        }
                        self.send_message(m, top)
                    }
                    None => self.err("Message was deleted by another session."),
                },
                Err(_) | Ok(_) => self.temporary_failure(),
            },
            AfterReply::Update => match reply {
                Ok(StorageReply::Expunged(_)) => {
                    if let Some(account) = self.account().map(str::to_string) {
                        self.unlock_then_quit(account);
                    }
                }
                // RFC 1939 §6: if removal fails, say so; nothing was removed.
                Err(_) | Ok(_) => {
                    self.err("[SYS/TEMP] Some deleted messages were not removed.");
                    self.close();
                }
            },
            AfterReply::Unlocked => {
                self.out.push(Output::Event(Event::LoggedOut));
                self.ok("Logging out.");
                self.close_unlocked();
            }
        }
    }

    fn logged_in(&mut self, account: String, mechanism: &'static str) {
        self.timers.clear(Timer::Login);
        self.out.push(Output::Event(Event::LoggedIn {
            account: account.clone(),
            mechanism,
        }));
        self.request(
            StorageOp::LockMaildrop {
                account: account.clone(),
            },
            AfterReply::Lock { account },
        );
    }

    /// A wrong password (or proof): answered after the tarpit delay.
    fn failed_login(&mut self, username: String, mechanism: &'static str) {
        self.out.push(Output::Event(Event::AuthFailed {
            username,
            mechanism,
        }));
        let delay = self.failures.record(&self.config.limits);
        if delay.is_zero() {
            self.answer_failed_auth();
        } else {
            self.timers.set(Timer::AuthDelay, self.now + delay);
            self.expect = Expect::AuthDelay;
        }
    }

    /// The address is blocked for failed logins: refuse and hang up (see
    /// [`DirectoryError::Blocked`]).
    fn blocked(&mut self) {
        self.err("[SYS/TEMP] Too many failed logins from your address; try again later.");
        self.close();
    }

    fn temporary_failure(&mut self) {
        self.err("[SYS/TEMP] Temporary server failure; try again later.");
    }

    fn release_after_failure(&mut self, account: String) {
        self.temporary_failure();
        self.release(StorageOp::UnlockMaildrop {
            account,
            seen: None,
        });
    }

    fn unlock_then_quit(&mut self, account: String) {
        self.request(
            StorageOp::UnlockMaildrop {
                account,
                seen: None,
            },
            AfterReply::Unlocked,
        );
    }

    fn retrieve(&mut self, n: u32, top: Option<u64>) {
        let State::Transaction { account, maildrop } = &self.state else {
            return;
        };
        let (account, mailbox) = (account.clone(), maildrop.mailbox);
        let uid = match message(maildrop, n) {
            Ok(m) => m.uid,
            Err(why) => {
                self.err(why);
                return;
            }
        };
        let index = (n as usize).saturating_sub(1);
        self.request(
            StorageOp::Fetch {
                account,
                mailbox,
                uids: vec![uid],
                want: FetchWant {
                    content: true,
                    info: false,
                    header_only: false,
                    ..Default::default()
                },
                // RETR's \Seen is written once, when the session ends (see `Message`).
                mark_seen: false,
            },
            AfterReply::Retrieve { index, top },
        );
    }

    /// Sends a message (or its header and first lines) byte-stuffed (RFC 1939 §3); a large
    /// one is streamed by the driver through the same transform.
    fn send_message(&mut self, m: &FetchedMessage, top: Option<u64>) {
        match top {
            None => self.ok(&format!("{} octets", m.size)),
            Some(_) => self.ok(""),
        }
        match m.content.clone().unwrap_or_default() {
            Body::Inline(data) => DotStuffer::stuff_all(&data, top, self.out.bytes()),
            Body::Source(source) => {
                let len = source.len();
                self.out.push(Output::TransmitBody(BodyStream::new(
                    source,
                    0..len,
                    Transfer::Pop3(DotStuffer::new(top)),
                )));
            }
        }
    }

    fn multiline(&mut self, lines: Vec<String>) {
        let buf = self.out.bytes();
        for line in lines {
            buf.put_slice(line.as_bytes());
            buf.put_slice(b"\r\n");
        }
        buf.put_slice(b".\r\n");
    }

    fn answer_failed_auth(&mut self) {
        self.err_auth("Authentication failed.");
        if self.failures.exhausted(&self.config.limits) {
            self.close();
        }
    }

    fn bad(&mut self, text: &str) {
        self.err(text);
        self.bad_commands += 1;
        if self.bad_commands >= MAX_BAD_COMMANDS {
            self.err("Too many invalid commands.");
            self.close();
        }
    }

    fn ok(&mut self, text: &str) {
        self.status(b"+OK", text);
    }

    fn err(&mut self, text: &str) {
        self.status(b"-ERR", text);
    }

    /// `-ERR [AUTH]` (RFC 2449 §8.1.2 / RFC 3206): a problem with the credentials or policy.
    fn err_auth(&mut self, text: &str) {
        self.status(b"-ERR [AUTH]", text);
    }

    fn status(&mut self, indicator: &[u8], text: &str) {
        // `-ERR [AUTH]`: the code is the bracketed word (RFC 2449 §8).
        let (ok, code) = match indicator {
            [b'+', ..] => (true, None),
            _ => (
                false,
                indicator
                    .iter()
                    .position(|&b| b == b'[')
                    .and_then(|i| indicator.get(i + 1..))
                    .map(|c| String::from_utf8_lossy(c).trim_end_matches(']').to_string()),
            ),
        };
        self.out.push(Output::Event(Event::Answered {
            outcome: if ok { Completion::Ok } else { Completion::No },
            code,
            text: text.to_string(),
        }));
        let buf = self.out.bytes();
        buf.put_slice(indicator);
        if !text.is_empty() {
            buf.put_u8(b' ');
            buf.extend(text.bytes().filter(|&b| b != b'\r' && b != b'\n'));
        }
        buf.put_slice(b"\r\n");
    }

    pub(crate) fn account(&self) -> Option<&str> {
        match &self.state {
            State::Transaction { account, .. } => Some(account),
            State::Closed { account } => account.as_deref(),
            State::Authorization { .. } => None,
        }
    }
}

/// The messages RETR sent that are not marked for deletion, for `\Seen`.
fn retrieved_kept(maildrop: &Maildrop) -> Vec<Uid> {
    maildrop
        .messages
        .iter()
        .filter(|m| m.retrieved && !m.deleted)
        .map(|m| m.uid)
        .collect()
}

/// The message a number names (RFC 1939 §5: deleted messages may not be referred to).
fn message(maildrop: &Maildrop, n: u32) -> Result<&Message, &'static str> {
    let m = (n as usize)
        .checked_sub(1)
        .and_then(|i| maildrop.messages.get(i))
        .ok_or("There is no such message.")?;
    if m.deleted {
        return Err("Message is deleted.");
    }
    Ok(m)
}

fn message_mut(maildrop: &mut Maildrop, n: u32) -> Result<&mut Message, &'static str> {
    let m = (n as usize)
        .checked_sub(1)
        .and_then(|i| maildrop.messages.get_mut(i))
        .ok_or("There is no such message.")?;
    if m.deleted {
        return Err("Message is deleted.");
    }
    Ok(m)
}

/// A unique id per message, stable across sessions and restarts, that changes when the
/// mailbox is renumbered: UID then UIDVALIDITY, as Dovecot's default `%08Xu%08Xv`, so
/// clients migrating from Dovecot (`tern import` keeps both numbers) do not download
/// everything again. Dovecot's `%X` writes lowercase hex (2.3 answers `000000016b170e61`),
/// and clients compare UIDLs as strings.
fn uidl(uid_validity: u32, uid: Uid) -> String {
    format!("{uid:08x}{uid_validity:08x}")
}

#[cfg(test)]
mod tests {
    /// What Dovecot 2.3 answered for UID 1 of a mailbox with UIDVALIDITY 0x6b170e61 (seen by
    /// runtime-smol/tests/migrate.rs, which also compares whole UIDL lists with Dovecot's).
    #[test]
    fn uidls_are_dovecots_default_format() {
        assert_eq!(super::uidl(0x6b17_0e61, 1), "000000016b170e61");
    }
}
