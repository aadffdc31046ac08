//! `conformance/REPORT.md`: per RFC section, how many transcripts there are and how many pass.
//!
//! The report is deterministic (no dates, no timings) so that it changes in a commit only when
//! results do.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::inprocess::InProcess;
use crate::runner::{Received, Target};
use crate::server::ServerPool;
use crate::suite::{self, Verdict};
use crate::transcript::{self, LoadError, Proto, RfcRef, Security, Transcript, User};
use crate::wire;

/// A transcript's standing in one mode, over all the securities it runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Passed everywhere it ran.
    Pass,
    /// Failed without a known gap; the first failure.
    Fail(String),
    /// Failed, declared a known gap.
    KnownGap,
    /// Declared a known gap, yet passed.
    UnexpectedPass,
    /// Not run in this mode; why.
    Skip(String),
}

/// Combines the verdicts of one transcript's runs in one mode.
pub fn combine(verdicts: &[Verdict]) -> Status {
    let mut status = Status::Pass;
    let mut skipped = None;
    let mut ran = false;
    for v in verdicts {
        match v {
            Verdict::Fail(f) => {
                if !matches!(status, Status::Fail(_)) {
                    status = Status::Fail(f.clone());
                }
                ran = true;
            }
            Verdict::KnownGap => {
                if !matches!(status, Status::Fail(_)) {
                    status = Status::KnownGap;
                }
                ran = true;
            }
            Verdict::UnexpectedPass => {
                if status == Status::Pass {
                    status = Status::UnexpectedPass;
                }
                ran = true;
            }
            Verdict::Pass => ran = true,
            Verdict::Skip(why) => skipped = Some(why.clone()),
        }
    }
    match (ran, skipped) {
        (false, Some(why)) => Status::Skip(why),
        _ => status,
    }
}

/// Runs everything and writes the report text. `tcp`: also run against the binary (built if
/// needed); if it cannot be built or started, the report says so instead.
pub fn generate(tcp: bool) -> Result<String, LoadError> {
    let (transcripts, broken) = transcript::load_all(&suite::transcripts_dir())?;
    let mut in_process = Vec::new();
    for t in &transcripts {
        let verdicts: Vec<Verdict> = t
            .securities()
            .into_iter()
            .map(|s| suite::verdict(t, &suite::in_process(t, s, usize::MAX)))
            .collect();
        in_process.push(combine(&verdicts));
    }
    let mut tcp_note = None;
    let tcp_statuses = if tcp {
        match suite::local_pool() {
            Ok(pool) => Some(run_tcp(&transcripts, &pool)),
            Err(e) => {
                tcp_note = Some(format!("not run: {e}"));
                None
            }
        }
    } else {
        tcp_note = Some("not run (--no-tcp)".to_string());
        None
    };
    Ok(render(
        &transcripts,
        &broken,
        &in_process,
        tcp_statuses.as_deref(),
        tcp_note.as_deref(),
        &capabilities(),
    ))
}

fn run_tcp(transcripts: &[Transcript], pool: &ServerPool) -> Vec<Status> {
    transcripts
        .iter()
        .map(|t| {
            let verdicts: Vec<Verdict> = t
                .securities()
                .into_iter()
                .map(|s| suite::verdict(t, &suite::tcp(t, s, pool)))
                .collect();
            combine(&verdicts)
        })
        .collect()
}

#[derive(Default)]
struct Row {
    transcripts: usize,
    in_process: usize,
    tcp: usize,
    tcp_skipped: usize,
    gaps: usize,
}

fn section_key(r: &RfcRef) -> (u32, Vec<u32>, String) {
    let numbers = r
        .section
        .split('.')
        .map(|p| p.parse().unwrap_or(u32::MAX))
        .collect();
    (r.rfc, numbers, r.section.clone())
}

fn render(
    transcripts: &[Transcript],
    broken: &[LoadError],
    in_process: &[Status],
    tcp: Option<&[Status]>,
    tcp_note: Option<&str>,
    capabilities: &[(String, String, String, String)],
) -> String {
    let mut rows: BTreeMap<(u32, Vec<u32>, String), Row> = BTreeMap::new();
    for (i, t) in transcripts.iter().enumerate() {
        let tcp_status = tcp.and_then(|s| s.get(i));
        for r in &t.rfcs {
            let row = rows.entry(section_key(r)).or_default();
            row.transcripts += 1;
            if in_process.get(i) == Some(&Status::Pass) {
                row.in_process += 1;
            }
            match tcp_status {
                Some(Status::Pass) => row.tcp += 1,
                Some(Status::Skip(_)) => row.tcp_skipped += 1,
                _ => {}
            }
            if in_process.get(i) == Some(&Status::KnownGap) {
                row.gaps += 1;
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "# Conformance report\n");
    let _ = writeln!(
        out,
        "Written by `cargo run -p tern-conformance -- report` from the transcripts in \
         `testdata/transcripts/` (format: `conformance/README.md`). A transcript passes when every \
         response matches, over plaintext and over TLS. In-process runs drive `tern-core` with \
         `MemStore` and a virtual clock; TCP runs drive the `tern` binary on loopback. A \
         transcript that fails and carries `@known-gap` is counted as a known gap, not as a \
         failure.\n"
    );
    if let Some(note) = tcp_note {
        let _ = writeln!(out, "TCP runs: {note}.\n");
    }
    let _ = writeln!(
        out,
        "| RFC | Section | Transcripts | Pass in-process | Pass over TCP | Known gaps |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let mut total = Row::default();
    for ((rfc, _, section), row) in &rows {
        let tcp_cell = tcp_cell(tcp.is_some(), row);
        let _ = writeln!(
            out,
            "| RFC {rfc} | {section} | {} | {} | {tcp_cell} | {} |",
            row.transcripts, row.in_process, row.gaps
        );
    }
    for (i, _) in transcripts.iter().enumerate() {
        total.transcripts += 1;
        if in_process.get(i) == Some(&Status::Pass) {
            total.in_process += 1;
        }
        if in_process.get(i) == Some(&Status::KnownGap) {
            total.gaps += 1;
        }
        match tcp.and_then(|s| s.get(i)) {
            Some(Status::Pass) => total.tcp += 1,
            Some(Status::Skip(_)) => total.tcp_skipped += 1,
            _ => {}
        }
    }
    let _ = writeln!(
        out,
        "| **All** | | {} | {} | {} | {} |",
        total.transcripts,
        total.in_process,
        tcp_cell(tcp.is_some(), &total),
        total.gaps
    );
    let _ = writeln!(
        out,
        "\nA transcript that covers several sections counts in the row of each, and once in \
         **All**.\n"
    );

    let gaps: Vec<&Transcript> = transcripts
        .iter()
        .filter(|t| t.known_gap.is_some())
        .collect();
    if !gaps.is_empty() {
        let _ = writeln!(out, "## Known gaps\n");
        for (i, t) in transcripts.iter().enumerate() {
            if let Some(reason) = &t.known_gap {
                let note = if in_process.get(i) == Some(&Status::UnexpectedPass) {
                    " **(passes now: remove the marker)**"
                } else {
                    ""
                };
                let _ = writeln!(out, "- `{}` ({}): {reason}{note}", t.name, rfc_list(t));
            }
        }
        let _ = writeln!(out);
    }

    let mut failures = Vec::new();
    for e in broken {
        failures.push(format!("does not parse: {e}"));
    }
    for (i, t) in transcripts.iter().enumerate() {
        if let Some(Status::Fail(f)) = in_process.get(i) {
            failures.push(format!("`{}` in-process: {}", t.name, first_line(f)));
        }
        if let Some(Status::Fail(f)) = tcp.and_then(|s| s.get(i)) {
            failures.push(format!("`{}` over TCP: {}", t.name, first_line(f)));
        }
    }
    if !failures.is_empty() {
        let _ = writeln!(out, "## Failures\n");
        for f in failures {
            let _ = writeln!(out, "- {f}");
        }
        let _ = writeln!(out);
    }

    if let Some(tcp) = tcp {
        let skipped: Vec<String> = transcripts
            .iter()
            .zip(tcp)
            .filter_map(|(t, s)| match s {
                Status::Skip(why) => Some(format!("- `{}`: {why}", t.name)),
                _ => None,
            })
            .collect();
        if !skipped.is_empty() {
            let _ = writeln!(out, "## Not run over TCP\n");
            for s in skipped {
                let _ = writeln!(out, "{s}");
            }
            let _ = writeln!(out);
        }
    }

    let _ = writeln!(out, "## Capabilities advertised\n");
    let _ = writeln!(
        out,
        "As tern-core announces them in-process (the binary runs the same core).\n"
    );
    let _ = writeln!(out, "| Protocol | Connection | State | Capabilities |");
    let _ = writeln!(out, "|---|---|---|---|");
    for (proto, conn, state, caps) in capabilities {
        let _ = writeln!(out, "| {proto} | {conn} | {state} | {caps} |");
    }
    out
}

fn tcp_cell(ran: bool, row: &Row) -> String {
    if !ran {
        return "—".to_string();
    }
    if row.tcp_skipped > 0 {
        format!("{} ({} not run)", row.tcp, row.tcp_skipped)
    } else {
        row.tcp.to_string()
    }
}

fn rfc_list(t: &Transcript) -> String {
    t.rfcs
        .iter()
        .map(|r| format!("RFC {} §{}", r.rfc, r.section))
        .collect::<Vec<_>>()
        .join(", ")
}

fn first_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().take(4).map(str::trim).collect();
    lines.join(" ").replace('|', "\\|")
}

/// What each protocol advertises before and after login, per connection security.
pub fn capabilities() -> Vec<(String, String, String, String)> {
    let mut rows = Vec::new();
    for protocol in [Proto::Imap, Proto::Pop3] {
        for security in [Security::Plain, Security::Tls] {
            let conn = match security {
                Security::Plain => "plaintext, loopback",
                Security::Tls => "implicit TLS",
            };
            let (name, found) = match protocol {
                Proto::Imap => ("IMAP", probe_imap(security)),
                Proto::Pop3 => ("POP3", probe_pop3(security)),
            };
            for (state, caps) in found {
                rows.push((name.to_string(), conn.to_string(), state, caps));
            }
        }
    }
    rows
}

struct Probe {
    target: InProcess,
}

const PROBE_USER: &str = "probe";

impl Probe {
    fn new(protocol: Proto, security: Security) -> Result<Probe, String> {
        let user = User {
            name: PROBE_USER.into(),
            password: PROBE_USER.into(),
            quota: None,
        };
        let mut target = InProcess::with_users(&[user], security);
        target.open(0, protocol).map_err(|e| e.to_string())?;
        Ok(Probe { target })
    }

    fn line(&mut self) -> Result<String, String> {
        match self.target.receive(0).map_err(|e| e.to_string())? {
            Received::Unit(unit) => Ok(wire::render_lines("", &unit).join(" ")),
            Received::Closed { .. } => Err("connection closed".into()),
        }
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        self.target
            .send(0, format!("{line}\r\n").as_bytes())
            .map_err(|e| e.to_string())
    }
}

fn probe_imap(security: Security) -> Vec<(String, String)> {
    let run = || -> Result<Vec<(String, String)>, String> {
        let mut p = Probe::new(Proto::Imap, security)?;
        let greeting = p.line()?;
        let mut rows = Vec::new();
        let capability = |p: &mut Probe, tag: &str| -> Result<String, String> {
            p.send(&format!("{tag} CAPABILITY"))?;
            let caps = p.line()?;
            p.line()?;
            Ok(caps
                .strip_prefix("* CAPABILITY ")
                .unwrap_or(&caps)
                .to_string())
        };
        let before = capability(&mut p, "p1")?;
        let in_greeting = greeting
            .split_once("[CAPABILITY ")
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(caps, _)| caps.to_string());
        if in_greeting.as_deref().is_some_and(|g| g != before) {
            rows.push(("greeting".to_string(), in_greeting.unwrap_or_default()));
        }
        rows.push(("not authenticated".to_string(), before));
        p.send(&format!("p2 LOGIN {PROBE_USER} {PROBE_USER}"))?;
        p.line()?;
        rows.push(("authenticated".to_string(), capability(&mut p, "p3")?));
        Ok(rows)
    };
    run().unwrap_or_else(|e| vec![("-".into(), format!("(probe failed: {e})"))])
}

fn probe_pop3(security: Security) -> Vec<(String, String)> {
    let run = || -> Result<Vec<(String, String)>, String> {
        let mut p = Probe::new(Proto::Pop3, security)?;
        p.line()?;
        let capa = |p: &mut Probe| -> Result<String, String> {
            p.send("CAPA")?;
            let first = p.line()?;
            if !first.starts_with("+OK") {
                return Err(first);
            }
            let mut caps = Vec::new();
            loop {
                let line = p.line()?;
                if line == "." {
                    break;
                }
                caps.push(line);
            }
            Ok(caps.join(", "))
        };
        let mut rows = vec![("authorization".to_string(), capa(&mut p)?)];
        p.send(&format!("USER {PROBE_USER}"))?;
        p.line()?;
        p.send(&format!("PASS {PROBE_USER}"))?;
        p.line()?;
        rows.push(("transaction".to_string(), capa(&mut p)?));
        Ok(rows)
    };
    run().unwrap_or_else(|e| vec![("-".into(), format!("(probe failed: {e})"))])
}
