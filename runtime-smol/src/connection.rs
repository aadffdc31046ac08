//! One task per connection: moves bytes between the socket and the core session, and does
//! what the session asks (run a storage request, answer a login from the directory, upgrade
//! to TLS, arm a timer, close).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use smol::future::FutureExt as _;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::unix::UnixStream;
use smol::net::TcpStream;
use smol::Timer;
use tern_core::store::BodyStream;
use tern_core::{
    Completion, DirectoryResult, Event, Input, Output, RequestId, Session, SessionConfig,
    StorageResult,
};

use crate::backend::{Backend, Client, Running, Watch};
use crate::deflate::{Deflate, InflateError};
use crate::limits::ConnectionSlot;

/// Writes go out in pieces of at most this size, each with its own send timeout, so the
/// timeout bounds a stall rather than a whole large response to a slow reader.
const WRITE_CHUNK: usize = 64 * 1024;

/// An accepted connection, as its listener gave it.
pub enum Accepted {
    Tcp(TcpStream),
    /// From a Unix-socket listener (LMTP).
    Unix(UnixStream),
}

/// The socket, before or after the TLS handshake.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Unix(s) => s.read(buf).await,
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(data).await,
            Stream::Tls(s) => s.write_all(data).await,
            Stream::Unix(s) => s.write_all(data).await,
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush().await,
            Stream::Tls(s) => s.flush().await,
            Stream::Unix(s) => s.flush().await,
        }
    }

    /// Reads, inflating once COMPRESS is active. Cancel-safe: compressed octets are taken
    /// into `deflate` only once their read has completed.
    async fn read_through(
        &mut self,
        deflate: Option<&mut Deflate>,
        buf: &mut [u8],
    ) -> std::io::Result<usize> {
        let Some(z) = deflate else {
            return self.read(buf).await;
        };
        loop {
            let n = z.inflate(buf)?;
            if n > 0 {
                return Ok(n);
            }
            let got = self.read(z.read_buffer()).await?;
            if got == 0 {
                return Ok(0);
            }
            z.received(got);
        }
    }

    async fn close(&mut self) {
        // Best effort: the peer may already be gone.
        let _ = match self {
            Stream::Plain(s) => s.close().await,
            Stream::Tls(s) => s.close().await,
            Stream::Unix(s) => s.close().await,
        };
    }
}

/// What a connection needs from the server.
pub struct Context {
    pub listener: String,
    pub tls: TlsAcceptor,
    pub backend: Arc<Backend>,
    pub send_timeout: Duration,
    /// Longest a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Resolves (with an error) when the server begins to shut down.
    pub shutdown: smol::channel::Receiver<()>,
    /// Held until the connection ends; shutdown waits for every copy to drop.
    pub alive: smol::channel::Sender<()>,
}

/// What woke the connection up.
enum Wake {
    Read(std::io::Result<usize>),
    Changed(tern_core::store::MailboxId, tern_core::store::ModSeq),
    Reply(RequestId, Answer),
    Deadline,
    Shutdown,
}

/// The session's one request in flight, of either kind.
enum InFlight {
    Storage(Reply),
    /// A login, answered by the backend's directory and login defences.
    Directory(smol::Task<DirectoryResult>),
}

impl InFlight {
    async fn finish(self) -> Answer {
        match self {
            InFlight::Storage(reply) => Answer::Storage(reply.finish().await),
            InFlight::Directory(task) => Answer::Directory(task.await),
        }
    }
}

/// The reply to the request in flight, of its kind.
enum Answer {
    Storage(StorageResult),
    Directory(DirectoryResult),
}

impl Answer {
    /// The session's input for it.
    fn input(self, now: Instant, id: RequestId) -> Input<'static> {
        match self {
            Answer::Storage(reply) => Input::Storage { now, id, reply },
            Answer::Directory(reply) => Input::Directory { now, id, reply },
        }
    }
}

/// A storage reply the session will be handed when it next waits.
enum Reply {
    /// Computed on the connection's thread (`Backend::try_inline`).
    Ready(StorageResult),
    /// Running on the blocking pool or queued with the store.
    Running(Running),
}

impl Reply {
    async fn finish(self) -> StorageResult {
        match self {
            Reply::Ready(reply) => reply,
            Reply::Running(mut running) => running.wait().await,
        }
    }
}

/// Why a connection ended, for the close log line.
enum End {
    Closed,
    Io(std::io::Error),
    TlsFailed(std::io::Error),
}

/// The `tls-exporter` channel binding (RFC 9266) of a TLS 1.3 session, for
/// SCRAM-SHA-256-PLUS. TLS 1.2 sessions get none: without the extended master secret the
/// exporter is not unique to the connection (RFC 9266 §3).
fn channel_bindings(tls: &TlsStream<TcpStream>) -> tern_core::sasl::ChannelBindings {
    let conn = tls.get_ref().1;
    let mut bindings = tern_core::sasl::ChannelBindings::default();
    if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
        let mut out = [0u8; 32];
        if conn
            .export_keying_material(&mut out, b"EXPORTER-Channel-Binding", None)
            .is_ok()
        {
            bindings.tls_exporter = Some(out.to_vec());
        }
    }
    bindings
}

/// The server side of a TLS handshake, bounded by the configured handshake timeout.
async fn handshake(
    ctx: &Context,
    socket: TcpStream,
) -> std::io::Result<futures_rustls::server::TlsStream<TcpStream>> {
    within(
        ctx.handshake_timeout,
        "TLS handshake did not finish in time",
        ctx.tls.accept(socket),
    )
    .await
}

/// `io`, or a `TimedOut` error saying `what` once `limit` has passed.
async fn within<T>(
    limit: Duration,
    what: &'static str,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    io.or(async {
        Timer::after(limit).await;
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
    })
    .await
}

/// Serves one accepted connection to completion.
pub async fn serve(
    socket: Accepted,
    peer: SocketAddr,
    mut config: SessionConfig,
    implicit_tls: bool,
    ctx: Arc<Context>,
    slot: ConnectionSlot,
) {
    let started = Instant::now();
    let protocol = config.protocol;
    let client = Arc::new(Client::new(peer, protocol, slot));
    tracing::info!(peer = %peer, listener = %ctx.listener, tls = implicit_tls, "connection opened");
    let stream = match socket {
        Accepted::Unix(socket) => Stream::Unix(socket),
        Accepted::Tcp(socket) if implicit_tls => match handshake(&ctx, socket).await {
            Ok(tls) => {
                config.channel_bindings = channel_bindings(&tls);
                Stream::Tls(Box::new(tls))
            }
            Err(e) => {
                tracing::info!(peer = %peer, listener = %ctx.listener, error = %e, "TLS handshake failed");
                return;
            }
        },
        Accepted::Tcp(socket) => Stream::Plain(socket),
    };
    let mut conn = Connection {
        session: Session::new(config, Instant::now()),
        stream: Some(stream),
        ctx: ctx.clone(),
        peer,
        pending: None,
        shutdown_seen: false,
        watch: None,
        client,
        command: None,
        storage_since: None,
        unsent: Vec::new(),
        deflate: None,
        timer: Timer::never(),
        timer_at: None,
    };
    let end = conn.run().await;
    conn.settle().await;
    ctx.backend.connection_ended(&conn.client);
    let tls = matches!(conn.stream, Some(Stream::Tls(_)));
    if let Some(stream) = conn.stream.as_mut() {
        stream.close().await;
    }
    let secs = started.elapsed().as_secs_f64();
    let account = conn.session.account().unwrap_or("-").to_string();
    match end {
        End::Closed => {
            tracing::info!(peer = %peer, listener = %ctx.listener, ?protocol, tls, user = %account, duration = secs, "connection closed")
        }
        End::Io(e) => {
            tracing::info!(peer = %peer, listener = %ctx.listener, ?protocol, tls, user = %account, duration = secs, error = %e, "connection lost")
        }
        End::TlsFailed(e) => {
            tracing::info!(peer = %peer, listener = %ctx.listener, ?protocol, user = %account, duration = secs, error = %e, "STARTTLS handshake failed")
        }
    }
}

struct Connection {
    session: Session,
    /// `None` only transiently, while the socket is handed to the TLS handshake.
    stream: Option<Stream>,
    ctx: Arc<Context>,
    peer: SocketAddr,
    pending: Option<(RequestId, InFlight)>,
    shutdown_seen: bool,
    /// Change notifications for the account, once logged in.
    watch: Option<Watch>,
    /// Who this is, for the login defences; holds the connection's limit slot.
    client: Arc<Client>,
    /// The command being answered and when it arrived, for its log line and metrics.
    command: Option<(&'static str, Instant)>,
    /// When the storage request in flight went out.
    storage_since: Option<Instant>,
    /// Response bytes not written yet: the session's transmits are gathered until it waits
    /// (or until a chunk's worth), so that a command's untagged and tagged responses, and the
    /// answers to pipelined commands, go out in one system call instead of one each.
    unsent: Vec<u8>,
    /// The COMPRESS=DEFLATE layer (RFC 4978), once the session asked for it: every write
    /// goes through it, and a flush ends with a sync flush.
    deflate: Option<Box<Deflate>>,
    /// The session's deadline timer, and the instant it is armed for (`None` once it fired).
    /// Registering a timer wakes the reactor's thread; re-arming it at every wait (the
    /// inactivity deadline moves with each command) cost a thread wake-up per command. So it
    /// is re-armed only for an earlier deadline: one that fires early makes the session look
    /// at its timers, find none due, and name the later one.
    timer: Timer,
    timer_at: Option<Instant>,
}

impl Connection {
    /// After the connection ends, however it ended: lets the session clean up (a POP3 session
    /// releases its maildrop lock) by running its last requests, one at a time with their
    /// replies fed back as usual; bytes are no longer sent.
    async fn settle(&mut self) {
        // Nobody reads a reply from now on: a SEARCH in flight stops at its next step.
        self.client.leave();
        let _ = self.session.handle_input(Input::PeerClosed {
            now: Instant::now(),
        });
        // Bounded: a session ends with at most a few requests.
        for _ in 0..16 {
            if let Some((id, in_flight)) = self.pending.take() {
                let answer = in_flight.finish().await;
                if self
                    .session
                    .handle_input(answer.input(Instant::now(), id))
                    .is_err()
                {
                    return;
                }
            }
            match self.session.poll_output() {
                Output::Storage(request) => {
                    let task = self
                        .ctx
                        .backend
                        .clone()
                        .execute(request.op, self.client.clone());
                    self.pending = Some((request.id, InFlight::Storage(Reply::Running(task))));
                }
                Output::Directory(request) => {
                    let task = self
                        .ctx
                        .backend
                        .clone()
                        .answer(request.op, self.client.clone());
                    self.pending = Some((request.id, InFlight::Directory(task)));
                }
                Output::Transmit(_)
                | Output::TransmitBody(_)
                | Output::Event(_)
                | Output::StartTls
                | Output::StartCompression => {}
                _ if self.pending.is_some() => {}
                _ => return,
            }
        }
    }

    async fn run(&mut self) -> End {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let deadline = match self.drain().await {
                Ok(Some(deadline)) => deadline,
                Ok(None) => return End::Closed,
                Err(end) => return end,
            };
            let wake = match self.pending.take() {
                // Answered on this thread already: hand it over at once.
                Some((id, InFlight::Storage(Reply::Ready(reply)))) => {
                    Wake::Reply(id, Answer::Storage(reply))
                }
                other => {
                    self.pending = other;
                    self.wait(deadline, &mut buf).await
                }
            };
            let now = Instant::now();
            // Notices held while the session did not want them: before new input, so that
            // a command sees what was announced before it came; after a reply, so that the
            // reply's own synchronisation counts first.
            let notices_first = !matches!(wake, Wake::Reply(..));
            if notices_first {
                self.hand_over_notices(now);
            }
            let account = self.watch.as_ref().map(|w| w.account().to_string());
            let input = match wake {
                Wake::Changed(mailbox, modseq) => Input::MailboxChanged {
                    now,
                    account: account.as_deref().unwrap_or_default(),
                    mailbox,
                    modseq,
                },
                Wake::Read(Ok(0)) => Input::PeerClosed { now },
                Wake::Read(Ok(n)) => Input::Bytes {
                    now,
                    data: buf.get(..n).unwrap_or_default(),
                },
                Wake::Read(Err(e)) => {
                    if let Some(why) = InflateError::of(&e) {
                        // The session cannot say it: the octets never reached it.
                        let code = match why {
                            InflateError::Bomb => "[LIMIT] ",
                            InflateError::Corrupt => "",
                        };
                        let bye = format!("* BYE {code}{why}.\r\n");
                        tracing::info!(peer = %self.peer, listener = %self.ctx.listener, error = %why, "compressed input refused");
                        let _ = self.send(bye.as_bytes()).await;
                        let _ = self.flush().await;
                    }
                    let _ = self.session.handle_input(Input::PeerClosed { now });
                    return End::Io(e);
                }
                Wake::Reply(id, answer) => {
                    self.pending = None;
                    if let (Answer::Storage(_), Some(since)) = (&answer, self.storage_since.take())
                    {
                        self.ctx.backend.metrics().storage_request(now - since);
                    }
                    answer.input(now, id)
                }
                Wake::Deadline => {
                    self.timer_at = None;
                    Input::Timeout { now }
                }
                Wake::Shutdown => {
                    self.shutdown_seen = true;
                    Input::Shutdown { now }
                }
            };
            if let Err(e) = self.session.handle_input(input) {
                // A bug in this driver, not the client's doing: drop the connection loudly.
                tracing::error!(peer = %self.peer, error = %e, "session misuse");
                return End::Closed;
            }
            if !notices_first {
                self.hand_over_notices(now);
            }
        }
    }

    /// Gives the session the change notices waiting for it, if any.
    fn hand_over_notices(&mut self, now: Instant) {
        let Some(watch) = self.watch.as_ref() else {
            return;
        };
        let notices = watch.pending();
        if notices.is_empty() {
            return;
        }
        let account = watch.account().to_string();
        for (mailbox, modseq) in notices {
            // Never misuse: a notice is valid in any state.
            let _ = self.session.handle_input(Input::MailboxChanged {
                now,
                account: &account,
                mailbox,
                modseq,
            });
        }
    }

    /// Carries out the session's outputs until it waits; `None` once it asked to close.
    async fn drain(&mut self) -> Result<Option<Instant>, End> {
        loop {
            match self.session.poll_output() {
                Output::Transmit(bytes) => {
                    if bytes.len() >= WRITE_CHUNK {
                        self.send_unsent().await.map_err(End::Io)?;
                        self.send(&bytes).await.map_err(End::Io)?;
                    } else {
                        self.unsent.extend_from_slice(&bytes);
                        if self.unsent.len() >= WRITE_CHUNK {
                            self.send_unsent().await.map_err(End::Io)?;
                        }
                    }
                }
                Output::TransmitBody(stream) => {
                    self.send_unsent().await.map_err(End::Io)?;
                    self.send_body(stream).await.map_err(End::Io)?;
                }
                Output::Storage(request) => {
                    if self.pending.is_some() {
                        // The core's contract: one request in flight per session.
                        tracing::error!(peer = %self.peer, "session misuse: a second storage request while one is in flight");
                        return Ok(None);
                    }
                    // The reply, even one computed here at once, is handed over only once the
                    // session waits.
                    self.storage_since = Some(Instant::now());
                    let reply = match self.ctx.backend.try_inline(request.op) {
                        Ok(reply) => Reply::Ready(reply),
                        Err(op) => Reply::Running(
                            self.ctx.backend.clone().execute(op, self.client.clone()),
                        ),
                    };
                    self.pending = Some((request.id, InFlight::Storage(reply)));
                }
                Output::Directory(request) => {
                    if self.pending.is_some() {
                        tracing::error!(peer = %self.peer, "session misuse: a directory request while another request is in flight");
                        return Ok(None);
                    }
                    let task = self
                        .ctx
                        .backend
                        .clone()
                        .answer(request.op, self.client.clone());
                    self.pending = Some((request.id, InFlight::Directory(task)));
                }
                Output::StartTls => {
                    self.send_unsent().await.map_err(End::Io)?;
                    self.flush().await.map_err(End::Io)?;
                    let Some(Stream::Plain(socket)) = self.stream.take() else {
                        return Ok(None);
                    };
                    let tls = handshake(&self.ctx, socket).await.map_err(End::TlsFailed)?;
                    let channel_bindings = channel_bindings(&tls);
                    self.stream = Some(Stream::Tls(Box::new(tls)));
                    let now = Instant::now();
                    if self
                        .session
                        .handle_input(Input::TlsEstablished {
                            now,
                            channel_bindings,
                        })
                        .is_err()
                    {
                        return Ok(None);
                    }
                }
                Output::StartCompression => {
                    // RFC 4978 §3: the OK goes out as it is, everything after it compressed.
                    self.send_unsent().await.map_err(End::Io)?;
                    self.flush().await.map_err(End::Io)?;
                    self.deflate = Some(Box::default());
                }
                Output::Event(event) => self.log(event),
                Output::Close => {
                    // The session is over: free its account share before the last bytes go
                    // out, so a client reconnecting at once (POP3 after QUIT) is not refused.
                    self.client.slot.release_account();
                    self.send_unsent().await.map_err(End::Io)?;
                    self.flush().await.map_err(End::Io)?;
                    return Ok(None);
                }
                Output::Timeout(at) => {
                    self.send_unsent().await.map_err(End::Io)?;
                    self.flush().await.map_err(End::Io)?;
                    return Ok(Some(at));
                }
                _ => {}
            }
        }
    }

    /// Writes, dropping a peer that stops reading for longer than the send timeout.
    ///
    /// Unsent output stays bounded without a separate byte limit: the task reads no input
    /// while a write is pending, so the session produces nothing more until the peer takes
    /// what it has been sent.
    async fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let timeout = self.ctx.send_timeout;
        for chunk in data.chunks(WRITE_CHUNK) {
            let chunk = match self.deflate.as_mut() {
                Some(z) => z.deflate(chunk, false)?,
                None => chunk,
            };
            if !chunk.is_empty() {
                within(timeout, "peer stopped reading", stream.write_all(chunk)).await?;
            }
        }
        Ok(())
    }

    /// Writes the gathered response bytes.
    async fn send_unsent(&mut self) -> std::io::Result<()> {
        /// A buffer this large is kept for the next responses; a larger one (a big listing)
        /// is let go, so an idle connection holds little.
        const KEPT_CAPACITY: usize = 4096;
        if self.unsent.is_empty() {
            return Ok(());
        }
        let mut data = std::mem::take(&mut self.unsent);
        let sent = self.send(&data).await;
        if data.capacity() <= KEPT_CAPACITY {
            data.clear();
            self.unsent = data;
        }
        sent
    }

    /// Writes a message body a chunk at a time, each read on the blocking pool and written
    /// under the send timeout: a peer that stops reading holds one chunk, however large the
    /// message. A body that cannot be read in full ends the connection (the peer was promised
    /// its octets).
    async fn send_body(&mut self, mut stream: BodyStream) -> std::io::Result<()> {
        let mut buf = vec![0u8; WRITE_CHUNK];
        let mut out = BytesMut::new();
        while let Some((offset, n)) = stream.next_read(WRITE_CHUNK) {
            let source = stream.source().clone();
            let (back, got) = smol::unblock(move || {
                let got = match buf.get_mut(..n) {
                    Some(into) => source.read_at(offset, into),
                    None => Ok(0),
                };
                (buf, got)
            })
            .await;
            buf = back;
            let got = got?;
            stream.consume(buf.get(..got).unwrap_or_default(), &mut out)?;
            self.send(&out).await?;
            out.clear();
        }
        stream.finish(&mut out);
        self.send(&out).await
    }

    /// Writes out everything sent so far: with COMPRESS, a sync flush first, so that no
    /// response (an IDLE push, say) waits in the compressor (RFC 4978 §4).
    async fn flush(&mut self) -> std::io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        if let Some(z) = self.deflate.as_mut() {
            let tail = z.deflate(&[], true)?;
            if !tail.is_empty() {
                within(
                    self.ctx.send_timeout,
                    "peer stopped reading",
                    stream.write_all(tail),
                )
                .await?;
            }
        }
        within(
            self.ctx.send_timeout,
            "peer stopped reading",
            stream.flush(),
        )
        .await
    }

    /// Waits for whichever comes first: input, the reply in flight, the deadline, shutdown.
    async fn wait(&mut self, deadline: Instant, buf: &mut [u8]) -> Wake {
        let wants_read = self.session.wants_read();
        let wants_notices = self.session.wants_notices();
        let shutdown_seen = self.shutdown_seen;
        if self.timer_at.is_none_or(|at| deadline < at) {
            self.timer.set_at(deadline);
            self.timer_at = Some(deadline);
        }
        // Async blocks capture whole variables: split the borrows by field first.
        let Connection {
            stream,
            pending,
            ctx,
            watch,
            timer,
            deflate,
            ..
        } = self;
        let changed = async {
            match watch.as_ref().filter(|_| wants_notices) {
                Some(w) => match w.next().await {
                    Some((mailbox, modseq)) => Wake::Changed(mailbox, modseq),
                    None => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        let read = async {
            match (wants_read, stream.as_mut()) {
                (true, Some(stream)) => {
                    Wake::Read(stream.read_through(deflate.as_deref_mut(), buf).await)
                }
                _ => std::future::pending().await,
            }
        };
        let storage = async {
            match pending.as_mut() {
                Some((id, InFlight::Storage(Reply::Running(running)))) => {
                    Wake::Reply(*id, Answer::Storage(running.wait().await))
                }
                Some((id, InFlight::Directory(task))) => {
                    Wake::Reply(*id, Answer::Directory(task.await))
                }
                // `run` takes a ready reply before it waits.
                Some((_, InFlight::Storage(Reply::Ready(_)))) | None => {
                    std::future::pending().await
                }
            }
        };
        let timer = async {
            (&mut *timer).await;
            Wake::Deadline
        };
        let shutdown = async {
            if shutdown_seen {
                std::future::pending::<()>().await;
            }
            // The channel never carries a message: its closing is the signal.
            let _ = ctx.shutdown.recv().await;
            Wake::Shutdown
        };
        // The reply first: a finished request is handed over before more input.
        storage.or(shutdown).or(read).or(changed).or(timer).await
    }

    /// Acts on what the session reports (logins feed the defences and start the change
    /// feed) and logs it.
    fn log(&mut self, event: Event) {
        match event {
            Event::Command { name } => {
                self.command = Some((name, Instant::now()));
                tracing::debug!(peer = %self.peer, listener = %self.ctx.listener, command = %name, "command")
            }
            Event::Answered {
                outcome,
                code,
                text,
            } => {
                // A status line with no command before it (a greeting, a goodbye at
                // shutdown) is not a command's answer.
                let Some((name, since)) = self.command.take() else {
                    return;
                };
                let took = since.elapsed();
                self.ctx
                    .backend
                    .metrics()
                    .command(self.client.protocol, name, outcome, took);
                let code = code.as_deref().unwrap_or("");
                let ms = took.as_secs_f64() * 1000.0;
                // Failures at info, so an operator can match a client's complaint to what
                // was answered; everything at debug. The words are the server's own.
                if outcome == Completion::Ok {
                    tracing::debug!(peer = %self.peer, listener = %self.ctx.listener, command = %name, result = outcome.as_str(), code, text = %text, ms, "answered")
                } else {
                    tracing::info!(peer = %self.peer, listener = %self.ctx.listener, command = %name, result = outcome.as_str(), code, text = %text, ms, "answered")
                }
            }
            Event::LoggedIn { account, mechanism } => {
                self.ctx.backend.logged_in(&self.client, &account);
                if self.watch.is_none() {
                    self.watch = Some(self.ctx.backend.watch(&account));
                }
                tracing::info!(peer = %self.peer, listener = %self.ctx.listener, user = %account, mechanism, "authentication succeeded")
            }
            Event::LoggedOut => self.client.slot.release_account(),
            Event::Unauthenticated => {
                // The old account's notices stop here; a later login watches its own.
                self.watch = None;
                self.client.slot.unauthenticated();
                tracing::info!(peer = %self.peer, listener = %self.ctx.listener, "unauthenticated")
            }
            Event::Delivered { account, mailbox } => {
                self.ctx.backend.metrics().delivered();
                tracing::info!(peer = %self.peer, listener = %self.ctx.listener, user = %account, mailbox = %mailbox, "delivered")
            }
            Event::AuthFailed {
                username,
                mechanism,
            } => {
                self.ctx.backend.login_failed(&self.client, &username);
                tracing::info!(peer = %self.peer, listener = %self.ctx.listener, user = %username, mechanism, "authentication failed")
            }
            _ => {}
        }
    }
}
