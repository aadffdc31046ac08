//! Properties of both sessions under generated input, on a virtual clock.
//!
//! - Robustness: any bytes, in any chunks, with time passing and shutdowns in between, never
//!   panic, never produce a `MisuseError` from a correctly driven session, never make a driver
//!   spin on a deadline that does not advance, and never get more output than a small multiple
//!   of the input.
//! - Split invariance: how the peer's bytes are cut into reads does not change a single output
//!   octet.
//! - Memory: a peer that never ends its line is answered once it does, and the session works
//!   on; a peer that pipelines behind a pending answer meets back-pressure.
//!
//! Each property runs [`DEFAULT_TESTS`] cases; set `QUICKCHECK_TESTS` for a longer run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use tern_core::drive::{pump, Blocked};
use tern_core::{
    Input, Limits, MemDirectory, MemStore, Output, Protocol, Session, SessionConfig, Transport,
};

/// Keeps the whole file well under five seconds in a debug build.
const DEFAULT_TESTS: u64 = 150;

fn checker() -> QuickCheck {
    let qc = QuickCheck::new();
    // QuickCheck reads QUICKCHECK_TESTS itself; only the default is ours.
    if std::env::var_os("QUICKCHECK_TESTS").is_some() {
        qc
    } else {
        qc.tests(DEFAULT_TESTS)
    }
}

#[allow(clippy::disallowed_methods)] // The virtual clock needs one real origin.
fn origin() -> Instant {
    Instant::now()
}

/// A driver with synchronous storage that performs TLS handshakes instantly.
struct Driver {
    session: Session,
    store: MemStore,
    directory: MemDirectory,
    now: Instant,
    blocked: Blocked,
    wire: Vec<u8>,
}

impl Driver {
    fn new(protocol: Protocol, transport: Transport, plaintext: bool) -> Result<Driver, String> {
        Driver::with_limits(protocol, transport, plaintext, Limits::default())
    }

    fn with_limits(
        protocol: Protocol,
        transport: Transport,
        plaintext: bool,
        limits: Limits,
    ) -> Result<Driver, String> {
        let store = MemStore::new();
        let mut directory = MemDirectory::new();
        directory.add_user("alice", "wonderland");
        let mut config = SessionConfig::new(protocol, transport);
        config.plaintext_auth_without_tls = plaintext;
        config.limits = limits;
        let now = origin();
        let mut d = Driver {
            session: Session::new(config, now),
            store,
            directory,
            now,
            blocked: Blocked::Close,
            wire: Vec::new(),
        };
        d.pump()?;
        Ok(d)
    }

    fn closed(&self) -> bool {
        self.blocked == Blocked::Close
    }

    fn pump(&mut self) -> Result<(), String> {
        loop {
            let wire = &mut self.wire;
            self.blocked = pump(
                &mut self.session,
                &mut self.store,
                &mut self.directory,
                self.now,
                &mut |b| wire.extend_from_slice(b),
            )
            .map_err(|e| format!("pump: {e}"))?;
            if self.blocked != Blocked::StartTls {
                return Ok(());
            }
            self.session
                .handle_input(Input::TlsEstablished {
                    now: self.now,
                    channel_bindings: Default::default(),
                })
                .map_err(|e| format!("TlsEstablished: {e}"))?;
        }
    }

    /// Feeds one input unless the session already closed (a driver stops reading then).
    fn input(&mut self, input: Input<'_>) -> Result<(), String> {
        if self.closed() {
            return Ok(());
        }
        let what = format!("{input:?}");
        self.session
            .handle_input(input)
            .map_err(|e| format!("{what}: {e}"))?;
        self.pump()
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        self.input(Input::Bytes {
            now: self.now,
            data,
        })
    }

    /// Lets virtual time reach the session's deadline, as a driver with no input would.
    fn wait_for_deadline(&mut self) -> Result<(), String> {
        let Blocked::Until(at) = self.blocked else {
            return Ok(());
        };
        self.now = self.now.max(at);
        self.input(Input::Timeout { now: self.now })?;
        match self.blocked {
            // A deadline that has already passed would make a driver spin.
            Blocked::Until(next) if next <= self.now => Err(format!(
                "deadline {next:?} did not move past now {:?}",
                self.now
            )),
            _ => Ok(()),
        }
    }

    fn take(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.wire)).into_owned()
    }
}

fn arbitrary_transport(g: &mut Gen) -> Transport {
    *g.choose(&[
        Transport::ImplicitTls,
        Transport::StartTlsAvailable,
        Transport::Plaintext,
    ])
    .unwrap()
}

fn below(g: &mut Gen, n: usize) -> usize {
    usize::arbitrary(g) % n
}

// ---------------------------------------------------------------------------------------------
// a. Robustness under arbitrary input.

/// Pieces of both protocols, so that generated input reaches past the first parse error.
const FRAGMENTS: &[&[u8]] = &[
    b"a ",
    b"a1 ",
    b"tag.2 ",
    b"* ",
    b"+ ",
    b"LOGIN ",
    b"login ",
    b"alice ",
    b"wonderland",
    b"\"",
    b"\"alice\" ",
    b"\"a\\\"b\" ",
    b"\\",
    b"{5}\r\n",
    b"{0}\r\n",
    b"{5+}\r\n",
    b"~{3}\r\n",
    b"{9000}\r\n",
    b"{9000+}\r\n",
    b"{99999999+}\r\n",
    b"{4294967295+}\r\n",
    b"{18446744073709551615}\r\n",
    b"\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"(",
    b")",
    b"NOOP",
    b"CAPABILITY",
    b"LOGOUT",
    b"AUTHENTICATE PLAIN",
    b"AUTHENTICATE PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=",
    b"AGFsaWNlAHdvbmRlcmxhbmQ=",
    b"AGFsaWNlAG5vcGU=",
    b"a LOGIN alice wonderland\r\n",
    b"b LOGIN alice nope\r\n",
    b"USER alice\r\nPASS wonderland\r\n",
    b"AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n",
    b"=",
    b"STARTTLS",
    b"STLS",
    b"USER ",
    b"PASS ",
    b"AUTH PLAIN",
    b"AUTH",
    b"CAPA",
    b"QUIT",
    b"*",
    b"\0",
    b"\xff\xfe",
];

fn arbitrary_bytes(g: &mut Gen) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..=below(g, 4) {
        let roll = below(g, 100);
        let fragment = *g.choose(FRAGMENTS).unwrap();
        if roll < 60 {
            bytes.extend_from_slice(fragment);
        } else if roll < 75 {
            // Part of a fragment: cuts inside tokens, CRLFs and literal announcements.
            let from = below(g, fragment.len() + 1);
            let to = from + below(g, fragment.len() - from + 1);
            bytes.extend_from_slice(&fragment[from..to]);
        } else if roll < 98 {
            bytes.extend(Vec::<u8>::arbitrary(g));
        } else {
            // Past the IMAP line limit (64 KiB) at times, and always past POP3's.
            bytes.resize(bytes.len() + 1000 + below(g, 70_000), b'x');
        }
    }
    bytes
}

#[derive(Clone, Debug)]
enum Step {
    Bytes(Vec<u8>),
    Advance(Duration),
    /// Virtual time jumps to the session's deadline.
    Deadline,
    Shutdown,
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Step {
        // Steps that end the session are rare, or most cases would test only the greeting.
        match below(g, 1000) {
            0..=939 => Step::Bytes(arbitrary_bytes(g)),
            940..=989 => {
                let ms = *g
                    .choose(&[0, 1, 1_999, 2_000, 4_000, 8_000, 599_999, 600_000])
                    .unwrap();
                Step::Advance(Duration::from_millis(ms))
            }
            990..=994 => Step::Deadline,
            _ => Step::Shutdown,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Step>> {
        match self {
            Step::Bytes(b) => Box::new(b.shrink().map(Step::Bytes)),
            _ => Box::new(std::iter::empty()),
        }
    }
}

#[derive(Clone, Debug)]
struct Fuzz {
    transport: Transport,
    plaintext: bool,
    /// [`tight_limits`] rather than the defaults, so that short input reaches every bound.
    tight: bool,
    steps: Vec<Step>,
}

impl Arbitrary for Fuzz {
    fn arbitrary(g: &mut Gen) -> Fuzz {
        Fuzz {
            transport: arbitrary_transport(g),
            plaintext: bool::arbitrary(g),
            tight: bool::arbitrary(g),
            steps: Vec::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Fuzz>> {
        let base = self.clone();
        Box::new(self.steps.shrink().map(move |steps| Fuzz {
            steps,
            ..base.clone()
        }))
    }
}

/// Output may exceed input only by this factor plus [`OUTPUT_SLACK`]. The worst known case is
/// IMAP's 55-octet BAD for a bare LF, nineteen times in a row before a NOOP resets the bad
/// command count: about 41 octets out per octet in.
const OUTPUT_FACTOR: usize = 64;
/// Room for what needs no input: the greeting and a closing BYE.
const OUTPUT_SLACK: usize = 1024;

/// Drives one session through `case` as a careful driver would, checking after every step.
fn robust(protocol: Protocol, case: &Fuzz) -> Result<(), String> {
    let limits = if case.tight {
        tight_limits()
    } else {
        Limits::default()
    };
    let mut d = Driver::with_limits(protocol, case.transport, case.plaintext, limits)?;
    let mut fed = 0;
    for step in &case.steps {
        if d.closed() {
            break;
        }
        match step {
            Step::Bytes(data) => {
                // Honour back-pressure: only time (a failed-login delay ending) frees the reader.
                for _ in 0..10 {
                    if d.session.wants_read() || d.closed() {
                        break;
                    }
                    d.wait_for_deadline()?;
                }
                if !d.session.wants_read() && !d.closed() {
                    return Err("wants_read stayed false across deadlines".into());
                }
                fed += data.len();
                d.feed(data)?;
            }
            Step::Advance(by) => {
                d.now += *by;
                d.input(Input::Timeout { now: d.now })?;
            }
            Step::Deadline => d.wait_for_deadline()?,
            Step::Shutdown => d.input(Input::Shutdown { now: d.now })?,
        }
        if d.wire.len() > OUTPUT_FACTOR * fed + OUTPUT_SLACK {
            return Err(format!("{} octets out for {fed} in", d.wire.len()));
        }
        whole_lines(&d.wire)?;
    }
    d.input(Input::PeerClosed { now: d.now })?;
    if !d.closed() {
        return Err(format!("still {:?} after PeerClosed", d.blocked));
    }
    if d.session.wants_read() || !matches!(d.session.poll_output(), Output::Close) {
        return Err("a closed session asked for more".into());
    }
    Ok(())
}

/// Every response ends in CRLF and no client octet can smuggle a line break into one: a bare
/// CR or LF would let a client forge responses for a proxy or log reader.
fn whole_lines(wire: &[u8]) -> Result<(), String> {
    for (at, &octet) in wire.iter().enumerate() {
        let paired = match octet {
            b'\r' => wire.get(at + 1) == Some(&b'\n'),
            b'\n' => at > 0 && wire[at - 1] == b'\r',
            _ => true,
        };
        if !paired {
            return Err(format!("bare CR or LF at octet {at}"));
        }
    }
    if !wire.is_empty() && !wire.ends_with(b"\r\n") {
        return Err("output ends mid-line".into());
    }
    Ok(())
}

fn check(result: Result<(), String>) -> TestResult {
    match result {
        Ok(()) => TestResult::passed(),
        Err(e) => TestResult::error(e),
    }
}

#[test]
fn imap_survives_arbitrary_input() {
    fn prop(case: Fuzz) -> TestResult {
        check(robust(Protocol::Imap, &case))
    }
    checker().quickcheck(prop as fn(Fuzz) -> TestResult);
}

#[test]
fn pop3_survives_arbitrary_input() {
    fn prop(case: Fuzz) -> TestResult {
        check(robust(Protocol::Pop3, &case))
    }
    checker().quickcheck(prop as fn(Fuzz) -> TestResult);
}

#[test]
fn raw_bytes_in_raw_chunks() {
    fn prop(protocol: bool, data: Vec<u8>, cuts: Vec<usize>) -> TestResult {
        let protocol = if protocol {
            Protocol::Imap
        } else {
            Protocol::Pop3
        };
        let steps = chunks(&data, &cuts)
            .into_iter()
            .map(|c| Step::Bytes(c.to_vec()))
            .collect();
        let case = Fuzz {
            transport: Transport::ImplicitTls,
            plaintext: false,
            tight: true,
            steps,
        };
        check(robust(protocol, &case))
    }
    checker().quickcheck(prop as fn(bool, Vec<u8>, Vec<usize>) -> TestResult);
}

// ---------------------------------------------------------------------------------------------
// b. Split invariance.

/// One well-formed-ish command (or SASL response line) of a script. STARTTLS and STLS are left
/// out: they discard pipelined input, so their output depends on the split by design.
#[derive(Clone, Debug)]
struct Cmd {
    kind: usize,
    tag: u8,
    crlf: bool,
}

impl Arbitrary for Cmd {
    fn arbitrary(g: &mut Gen) -> Cmd {
        Cmd {
            kind: usize::arbitrary(g),
            tag: u8::arbitrary(g) % 4,
            crlf: below(g, 5) != 0,
        }
    }
}

/// Tight limits, so that scripts cross every bound with a few hundred octets instead of
/// megabytes, and the cut points land near the boundaries often.
fn tight_limits() -> Limits {
    let mut limits = Limits::default();
    limits.imap_max_line = 256;
    limits.imap_max_literal = 1000;
    limits.imap_max_literal_unauthenticated = 200;
    limits.imap_max_discard = 5000;
    limits.pop3_max_line = 64;
    limits.sasl_max_line = 128;
    limits.lmtp_max_line = 100;
    limits.lmtp_max_recipients = 3;
    limits
}

fn render_imap(cmd: &Cmd) -> Vec<u8> {
    let t = format!("t{}", cmd.tag);
    let line = match cmd.kind % 25 {
        0 => format!("{t} NOOP"),
        1 => format!("{t} CAPABILITY"),
        2 => format!("{t} LOGIN alice wonderland"),
        3 => format!("{t} LOGIN alice nope"),
        4 => format!("{t} LOGIN \"alice\" \"wonderland\""),
        5 => format!("{t} LOGIN {{5}}\r\nalice {{10}}\r\nwonderland"),
        6 => format!("{t} LOGIN {{5+}}\r\nalice wonderland"),
        7 => format!("{t} AUTHENTICATE PLAIN AGFsaWNlAHdvbmRlcmxhbmQ="),
        8 => format!("{t} AUTHENTICATE PLAIN"),
        9 => "AGFsaWNlAHdvbmRlcmxhbmQ=".to_string(),
        10 => "*".to_string(),
        11 => format!("{t} LOGOUT"),
        12 => format!("{t} FROB"),
        13 => String::new(),
        // A synchronising literal over the unauthenticated limit: refused, never sent.
        14 => format!("{t} LOGIN {{300}}"),
        // Non-synchronising and over the unauthenticated limit: skipped.
        15 => format!("{t} LOGIN {{300+}}\r\n{} x", "x".repeat(300)),
        16 => format!("{t} {}", "A".repeat(300)),
        17 => format!("{t} NOOP {{3+}}\r\nabc"),
        18 => format!("{t} AUTHENTICATE PLAIN AGFsaWNlAG5vcGU="),
        // A "tag" longer than the line limit.
        19 => format!("{} NOOP", "A".repeat(300)),
        // Within the literal limit only once authenticated.
        20 => format!("{t} APPEND x {{500+}}\r\n{}", "y".repeat(500)),
        // Over every literal limit, but small enough to skip.
        21 => format!("{t} APPEND x {{1500+}}\r\n{}", "y".repeat(1500)),
        // A SASL response (or command) line over the SASL line limit.
        22 => "QUFB".repeat(50),
        // 255 octets before CR: at the line limit with CRLF, one under with a bare LF.
        23 => format!("{t} {}", "A".repeat(254 - t.len())),
        _ => format!("{t} APPEND x {{9000+}}"),
    };
    finish(line, cmd.crlf)
}

fn render_pop3(cmd: &Cmd) -> Vec<u8> {
    let line = match cmd.kind % 19 {
        0 => "CAPA".to_string(),
        1 => "NOOP".to_string(),
        2 => "USER alice".to_string(),
        3 => "user ALICE".to_string(),
        4 => "PASS wonderland".to_string(),
        5 => "PASS nope".to_string(),
        6 => "AUTH".to_string(),
        7 => "AUTH PLAIN".to_string(),
        8 => "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=".to_string(),
        9 => "AGFsaWNlAHdvbmRlcmxhbmQ=".to_string(),
        10 => "*".to_string(),
        11 => "QUIT".to_string(),
        12 => "FROB".to_string(),
        13 => String::new(),
        // Over the command line limit, within the SASL one.
        14 => format!("USER {}", "a".repeat(100)),
        // Over both.
        15 => "QUFB".repeat(50),
        16 => "AUTH CRAM-MD5".to_string(),
        // Exactly at the limit with CRLF, one under with a bare LF.
        17 => format!("PASS {}", "a".repeat(57)),
        _ => "STAT".to_string(),
    };
    finish(line, cmd.crlf)
}

fn render_lmtp(cmd: &Cmd) -> Vec<u8> {
    let line = match cmd.kind % 21 {
        0 => "LHLO mta".to_string(),
        1 => "MAIL FROM:<a@b.example>".to_string(),
        2 => "MAIL FROM:<> SIZE=2000".to_string(),
        3 => "RCPT TO:<alice@example.org>".to_string(),
        4 => "RCPT TO:<alice+sub@example.org>".to_string(),
        5 => "RCPT TO:<nobody@example.org>".to_string(),
        6 => "DATA".to_string(),
        7 => ".".to_string(),
        8 => "..dotted".to_string(),
        9 => "Subject: x".to_string(),
        10 => String::new(),
        // Over the command line limit.
        11 => format!("NOOP {}", "a".repeat(120)),
        // Over the message limit within a few lines.
        12 => "y".repeat(400),
        13 => "BDAT 7\r\nab\r\ncd".to_string(),
        14 => "BDAT 3 LAST\r\nxyz".to_string(),
        15 => "BDAT 2000".to_string(),
        16 => "RSET".to_string(),
        17 => "VRFY alice".to_string(),
        18 => "QUIT".to_string(),
        19 => "EHLO x".to_string(),
        _ => "NOOP".to_string(),
    };
    finish(line, cmd.crlf)
}

fn finish(line: String, crlf: bool) -> Vec<u8> {
    let mut bytes = line.into_bytes();
    bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    bytes
}

#[derive(Clone, Debug)]
struct Script {
    transport: Transport,
    plaintext: bool,
    cmds: Vec<Cmd>,
    cuts: Vec<usize>,
}

impl Arbitrary for Script {
    fn arbitrary(g: &mut Gen) -> Script {
        Script {
            transport: arbitrary_transport(g),
            plaintext: bool::arbitrary(g),
            cmds: Vec::arbitrary(g),
            cuts: Vec::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Script>> {
        let base = self.clone();
        let fewer_cmds = self.cmds.shrink().map({
            let base = base.clone();
            move |cmds| Script {
                cmds,
                ..base.clone()
            }
        });
        let fewer_cuts = self.cuts.shrink().map(move |cuts| Script {
            cuts,
            ..base.clone()
        });
        Box::new(fewer_cmds.chain(fewer_cuts))
    }
}

/// `data` cut at the given positions (taken modulo its length), in order.
fn chunks<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    at.push(0);
    at.push(data.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// Everything the server writes for `reads`, all at one instant, then with time left to run
/// out every pending delay.
fn transcript(protocol: Protocol, script: &Script, reads: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut d = Driver::with_limits(protocol, script.transport, script.plaintext, tight_limits())?;
    // Reads ignore wants_read: it is advice to the driver, and honouring it would need time
    // to pass between reads, which this property holds still.
    for read in reads {
        d.feed(read)?;
    }
    for _ in 0..20 {
        if d.closed() {
            return Ok(d.wire);
        }
        d.wait_for_deadline()?;
    }
    Err("still open after twenty deadlines".into())
}

fn split_invariant(protocol: Protocol, script: &Script) -> Result<(), String> {
    let render = match protocol {
        Protocol::Imap => render_imap,
        Protocol::Pop3 => render_pop3,
        Protocol::Lmtp => render_lmtp,
    };
    let data: Vec<u8> = script.cmds.iter().flat_map(render).collect();
    let whole = transcript(protocol, script, &[&data])?;
    let split = transcript(protocol, script, &chunks(&data, &script.cuts))?;
    if whole != split {
        let at = whole
            .iter()
            .zip(&split)
            .position(|(a, b)| a != b)
            .unwrap_or(whole.len().min(split.len()));
        let around = |out: &[u8]| {
            let from = at.saturating_sub(200);
            String::from_utf8_lossy(&out[from..out.len().min(at + 200)]).into_owned()
        };
        return Err(format!(
            "outputs differ from octet {at}\nwhole: {:?}\nsplit: {:?}",
            around(&whole),
            around(&split)
        ));
    }
    Ok(())
}

/// Regression: a "tag" longer than the line limit was echoed in the BAD answer when the whole
/// line arrived in one read, but not when it arrived in pieces.
#[test]
fn imap_overlong_tag_is_never_echoed() {
    let line = format!("{} NOOP\r\nz NOOP\r\n", "A".repeat(70_000));
    let data = line.as_bytes();
    for cut in [data.len(), 65_537, 65_536, 100] {
        let mut d = Driver::new(Protocol::Imap, Transport::ImplicitTls, false).unwrap();
        d.take();
        d.feed(&data[..cut]).unwrap();
        d.feed(&data[cut..]).unwrap();
        assert_eq!(
            d.take(),
            "* BAD [TOOBIG] Command line too long.\r\nz OK NOOP completed.\r\n",
            "cut at {cut}"
        );
    }
}

#[test]
fn imap_output_does_not_depend_on_read_boundaries() {
    fn prop(script: Script) -> TestResult {
        check(split_invariant(Protocol::Imap, &script))
    }
    checker().quickcheck(prop as fn(Script) -> TestResult);
}

#[test]
fn lmtp_output_does_not_depend_on_read_boundaries() {
    fn prop(script: Script) -> TestResult {
        check(split_invariant(Protocol::Lmtp, &script))
    }
    checker().quickcheck(prop as fn(Script) -> TestResult);
}

#[test]
fn pop3_output_does_not_depend_on_read_boundaries() {
    fn prop(script: Script) -> TestResult {
        check(split_invariant(Protocol::Pop3, &script))
    }
    checker().quickcheck(prop as fn(Script) -> TestResult);
}

// ---------------------------------------------------------------------------------------------
// c. Memory: endless lines and pipelining behind a pending answer.

const CHUNK: usize = 64 * 1024;
/// 10 MiB: far past every line limit, so nothing proportional to it may be kept.
const ENDLESS: usize = 160;

/// Sends [`ENDLESS`] chunks of `a` with no line end, checking that the session keeps reading
/// and says nothing until the line ends.
fn endless_line(d: &mut Driver) {
    let chunk = vec![b'a'; CHUNK];
    for _ in 0..ENDLESS {
        assert!(d.session.wants_read());
        d.feed(&chunk).unwrap();
        assert_eq!(d.take(), "");
    }
}

#[test]
fn imap_endless_line_is_refused_and_the_session_works_on() {
    for (start, answer) in [
        ("", "* BAD [TOOBIG] Command line too long.\r\n"),
        ("t1 SEARCH ", "t1 BAD [TOOBIG] Command line too long.\r\n"),
    ] {
        let mut d = Driver::new(Protocol::Imap, Transport::ImplicitTls, false).unwrap();
        d.take();
        d.feed(start.as_bytes()).unwrap();
        endless_line(&mut d);
        d.feed(b"\r\nx NOOP\r\n").unwrap();
        assert_eq!(d.take(), format!("{answer}x OK NOOP completed.\r\n"));
    }
}

#[test]
fn imap_endless_sasl_response_is_refused_and_the_session_works_on() {
    let mut d = Driver::new(Protocol::Imap, Transport::ImplicitTls, false).unwrap();
    d.take();
    d.feed(b"s AUTHENTICATE PLAIN\r\n").unwrap();
    assert_eq!(d.take(), "+ \r\n");
    endless_line(&mut d);
    d.feed(b"\r\nx NOOP\r\n").unwrap();
    assert_eq!(
        d.take(),
        "s BAD Command line too long.\r\nx OK NOOP completed.\r\n"
    );
}

#[test]
fn pop3_endless_line_is_refused_and_the_session_works_on() {
    let mut d = Driver::new(Protocol::Pop3, Transport::ImplicitTls, false).unwrap();
    d.feed(b"USER alice\r\nPASS wonderland\r\n").unwrap();
    assert_eq!(d.take(), "+OK tern ready.\r\n+OK\r\n+OK Logged in.\r\n");
    endless_line(&mut d);
    d.feed(b"\r\nNOOP\r\n").unwrap();
    assert_eq!(d.take(), "-ERR Line too long.\r\n+OK\r\n");
}

#[test]
fn pop3_endless_sasl_response_is_refused_and_the_session_works_on() {
    let mut d = Driver::new(Protocol::Pop3, Transport::ImplicitTls, false).unwrap();
    d.take();
    d.feed(b"AUTH PLAIN\r\n").unwrap();
    assert_eq!(d.take(), "+ \r\n");
    endless_line(&mut d);
    d.feed(b"\r\nCAPA\r\n").unwrap();
    let out = d.take();
    assert!(
        out.starts_with("-ERR Line too long.\r\n+OK Capability list follows.\r\n"),
        "{out}"
    );
}

/// While a failed login's answer is delayed, input piles up unparsed; `wants_read` must turn
/// false before it exceeds the configured bound by more than one read.
#[test]
fn pipelining_behind_a_delayed_answer_meets_back_pressure() {
    let bound = Limits::default().max_buffered_input;
    for (protocol, login, answer) in [
        (
            Protocol::Imap,
            "a LOGIN alice nope\r\n",
            "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        ),
        (
            Protocol::Pop3,
            "USER alice\r\nPASS nope\r\n",
            "-ERR [AUTH] Authentication failed.\r\n",
        ),
    ] {
        let mut d = Driver::new(protocol, Transport::ImplicitTls, false).unwrap();
        d.feed(login.as_bytes()).unwrap();
        d.take();
        let chunk = vec![b'a'; CHUNK];
        let mut held = 0;
        while d.session.wants_read() {
            assert!(held <= bound, "{protocol:?} held {held} octets");
            d.feed(&chunk).unwrap();
            held += CHUNK;
        }
        assert!(held <= bound + CHUNK, "{protocol:?} held {held} octets");
        d.wait_for_deadline().unwrap();
        assert_eq!(d.take(), answer, "{protocol:?}");
        // The delay's end lets the session consume (and drop) the piled-up line.
        assert!(d.session.wants_read(), "{protocol:?}");
    }
}
