//! `tern deliver`: one message from standard input into an account, for an MTA's pipe
//! transport, `mailbox_command` or procmail.
//!
//! ```text
//! tern deliver --user NAME [--mailbox M] [--config PATH] [-f SENDER]
//! ```
//!
//! Whether or not the server runs, the message goes through the same LMTP session of
//! `tern-core`, so both ways store the same octets (`Return-Path` and `Delivered-To` first)
//! and give the same answers:
//! - the store is free (no server): deliver opens it itself and drives an LMTP session in this
//!   process ([`InProcess`]);
//! - the store is in use (the server holds its lock file): deliver speaks LMTP as a client to
//!   one of the server's LMTP listeners (a Unix socket `path` first, else a TCP `bind`), and
//!   the server wakes its IDLE sessions at once;
//! - the store is in use and no LMTP listener is reachable: another `tern deliver` may hold
//!   the lock for a moment, so deliver tries again for [`LOCK_WAIT`], then gives up with
//!   `EX_TEMPFAIL` (the MTA keeps the message and retries);
//! - the store cannot be opened at all (deliver runs as a user without access to its files):
//!   the server's LMTP listener as above, so an MTA may run deliver as its own user while the
//!   server runs.
//!
//! `--mailbox M` is the LMTP `+detail` form (`NAME+M`): M when it exists, else INBOX, as
//! Dovecot's `dovecot-lda -m` does without `lda_mailbox_autocreate` (and, as there, an empty
//! M is no mailbox). `--user NAME+M` means the same, as an LMTP recipient would.
//!
//! Exit codes are sysexits(3): 0 delivered, [`EX_USAGE`], [`EX_DATAERR`] (empty or too large),
//! [`EX_NOUSER`], [`EX_TEMPFAIL`] (anything worth retrying), [`EX_CONFIG`].

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_core::drive::{pump, Blocked};
use tern_core::store::{Changed, MailStore};
use tern_core::{
    DirectoryError, DirectoryOp, DirectoryReply, DirectoryResult, Protocol, Session, SessionConfig,
    StorageOp, StorageResult, Transport,
};

use crate::config::{Config, ListenerProtocol, StorageBackend};
use crate::directory::Directory;
use crate::server::open_store;

/// sysexits(3) `EX_USAGE`: the command line is wrong.
pub const EX_USAGE: u8 = 64;
/// `EX_DATAERR`: the message cannot be delivered as it is (empty, too large).
pub const EX_DATAERR: u8 = 65;
/// `EX_NOUSER`: no such account.
pub const EX_NOUSER: u8 = 67;
/// `EX_TEMPFAIL`: try again later (store or server unavailable, disk full).
pub const EX_TEMPFAIL: u8 = 75;
/// `EX_CONFIG`: the configuration cannot be read or used.
pub const EX_CONFIG: u8 = 78;

/// How long deliver keeps trying when the store is locked and no LMTP listener answers:
/// another `tern deliver` holds the lock for the few milliseconds of one APPEND, a server
/// for its whole life (and then its LMTP listener answers at once).
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// How long one reply of the server may take (an fsync'd APPEND of a large message on a busy
/// disk included); Postfix's own LMTP client waits 600 s for the final one.
const REPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// The sender when neither `-f` nor an mbox `From ` line gives one (Dovecot's
/// `DEFAULT_ENVELOPE_SENDER`).
const DEFAULT_SENDER: &str = "MAILER-DAEMON";

/// Room for an mbox `From ` line beyond the size limit: it is not part of the message.
const MAX_FROM_LINE: u64 = 1024;

/// The longest reply line read from a server; LMTP's are a few dozen octets.
const MAX_REPLY_LINE: usize = 4096;

pub const USAGE: &str =
    "usage: tern deliver --user NAME [--mailbox MAILBOX] [--config PATH] [-f SENDER]";

/// The command line of `tern deliver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The account (or an address naming it, as an LMTP `RCPT TO` would).
    pub user: String,
    /// The mailbox to deliver to (INBOX when it does not exist).
    pub mailbox: Option<String>,
    pub config: PathBuf,
    /// The envelope sender (`-f`); empty for the null sender `<>`.
    pub sender: Option<String>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Deliver(Args),
    Help,
}

/// Why a delivery did not happen, each with its exit code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliverError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Data(String),
    #[error("{0}")]
    NoUser(String),
    #[error("{0}")]
    TempFail(String),
    #[error("{0}")]
    Config(String),
}

impl DeliverError {
    /// The sysexits(3) code the process ends with.
    pub fn exit_code(&self) -> u8 {
        match self {
            DeliverError::Usage(_) => EX_USAGE,
            DeliverError::Data(_) => EX_DATAERR,
            DeliverError::NoUser(_) => EX_NOUSER,
            DeliverError::TempFail(_) => EX_TEMPFAIL,
            DeliverError::Config(_) => EX_CONFIG,
        }
    }
}

impl Args {
    /// Parses the arguments after `deliver`. Short forms are dovecot-lda's (`-d`, `-m`, `-c`,
    /// `-f`), so a Postfix line written for it needs only the program name changed.
    pub fn parse(args: &[String]) -> Result<Parsed, String> {
        let mut user = None;
        let mut mailbox = None;
        let mut config = None;
        let mut sender = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let slot = match flag.as_str() {
                "--help" | "-h" => return Ok(Parsed::Help),
                "--user" | "-d" => &mut user,
                "--mailbox" | "-m" => &mut mailbox,
                "--config" | "-c" => &mut config,
                "-f" | "--from" => &mut sender,
                other => return Err(format!("unknown argument {other:?}; {USAGE}")),
            };
            let Some(value) = it.next() else {
                return Err(format!("{flag} needs a value; {USAGE}"));
            };
            if slot.replace(value.clone()).is_some() {
                return Err(format!("{flag} given twice; {USAGE}"));
            }
        }
        let Some(user) = user.filter(|u| !u.is_empty()) else {
            return Err(format!("--user is required; {USAGE}"));
        };
        // The recipient travels as an LMTP path, `NAME+MAILBOX`: whatever would end the
        // path early, split it at the wrong '+', or forge a header line cannot be sent.
        let unfit = |s: &str| s.chars().any(|c| c.is_control() || c == '<' || c == '>');
        if unfit(&user) || user.chars().any(char::is_whitespace) {
            return Err(format!("--user {user:?} is not an account name"));
        }
        // `-m ""` means no mailbox, as dovecot-lda takes it: a pipe transport can pass an
        // empty `${extension}`.
        let mailbox = mailbox.filter(|m| !m.is_empty());
        // `NAME+DETAIL` is read as LMTP reads it (mailbox DETAIL); with `--mailbox` too, it
        // would name two mailboxes.
        let local = user.rsplit_once('@').map_or(user.as_str(), |(l, _)| l);
        if local.contains('+') && mailbox.is_some() {
            return Err(format!(
                "--user {user:?} already names a mailbox after '+' (NAME+MAILBOX); \
                 drop --mailbox or the '+' part"
            ));
        }
        if let Some(m) = &mailbox {
            if unfit(m) || m.contains('"') || m.contains('@') {
                return Err(format!(
                    "--mailbox {m:?}: not a name deliver can pass (no '<', '>', '\"', '@' or \
                     control characters)"
                ));
            }
        }
        if let Some(s) = &sender {
            if unfit(s) || s.chars().any(char::is_whitespace) {
                return Err(format!("-f {s:?} is not an address"));
            }
        }
        Ok(Parsed::Deliver(Args {
            user,
            mailbox,
            config: PathBuf::from(config.unwrap_or_else(|| "tern.toml".to_string())),
            sender,
        }))
    }

    /// The LMTP recipient: `NAME`, or `NAME+MAILBOX` (with NAME's domain after it).
    fn recipient(&self) -> String {
        match &self.mailbox {
            None => self.user.clone(),
            Some(m) => match self.user.rsplit_once('@') {
                Some((local, domain)) => format!("{local}+{m}@{domain}"),
                None => format!("{}+{m}", self.user),
            },
        }
    }
}

/// `tern deliver ARGS`: runs it on standard input and reports on standard error.
pub fn main(args: &[String]) -> ExitCode {
    let args = match Args::parse(args) {
        Ok(Parsed::Deliver(args)) => args,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tern deliver: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    match run(&args, &mut std::io::stdin().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern deliver: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Delivers the message read from `input` as `args` say.
pub fn run(args: &Args, input: &mut dyn Read) -> Result<(), DeliverError> {
    let config = Config::load(&args.config).map_err(|e| DeliverError::Config(e.to_string()))?;
    let limit = config.limits().imap_max_literal;
    let message = Message::read(input, limit)?;
    let envelope = Envelope {
        from: args
            .sender
            .clone()
            .or_else(|| message.from_line_sender.clone())
            .unwrap_or_else(|| DEFAULT_SENDER.to_string()),
        to: args.recipient(),
    };
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        // Why deliver cannot store the message itself.
        let not_here = match config.storage.backend {
            // A memory store lives only inside the running server.
            StorageBackend::Memory => "the store is in the server's memory".to_string(),
            StorageBackend::Sqlite => match open_store(&config) {
                Ok(store) => {
                    let result = deliver_in_process(&config, store.clone(), &envelope, &message);
                    store.close();
                    return result;
                }
                // In use (a running server), or not ours to open (another user's files, say):
                // a running server may still take the message over LMTP.
                Err(e) => e.to_string(),
            },
        };
        let Some(place) = lmtp_place(&config) else {
            if Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            return Err(DeliverError::TempFail(format!(
                "{not_here}, and the configuration has no LMTP listener to hand the message \
                 to; add one, e.g.\n\n[server.listener.\"lmtp\"]\nprotocol = \"lmtp\"\n\
                 path = \"lmtp.sock\"\n\nand restart the server"
            )));
        };
        match place.connect() {
            Ok(wire) => return converse(wire, &envelope, &message),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => {
                return Err(DeliverError::TempFail(format!(
                    "{not_here}, and its LMTP listener {place} does not answer: {e}"
                )))
            }
        }
    }
}

/// Sender and recipient of the one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Envelope {
    from: String,
    to: String,
}

/// The message as it goes into DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    /// Dot-stuffed, every line ended with CRLF, without the final dot.
    data: Vec<u8>,
    /// Octets once unstuffed: what the server stores after its trace lines, for `SIZE=`.
    size: u64,
    /// Octets above 127, for `BODY=8BITMIME`.
    eight_bit: bool,
    /// The address of an mbox `From ` line the input began with (the line itself is dropped).
    from_line_sender: Option<String>,
}

impl Message {
    /// Reads a message of at most `limit` octets from `input`: never more than that and an
    /// mbox `From ` line's worth, so that reading stops soon after it is known to be too large.
    fn read(input: &mut dyn Read, limit: u64) -> Result<Message, DeliverError> {
        let cap = limit.saturating_add(MAX_FROM_LINE).saturating_add(1);
        let mut raw = Vec::new();
        input
            .take(cap)
            .read_to_end(&mut raw)
            .map_err(|e| DeliverError::TempFail(format!("cannot read standard input: {e}")))?;
        // Cut short by the cap: whatever it holds, the whole is too large.
        if raw.len() as u64 >= cap {
            return Err(too_large(limit));
        }
        let message = Message::prepare(&raw);
        if message.size == 0 {
            return Err(DeliverError::Data("empty message".into()));
        }
        if message.size > limit {
            return Err(too_large(limit));
        }
        Ok(message)
    }

    /// Drops an mbox `From ` line, ends every line with CRLF (bare LF is what MTAs pipe; a
    /// last line without its end gets one) and doubles leading dots (RFC 5321 §4.5.2).
    fn prepare(raw: &[u8]) -> Message {
        let mut body = raw;
        let mut from_line_sender = None;
        if let Some(rest) = raw.strip_prefix(b"From ") {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let line = String::from_utf8_lossy(rest.get(..end).unwrap_or_default());
            from_line_sender = line
                .split_whitespace()
                .next()
                .map(|a| a.trim_start_matches('<').trim_end_matches('>').to_string())
                .filter(|a| !a.chars().any(|c| c.is_control() || c == '<' || c == '>'));
            body = rest.get(end + 1..).unwrap_or_default();
        }
        let mut data = Vec::with_capacity(body.len() + body.len() / 32 + 2);
        let mut size = 0u64;
        let mut lines = body.split(|&b| b == b'\n').peekable();
        while let Some(line) = lines.next() {
            // The empty piece after a final LF is no line.
            if line.is_empty() && lines.peek().is_none() {
                break;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.first() == Some(&b'.') {
                data.push(b'.');
            }
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
            size += line.len() as u64 + 2;
        }
        Message {
            eight_bit: body.iter().any(|&b| b > 127),
            data,
            size,
            from_line_sender,
        }
    }
}

fn too_large(limit: u64) -> DeliverError {
    DeliverError::Data(format!(
        "message larger than the configured limit of {limit} octets (limits.imap-max-literal)"
    ))
}

/// One SMTP/LMTP reply: its code, its enhanced code if any, and its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

/// Which command a reply answers, for [`outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Greeting,
    Lhlo,
    Mail,
    Rcpt,
    /// `DATA` itself: 354 goes on.
    Data,
    /// The reply after the final dot.
    Delivered,
}

/// What a reply means for the delivery: go on, or stop with an exit code.
pub fn outcome(stage: Stage, reply: &Reply) -> Result<(), DeliverError> {
    let said = || match &reply.enhanced {
        Some(e) => format!("the server answered: {} {e} {}", reply.code, reply.text),
        None => format!("the server answered: {} {}", reply.code, reply.text),
    };
    let class = reply.code / 100;
    let subject = reply
        .enhanced
        .as_deref()
        .and_then(|e| e.split_once('.'))
        .map(|(_, rest)| rest);
    match class {
        2 => Ok(()),
        3 if stage == Stage::Data => Ok(()),
        4 => Err(DeliverError::TempFail(said())),
        5 => match (stage, subject) {
            // X.1.1 (RFC 3463): no such mailbox (the account).
            (_, Some("1.1")) => Err(DeliverError::NoUser(said())),
            // X.2.2: mailbox full (a file-system quota); space may come back, as with
            // Dovecot's `quota_full_tempfail = yes`.
            (_, Some("2.2")) => Err(DeliverError::TempFail(said())),
            (Stage::Rcpt, _) => Err(DeliverError::NoUser(said())),
            // A server that refuses to speak at all may be starting or misconfigured.
            (Stage::Greeting | Stage::Lhlo, _) => Err(DeliverError::TempFail(said())),
            // The message (its size, its sender) is refused for good.
            (Stage::Mail | Stage::Data | Stage::Delivered, _) => Err(DeliverError::Data(said())),
        },
        // Not an SMTP reply: retrying is safe, the message is not stored.
        _ => Err(DeliverError::TempFail(format!(
            "unexpected reply {} {}",
            reply.code, reply.text
        ))),
    }
}

/// Parses the lines of one reply (`250-…` continuations, then `250 …`); `None` while the
/// last line read is a continuation.
fn parse_reply_line(line: &str) -> Result<Option<Reply>, String> {
    let code = line
        .get(..3)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("not an LMTP reply: {line:?}"))?;
    match line.as_bytes().get(3) {
        Some(b'-') => Ok(None),
        None | Some(b' ') => {
            let rest = line.get(4..).unwrap_or_default();
            let (enhanced, text) = match rest.split_once(' ') {
                Some((e, t)) if is_enhanced(e) => (Some(e.to_string()), t),
                _ if is_enhanced(rest) => (Some(rest.to_string()), ""),
                _ => (None, rest),
            };
            Ok(Some(Reply {
                code,
                enhanced,
                text: text.to_string(),
            }))
        }
        Some(_) => Err(format!("not an LMTP reply: {line:?}")),
    }
}

fn is_enhanced(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The LMTP client side over any byte stream: one transaction, one recipient.
struct Client<W: Read + Write> {
    wire: W,
    buf: Vec<u8>,
}

impl<W: Read + Write> Client<W> {
    fn reply(&mut self, stage: Stage) -> Result<(), DeliverError> {
        let lost = |e: String| DeliverError::TempFail(format!("LMTP: {e}"));
        loop {
            let line = self.line().map_err(lost)?;
            if let Some(reply) = parse_reply_line(&line).map_err(lost)? {
                return outcome(stage, &reply);
            }
        }
    }

    fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line);
                return Ok(line.trim_end_matches(['\r', '\n']).to_string());
            }
            if self.buf.len() > MAX_REPLY_LINE {
                return Err("reply line too long".into());
            }
            let mut chunk = [0u8; 1024];
            match self.wire.read(&mut chunk) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => self
                    .buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn send(&mut self, data: &[u8]) -> Result<(), DeliverError> {
        self.wire
            .write_all(data)
            .and_then(|()| self.wire.flush())
            .map_err(|e| DeliverError::TempFail(format!("LMTP: {e}")))
    }

    fn command(&mut self, line: &str, stage: Stage) -> Result<(), DeliverError> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.reply(stage)
    }
}

/// Runs the one transaction over `wire`; the message is delivered once this returns `Ok`.
fn converse<W: Read + Write>(
    wire: W,
    envelope: &Envelope,
    message: &Message,
) -> Result<(), DeliverError> {
    let mut client = Client {
        wire,
        buf: Vec::new(),
    };
    client.reply(Stage::Greeting)?;
    client.command("LHLO localhost", Stage::Lhlo)?;
    let body = if message.eight_bit {
        " BODY=8BITMIME"
    } else {
        ""
    };
    client.command(
        &format!("MAIL FROM:<{}> SIZE={}{body}", envelope.from, message.size),
        Stage::Mail,
    )?;
    client.command(&format!("RCPT TO:<{}>", envelope.to), Stage::Rcpt)?;
    client.command("DATA", Stage::Data)?;
    client.send(&message.data)?;
    client.send(b".\r\n")?;
    client.reply(Stage::Delivered)?;
    // Delivered: how the goodbye goes changes nothing.
    let _ = client.command("QUIT", Stage::Delivered);
    Ok(())
}

/// Where the running server takes LMTP.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Unix(path) => write!(f, "{}", path.display()),
            Place::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

/// A connected LMTP stream, with timeouts on every read and write.
enum Stream {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
}

impl Place {
    fn connect(&self) -> std::io::Result<Stream> {
        let stream = match self {
            Place::Unix(path) => {
                let s = std::os::unix::net::UnixStream::connect(path)?;
                s.set_read_timeout(Some(REPLY_TIMEOUT))?;
                s.set_write_timeout(Some(REPLY_TIMEOUT))?;
                Stream::Unix(s)
            }
            Place::Tcp(addr) => {
                let s = std::net::TcpStream::connect_timeout(addr, Duration::from_secs(10))?;
                s.set_read_timeout(Some(REPLY_TIMEOUT))?;
                s.set_write_timeout(Some(REPLY_TIMEOUT))?;
                Stream::Tcp(s)
            }
        };
        Ok(stream)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// The first configured LMTP listener's Unix socket, else its first TCP address (a wildcard
/// address reached over loopback).
fn lmtp_place(config: &Config) -> Option<Place> {
    let lmtp = || {
        config
            .server
            .listener
            .values()
            .filter(|l| l.protocol == ListenerProtocol::Lmtp)
    };
    if let Some(path) = lmtp().find_map(|l| l.path.as_deref()) {
        return Some(Place::Unix(config.resolve(path)));
    }
    let addr = lmtp().find_map(|l| l.bind.first().copied())?;
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(Place::Tcp(SocketAddr::new(ip, addr.port())))
}

/// Delivers through an LMTP session of this process, on the store deliver holds.
fn deliver_in_process(
    config: &Config,
    store: Arc<dyn MailStore>,
    envelope: &Envelope,
    message: &Message,
) -> Result<(), DeliverError> {
    let quota = config.quota_default().map_err(DeliverError::Config)?;
    let directory = Directory::new(
        &config.directory.users,
        config.passwd_file().as_deref(),
        quota,
    )
    .map_err(|e| DeliverError::Config(format!("accounts: {e}")))?;
    let mut session_config = SessionConfig::new(Protocol::Lmtp, Transport::Plaintext);
    session_config.limits = config.limits();
    session_config.server_name = config.server.name.clone();
    let wire = InProcess::new(session_config, store, directory)
        .map_err(|e| DeliverError::TempFail(format!("LMTP session: {e}")))?;
    converse(wire, envelope, message)
}

/// An LMTP session of `tern-core` as a byte stream: what is written is its input, what is read
/// its replies, storage and directory requests answered on the spot.
struct InProcess {
    session: Session,
    store: StoreNow,
    directory: Recipients,
    replies: Vec<u8>,
    /// Replies already read.
    read: usize,
    closed: bool,
}

impl InProcess {
    fn new(
        config: SessionConfig,
        store: Arc<dyn MailStore>,
        directory: Directory,
    ) -> std::io::Result<InProcess> {
        let mut this = InProcess {
            session: Session::new(config, Instant::now()),
            store: StoreNow(store),
            directory: Recipients(directory),
            replies: Vec::new(),
            read: 0,
            closed: false,
        };
        this.pump()?;
        Ok(this)
    }

    fn pump(&mut self) -> std::io::Result<()> {
        let replies = &mut self.replies;
        let blocked = pump(
            &mut self.session,
            &mut self.store,
            &mut self.directory,
            Instant::now(),
            &mut |bytes| replies.extend_from_slice(bytes),
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.closed = matches!(blocked, Blocked::Close | Blocked::StartTls);
        Ok(())
    }
}

impl Write for InProcess {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        self.session
            .handle_input(tern_core::Input::Bytes {
                now: Instant::now(),
                data: buf,
            })
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.pump()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Read for InProcess {
    /// Nothing left to read is the end: the session answers every command at once.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.replies.get(self.read..).unwrap_or_default();
        let n = left.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), left.get(..n)) {
            to.copy_from_slice(from);
        }
        self.read += n;
        if self.read == self.replies.len() {
            self.replies.clear();
            self.read = 0;
        }
        Ok(n)
    }
}

/// The storage contract as the core's synchronous [`tern_core::Store`], at the wall clock.
struct StoreNow(Arc<dyn MailStore>);

impl tern_core::Store for StoreNow {
    fn execute(&mut self, op: StorageOp) -> StorageResult {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.0.execute(op, now, &|| false)
    }

    /// Nobody in this process watches: the server, if it starts later, reads the store.
    fn take_changes(&mut self) -> Vec<Changed> {
        Vec::new()
    }
}

/// The configured accounts answering LMTP's one directory question.
struct Recipients(Directory);

impl tern_core::Directory for Recipients {
    fn answer(&mut self, op: DirectoryOp) -> DirectoryResult {
        match op {
            DirectoryOp::FindRecipient { address } => {
                let account =
                    tern_core::directory::resolve_recipient(&address, |n| self.0.canonical(n));
                let quota = account
                    .as_deref()
                    .map(|a| self.0.quota(a))
                    .unwrap_or_default();
                Ok(DirectoryReply::Recipient { account, quota })
            }
            op => Err(DirectoryError::Internal(format!(
                "not asked by LMTP: {op:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
