//! Every transcript in `testdata/transcripts/`, in-process (whole writes and one octet at a
//! time) and over TCP against the `tern` binary. Each mode reports all its failures at once.
//!
//! All modes assert the same snapshot per transcript and security (`tests/snapshots/`), so a
//! snapshot also proves that the binary and the bare core said exactly the same.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::AssertUnwindSafe;

use tern_conformance::runner::Outcome;
use tern_conformance::suite;
use tern_conformance::transcript::{self, Security, Transcript};

fn transcripts() -> Vec<Transcript> {
    let (good, bad) = transcript::load_all(&suite::transcripts_dir()).unwrap();
    let bad: Vec<String> = bad.iter().map(ToString::to_string).collect();
    assert!(bad.is_empty(), "malformed transcripts:\n{}", bad.join("\n"));
    assert!(!good.is_empty(), "no transcripts found");
    good
}

/// Judges one run; failures are collected, not raised, so that one run shows them all.
fn check(
    t: &Transcript,
    security: Security,
    mode: &str,
    outcome: Outcome,
    failures: &mut Vec<String>,
) {
    let run = format!("{} [{mode}, {}]", t.name, security.name());
    match (outcome, &t.known_gap) {
        (Outcome::Pass(record), None) => {
            let name = t.name.trim_end_matches(".txt").to_string();
            let mut settings = insta::Settings::clone_current();
            settings.set_prepend_module_to_snapshot(false);
            settings.set_snapshot_suffix(security.name());
            settings.set_description(format!("{} over {}", t.name, security.name()));
            settings.set_omit_expression(true);
            let asserted = std::panic::catch_unwind(AssertUnwindSafe(|| {
                settings.bind(|| insta::assert_snapshot!(name, record));
            }));
            if asserted.is_err() {
                failures.push(format!(
                    "{run}: the exchange differs from its snapshot (diff above)"
                ));
            }
        }
        (Outcome::Pass(_), Some(reason)) => failures.push(format!(
            "{run}: passes, but is marked @known-gap ({reason}); remove the marker"
        )),
        (Outcome::Fail(f), None) => failures.push(format!("{run}: {f}")),
        (Outcome::Fail(_), Some(reason)) => eprintln!("known gap {run}: {reason}"),
        (Outcome::Skip(why), _) => eprintln!("skipped {run}: {why}"),
    }
}

fn finish(mode: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} transcript run(s) failed {mode}:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn in_process() {
    let mut failures = Vec::new();
    for t in transcripts() {
        for security in t.securities() {
            let outcome = suite::in_process(&t, security, usize::MAX);
            check(&t, security, "in-process", outcome, &mut failures);
        }
    }
    finish("in-process", failures);
}

/// The core must answer the same however its input is cut up.
#[test]
fn in_process_one_octet_at_a_time() {
    let mut failures = Vec::new();
    for t in transcripts() {
        for security in t.securities() {
            let outcome = suite::in_process(&t, security, 1);
            check(
                &t,
                security,
                "in-process, octet by octet",
                outcome,
                &mut failures,
            );
        }
    }
    finish("in-process, octet by octet", failures);
}

/// Builds the binary if needed (see `server::tern_binary`) and starts one per run, so that
/// no transcript sees what another stored.
#[test]
fn over_tcp() {
    let pool = suite::local_pool().unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    for t in transcripts() {
        for security in t.securities() {
            let outcome = suite::tcp(&t, security, &pool);
            check(&t, security, "TCP", outcome, &mut failures);
        }
    }
    finish("over TCP", failures);
}
