//! The one API every driver uses: [`Session`], [`Input`], [`Output`].

use std::time::Instant;

use bytes::Bytes;

use crate::directory::{DirectoryRequest, DirectoryResult};
use crate::limits::Limits;
use crate::store::{BodyStream, RequestId, StorageRequest, StorageResult};
use crate::{imap, lmtp, pop3};

/// Which protocol a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501).
    Imap,
    /// POP3 (RFC 1939, RFC 2449).
    Pop3,
    /// LMTP (RFC 2033): delivery from a mail transfer agent.
    Lmtp,
}

/// The transport security of a connection when the session starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TLS from the first byte (IMAPS, POP3S).
    ImplicitTls,
    /// Plaintext, and the driver can upgrade it: STARTTLS/STLS are offered.
    StartTlsAvailable,
    /// Plaintext with no way to upgrade.
    Plaintext,
}

/// How a session is set up. Construct with [`SessionConfig::new`], then adjust fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The protocol to speak.
    pub protocol: Protocol,
    /// The connection's transport.
    pub transport: Transport,
    /// Whether plaintext mechanisms (LOGIN, USER/PASS, PLAIN) are allowed without TLS. Drivers
    /// set this for loopback peers or when the operator lifted the rule.
    pub plaintext_auth_without_tls: bool,
    /// Bounds and timeouts.
    pub limits: Limits,
    /// Names the server in greetings.
    pub server_name: String,
    /// Channel-binding data of an implicit-TLS connection (STARTTLS supplies its own with
    /// [`Input::TlsEstablished`]).
    pub channel_bindings: crate::sasl::ChannelBindings,
    /// Whether IMAP offers UNAUTHENTICATE (RFC 8437). §8 asks for a way to turn it off: behind
    /// a proxy that only checks the first login, it would let a client log in again past it.
    pub imap_unauthenticate: bool,
    /// How to reach the administrator, a URI (`mailto:`, `tel:`): the read-only METADATA
    /// server entry `/shared/admin` (RFC 5464 §3.2.1.1), absent when `None`.
    pub imap_admin: Option<String>,
    /// Whether the driver can carry out [`Output::StartCompression`]: IMAP then offers
    /// COMPRESS=DEFLATE (RFC 4978). Off by default; a driver without it answers COMPRESS as
    /// an unknown command.
    pub compression: bool,
    /// Whether IMAP offers QUOTA (RFC 9208): the driver's configuration sets quotas, which
    /// the directory hands each login ([`crate::directory::AuthOutcome::Accepted`]). Off by
    /// default: no quota is then shown or enforced by IMAP.
    pub quota: bool,
}

impl SessionConfig {
    /// Defaults for a public server: no plaintext authentication without TLS.
    pub fn new(protocol: Protocol, transport: Transport) -> Self {
        SessionConfig {
            protocol,
            transport,
            plaintext_auth_without_tls: false,
            limits: Limits::default(),
            server_name: "tern".to_string(),
            channel_bindings: crate::sasl::ChannelBindings::default(),
            imap_unauthenticate: true,
            imap_admin: None,
            compression: false,
            quota: false,
        }
    }
}

/// Something that happened to the session, fed in by the driver. Every input carries the
/// current time: the core never reads a clock.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input<'a> {
    /// Octets received from the peer.
    Bytes {
        /// The current time.
        now: Instant,
        /// What arrived, in order.
        data: &'a [u8],
    },
    /// The deadline from the last [`Output::Timeout`] (or a later one) has passed.
    Timeout {
        /// The current time.
        now: Instant,
    },
    /// The reply to an [`Output::Storage`] request.
    Storage {
        /// The current time.
        now: Instant,
        /// The request's id.
        id: RequestId,
        /// What storage answered.
        reply: StorageResult,
    },
    /// The reply to an [`Output::Directory`] request.
    Directory {
        /// The current time.
        now: Instant,
        /// The request's id.
        id: RequestId,
        /// What the directory answered.
        reply: DirectoryResult,
    },
    /// The TLS handshake asked for by [`Output::StartTls`] completed.
    TlsEstablished {
        /// The current time.
        now: Instant,
        /// The new TLS session's channel-binding data (for SCRAM-SHA-256-PLUS).
        channel_bindings: crate::sasl::ChannelBindings,
    },
    /// A mailbox of an account changed (another session or delivery wrote to it); sessions
    /// that have it selected report the change at their next opportunity, or at once while
    /// idling.
    MailboxChanged {
        /// The current time.
        now: Instant,
        /// The account.
        account: &'a str,
        /// The mailbox.
        mailbox: crate::store::MailboxId,
        /// Its HIGHESTMODSEQ once changed ([`crate::store::Changed::modseq`]): a session
        /// whose view has reached it already knows of the change. `UNKNOWN_MODSEQ` (notices
        /// were lost) makes the session look at its selected mailbox, whichever one is named.
        modseq: crate::store::ModSeq,
    },
    /// The peer closed its side, or the connection failed. Nothing more is transmitted, but
    /// the session may still need storage to end (a POP3 session releases its maildrop lock):
    /// keep running its requests and feeding their replies, one at a time as always, until it
    /// outputs [`crate::Output::Close`].
    PeerClosed {
        /// The current time.
        now: Instant,
    },
    /// The server is stopping: say goodbye as the protocol prescribes, once any request in
    /// flight has been answered.
    Shutdown {
        /// The current time.
        now: Instant,
    },
}

/// What the session wants done next; see the crate docs for the loop that drains these.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Write these octets to the peer, in order.
    Transmit(Bytes),
    /// Write a range of a message body to the peer, read a chunk at a time (see
    /// [`BodyStream`]); it comes in order with the transmits around it (after a literal's
    /// `{n}` prefix, before the rest of the response). A driver that cannot read all of it
    /// (the stored body is damaged) must close the connection: the peer was promised the
    /// octets.
    TransmitBody(BodyStream),
    /// Execute this request against storage and feed the reply back with [`Input::Storage`].
    Storage(StorageRequest),
    /// Answer this login request from the directory (users, passwords, SCRAM keys, connection
    /// limits per account) and feed the reply back with [`Input::Directory`]. Like a storage
    /// request, it is the only request in flight.
    Directory(DirectoryRequest),
    /// Flush all transmitted bytes, run the TLS handshake, then feed [`Input::TlsEstablished`].
    StartTls,
    /// Flush all transmitted bytes as they are, then compress everything sent from here on
    /// and decompress everything received (IMAP COMPRESS=DEFLATE, RFC 4978: raw DEFLATE,
    /// RFC 1951, in both directions, inside any TLS layer). The core never sees compressed
    /// octets: the driver inflates before [`Input::Bytes`] and deflates every later
    /// transmit, with a sync flush each time it writes out what it gathered.
    StartCompression,
    /// Something worth a log line.
    Event(Event),
    /// Flush, then close the connection. Every later poll answers `Close` again.
    Close,
    /// Nothing more to do now: wait for input, a reply, or this instant.
    Timeout(Instant),
}

/// Facts a driver may log. None carries a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A command was received (its name only; arguments may hold credentials).
    Command {
        /// The command's name, upper case (`(unknown)` or `(invalid)` for what the parser
        /// did not know): one of a fixed set, so a metrics label never grows with input.
        name: &'static str,
    },
    /// The command last received was answered: IMAP's tagged response, POP3's status line.
    /// Its words are the server's own, never the client's data.
    Answered {
        /// OK, NO or BAD (POP3: `+OK` is `Ok`, `-ERR` is `No`).
        outcome: Completion,
        /// The response code, as sent (`TRYCREATE`, `APPENDUID 7 3`, POP3's `AUTH`).
        code: Option<String>,
        /// The human-readable text.
        text: String,
    },
    /// A user authenticated.
    LoggedIn {
        /// The account's canonical name.
        account: String,
        /// How: `LOGIN`, `USER`, or a SASL mechanism name.
        mechanism: &'static str,
    },
    /// The session is done with its account (LOGOUT, QUIT): the goodbye follows. A driver
    /// that counts connections per account stops counting this one now, so a client that
    /// reconnects as soon as it reads the goodbye is not refused.
    LoggedOut,
    /// The session gave up its account but goes on, not authenticated (IMAP UNAUTHENTICATE,
    /// RFC 8437): the driver stops counting it against the account, stops delivering the
    /// account's change notices, and counts it as not logged in again. A later `LoggedIn`
    /// may name another account. Comes before the command's OK.
    Unauthenticated,
    /// An LMTP delivery was stored (durably) for a recipient.
    Delivered {
        /// The recipient's account.
        account: String,
        /// The mailbox it went to.
        mailbox: String,
    },
    /// An authentication attempt failed.
    AuthFailed {
        /// The user name the client tried.
        username: String,
        /// How: `LOGIN`, `USER`, or a SASL mechanism name.
        mechanism: &'static str,
    },
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Completion {
    /// Done.
    Ok,
    /// Refused or failed (IMAP NO, POP3 -ERR).
    No,
    /// Not understood or not allowed now (IMAP BAD).
    Bad,
}

impl Completion {
    /// The word for logs and metrics: `ok`, `no`, `bad`.
    pub fn as_str(self) -> &'static str {
        match self {
            Completion::Ok => "ok",
            Completion::No => "no",
            Completion::Bad => "bad",
        }
    }
}

/// A driver bug: input the session cannot have asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MisuseError {
    /// Input arrived after the session asked to close.
    #[error("input after the session closed")]
    Closed,
    /// A storage or directory reply whose id the session did not issue, or is no longer
    /// waiting for.
    #[error("reply {0} does not match the request in flight")]
    UnknownRequest(RequestId),
    /// A storage reply to the directory request in flight, or a directory reply to the
    /// storage request in flight. The session has answered the command as an internal error
    /// and goes on.
    #[error("reply {0} is of the wrong kind for the request in flight")]
    WrongReplyKind(RequestId),
    /// `TlsEstablished` without a preceding `StartTls`.
    #[error("TLS established without a STARTTLS request")]
    UnexpectedTls,
}

/// One connection's protocol state. Create one per accepted connection.
///
/// Call [`Session::handle_input`] whenever something happens, then [`Session::poll_output`]
/// until it returns [`Output::Timeout`] (or [`Output::Close`]).
#[derive(Debug)]
pub struct Session {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Imap(Box<imap::session::ImapSession>),
    Pop3(Box<pop3::session::Pop3Session>),
    Lmtp(Box<lmtp::session::LmtpSession>),
}

impl Session {
    /// Starts a session; its greeting is the first output.
    pub fn new(config: SessionConfig, now: Instant) -> Session {
        let inner = match config.protocol {
            Protocol::Imap => Inner::Imap(Box::new(imap::session::ImapSession::new(config, now))),
            Protocol::Pop3 => Inner::Pop3(Box::new(pop3::session::Pop3Session::new(config, now))),
            Protocol::Lmtp => Inner::Lmtp(Box::new(lmtp::session::LmtpSession::new(config, now))),
        };
        Session { inner }
    }

    /// Feeds one input. Client mistakes are answered on the wire, never returned as errors.
    pub fn handle_input(&mut self, input: Input<'_>) -> Result<(), MisuseError> {
        match &mut self.inner {
            Inner::Imap(s) => s.handle_input(input),
            Inner::Pop3(s) => s.handle_input(input),
            Inner::Lmtp(s) => s.handle_input(input),
        }
    }

    /// The next thing to do. Ends with [`Output::Timeout`] when drained.
    pub fn poll_output(&mut self) -> Output {
        match &mut self.inner {
            Inner::Imap(s) => s.poll_output(),
            Inner::Pop3(s) => s.poll_output(),
            Inner::Lmtp(s) => s.poll_output(),
        }
    }

    /// The authenticated account, once there is one.
    pub fn account(&self) -> Option<&str> {
        match &self.inner {
            Inner::Imap(s) => s.account(),
            Inner::Pop3(s) => s.account(),
            // A delivery session acts for no account of its own.
            Inner::Lmtp(_) => None,
        }
    }

    /// Whether the driver should read more from the peer now. False while input that the
    /// session cannot yet consume has piled up past [`Limits::max_buffered_input`], or after
    /// close.
    pub fn wants_read(&self) -> bool {
        match &self.inner {
            Inner::Imap(s) => s.wants_read(),
            Inner::Pop3(s) => s.wants_read(),
            Inner::Lmtp(s) => s.wants_read(),
        }
    }

    /// Whether a change notice ([`Input::MailboxChanged`]) must reach the session as soon as
    /// it comes: true only while it idles (IMAP IDLE). Otherwise a driver may hold notices
    /// and hand them over just before the next input, the highest MODSEQ per mailbox, which
    /// spares a wake-up per notice while many sessions share a busy mailbox.
    pub fn wants_notices(&self) -> bool {
        match &self.inner {
            Inner::Imap(s) => s.wants_notices(),
            Inner::Pop3(_) | Inner::Lmtp(_) => false,
        }
    }
}

/// What a session answers a reply of the wrong kind with (storage for a directory request or
/// the reverse): the driver's bug, an internal error for the client, and a log line for the
/// administrator through [`MisuseError::WrongReplyKind`].
pub(crate) const WRONG_KIND_REPLY: &str =
    "a reply of the wrong kind (storage for directory or the reverse)";

/// Allocates request ids for one session.
#[derive(Debug, Default)]
pub(crate) struct RequestIds(u64);

impl RequestIds {
    pub(crate) fn next(&mut self) -> RequestId {
        self.0 += 1;
        RequestId(self.0)
    }
}
