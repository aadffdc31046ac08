//! Model-based testing of the session state machines (issue 9).
//!
//! A history is up to a few hundred steps over one account: 1–3 IMAP connections (SELECT,
//! EXAMINE, APPEND, STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT, SEARCH, FETCH,
//! NOOP, CHECK, IDLE/DONE, CREATE, RENAME, DELETE, STATUS, LIST; IMAP4rev1 or IMAP4rev2) and
//! POP3 connections (STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT, dropped
//! connections), plus clock ticks and, for durable stores, crashes. Each history runs against
//! the real `Session`s over a real [`Store`](tern_core::Store) and against [`spec::Account`],
//! a deliberately simple reference model; [`runner`] lists what is checked after each step.
//!
//! After every probe of the store, clients that went offline at earlier probes resynchronise
//! with QRESYNC and must reach exactly the mailbox's state ([`resync`]).
//!
//! Run by [`model_histories`] (generated histories, with crashes when the backend can crash)
//! and [`model_regressions`] (the pinned histories of [`regressions`]) on any backend.
//!
//! Budget: each check runs the backend's number of histories ([`Backend::model_cases`]); `TERN_MODEL_CASES=n` runs n,
//! `TERN_MODEL_SECONDS=s` stops after s seconds, `TERN_MODEL_SEED=x` starts from seed x
//! (otherwise a fresh one, printed on failure), `TERN_MODEL_STATS=1` prints how often each
//! command ended how. A failing history is shrunk to a minimal one
//! (greedily: drop runs of steps, then simplify steps) and printed as steps and as a transcript
//! in the `testdata/transcripts/` format.

pub mod history;
pub mod pool;
pub mod regressions;
pub mod resync;
pub mod runner;
pub mod spec;
pub mod transcript;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

pub use history::{Shape, Step};
pub use runner::{Event, World};

use crate::Backend;

/// One property: a name, a default budget and the shape of its histories.
pub struct Config {
    pub name: &'static str,
    pub cases: u64,
    pub shape: Shape,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS: a new seed per run without a clock read.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x7465_726e);
    h.finish()
}

/// Runs one history to its end or its first failure.
pub fn run(
    backend: &mut dyn Backend,
    shape: &Shape,
    steps: &[Step],
) -> (Result<(), String>, Vec<Event>) {
    let mut events = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut w = World::new(backend, shape.imap, shape.pop3);
        for (i, s) in steps.iter().enumerate() {
            if let Err(e) = w.step(s) {
                events = std::mem::take(&mut w.events);
                return Err(format!("step {} ({s:?}): {e}", i + 1));
            }
        }
        let r = w.finish().map_err(|e| format!("at the end: {e}"));
        events = std::mem::take(&mut w.events);
        r
    }));
    let result = result.unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panic: {msg}"))
    });
    (result, events)
}

/// Greedy shrinking: remove runs of steps (halving the run length), then replace steps by
/// simpler ones, while the history still fails; bounded in time.
pub fn shrink(
    backend: &mut dyn Backend,
    shape: &Shape,
    mut best: Vec<Step>,
    mut why: String,
) -> (Vec<Step>, String) {
    let limit = Duration::from_secs(env_u64("TERN_MODEL_SHRINK_SECONDS").unwrap_or(120));
    #[allow(clippy::disallowed_methods)] // Wall time bounds the shrinking, not the core.
    let start = Instant::now();
    loop {
        let mut improved = false;
        let mut chunk = (best.len() / 2).max(1);
        loop {
            let mut i = 0;
            while i < best.len() && start.elapsed() < limit {
                let mut cand = best.clone();
                cand.drain(i..(i + chunk).min(best.len()));
                match run(backend, shape, &cand).0 {
                    Err(e) => {
                        best = cand;
                        why = e;
                        improved = true;
                    }
                    Ok(()) => i += chunk,
                }
            }
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
        for i in 0..best.len() {
            for s in history::simpler(&best[i]) {
                if start.elapsed() >= limit {
                    break;
                }
                let mut cand = best.clone();
                cand[i] = s;
                if let Err(e) = run(backend, shape, &cand).0 {
                    best = cand;
                    why = e;
                    improved = true;
                    break;
                }
            }
        }
        if !improved || start.elapsed() >= limit {
            return (best, why);
        }
    }
}

/// Runs the property: generated histories until the budget is spent; panics with a minimal
/// failing history, its transcript and the seed that replays it.
pub fn check(backend: &mut dyn Backend, config: &Config) {
    let cases = env_u64("TERN_MODEL_CASES").unwrap_or(config.cases);
    let seconds = env_u64("TERN_MODEL_SECONDS");
    let base = env_u64("TERN_MODEL_SEED").unwrap_or_else(fresh_seed);
    #[allow(clippy::disallowed_methods)] // Wall time bounds the run, not the core.
    let start = Instant::now();
    let mut done = 0u64;
    let mut steps = 0usize;
    for i in 0..cases {
        if seconds.is_some_and(|s| start.elapsed() >= Duration::from_secs(s)) {
            break;
        }
        let seed = base.wrapping_add(i);
        let history = history::generate(seed, &config.shape);
        steps += history.len();
        if let Err(why) = run(backend, &config.shape, &history).0 {
            let first = why.clone();
            let (small, why) = shrink(backend, &config.shape, history, why);
            let (_, events) = run(backend, &config.shape, &small);
            let listing: Vec<String> = small
                .iter()
                .enumerate()
                .map(|(i, s)| format!("  {:>3}. {s:?}", i + 1))
                .collect();
            panic!(
                "\n{}: a history failed after {done} passed.\n\
                 Replay: TERN_MODEL_SEED={seed} TERN_MODEL_CASES=1 (seed of this run: {base})\n\
                 First failure: {first}\n\n\
                 Minimal history ({} steps) fails with: {why}\n{}\n\n\
                 Transcript (for testdata/transcripts/, edit the failing line to what it should be):\n\n{}",
                config.name,
                small.len(),
                listing.join("\n"),
                transcript::render(&events, &why),
            );
        }
        done += 1;
    }
    eprintln!(
        "{}: {done} histories, {steps} steps, {:.1?} (seed {base})",
        config.name,
        start.elapsed()
    );
    if std::env::var_os("TERN_MODEL_STATS").is_some() {
        eprintln!("outcomes so far:\n{}", runner::outcomes());
    }
}

/// Runs one given history; for regression tests that pin a history a bug needed.
pub fn replay(backend: &mut dyn Backend, shape: &Shape, steps: &[Step]) -> Result<(), String> {
    let (r, events) = run(backend, shape, steps);
    r.map_err(|e| format!("{e}\n{}", transcript::render(&events, &e)))
}

/// Which connections the generated histories open.
#[derive(Clone, Copy, Debug)]
pub enum Sessions {
    /// Three IMAP connections.
    Imap,
    /// Two IMAP and two POP3 connections.
    ImapAndPop3,
}

/// The model property on a backend: [`Backend::model_cases`] histories of up to 200 steps,
/// crashes included when the backend can crash. Panics with a minimal failing history.
pub fn model_histories(backend: &mut dyn Backend, sessions: Sessions) {
    let (name, imap, pop3) = match sessions {
        Sessions::Imap => ("model_imap_histories", 3, 0),
        Sessions::ImapAndPop3 => ("model_imap_and_pop3_histories", 2, 2),
    };
    let config = Config {
        name,
        cases: backend.model_cases(),
        shape: Shape {
            max_steps: 200,
            imap,
            pop3,
            crash: backend.can_crash(),
        },
    };
    check(backend, &config);
}

/// Replays every pinned regression history; panics naming each that fails.
pub fn model_regressions(backend: &mut dyn Backend) {
    let failed: Vec<String> = regressions::ALL
        .iter()
        .filter_map(|(name, replay)| replay(backend).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
