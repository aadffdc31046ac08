//! The mixed IMAP workload of the standard stress test (issue 13): N clients on one account's
//! INBOX, each keeping up to ten commands in flight, each checking every response against its
//! model of the mailbox (`model.rs`).
//!
//! Each client's loop, per step (probability, then the chance of repeating at once):
//! LIST 50 %, STATUS 50 %, SELECT, FETCH (a range of up to 100 messages, 1–4 items),
//! FETCH2 (one message's header, text, part 1 or whole body; again 30 %), STORE 50 % (a range,
//! ±FLAGS[.SILENT] of system flags and $Label1…5), STORE +FLAGS \Deleted (one message, two
//! when the view holds over 30, the excess and up to two more when over 35), EXPUNGE, APPEND
//! (the next corpus message, random flags; skipped at 34 messages or more; again 5 %), and in
//! the churn profile LOGOUT and a new connection with LOGIN.
//!
//! Pipelining follows RFC 3501 §5.5: a command that uses sequence numbers (FETCH, STORE) is
//! only sent while every command in flight is one too, since no other command may carry an
//! EXPUNGE that renumbers them. APPEND and LOGOUT wait for an empty pipeline (an APPEND of a
//! large message written while the server writes a large FETCH could otherwise block both
//! ends).

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::model::{Check, Mailbox, Shared};
use crate::response::{classify, code, Parser, Response, Val};
use crate::{connect, gen, result, Args, Imap, Res, Stream};

/// Commands in flight per client at most.
const PIPELINE: usize = 10;
/// A response that takes longer than this is a failure of the run (and of the connection).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// After `--seconds`, clients stop sending and wait at most this long for what is in flight.
const DRAIN: Duration = Duration::from_secs(60);
/// A client that fails to connect this often stops.
const MAX_RECONNECTS: u32 = 200;
/// The view size the workload keeps the mailbox near.
const TARGET: u32 = 30;

pub const MIXED_OPTS: &[&str] = &[
    "port",
    "user",
    "pass",
    "clients",
    "profile",
    "seconds",
    "tls",
    "label",
    "key",
    "corpus",
    "seed",
    "new-keywords",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Login,
    List,
    Status,
    Select,
    Fetch,
    Fetch2,
    Store,
    Delete,
    Expunge,
    Append,
    Logout,
}

const KINDS: [Kind; 11] = [
    Kind::Login,
    Kind::List,
    Kind::Status,
    Kind::Select,
    Kind::Fetch,
    Kind::Fetch2,
    Kind::Store,
    Kind::Delete,
    Kind::Expunge,
    Kind::Append,
    Kind::Logout,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::List => "list",
            Kind::Status => "status",
            Kind::Select => "select",
            Kind::Fetch => "fetch",
            Kind::Fetch2 => "fetch2",
            Kind::Store => "store",
            Kind::Delete => "store_deleted",
            Kind::Expunge => "expunge",
            Kind::Append => "append",
            Kind::Logout => "logout",
        }
    }

    fn uses_seqs(self) -> bool {
        matches!(
            self,
            Kind::Fetch | Kind::Fetch2 | Kind::Store | Kind::Delete
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// FETCH items, as bits.
const UID: u16 = 1;
const FLAGS: u16 = 1 << 1;
const ENVELOPE: u16 = 1 << 2;
const INTERNALDATE: u16 = 1 << 3;
const BODY: u16 = 1 << 4;
const BODYSTRUCTURE: u16 = 1 << 5;
const SIZE: u16 = 1 << 6;
const HEADER_FIELDS: u16 = 1 << 7;
const HEADER: u16 = 1 << 8;
const RFC822_HEADER: u16 = 1 << 9;
const WHOLE: u16 = 1 << 10;
const PART1: u16 = 1 << 11;
const TEXT: u16 = 1 << 12;

/// The FETCH command's plain items: (bit, as sent).
const FETCH_ITEMS: [(u16, &str); 7] = [
    (UID, "UID"),
    (FLAGS, "FLAGS"),
    (ENVELOPE, "ENVELOPE"),
    (INTERNALDATE, "INTERNALDATE"),
    (BODY, "BODY"),
    (BODYSTRUCTURE, "BODYSTRUCTURE"),
    (SIZE, "RFC822.SIZE"),
];
const HEADER_NAMES: [&str; 7] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "References",
    "In-Reply-To",
    "Message-ID",
];
/// FETCH2's items.
const FETCH2_ITEMS: [(u16, &str); 5] = [
    (HEADER, "BODY.PEEK[HEADER]"),
    (RFC822_HEADER, "RFC822.HEADER"),
    (WHOLE, "BODY.PEEK[]"),
    (PART1, "BODY.PEEK[1]"),
    (TEXT, "BODY.PEEK[TEXT]"),
];
const STORE_FLAGS: [&str; 9] = [
    "\\Answered",
    "\\Flagged",
    "\\Seen",
    "\\Draft",
    "$Label1",
    "$Label2",
    "$Label3",
    "$Label4",
    "$Label5",
];

/// The bit of a FETCH response item's name (upper case), if it is one the workload asks for.
fn item_bit(name: &[u8]) -> Option<u16> {
    Some(match name {
        b"UID" => UID,
        b"FLAGS" => FLAGS,
        b"ENVELOPE" => ENVELOPE,
        b"INTERNALDATE" => INTERNALDATE,
        b"BODY" => BODY,
        b"BODYSTRUCTURE" => BODYSTRUCTURE,
        b"RFC822.SIZE" => SIZE,
        b"BODY[HEADER]" => HEADER,
        b"RFC822.HEADER" => RFC822_HEADER,
        b"BODY[]" => WHOLE,
        b"BODY[1]" => PART1,
        b"BODY[TEXT]" => TEXT,
        n if n.starts_with(b"BODY[HEADER.FIELDS ") => HEADER_FIELDS,
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StoreOp {
    Add,
    Remove,
    Replace,
}

/// A command in flight.
struct Pending {
    tag: u64,
    kind: Kind,
    sent: Instant,
    /// The message range of a FETCH or STORE.
    range: (u32, u32),
    /// FETCH: the items asked for, and per message those that arrived.
    want: u16,
    got: Vec<u16>,
    /// An EXPUNGE arrived while this command was in flight: its sequence numbers may not be
    /// what the server used, so its per-message checks are skipped.
    unsure: bool,
    /// SELECT: the view was reset (it is the oldest command in flight), EXISTS arrived.
    reset: bool,
    saw_exists: bool,
    /// STATUS: its untagged STATUS arrived.
    saw_status: bool,
    /// APPEND: the corpus message, the highest UID known when sent, the literal still to
    /// send (no LITERAL+).
    message: usize,
    max_uid: u32,
    literal: Option<Vec<u8>>,
}

impl Pending {
    fn new(tag: u64, kind: Kind) -> Pending {
        Pending {
            tag,
            kind,
            sent: Instant::now(),
            range: (0, 0),
            want: 0,
            got: Vec::new(),
            unsure: false,
            reset: false,
            saw_exists: false,
            saw_status: false,
            message: 0,
            max_uid: 0,
            literal: None,
        }
    }

    fn covers(&self, seq: u32) -> bool {
        self.range.0 <= seq && seq <= self.range.1
    }
}

/// Completions and latencies of one client (merged at the end).
#[derive(Default)]
struct Stats {
    /// Per kind: latencies in microseconds of commands completed before the deadline.
    micros: [Vec<u32>; 11],
    /// Per kind: tagged NO to FETCH/STORE, which RFC 2180 §4.1 allows for messages another
    /// session expunged.
    no: [u64; 11],
    /// Every completion, the drain after the deadline included (for commands per CPU-second,
    /// as the CPU is measured over the whole run).
    total: u64,
    /// EXISTS after each SELECT, summed, and the SELECTs counted (the mailbox's mean size).
    exists_sum: u64,
    selects: u64,
}

struct Config {
    port: u16,
    user: String,
    pass: String,
    tls: bool,
    churn: bool,
    seconds: u64,
    /// Keywords never used before that STOREs introduce, spread over the run, and the prefix
    /// that makes them new (the run's key).
    new_keywords: usize,
    keyword_prefix: String,
}

/// A client of the run.
struct Client<'a> {
    id: usize,
    cfg: &'a Config,
    shared: &'a Shared,
    next_message: &'a AtomicUsize,
    keywords_created: &'a AtomicUsize,
    rng: gen::Rng,
    conn: Option<Imap>,
    literal_plus: bool,
    tag: u64,
    inflight: VecDeque<Pending>,
    plan: VecDeque<Kind>,
    mb: Mailbox,
    stats: Stats,
    deadline: Instant,
    /// The connection ended (LOGOUT, BYE or failure) and is to be dropped.
    closing: bool,
}

pub fn cmd_mixed(args: &Args) -> Res<()> {
    let key = args.str_or("key", "mixed");
    let cfg = Config {
        seconds: args.num("seconds", Some(30))?,
        new_keywords: args.num("new-keywords", Some(0))?,
        keyword_prefix: key.chars().filter(char::is_ascii_alphanumeric).collect(),
        port: args.num("port", None)?,
        user: args.str_or("user", "alice").to_string(),
        pass: args.str_or("pass", "wonderland").to_string(),
        tls: args.flag("tls"),
        churn: match args.str_or("profile", "steady") {
            "steady" => false,
            "churn" => true,
            other => return Err(format!("--profile {other}: steady or churn").into()),
        },
    };
    let clients: usize = args.num("clients", Some(10))?;
    let seconds = cfg.seconds;
    let corpus_len: usize = args.num("corpus", Some(2000))?;
    let seed: u64 = args.num("seed", Some(2026))?;
    let label = args.str_or("label", "server");
    if cfg.new_keywords > 20 {
        return Err("--new-keywords: at most 20 (Dovecot's Maildir names hold 26 keywords)".into());
    }
    if clients == 0 || clients > 1000 || seconds == 0 || seconds > 3600 || corpus_len == 0 {
        return Err("--clients 1…1000, --seconds 1…3600, --corpus at least 1".into());
    }
    let corpus: Vec<bytes::Bytes> = (0..corpus_len as u64)
        .map(|i| gen::mbox_message(&mut gen::Rng::new(seed.wrapping_add(i.wrapping_mul(7919)))))
        .collect();
    let shared = Shared::new(corpus);
    let next_message = AtomicUsize::new(0);
    let keywords_created = AtomicUsize::new(0);
    let barrier = Barrier::new(clients + 1);
    let start_cell = std::sync::OnceLock::new();
    let merged = std::thread::scope(|s| -> Res<Stats> {
        let mut handles = Vec::new();
        for id in 0..clients {
            let (cfg, shared, next_message, barrier, start_cell, keywords_created) = (
                &cfg,
                &shared,
                &next_message,
                &barrier,
                &start_cell,
                &keywords_created,
            );
            handles.push(s.spawn(move || {
                barrier.wait();
                let start: Instant = *start_cell.get_or_init(Instant::now);
                let mut c = Client {
                    id,
                    cfg,
                    shared,
                    next_message,
                    keywords_created,
                    rng: gen::Rng::new(seed ^ (id as u64 + 1).wrapping_mul(0x5851_F42D)),
                    conn: None,
                    literal_plus: false,
                    tag: 0,
                    inflight: VecDeque::new(),
                    plan: VecDeque::new(),
                    mb: Mailbox::default(),
                    stats: Stats::default(),
                    deadline: start + Duration::from_secs(seconds),
                    closing: false,
                };
                c.run();
                c.stats
            }));
        }
        barrier.wait();
        let mut all = Stats::default();
        for h in handles {
            let st = h.join().map_err(|_| "client thread panicked")?;
            for k in 0..KINDS.len() {
                all.micros[k].extend_from_slice(&st.micros[k]);
                all.no[k] += st.no[k];
            }
            all.total += st.total;
            all.exists_sum += st.exists_sum;
            all.selects += st.selects;
        }
        Ok(all)
    })?;
    let mut merged = merged;
    let commands: usize = merged.micros.iter().map(Vec::len).sum();
    let rate = commands as f64 / seconds as f64;
    let violations = shared.log.counts();
    let errors: u64 = violations.values().sum();
    eprintln!(
        "{label} {key}: {commands} commands in {seconds} s = {rate:.0}/s with {clients} clients \
         ({}), {errors} protocol errors",
        if cfg.churn { "churn" } else { "steady" }
    );
    result(label, &format!("{key}_commands"), commands);
    result(label, &format!("{key}_commands_total"), merged.total);
    result(
        label,
        &format!("{key}_commands_per_s"),
        format!("{rate:.1}"),
    );
    result(label, &format!("{key}_errors"), errors);
    result(
        label,
        &format!("{key}_mean_exists"),
        format!(
            "{:.1}",
            merged.exists_sum as f64 / merged.selects.max(1) as f64
        ),
    );
    for (kind, n) in &violations {
        result(label, &format!("{key}_error_{kind}"), n);
    }
    for kind in KINDS {
        let v = &mut merged.micros[kind.index()];
        v.sort_unstable();
        let name = kind.name();
        result(label, &format!("{key}_count_{name}"), v.len());
        if !v.is_empty() {
            let pct = |p: usize| f64::from(v[(v.len() - 1) * p / 100]) / 1000.0;
            result(
                label,
                &format!("{key}_p50_{name}_ms"),
                format!("{:.2}", pct(50)),
            );
            result(
                label,
                &format!("{key}_p99_{name}_ms"),
                format!("{:.2}", pct(99)),
            );
        }
        let no = merged.no[kind.index()];
        if no > 0 {
            result(label, &format!("{key}_no_{name}"), no);
        }
    }
    Ok(())
}

impl Client<'_> {
    fn run(&mut self) {
        let mut failures = 0u32;
        let hard_stop = self.deadline + DRAIN;
        // Bounded by the deadline: every round sends a command, reads a response line, or
        // (failing to connect) sleeps.
        while Instant::now() < self.deadline {
            if self.conn.is_none() {
                if let Err(e) = self.open() {
                    self.violation("connect", &format!("{e}"), b"");
                    failures += 1;
                    if failures > MAX_RECONNECTS {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            if let Err(e) = self.step() {
                if !self.closing {
                    let inflight: Vec<&str> = self.inflight.iter().map(|p| p.kind.name()).collect();
                    self.violation("io", &format!("{e}; in flight: {inflight:?}"), b"");
                }
                self.close();
            }
            if self.closing {
                self.close();
            }
        }
        // Bounded by the drain time (reads time out after READ_TIMEOUT).
        while !self.inflight.is_empty() && self.conn.is_some() && Instant::now() < hard_stop {
            if let Err(e) = self.read_one() {
                if !self.closing {
                    self.violation("io", &format!("{e}"), b"");
                }
                self.close();
            }
        }
        if let Some(mut conn) = self.conn.take() {
            if self.inflight.is_empty() {
                let _ = conn.run(b"LOGOUT", |_| {});
            }
        }
    }

    fn violation(&self, kind: &'static str, detail: &str, line: &[u8]) {
        self.shared.log.violation(kind, self.id, detail, line);
    }

    fn close(&mut self) {
        self.conn = None;
        self.inflight.clear();
        self.plan.clear();
        self.mb.reset();
        self.closing = false;
    }

    /// Connects, reads the greeting and sends LOGIN (the rest of the loop may follow it at
    /// once: LOGIN does not use sequence numbers).
    fn open(&mut self) -> Res<()> {
        let stream = connect(self.cfg.port, self.cfg.tls)?;
        match &stream {
            Stream::Plain(s) => s.set_read_timeout(Some(READ_TIMEOUT))?,
            Stream::Tls(s) => s.sock.set_read_timeout(Some(READ_TIMEOUT))?,
        }
        let mut conn = Imap {
            io: BufReader::with_capacity(256 * 1024, stream),
            tag: 0,
            out: Vec::with_capacity(64 * 1024),
            literal_plus: false,
            line: Vec::new(),
        };
        conn.read_line()?;
        if !conn.line.starts_with(b"* OK") {
            return Err(format!("greeting: {}", String::from_utf8_lossy(&conn.line)).into());
        }
        self.note_capabilities(&conn.line.clone());
        self.conn = Some(conn);
        self.plan.clear();
        let login = format!("LOGIN \"{}\" \"{}\"", self.cfg.user, self.cfg.pass);
        self.send(Kind::Login, login.as_bytes(), Pending::new(0, Kind::Login))?;
        Ok(())
    }

    /// A `[CAPABILITY …]` code in a greeting or a LOGIN completion.
    fn note_capabilities(&mut self, line: &[u8]) {
        let Some(at) = line.iter().position(|&b| b == b'[') else {
            return;
        };
        if let Some((name, caps)) = code(line, at) {
            if name.eq_ignore_ascii_case(b"CAPABILITY") {
                self.literal_plus = caps
                    .split(|&b| b == b' ')
                    .any(|c| c.eq_ignore_ascii_case(b"LITERAL+"));
            }
        }
    }

    /// The commands of one loop.
    fn plan_loop(&mut self) {
        let r = &mut self.rng;
        let p = &mut self.plan;
        if r.chance(50) {
            p.push_back(Kind::List);
        }
        if r.chance(50) {
            p.push_back(Kind::Status);
        }
        p.push_back(Kind::Select);
        p.push_back(Kind::Fetch);
        p.push_back(Kind::Fetch2);
        for _ in 0..10 {
            if !r.chance(30) {
                break;
            }
            p.push_back(Kind::Fetch2);
        }
        if r.chance(50) {
            p.push_back(Kind::Store);
        }
        p.push_back(Kind::Delete);
        p.push_back(Kind::Expunge);
        p.push_back(Kind::Append);
        for _ in 0..10 {
            if !r.chance(5) {
                break;
            }
            p.push_back(Kind::Append);
        }
        if self.cfg.churn {
            p.push_back(Kind::Logout);
        }
    }

    /// Sends the next planned command if the pipeline allows it, or reads a response.
    fn step(&mut self) -> Res<()> {
        if self.plan.is_empty() {
            self.plan_loop();
        }
        let Some(&next) = self.plan.front() else {
            return Ok(());
        };
        // Nothing follows a LOGOUT on its connection, nor the header of an APPEND whose
        // literal waits for the server's continuation.
        let blocked = self
            .inflight
            .iter()
            .any(|p| p.literal.is_some() || p.kind == Kind::Logout);
        let ready = !blocked
            && self.inflight.len() < PIPELINE
            && match next {
                k if k.uses_seqs() => self.inflight.iter().all(|p| p.kind.uses_seqs()),
                Kind::Append | Kind::Logout => self.inflight.is_empty(),
                _ => true,
            };
        if !ready {
            return self.read_one();
        }
        self.plan.pop_front();
        self.issue(next)
    }

    /// A random range of at most `max` messages of the view.
    fn range(&mut self, max: u32) -> (u32, u32) {
        let exists = self.mb.exists();
        let len = 1 + self.rng.below(u64::from(exists.min(max))) as u32;
        let lo = 1 + self.rng.below(u64::from(exists - len + 1)) as u32;
        (lo, lo + len - 1)
    }

    fn issue(&mut self, kind: Kind) -> Res<()> {
        let exists = self.mb.exists();
        if kind.uses_seqs() && (!self.mb.selected || exists == 0) {
            return Ok(());
        }
        let mut p = Pending::new(0, kind);
        let cmd: Vec<u8> = match kind {
            Kind::Login => return Ok(()),
            Kind::List => b"LIST \"\" *".to_vec(),
            Kind::Status => b"STATUS \"INBOX\" (MESSAGES UNSEEN RECENT)".to_vec(),
            Kind::Select => b"SELECT \"INBOX\"".to_vec(),
            Kind::Expunge => b"EXPUNGE".to_vec(),
            Kind::Logout => b"LOGOUT".to_vec(),
            Kind::Fetch => {
                p.range = self.range(100);
                let mut items = Vec::new();
                for _ in 0..1 + self.rng.below(4) {
                    if self.rng.chance(25) {
                        if p.want & HEADER_FIELDS != 0 {
                            continue;
                        }
                        let mut names: Vec<&str> = Vec::new();
                        for _ in 0..1 + self.rng.below(4) {
                            let n = *self.rng.pick(&HEADER_NAMES);
                            if !names.contains(&n) {
                                names.push(n);
                            }
                        }
                        p.want |= HEADER_FIELDS;
                        items.push(format!("BODY.PEEK[HEADER.FIELDS ({})]", names.join(" ")));
                    } else {
                        let &(bit, name) = self.rng.pick(&FETCH_ITEMS);
                        if p.want & bit == 0 {
                            p.want |= bit;
                            items.push(name.to_string());
                        }
                    }
                }
                format!("FETCH {}:{} ({})", p.range.0, p.range.1, items.join(" ")).into_bytes()
            }
            Kind::Fetch2 => {
                let n = 1 + self.rng.below(u64::from(exists)) as u32;
                p.range = (n, n);
                let &(bit, name) = self.rng.pick(&FETCH2_ITEMS);
                p.want = UID | bit;
                format!("FETCH {n} (UID {name})").into_bytes()
            }
            Kind::Store => {
                p.range = self.range(100);
                let op = *self
                    .rng
                    .pick(&[StoreOp::Add, StoreOp::Remove, StoreOp::Replace]);
                let silent = self.rng.chance(50);
                let mut flags: Vec<String> = STORE_FLAGS
                    .iter()
                    .filter(|_| self.rng.chance(30))
                    .map(|f| f.to_string())
                    .collect();
                if flags.is_empty() && op != StoreOp::Replace {
                    flags.push(self.rng.pick(&STORE_FLAGS).to_string());
                }
                if op != StoreOp::Remove {
                    flags.extend(self.new_keyword());
                }
                let verb = match op {
                    StoreOp::Add => "+FLAGS",
                    StoreOp::Remove => "-FLAGS",
                    StoreOp::Replace => "FLAGS",
                };
                format!(
                    "STORE {}:{} {verb}{} ({})",
                    p.range.0,
                    p.range.1,
                    if silent { ".SILENT" } else { "" },
                    flags.join(" ")
                )
                .into_bytes()
            }
            Kind::Delete => {
                let count = match exists {
                    0..=TARGET => 1,
                    31..=35 => 2,
                    _ => exists - TARGET + self.rng.below(3) as u32,
                }
                .min(exists);
                let lo = 1 + self.rng.below(u64::from(exists - count + 1)) as u32;
                p.range = (lo, lo + count - 1);
                let silent = self.rng.chance(50);
                format!(
                    "STORE {}:{} +FLAGS{} \\Deleted",
                    p.range.0,
                    p.range.1,
                    if silent { ".SILENT" } else { "" }
                )
                .into_bytes()
            }
            Kind::Append => {
                if exists >= TARGET + TARGET / 8 {
                    return Ok(());
                }
                let flags: Vec<&str> = STORE_FLAGS
                    .iter()
                    .copied()
                    .filter(|_| self.rng.chance(15))
                    .collect();
                let corpus = &self.shared.corpus;
                p.message = self.next_message.fetch_add(1, Ordering::Relaxed) % corpus.len();
                p.max_uid = self.mb.max_uid();
                let msg = &corpus[p.message];
                let plus = if self.literal_plus { "+" } else { "" };
                let mut cmd = format!(
                    "APPEND \"INBOX\" ({}) {{{}{plus}}}",
                    flags.join(" "),
                    msg.len()
                )
                .into_bytes();
                if self.literal_plus {
                    cmd.extend_from_slice(b"\r\n");
                    cmd.extend_from_slice(msg);
                } else {
                    let mut rest = msg.to_vec();
                    rest.extend_from_slice(b"\r\n");
                    p.literal = Some(rest);
                }
                cmd
            }
        };
        self.send(kind, &cmd, p)
    }

    /// A keyword the mailbox has never held, when one is due: the run's `--new-keywords` are
    /// introduced at even intervals, so that sessions see keywords appear while they have the
    /// mailbox selected (and the server must announce them with FLAGS before using them).
    fn new_keyword(&self) -> Option<String> {
        let n = self.cfg.new_keywords;
        if n == 0 {
            return None;
        }
        let total = Duration::from_secs(self.cfg.seconds);
        let elapsed = total.saturating_sub(self.deadline.saturating_duration_since(Instant::now()));
        let due = ((elapsed.as_secs_f64() / total.as_secs_f64()) * (n + 1) as f64) as usize;
        let due = due.min(n);
        let created = self.keywords_created.load(Ordering::SeqCst);
        if created >= due {
            return None;
        }
        self.keywords_created
            .compare_exchange(created, created + 1, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|i| format!("$New{}x{}", self.cfg.keyword_prefix, i + 1))
    }

    fn send(&mut self, kind: Kind, cmd: &[u8], mut p: Pending) -> Res<()> {
        let conn = self.conn.as_mut().ok_or("not connected")?;
        self.tag += 1;
        p.tag = self.tag;
        p.kind = kind;
        conn.out.clear();
        write!(conn.out, "m{} ", self.tag)?;
        conn.out.extend_from_slice(cmd);
        conn.out.extend_from_slice(b"\r\n");
        if kind.uses_seqs() {
            p.got = vec![0; (p.range.1 - p.range.0 + 1) as usize];
        }
        p.sent = Instant::now();
        conn.io.get_mut().write_all(&conn.out)?;
        if kind == Kind::Select && self.inflight.is_empty() {
            p.reset = true;
            self.mb.reset();
        }
        self.inflight.push_back(p);
        Ok(())
    }

    /// Reads one response line and checks it against the model.
    fn read_one(&mut self) -> Res<()> {
        let conn = self.conn.as_mut().ok_or("not connected")?;
        conn.read_line()?;
        let line = std::mem::take(&mut conn.line);
        let outcome = self.handle(&line);
        if let Some(conn) = self.conn.as_mut() {
            conn.line = line;
        }
        outcome
    }

    fn handle(&mut self, line: &[u8]) -> Res<()> {
        let Some(response) = classify(line) else {
            self.violation("parse", "not a response", line);
            return Ok(());
        };
        match response {
            Response::Continuation => {
                let Some(p) = self.inflight.iter_mut().find(|p| p.literal.is_some()) else {
                    self.violation("unexpected-continuation", "no literal waits for it", line);
                    return Ok(());
                };
                let data = p.literal.take().unwrap_or_default();
                let conn = self.conn.as_mut().ok_or("not connected")?;
                conn.io.get_mut().write_all(&data)?;
            }
            Response::Numbered { n, word, at } => {
                let word = word.to_ascii_uppercase();
                match word.as_slice() {
                    b"EXISTS" => {
                        if let Err((k, d)) = self.mb.on_exists(n) {
                            self.violation(k, &d, line);
                        }
                        if let Some(p) = self.inflight.front_mut() {
                            if p.kind == Kind::Select && p.reset {
                                p.saw_exists = true;
                            }
                        }
                    }
                    b"EXPUNGE" => {
                        let seq_only = !self.inflight.is_empty()
                            && self.inflight.iter().all(|p| p.kind.uses_seqs());
                        if seq_only {
                            self.violation(
                                "expunge-during-fetch-store",
                                "EXPUNGE while only FETCH/STORE commands were in progress \
                                 (RFC 3501 §7.4.1)",
                                line,
                            );
                        }
                        for p in self.inflight.iter_mut().filter(|p| p.kind.uses_seqs()) {
                            p.unsure = true;
                        }
                        if let Err((k, d)) = self.mb.on_expunge(n) {
                            self.violation(k, &d, line);
                        }
                    }
                    b"FETCH" => self.on_fetch(n, at, line),
                    b"RECENT" => {}
                    _ => self.violation("unknown-response", "", line),
                }
            }
            Response::Untagged { word, at } => {
                let word = word.to_ascii_uppercase();
                match word.as_slice() {
                    b"FLAGS" => match Parser::new(line, at).value() {
                        Ok(Some(Val::List(items, _))) => {
                            let flags: Vec<&[u8]> = items.iter().map(Val::octets).collect();
                            self.mb.on_flags(&flags);
                        }
                        _ => self.violation("parse", "FLAGS without a list", line),
                    },
                    b"OK" => {
                        if let Some((name, value)) = code(line, at) {
                            if name.eq_ignore_ascii_case(b"UIDVALIDITY") {
                                let v = std::str::from_utf8(value)
                                    .ok()
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or(0);
                                if !self.shared.uidvalidity_is(v) {
                                    self.violation(
                                        "uidvalidity-changed",
                                        &format!("was {}", self.shared.uidvalidity()),
                                        line,
                                    );
                                }
                            }
                        }
                    }
                    b"BYE" => {
                        if !self.inflight.iter().any(|p| p.kind == Kind::Logout) {
                            self.violation("bye", "the server hung up", line);
                            self.closing = true;
                        }
                    }
                    b"STATUS" => self.on_status(at, line),
                    b"BAD" => self.violation("untagged-bad", "", line),
                    b"CAPABILITY" | b"LIST" | b"NO" | b"ENABLED" | b"ID" => {}
                    _ => self.violation("unknown-response", "", line),
                }
            }
            Response::Tagged { tag, status, at } => {
                let Some(i) = std::str::from_utf8(tag)
                    .ok()
                    .and_then(|t| t.strip_prefix('m'))
                    .and_then(|t| t.parse::<u64>().ok())
                    .and_then(|t| self.inflight.iter().position(|p| p.tag == t))
                else {
                    self.violation("unknown-tag", "a completion for no command in flight", line);
                    return Ok(());
                };
                let Some(p) = self.inflight.remove(i) else {
                    return Ok(());
                };
                let status = status.to_ascii_uppercase();
                self.complete(p, &status, at, line);
                if let Some(front) = self.inflight.front_mut() {
                    if front.kind == Kind::Select && !front.reset {
                        front.reset = true;
                        self.mb.reset();
                    }
                }
            }
        }
        Ok(())
    }

    fn on_status(&mut self, at: usize, line: &[u8]) {
        let mut parser = Parser::new(line, at);
        let _mailbox = parser.value();
        let items = match parser.value() {
            Ok(Some(Val::List(items, _))) => items,
            _ => {
                self.violation("parse", "STATUS without a list", line);
                return;
            }
        };
        let names: Vec<Vec<u8>> = items
            .iter()
            .step_by(2)
            .map(|v| v.octets().to_ascii_uppercase())
            .collect();
        for want in [&b"MESSAGES"[..], b"UNSEEN", b"RECENT"] {
            if !names.iter().any(|n| n == want) {
                self.violation(
                    "status-incomplete",
                    &format!("no {}", String::from_utf8_lossy(want)),
                    line,
                );
            }
        }
        if let Some(p) = self.inflight.iter_mut().find(|p| p.kind == Kind::Status) {
            p.saw_status = true;
        }
    }

    fn on_fetch(&mut self, n: u64, at: usize, line: &[u8]) {
        if let Err((k, d)) = self.mb.check_seq(n) {
            self.violation(k, &d, line);
            return;
        }
        let seq = n as u32;
        let items = match Parser::new(line, at).value() {
            Ok(Some(Val::List(items, _))) if items.len() % 2 == 0 => items,
            _ => {
                self.violation("parse", "FETCH data is not a list of pairs", line);
                return;
            }
        };
        let mut bits = 0u16;
        let mut uid = None;
        for pair in items.chunks(2) {
            let name = pair[0].octets().to_ascii_uppercase();
            let bit = item_bit(&name).unwrap_or(0);
            bits |= bit;
            match (bit, &pair[1]) {
                (UID, v) => match v.number().and_then(|u| u32::try_from(u).ok()) {
                    Some(u) => uid = Some(u),
                    None => self.violation("parse", "UID is not a number", line),
                },
                (FLAGS, Val::List(list, _)) => {
                    let list: Vec<&[u8]> = list.iter().map(Val::octets).collect();
                    if let Err((k, d)) = self.mb.check_flags(&list) {
                        self.violation(k, &d, line);
                    }
                }
                (FLAGS, _) => self.violation("parse", "FLAGS is not a list", line),
                _ => {}
            }
        }
        if let Some(u) = uid {
            if let Err((k, d)) = self.mb.on_uid(seq, u) {
                self.violation(k, &d, line);
            }
        }
        // The immutable items, compared across clients and with the appended message; not
        // for a message another session expunged, for which a server may send stand-ins
        // (RFC 2180 §4.1.3; Dovecot sends NIL sections, an INTERNALDATE of 1 January 1970,
        // RFC822.SIZE 0, an empty text/plain BODY and an ENVELOPE of NILs). No corpus message
        // looks like any of these.
        let stand_in = items.chunks(2).any(|pair| {
            let name = pair[0].octets().to_ascii_uppercase();
            let value = pair[1].octets();
            match (name.as_slice(), &pair[1]) {
                (_, Val::Nil) => true,
                (b"INTERNALDATE", _) => value.starts_with(b"01-Jan-1970"),
                (b"RFC822.SIZE", _) => value == b"0",
                (b"BODY" | b"BODYSTRUCTURE", _) => value
                    .to_ascii_lowercase()
                    .starts_with(b"(\"text\" \"plain\" nil nil nil \"7bit\" 0 0"),
                (b"ENVELOPE", Val::List(fields, _)) => fields.iter().all(|f| matches!(f, Val::Nil)),
                _ => false,
            }
        });
        if let Some(u) = uid.or_else(|| self.mb.uid(seq)).filter(|_| !stand_in) {
            for pair in items.chunks(2) {
                let name = pair[0].octets().to_ascii_uppercase();
                let bit = item_bit(&name).unwrap_or(0);
                if bit & !(UID | FLAGS) == 0 {
                    continue;
                }
                match self.shared.check_item(u, &name, pair[1].octets()) {
                    Check::Fine => {}
                    Check::Changed => self.violation(
                        "data-changed",
                        &format!(
                            "UID {u}: {} differs from an earlier FETCH of it",
                            String::from_utf8_lossy(&name)
                        ),
                        line,
                    ),
                    Check::Content(why) => {
                        self.violation("content-mismatch", &format!("UID {u}: {why}"), line)
                    }
                }
            }
        }
        for p in self.inflight.iter_mut().filter(|p| p.covers(seq)) {
            let i = (seq - p.range.0) as usize;
            if let Some(g) = p.got.get_mut(i) {
                *g |= bits;
            }
        }
    }

    fn complete(&mut self, p: Pending, status: &[u8], at: usize, line: &[u8]) {
        let now = Instant::now();
        self.stats.total += 1;
        if now <= self.deadline {
            let micros = (now - p.sent).as_micros().min(u128::from(u32::MAX)) as u32;
            self.stats.micros[p.kind.index()].push(micros);
        }
        match status {
            b"OK" => {}
            b"NO" if p.kind.uses_seqs() => {
                // RFC 2180 §4.1.2/§4.2: a message another session expunged may make FETCH
                // or STORE fail; counted, not an error.
                self.stats.no[p.kind.index()] += 1;
                return;
            }
            b"NO" => {
                self.violation("tagged-no", p.kind.name(), line);
                if p.kind == Kind::Login {
                    self.closing = true;
                }
                return;
            }
            b"BAD" => {
                self.violation("tagged-bad", p.kind.name(), line);
                return;
            }
            _ => {
                self.violation("tagged-unknown", p.kind.name(), line);
                return;
            }
        }
        match p.kind {
            Kind::Login => self.note_capabilities(line),
            Kind::Select => {
                if p.saw_exists {
                    self.mb.selected = true;
                    self.stats.exists_sum += u64::from(self.mb.exists());
                    self.stats.selects += 1;
                } else {
                    self.violation("select-no-exists", "SELECT completed without EXISTS", line);
                }
            }
            Kind::Status if !p.saw_status => {
                self.violation("status-missing", "STATUS completed without STATUS", line);
            }
            Kind::Fetch | Kind::Fetch2 if !p.unsure => {
                for (i, &got) in p.got.iter().enumerate() {
                    if got & p.want != p.want {
                        self.violation(
                            "fetch-missing",
                            &format!(
                                "FETCH {}:{} completed without items {:#x} of message {}",
                                p.range.0,
                                p.range.1,
                                p.want & !got,
                                p.range.0 as usize + i
                            ),
                            line,
                        );
                        break;
                    }
                }
            }
            Kind::Append => self.on_appended(&p, at, line),
            Kind::Logout => self.closing = true,
            _ => {}
        }
    }

    /// APPENDUID (RFC 4315): the current UIDVALIDITY and a UID above every UID known when
    /// the APPEND was sent, given to no other APPEND.
    fn on_appended(&mut self, p: &Pending, at: usize, line: &[u8]) {
        let Some((name, value)) = code(line, at) else {
            return;
        };
        if !name.eq_ignore_ascii_case(b"APPENDUID") {
            return;
        }
        let mut parts = value.split(|&b| b == b' ').map(|v| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|v| v.parse::<u32>().ok())
        });
        let (Some(Some(validity)), Some(Some(uid))) = (parts.next(), parts.next()) else {
            self.violation("parse", "APPENDUID", line);
            return;
        };
        let known = self.shared.uidvalidity();
        if known != 0 && validity != known {
            self.violation(
                "appenduid-validity",
                &format!("UIDVALIDITY {validity}, SELECT said {known}"),
                line,
            );
        }
        if uid <= p.max_uid {
            self.violation(
                "appenduid-old",
                &format!("UID {uid}, but UID {} was known before", p.max_uid),
                line,
            );
        }
        if !self.shared.appended(uid, p.message) {
            self.violation("appenduid-reused", &format!("UID {uid}"), line);
        }
    }
}

/// Sums the CPU time (user + system, with that of reaped children) of a process and all its
/// descendants from /proc, in seconds.
pub fn cmd_cpu(args: &Args) -> Res<()> {
    let root: u32 = args.num("pid", None)?;
    let hz: f64 = args.num("hz", Some(100.0))?;
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may end between listing and reading: skipped.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold anything: fields start after the
        // last ')'. Then: state ppid … utime(14) stime(15) cutime(16) cstime(17), counted
        // from the pid as field 1.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let ppid = num(1) as u32;
        let ticks = num(11) + num(12) + num(13) + num(14);
        procs.push((pid, ppid, ticks));
    }
    let mut tree = vec![root];
    let mut total = 0u64;
    // Bounded by the process count: each process joins the tree at most once.
    let mut i = 0;
    while i < tree.len() && i < procs.len() + 1 {
        let parent = tree[i];
        for &(pid, ppid, ticks) in &procs {
            if pid == parent {
                total += ticks;
            }
            if ppid == parent && pid != parent && !tree.contains(&pid) {
                tree.push(pid);
            }
        }
        i += 1;
    }
    println!("{:.2}", total as f64 / hz);
    Ok(())
}

/// Reads `RESULT server key value` lines of `bench-mixed.sh` and prints the Markdown tables.
pub fn cmd_mixed_report(path: &str) -> Res<()> {
    let text = std::fs::read_to_string(path)?;
    let mut r = std::collections::BTreeMap::new();
    let mut meta = std::collections::BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("RESULT"), Some(label), Some(key), Some(value)) => {
                r.insert((label.to_string(), key.to_string()), value.to_string());
            }
            (Some("META"), Some(key), Some(v1), rest) => {
                let v = match rest {
                    Some(rest) => format!("{v1} {rest}"),
                    None => v1.to_string(),
                };
                meta.insert(key.to_string(), v);
            }
            _ => {}
        }
    }
    let get = |server: &str, key: &str| -> Option<f64> {
        r.get(&(server.to_string(), key.to_string()))?.parse().ok()
    };
    let cells: Vec<String> = meta
        .get("cells")
        .map(|c| c.split(' ').map(String::from).collect())
        .unwrap_or_default();
    let f = |v: Option<f64>, digits: usize| v.map_or("–".into(), |v| format!("{v:.digits$}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    };
    let per_cpu = |s: &str, cell: &str| {
        Some(get(s, &format!("{cell}_commands_total"))? / get(s, &format!("{cell}_cpu_s"))?)
    };
    println!(
        "#### Mixed IMAP workload ({} s per cell)\n",
        meta.get("seconds").map_or("?", String::as_str)
    );
    println!(
        "| cell | tern cmd/s | Dovecot cmd/s | tern ÷ Dovecot | tern cmd/CPU-s | Dovecot cmd/CPU-s \
         | tern ÷ Dovecot | tern errors | Dovecot errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for cell in &cells {
        let (tr, dr) = (
            get("tern", &format!("{cell}_commands_per_s")),
            get("dovecot", &format!("{cell}_commands_per_s")),
        );
        let (tc, dc) = (per_cpu("tern", cell), per_cpu("dovecot", cell));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell.replace('-', " clients, "),
            f(tr, 0),
            f(dr, 0),
            ratio(tr, dr),
            f(tc, 0),
            f(dc, 0),
            ratio(tc, dc),
            f(get("tern", &format!("{cell}_errors")), 0),
            f(get("dovecot", &format!("{cell}_errors")), 0),
        );
    }
    let sizes: Vec<String> = cells
        .iter()
        .map(|cell| {
            let k = format!("{cell}_mean_exists");
            format!(
                "{cell}: tern {}, Dovecot {}",
                f(get("tern", &k), 1),
                f(get("dovecot", &k), 1)
            )
        })
        .collect();
    println!("\nMessages in INBOX at SELECT, mean: {}.", sizes.join("; "));
    for cell in &cells {
        println!(
            "\n##### {}: latency per command (ms, p50 / p99; pipelined, so queueing included)\n",
            cell.replace('-', " clients, ")
        );
        println!("| command | tern p50 | tern p99 | Dovecot p50 | Dovecot p99 | tern count | Dovecot count |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for kind in KINDS {
            let n = kind.name();
            let k = |what: &str| format!("{cell}_{what}_{n}");
            let tc = get("tern", &format!("{cell}_count_{n}"));
            let dc = get("dovecot", &format!("{cell}_count_{n}"));
            if tc.unwrap_or(0.0) == 0.0 && dc.unwrap_or(0.0) == 0.0 {
                continue;
            }
            println!(
                "| {n} | {} | {} | {} | {} | {} | {} |",
                f(get("tern", &(k("p50") + "_ms")), 2),
                f(get("tern", &(k("p99") + "_ms")), 2),
                f(get("dovecot", &(k("p50") + "_ms")), 2),
                f(get("dovecot", &(k("p99") + "_ms")), 2),
                f(tc, 0),
                f(dc, 0),
            );
        }
    }
    let errors: Vec<String> = r
        .iter()
        .filter(|((_, k), _)| k.contains("_error_"))
        .map(|((s, k), v)| format!("{s} {k} = {v}"))
        .collect();
    if !errors.is_empty() {
        println!("\nProtocol errors by kind: {}.", errors.join("; "));
    }
    if let (Some(m), Some(d), Some(v)) =
        (meta.get("machine"), meta.get("date"), meta.get("dovecot"))
    {
        println!("\n{m}; {d}; {v}.");
    }
    Ok(())
}
