//! `tern-core`: the sans-IO protocol core of the tern mail-access server.
//!
//! Bytes go in, response bytes and requests come out. The core owns no socket, file, thread or
//! clock, so any runtime can drive it: the `tern` binary drives it with smol, the
//! `blocking_server` example with `std::net` threads, and the conformance suite with a virtual
//! clock.
//!
//! # The run-loop contract
//!
//! 1. Create a [`Session`] per connection. Its greeting is waiting in the output.
//! 2. Whenever something happens — bytes arrive, a deadline passes, a storage or directory
//!    reply is ready, a TLS handshake finishes, the peer goes away — call
//!    [`Session::handle_input`] with the current time.
//! 3. Then call [`Session::poll_output`] until it returns [`Output::Timeout`] (nothing more to
//!    do until input or that instant) or [`Output::Close`]. Act on each output in order:
//!    [`Output::Transmit`] bytes are written to the peer, and so is the body range of an
//!    [`Output::TransmitBody`], a bounded chunk at a time; an [`Output::Storage`] request is run
//!    against a [`Store`] and its reply fed back as [`Input::Storage`]; an
//!    [`Output::Directory`] request (a login: password check, SCRAM keys, the account's
//!    connection limit) is answered by a [`Directory`] and fed back as [`Input::Directory`]; at
//!    most one request of either kind is in flight per session; [`Output::StartTls`] means
//!    flush, upgrade, feed [`Input::TlsEstablished`].
//! 4. Read from the peer only while [`Session::wants_read`] is true: that is the back-pressure
//!    that bounds a session's memory when a client pipelines without waiting.
//!
//! Client mistakes never surface as `Err`: they are answered on the wire. [`MisuseError`] only
//! reports a driver bug, such as a reply to a request that was never made.
//!
//! ```
//! use std::time::Instant;
//! use tern_core::{
//!     Directory, Input, MemDirectory, MemStore, Output, Protocol, Session, SessionConfig, Store,
//!     Transport,
//! };
//!
//! let mut store = MemStore::new();
//! let mut directory = MemDirectory::new();
//! directory.add_user("alice", "secret");
//! let mut config = SessionConfig::new(Protocol::Imap, Transport::Plaintext);
//! config.plaintext_auth_without_tls = true; // as for a loopback peer
//! let now = Instant::now();
//! let mut session = Session::new(config, now);
//! let mut wire = Vec::new();
//! let mut input: &[u8] = b"a1 LOGIN alice secret\r\na2 LOGOUT\r\n";
//! loop {
//!     match session.poll_output() {
//!         Output::Transmit(bytes) => wire.extend_from_slice(&bytes),
//!         Output::TransmitBody(stream) => {
//!             stream.write_all(64 * 1024, &mut |b| wire.extend_from_slice(b)).unwrap()
//!         }
//!         Output::Storage(req) => {
//!             let reply = store.execute(req.op);
//!             session.handle_input(Input::Storage { now, id: req.id, reply }).unwrap();
//!         }
//!         Output::Directory(req) => {
//!             let reply = directory.answer(req.op);
//!             session.handle_input(Input::Directory { now, id: req.id, reply }).unwrap();
//!         }
//!         Output::Timeout(_) => {
//!             // Drained: feed the next input (here, everything at once).
//!             let data = std::mem::take(&mut input);
//!             session.handle_input(Input::Bytes { now, data }).unwrap();
//!         }
//!         Output::Close => break,
//!         _ => {}
//!     }
//! }
//! let wire = String::from_utf8(wire).unwrap();
//! assert!(wire.starts_with("* OK [CAPABILITY IMAP4rev1"));
//! assert!(wire.contains("a1 OK [CAPABILITY"));
//! assert!(wire.ends_with("* BYE Logging out.\r\na2 OK LOGOUT completed.\r\n"));
//! ```
//!
//! # What lives here
//! - [`session`]: the driver-facing API and both protocols' sessions behind it.
//! - [`imap`] and [`pop3`]: command types, framing, grammar and state machines.
//! - [`store`]: storage requests and replies, the [`Store`] trait and [`MemStore`].
//! - [`directory`]: login requests and replies, the [`Directory`] trait and [`MemDirectory`].
//! - [`time`]: timers as a deadline table; [`limits`]: every bound with its reason.
//! - [`sasl`]: PLAIN, LOGIN and SCRAM-SHA-256(-PLUS) as step machines, and SASLprep.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
pub mod directory;
pub mod drive;
pub mod imap;
pub mod limits;
mod lines;
pub mod lmtp;
pub mod mail;
mod outbox;
pub mod pop3;
pub mod sasl;
pub mod secret;
pub mod session;
pub mod store;
pub mod time;

pub use directory::{
    AuthOutcome, Directory, DirectoryError, DirectoryOp, DirectoryReply, DirectoryRequest,
    DirectoryResult, MemDirectory,
};
pub use limits::Limits;
pub use secret::Secret;
pub use session::{
    Completion, Event, Input, MisuseError, Output, Protocol, Session, SessionConfig, Transport,
};
pub use store::{
    MemStore, RequestId, StorageError, StorageOp, StorageReply, StorageRequest, StorageResult,
    Store,
};
pub use time::Timer;
