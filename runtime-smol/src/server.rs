//! Listeners, the accept loops, and graceful shutdown.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_rustls::TlsAcceptor;
use smol::future::FutureExt as _;
use smol::io::AsyncWriteExt as _;
use smol::stream::StreamExt as _;
use smol::Executor;
use tern_core::store::MailStore;
use tern_core::{Protocol, SessionConfig, Transport};

use crate::backend::Backend;
use crate::config::{Config, ListenerProtocol, StorageBackend};
use crate::connection::{self, Accepted, Context};
use crate::directory::Directory;
use crate::error::StartError;
use crate::limits::{ConnectionLimits, Refused};
use crate::metrics;
use crate::tls::CertReloader;

/// A socket bound for one configured listener.
struct Bound {
    name: String,
    /// `None`: the metrics listener.
    protocol: Option<Protocol>,
    implicit_tls: bool,
    /// Serve only loopback peers and the Unix socket (LMTP's `local-only`).
    local_only: bool,
    socket: Listening,
    /// Where it listens, for the start-up line.
    place: String,
}

/// A TCP or Unix listening socket.
enum Listening {
    Tcp(smol::net::TcpListener),
    Unix(smol::net::unix::UnixListener),
}

/// The peer address a Unix-socket connection is logged and counted under: it comes from the
/// same machine, as a loopback peer does.
const UNIX_PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

impl Listening {
    async fn accept(&self) -> std::io::Result<(Accepted, SocketAddr)> {
        match self {
            Listening::Tcp(l) => {
                let (socket, peer) = l.accept().await?;
                let _ = socket.set_nodelay(true);
                Ok((Accepted::Tcp(socket), peer))
            }
            Listening::Unix(l) => {
                let (socket, _) = l.accept().await?;
                Ok((Accepted::Unix(socket), UNIX_PEER))
            }
        }
    }
}

/// Binds every listener, then serves until SIGINT or SIGTERM.
pub fn run(config: Config) -> Result<(), StartError> {
    let (tls, reloader) = crate::tls::reloadable(&config)?;
    let quota = config.quota_default().map_err(StartError::Accounts)?;
    let directory = Directory::new(
        &config.directory.users,
        config.passwd_file().as_deref(),
        quota,
    )
    .map_err(StartError::Accounts)?;
    let store = open_store_patiently(&config)?;
    let backend = Backend::new(directory, config.login_checks(), store);
    let bound = bind_all(&config)?;
    let signals = async_signal::Signals::new([
        async_signal::Signal::Term,
        async_signal::Signal::Int,
        async_signal::Signal::Hup,
    ])
    .map_err(|e| StartError::Io {
        what: "cannot install signal handlers",
        path: "".into(),
        source: e,
    })?;

    let executor = Arc::new(Executor::new());
    // One executor thread per core beside the main one; they live as long as the process.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for i in 1..threads {
        let ex = executor.clone();
        let _ = std::thread::Builder::new()
            .name(format!("tern-exec-{i}"))
            .spawn(move || smol::block_on(ex.run(std::future::pending::<()>())));
    }

    smol::block_on(executor.run(serve(
        executor.clone(),
        config,
        tls,
        reloader,
        backend,
        bound,
        signals,
    )));
    Ok(())
}

/// How long the server waits at start for a store another process holds.
const STORE_WAIT: Duration = Duration::from_secs(10);

/// [`open_store`], waiting out a `tern deliver` that holds the store while the server is
/// down (for the moment of one delivery), so that a restart during delivery does not fail.
fn open_store_patiently(config: &Config) -> Result<Arc<dyn MailStore>, StartError> {
    let deadline = std::time::Instant::now() + STORE_WAIT;
    loop {
        match open_store(config) {
            Err(StartError::StoreInUse(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// The one place that names a storage backend: `[storage] backend`. Also how `tern import`,
/// `tern export` and `tern deliver` reach the store; while another process (a running
/// server) holds it they get [`StartError::StoreInUse`].
pub fn open_store(config: &Config) -> Result<Arc<dyn MailStore>, StartError> {
    Ok(match config.storage.backend {
        StorageBackend::Sqlite => {
            let mut store = tern_store_sqlite::SqliteStore::open(&config.storage_path()).map_err(
                |e| match e {
                    tern_store_sqlite::OpenError::InUse { path } => StartError::StoreInUse(path),
                    e => StartError::Store(e.to_string()),
                },
            )?;
            store.set_limits(config.store_limits());
            Arc::new(store)
        }
        StorageBackend::Memory => {
            tracing::warn!(
                "storage backend \"memory\": mail is kept in memory only and lost when tern stops"
            );
            Arc::new(tern_core::store::SharedMemStore::with_limits(
                config.store_limits(),
            ))
        }
    })
}

fn bind_all(config: &Config) -> Result<Vec<Bound>, StartError> {
    let mut bound = Vec::new();
    for (name, listener) in &config.server.listener {
        let protocol = match listener.protocol {
            ListenerProtocol::Imap => Some(Protocol::Imap),
            ListenerProtocol::Pop3 => Some(Protocol::Pop3),
            ListenerProtocol::Lmtp => Some(Protocol::Lmtp),
            ListenerProtocol::Metrics => None,
        };
        let local_only = protocol == Some(Protocol::Lmtp) && listener.local_only;
        for addr in &listener.bind {
            let std_listener =
                std::net::TcpListener::bind(addr).map_err(|source| StartError::Bind {
                    listener: name.clone(),
                    addr: *addr,
                    source,
                })?;
            let local = std_listener.local_addr().unwrap_or(*addr);
            let socket = smol::net::TcpListener::try_from(std_listener).map_err(|source| {
                StartError::Bind {
                    listener: name.clone(),
                    addr: *addr,
                    source,
                }
            })?;
            bound.push(Bound {
                name: name.clone(),
                protocol,
                implicit_tls: listener.tls.implicit,
                local_only,
                socket: Listening::Tcp(socket),
                place: local.to_string(),
            });
        }
        if let Some(path) = &listener.path {
            let path = config.resolve(path);
            let socket = bind_unix(&path, listener.socket_mode)?;
            bound.push(Bound {
                name: name.clone(),
                protocol,
                implicit_tls: false,
                local_only,
                socket: Listening::Unix(socket),
                place: path.display().to_string(),
            });
        }
    }
    Ok(bound)
}

/// Listens on a Unix socket, replacing a socket file an earlier run left behind (but never
/// another kind of file).
fn bind_unix(
    path: &std::path::Path,
    mode: Option<u32>,
) -> Result<smol::net::unix::UnixListener, StartError> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    let io = |what, source| StartError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path).map_err(|e| io("cannot remove the stale socket", e))?;
        }
    }
    let listener = smol::net::unix::UnixListener::bind(path)
        .map_err(|e| io("cannot listen on the socket", e))?;
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io("cannot set the socket's mode", e))?;
    }
    Ok(listener)
}

async fn serve(
    executor: Arc<Executor<'static>>,
    config: Config,
    tls: TlsAcceptor,
    reloader: CertReloader,
    backend: Arc<Backend>,
    bound: Vec<Bound>,
    mut signals: async_signal::Signals,
) {
    let limits = ConnectionLimits::new(config.connection_limits());
    let (shutdown_tx, shutdown_rx) = smol::channel::bounded::<()>(1);
    let (alive_tx, alive_rx) = smol::channel::bounded::<()>(1);
    let session_limits = config.limits();
    let mut accept_tasks = Vec::new();
    for mut b in bound {
        let protocol = match (b.protocol, b.socket) {
            (Some(protocol), socket) => {
                b.socket = socket;
                protocol
            }
            // The metrics listener: TCP only (the configuration allows no socket path).
            (None, Listening::Tcp(socket)) => {
                println!("listening {} {} (metrics, http)", b.name, b.place);
                let backend = backend.clone();
                let render = Arc::new(move || backend.render_metrics());
                accept_tasks.push(executor.spawn(metrics::serve(socket, b.name, render)));
                continue;
            }
            (None, Listening::Unix(_)) => continue,
        };
        let mode = match (protocol, b.implicit_tls, &b.socket) {
            (Protocol::Imap, true, _) => "imap, implicit TLS",
            (Protocol::Imap, false, _) => "imap, STARTTLS",
            (Protocol::Pop3, true, _) => "pop3, implicit TLS",
            (Protocol::Pop3, false, _) => "pop3, STLS",
            (Protocol::Lmtp, _, Listening::Unix(_)) => "lmtp, Unix socket",
            (Protocol::Lmtp, _, Listening::Tcp(_)) if b.local_only => "lmtp, local peers only",
            (Protocol::Lmtp, _, Listening::Tcp(_)) => "lmtp",
        };
        // Printed, not logged (once is enough on a terminal that shows both streams): scripts
        // and tests read standard output to find ephemeral ports.
        println!("listening {} {} ({mode})", b.name, b.place);
        let ctx = Arc::new(Context {
            listener: b.name.clone(),
            tls: tls.clone(),
            backend: backend.clone(),
            send_timeout: Duration::from_secs(config.timeouts.send),
            handshake_timeout: Duration::from_secs(config.timeouts.tls_handshake),
            shutdown: shutdown_rx.clone(),
            alive: alive_tx.clone(),
        });
        let mut session_config = SessionConfig::new(
            protocol,
            if b.implicit_tls {
                Transport::ImplicitTls
            } else {
                Transport::StartTlsAvailable
            },
        );
        session_config.limits = session_limits.clone();
        session_config.server_name = config.server.name.clone();
        session_config.imap_unauthenticate = config.auth.unauthenticate;
        session_config.imap_admin = config.server.admin.clone();
        // `connection` carries out COMPRESS=DEFLATE (IMAP only).
        session_config.compression = protocol == Protocol::Imap;
        // RFC 9208 QUOTA is offered once `[quota]` is configured.
        session_config.quota = config.quota.is_some();
        let allow_plain = config.auth.allow_plain_text;
        let ex = executor.clone();
        let limits = limits.clone();
        let backend = backend.clone();
        accept_tasks.push(executor.spawn(async move {
            loop {
                match b.socket.accept().await {
                    Ok((socket, peer)) => {
                        let lmtp = protocol == Protocol::Lmtp;
                        // LMTP has no login: the peer's place is its only credential.
                        if b.local_only && !peer.ip().to_canonical().is_loopback() {
                            tracing::warn!(peer = %peer, listener = %b.name, "LMTP connection refused: local peers only (local-only = true)");
                            backend.metrics().refused(protocol);
                            ex.spawn(refuse(socket, protocol, b.implicit_tls, None)).detach();
                            continue;
                        }
                        // A blocked address gets one line and no session (nor a TLS
                        // handshake): guessing on must cost the server next to nothing.
                        // An address blocked for failed logins may still hand over mail: LMTP
                        // has no login (a local webmail's lockout must not stop delivery).
                        let admitted = if !lmtp && backend.address_blocked(peer.ip()) {
                            Err(Refused::Blocked)
                        } else {
                            limits.admit(peer.ip())
                        };
                        let slot = match admitted {
                            Ok(slot) => slot,
                            Err(why) => {
                                backend.metrics().refused(protocol);
                                tracing::info!(peer = %peer, listener = %b.name, reason = %why, "connection refused");
                                ex.spawn(refuse(socket, protocol, b.implicit_tls, Some(why)))
                                    .detach();
                                continue;
                            }
                        };
                        let open = backend.metrics().connection(protocol, b.implicit_tls);
                        if lmtp {
                            // An MTA is not a stranger waiting to log in: it does not count
                            // against the unauthenticated connections.
                            slot.logged_in();
                        }
                        let mut cfg = session_config.clone();
                        // Loopback traffic never leaves the machine: no eavesdropper to fear.
                        cfg.plaintext_auth_without_tls = allow_plain || peer.ip().is_loopback();
                        let ctx = ctx.clone();
                        // The task holds `ctx`, and with it a shutdown-tracking sender.
                        ex.spawn(async move {
                            // Counted open as long as the connection's task runs.
                            let _open = open;
                            connection::serve(socket, peer, cfg, b.implicit_tls, ctx, slot).await
                        })
                        .detach();
                    }
                    Err(e) => {
                        // Out of descriptors or similar: pause rather than spin.
                        tracing::warn!(listener = %b.name, error = %e, "accept failed");
                        smol::Timer::after(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    drop(alive_tx);
    println!("tern is ready");

    let signal = loop {
        match signals.next().await {
            Some(Ok(async_signal::Signal::Hup)) => reload_certificate(&reloader),
            other => break other,
        }
    };
    tracing::info!(
        ?signal,
        "shutting down: no new connections; finishing open ones"
    );
    drop(accept_tasks);
    drop(shutdown_tx);
    let grace = Duration::from_secs(config.timeouts.shutdown_grace);
    let finished = async {
        // Every connection holds a sender; recv fails once the last one is gone.
        let _ = alive_rx.recv().await;
        true
    }
    .or(async {
        smol::Timer::after(grace).await;
        false
    })
    .await;
    if !finished {
        tracing::warn!("shutdown grace period over; dropping remaining connections");
    }
    // Every acknowledged change is already durable; closing checkpoints the logs so the
    // databases are compact files at rest.
    backend.close();
    tracing::info!("stopped");
}

/// SIGHUP: swaps in the certificate files as they are now, for new handshakes only.
fn reload_certificate(reloader: &CertReloader) {
    match reloader.reload() {
        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP: TLS certificate not reloaded; keeping the current one")
        }
    }
}

/// Turns away a connection over a limit with a line the client can show, then closes it.
///
/// On implicit-TLS listeners the socket is just closed: answering would need a TLS
/// handshake, which is exactly the work a flood of connections should not get.
async fn refuse(socket: Accepted, protocol: Protocol, implicit_tls: bool, why: Option<Refused>) {
    if implicit_tls {
        return;
    }
    let line: &[u8] = match (protocol, why) {
        (Protocol::Lmtp, None) => b"421 4.7.0 LMTP is served to local peers only.\r\n",
        (Protocol::Lmtp, Some(_)) => b"421 4.7.0 Too many connections; try again later.\r\n",
        (Protocol::Pop3, Some(Refused::Blocked)) => {
            b"-ERR [SYS/TEMP] Too many failed logins from your address; try again later.\r\n"
        }
        (_, Some(Refused::Blocked)) => {
            b"* BYE [UNAVAILABLE] Too many failed logins from your address; try again later.\r\n"
        }
        (Protocol::Pop3, _) => b"-ERR [SYS/TEMP] Too many connections; try again later.\r\n",
        (_, Some(Refused::PerIp)) => {
            b"* BYE [UNAVAILABLE] Too many connections from your address.\r\n"
        }
        (_, _) => b"* BYE [UNAVAILABLE] Too many connections; try again later.\r\n",
    };
    // Bounded: a refused client gets a few seconds of attention at most.
    let _ = async {
        match socket {
            Accepted::Tcp(mut s) => {
                let _ = s.write_all(line).await;
                let _ = s.flush().await;
                let _ = s.close().await;
            }
            Accepted::Unix(mut s) => {
                let _ = s.write_all(line).await;
                let _ = s.flush().await;
                let _ = s.close().await;
            }
        }
    }
    .or(async {
        smol::Timer::after(Duration::from_secs(5)).await;
    })
    .await;
}
