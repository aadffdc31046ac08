//! A ready-made drain loop for drivers whose storage and directory answer synchronously.

use std::time::Instant;

use crate::directory::Directory;
use crate::session::{Input, MisuseError, Output, Session};
use crate::store::Store;

/// Octets read from a body at a time when [`pump`] streams one.
const STREAM_CHUNK: usize = 64 * 1024;

/// Why [`pump`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// Waiting for input or this deadline.
    Until(Instant),
    /// The driver must flush, run a TLS handshake and feed [`Input::TlsEstablished`].
    StartTls,
    /// The driver must flush, then compress and decompress everything from now on
    /// ([`Output::StartCompression`]).
    StartCompression,
    /// The session is over: flush and close.
    Close,
}

/// Drains `session`: transmits go to `wire`, storage requests run on `store` and login
/// requests on `directory` at once, and events are dropped. Returns what the session waits
/// for.
pub fn pump<S: Store + ?Sized, D: Directory + ?Sized>(
    session: &mut Session,
    store: &mut S,
    directory: &mut D,
    now: Instant,
    wire: &mut dyn FnMut(&[u8]),
) -> Result<Blocked, MisuseError> {
    loop {
        match session.poll_output() {
            Output::Transmit(bytes) => wire(&bytes),
            Output::TransmitBody(stream) => {
                if stream.write_all(STREAM_CHUNK, wire).is_err() {
                    // The peer got part of what was promised: the connection cannot go on.
                    return Ok(Blocked::Close);
                }
            }
            Output::Storage(request) => {
                let reply = store.execute(request.op);
                session.handle_input(Input::Storage {
                    now,
                    id: request.id,
                    reply,
                })?;
            }
            Output::Directory(request) => {
                let reply = directory.answer(request.op);
                session.handle_input(Input::Directory {
                    now,
                    id: request.id,
                    reply,
                })?;
            }
            Output::Event(_) => {}
            Output::StartTls => return Ok(Blocked::StartTls),
            Output::StartCompression => return Ok(Blocked::StartCompression),
            Output::Close => return Ok(Blocked::Close),
            Output::Timeout(at) => return Ok(Blocked::Until(at)),
        }
    }
}
