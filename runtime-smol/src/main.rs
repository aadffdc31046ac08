//! `tern`: the mail-access server binary.
//!
//! ```text
//! tern                       serve ./tern.toml, writing a starter one first if it is missing
//! tern --config PATH         serve PATH
//! tern check-config PATH     validate PATH and exit
//! tern hash-password         read a password on stdin, print its argon2id PHC string
//! tern hash-password --scram [--iterations N]
//!                            print its SCRAM-SHA-256 keys (RFC 5803) for a user's `scram`
//! tern import --user NAME [--config PATH] [--mailbox M] [--mbox-variant rd|o] PATH
//!                            import an mbox file, a Maildir (Dovecot's: UIDs kept) or .eml files
//! tern export --user NAME [--config PATH] [--mailbox M] --format mbox|maildir PATH
//!                            export as mbox or as a Maildir Dovecot can serve
//! tern deliver --user NAME [--mailbox M] [--config PATH] [-f SENDER]
//!                            store the message on stdin (exit codes: sysexits)
//! ```

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tern_smol::config::{self, Config};
use tern_smol::error::StartError;
use tern_smol::{directory, migrate, server};

const USAGE: &str = "usage: tern [--config PATH] | tern check-config PATH | \
                     tern hash-password [--scram [--iterations N]] | \
                     tern import --user NAME [--config PATH] PATH | \
                     tern export --user NAME [--mailbox M] --format mbox|maildir PATH | \
                     tern deliver --user NAME [--mailbox M] [--config PATH] [-f SENDER]";

enum Command {
    Serve(Option<PathBuf>),
    CheckConfig(PathBuf),
    HashPassword,
    /// SCRAM keys with this many PBKDF2 iterations.
    ScramKeys(u32),
    Help,
    Version,
    /// `tern import` / `tern export` / `tern deliver` with their arguments (they exit with
    /// sysexits).
    Import(Vec<String>),
    Export(Vec<String>),
    Deliver(Vec<String>),
}

fn parse_args(args: &[String]) -> Result<Command, StartError> {
    let usage = || StartError::Usage(USAGE.to_string());
    match args {
        [] => Ok(Command::Serve(None)),
        [flag, path] if flag == "--config" || flag == "-c" => {
            Ok(Command::Serve(Some(PathBuf::from(path))))
        }
        [cmd, path] if cmd == "check-config" => Ok(Command::CheckConfig(PathBuf::from(path))),
        [cmd] if cmd == "hash-password" => Ok(Command::HashPassword),
        [cmd, flag] if cmd == "hash-password" && flag == "--scram" => {
            Ok(Command::ScramKeys(directory::SCRAM_ITERATIONS))
        }
        [cmd, flag, it, n]
            if cmd == "hash-password" && flag == "--scram" && it == "--iterations" =>
        {
            match n.parse::<u32>() {
                // RFC 7677 §4: at least 4096.
                Ok(n) if n >= 4096 => Ok(Command::ScramKeys(n)),
                _ => Err(StartError::Usage(
                    "hash-password: --iterations must be a number of at least 4096".into(),
                )),
            }
        }
        [cmd, rest @ ..] if cmd == "import" => Ok(Command::Import(rest.to_vec())),
        [cmd, rest @ ..] if cmd == "export" => Ok(Command::Export(rest.to_vec())),
        [cmd, rest @ ..] if cmd == "deliver" => Ok(Command::Deliver(rest.to_vec())),
        [flag] if flag == "--help" || flag == "-h" => Ok(Command::Help),
        [flag] if flag == "--version" || flag == "-V" => Ok(Command::Version),
        _ => Err(usage()),
    }
}

fn main() -> ExitCode {
    init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Their own exit codes (sysexits), which an MTA or a script reads.
    match parse_args(&args) {
        Ok(Command::Import(rest)) => return migrate::import::main(&rest),
        Ok(Command::Export(rest)) => return migrate::export::main(&rest),
        Ok(Command::Deliver(rest)) => return tern_smol::deliver::main(&rest),
        _ => {}
    }
    match parse_args(&args).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), StartError> {
    match command {
        Command::Import(_) | Command::Export(_) | Command::Deliver(_) => {
            Err(StartError::Usage(USAGE.into()))
        }
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Version => {
            println!("tern {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::HashPassword => {
            let password = read_password()?;
            let hash = directory::hash_password(password.as_bytes()).map_err(StartError::Usage)?;
            println!("{hash}");
            Ok(())
        }
        Command::ScramKeys(iterations) => {
            let password = read_password()?;
            let record = directory::scram_record(&password, iterations)
                .map_err(|e| StartError::Usage(format!("hash-password: {e}")))?;
            println!("{record}");
            Ok(())
        }
        Command::CheckConfig(path) => {
            let config = Config::load(&path)?;
            // The passwd-file must parse too.
            if let Some(file) = config.passwd_file() {
                tern_smol::passwd_file::PasswdFile::open(&file, std::time::Instant::now())
                    .map_err(|e| StartError::Accounts(e.to_string()))?;
            }
            // Configured certificate files must load too; a generated one is made at start.
            if config.server.tls.is_some() {
                tern_smol::tls::acceptor(&config)?;
            }
            println!("{}: ok", path.display());
            Ok(())
        }
        Command::Serve(Some(path)) => server::run(Config::load(&path)?),
        Command::Serve(None) => {
            let path = Path::new("tern.toml");
            if !path.exists() {
                write_starter(path)?;
            }
            server::run(Config::load(path)?)
        }
    }
}

/// Reads the password for `hash-password` from standard input, without its line ending.
fn read_password() -> Result<String, StartError> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|source| StartError::Io {
            what: "cannot read",
            path: "standard input".into(),
            source,
        })?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(StartError::Usage("hash-password: empty password".into()));
    }
    Ok(password.to_string())
}

/// Writes `./tern.toml` with a `demo` account whose random password is printed once.
fn write_starter(path: &Path) -> Result<(), StartError> {
    let password = tern_smol::random_password();
    let hash = directory::hash_password(password.as_bytes()).map_err(StartError::Usage)?;
    let text = config::starter(&hash);
    tern_smol::tls::write_private_file(path, text.as_bytes()).map_err(|source| StartError::Io {
        what: "cannot write",
        path: path.to_path_buf(),
        source,
    })?;
    println!("Wrote a starter configuration to {}.", path.display());
    println!("Account: demo");
    println!("Password: {password}");
    println!("(shown only this once; only its hash is stored)");
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
