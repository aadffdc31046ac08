//! Listeners, the accept loops, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_rustls::TlsAcceptor;
use smol::future::FutureExt as _;
use smol::stream::StreamExt as _;
use smol::Executor;
use tern_core::{Protocol, SessionConfig, Transport};

use crate::backend::Backend;
use crate::config::{Config, ListenerProtocol};
use crate::connection::{self, Context};
use crate::directory::Directory;
use crate::error::StartError;

/// A socket bound for one configured listener.
struct Bound {
    name: String,
    protocol: Protocol,
    implicit_tls: bool,
    socket: smol::net::TcpListener,
    addr: SocketAddr,
}

/// Binds every listener, then serves until SIGINT or SIGTERM.
pub fn run(config: Config) -> Result<(), StartError> {
    let tls = crate::tls::acceptor(&config)?;
    let directory = Directory::new(&config.directory.users).map_err(StartError::Tls)?;
    let backend = Backend::new(directory);
    let bound = bind_all(&config)?;
    let signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
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
        backend,
        bound,
        signals,
    )));
    Ok(())
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
                    ListenerProtocol::Imap => Protocol::Imap,
                    ListenerProtocol::Pop3 => Protocol::Pop3,
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
    backend: Arc<Backend>,
    bound: Vec<Bound>,
    mut signals: async_signal::Signals,
) {
    let (shutdown_tx, shutdown_rx) = smol::channel::bounded::<()>(1);
    let (alive_tx, alive_rx) = smol::channel::bounded::<()>(1);
    let limits = config.limits();
    let mut accept_tasks = Vec::new();
    for b in bound {
        let mode = match (b.protocol, b.implicit_tls) {
            (Protocol::Imap, true) => "imap, implicit TLS",
            (Protocol::Imap, false) => "imap, STARTTLS",
            (Protocol::Pop3, true) => "pop3, implicit TLS",
            (Protocol::Pop3, false) => "pop3, STLS",
        };
        // Printed (not logged) so that scripts and tests can find ephemeral ports.
        println!("listening {} {} ({mode})", b.name, b.addr);
        tracing::info!(listener = %b.name, addr = %b.addr, mode, "listening");
        let ctx = Arc::new(Context {
            listener: b.name.clone(),
            tls: tls.clone(),
            backend: backend.clone(),
            send_timeout: Duration::from_secs(config.timeouts.send),
            shutdown: shutdown_rx.clone(),
            alive: alive_tx.clone(),
        });
        let mut session_config = SessionConfig::new(
            b.protocol,
            if b.implicit_tls {
                Transport::ImplicitTls
            } else {
                Transport::StartTlsAvailable
            },
        );
        session_config.limits = limits.clone();
        session_config.server_name = config.server.name.clone();
        let allow_plain = config.auth.allow_plain_text;
        let ex = executor.clone();
        accept_tasks.push(executor.spawn(async move {
            loop {
                match b.socket.accept().await {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        let mut cfg = session_config.clone();
                        // Loopback traffic never leaves the machine: no eavesdropper to fear.
                        cfg.plaintext_auth_without_tls = allow_plain || peer.ip().is_loopback();
                        let ctx = ctx.clone();
                        // The task holds `ctx`, and with it a shutdown-tracking sender.
                        ex.spawn(connection::serve(socket, peer, cfg, b.implicit_tls, ctx))
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

    let signal = signals.next().await;
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
    tracing::info!("stopped");
}
