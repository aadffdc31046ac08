//! A thread-per-connection IMAP and POP3 server on blocking `std::net` sockets.
//!
//! It drives the same sans-IO core as the smol runtime, which is the point: nothing in
//! `tern-core` assumes an async runtime. It speaks plaintext only, so it listens on loopback
//! only. `tests/blocking_example.rs` reuses [`serve`].
//!
//! ```text
//! cargo run -p tern-core --example blocking_server -- [IMAP_PORT [POP3_PORT [USER PASSWORD]]]
//! ```

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tern_core::drive::{pump, Blocked};
use tern_core::{
    Directory, DirectoryOp, DirectoryResult, Input, Limits, MemDirectory, MemStore, Protocol,
    Session, SessionConfig, StorageOp, StorageResult, Store, Transport,
};

/// What every connection shares: the mail and the users.
#[derive(Debug)]
pub struct Backing {
    /// The mail.
    pub store: Mutex<MemStore>,
    /// Who may log in.
    pub directory: Mutex<MemDirectory>,
}

impl Default for Backing {
    /// No mail and no users yet.
    fn default() -> Backing {
        Backing {
            store: Mutex::new(MemStore::new()),
            directory: Mutex::new(MemDirectory::new()),
        }
    }
}

/// Accepts connections forever, one thread each, with the default limits.
pub fn serve(listener: TcpListener, protocol: Protocol, backing: Arc<Backing>) -> io::Result<()> {
    serve_with(listener, protocol, Limits::default(), backing)
}

/// [`serve`] with chosen limits, so tests can shorten the timers.
pub fn serve_with(
    listener: TcpListener,
    protocol: Protocol,
    limits: Limits,
    backing: Arc<Backing>,
) -> io::Result<()> {
    // Passwords cross these sockets in the clear.
    if !listener.local_addr()?.ip().is_loopback() {
        return Err(io::Error::other(
            "refusing to serve plaintext beyond loopback",
        ));
    }
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            // A failed accept (a connection reset while queued, a full fd table) ends that
            // connection only, not the server.
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let (limits, backing) = (limits.clone(), Arc::clone(&backing));
        thread::spawn(move || {
            if let Err(e) = connection(stream, protocol, limits, &backing) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

/// Locks the shared store (or directory) per request rather than per pump, so sessions do
/// not queue behind each other's protocol work.
struct Shared<'a, T>(&'a Mutex<T>);

impl Directory for Shared<'_, MemDirectory> {
    fn answer(&mut self, op: DirectoryOp) -> DirectoryResult {
        let mut directory = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        directory.answer(op)
    }
}

impl Store for Shared<'_, MemStore> {
    fn execute(&mut self, op: StorageOp) -> StorageResult {
        // A thread that panicked mid-request cannot leave a MemStore half-updated.
        let mut store = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        store.execute(op)
    }

    fn take_changes(&mut self) -> Vec<tern_core::store::Changed> {
        // Sessions here learn of other connections' changes when they next poll (NOOP,
        // IDLE's periodic check), so the notifications are simply drained.
        let mut store = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        store.take_changes()
    }
}

#[allow(clippy::disallowed_methods)] // The driver owns the clock; the core only receives it.
fn now() -> Instant {
    Instant::now()
}

fn connection(
    mut stream: TcpStream,
    protocol: Protocol,
    limits: Limits,
    backing: &Backing,
) -> io::Result<()> {
    let mut config = SessionConfig::new(protocol, Transport::Plaintext);
    config.plaintext_auth_without_tls = stream.peer_addr()?.ip().is_loopback();
    config.limits = limits;
    let mut session = Session::new(config, now());
    let mut store = Shared(&backing.store);
    let mut directory = Shared(&backing.directory);
    let mut buf = vec![0; 16 * 1024];
    let mut out = Vec::new();
    loop {
        let blocked = pump(&mut session, &mut store, &mut directory, now(), &mut |b| {
            out.extend_from_slice(b)
        })
        .map_err(io::Error::other)?;
        stream.write_all(&out)?;
        out.clear();
        let deadline = match blocked {
            Blocked::Until(deadline) => deadline,
            // StartTls cannot come from a Transport::Plaintext session; closing is the only
            // safe answer to a driver that cannot upgrade.
            // StartCompression neither: `compression` is off in its config.
            Blocked::Close | Blocked::StartTls | Blocked::StartCompression => {
                // The peer may already be gone; there is nothing left to tell it either way.
                let _ = stream.shutdown(Shutdown::Both);
                return Ok(());
            }
        };
        // A zero read timeout means "block forever" to std, so wait at least 1 ms.
        let wait = deadline
            .saturating_duration_since(now())
            .max(Duration::from_millis(1));
        if !session.wants_read() {
            // Back-pressure: leave the peer's bytes in the kernel until the session catches up.
            thread::sleep(wait);
            session
                .handle_input(Input::Timeout { now: now() })
                .map_err(io::Error::other)?;
            continue;
        }
        stream.set_read_timeout(Some(wait))?;
        let input = match stream.read(&mut buf) {
            Ok(0) => Input::PeerClosed { now: now() },
            Ok(n) => Input::Bytes {
                now: now(),
                data: &buf[..n],
            },
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Input::Timeout { now: now() }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // A reset is the peer going away, as far as the protocol is concerned.
            Err(_) => Input::PeerClosed { now: now() },
        };
        session.handle_input(input).map_err(io::Error::other)?;
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = |i: usize| -> io::Result<u16> {
        args.get(i)
            .map_or(Ok(0), |p| p.parse())
            .map_err(io::Error::other)
    };
    let (imap_port, pop3_port) = (port(0)?, port(1)?);
    let user = args.get(2).map_or("demo", String::as_str);
    let password = args.get(3).map_or("demo", String::as_str);

    let backing = Arc::new(Backing::default());
    backing
        .directory
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .add_user(user, password);

    let imap = TcpListener::bind((Ipv4Addr::LOCALHOST, imap_port))?;
    let pop3 = TcpListener::bind((Ipv4Addr::LOCALHOST, pop3_port))?;
    println!("IMAP listening on {}", imap.local_addr()?);
    println!("POP3 listening on {}", pop3.local_addr()?);
    println!("user {user:?}, password {password:?}");

    let pop3_backing = Arc::clone(&backing);
    let pop3 = thread::spawn(move || serve(pop3, Protocol::Pop3, pop3_backing));
    serve(imap, Protocol::Imap, backing)?;
    pop3.join()
        .map_err(|_| io::Error::other("POP3 listener panicked"))?
}
