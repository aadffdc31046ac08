//! Load generator for the server-level benchmarks against Dovecot
//! (`scripts/bench-vs-dovecot.sh` drives it; see README's Performance section).
//!
//! ```text
//! loadgen gen       --out FILE --messages N [--kind realistic|mbox|pop3] [--seed S] [--size BYTES]
//! loadgen append    --port P --users U[,U…] [--pass W] --spool FILE [--from I] [--to J]
//!                   [--clients C] [--batch B] [--label L] [--key K] [--max-seconds T]
//! loadgen imap      --port P --user U [--pass W] --op OP [--arg TEXT] [--reps R]
//!                   [--max-seconds T] [--label L]
//!                   OP: select | fetch-flags | envelope | preview | search-text | search-from
//!                       | thread-references (UID THREAD REFERENCES UTF-8 ALL)
//!                       | changedsince (UID FETCH 1:* (FLAGS) (CHANGEDSINCE m) after 10
//!                         flag changes since m) | qresync (SELECT INBOX (QRESYNC (v m))
//!                         after 100 expunges and 100 flag changes since m; each run
//!                         expunges 100 messages)
//!                       | sort-date | sort-subject (UID SORT (DATE|SUBJECT) UTF-8 ALL)
//!                       | sort-arrival-search (UID SORT (ARRIVAL) UTF-8 UNSEEN)
//!                       | store | expunge  (store/expunge: --count N, run once)
//! loadgen pop3      --port P --users U[,U…] [--pass W] [--tls] [--label L] [--key K]
//!                   [--rounds R] [--reset-seen IMAP_PORT] [--max-seconds T]
//! loadgen mixed     --port P [--user U] [--pass W] [--clients N] [--profile steady|churn]
//!                   [--seconds T] [--tls] [--label L] [--key K] [--corpus M] [--seed S]
//! loadgen cpu       --pid P [--hz H]     (CPU seconds of a process tree, from /proc)
//! loadgen report    FILE
//! loadgen mixed-report FILE
//! ```
//!
//! `mixed` is the mixed workload of the standard IMAP stress test (see `loadgen/mixed.rs`);
//! `scripts/bench-mixed.sh` drives it against tern and Dovecot.
//!
//! Measurements print as `RESULT <label> <key> <value>` lines on standard output, which the
//! driver script collects and `report` turns into Markdown tables. Only 127.0.0.1 is ever
//! contacted (the tool takes ports, never hosts). Every loop is bounded by a count and by
//! `--max-seconds`; sockets time out after ten minutes without progress. Timings are figures,
//! never assertions: this is not a test.
//!
//! TLS accepts any server certificate (signatures are still checked, so the handshake costs
//! what a real one does): this is a benchmark client for loopback, never a mail client.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

// The generator of the store's equivalence test and in-process benchmark, so that the
// server-level figures use the same kind of mail.
use tern_store_kit::gen;
#[path = "loadgen/mixed.rs"]
mod mixed;
#[path = "loadgen/model.rs"]
mod model;
#[path = "loadgen/response.rs"]
mod response;
#[path = "loadgen/tls.rs"]
mod tls;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, Error>;

/// A read or write that makes no progress for this long fails (Dovecot's unindexed SEARCH of
/// a large mailbox can take minutes, but sends progress lines meanwhile).
const IO_TIMEOUT: Duration = Duration::from_secs(600);

/// The pause between the first run of a read operation and the others (see `cmd_imap`).
const SETTLE: Duration = Duration::from_secs(3);

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("gen") => Args::parse(&args[1..], GEN_OPTS).and_then(|a| cmd_gen(&a)),
        Some("append") => Args::parse(&args[1..], APPEND_OPTS).and_then(|a| cmd_append(&a)),
        Some("imap") => Args::parse(&args[1..], IMAP_OPTS).and_then(|a| cmd_imap(&a)),
        Some("pop3") => Args::parse(&args[1..], POP3_OPTS).and_then(|a| cmd_pop3(&a)),
        Some("mixed") => {
            Args::parse(&args[1..], mixed::MIXED_OPTS).and_then(|a| mixed::cmd_mixed(&a))
        }
        Some("cpu") => Args::parse(&args[1..], &["pid", "hz"]).and_then(|a| mixed::cmd_cpu(&a)),
        Some("mixed-report") => match args.get(1) {
            Some(file) => mixed::cmd_mixed_report(file),
            None => Err("mixed-report FILE".into()),
        },
        Some("report") => match args.get(1) {
            Some(file) => cmd_report(file),
            None => Err("report FILE".into()),
        },
        _ => Err("usage: loadgen gen|append|imap|pop3|mixed|cpu|report|mixed-report … (see the source's header)".into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments

const GEN_OPTS: &[&str] = &["out", "messages", "kind", "seed", "size"];
const APPEND_OPTS: &[&str] = &[
    "port",
    "users",
    "pass",
    "spool",
    "from",
    "to",
    "clients",
    "batch",
    "label",
    "key",
    "max-seconds",
];
const IMAP_OPTS: &[&str] = &[
    "port",
    "user",
    "pass",
    "op",
    "arg",
    "reps",
    "max-seconds",
    "label",
    "count",
];
const POP3_OPTS: &[&str] = &[
    "port",
    "users",
    "pass",
    "tls",
    "label",
    "key",
    "max-seconds",
    "rounds",
    "reset-seen",
];

/// `--name value` pairs (`--tls` alone is a flag).
struct Args(BTreeMap<String, String>);

impl Args {
    fn parse(args: &[String], allowed: &[&str]) -> Res<Args> {
        let mut map = BTreeMap::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            if !allowed.contains(&name) {
                return Err(format!("unknown option --{name}").into());
            }
            let value = if name == "tls" {
                "yes".to_string()
            } else {
                it.next()
                    .ok_or_else(|| format!("--{name} needs a value"))?
                    .clone()
            };
            map.insert(name.to_string(), value);
        }
        Ok(Args(map))
    }

    fn str(&self, name: &str) -> Res<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required").into())
    }

    fn str_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.0.get(name).map_or(default, String::as_str)
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> Res<T> {
        match self.0.get(name) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: not a number: {v}").into()),
            None => default.ok_or_else(|| format!("--{name} is required").into()),
        }
    }

    fn flag(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn deadline(&self, default_secs: u64) -> Res<Instant> {
        let secs: u64 = self.num("max-seconds", Some(default_secs))?;
        Ok(Instant::now() + Duration::from_secs(secs))
    }
}

fn result(label: &str, key: &str, value: impl std::fmt::Display) {
    println!("RESULT {label} {key} {value}");
}

// ---------------------------------------------------------------------------------------------
// Message spools: `u32` little-endian length, then the message, repeated.

/// Writes N generated messages. `realistic`: the store benchmark's mix (plain, QP, base64,
/// HTML, alternatives, forwarded messages, 4 % with 40–400 KB attachments, 2 % header-less
/// junk). `mbox`: the mixed workload's corpus (`gen::mbox_message`). `pop3`: plain-text messages of about `--size` octets (default 50,000) whose body has
/// lines starting with "." (dot-stuffing on RETR).
fn cmd_gen(args: &Args) -> Res<()> {
    let out = args.str("out")?;
    let n: u64 = args.num("messages", None)?;
    let seed: u64 = args.num("seed", Some(2026))?;
    let size: usize = args.num("size", Some(50_000))?;
    let kind = args.str_or("kind", "realistic");
    let mut w = BufWriter::new(File::create(out)?);
    let mut total = 0u64;
    for i in 0..n {
        let mut rng = gen::Rng::new(seed.wrapping_add(i.wrapping_mul(7919)));
        let mut msg = match kind {
            "realistic" => gen::message(&mut rng, gen::REALISTIC).to_vec(),
            "mbox" => gen::mbox_message(&mut rng).to_vec(),
            "pop3" => pop3_message(&mut rng, size, i),
            other => return Err(format!("--kind {other}: realistic, mbox or pop3").into()),
        };
        // NUL is not allowed in IMAP literals (RFC 3501 §4.3); servers differ in what they do
        // with it, so the junk messages carry a space instead.
        for b in &mut msg {
            if *b == 0 {
                *b = b' ';
            }
        }
        let len = u32::try_from(msg.len())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&msg)?;
        total += msg.len() as u64;
    }
    w.flush()?;
    eprintln!(
        "{out}: {n} {kind} messages, {total} octets, {} on average",
        total / n.max(1)
    );
    Ok(())
}

fn pop3_message(rng: &mut gen::Rng, size: usize, i: u64) -> Vec<u8> {
    let target = size - size / 10 + rng.below((size / 5) as u64 + 1) as usize;
    let (date, _) = gen::date(rng);
    let mut m = format!(
        "From: Sender {i} <sender{}@example.com>\r\nTo: user@example.org\r\n\
         Subject: {} {}\r\nDate: {date}\r\nMessage-ID: <{}.{i}@gen.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n",
        rng.below(50),
        rng.pick::<&str>(gen::WORDS),
        rng.pick::<&str>(gen::WORDS),
        rng.next()
    )
    .into_bytes();
    // Bounded: every line adds at least one word.
    let mut line = String::new();
    while m.len() < target {
        line.clear();
        if rng.chance(3) {
            line.push('.');
        }
        while line.len() < 60 {
            if !line.is_empty() && !line.ends_with('.') {
                line.push(' ');
            }
            line.push_str(rng.pick::<&str>(gen::WORDS));
        }
        m.extend_from_slice(line.as_bytes());
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// The offsets and lengths of a spool's messages.
struct Spool {
    file: File,
    index: Vec<(u64, u32)>,
}

impl Spool {
    fn open(path: &str) -> Res<Spool> {
        let file = File::open(path)?;
        let end = file.metadata()?.len();
        let mut index = Vec::new();
        let mut at = 0u64;
        // Bounded by the file's length: every step advances by at least four octets.
        while at < end {
            let mut len = [0u8; 4];
            file.read_exact_at(&mut len, at)?;
            let len = u32::from_le_bytes(len);
            index.push((at + 4, len));
            at += 4 + u64::from(len);
        }
        Ok(Spool { file, index })
    }

    fn read(&self, i: usize, buf: &mut Vec<u8>) -> Res<()> {
        let &(at, len) = self
            .index
            .get(i)
            .ok_or_else(|| format!("message {i} is not in the spool"))?;
        buf.resize(len as usize, 0);
        self.file.read_exact_at(buf, at)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

fn tls_config() -> Res<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let config = tls::insecure_config()?;
    Ok(CONFIG.get_or_init(|| config).clone())
}

/// Connects to 127.0.0.1 (and nowhere else), optionally with implicit TLS.
fn connect(port: u16, tls: bool) -> Res<Stream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    if !tls {
        return Ok(Stream::Plain(tcp));
    }
    let conn = ClientConnection::new(tls_config()?, ServerName::try_from("localhost")?)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    // Bounded: each round moves handshake bytes or fails (the socket has timeouts).
    for _ in 0..100 {
        if !s.conn.is_handshaking() {
            return Ok(Stream::Tls(Box::new(s)));
        }
        s.conn.complete_io(&mut s.sock)?;
    }
    Err("TLS handshake did not finish".into())
}

// ---------------------------------------------------------------------------------------------
// IMAP client (just what the benchmark needs)

struct Imap {
    io: BufReader<Stream>,
    tag: u32,
    out: Vec<u8>,
    literal_plus: bool,
    line: Vec<u8>,
}

impl Imap {
    fn login(port: u16, user: &str, pass: &str) -> Res<Imap> {
        let mut imap = Imap {
            io: BufReader::with_capacity(64 * 1024, connect(port, false)?),
            tag: 0,
            out: Vec::with_capacity(64 * 1024),
            literal_plus: false,
            line: Vec::new(),
        };
        imap.read_line()?;
        if !imap.line.starts_with(b"* OK") {
            return Err(format!("greeting: {}", String::from_utf8_lossy(&imap.line)).into());
        }
        let mut caps = Vec::new();
        imap.run(b"CAPABILITY", |l| {
            if l.starts_with(b"* CAPABILITY") {
                caps = l.to_vec();
            }
        })?;
        imap.literal_plus = caps
            .split(|&b| b == b' ' || b == b'\r' || b == b'\n')
            .any(|c| c.eq_ignore_ascii_case(b"LITERAL+"));
        imap.run(format!("LOGIN \"{user}\" \"{pass}\"").as_bytes(), |_| {})?;
        Ok(imap)
    }

    /// Reads one response line into `self.line`, literals included.
    fn read_line(&mut self) -> Res<()> {
        self.line.clear();
        // Bounded by the server's response: each round consumes a line and a literal.
        for _ in 0..100_000 {
            let start = self.line.len();
            if self.io.read_until(b'\n', &mut self.line)? == 0 {
                return Err("connection closed".into());
            }
            let piece = &self.line[start..];
            let Some(n) = literal_length(piece) else {
                return Ok(());
            };
            let old = self.line.len();
            self.line.resize(old + n, 0);
            self.io.read_exact(&mut self.line[old..])?;
        }
        Err("response line with too many literals".into())
    }

    /// Sends a command (a tag is prepended) and reads to its tagged completion, handing every
    /// untagged line to `each`. A completion other than OK is an error.
    fn run(&mut self, cmd: &[u8], mut each: impl FnMut(&[u8])) -> Res<()> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.out.clear();
        self.out.extend_from_slice(tag.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(cmd);
        self.out.extend_from_slice(b"\r\n");
        self.io.get_mut().write_all(&self.out)?;
        self.complete(&tag, &mut each)
    }

    fn complete(&mut self, tag: &str, each: &mut impl FnMut(&[u8])) -> Res<()> {
        loop {
            self.read_line()?;
            if self.line.starts_with(tag.as_bytes()) && self.line.get(tag.len()) == Some(&b' ') {
                let status = &self.line[tag.len() + 1..];
                if status.starts_with(b"OK") {
                    return Ok(());
                }
                return Err(String::from_utf8_lossy(&self.line)
                    .trim_end()
                    .to_string()
                    .into());
            }
            each(&self.line);
        }
    }

    /// APPEND of one message, or MULTIAPPEND (RFC 3502) of several: `(flags, message)`.
    fn append(&mut self, mailbox: &str, messages: &[(&str, &[u8])]) -> Res<()> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.out.clear();
        let plus = if self.literal_plus { "+" } else { "" };
        write!(self.out, "{tag} APPEND {mailbox}")?;
        for (flags, msg) in messages {
            write!(self.out, " {flags}{{{}{plus}}}\r\n", msg.len())?;
            if !self.literal_plus {
                self.io.get_mut().write_all(&self.out)?;
                self.out.clear();
                self.read_line()?;
                if !self.line.starts_with(b"+") {
                    return Err(format!(
                        "APPEND: {}",
                        String::from_utf8_lossy(&self.line).trim_end()
                    )
                    .into());
                }
            }
            self.out.extend_from_slice(msg);
        }
        self.out.extend_from_slice(b"\r\n");
        self.io.get_mut().write_all(&self.out)?;
        self.complete(&tag, &mut |_| {})
    }

    /// SELECT; returns EXISTS.
    fn select(&mut self, mailbox: &str) -> Res<u64> {
        let mut exists = 0;
        self.run(format!("SELECT {mailbox}").as_bytes(), |l| {
            if let Some(n) = untagged_number(l, b"EXISTS") {
                exists = n;
            }
        })?;
        Ok(exists)
    }

    fn logout(mut self) {
        let _ = self.run(b"LOGOUT", |_| {});
    }
}

/// `n` when a line ends with a literal announcement `{n}\r\n`.
fn literal_length(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `n` from `* n WORD`.
fn untagged_number(line: &[u8], word: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"* ")?;
    let space = rest.iter().position(|&b| b == b' ')?;
    let after = &rest[space + 1..];
    if after.len() >= word.len() && after[..word.len()].eq_ignore_ascii_case(word) {
        std::str::from_utf8(&rest[..space]).ok()?.parse().ok()
    } else {
        None
    }
}

/// Runs a SELECT that enables CONDSTORE; returns UIDVALIDITY, HIGHESTMODSEQ and EXISTS.
fn condstore_select(imap: &mut Imap, cmd: &[u8]) -> Res<(u64, u64, u64)> {
    let (mut validity, mut modseq, mut exists) = (0, 0, 0);
    imap.run(cmd, |l| {
        if let Some(n) = code_number(l, b"[UIDVALIDITY ") {
            validity = n;
        }
        if let Some(n) = code_number(l, b"[HIGHESTMODSEQ ") {
            modseq = n;
        }
        if let Some(n) = untagged_number(l, b"EXISTS") {
            exists = n;
        }
    })?;
    if modseq == 0 || exists == 0 {
        return Err("SELECT (CONDSTORE): no HIGHESTMODSEQ or an empty mailbox".into());
    }
    Ok((validity, modseq, exists))
}

/// The number after `code` in a response line (`[HIGHESTMODSEQ 42]`).
fn code_number(line: &[u8], code: &[u8]) -> Option<u64> {
    let at = line.windows(code.len()).position(|w| w == code)? + code.len();
    let digits: Vec<u8> = line[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// `n` message numbers spread evenly over `1..=exists`, shifted by `offset` (so that sets
/// with different offsets do not meet), as a comma-separated set.
fn spread(exists: u64, n: u64, offset: u64) -> String {
    let step = (exists / n.max(1)).max(1);
    (0..n.min(exists))
        .map(|i| (i * step + offset).min(exists - 1) + 1)
        .map(|seq| seq.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn is_fetch(line: &[u8]) -> bool {
    line.starts_with(b"* ")
        && line
            .windows(7)
            .take(16)
            .any(|w| w.eq_ignore_ascii_case(b" FETCH "))
}

// ---------------------------------------------------------------------------------------------
// APPEND

/// Appends spool messages `from..to` to each listed user's INBOX with `--clients` connections
/// per user; message i goes to client `i % clients`, `--batch` messages per command
/// (MULTIAPPEND when more than one). The clock starts when every client has logged in. Every
/// third message gets `\Seen`.
fn cmd_append(args: &Args) -> Res<()> {
    let port: u16 = args.num("port", None)?;
    let users: Vec<String> = args.str("users")?.split(',').map(String::from).collect();
    let pass = args.str_or("pass", "wonderland").to_string();
    let spool = Arc::new(Spool::open(args.str("spool")?)?);
    let from: usize = args.num("from", Some(0))?;
    let to: usize = args.num("to", Some(spool.index.len()))?;
    let to = to.min(spool.index.len());
    let clients: usize = args.num("clients", Some(1))?;
    let batch: usize = args.num("batch", Some(1))?;
    let label = args.str_or("label", "server");
    let key = args.str_or("key", "append");
    let deadline = args.deadline(1800)?;
    if clients == 0 || batch == 0 || from >= to {
        return Err("nothing to append".into());
    }
    let workers = users.len() * clients;
    let barrier = Arc::new(Barrier::new(workers + 1));
    let mut handles = Vec::new();
    for user in &users {
        for k in 0..clients {
            let (spool, barrier, user, pass) =
                (spool.clone(), barrier.clone(), user.clone(), pass.clone());
            handles.push(std::thread::spawn(move || -> Res<(u64, u64, Instant)> {
                let imap = Imap::login(port, &user, &pass);
                barrier.wait();
                let mut imap = imap?;
                let mine: Vec<usize> = (from + k..to).step_by(clients).collect();
                let mut bufs = vec![Vec::new(); batch];
                let (mut count, mut octets) = (0u64, 0u64);
                for chunk in mine.chunks(batch) {
                    if Instant::now() > deadline {
                        eprintln!("append: --max-seconds reached after {count} messages");
                        break;
                    }
                    for (&i, buf) in chunk.iter().zip(bufs.iter_mut()) {
                        spool.read(i, buf)?;
                    }
                    let messages: Vec<(&str, &[u8])> = chunk
                        .iter()
                        .zip(bufs.iter())
                        .map(|(&i, buf)| (if i % 3 == 0 { "(\\Seen) " } else { "" }, &buf[..]))
                        .collect();
                    imap.append("INBOX", &messages)?;
                    count += chunk.len() as u64;
                    octets += messages.iter().map(|(_, m)| m.len() as u64).sum::<u64>();
                }
                let end = Instant::now();
                imap.logout();
                Ok((count, octets, end))
            }));
        }
    }
    barrier.wait();
    let start = Instant::now();
    let (mut count, mut octets, mut end) = (0, 0, start);
    for h in handles {
        let (c, o, e) = h.join().map_err(|_| "append thread panicked")??;
        count += c;
        octets += o;
        end = end.max(e);
    }
    let secs = (end - start).as_secs_f64().max(1e-9);
    eprintln!(
        "{label} {key}: {count} messages ({:.1} MB) in {secs:.1} s with {workers} clients",
        octets as f64 / 1e6
    );
    result(label, &format!("{key}_msgs"), count);
    result(
        label,
        &format!("{key}_per_s"),
        format!("{:.1}", count as f64 / secs),
    );
    result(label, &format!("{key}_octets"), octets);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// IMAP read operations and STORE/EXPUNGE

/// Runs one operation, each repetition on a fresh connection (log in and SELECT untimed,
/// then the timed command), and reports the first time, and the median and best of the
/// repetitions after it.
fn cmd_imap(args: &Args) -> Res<()> {
    let port: u16 = args.num("port", None)?;
    let user = args.str("user")?;
    let pass = args.str_or("pass", "wonderland");
    let op = args.str("op")?;
    let arg = args.str_or("arg", "");
    let label = args.str_or("label", "server");
    let reps: usize = args.num("reps", Some(5))?;
    let deadline = args.deadline(120)?;
    let key = op.replace('-', "_");

    if op == "store" || op == "expunge" {
        let count: u64 = args.num("count", Some(10_000))?;
        let mut imap = Imap::login(port, user, pass)?;
        let exists = imap.select("INBOX")?;
        let count = count.min(exists);
        let mut responses = 0u64;
        let start = Instant::now();
        if op == "store" {
            imap.run(
                format!("STORE 1:{count} +FLAGS (\\Deleted)").as_bytes(),
                |l| responses += u64::from(is_fetch(l)),
            )?;
        } else {
            imap.run(b"EXPUNGE", |l| {
                responses += u64::from(untagged_number(l, b"EXPUNGE").is_some())
            })?;
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        imap.logout();
        eprintln!("{label} {op}: {ms:.1} ms, {responses} responses");
        result(label, &format!("{key}_ms"), format!("{ms:.1}"));
        result(label, &format!("{key}_count"), responses);
        return Ok(());
    }

    let mut times = Vec::new();
    let mut counts = Vec::new();
    // Bounded by --reps and by the deadline (at least one repetition).
    for _ in 0..reps.max(1) {
        if !times.is_empty() && Instant::now() > deadline {
            break;
        }
        if times.len() == 1 {
            // Dovecot rescans a Maildir folder whose modification time is within the last
            // second or so (a change in the same second could otherwise be missed), so right
            // after a write every SELECT costs a directory scan. A pause after the first run
            // lets the later runs show the steady state.
            std::thread::sleep(SETTLE);
        }
        let mut imap = Imap::login(port, user, pass)?;
        let mut count = 0u64;
        let start;
        match op {
            "select" => {
                start = Instant::now();
                count = imap.select("INBOX")?;
            }
            "fetch-flags" => {
                imap.select("INBOX")?;
                start = Instant::now();
                imap.run(b"UID FETCH 1:* (UID FLAGS)", |l| {
                    count += u64::from(is_fetch(l))
                })?;
            }
            "envelope" | "preview" => {
                let exists = imap.select("INBOX")?;
                let first = exists.saturating_sub(999).max(1);
                let item = if op == "envelope" {
                    "ENVELOPE"
                } else {
                    "PREVIEW"
                };
                start = Instant::now();
                imap.run(format!("FETCH {first}:* ({item})").as_bytes(), |l| {
                    count += u64::from(is_fetch(l))
                })?;
            }
            "search-text" | "search-from" => {
                imap.select("INBOX")?;
                let what = if op == "search-text" { "TEXT" } else { "FROM" };
                start = Instant::now();
                imap.run(format!("UID SEARCH {what} \"{arg}\"").as_bytes(), |l| {
                    if let Some(rest) = l.strip_prefix(b"* SEARCH") {
                        count = rest
                            .split(|&b| b == b' ')
                            .filter(|w| w.first().is_some_and(u8::is_ascii_digit))
                            .count() as u64;
                    }
                })?;
            }
            "sort-date" | "sort-subject" | "sort-arrival-search" => {
                imap.select("INBOX")?;
                let program = match op {
                    "sort-date" => "(DATE) UTF-8 ALL",
                    "sort-subject" => "(SUBJECT) UTF-8 ALL",
                    _ => "(ARRIVAL) UTF-8 UNSEEN",
                };
                start = Instant::now();
                imap.run(format!("UID SORT {program}").as_bytes(), |l| {
                    if let Some(rest) = l.strip_prefix(b"* SORT") {
                        count = rest
                            .split(|&b| b == b' ')
                            .filter(|w| w.first().is_some_and(u8::is_ascii_digit))
                            .count() as u64;
                    }
                })?;
            }
            "thread-references" => {
                imap.select("INBOX")?;
                start = Instant::now();
                imap.run(b"UID THREAD REFERENCES UTF-8 ALL", |l| {
                    if let Some(rest) = l.strip_prefix(b"* THREAD") {
                        // Top-level threads: the lists opened at depth zero.
                        let mut depth = 0i64;
                        for &b in rest {
                            if b == b'(' {
                                count += u64::from(depth == 0);
                                depth += 1;
                            } else if b == b')' {
                                depth -= 1;
                            }
                        }
                    }
                })?;
            }
            "changedsince" => {
                // Untimed: 10 flag changes spread over the mailbox after MODSEQ m.
                let (_, m, exists) = condstore_select(&mut imap, b"SELECT INBOX (CONDSTORE)")?;
                let toggle = if times.len() % 2 == 0 { '+' } else { '-' };
                let set = spread(exists, 10, 0);
                imap.run(
                    format!("STORE {set} {toggle}FLAGS.SILENT (\\Flagged)").as_bytes(),
                    |_| {},
                )?;
                start = Instant::now();
                imap.run(
                    format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m})").as_bytes(),
                    |l| count += u64::from(is_fetch(l)),
                )?;
            }
            "qresync" => {
                // Untimed: after MODSEQ m, another session makes 100 flag changes and 100
                // expunges; this one then comes back with QRESYNC from m.
                let mut other = Imap::login(port, user, pass)?;
                other.run(b"ENABLE QRESYNC", |_| {})?;
                let (validity, m, exists) =
                    condstore_select(&mut other, b"SELECT INBOX (CONDSTORE)")?;
                let toggle = if times.len() % 2 == 0 { '+' } else { '-' };
                other.run(
                    format!(
                        "STORE {} {toggle}FLAGS.SILENT (\\Answered)",
                        spread(exists, 100, 1)
                    )
                    .as_bytes(),
                    |_| {},
                )?;
                other.run(
                    format!("STORE {} +FLAGS.SILENT (\\Deleted)", spread(exists, 100, 2))
                        .as_bytes(),
                    |_| {},
                )?;
                other.run(b"EXPUNGE", |_| {})?;
                other.logout();
                imap.run(b"ENABLE QRESYNC", |_| {})?;
                start = Instant::now();
                imap.run(
                    format!("SELECT INBOX (QRESYNC ({validity} {m}))").as_bytes(),
                    |l| count += u64::from(is_fetch(l) || l.starts_with(b"* VANISHED")),
                )?;
            }
            other => return Err(format!("--op {other}: unknown").into()),
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        counts.push(count);
        imap.logout();
    }
    let first = times[0];
    // The first run after the build is reported on its own (caches are cold, Dovecot may
    // still be synchronising its Maildir); the median is of the runs after it.
    let mut sorted = if times.len() > 1 {
        times[1..].to_vec()
    } else {
        times.clone()
    };
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let best = sorted[0];
    eprintln!(
        "{label} {op}: first {first:.1} ms, then median {median:.1} ms, best {best:.1} ms; all runs (ms) {times:.1?}; results {counts:?}",
    );
    result(label, &format!("{key}_ms"), format!("{median:.1}"));
    result(label, &format!("{key}_first_ms"), format!("{first:.1}"));
    result(label, &format!("{key}_best_ms"), format!("{best:.1}"));
    result(label, &format!("{key}_runs"), times.len());
    result(label, &format!("{key}_count"), counts[0]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// POP3 RETR

/// One client per listed user: log in, STAT, then (once every client is ready) RETR every
/// message in order, one command at a time, and QUIT (a server may apply the session's
/// changes then). Throughput counts the octets received. Repeated `--rounds` times on fresh
/// connections; the median round is reported. With `--reset-seen IMAP_PORT`, every round
/// is preceded (untimed) by clearing `\Seen` on each account over IMAP, so each round
/// downloads "new" mail, which the server marks `\Seen` as RETR does.
fn cmd_pop3(args: &Args) -> Res<()> {
    let port: u16 = args.num("port", None)?;
    let users: Vec<String> = args.str("users")?.split(',').map(String::from).collect();
    let pass = args.str_or("pass", "wonderland");
    let tls = args.flag("tls");
    let label = args.str_or("label", "server");
    let key = args.str_or("key", "retr");
    let rounds: usize = args.num("rounds", Some(3))?;
    let reset: Option<u16> = match args.0.get("reset-seen") {
        Some(_) => Some(args.num("reset-seen", None)?),
        None => None,
    };
    let deadline = args.deadline(600)?;
    let mut rates = Vec::new();
    let mut retrieved = 0;
    // Bounded by --rounds and the deadline (at least one round).
    for _ in 0..rounds.max(1) {
        if !rates.is_empty() && Instant::now() > deadline {
            break;
        }
        if let Some(imap_port) = reset {
            for user in &users {
                let mut imap = Imap::login(imap_port, user, pass)?;
                imap.select("INBOX")?;
                imap.run(b"STORE 1:* -FLAGS.SILENT (\\Seen)", |_| {})?;
                imap.logout();
            }
        }
        let (count, octets, secs) = pop3_round(port, &users, pass, tls, deadline)?;
        let mbps = octets as f64 / 1e6 / secs;
        eprintln!(
            "{label} {key}: {count} messages, {:.1} MB in {secs:.2} s = {mbps:.1} MB/s ({} clients, tls={tls})",
            octets as f64 / 1e6,
            users.len()
        );
        rates.push(mbps);
        retrieved = count;
    }
    rates.sort_by(f64::total_cmp);
    result(
        label,
        &format!("{key}_mb_per_s"),
        format!("{:.1}", rates[rates.len() / 2]),
    );
    result(label, &format!("{key}_messages"), retrieved);
    Ok(())
}

fn pop3_round(
    port: u16,
    users: &[String],
    pass: &str,
    tls: bool,
    deadline: Instant,
) -> Res<(u64, u64, f64)> {
    let barrier = Arc::new(Barrier::new(users.len() + 1));
    let mut handles = Vec::new();
    for user in users {
        let (barrier, user, pass) = (barrier.clone(), user.clone(), pass.to_string());
        handles.push(std::thread::spawn(move || -> Res<(u64, u64, Instant)> {
            let ready = pop3_login(port, tls, &user, &pass);
            barrier.wait();
            let (mut stream, messages) = ready?;
            let mut buf = vec![0u8; 256 * 1024];
            let (mut retrieved, mut octets) = (0u64, 0u64);
            for i in 1..=messages {
                if Instant::now() > deadline {
                    eprintln!("pop3: --max-seconds reached after {retrieved} messages");
                    break;
                }
                stream.write_all(format!("RETR {i}\r\n").as_bytes())?;
                octets += read_multiline(&mut stream, &mut buf)?;
                retrieved += 1;
            }
            stream.write_all(b"QUIT\r\n")?;
            let mut line = Vec::new();
            pop3_line(&mut stream, &mut line)?;
            Ok((retrieved, octets, Instant::now()))
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let (mut retrieved, mut octets, mut end) = (0, 0, start);
    for h in handles {
        let (r, o, e) = h.join().map_err(|_| "pop3 thread panicked")??;
        retrieved += r;
        octets += o;
        end = end.max(e);
    }
    Ok((retrieved, octets, (end - start).as_secs_f64().max(1e-9)))
}

/// Connects, logs in with USER/PASS, returns the stream and STAT's message count.
fn pop3_login(port: u16, tls: bool, user: &str, pass: &str) -> Res<(Stream, u64)> {
    let mut stream = connect(port, tls)?;
    let mut line = Vec::new();
    pop3_line(&mut stream, &mut line)?;
    for cmd in [format!("USER {user}\r\n"), format!("PASS {pass}\r\n")] {
        stream.write_all(cmd.as_bytes())?;
        pop3_line(&mut stream, &mut line)?;
    }
    stream.write_all(b"STAT\r\n")?;
    pop3_line(&mut stream, &mut line)?;
    let count = line
        .split(|&b| b == b' ')
        .nth(1)
        .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
        .ok_or("STAT: no count")?;
    Ok((stream, count))
}

/// Reads one status line, byte by byte (only used before the timed part).
fn pop3_line(stream: &mut Stream, line: &mut Vec<u8>) -> Res<()> {
    line.clear();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if line.len() > 4096 {
            return Err("POP3 line too long".into());
        }
        if stream.read(&mut b)? == 0 {
            return Err("connection closed".into());
        }
        line.push(b[0]);
    }
    if !line.starts_with(b"+OK") {
        return Err(format!("POP3: {}", String::from_utf8_lossy(line).trim_end()).into());
    }
    Ok(())
}

/// Reads a multi-line response (`+OK …` to the `.` line) and returns its length. Nothing is
/// pipelined, so the response is complete exactly when the received octets end with
/// CRLF "." CRLF (byte-stuffing keeps that sequence out of the message itself).
fn read_multiline(stream: &mut Stream, buf: &mut [u8]) -> Res<u64> {
    let mut total = 0u64;
    let mut tail = [0u8; 5];
    let mut first = true;
    loop {
        let n = stream.read(buf)?;
        if n == 0 {
            return Err("connection closed during RETR".into());
        }
        let chunk = &buf[..n];
        if first {
            if chunk.starts_with(b"-ERR") {
                return Err(format!("RETR: {}", String::from_utf8_lossy(chunk).trim_end()).into());
            }
            first = false;
        }
        total += n as u64;
        if n >= 5 {
            tail.copy_from_slice(&chunk[n - 5..]);
        } else {
            tail.rotate_left(n);
            tail[5 - n..].copy_from_slice(chunk);
        }
        if &tail == b"\r\n.\r\n" {
            return Ok(total);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Report

/// Reads `RESULT label key value` and `META key value` lines and prints the Markdown tables.
fn cmd_report(path: &str) -> Res<()> {
    let text = std::fs::read_to_string(path)?;
    let mut r: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("RESULT"), Some(label), Some(key), Some(value)) => {
                r.insert((label.into(), key.into()), value.into());
            }
            (Some("META"), Some(key), Some(v1), v2) => {
                let value = match v2 {
                    Some(v2) => format!("{v1} {v2}"),
                    None => v1.to_string(),
                };
                meta.insert(key.into(), value);
            }
            _ => {}
        }
    }
    let value = |label: &str, key: &str| -> Option<f64> {
        r.get(&(label.to_string(), key.to_string()))?.parse().ok()
    };
    // Messages and raw octets are what the two APPEND phases stored.
    let get = |label: &str, key: &str| -> Option<f64> {
        let phases = |what: &str| {
            let parts =
                ["append1", "append8", "import"].map(|p| value(label, &format!("{p}_{what}")));
            parts
                .iter()
                .any(Option::is_some)
                .then(|| parts.iter().flatten().sum())
        };
        match key {
            "messages" => phases("msgs"),
            "raw_bytes" => phases("octets"),
            _ => value(label, key),
        }
    };
    let m = |key: &str| meta.get(key).cloned().unwrap_or_else(|| "?".into());
    let (t, d) = ("tern", "dovecot");

    println!(
        "#### Store (IMAP, {} messages)\n",
        group(get(t, "messages").unwrap_or(0.0))
    );
    println!("| operation | tern | Dovecot | tern ÷ Dovecot | |");
    println!("|---|---:|---:|---:|---|");
    // (title, key, unit, higher is better)
    let rows: Vec<(String, &str, &str, bool)> = vec![
        (
            format!(
                "APPEND, 1 client (first {})",
                group(get(t, "append1_msgs").unwrap_or(0.0))
            ),
            "append1_per_s",
            "msg/s",
            true,
        ),
        (
            format!(
                "APPEND, 8 clients (the next {})",
                group(get(t, "append8_msgs").unwrap_or(0.0))
            ),
            "append8_per_s",
            "msg/s",
            true,
        ),
        (
            format!(
                "MULTIAPPEND of {}, 1 client (the other {})",
                m("import_batch"),
                group(get(t, "import_msgs").unwrap_or(0.0))
            ),
            "import_per_s",
            "msg/s",
            true,
        ),
        ("SELECT INBOX".into(), "select_ms", "ms", false),
        (
            "UID FETCH 1:* (UID FLAGS)".into(),
            "fetch_flags_ms",
            "ms",
            false,
        ),
        (
            "FETCH last 1,000 (ENVELOPE)".into(),
            "envelope_ms",
            "ms",
            false,
        ),
        (
            "FETCH last 1,000 (PREVIEW)".into(),
            "preview_ms",
            "ms",
            false,
        ),
        (
            format!(
                "UID SEARCH TEXT \"{}\" ({} hits)",
                m("text"),
                hits(&get, "search_text_count")
            ),
            "search_text_ms",
            "ms",
            false,
        ),
        (
            format!(
                "UID SEARCH FROM \"{}\" ({} hits)",
                m("from"),
                hits(&get, "search_from_count")
            ),
            "search_from_ms",
            "ms",
            false,
        ),
        (
            "UID SORT (DATE) UTF-8 ALL".into(),
            "sort_date_ms",
            "ms",
            false,
        ),
        (
            "UID SORT (SUBJECT) UTF-8 ALL".into(),
            "sort_subject_ms",
            "ms",
            false,
        ),
        (
            format!(
                "UID SORT (ARRIVAL) UTF-8 UNSEEN ({} hits)",
                hits(&get, "sort_arrival_search_count")
            ),
            "sort_arrival_search_ms",
            "ms",
            false,
        ),
        (
            format!(
                "UID THREAD REFERENCES UTF-8 ALL ({} threads)",
                hits(&get, "thread_references_count")
            ),
            "thread_references_ms",
            "ms",
            false,
        ),
        (
            format!(
                "UID FETCH 1:* (FLAGS) (CHANGEDSINCE m), {} changed since m",
                hits(&get, "changedsince_count")
            ),
            "changedsince_ms",
            "ms",
            false,
        ),
        (
            format!(
                "SELECT INBOX (QRESYNC (v m)) after 100 expunges, 100 flag changes ({} responses)",
                hits(&get, "qresync_count")
            ),
            "qresync_ms",
            "ms",
            false,
        ),
        (
            format!("STORE 1:{} +FLAGS (\\Deleted)", m("store_count")),
            "store_ms",
            "ms",
            false,
        ),
        (
            format!("EXPUNGE of those {}", m("store_count")),
            "expunge_ms",
            "ms",
            false,
        ),
    ];
    for (title, key, unit, higher_better) in &rows {
        row(title, get(t, key), get(d, key), unit, *higher_better);
    }
    for (title, key) in [
        ("SELECT INBOX", "select_first_ms"),
        ("UID FETCH 1:* (UID FLAGS)", "fetch_flags_first_ms"),
        ("FETCH last 1,000 (ENVELOPE)", "envelope_first_ms"),
        ("FETCH last 1,000 (PREVIEW)", "preview_first_ms"),
        ("UID SEARCH TEXT", "search_text_first_ms"),
        ("UID SEARCH FROM", "search_from_first_ms"),
        ("UID SORT (DATE) UTF-8 ALL", "sort_date_first_ms"),
        ("UID SORT (SUBJECT) UTF-8 ALL", "sort_subject_first_ms"),
        (
            "UID SORT (ARRIVAL) UTF-8 UNSEEN",
            "sort_arrival_search_first_ms",
        ),
        (
            "UID THREAD REFERENCES UTF-8 ALL",
            "thread_references_first_ms",
        ),
    ] {
        let title = format!("{title}, first run after the build");
        let title = title.as_str();
        row(title, get(t, key), get(d, key), "ms", false);
    }
    let per = |label: &str| Some(get(label, "disk_bytes")? / get(label, "messages")?);
    row("disk per message", per(t), per(d), "bytes", false);
    if let (Some(raw), Some(n)) = (get(t, "raw_bytes"), get(t, "messages")) {
        println!(
            "| raw message size (average) | {} bytes | {} bytes | | tern {:.2}× raw, Dovecot {:.2}× raw |",
            group(raw / n),
            group(raw / n),
            per(t).unwrap_or(0.0) / (raw / n),
            per(d).unwrap_or(0.0) / (raw / n)
        );
    }

    println!(
        "\n#### POP3 RETR ({} messages of ~{} octets per account)\n",
        m("pop3_messages"),
        m("pop3_size")
    );
    println!(
        "| clients | transport | new mail: tern MB/s | Dovecot MB/s | tern ÷ Dovecot \
         | again: tern MB/s | Dovecot MB/s | tern ÷ Dovecot |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let n = m("pop3_clients");
    for (clients, transport, key) in [
        ("1", "plain", "retr_plain_1"),
        (n.as_str(), "plain", "retr_plain_n"),
        ("1", "TLS", "retr_tls_1"),
        (n.as_str(), "TLS", "retr_tls_n"),
    ] {
        let mut line = format!("| {clients} | {transport} |");
        for phase in ["new", "again"] {
            let key = format!("{key}_{phase}_mb_per_s");
            let (a, b) = (get(t, &key), get(d, &key));
            line += &format!(
                " {} | {} | {} |",
                a.map_or("–".into(), |v| format!("{v:.1}")),
                b.map_or("–".into(), |v| format!("{v:.1}")),
                ratio(a, b)
            );
        }
        println!("{line}");
    }
    println!("\n{}; {}; {}.", m("machine"), m("date"), m("dovecot"));
    Ok(())
}

fn hits(get: &impl Fn(&str, &str) -> Option<f64>, key: &str) -> String {
    match (get("tern", key), get("dovecot", key)) {
        (Some(a), Some(b)) if a == b => group(a),
        (a, b) => format!(
            "tern {}, Dovecot {}",
            a.map_or("?".into(), group),
            b.map_or("?".into(), group)
        ),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

fn row(title: &str, a: Option<f64>, b: Option<f64>, unit: &str, higher_better: bool) {
    let fmt = |v: Option<f64>| match v {
        Some(v) if unit == "ms" && v < 100.0 => format!("{v:.1} {unit}"),
        Some(v) => format!("{} {unit}", group(v)),
        None => "–".into(),
    };
    let verdict = match (a, b) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => {
            let speedup = if higher_better { a / b } else { b / a };
            let what = if unit == "bytes" { "smaller" } else { "faster" };
            let opposite = if unit == "bytes" { "larger" } else { "slower" };
            if speedup >= 1.0 {
                format!("tern {speedup:.1}× {what}")
            } else {
                format!("tern {:.1}× {opposite}", 1.0 / speedup)
            }
        }
        _ => String::new(),
    };
    println!(
        "| {title} | {} | {} | {} | {verdict} |",
        fmt(a),
        fmt(b),
        ratio(a, b)
    );
}

/// 1234567 → "1,234,567".
fn group(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}
