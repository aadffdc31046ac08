//! Listeners, the accept loops, and graceful shutdown.

use std::net::SocketAddr;
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
use crate::connection::{self, Context};
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
    socket: smol::net::TcpListener,
    addr: SocketAddr,
}

/// Binds every listener, then serves until SIGINT or SIGTERM.
pub fn run(config: Config) -> Result<(), StartError> {
    let (tls, reloader) = crate::tls::reloadable(&config)?;
    let directory = Directory::new(&config.directory.users, config.passwd_file().as_deref())
        .map_err(StartError::Accounts)?;
    let backend = Backend::new(directory, config.login_checks(), open_store(&config)?);
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

/// The one place that names a storage backend: `[storage] backend`.
fn open_store(config: &Config) -> Result<Arc<dyn MailStore>, StartError> {
    Ok(match config.storage.backend {
        StorageBackend::Sqlite => {
            let mut store = tern_store_sqlite::SqliteStore::open(&config.storage_path())
                .map_err(|e| StartError::Store(e.to_string()))?;
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
                protocol: match listener.protocol {
                    ListenerProtocol::Imap => Some(Protocol::Imap),
                    ListenerProtocol::Pop3 => Some(Protocol::Pop3),
                    ListenerProtocol::Metrics => None,
                },
                implicit_tls: listener.tls.implicit,
                socket,
                addr: local,
            });
        }
    }
    Ok(bound)
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
    for b in bound {
        let Some(protocol) = b.protocol else {
            println!("listening {} {} (metrics, http)", b.name, b.addr);
            let backend = backend.clone();
            let render = Arc::new(move || backend.render_metrics());
            accept_tasks.push(executor.spawn(metrics::serve(b.socket, b.name, render)));
            continue;
        };
        let mode = match (protocol, b.implicit_tls) {
            (Protocol::Imap, true) => "imap, implicit TLS",
            (Protocol::Imap, false) => "imap, STARTTLS",
            (Protocol::Pop3, true) => "pop3, implicit TLS",
            (Protocol::Pop3, false) => "pop3, STLS",
        };
        // Printed, not logged (once is enough on a terminal that shows both streams): scripts
        // and tests read standard output to find ephemeral ports.
        println!("listening {} {} ({mode})", b.name, b.addr);
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
        let allow_plain = config.auth.allow_plain_text;
        let ex = executor.clone();
        let limits = limits.clone();
        let backend = backend.clone();
        accept_tasks.push(executor.spawn(async move {
            loop {
                match b.socket.accept().await {
                    Ok((socket, peer)) => {
                        // A blocked address gets one line and no session (nor a TLS
                        // handshake): guessing on must cost the server next to nothing.
                        let admitted = if backend.address_blocked(peer.ip()) {
                            Err(Refused::Blocked)
                        } else {
                            limits.admit(peer.ip())
                        };
                        let slot = match admitted {
                            Ok(slot) => slot,
                            Err(why) => {
                                backend.metrics().refused(protocol);
                                tracing::info!(peer = %peer, listener = %b.name, reason = %why, "connection refused");
                                ex.spawn(refuse(socket, protocol, b.implicit_tls, why))
                                    .detach();
                                continue;
                            }
                        };
                        let open = backend.metrics().connection(protocol, b.implicit_tls);
                        let _ = socket.set_nodelay(true);
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
async fn refuse(
    mut socket: smol::net::TcpStream,
    protocol: Protocol,
    implicit_tls: bool,
    why: Refused,
) {
    if implicit_tls {
        return;
    }
    let line: &[u8] = match (protocol, why) {
        (Protocol::Pop3, Refused::Blocked) => {
            b"-ERR [SYS/TEMP] Too many failed logins from your address; try again later.\r\n"
        }
        (_, Refused::Blocked) => {
            b"* BYE [UNAVAILABLE] Too many failed logins from your address; try again later.\r\n"
        }
        (Protocol::Pop3, _) => b"-ERR [SYS/TEMP] Too many connections; try again later.\r\n",
        (_, Refused::PerIp) => b"* BYE [UNAVAILABLE] Too many connections from your address.\r\n",
        (_, Refused::Total | Refused::Unauthenticated) => {
            b"* BYE [UNAVAILABLE] Too many connections; try again later.\r\n"
        }
    };
    // Bounded: a refused client gets a few seconds of attention at most.
    let _ = async {
        let _ = socket.write_all(line).await;
        let _ = socket.flush().await;
        let _ = socket.close().await;
    }
    .or(async {
        smol::Timer::after(Duration::from_secs(5)).await;
    })
    .await;
}
