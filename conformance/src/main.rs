//! `tern-conformance`: run the transcripts, against tern or another server, and write the report.
//!
//! ```text
//! tern-conformance report [--no-tcp]
//! tern-conformance run [-v] [FILTER...]                      in-process, plaintext and TLS
//! tern-conformance run --host H --port P --user U --pass P [--tls] [--protocol imap|pop3]
//!                      [--ca FILE | --insecure] [--timeout SECS] [-v] [FILTER...]
//! tern-conformance check                                     parse every transcript
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tern_conformance::net::{self, Endpoints, Net, Trust};
use tern_conformance::report;
use tern_conformance::runner::{self, Outcome, Received, Target};
use tern_conformance::suite;
use tern_conformance::transcript::{self, Proto, Security, Transcript};
use tern_conformance::wire;

const USAGE: &str = "usage:
  tern-conformance report [--no-tcp]
  tern-conformance run [-v] [FILTER...]
  tern-conformance run --host H --port P --user U --pass P [--tls] [--protocol imap|pop3]
                       [--ca FILE | --insecure] [--timeout SECS] [-v] [FILTER...]
  tern-conformance check

The protocol of a remote run is taken from the server's greeting unless --protocol is given.";

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}\n{USAGE}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tern-conformance: {e}");
            ExitCode::from(2)
        }
    }
}

/// Ok(false): ran, but something failed.
fn dispatch(args: &[String]) -> Result<bool, CliError> {
    match args.first().map(String::as_str) {
        Some("report") => {
            let tcp = match &args[1..] {
                [] => true,
                [flag] if flag == "--no-tcp" => false,
                _ => return Err(CliError::Usage("report takes only --no-tcp".into())),
            };
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("REPORT.md");
            let text = report::generate(tcp).map_err(|e| CliError::Failed(e.to_string()))?;
            print!("{text}");
            std::fs::write(&path, &text)
                .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))?;
            eprintln!("wrote {}", path.display());
            Ok(true)
        }
        Some("run") => run(&args[1..]),
        Some("check") => {
            let (good, bad) = transcript::load_all(&suite::transcripts_dir())
                .map_err(|e| CliError::Failed(e.to_string()))?;
            for e in &bad {
                eprintln!("{e}");
            }
            println!("{} transcripts parse, {} do not", good.len(), bad.len());
            Ok(bad.is_empty())
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(true)
        }
        Some(other) => Err(CliError::Usage(format!("unknown command {other:?}"))),
        None => Err(CliError::Usage("no command".into())),
    }
}

#[derive(Default)]
struct RunArgs {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    pass: Option<String>,
    tls: bool,
    protocol: Option<Proto>,
    ca: Option<PathBuf>,
    insecure: bool,
    timeout: Option<Duration>,
    verbose: bool,
    filters: Vec<String>,
}

fn parse_run_args(args: &[String]) -> Result<RunArgs, CliError> {
    let mut out = RunArgs::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| CliError::Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--host" => out.host = Some(value("--host")?),
            "--port" => {
                let v = value("--port")?;
                out.port = Some(
                    v.parse()
                        .map_err(|_| CliError::Usage(format!("bad port {v:?}")))?,
                );
            }
            "--user" => out.user = Some(value("--user")?),
            "--pass" => out.pass = Some(value("--pass")?),
            "--tls" => out.tls = true,
            "--protocol" => {
                let v = value("--protocol")?;
                out.protocol = Some(match v.as_str() {
                    "imap" => Proto::Imap,
                    "pop3" => Proto::Pop3,
                    _ => return Err(CliError::Usage(format!("bad protocol {v:?}"))),
                });
            }
            "--ca" => out.ca = Some(PathBuf::from(value("--ca")?)),
            "--insecure" => out.insecure = true,
            "--timeout" => {
                let v = value("--timeout")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| CliError::Usage(format!("bad timeout {v:?}")))?;
                out.timeout = Some(Duration::from_secs(secs));
            }
            "-v" | "--verbose" => out.verbose = true,
            flag if flag.starts_with('-') => {
                return Err(CliError::Usage(format!("unknown option {flag:?}")))
            }
            filter => out.filters.push(filter.to_string()),
        }
    }
    Ok(out)
}

fn run(args: &[String]) -> Result<bool, CliError> {
    let args = parse_run_args(args)?;
    let (transcripts, bad) = transcript::load_all(&suite::transcripts_dir())
        .map_err(|e| CliError::Failed(e.to_string()))?;
    for e in &bad {
        eprintln!("{e}");
    }
    let selected: Vec<&Transcript> = transcripts
        .iter()
        .filter(|t| args.filters.is_empty() || args.filters.iter().any(|f| t.name.contains(f)))
        .collect();
    let mut failed = !bad.is_empty();
    let mut counts = [0usize; 3];
    match &args.host {
        None => {
            for t in &selected {
                for security in t.securities() {
                    let outcome = suite::in_process(t, security, usize::MAX);
                    failed |= show(t, security, &outcome, args.verbose, &mut counts);
                }
            }
        }
        Some(host) => {
            let (Some(port), Some(user), Some(pass)) = (args.port, &args.user, &args.pass) else {
                return Err(CliError::Usage(
                    "a remote run needs --host, --port, --user and --pass".into(),
                ));
            };
            let security = if args.tls {
                Security::Tls
            } else {
                Security::Plain
            };
            let trust =
                match (&args.ca, args.insecure, args.tls) {
                    (Some(ca), false, _) => Trust::Pem(ca.clone()),
                    (None, true, _) => Trust::Insecure,
                    // Plaintext transcripts may still meet STARTTLS; such a handshake then fails
                    // and says the certificate is not trusted.
                    (None, false, false) => Trust::Nothing,
                    (None, false, true) => return Err(CliError::Usage(
                        "--tls needs --ca FILE (the server's certificate or its CA) or --insecure"
                            .into(),
                    )),
                    (Some(_), true, _) => {
                        return Err(CliError::Usage(
                            "--ca and --insecure exclude each other".into(),
                        ))
                    }
                };
            let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                .map_err(|e| CliError::Failed(format!("cannot resolve {host}: {e}")))?
                .next()
                .ok_or_else(|| CliError::Failed(format!("{host} has no address")))?;
            let name = net::server_name(host).map_err(|e| CliError::Failed(e.to_string()))?;
            let tls = net::tls_config(&trust).map_err(|e| CliError::Failed(e.to_string()))?;
            let timeout = args.timeout.unwrap_or(suite::TCP_TIMEOUT);
            let protocol = match args.protocol {
                Some(p) => p,
                None => {
                    let mut both = Endpoints::default();
                    both.0.insert((Proto::Imap, security), addr);
                    let mut probe =
                        Net::new(both, security, tls.clone(), name.clone(), timeout, None);
                    greeting_protocol(&mut probe)?
                }
            };
            let mut endpoints = Endpoints::default();
            endpoints.0.insert((protocol, security), addr);
            for t in &selected {
                if t.protocol != protocol {
                    continue;
                }
                let outcome = if t.security.is_some_and(|s| s != security) {
                    Outcome::Skip(format!("runs only over {}", t.securities()[0].name()))
                } else {
                    let mut target = Net::new(
                        endpoints.clone(),
                        security,
                        tls.clone(),
                        name.clone(),
                        timeout,
                        Some((user.clone(), pass.clone())),
                    );
                    runner::run(t, &mut target)
                };
                failed |= show(t, security, &outcome, args.verbose, &mut counts);
            }
        }
    }
    println!(
        "{} passed, {} failed, {} skipped or known gaps",
        counts[0], counts[1], counts[2]
    );
    Ok(!failed)
}

/// Tells IMAP from POP3 by the greeting: `* OK` or `+OK`.
fn greeting_protocol(probe: &mut Net) -> Result<Proto, CliError> {
    let failed =
        |e: &dyn std::fmt::Display| CliError::Failed(format!("cannot read the greeting: {e}"));
    probe.open(0, Proto::Imap).map_err(|e| failed(&e))?;
    let received = probe.receive(0).map_err(|e| failed(&e))?;
    let _ = probe.close(0);
    match received {
        Received::Unit(unit) if unit.starts_with(b"+OK") => Ok(Proto::Pop3),
        Received::Unit(unit) if unit.starts_with(b"* ") => Ok(Proto::Imap),
        Received::Unit(unit) => Err(CliError::Failed(format!(
            "neither an IMAP nor a POP3 greeting: {} (use --protocol)",
            wire::escape(&unit).trim_end()
        ))),
        Received::Closed { .. } => Err(failed(&"the server closed the connection")),
    }
}

/// Prints one outcome; true if it failed.
fn show(
    t: &Transcript,
    security: Security,
    outcome: &Outcome,
    verbose: bool,
    counts: &mut [usize; 3],
) -> bool {
    let gap = t
        .known_gap
        .as_deref()
        .map(|r| format!(" (known gap: {r})"))
        .unwrap_or_default();
    match outcome {
        Outcome::Pass(_) if t.known_gap.is_some() => {
            counts[1] += 1;
            println!(
                "FAIL {} [{}]: passes, but is marked{gap}; remove the marker",
                t.name,
                security.name()
            );
            true
        }
        Outcome::Pass(record) => {
            counts[0] += 1;
            println!("PASS {} [{}]", t.name, security.name());
            if verbose {
                for line in record.lines() {
                    println!("    | {line}");
                }
            }
            false
        }
        Outcome::Fail(f) if t.known_gap.is_some() => {
            // Expected to fail: not counted against the run.
            counts[2] += 1;
            println!("GAP  {} [{}]{gap}", t.name, security.name());
            if verbose {
                print!("{f}");
            }
            false
        }
        Outcome::Fail(f) => {
            counts[1] += 1;
            println!("FAIL {} [{}]", t.name, security.name());
            print!("{f}");
            true
        }
        Outcome::Skip(why) => {
            counts[2] += 1;
            println!("SKIP {} [{}]: {why}", t.name, security.name());
            false
        }
    }
}
