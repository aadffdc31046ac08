//! Command parsing throughput: tern's decoder and imap-codec on the same inputs, in one run.
//!
//! Inputs are the files in `testdata/bench/`, split into commands (literals included) before
//! timing; a `DONE` line is IDLE's end and goes through each codec's IDLE-done decoder. Each
//! command is a `Bytes` frozen from a `BytesMut`, as the framer hands it over. Both codecs
//! must accept every input completely, which is checked before anything is measured.
//!
//! Criterion reports each input's time and MB/s; a table at the end adds commands per second
//! and the tern/imap-codec ratio, from a short interleaved best-of-15 timing of its own.
//!
//! `cargo bench -p tern-core --bench codec` (add `-- --warm-up-time 1 --measurement-time 3`
//! for other settings; the defaults below are already short).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput};
use imap_codec::decode::Decoder;
use imap_codec::{CommandCodec, IdleDoneCodec};
use tern_core::imap::command::Command;
use tern_core::imap::decode;

const INPUTS: &[&str] = &[
    "login",
    "select",
    "uid_fetch",
    "uid_search",
    "store",
    "append_50k",
    "idle",
    "mix",
];

enum Unit {
    /// A complete command, line end included.
    Command(Bytes),
    /// IDLE's `DONE` line, line end included.
    Done(Bytes),
}

struct Input {
    name: &'static str,
    units: Vec<Unit>,
    octets: usize,
}

fn load(name: &'static str) -> Input {
    let path = format!(
        "{}/../testdata/bench/{name}.imap",
        env!("CARGO_MANIFEST_DIR")
    );
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let units = split(&data);
    Input {
        name,
        octets: data.len(),
        units,
    }
}

/// Splits wire data into commands: a line ending in a literal announcement continues after
/// the literal's octets.
fn split(data: &[u8]) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < data.len() {
        let lf = at + data[at..].iter().position(|&b| b == b'\n').unwrap();
        let line = &data[at..=lf];
        if let Some(n) = announced(line) {
            at = lf + 1 + n;
            continue;
        }
        let unit = freeze(&data[start..=lf]);
        units.push(if line.eq_ignore_ascii_case(b"DONE\r\n") && start == at {
            Unit::Done(unit)
        } else {
            Unit::Command(unit)
        });
        start = lf + 1;
        at = start;
    }
    units
}

fn announced(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let body = body.strip_suffix(b"+").unwrap_or(body);
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

fn freeze(b: &[u8]) -> Bytes {
    BytesMut::from(b).freeze()
}

/// Parses every unit with tern; returns how many were accepted.
fn tern(units: &[Unit]) -> usize {
    let mut ok = 0;
    for u in units {
        match u {
            Unit::Command(b) => {
                if let Ok(c) = decode::command(b) {
                    ok += usize::from(!matches!(c.command, Command::Unknown { .. }));
                    black_box(c);
                }
            }
            Unit::Done(b) => {
                // The framer hands IDLE's line over without its line end.
                ok += usize::from(decode::idle_done(&b[..b.len() - 2]));
            }
        }
    }
    ok
}

/// Parses every unit with imap-codec; returns how many were accepted completely.
fn imap_codec(units: &[Unit]) -> usize {
    let commands = CommandCodec::default();
    let done = IdleDoneCodec::default();
    let mut ok = 0;
    for u in units {
        match u {
            Unit::Command(b) => {
                if let Ok((rest, c)) = commands.decode(b) {
                    ok += usize::from(rest.is_empty());
                    black_box(c);
                }
            }
            Unit::Done(b) => {
                if let Ok((rest, d)) = done.decode(b) {
                    ok += usize::from(rest.is_empty());
                    black_box(d);
                }
            }
        }
    }
    ok
}

fn bench(c: &mut Criterion, inputs: &[Input]) {
    for input in inputs {
        let mut group = c.benchmark_group(input.name);
        group.throughput(Throughput::Bytes(input.octets as u64));
        group.bench_function("tern", |b| b.iter(|| tern(black_box(&input.units))));
        group.bench_function("imap-codec", |b| {
            b.iter(|| imap_codec(black_box(&input.units)))
        });
        group.finish();
    }
}

/// Seconds per pass over `units` for tern and for imap-codec: the best of 15 rounds of about
/// 20 ms each, alternating between the two so that load from elsewhere on the machine hits both
/// alike.
fn seconds_per_pass(units: &[Unit]) -> (f64, f64) {
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..15 {
        best.0 = best.0.min(round(units, tern));
        best.1 = best.1.min(round(units, imap_codec));
    }
    best
}

#[allow(clippy::disallowed_methods)] // A benchmark measures wall time.
fn round(units: &[Unit], f: fn(&[Unit]) -> usize) -> f64 {
    let start = std::time::Instant::now();
    let mut passes = 0u64;
    while start.elapsed() < Duration::from_millis(20) {
        for _ in 0..16 {
            black_box(f(black_box(units)));
        }
        passes += 16;
    }
    start.elapsed().as_secs_f64() / passes as f64
}

fn summary(inputs: &[Input]) {
    println!();
    println!(
        "{:<11} {:>7} {:>5} | {:>9} {:>11} | {:>9} {:>11} | {:>6}",
        "input", "octets", "cmds", "tern MB/s", "tern cmd/s", "i-c MB/s", "i-c cmd/s", "ratio"
    );
    for input in inputs {
        let (t, i) = seconds_per_pass(&input.units);
        let n = input.units.len() as f64;
        let mb = input.octets as f64 / 1e6;
        println!(
            "{:<11} {:>7} {:>5} | {:>9.1} {:>11.0} | {:>9.1} {:>11.0} | {:>5.2}x",
            input.name,
            input.octets,
            input.units.len(),
            mb / t,
            n / t,
            mb / i,
            n / i,
            i / t
        );
    }
}

fn main() {
    let inputs: Vec<Input> = INPUTS.iter().map(|&n| load(n)).collect();
    for input in &inputs {
        let n = input.units.len();
        assert_eq!(tern(&input.units), n, "tern rejects part of {}", input.name);
        assert_eq!(
            imap_codec(&input.units),
            n,
            "imap-codec rejects part of {}",
            input.name
        );
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args();
    bench(&mut c, &inputs);
    c.final_summary();
    // `cargo test --benches` runs this binary in test mode, and `--profile-time` is for a
    // profiler: skip the timing table in both.
    if !std::env::args().any(|a| matches!(a.as_str(), "--test" | "--list" | "--profile-time")) {
        summary(&inputs);
    }
}
