//! The IMAP session state machine.
//!
//! States follow RFC 9051 §3:
//!
//! ```text
//!            greeting
//!               │
//!               ▼
//!      Not Authenticated ──LOGIN / AUTHENTICATE──▶ Authenticated ◀──CLOSE/UNSELECT──┐
//!               │                                    │      │                       │
//!               │                                    │  SELECT/EXAMINE ──▶ Selected ┘
//!               └───────────LOGOUT / BYE─────────────┴──────────────────────┴──▶ Logout
//! ```
//!
//! UNAUTHENTICATE (RFC 8437) leads from Authenticated and Selected back to Not Authenticated.
//!
//! Orthogonal to the state, [`Expect`] says what the session waits for: a command, a SASL
//! response line, IDLE's DONE, a storage reply, a directory reply (a login), the end of a
//! failed-login delay, or a TLS handshake. Only the first three consume input; otherwise input stays buffered in the
//! framer, which keeps pipelined commands in order and bounds what a client can queue.
//!
//! Every command that touches storage issues exactly one request at a time and names, in its
//! [`Pending`] value, how to continue when the reply comes back; LOGIN and AUTHENTICATE do the
//! same with the directory ([`auth::Pending`]). Which kind of reply the session awaits is part
//! of [`Expect`], so a reply of the other kind cannot be taken for it.

mod auth;
mod condstore;
mod fetch;
mod mailboxes;
mod messages;
mod metadata;
mod multisearch;
mod quota;
mod search;
mod thread;
mod view;

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::command::{Command, CommandLine, Tag};
use super::decode;
use super::encode::{self, EncodeOptions};
use super::framing::{Frame, FrameLimits, Framer, Mode, Rejection};
use super::response::{Code, Condition, Data, Progress, Response, StatusResponse};
use super::types::{SearchKey, SelectParam, SequenceSet};
use crate::auth::FailureCounter;
use crate::directory::{DirectoryError, DirectoryOp, DirectoryRequest};
use crate::limits::Limits;
use crate::outbox::Outbox;
use crate::sasl::ChannelBindings;
use crate::session::{
    Completion, Event, Input, MisuseError, Output, RequestIds, SessionConfig, Transport,
    WRONG_KIND_REPLY,
};
use crate::store::rules::Refusal;
use crate::store::{
    LimitKind, MailboxId, ModSeq, Quota, StorageError, StorageOp, StorageReply, StorageRequest,
    StorageResult, UNKNOWN_MODSEQ,
};
use crate::time::{Timer, Timers};

use view::View;

/// The words of `NO [UNAVAILABLE]`, whichever request met the passing condition.
const TEMPORARY_FAILURE: &str = "Temporary server failure; try again later.";
/// The words of `NO [SERVERBUG]`: the details go to the log, not to the client.
const INTERNAL_ERROR: &str = "Internal error; the administrator has the details.";

/// Consecutive unusable commands before the connection is dropped (Dovecot uses 20 too).
const MAX_BAD_COMMANDS: u32 = 20;

#[derive(Debug)]
enum State {
    NotAuthenticated,
    Authenticated {
        account: String,
    },
    Selected {
        account: String,
        view: Box<View>,
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
    SaslResponse(Box<auth::SaslState>),
    /// IDLE is running; the next line should be DONE.
    IdleDone {
        tag: Tag,
    },
    /// A storage request is in flight.
    Reply {
        id: RequestId,
        pending: Pending,
    },
    /// A directory request (a login) is in flight.
    DirectoryReply {
        id: RequestId,
        pending: auth::Pending,
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

use crate::store::RequestId;

/// How long a command waits on storage before INPROGRESS says it is still running, and how
/// often it says so again (RFC 9585 §4: every 10 to 15 seconds).
const PROGRESS_AFTER: Duration = Duration::from_secs(12);

/// INPROGRESS counts (RFC 9585 §4): what is done of `total`, the goal only while above it.
fn progress_counts(done: usize, total: usize) -> (Option<u32>, Option<u32>) {
    let done = u32::try_from(done).unwrap_or(u32::MAX);
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    (Some(done), (total > done).then_some(total))
}

/// What to do with the reply to the storage request in flight.
#[derive(Debug)]
enum Pending {
    Mailbox(mailboxes::Pending),
    Message(messages::Pending),
    Fetch(fetch::Pending),
    Search(search::Pending),
    Thread(thread::Pending),
    Quota(quota::Pending),
    /// A synchronisation (Changes) before finishing a command.
    Sync(Finish),
    /// A synchronisation while idling.
    IdleSync {
        tag: Tag,
    },
    /// A synchronisation before running a UID command that names UIDs the view lacks.
    PreSync(Box<CommandLine>),
    /// A look at what changed since a MODSEQ the client named (RFC 7162).
    Resync(condstore::Pending),
    /// An ESEARCH over several mailboxes (RFC 7377).
    MultiSearch(Box<multisearch::Pending>),
    /// GETMETADATA or SETMETADATA (RFC 5464).
    Metadata(metadata::Pending),
}

/// The tagged response that ends a command, sent after any pending updates.
#[derive(Debug)]
pub(super) struct Finish {
    pub(super) tag: Tag,
    pub(super) condition: Condition,
    pub(super) code: Option<Code>,
    pub(super) text: String,
    /// Whether EXPUNGE responses may be sent first (not after FETCH, STORE, SEARCH:
    /// RFC 9051 §7.5.1).
    pub(super) expunge_ok: bool,
    /// The tagged OK carries `[HIGHESTMODSEQ n]` as the view stands once its updates are
    /// sent (RFC 7162 §3.2.7: EXPUNGE under QRESYNC).
    pub(super) report_modseq: bool,
}

impl Finish {
    pub(super) fn ok(tag: Tag, text: impl Into<String>) -> Finish {
        Finish {
            tag,
            condition: Condition::Ok,
            code: None,
            text: text.into(),
            expunge_ok: true,
            report_modseq: false,
        }
    }

    pub(super) fn with_code(mut self, code: Code) -> Finish {
        self.code = Some(code);
        self
    }

    pub(super) fn no_expunge(mut self) -> Finish {
        self.expunge_ok = false;
        self
    }
}

/// Dialect and extension state switched on by ENABLE (RFC 5161).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Enabled {
    /// IMAP4rev2 (RFC 9051): no `\Recent`, ESEARCH results, UTF-8 names.
    pub(super) rev2: bool,
    /// UTF8=ACCEPT (RFC 9755).
    pub(super) utf8: bool,
    /// CONDSTORE (RFC 7162 §3.1): MODSEQ in every unsolicited FETCH, HIGHESTMODSEQ at
    /// SELECT. Also switched on by the CONDSTORE-enabling commands.
    pub(super) condstore: bool,
    /// QRESYNC (RFC 7162 §3.2), which implies CONDSTORE: VANISHED instead of EXPUNGE, UIDs
    /// in every unsolicited FETCH.
    pub(super) qresync: bool,
    /// UIDONLY (RFC 9586): no message numbers either way; UIDFETCH and VANISHED instead.
    pub(super) uidonly: bool,
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
    enabled: Enabled,
    /// The selected mailbox may have changed since the session last synchronised with it
    /// (its own write, NOOP, a failed synchronisation).
    dirty: bool,
    /// The highest MODSEQ another session's change notice named for the selected mailbox:
    /// the view is behind while its MODSEQ is lower.
    notice: ModSeq,
    /// The `Changes` that came back with the command's request ([`StorageOp::Then`]), to
    /// report when the command ends.
    synced: Option<StorageResult>,
    /// The reply being handled carried a synchronisation made after its own change, so the
    /// change needs no other.
    covered: bool,
    /// The command being dispatched was preceded by a synchronisation (no second one).
    presynced: bool,
    /// The tag and start of the command being run, for INPROGRESS (RFC 9585).
    running: Option<(Tag, Instant)>,
    /// The TLS session's channel-binding data, for SCRAM-SHA-256-PLUS.
    channel_bindings: ChannelBindings,
    /// COMPRESS DEFLATE was answered OK: the driver compresses (RFC 4978).
    compressing: bool,
    /// The account's quota (RFC 9208), as the directory gave it at login; unlimited when the
    /// driver offers no QUOTA ([`SessionConfig::quota`]).
    quota: Quota,
}

impl ImapSession {
    pub(crate) fn new(config: SessionConfig, now: Instant) -> Self {
        let channel_bindings = config.channel_bindings.clone();
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
            enabled: Enabled::default(),
            dirty: false,
            notice: 0,
            synced: None,
            covered: false,
            presynced: false,
            running: None,
            channel_bindings,
            compressing: false,
            quota: Quota::default(),
        };
        let caps = s.capability_list();
        let greeting = format!("{} ready.", s.config.server_name);
        s.untagged(Condition::Ok, Some(Code::Capability(caps)), &greeting);
        s.touch(now);
        s.timers.set(Timer::Login, now + s.limits().login_timeout);
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
            Expect::Command | Expect::SaslResponse(_) | Expect::IdleDone { .. } => true,
            Expect::Reply { .. }
            | Expect::DirectoryReply { .. }
            | Expect::AuthDelay { .. }
            | Expect::TlsHandshake => self.framer.buffered() < self.limits().max_buffered_input,
        }
    }

    pub(crate) fn wants_notices(&self) -> bool {
        matches!(self.expect, Expect::IdleDone { .. })
    }

    pub(crate) fn poll_output(&mut self) -> Output {
        let closed = matches!(self.expect, Expect::Closed);
        self.out.next(closed, self.timers.next())
    }

    pub(crate) fn account(&self) -> Option<&str> {
        match &self.state {
            State::Authenticated { account } | State::Selected { account, .. } => Some(account),
            State::Logout { account } => account.as_deref(),
            State::NotAuthenticated => None,
        }
    }

    pub(crate) fn handle_input(&mut self, input: Input<'_>) -> Result<(), MisuseError> {
        if matches!(self.expect, Expect::Closed) {
            return match input {
                Input::Bytes { .. } | Input::TlsEstablished { .. } => Err(MisuseError::Closed),
                // A reply, timer or notification that raced with the close is harmless.
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
                match std::mem::replace(&mut self.expect, Expect::Command) {
                    Expect::Reply {
                        id: expected,
                        pending,
                    } if expected == id => self.on_reply(pending, reply, now),
                    Expect::DirectoryReply {
                        id: expected,
                        pending,
                    } if expected == id => {
                        self.login_reply(
                            pending,
                            Err(DirectoryError::Internal(WRONG_KIND_REPLY.into())),
                            now,
                        );
                        self.after_step(now);
                        return Err(MisuseError::WrongReplyKind(id));
                    }
                    other => {
                        self.expect = other;
                        return Err(MisuseError::UnknownRequest(id));
                    }
                }
                self.after_step(now);
            }
            Input::Directory { now, id, reply } => {
                match std::mem::replace(&mut self.expect, Expect::Command) {
                    Expect::DirectoryReply {
                        id: expected,
                        pending,
                    } if expected == id => self.login_reply(pending, reply, now),
                    Expect::Reply {
                        id: expected,
                        pending,
                    } if expected == id => {
                        self.on_reply(
                            pending,
                            Err(StorageError::Internal(WRONG_KIND_REPLY.into())),
                            now,
                        );
                        self.after_step(now);
                        return Err(MisuseError::WrongReplyKind(id));
                    }
                    other => {
                        self.expect = other;
                        return Err(MisuseError::UnknownRequest(id));
                    }
                }
                self.after_step(now);
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
                self.after_step(now);
            }
            Input::MailboxChanged {
                now,
                account,
                mailbox,
                modseq,
            } => {
                self.mailbox_changed(account, mailbox, modseq, now);
            }
            Input::PeerClosed { .. } => self.close(),
            Input::Shutdown { now } => {
                self.shutting_down = true;
                self.after_step(now);
            }
        }
        Ok(())
    }

    fn mailbox_changed(&mut self, account: &str, mailbox: MailboxId, modseq: ModSeq, now: Instant) {
        let State::Selected {
            account: mine,
            view,
        } = &self.state
        else {
            return;
        };
        // A notice of unknown MODSEQ says that notices were lost (or a mailbox went): it
        // may concern any mailbox of the account, so the selected one looks.
        if mine != account || (view.id != mailbox && modseq != UNKNOWN_MODSEQ) {
            return;
        }
        self.notice = self.notice.max(modseq);
        // A change the view already holds (this session's own, or one a synchronisation
        // has reported since) needs no look.
        if modseq <= view.modseq {
            return;
        }
        if let Expect::IdleDone { tag } = &self.expect {
            let tag = tag.clone();
            self.idle_sync(tag, now);
        }
    }

    /// Continues after a step that may have unblocked buffered input or a pending shutdown.
    fn after_step(&mut self, now: Instant) {
        if self.shutting_down
            && matches!(
                self.expect,
                Expect::Command
                    | Expect::SaslResponse(_)
                    | Expect::IdleDone { .. }
                    | Expect::TlsHandshake
            )
        {
            self.untagged(Condition::Bye, None, "Server shutting down.");
            self.close();
            return;
        }
        self.process(now);
    }

    /// `* OK [INPROGRESS (tag done goal)]` for a command still waiting on storage
    /// PROGRESS_AFTER after it began, and again every PROGRESS_AFTER while it waits (RFC
    /// 9585 §4 recommends every 10 to 15 seconds). Never for IDLE's own look at the mailbox,
    /// which the client did not ask for.
    fn progress(&mut self, now: Instant) {
        let Expect::Reply { pending, .. } = &self.expect else {
            return;
        };
        let Some((tag, started)) = &self.running else {
            return;
        };
        if matches!(pending, Pending::IdleSync { .. }) {
            return;
        }
        if now < *started + PROGRESS_AFTER {
            // A command that began after the timer was armed for an earlier one.
            let at = *started + PROGRESS_AFTER;
            self.timers.set(Timer::Progress, at);
            return;
        }
        let (done, goal) = match pending {
            Pending::MultiSearch(p) => p.progress(),
            Pending::Fetch(p) => p.progress(),
            _ => (None, None),
        };
        let details = Progress {
            // §4: NIL for a tag holding "]", which a client could take for the code's end.
            tag: Some(Bytes::copy_from_slice(tag.as_bytes())).filter(|t| !t.contains(&b']')),
            done,
            goal,
        };
        self.untagged(
            Condition::Ok,
            Some(Code::InProgress(Some(details))),
            "Still working.",
        );
        self.timers.set(Timer::Progress, now + PROGRESS_AFTER);
    }

    fn close(&mut self) {
        let account = self.account().map(str::to_string);
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
                self.untagged(Condition::Bye, None, "Autologout; idle for too long.");
                self.close();
            }
            Timer::Login => {
                self.untagged(Condition::Bye, None, "Login timed out.");
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
            Timer::Progress => self.progress(now),
            Timer::IdleKeepalive => {
                if let Expect::IdleDone { tag } = &self.expect {
                    let tag = tag.clone();
                    self.untagged(Condition::Ok, None, "Still here");
                    self.timers.set(
                        Timer::IdleKeepalive,
                        now + self.limits().imap_idle_keepalive,
                    );
                    // Also catches changes a driver without notifications would not report.
                    self.idle_sync(tag, now);
                }
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
            literal_plus: !l.imap_literal_minus,
        }
    }

    /// Runs every complete unit of buffered input the current expectation can consume.
    fn process(&mut self, now: Instant) {
        loop {
            let limits = self.frame_limits();
            let frame = match &self.expect {
                Expect::Command => self.framer.next(Mode::Command, &limits),
                Expect::SaslResponse(_) | Expect::IdleDone { .. } => {
                    let line = FrameLimits {
                        max_line: self.limits().sasl_max_line,
                        ..limits
                    };
                    self.framer.next(Mode::Line, &line)
                }
                _ => return,
            };
            match frame {
                Frame::NeedMore => return,
                Frame::LiteralAnnounced { len, total, tag } => {
                    if !self.framer.names_known_command(limits.max_line) {
                        // RFC 9051 §7.6's example: an unknown command is refused at once,
                        // without asking for its literal (which the client then never sends).
                        self.framer.reject_literal();
                        let tag = tag.and_then(Tag::new);
                        self.bad(tag, None, "Unknown command.");
                    } else if len <= limits.max_literal && total <= limits.max_command {
                        self.framer.accept_literal();
                        self.send(Response::Continue(Bytes::from_static(
                            b"Ready for literal data",
                        )));
                    } else {
                        self.framer.reject_literal();
                        let tag = tag.and_then(Tag::new);
                        self.status(tag, Condition::No, Some(Code::TooBig), "Literal too large.");
                    }
                }
                Frame::Command(bytes) => self.command(bytes, now),
                Frame::Line(line) => match &self.expect {
                    Expect::IdleDone { .. } => self.idle_line(&line, now),
                    _ => self.sasl_response(line, now),
                },
                Frame::Rejected { tag, why } => {
                    let tag = tag.and_then(Tag::new);
                    let text = match why {
                        Rejection::LineTooLong => "Command line too long.",
                        Rejection::TooLarge => "Command too large.",
                        Rejection::OverLiteralMinus => {
                            "Non-synchronizing literals carry at most 4096 octets."
                        }
                    };
                    match std::mem::replace(&mut self.expect, Expect::Command) {
                        Expect::SaslResponse(state) => {
                            self.status(Some(state.tag), Condition::Bad, None, text);
                        }
                        Expect::IdleDone { tag } => {
                            self.timers.clear(Timer::IdleKeepalive);
                            self.status(Some(tag), Condition::Bad, None, text);
                        }
                        // A well-formed command refused for its size, as a synchronising
                        // literal over the limit is (RFC 7888 §4 allows BAD or NO); sent as
                        // soon as the literal is announced, while its octets are skipped.
                        _ if why == Rejection::TooLarge => {
                            self.status(tag, Condition::No, Some(Code::TooBig), text);
                        }
                        _ => self.bad(tag, Some(Code::TooBig), text),
                    }
                }
                Frame::Hostile => {
                    self.untagged(
                        Condition::Bye,
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

    fn command(&mut self, bytes: Bytes, now: Instant) {
        let line = match decode::command(&bytes) {
            Ok(line) => line,
            Err(e) => {
                self.bad(e.tag, None, e.message);
                return;
            }
        };
        self.out.push(Output::Event(Event::Command {
            name: line.command.name(),
        }));
        if !matches!(line.command, Command::Unknown { .. }) {
            self.bad_commands = 0;
        }
        self.running = Some((line.tag.clone(), now));
        self.dispatch(line, now);
    }

    /// Runs one command in the current state (RFC 9051 §6: which commands each state allows).
    fn dispatch(&mut self, line: CommandLine, now: Instant) {
        let CommandLine { tag, command } = line;
        let authenticated = matches!(
            self.state,
            State::Authenticated { .. } | State::Selected { .. }
        );
        let selected = matches!(self.state, State::Selected { .. });
        match command {
            Command::Capability => {
                let caps = self.capability_list();
                self.send(Response::Data(Data::Capability(caps)));
                self.finish(Finish::ok(tag, "CAPABILITY completed."));
            }
            Command::Noop => {
                // NOOP is how clients poll: always look at the mailbox.
                self.dirty = true;
                self.finish(Finish::ok(tag, "NOOP completed."));
            }
            Command::Logout => {
                self.out.push(Output::Event(Event::LoggedOut));
                self.untagged(Condition::Bye, None, "Logging out.");
                self.status(Some(tag), Condition::Ok, None, "LOGOUT completed.");
                self.close();
            }
            Command::Id(_) => {
                self.send(Response::Data(Data::Id(Some(vec![
                    (
                        Bytes::from_static(b"name"),
                        Some(Bytes::from_static(b"tern")),
                    ),
                    (
                        Bytes::from_static(b"version"),
                        Some(Bytes::from_static(env!("CARGO_PKG_VERSION").as_bytes())),
                    ),
                ]))));
                self.finish(Finish::ok(tag, "ID completed."));
            }
            Command::StartTls if !authenticated => self.starttls(tag),
            Command::Login { username, password } if !authenticated => {
                self.login(tag, username, password)
            }
            Command::Authenticate {
                mechanism,
                initial_response,
            } if !authenticated => {
                self.authenticate_command(tag, &mechanism, initial_response, now)
            }
            Command::StartTls | Command::Login { .. } | Command::Authenticate { .. } => {
                self.bad(Some(tag), None, "Already authenticated.")
            }
            Command::Unknown { .. } => self.bad(Some(tag), None, "Unknown command."),
            _ if !authenticated => self.bad(Some(tag), None, "Please authenticate first."),
            ref command if self.enabled.uidonly && uses_message_numbers(command) => self.bad(
                Some(tag),
                Some(Code::UidRequired),
                "Message numbers are not allowed once UIDONLY is enabled.",
            ),
            Command::Enable(caps) if !selected => self.enable(tag, &caps),
            Command::Enable(_) => {
                // RFC 5161 §3.1: ENABLE is valid only in the authenticated state.
                self.bad(
                    Some(tag),
                    None,
                    "ENABLE is not allowed in the selected state.",
                )
            }
            Command::Compress { mechanism } if self.config.compression => {
                self.compress(tag, &mechanism)
            }
            Command::Namespace => {
                self.send(Response::Data(Data::Namespace {
                    personal: Some(vec![(Bytes::new(), Some(b'/'))]),
                    other: None,
                    shared: None,
                }));
                self.finish(Finish::ok(tag, "NAMESPACE completed."));
            }
            Command::Select { mailbox, params } => self.select(tag, &mailbox, &params, false),
            Command::Examine { mailbox, params } => self.select(tag, &mailbox, &params, true),
            Command::Create {
                mailbox,
                special_use,
            } => self.create(tag, &mailbox, &special_use),
            Command::Delete { mailbox } => self.delete(tag, &mailbox),
            Command::Rename { from, to } => self.rename(tag, &from, &to),
            Command::Subscribe { mailbox } => self.subscribe(tag, &mailbox, true),
            Command::Unsubscribe { mailbox } => self.subscribe(tag, &mailbox, false),
            Command::List {
                select,
                reference,
                patterns,
                returns,
            } => self.list(tag, select, &reference, &patterns, returns),
            Command::Lsub { reference, pattern } => self.lsub(tag, &reference, &pattern),
            Command::Status { mailbox, items } => self.status_command(tag, &mailbox, items),
            Command::Append { mailbox, messages } => self.append(tag, &mailbox, messages),
            Command::Idle => self.idle(tag, now),
            Command::Check if selected => {
                self.dirty = true;
                self.finish(Finish::ok(tag, "CHECK completed."));
            }
            Command::Close if selected => self.close_mailbox(tag, true),
            Command::Unselect if selected => self.close_mailbox(tag, false),
            Command::Unauthenticate if self.config.imap_unauthenticate => {
                self.unauthenticate(tag, now)
            }
            Command::Expunge if selected => self.expunge(tag, None),
            Command::UidExpunge(set) if selected => self.expunge(tag, Some(set)),
            Command::Search {
                uid,
                returns,
                program,
            } if selected => self.search(tag, uid, returns, program),
            Command::Sort {
                uid,
                returns,
                criteria,
                program,
            } if selected => self.sort(tag, uid, returns, &criteria, program),
            Command::ESearch {
                sources,
                returns,
                program,
            } => self.esearch(tag, sources, returns, program),
            Command::GetMetadata {
                options,
                mailbox,
                entries,
            } => self.get_metadata(tag, options, &mailbox, &entries),
            Command::SetMetadata { mailbox, entries } => self.set_metadata(tag, &mailbox, &entries),
            Command::Thread {
                uid,
                algorithm,
                program,
            } if selected => self.thread(tag, uid, &algorithm, program),
            Command::Fetch {
                uid,
                set,
                items,
                modifiers,
            } if selected => self.fetch(tag, uid, set, items, modifiers),
            Command::Store {
                uid,
                set,
                unchanged_since,
                mode,
                silent,
                flags,
            } if selected => self.store(tag, uid, set, unchanged_since, mode, silent, flags),
            Command::Copy { uid, set, mailbox } if selected => {
                self.copy_move(tag, uid, set, &mailbox, false)
            }
            Command::Move { uid, set, mailbox } if selected => {
                self.copy_move(tag, uid, set, &mailbox, true)
            }
            Command::Replace {
                uid,
                target,
                mailbox,
                message,
            } if selected => self.replace(tag, uid, target, &mailbox, message),
            Command::GetQuota { root } if self.config.quota => self.get_quota(tag, &root),
            Command::GetQuotaRoot { mailbox } if self.config.quota => {
                self.get_quota_root(tag, &mailbox)
            }
            Command::SetQuota { .. } if self.config.quota => self.set_quota(tag),
            Command::Check
            | Command::Close
            | Command::Unselect
            | Command::Expunge
            | Command::UidExpunge(_)
            | Command::Search { .. }
            | Command::Sort { .. }
            | Command::Thread { .. }
            | Command::Fetch { .. }
            | Command::Store { .. }
            | Command::Copy { .. }
            | Command::Move { .. }
            | Command::Replace { .. } => self.bad(Some(tag), None, "No mailbox selected."),
            _ => self.bad(Some(tag), None, "Command not supported."),
        }
    }

    fn on_reply(&mut self, pending: Pending, reply: StorageResult, now: Instant) {
        let reply = match reply {
            Ok(StorageReply::Then { first, then }) => {
                self.synced = Some(*then);
                self.covered = true;
                *first
            }
            other => other,
        };
        self.on_reply_part(pending, reply, now);
        self.covered = false;
    }

    fn on_reply_part(&mut self, pending: Pending, reply: StorageResult, now: Instant) {
        match pending {
            Pending::Mailbox(p) => self.mailbox_reply(p, reply),
            Pending::Message(p) => self.message_reply(p, reply),
            Pending::Fetch(p) => self.fetch_reply(p, reply),
            Pending::Search(p) => self.search_reply(p, reply),
            Pending::Thread(p) => self.thread_reply(p, reply),
            Pending::Quota(p) => self.quota_reply(p, reply),
            Pending::Sync(finish) => {
                self.apply_sync(reply, finish.expunge_ok);
                self.write_finish(finish);
            }
            Pending::IdleSync { tag } => {
                self.apply_sync(reply, true);
                if !matches!(self.expect, Expect::Closed) {
                    self.expect = Expect::IdleDone { tag };
                }
            }
            Pending::Resync(p) => self.resync_reply(p, reply),
            Pending::MultiSearch(p) => self.multisearch_reply(p, reply),
            Pending::Metadata(p) => self.metadata_reply(p, reply),
            Pending::PreSync(line) => {
                self.apply_sync(reply, false);
                if matches!(self.state, State::Selected { .. }) {
                    self.presynced = true;
                    self.dispatch(*line, now);
                    self.presynced = false;
                } else {
                    self.status(Some(line.tag), Condition::No, None, "Mailbox is gone.");
                }
            }
        }
    }

    /// Issues a storage request; `pending` says what to do with the reply.
    fn request(&mut self, op: StorageOp, pending: Pending) {
        let op = self.with_sync(op);
        self.request_alone(op, pending);
    }

    /// Issues a storage request without a synchronisation joined to it: for a command that
    /// ends the selection (CLOSE), whose synchronisation would claim `\Recent` for a view
    /// about to go, and for a FETCH batch with more batches to come.
    fn request_alone(&mut self, op: StorageOp, pending: Pending) {
        // Armed once, not per request (moving a deadline earlier costs the driver a timer
        // change): it fires PROGRESS_AFTER into the first command that waits on storage,
        // and is re-armed only while commands keep waiting.
        if !self.timers.is_set(Timer::Progress) {
            if let Some((_, started)) = &self.running {
                self.timers.set(Timer::Progress, *started + PROGRESS_AFTER);
            }
        }
        let id = self.ids.next();
        self.expect = Expect::Reply { id, pending };
        self.out.push(Output::Storage(StorageRequest { id, op }));
    }

    /// Issues a directory request; `pending` says what to do with the reply.
    fn ask_directory(&mut self, op: DirectoryOp, pending: auth::Pending) {
        let id = self.ids.next();
        self.expect = Expect::DirectoryReply { id, pending };
        self.out
            .push(Output::Directory(DirectoryRequest { id, op }));
    }

    /// Ends a command: synchronises with the selected mailbox first when it may have changed,
    /// then sends the tagged response.
    pub(super) fn finish(&mut self, finish: Finish) {
        // A synchronisation made with the command's request is this command's look at the
        // mailbox (as Dovecot's at the end of each command): changes notified since wait
        // for the next command, which asks with its request. Only this session's own later
        // change, or a failed look, needs another now.
        let looked = match self.synced.take() {
            Some(synced) => {
                self.apply_sync(synced, finish.expunge_ok);
                true
            }
            None => false,
        };
        if self.dirty || (!looked && self.needs_sync()) {
            if let Some(op) = self.take_sync() {
                self.request(op, Pending::Sync(finish));
                return;
            }
        }
        self.write_finish(finish);
    }

    fn write_finish(&mut self, mut finish: Finish) {
        if finish.expunge_ok {
            self.flush_expunges();
        }
        if finish.report_modseq && finish.code.is_none() {
            finish.code = self
                .selected_view()
                .map(|v| Code::HighestModSeq(v.announced_modseq()));
        }
        self.status(
            Some(finish.tag),
            finish.condition,
            finish.code,
            &finish.text,
        );
    }

    /// Maps a storage failure to the response code RFC 9051 §7.1 and RFC 5530 name for it.
    pub(super) fn storage_failed(&mut self, tag: Tag, error: &StorageError) {
        let (code, text): (Code, &str) = match error {
            StorageError::NoSuchMailbox => (Code::NonExistent, "Mailbox does not exist."),
            StorageError::AlreadyExists => (Code::AlreadyExists, "Mailbox already exists."),
            StorageError::IntoItself => (Code::Cannot, "Cannot rename a mailbox into itself."),
            StorageError::HasChildren => (Code::HasChildren, "Mailbox has children."),
            StorageError::OverQuota => (Code::OverQuota, "Quota exceeded."),
            StorageError::InUse => (Code::InUse, "In use by another session."),
            // RFC 5530 §3: another session expunged it; a NOOP shows the client.
            StorageError::NoSuchMessage => (Code::ExpungeIssued, "Message was expunged."),
            StorageError::Limit(kind) => (Code::Limit, limit_text(*kind)),
            StorageError::Unavailable(_) => (Code::Unavailable, TEMPORARY_FAILURE),
            _ => (Code::ServerBug, INTERNAL_ERROR),
        };
        self.status(Some(tag), Condition::No, Some(code), text);
    }

    /// A mailbox command the protocol's rules refuse before storage is asked.
    pub(super) fn refused(&mut self, tag: Tag, refusal: Refusal) {
        let (code, text) = match refusal {
            Refusal::InboxExists => (Code::AlreadyExists, "INBOX always exists."),
            Refusal::InboxPermanent => (Code::Cannot, "INBOX cannot be deleted."),
        };
        self.no(tag, Some(code), text);
    }

    /// A reply of the wrong kind: a driver or store bug, answered as SERVERBUG.
    pub(super) fn unexpected(&mut self, tag: Tag) {
        self.storage_failed(tag, &StorageError::Internal("unexpected reply".into()));
    }

    pub(super) fn encode_options(&self) -> EncodeOptions {
        EncodeOptions {
            utf8: self.enabled.rev2 || self.enabled.utf8,
        }
    }

    pub(super) fn send(&mut self, response: Response) {
        let opts = self.encode_options();
        encode::response(self.out.bytes(), &response, &opts);
    }

    pub(super) fn status(
        &mut self,
        tag: Option<Tag>,
        condition: Condition,
        code: Option<Code>,
        text: &str,
    ) {
        // A command that ends other than through `finish` still reports what its request's
        // synchronisation found, before its tagged response (EXPUNGEs wait: RFC 9051 §7.5.1).
        if tag.is_some() {
            if let Some(synced) = self.synced.take() {
                self.apply_sync(synced, false);
            }
            self.out.push(Output::Event(Event::Answered {
                outcome: match condition {
                    Condition::Ok => Completion::Ok,
                    Condition::No => Completion::No,
                    _ => Completion::Bad,
                },
                code: code.as_ref().map(encode::code_text),
                text: text.to_string(),
            }));
        }
        self.send(Response::Status(StatusResponse {
            tag,
            condition,
            code,
            text: text.to_string(),
        }));
    }

    pub(super) fn untagged(&mut self, condition: Condition, code: Option<Code>, text: &str) {
        self.status(None, condition, code, text);
    }

    pub(super) fn no(&mut self, tag: Tag, code: Option<Code>, text: &str) {
        self.status(Some(tag), Condition::No, code, text);
    }

    fn bad(&mut self, tag: Option<Tag>, code: Option<Code>, text: &str) {
        self.status(tag, Condition::Bad, code, text);
        self.bad_commands += 1;
        if self.bad_commands >= MAX_BAD_COMMANDS {
            self.untagged(Condition::Bye, None, "Too many invalid commands.");
            self.close();
        }
    }

    fn starttls(&mut self, tag: Tag) {
        if self.tls_active || self.config.transport != Transport::StartTlsAvailable {
            self.bad(Some(tag), None, "TLS is already active or not available.");
            return;
        }
        self.status(Some(tag), Condition::Ok, None, "Begin TLS negotiation now.");
        // RFC 9051 §6.2.1: bytes pipelined after STARTTLS are an injection attempt.
        self.framer.clear();
        self.expect = Expect::TlsHandshake;
        self.out.push(Output::StartTls);
    }

    /// UNAUTHENTICATE (RFC 8437 §3): everything the login brought goes; TLS and the failed-login
    /// count stay with the connection. Never NO: a client may have pipelined its next login.
    fn unauthenticate(&mut self, tag: Tag, now: Instant) {
        if self.compressing {
            // §4.1 wants the compression layer gone after the OK, and DEFLATE cannot be undone
            // in the middle of a stream: the connection ends instead (§3 allows BYE), so the
            // client logs in again on a new one.
            self.untagged(
                Condition::Bye,
                None,
                "Compression cannot be turned off; log in again on a new connection.",
            );
            self.close();
            return;
        }
        // Like UNSELECT: the selection ends without expunging, and pending updates are not
        // sent (the view and its saved SEARCHRES result go with it, RFC 8437 §4.1).
        self.deselect();
        self.state = State::NotAuthenticated;
        self.quota = Quota::default();
        // §4.1: whatever ENABLE switched on ceases to be enabled.
        self.enabled = Enabled::default();
        self.out.push(Output::Event(Event::Unauthenticated));
        // Not authenticated again, so bounded again by the login timeout.
        self.timers
            .set(Timer::Login, now + self.limits().login_timeout);
        self.status(Some(tag), Condition::Ok, None, "UNAUTHENTICATE completed.");
    }

    /// RFC 4978 §3. The OK is the last uncompressed output; the driver compresses everything
    /// after it (both directions) once it sees [`Output::StartCompression`].
    fn compress(&mut self, tag: Tag, mechanism: &[u8]) {
        if !mechanism.eq_ignore_ascii_case(b"DEFLATE") {
            self.bad(Some(tag), None, "Unknown compression mechanism.");
            return;
        }
        if self.compressing {
            // RFC 4978 allows BAD or NO here; Dovecot answers NO [COMPRESSIONACTIVE].
            self.no(
                tag,
                Some(Code::CompressionActive),
                "DEFLATE is active already.",
            );
            return;
        }
        // Not `finish`: a synchronisation would put storage between the command and its OK,
        // and nothing may come between the OK and the switch.
        self.status(Some(tag), Condition::Ok, None, "DEFLATE active.");
        self.compressing = true;
        // §3: the client sends nothing after COMPRESS until it has seen the OK, so octets
        // already here were sent too early, compressed or not: they are not acted on.
        self.framer.clear();
        self.out.push(Output::StartCompression);
    }

    fn enable(&mut self, tag: Tag, caps: &[Bytes]) {
        let mut newly = Vec::new();
        for cap in caps {
            // RFC 5161 §3.1: unknown capabilities are ignored, not refused.
            if cap.eq_ignore_ascii_case(b"IMAP4rev2") && !self.enabled.rev2 {
                self.enabled.rev2 = true;
                newly.push(Bytes::from_static(b"IMAP4rev2"));
            } else if cap.eq_ignore_ascii_case(b"UTF8=ACCEPT") && !self.enabled.utf8 {
                self.enabled.utf8 = true;
                newly.push(Bytes::from_static(b"UTF8=ACCEPT"));
            } else if cap.eq_ignore_ascii_case(b"CONDSTORE") && !self.enabled.condstore {
                // ENABLE is refused in the selected state, so no HIGHESTMODSEQ is due here.
                self.enabled.condstore = true;
                newly.push(Bytes::from_static(b"CONDSTORE"));
            } else if cap.eq_ignore_ascii_case(b"QRESYNC") && !self.enabled.qresync {
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                self.enabled.qresync = true;
                self.enabled.condstore = true;
                newly.push(Bytes::from_static(b"QRESYNC"));
            } else if cap.eq_ignore_ascii_case(b"UIDONLY") && !self.enabled.uidonly {
                self.enabled.uidonly = true;
                newly.push(Bytes::from_static(b"UIDONLY"));
            }
        }
        self.send(Response::Data(Data::Enabled(newly)));
        self.finish(Finish::ok(tag, "ENABLE completed."));
    }

    /// LITERAL+ or LITERAL-, whichever the limits choose (RFC 7888 §5: never both).
    fn literal_capability(&self) -> &'static str {
        if self.limits().imap_literal_minus {
            "LITERAL-"
        } else {
            "LITERAL+"
        }
    }

    /// The capability list for the current state and transport (RFC 9051 §7.2.2).
    fn capability_list(&self) -> Vec<Bytes> {
        let mut caps: Vec<&'static str> = vec!["IMAP4rev1", "IMAP4rev2"];
        match self.state {
            State::NotAuthenticated => {
                caps.extend(["SASL-IR", self.literal_capability(), "ID", "ENABLE"]);
                if !self.tls_active && self.config.transport == Transport::StartTlsAvailable {
                    caps.push("STARTTLS");
                }
                if self.channel_bindings.available() {
                    caps.push("AUTH=SCRAM-SHA-256-PLUS");
                }
                caps.push("AUTH=SCRAM-SHA-256");
                if self.plaintext_ok() {
                    caps.extend(["AUTH=PLAIN", "AUTH=LOGIN"]);
                } else {
                    caps.push("LOGINDISABLED");
                }
            }
            _ => caps.extend([
                self.literal_capability(),
                "ID",
                "ENABLE",
                "IDLE",
                "NAMESPACE",
                "UNSELECT",
                // RFC 8437 §3: advertised only after authentication, where it is valid.
                "UNAUTHENTICATE",
                "UIDPLUS",
                "ESEARCH",
                "SEARCHRES",
                "SORT",
                "SORT=DISPLAY",
                "THREAD=ORDEREDSUBJECT",
                "THREAD=REFERENCES",
                "THREAD=REFS",
                "ESORT",
                "PARTIAL",
                "LIST-EXTENDED",
                "LIST-STATUS",
                "MOVE",
                "BINARY",
                "SPECIAL-USE",
                "CREATE-SPECIAL-USE",
                "STATUS=SIZE",
                "CHILDREN",
                "MULTIAPPEND",
                "REPLACE",
                "UTF8=ACCEPT",
                "WITHIN",
                // RFC 8474: MAILBOXID, EMAILID and THREADID (never NIL: every message is
                // threaded when stored).
                "OBJECTID",
                "PREVIEW",
                "SAVEDATE",
                // RFC 7162: QRESYNC implies CONDSTORE, which §3.2.2 says to name as well.
                "CONDSTORE",
                "QRESYNC",
                "UIDONLY",
                "MULTISEARCH",
                // RFC 5464: server and mailbox entries (METADATA-SERVER would be the first
                // alone).
                "METADATA",
                // RFC 9585: sent for any command that waits on storage for long.
                "INPROGRESS",
            ]),
        }
        if !self.config.imap_unauthenticate {
            caps.retain(|c| *c != "UNAUTHENTICATE");
        }
        // RFC 9208 §3.1.1: every resource handled is named. No QUOTASET: limits are the
        // administrator's (`quota.rs`).
        if self.config.quota && !matches!(self.state, State::NotAuthenticated) {
            caps.extend(["QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"]);
        }
        let mut out: Vec<Bytes> = caps
            .into_iter()
            .map(|c| Bytes::from_static(c.as_bytes()))
            .collect();
        // RFC 4978 §3: offered once COMPRESS is possible (after authentication), until used.
        if !matches!(self.state, State::NotAuthenticated)
            && self.config.compression
            && !self.compressing
        {
            out.push(Bytes::from_static(b"COMPRESS=DEFLATE"));
        }
        if !matches!(self.state, State::NotAuthenticated) {
            out.push(Bytes::from(format!(
                "APPENDLIMIT={}",
                self.limits().imap_max_literal
            )));
        }
        out
    }
}

/// What a client reads when a bound stops its command (RFC 5530 `LIMIT`).
fn limit_text(kind: LimitKind) -> &'static str {
    match kind {
        LimitKind::Mailboxes => "too many mailboxes",
        LimitKind::SearchWork => "Search too expensive, simplify it.",
        LimitKind::MessageSize => "message too large to store",
        LimitKind::AccountName => "account name too long",
        LimitKind::UidValidity => "UIDVALIDITY exhausted",
        LimitKind::Uids => "UIDs exhausted",
        LimitKind::MetadataEntries => "too many METADATA entries",
    }
}

/// Whether a command names messages by number (RFC 9586 §3): the non-UID forms of every
/// command that takes a sequence set, a sequence-set key anywhere in a UID SEARCH, UID SORT or
/// UID THREAD (§3.5, §3.8), and QRESYNC's message sequence match data (§3.7). `$` is not a
/// number: it names the saved result, whatever it holds.
fn uses_message_numbers(command: &Command) -> bool {
    match command {
        Command::Fetch { uid, .. }
        | Command::Store { uid, .. }
        | Command::Copy { uid, .. }
        | Command::Move { uid, .. }
        | Command::Replace { uid, .. } => !uid,
        Command::Search { uid, program, .. }
        | Command::Sort { uid, program, .. }
        | Command::Thread { uid, program, .. } => {
            !uid || program.criteria.iter().any(names_numbers)
        }
        // RFC 7377 §2: a UID SEARCH of each source.
        Command::ESearch { program, .. } => program.criteria.iter().any(names_numbers),
        Command::Select { params, .. } | Command::Examine { params, .. } => {
            params.iter().any(|p| {
                matches!(
                    p,
                    SelectParam::QResync {
                        seq_match: Some(_),
                        ..
                    }
                )
            })
        }
        _ => false,
    }
}

/// Whether a search key has a message-number set in it.
fn names_numbers(key: &SearchKey) -> bool {
    match key {
        SearchKey::SequenceSet(SequenceSet::Ranges(_)) => true,
        SearchKey::Not(k) => names_numbers(k),
        SearchKey::Or(a, b) => names_numbers(a) || names_numbers(b),
        SearchKey::And(keys) => keys.iter().any(names_numbers),
        _ => false,
    }
}
