//! Plays a transcript against a [`Target`]: the in-process core, the `tern` binary, or another
//! server. The runner owns matching and the record; targets only move octets.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::pattern::{self, Matched, Pattern, Segment, Values};
use crate::transcript::{sasl_plain, Action, GroupMember, Piece, Proto, Step, Transcript, Var};
use crate::wire;

/// What a target answers when asked for the next response unit.
#[derive(Debug)]
pub enum Received {
    /// One complete unit, final line end included.
    Unit(Vec<u8>),
    /// The server closed the connection; `partial` is whatever incomplete output preceded it.
    Closed {
        /// Octets after the last complete unit.
        partial: Vec<u8>,
    },
}

/// Why a target could not do what a step asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// Nothing complete arrived in time.
    #[error("no complete response within {0:?}")]
    Timeout(Duration),
    /// In-process: the session waits for input and its next timer is far off.
    #[error("the server sent nothing and waits for input (its next timer is {0:?} away; only timers within {AUTO_ADVANCE:?} pass by themselves, use @advance for longer)")]
    NoAnswer(Duration),
    /// The session waits for a TLS handshake that the transcript did not run.
    #[error("the server waits for a TLS handshake (add @starttls after its response)")]
    WaitsForTls,
    /// `@starttls` when the server did not ask for one.
    #[error("the server did not ask for a TLS handshake")]
    NoTlsRequested,
    /// Sending on a connection the server had closed.
    #[error("the server had closed the connection")]
    Closed,
    /// The TLS layer failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The driver contract was broken (a bug in the runner or the core).
    #[error("session misuse: {0}")]
    Misuse(#[from] tern_core::MisuseError),
    /// The target cannot do this at all.
    #[error("{0}")]
    Unsupported(String),
    /// A `@mailbox` or `@message` could not be set up.
    #[error("set-up failed: {message}")]
    SetUp {
        /// The directive's transcript line.
        line: usize,
        /// Why.
        message: String,
    },
}

/// Timers this close pass by themselves in-process: the failed-login delay (2 s, doubling up to
/// 8 s with the default three attempts) is pacing that a client simply waits out, while the
/// login timeout (1 minute) and the inactivity timers (10 and 30 minutes) are protocol events
/// that a transcript must ask for with `@advance`.
pub const AUTO_ADVANCE: Duration = Duration::from_secs(30);

/// Something a transcript can run against.
pub trait Target {
    /// Why this target cannot run the transcript at all, if it cannot.
    fn skip_reason(&self, transcript: &Transcript) -> Option<String>;
    /// The account to use instead of the transcript's first `@user` (remote runs).
    fn credentials(&self) -> Option<(String, String)> {
        None
    }
    /// Creates the mailboxes and messages of `@mailbox` and `@message`, before any connection.
    fn set_up(&mut self, transcript: &Transcript) -> Result<(), TargetError> {
        match transcript.setup.first() {
            None => Ok(()),
            Some(setup) => Err(TargetError::SetUp {
                line: setup.line(),
                message: format!("{} is not supported by this runner", setup.directive()),
            }),
        }
    }
    /// Connects connection `conn`.
    fn open(&mut self, conn: usize, protocol: Proto) -> Result<(), TargetError>;
    /// Sends octets on `conn`.
    fn send(&mut self, conn: usize, data: &[u8]) -> Result<(), TargetError>;
    /// The next complete response unit on `conn`, waiting as long as the target allows.
    fn receive(&mut self, conn: usize) -> Result<Received, TargetError>;
    /// Whatever output is pending on `conn` after a short wait, without timers passing.
    fn pending(&mut self, conn: usize) -> Result<Vec<u8>, TargetError>;
    /// Runs the TLS handshake the server asked for.
    fn start_tls(&mut self, conn: usize) -> Result<(), TargetError>;
    /// Closes the client side of `conn`.
    fn close(&mut self, conn: usize) -> Result<(), TargetError>;
    /// Advances the clock.
    fn advance(&mut self, by: Duration) -> Result<(), TargetError>;
}

/// The result of one run.
#[derive(Debug)]
pub enum Outcome {
    /// Every step matched; the record is the exchange as a transcript.
    Pass(String),
    /// A step did not.
    Fail(Failure),
    /// The target cannot run this transcript.
    Skip(String),
}

/// A failed run: where, why, and the exchange up to that point.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The transcript's name.
    pub transcript: String,
    /// The transcript line of the failing step.
    pub line: usize,
    /// What was expected and what came.
    pub message: String,
    /// The exchange so far, as transcript lines.
    pub exchange: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = self.message.lines();
        writeln!(
            f,
            "{}:{}: {}",
            self.transcript,
            self.line,
            lines.next().unwrap_or_default()
        )?;
        for line in lines {
            writeln!(f, "  {line}")?;
        }
        if self.exchange.trim().is_empty() {
            writeln!(f, "  (before any exchange)")?;
        } else {
            writeln!(f, "  exchange so far:")?;
            for line in self.exchange.lines() {
                writeln!(f, "    | {line}")?;
            }
        }
        Ok(())
    }
}

struct RunValues {
    user: String,
    pass: String,
    captured: HashMap<String, Vec<u8>>,
}

impl Values for RunValues {
    fn value(&self, var: &Var) -> Option<Vec<u8>> {
        match var {
            Var::User => Some(self.user.clone().into_bytes()),
            Var::Pass => Some(self.pass.clone().into_bytes()),
            Var::SaslPlain => Some(sasl_plain(&self.user, &self.pass).into_bytes()),
            Var::Captured(name) => self.captured.get(name).cloned(),
        }
    }
}

/// The octets a `C:` line sends.
fn expand(pieces: &[Piece], values: &RunValues, out: &mut Vec<u8>) -> Result<(), String> {
    for piece in pieces {
        match piece {
            Piece::Bytes(b) => out.extend_from_slice(b),
            Piece::Var(var) => match values.value(var) {
                Some(v) => out.extend_from_slice(&v),
                None => return Err(format!("{} has no value yet", var.placeholder())),
            },
            Piece::LiteralLength(body) => {
                let mut expanded = Vec::new();
                expand(body, values, &mut expanded)?;
                out.extend_from_slice(expanded.len().to_string().as_bytes());
            }
        }
    }
    Ok(())
}

/// The target, with units read ahead of their step: an `S*:` group ends at the first unit
/// that matches the line after it, which then belongs to that line.
struct Wire<'t> {
    target: &'t mut dyn Target,
    peeked: HashMap<usize, Vec<u8>>,
}

impl Wire<'_> {
    fn receive(&mut self, conn: usize) -> Result<Received, TargetError> {
        match self.peeked.remove(&conn) {
            Some(unit) => Ok(Received::Unit(unit)),
            None => self.target.receive(conn),
        }
    }

    fn pending(&mut self, conn: usize) -> Result<Vec<u8>, TargetError> {
        let mut out = self.peeked.remove(&conn).unwrap_or_default();
        out.extend(self.target.pending(conn)?);
        Ok(out)
    }
}

/// The exchange as transcript text, with connection switches where they happen.
struct Record {
    lines: Vec<String>,
    current: Option<usize>,
    names: Vec<String>,
    show_connections: bool,
    /// RFC 8474 object identifiers seen, in order of first appearance: a store draws them
    /// from a secret of its own, so the record names them (`{{objectid-1}}`), keeping which
    /// lines share one.
    object_ids: Vec<Vec<u8>>,
}

impl Record {
    fn new(transcript: &Transcript) -> Record {
        let names: Vec<String> = transcript
            .connections
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let show_connections = names.len() > 1 || names.first().is_some_and(|n| n != "main");
        Record {
            lines: Vec::new(),
            current: None,
            names,
            show_connections,
            object_ids: Vec::new(),
        }
    }

    /// `segments` with every object identifier after `MAILBOXID (`, `EMAILID (` or
    /// `THREADID (` that is still raw written as its placeholder.
    fn name_object_ids(&mut self, segments: Vec<Segment>) -> Vec<Segment> {
        const ITEMS: [&[u8]; 3] = [b"MAILBOXID (", b"EMAILID (", b"THREADID ("];
        let mut out = Vec::with_capacity(segments.len());
        for segment in segments {
            let Segment::Raw(raw) = segment else {
                out.push(segment);
                continue;
            };
            let mut start = 0;
            let mut i = 0;
            while i < raw.len() {
                let Some(item) = ITEMS.iter().find(|p| raw[i..].starts_with(p)) else {
                    i += 1;
                    continue;
                };
                let from = i + item.len();
                let len = raw[from..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
                    .count();
                if len == 0 || raw.get(from + len) != Some(&b')') {
                    i = from;
                    continue;
                }
                let id = raw[from..from + len].to_vec();
                let n = match self.object_ids.iter().position(|x| *x == id) {
                    Some(n) => n + 1,
                    None => {
                        self.object_ids.push(id);
                        self.object_ids.len()
                    }
                };
                out.push(Segment::Raw(raw[start..from].to_vec()));
                out.push(Segment::Placeholder(format!("objectid-{n}")));
                start = from + len;
                i = start;
            }
            out.push(Segment::Raw(raw[start..].to_vec()));
        }
        out
    }

    fn on(&mut self, conn: usize) {
        if self.current != Some(conn) && self.show_connections {
            let name = self.names.get(conn).cloned().unwrap_or_default();
            self.lines.push(format!("@on {name}"));
        }
        self.current = Some(conn);
    }

    fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

/// Runs `transcript` against `target` (which knows how its connections are secured).
pub fn run(transcript: &Transcript, target: &mut dyn Target) -> Outcome {
    if let Some(reason) = target.skip_reason(transcript) {
        return Outcome::Skip(reason);
    }
    let record = Record::new(transcript);
    if let Err(e) = target.set_up(transcript) {
        let line = match &e {
            TargetError::SetUp { line, .. } => *line,
            _ => transcript.setup.first().map_or(1, |s| s.line()),
        };
        return failure(transcript, &record, line, e.to_string());
    }
    let (user, pass) = target.credentials().unwrap_or_else(|| {
        transcript
            .users
            .first()
            .map(|u| (u.name.clone(), u.password.clone()))
            .unwrap_or_default()
    });
    let mut run = Run {
        transcript,
        io: Wire {
            target,
            peeked: HashMap::new(),
        },
        values: RunValues {
            user,
            pass,
            captured: HashMap::new(),
        },
        record,
        open: vec![false; transcript.connections.len()],
    };
    for (index, step) in transcript.steps.iter().enumerate() {
        if let Err(message) = run.step(index, step) {
            return failure(transcript, &run.record, step.line, message);
        }
    }
    // Output nobody expected is a failure too: a duplicated or stray response.
    let last = transcript.steps.last().map_or(1, |s| s.line);
    if let Err(message) = run.finish() {
        return failure(transcript, &run.record, last, message);
    }
    Outcome::Pass(run.record.text())
}

fn failure(transcript: &Transcript, record: &Record, line: usize, message: String) -> Outcome {
    Outcome::Fail(Failure {
        transcript: transcript.name.clone(),
        line,
        message,
        exchange: record.text(),
    })
}

/// One run in progress. Step methods return the failure message.
struct Run<'a, 't> {
    transcript: &'a Transcript,
    io: Wire<'t>,
    values: RunValues,
    record: Record,
    /// Connections open on the client side and not closed by the server.
    open: Vec<bool>,
}

/// Continuation lines of a failure message line up under the first.
const INDENT: &str = "\n            ";

impl Run<'_, '_> {
    fn name(&self, conn: usize) -> &str {
        self.transcript
            .connections
            .get(conn)
            .map_or("?", |c| c.name.as_str())
    }

    fn mismatch(&self, conn: usize, expected: &str, received: &str) -> String {
        format!(
            "connection {}:\n  expected: {expected}\n  received: {received}",
            self.name(conn)
        )
    }

    /// Records what came, marked, and says it was not what was expected.
    fn unexpected(&mut self, conn: usize, expected: &str, unit: &[u8], mark: &str) -> String {
        let received = wire::render_lines("S: ", unit);
        self.record
            .lines
            .extend(received.iter().map(|l| format!("{l}   <- {mark}")));
        self.mismatch(conn, expected, &received.join(INDENT))
    }

    fn set_open(&mut self, conn: usize, open: bool) {
        if let Some(o) = self.open.get_mut(conn) {
            *o = open;
        }
    }

    fn step(&mut self, index: usize, step: &Step) -> Result<(), String> {
        match &step.action {
            Action::Open { conn } => {
                let Some(c) = self.transcript.connections.get(*conn) else {
                    return Err(format!("no connection #{conn}"));
                };
                if self.record.show_connections {
                    let proto = if c.protocol == self.transcript.protocol {
                        String::new()
                    } else {
                        format!(" {}", c.protocol.name())
                    };
                    self.record.lines.push(format!("@open {}{proto}", c.name));
                }
                self.record.current = Some(*conn);
                self.io
                    .target
                    .open(*conn, c.protocol)
                    .map_err(|e| format!("cannot connect: {e}"))?;
                self.set_open(*conn, true);
            }
            Action::Send { conn, data, source } => {
                self.record.on(*conn);
                let mut bytes = Vec::new();
                expand(data, &self.values, &mut bytes)
                    .map_err(|e| format!("cannot send {source:?}: {e}"))?;
                self.record.lines.push(source.clone());
                self.io
                    .target
                    .send(*conn, &bytes)
                    .map_err(|e| format!("connection {}: cannot send: {e}", self.name(*conn)))?;
            }
            Action::Expect {
                conn,
                pattern,
                source,
            } => self.expect(*conn, pattern, &source.join(INDENT))?,
            Action::ExpectGroup { conn, members } => {
                let next = match self.transcript.steps.get(index + 1) {
                    Some(Step {
                        action:
                            Action::Expect {
                                conn: c,
                                pattern,
                                source,
                            },
                        ..
                    }) if c == conn => Some((pattern, source)),
                    _ => None,
                };
                self.group(*conn, members, next)?;
            }
            Action::StartTls { conn } => {
                self.record.on(*conn);
                self.record.lines.push("@starttls".into());
                self.io
                    .target
                    .start_tls(*conn)
                    .map_err(|e| format!("connection {}: {e}", self.name(*conn)))?;
            }
            Action::Close { conn } => {
                self.record.on(*conn);
                self.record.lines.push("@close".into());
                self.set_open(*conn, false);
                self.io.peeked.remove(conn);
                self.io
                    .target
                    .close(*conn)
                    .map_err(|e| format!("connection {}: {e}", self.name(*conn)))?;
            }
            Action::Closed { conn } => {
                self.record.on(*conn);
                let expected = "the server closes the connection";
                match self.io.receive(*conn) {
                    Ok(Received::Closed { partial }) if partial.is_empty() => {
                        self.record.lines.push("@closed".into());
                        self.set_open(*conn, false);
                        let _ = self.io.target.close(*conn);
                    }
                    Ok(Received::Closed { partial: unit }) | Ok(Received::Unit(unit)) => {
                        return Err(self.unexpected(*conn, expected, &unit, "unexpected"))
                    }
                    Err(e) => return Err(self.mismatch(*conn, expected, &e.to_string())),
                }
            }
            Action::Silent { conn } => {
                self.record.on(*conn);
                let out = self
                    .io
                    .pending(*conn)
                    .map_err(|e| format!("connection {}: {e}", self.name(*conn)))?;
                if !out.is_empty() {
                    return Err(self.unexpected(
                        *conn,
                        "nothing more (@silent)",
                        &out,
                        "unexpected",
                    ));
                }
                self.record.lines.push("@silent".into());
            }
            Action::Advance(by) => {
                self.record
                    .lines
                    .push(format!("@advance {}", format_duration(*by)));
                self.io.target.advance(*by).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The next unit, or why there is none.
    fn next_unit(&mut self, conn: usize, expected: &str) -> Result<Vec<u8>, String> {
        match self.io.receive(conn) {
            Ok(Received::Unit(unit)) => Ok(unit),
            Ok(Received::Closed { partial }) => {
                let mut received = "the server closed the connection".to_string();
                if !partial.is_empty() {
                    received.push_str(&format!(
                        " after {}",
                        wire::render_lines("S: ", &partial).join(" / ")
                    ));
                }
                Err(self.mismatch(conn, expected, &received))
            }
            Err(e) => Err(self.mismatch(conn, expected, &e.to_string())),
        }
    }

    /// Records a matched unit, its varying values by name, and keeps what it captured.
    fn matched(&mut self, pattern: &Pattern, unit: &[u8], m: &Matched) {
        self.values.captured.extend(m.captures(pattern, unit));
        let segments = self.record.name_object_ids(m.redact(pattern, unit));
        self.record
            .lines
            .extend(wire::render_segments("S: ", &segments));
    }

    fn expect(&mut self, conn: usize, pattern: &Pattern, expected: &str) -> Result<(), String> {
        self.record.on(conn);
        let unit = self.next_unit(conn, expected)?;
        match pattern::matches(pattern, &unit, &self.values) {
            Some(m) => {
                self.matched(pattern, &unit, &m);
                Ok(())
            }
            None => Err(self.unexpected(conn, expected, &unit, "mismatch")),
        }
    }

    /// `S~:` lines in any order, then `S*:` lines until one matches `next`, the `S:` line
    /// after the group, which is left for that line's step.
    fn group(
        &mut self,
        conn: usize,
        members: &[GroupMember],
        next: Option<(&Pattern, &Vec<String>)>,
    ) -> Result<(), String> {
        self.record.on(conn);
        let repeats: Vec<&GroupMember> = members.iter().filter(|m| m.repeat).collect();
        let required: Vec<&GroupMember> = members.iter().filter(|m| !m.repeat).collect();
        let mut done = vec![false; required.len()];
        loop {
            let all_done = done.iter().all(|d| *d);
            if all_done && repeats.is_empty() {
                return Ok(());
            }
            let mut expected: Vec<&str> = required
                .iter()
                .zip(&done)
                .filter(|(_, d)| !**d)
                .map(|(m, _)| m.source.as_str())
                .chain(repeats.iter().map(|m| m.source.as_str()))
                .collect();
            if let (true, Some((_, source))) = (all_done, next) {
                expected.extend(source.iter().map(String::as_str));
            }
            let expected = format!("one of{INDENT}{}", expected.join(INDENT));
            let unit = self.next_unit(conn, &expected)?;
            if let (true, Some((pattern, _))) = (all_done, next) {
                if pattern::matches(pattern, &unit, &self.values).is_some() {
                    self.io.peeked.insert(conn, unit);
                    return Ok(());
                }
            }
            let required_hit = required
                .iter()
                .zip(done.iter_mut())
                .filter(|(_, d)| !**d)
                .find_map(|(m, d)| {
                    pattern::matches(&m.pattern, &unit, &self.values).map(|x| (*m, x, Some(d)))
                });
            let hit = required_hit.or_else(|| {
                repeats.iter().find_map(|m| {
                    pattern::matches(&m.pattern, &unit, &self.values).map(|x| (*m, x, None))
                })
            });
            let Some((member, m, slot)) = hit else {
                return Err(self.unexpected(conn, &expected, &unit, "mismatch"));
            };
            if let Some(d) = slot {
                *d = true;
            }
            self.matched(&member.pattern, &unit, &m);
        }
    }

    /// Checks that no connection has output nobody expected, then closes them all.
    fn finish(&mut self) -> Result<(), String> {
        for conn in 0..self.open.len() {
            if !self.open.get(conn).copied().unwrap_or(false) {
                continue;
            }
            let out = self
                .io
                .pending(conn)
                .map_err(|e| format!("after the last line: {e}"))?;
            if !out.is_empty() {
                self.record.on(conn);
                let message = self.unexpected(conn, "nothing more", &out, "unexpected");
                return Err(format!("after the last line, on {message}"));
            }
            let _ = self.io.target.close(conn);
        }
        Ok(())
    }
}

/// `1h30m`, `2s`, `1500ms`: the form `@advance` takes.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if secs > 0 || out.is_empty() {
        out.push_str(&format!("{secs}s"));
    }
    out
}
