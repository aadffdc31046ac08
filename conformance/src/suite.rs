//! Running the whole suite in each mode and judging the outcomes.

use std::path::PathBuf;
use std::time::Duration;

use crate::inprocess::InProcess;
use crate::net::{self, Net, Trust};
use crate::runner::{self, Outcome};
use crate::server::{ServerError, ServerPool};
use crate::transcript::{Security, Transcript};

/// `testdata/transcripts` in this workspace.
pub fn transcripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testdata")
        .join("transcripts")
}

/// How long a TCP run waits for a response before calling it missing.
pub const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `transcript` in-process, feeding input `chunk` octets at a time at most.
pub fn in_process(transcript: &Transcript, security: Security, chunk: usize) -> Outcome {
    let mut target = InProcess::new(transcript, security).with_chunk(chunk);
    runner::run(transcript, &mut target)
}

/// Runs `transcript` over TCP against a `tern` of its own from `pool`.
pub fn tcp(transcript: &Transcript, security: Security, pool: &ServerPool) -> Outcome {
    let server = pool.fresh(&transcript.users);
    let server = match &server {
        Ok(server) => server,
        Err(e) => return setup_failure(transcript, &e),
    };
    let tls = match net::tls_config(&Trust::Pem(server.certificate())) {
        Ok(tls) => tls,
        Err(e) => return setup_failure(transcript, &e),
    };
    let name = match net::server_name("localhost") {
        Ok(name) => name,
        Err(e) => return setup_failure(transcript, &e),
    };
    let mut target = Net::new(server.endpoints(), security, tls, name, TCP_TIMEOUT, None);
    let outcome = runner::run(transcript, &mut target);
    match outcome {
        Outcome::Fail(mut f) => {
            // The server's side of the story, for failures that the exchange alone cannot explain.
            let log = server.log();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            f.message.push_str("\n  last lines of the server log:");
            for line in tail.iter().rev() {
                f.message.push_str(&format!("\n    {line}"));
            }
            Outcome::Fail(f)
        }
        other => other,
    }
}

fn setup_failure(transcript: &Transcript, e: &dyn std::fmt::Display) -> Outcome {
    Outcome::Fail(runner::Failure {
        transcript: transcript.name.clone(),
        line: 1,
        message: format!("cannot set up the server: {e}"),
        exchange: String::new(),
    })
}

/// A pool over the workspace's `tern` binary, built if needed.
pub fn local_pool() -> Result<ServerPool, ServerError> {
    Ok(ServerPool::new(crate::server::tern_binary()?))
}

/// An outcome judged against the transcript's `@known-gap`.
#[derive(Debug)]
pub enum Verdict {
    /// Passed as expected.
    Pass,
    /// Failed, with no known gap declared: a regression or a new bug.
    Fail(String),
    /// Failed, and declared a known gap.
    KnownGap,
    /// Declared a known gap, yet passed: the marker is stale.
    UnexpectedPass,
    /// Not run by this target.
    Skip(String),
}

/// Judges one outcome.
pub fn verdict(transcript: &Transcript, outcome: &Outcome) -> Verdict {
    match (outcome, &transcript.known_gap) {
        (Outcome::Pass(_), None) => Verdict::Pass,
        (Outcome::Pass(_), Some(_)) => Verdict::UnexpectedPass,
        (Outcome::Fail(f), None) => Verdict::Fail(f.to_string()),
        (Outcome::Fail(_), Some(_)) => Verdict::KnownGap,
        (Outcome::Skip(why), _) => Verdict::Skip(why.clone()),
    }
}
