//! The IMAP session state machine.
//!
//! States follow RFC 9051 §3:
//!
//! ```text
//!   connection ──greeting──▶ Not Authenticated ──LOGIN/AUTHENTICATE──▶ Authenticated
//!                                   │                                      │
//!                                   └────────────LOGOUT / BYE──────────────┴──▶ Logout
//! ```
//!
//! Orthogonal to the state, [`Expect`] says what the session is waiting for: a command, a
//! SASL response line, a storage reply, the end of a failed-login delay, or a TLS handshake.
//! Only `Expect::Command` and `Expect::SaslResponse` consume input; in every other case input
//! stays buffered in the framer, which is what keeps pipelined commands in order.

use std::time::Instant;

use bytes::Bytes;

use super::command::{Command, CommandLine, Tag};
use super::encode::{self, Code, Status};
use super::framing::{FrameLimits, Framer, Mode, Rejection};
use super::{decode, framing::Frame};
use crate::auth::{plaintext_allowed, FailureCounter};
use crate::limits::Limits;
use crate::outbox::Outbox;
use crate::sasl::{self, Credentials, Mechanism};
use crate::session::{Event, Input, MisuseError, Output, RequestIds, SessionConfig, Transport};
use crate::store::{AuthOutcome, RequestId, StorageError, StorageOp, StorageReply, StorageRequest};
use crate::time::{Timer, Timers};

/// Consecutive unusable commands before the connection is dropped (Dovecot uses 20 too).
const MAX_BAD_COMMANDS: u32 = 20;

#[derive(Debug)]
enum State {
    NotAuthenticated,
    Authenticated {
        account: String,
    },
    /// Over; the account is kept for the driver's closing log line.
    Logout {
        account: Option<String>,
    },
}

#[derive(Debug)]
enum Expect {
    Command,
    /// AUTHENTICATE sent a continuation; the next line is the client's SASL response.
    SaslResponse {
        tag: Tag,
        mechanism: Mechanism,
    },
    /// A storage request is in flight.
    Reply {
        id: RequestId,
        then: AfterReply,
    },
    /// A failed authentication is answered when [`Timer::AuthDelay`] fires.
    AuthDelay {
        tag: Tag,
    },
    /// STARTTLS was answered; the driver is running the handshake.
    TlsHandshake,
    /// Nothing more will be read.
    Closed,
}

/// What to do with a storage reply.
#[derive(Debug)]
enum AfterReply {
    Login {
        tag: Tag,
        username: String,
        mechanism: &'static str,
    },
}

#[derive(Debug)]
pub(crate) struct ImapSession {
    config: SessionConfig,
    state: State,
    expect: Expect,
    framer: Framer,
    out: Outbox,
    timers: Timers,
    ids: RequestIds,
    tls_active: bool,
    failures: FailureCounter,
    bad_commands: u32,
    shutting_down: bool,
}

impl ImapSession {
    pub(crate) fn new(config: SessionConfig, now: Instant) -> Self {
        let mut s = ImapSession {
            tls_active: config.transport == Transport::ImplicitTls,
            config,
            state: State::NotAuthenticated,
            expect: Expect::Command,
            framer: Framer::new(),
            out: Outbox::default(),
            timers: Timers::default(),
            ids: RequestIds::default(),
            failures: FailureCounter::default(),
            bad_commands: 0,
            shutting_down: false,
        };
        let caps = s.capabilities();
        let greeting = format!("{} ready.", s.config.server_name);
        encode::status(
            s.out.bytes(),
            None,
            Status::Ok,
            Some(Code::Capability(&caps)),
            &greeting,
        );
        s.touch(now);
        s
    }

    fn limits(&self) -> &Limits {
        &self.config.limits
    }

    fn touch(&mut self, now: Instant) {
        let at = now + self.limits().imap_autologout;
        self.timers.set(Timer::Inactivity, at);
    }

    pub(crate) fn wants_read(&self) -> bool {
        match self.expect {
            Expect::Closed => false,
            Expect::Command | Expect::SaslResponse { .. } => true,
            Expect::Reply { .. } | Expect::AuthDelay { .. } | Expect::TlsHandshake => {
                self.framer.buffered() < self.limits().max_buffered_input
            }
        }
    }

    pub(crate) fn poll_output(&mut self) -> Output {
        if let Some(out) = self.out.pop() {
            return out;
        }
        match (&self.expect, self.timers.next()) {
            (Expect::Closed, _) | (_, None) => Output::Close,
            (_, Some(at)) => Output::Timeout(at),
        }
    }

    pub(crate) fn handle_input(&mut self, input: Input<'_>) -> Result<(), MisuseError> {
        if matches!(self.expect, Expect::Closed) {
            return match input {
                Input::Bytes { .. } | Input::TlsEstablished { .. } => Err(MisuseError::Closed),
                // A reply or timer that raced with the close is harmless.
                _ => Ok(()),
            };
        }
        match input {
            Input::Bytes { now, data } => {
                self.touch(now);
                if !matches!(self.expect, Expect::TlsHandshake) {
                    // RFC 9051 §6.2.1: nothing sent before the handshake may be acted on after it.
                    self.framer.push(data);
                }
                self.process(now);
            }
            Input::Timeout { now } => {
                while let Some(timer) = self.timers.pop_expired(now) {
                    self.fire(timer, now);
                }
            }
            Input::Storage { now, id, reply } => {
                let Expect::Reply { id: expected, .. } = &self.expect else {
                    return Err(MisuseError::UnknownRequest(id));
                };
                if *expected != id {
                    return Err(MisuseError::UnknownRequest(id));
                }
                let Expect::Reply { then, .. } =
                    std::mem::replace(&mut self.expect, Expect::Command)
                else {
                    return Err(MisuseError::UnknownRequest(id));
                };
                self.on_reply(then, reply, now);
                self.after_step(now);
            }
            Input::TlsEstablished { now } => {
                if !matches!(self.expect, Expect::TlsHandshake) {
                    return Err(MisuseError::UnexpectedTls);
                }
                self.tls_active = true;
                self.expect = Expect::Command;
                self.touch(now);
                self.after_step(now);
            }
            Input::PeerClosed { .. } => self.close(),
            Input::Shutdown { now } => {
                self.shutting_down = true;
                self.after_step(now);
            }
        }
        Ok(())
    }

    /// Continues after a step that may have unblocked buffered input or a pending shutdown.
    fn after_step(&mut self, now: Instant) {
        if self.shutting_down && self.is_idle() {
            encode::status(
                self.out.bytes(),
                None,
                Status::Bye,
                None,
                "Server shutting down.",
            );
            self.close();
            return;
        }
        self.process(now);
    }

    /// Between commands: nothing in flight that a goodbye would cut short.
    fn is_idle(&self) -> bool {
        matches!(
            self.expect,
            Expect::Command | Expect::SaslResponse { .. } | Expect::TlsHandshake
        )
    }

    fn close(&mut self) {
        let account = match std::mem::replace(&mut self.state, State::Logout { account: None }) {
            State::Authenticated { account } => Some(account),
            State::Logout { account } => account,
            State::NotAuthenticated => None,
        };
        self.state = State::Logout { account };
        self.expect = Expect::Closed;
        self.timers = Timers::default();
        self.framer.clear();
        self.out.push(Output::Close);
    }

    fn fire(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Inactivity => {
                // RFC 9051 §5.4: the autologout is announced with an untagged BYE.
                encode::status(
                    self.out.bytes(),
                    None,
                    Status::Bye,
                    None,
                    "Autologout; idle for too long.",
                );
                self.close();
            }
            Timer::AuthDelay => {
                let Expect::AuthDelay { tag } =
                    std::mem::replace(&mut self.expect, Expect::Command)
                else {
                    return;
                };
                self.answer_failed_auth(&tag);
                self.after_step(now);
            }
        }
    }

    fn frame_limits(&self) -> FrameLimits {
        let l = self.limits();
        let max_literal = match self.state {
            State::NotAuthenticated => l.imap_max_literal_unauthenticated,
            _ => l.imap_max_literal,
        };
        FrameLimits {
            max_line: l.imap_max_line,
            max_literal,
            max_discard: l.imap_max_discard,
            max_command: max_literal.saturating_add(l.imap_max_line as u64),
            literal_plus: true,
        }
    }

    /// Runs every complete unit of buffered input the current expectation can consume.
    fn process(&mut self, now: Instant) {
        loop {
            let limits = self.frame_limits();
            let frame = match &self.expect {
                Expect::Command => self.framer.next(Mode::Command, &limits),
                Expect::SaslResponse { .. } => {
                    let sasl = FrameLimits {
                        max_line: self.limits().sasl_max_line,
                        ..limits
                    };
                    self.framer.next(Mode::Line, &sasl)
                }
                _ => return,
            };
            match frame {
                Frame::NeedMore => return,
                Frame::LiteralAnnounced { len, total, tag } => {
                    if len <= limits.max_literal && total <= limits.max_command {
                        self.framer.accept_literal();
                        encode::continuation(self.out.bytes(), "Ready for literal data");
                    } else {
                        self.framer.reject_literal();
                        let tag = tag.and_then(Tag::new);
                        encode::status(
                            self.out.bytes(),
                            tag.as_ref(),
                            Status::No,
                            Some(Code::TooBig),
                            "Literal too large.",
                        );
                    }
                }
                Frame::Command(bytes) => self.command(bytes, now),
                Frame::Line(line) => self.sasl_response(line, now),
                Frame::Rejected { tag, why } => {
                    let tag = tag.and_then(Tag::new);
                    let text = match why {
                        Rejection::LineTooLong => "Command line too long.",
                        Rejection::TooLarge => "Command too large.",
                    };
                    if let Expect::SaslResponse { tag, .. } =
                        std::mem::replace(&mut self.expect, Expect::Command)
                    {
                        encode::status(self.out.bytes(), Some(&tag), Status::Bad, None, text);
                    } else {
                        self.bad(tag.as_ref(), Some(Code::TooBig), text);
                    }
                }
                Frame::Hostile => {
                    encode::status(
                        self.out.bytes(),
                        None,
                        Status::Bye,
                        Some(Code::TooBig),
                        "Literal size beyond any limit.",
                    );
                    self.close();
                    return;
                }
            }
            if matches!(self.expect, Expect::Closed) {
                return;
            }
        }
    }

    fn bad(&mut self, tag: Option<&Tag>, code: Option<Code<'_>>, text: &str) {
        encode::status(self.out.bytes(), tag, Status::Bad, code, text);
        self.bad_commands += 1;
        if self.bad_commands >= MAX_BAD_COMMANDS {
            encode::status(
                self.out.bytes(),
                None,
                Status::Bye,
                None,
                "Too many invalid commands.",
            );
            self.close();
        }
    }

    fn command(&mut self, bytes: Bytes, now: Instant) {
        let line = match decode::command(&bytes) {
            Ok(line) => line,
            Err(e) => {
                self.bad(e.tag.as_ref(), None, e.message);
                return;
            }
        };
        self.out.push(Output::Event(Event::Command {
            name: line.command.name().to_string(),
        }));
        let CommandLine { tag, command } = line;
        if !matches!(command, Command::Unknown { .. }) {
            self.bad_commands = 0;
        }
        match (command, &self.state) {
            (Command::Capability, _) => {
                let caps = self.capabilities();
                encode::capability(self.out.bytes(), &caps);
                self.ok(&tag, "CAPABILITY completed.");
            }
            (Command::Noop, _) => self.ok(&tag, "NOOP completed."),
            (Command::Logout, _) => {
                encode::status(self.out.bytes(), None, Status::Bye, None, "Logging out.");
                self.ok(&tag, "LOGOUT completed.");
                self.close();
            }
            (Command::StartTls, State::NotAuthenticated) => {
                if self.tls_active || self.config.transport != Transport::StartTlsAvailable {
                    self.bad(Some(&tag), None, "TLS is already active or not available.");
                    return;
                }
                self.ok(&tag, "Begin TLS negotiation now.");
                // RFC 9051 §6.2.1: bytes pipelined after STARTTLS are an injection attempt.
                self.framer.clear();
                self.expect = Expect::TlsHandshake;
                self.out.push(Output::StartTls);
                let _ = now;
            }
            (Command::Login { username, password }, State::NotAuthenticated) => {
                if !self.plaintext_ok() {
                    encode::status(
                        self.out.bytes(),
                        Some(&tag),
                        Status::No,
                        Some(Code::PrivacyRequired),
                        "Plaintext authentication is disallowed without TLS.",
                    );
                    return;
                }
                let Ok(username) = String::from_utf8(username.to_vec()) else {
                    self.no_auth(&tag);
                    return;
                };
                let creds = Credentials {
                    username,
                    password: crate::secret::Secret::new(password.into_inner().to_vec()),
                };
                self.authenticate(tag, creds, "LOGIN");
            }
            (
                Command::Authenticate {
                    mechanism,
                    initial_response,
                },
                State::NotAuthenticated,
            ) => {
                let Some(mech) = Mechanism::from_name(&mechanism) else {
                    encode::status(
                        self.out.bytes(),
                        Some(&tag),
                        Status::No,
                        None,
                        "Unsupported authentication mechanism.",
                    );
                    return;
                };
                if mech.is_plaintext() && !self.plaintext_ok() {
                    encode::status(
                        self.out.bytes(),
                        Some(&tag),
                        Status::No,
                        Some(Code::PrivacyRequired),
                        "Plaintext authentication is disallowed without TLS.",
                    );
                    return;
                }
                match initial_response {
                    Some(ir) => self.finish_sasl(tag, mech, ir.expose()),
                    None => {
                        encode::continuation(self.out.bytes(), "");
                        self.expect = Expect::SaslResponse {
                            tag,
                            mechanism: mech,
                        };
                    }
                }
            }
            (
                Command::StartTls | Command::Login { .. } | Command::Authenticate { .. },
                State::Authenticated { .. } | State::Logout { .. },
            ) => self.bad(Some(&tag), None, "Already authenticated."),
            (Command::Unknown { .. }, _) => self.bad(Some(&tag), None, "Unknown command."),
            (_, _) => self.bad(Some(&tag), None, "Command not available in this state."),
        }
    }

    fn sasl_response(&mut self, line: Bytes, _now: Instant) {
        let Expect::SaslResponse { tag, mechanism } =
            std::mem::replace(&mut self.expect, Expect::Command)
        else {
            return;
        };
        // RFC 9051 §6.2.2: a lone "*" cancels the exchange with a tagged BAD.
        if line.as_ref() == b"*" {
            encode::status(
                self.out.bytes(),
                Some(&tag),
                Status::Bad,
                None,
                "Authentication cancelled.",
            );
            return;
        }
        self.finish_sasl(tag, mechanism, &line);
    }

    fn finish_sasl(&mut self, tag: Tag, mechanism: Mechanism, response: &[u8]) {
        let decoded = sasl::decode_response(response).and_then(|r| mechanism.finish(&r));
        match decoded {
            Ok(creds) => self.authenticate(tag, creds, mechanism.name()),
            Err(sasl::SaslError::BadBase64) => encode::status(
                self.out.bytes(),
                Some(&tag),
                Status::Bad,
                None,
                "Invalid base64 data.",
            ),
            Err(_) => self.no_auth(&tag),
        }
    }

    fn authenticate(&mut self, tag: Tag, creds: Credentials, mechanism: &'static str) {
        let id = self.ids.next();
        self.expect = Expect::Reply {
            id,
            then: AfterReply::Login {
                tag,
                username: creds.username.clone(),
                mechanism,
            },
        };
        self.out.push(Output::Storage(StorageRequest {
            id,
            op: StorageOp::Authenticate {
                username: creds.username,
                password: creds.password,
            },
        }));
    }

    fn on_reply(
        &mut self,
        then: AfterReply,
        reply: Result<StorageReply, StorageError>,
        now: Instant,
    ) {
        match then {
            AfterReply::Login {
                tag,
                username,
                mechanism,
            } => match reply {
                Ok(StorageReply::Authenticated(AuthOutcome::Accepted { account })) => {
                    self.out.push(Output::Event(Event::LoggedIn {
                        account: account.clone(),
                        mechanism,
                    }));
                    self.state = State::Authenticated { account };
                    let caps = self.capabilities();
                    encode::status(
                        self.out.bytes(),
                        Some(&tag),
                        Status::Ok,
                        Some(Code::Capability(&caps)),
                        "Logged in.",
                    );
                }
                Ok(StorageReply::Authenticated(AuthOutcome::Rejected)) => {
                    self.out.push(Output::Event(Event::AuthFailed {
                        username,
                        mechanism,
                    }));
                    let delay = self.failures.record(&self.config.limits);
                    if delay.is_zero() {
                        self.answer_failed_auth(&tag);
                    } else {
                        self.timers.set(Timer::AuthDelay, now + delay);
                        self.expect = Expect::AuthDelay { tag };
                    }
                }
                Err(e) => self.storage_failed(&tag, &e),
                Ok(other) => self.storage_failed(
                    &tag,
                    &StorageError::Internal(format!("unexpected reply {other:?}")),
                ),
            },
        }
    }

    fn answer_failed_auth(&mut self, tag: &Tag) {
        self.no_auth(tag);
        if self.failures.exhausted(&self.config.limits) {
            encode::status(
                self.out.bytes(),
                None,
                Status::Bye,
                None,
                "Too many failed authentication attempts.",
            );
            self.close();
        }
    }

    fn no_auth(&mut self, tag: &Tag) {
        encode::status(
            self.out.bytes(),
            Some(tag),
            Status::No,
            Some(Code::AuthenticationFailed),
            "Authentication failed.",
        );
    }

    fn storage_failed(&mut self, tag: &Tag, error: &StorageError) {
        let code = match error {
            StorageError::Unavailable(_) => Code::Unavailable,
            _ => Code::ServerBug,
        };
        encode::status(
            self.out.bytes(),
            Some(tag),
            Status::No,
            Some(code),
            "Temporary server failure; try again later.",
        );
    }

    fn ok(&mut self, tag: &Tag, text: &str) {
        encode::status(self.out.bytes(), Some(tag), Status::Ok, None, text);
    }

    fn plaintext_ok(&self) -> bool {
        plaintext_allowed(self.tls_active, self.config.plaintext_auth_without_tls)
    }

    pub(crate) fn account(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated { account } => Some(account),
            State::Logout { account } => account.as_deref(),
            State::NotAuthenticated => None,
        }
    }

    /// The capability list for the current state and transport (RFC 9051 §7.2.2).
    fn capabilities(&self) -> String {
        let mut caps = String::from("IMAP4rev1 SASL-IR LITERAL+");
        if let State::NotAuthenticated = self.state {
            if !self.tls_active && self.config.transport == Transport::StartTlsAvailable {
                caps.push_str(" STARTTLS");
            }
            if self.plaintext_ok() {
                caps.push_str(" AUTH=PLAIN");
            } else {
                caps.push_str(" LOGINDISABLED");
            }
        }
        caps
    }
}
