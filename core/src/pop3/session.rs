//! The POP3 session state machine (RFC 1939 §3):
//!
//! ```text
//!   greeting ──▶ AUTHORIZATION ──USER+PASS / AUTH──▶ TRANSACTION ──QUIT──▶ UPDATE ──▶ close
//!                     │ QUIT                                 │ timeout / drop: no UPDATE
//!                     └──────────▶ close                     └──────────▶ close
//! ```

use std::time::Instant;

use bytes::{BufMut, Bytes};

use super::command::Command;
use super::lines::{LineFrame, LineReader};
use crate::auth::{plaintext_allowed, FailureCounter};
use crate::outbox::Outbox;
use crate::sasl::{self, Credentials, Mechanism};
use crate::secret::Secret;
use crate::session::{Event, Input, MisuseError, Output, RequestIds, SessionConfig, Transport};
use crate::store::{AuthOutcome, RequestId, StorageError, StorageOp, StorageReply, StorageRequest};
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
    },
    /// Over; the account is kept for the driver's closing log line.
    Closed {
        account: Option<String>,
    },
}

#[derive(Debug)]
enum Expect {
    Command,
    SaslResponse { mechanism: Mechanism },
    Reply { id: RequestId, then: AfterReply },
    AuthDelay,
    TlsHandshake,
    Closed,
}

#[derive(Debug)]
enum AfterReply {
    Login {
        username: String,
        mechanism: &'static str,
    },
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
}

impl Pop3Session {
    pub(crate) fn new(config: SessionConfig, now: Instant) -> Self {
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
        };
        let greeting = format!("{} ready.", s.config.server_name);
        s.ok(&greeting);
        s.touch(now);
        s
    }

    fn touch(&mut self, now: Instant) {
        let at = now + self.config.limits.pop3_inactivity;
        self.timers.set(Timer::Inactivity, at);
    }

    pub(crate) fn wants_read(&self) -> bool {
        match self.expect {
            Expect::Closed => false,
            Expect::Command | Expect::SaslResponse { .. } => true,
            Expect::Reply { .. } | Expect::AuthDelay | Expect::TlsHandshake => {
                self.lines.buffered() < self.config.limits.max_buffered_input
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
                _ => Ok(()),
            };
        }
        match input {
            Input::Bytes { now, data } => {
                self.touch(now);
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
                            // RFC 1939 §3: an expired timer closes without entering UPDATE.
                            self.err("Disconnected for inactivity.");
                            self.close();
                        }
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
            Input::Storage { now, id, reply } => {
                match &self.expect {
                    Expect::Reply { id: expected, .. } if *expected == id => {}
                    _ => return Err(MisuseError::UnknownRequest(id)),
                }
                if let Expect::Reply { then, .. } =
                    std::mem::replace(&mut self.expect, Expect::Command)
                {
                    self.on_reply(then, reply, now);
                }
                self.after_step();
            }
            Input::TlsEstablished { now } => {
                if !matches!(self.expect, Expect::TlsHandshake) {
                    return Err(MisuseError::UnexpectedTls);
                }
                self.tls_active = true;
                self.expect = Expect::Command;
                self.touch(now);
                self.after_step();
            }
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
            Expect::Command | Expect::SaslResponse { .. } | Expect::TlsHandshake
        );
        if self.shutting_down && idle {
            self.err("Server shutting down.");
            self.close();
            return;
        }
        self.process();
    }

    fn close(&mut self) {
        let account = match std::mem::replace(&mut self.state, State::Closed { account: None }) {
            State::Transaction { account } => Some(account),
            State::Closed { account } => account,
            State::Authorization { .. } => None,
        };
        self.state = State::Closed { account };
        self.expect = Expect::Closed;
        self.timers = Timers::default();
        self.lines.clear();
        self.out.push(Output::Close);
    }

    fn process(&mut self) {
        loop {
            let max = match self.expect {
                Expect::Command => self.config.limits.pop3_max_line,
                Expect::SaslResponse { .. } => self.config.limits.sasl_max_line,
                _ => return,
            };
            match self.lines.next(max) {
                LineFrame::NeedMore => return,
                LineFrame::TooLong => {
                    if let Expect::SaslResponse { .. } = self.expect {
                        self.expect = Expect::Command;
                    }
                    self.bad("Line too long.");
                }
                LineFrame::Line(line) => match self.expect {
                    Expect::SaslResponse { mechanism } => {
                        self.expect = Expect::Command;
                        self.sasl_response(mechanism, &line);
                    }
                    _ => self.command(&line),
                },
            }
            if matches!(self.expect, Expect::Closed) {
                return;
            }
        }
    }

    fn command(&mut self, line: &Bytes) {
        let command = Command::parse(line);
        self.out.push(Output::Event(Event::Command {
            name: command.name().to_string(),
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
            (Command::Quit, State::Transaction { .. }) => {
                // UPDATE state (RFC 1939 §6): nothing is marked for deletion yet.
                self.ok("Logging out.");
                self.close();
            }
            (Command::Noop, State::Transaction { .. }) => self.ok(""),
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
                self.out.bytes().put_slice(b"PLAIN\r\n.\r\n");
            }
            (
                Command::Auth {
                    mechanism: Some(name),
                    initial_response,
                },
                State::Authorization { .. },
            ) => {
                let Some(mechanism) = Mechanism::from_name(&name) else {
                    self.err("Unsupported authentication mechanism.");
                    return;
                };
                if mechanism.is_plaintext()
                    && !plaintext_allowed(self.tls_active, self.config.plaintext_auth_without_tls)
                {
                    self.err_auth("Plaintext authentication disallowed on non-secure connections.");
                    return;
                }
                match initial_response {
                    Some(ir) => self.finish_sasl(mechanism, ir.expose()),
                    None => {
                        self.out.bytes().put_slice(b"+ \r\n");
                        self.expect = Expect::SaslResponse { mechanism };
                    }
                }
            }
            (Command::Invalid { reason, .. }, _) => self.bad(reason),
            (_, State::Authorization { .. }) => self.bad("Not allowed before authentication."),
            (_, _) => self.bad("Not allowed in this state."),
        }
    }

    fn capa(&mut self) {
        self.ok("Capability list follows.");
        let buf = self.out.bytes();
        buf.put_slice(b"RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
        if let State::Authorization { .. } = self.state {
            if plaintext_allowed(self.tls_active, self.config.plaintext_auth_without_tls) {
                buf.put_slice(b"USER\r\nSASL PLAIN\r\n");
            }
            if !self.tls_active && self.config.transport == Transport::StartTlsAvailable {
                buf.put_slice(b"STLS\r\n");
            }
        }
        buf.put_slice(b"IMPLEMENTATION tern\r\n.\r\n");
    }

    fn sasl_response(&mut self, mechanism: Mechanism, line: &[u8]) {
        // RFC 5034 §4: "*" cancels the exchange.
        if line == b"*" {
            self.err("Authentication cancelled.");
            return;
        }
        self.finish_sasl(mechanism, line);
    }

    fn finish_sasl(&mut self, mechanism: Mechanism, response: &[u8]) {
        match sasl::decode_response(response).and_then(|r| mechanism.finish(&r)) {
            Ok(creds) => self.authenticate(creds, mechanism.name()),
            Err(sasl::SaslError::BadBase64) => self.err("Invalid base64 data."),
            Err(_) => self.err_auth("Authentication failed."),
        }
    }

    fn authenticate(&mut self, creds: Credentials, mechanism: &'static str) {
        let id = self.ids.next();
        self.expect = Expect::Reply {
            id,
            then: AfterReply::Login {
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
                username,
                mechanism,
            } => match reply {
                Ok(StorageReply::Authenticated(AuthOutcome::Accepted { account })) => {
                    self.out.push(Output::Event(Event::LoggedIn {
                        account: account.clone(),
                        mechanism,
                    }));
                    self.state = State::Transaction { account };
                    self.ok("Logged in.");
                }
                Ok(StorageReply::Authenticated(AuthOutcome::Rejected)) => {
                    self.out.push(Output::Event(Event::AuthFailed {
                        username,
                        mechanism,
                    }));
                    let delay = self.failures.record(&self.config.limits);
                    if delay.is_zero() {
                        self.answer_failed_auth();
                    } else {
                        self.timers.set(Timer::AuthDelay, now + delay);
                        self.expect = Expect::AuthDelay;
                    }
                }
                Err(_) | Ok(_) => self.err("[SYS/TEMP] Temporary server failure; try again later."),
            },
        }
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
            State::Transaction { account } => Some(account),
            State::Closed { account } => account.as_deref(),
            State::Authorization { .. } => None,
        }
    }
}
