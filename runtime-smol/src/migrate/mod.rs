//! `tern import` and `tern export`: moving mail in from mbox files, Maildir trees (Dovecot's
//! included, keeping its UIDs) and folders of `.eml` files, and out again as mbox or Maildir.
//!
//! Both open the store themselves, through the storage contract and the server's own
//! [`crate::server::open_store`]; a running server holds the store's lock, and they then stop
//! with [`exit::TEMPFAIL`] and "the store is in use by a running tern; stop it first". Exit
//! statuses are sysexits ([`exit`]).

pub mod export;
pub mod import;
pub mod maildir;
pub mod mbox;
mod progress;
pub mod uidlist;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tern_core::store::{
    FetchWant, FetchedMessage, MailStore, StorageError, StorageOp, StorageReply, StorageResult, Uid,
};

use crate::config::{Config, StorageBackend};
use crate::directory::Directory;
use crate::error::StartError;

/// sysexits.h statuses.
pub mod exit {
    /// Done; nothing skipped.
    pub const OK: u8 = 0;
    /// The command line is wrong.
    pub const USAGE: u8 = 64;
    /// Some messages were corrupt or unreadable and skipped (the rest are in).
    pub const DATAERR: u8 = 65;
    /// The path to import does not exist or cannot be read.
    pub const NOINPUT: u8 = 66;
    /// No such account in the directory.
    pub const NOUSER: u8 = 67;
    /// The export target cannot be created (it exists already).
    pub const CANTCREAT: u8 = 73;
    /// Reading or writing failed.
    pub const IOERR: u8 = 74;
    /// The store is in use by a running server, or busy: try again later.
    pub const TEMPFAIL: u8 = 75;
    /// The configuration cannot be used.
    pub const CONFIG: u8 = 78;
}

/// A failure that ends the command: its sysexits status and the line for the operator.
#[derive(Debug)]
pub struct Failure {
    /// The exit status.
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// A failure with status `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<StartError> for Failure {
    fn from(e: StartError) -> Failure {
        let code = match &e {
            StartError::StoreInUse(_) => exit::TEMPFAIL,
            StartError::Usage(_) => exit::USAGE,
            StartError::Store(_) | StartError::Io { .. } => exit::IOERR,
            _ => exit::CONFIG,
        };
        Failure::new(code, e.to_string())
    }
}

/// The options both commands share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    /// The account.
    pub user: String,
    /// The configuration file.
    pub config: PathBuf,
    /// `--mailbox`.
    pub mailbox: Option<String>,
    /// The file or folder to read or write.
    pub path: PathBuf,
}

/// Splits `--user NAME`, `--config PATH`, `--mailbox M`, the options `flags` names (each
/// taking a value) and one path out of `args`; the values of `flags` come back in order.
fn parse_common(
    args: &[String],
    flags: &[&str],
    usage: &str,
) -> Result<(Common, Vec<Option<String>>), Failure> {
    let bad = || Failure::new(exit::USAGE, usage.to_string());
    let mut user = None;
    let mut config = None;
    let mut mailbox = None;
    let mut path = None;
    let mut values = vec![None; flags.len()];
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--user" | "-u" => user = Some(it.next().ok_or_else(bad)?.clone()),
            "--config" | "-c" => config = Some(PathBuf::from(it.next().ok_or_else(bad)?)),
            "--mailbox" | "-m" => mailbox = Some(it.next().ok_or_else(bad)?.clone()),
            flag if flags.contains(&flag) => {
                let i = flags.iter().position(|f| *f == flag).unwrap_or(0);
                values[i] = Some(it.next().ok_or_else(bad)?.clone());
            }
            other if other.starts_with('-') && other.len() > 1 => return Err(bad()),
            other if path.is_none() => path = Some(PathBuf::from(other)),
            _ => return Err(bad()),
        }
    }
    Ok((
        Common {
            user: user.ok_or_else(bad)?,
            config: config.unwrap_or_else(|| PathBuf::from("tern.toml")),
            mailbox,
            path: path.ok_or_else(bad)?,
        },
        values,
    ))
}

/// The store and the account a command works on.
pub struct Target {
    store: Arc<dyn MailStore>,
    /// The account's canonical name.
    pub account: String,
    /// The largest message accepted (the configured IMAP literal limit, as APPEND's).
    pub max_message: usize,
}

impl Target {
    /// Loads the configuration, finds the account in the directory and opens the store.
    pub fn open(common: &Common) -> Result<Target, Failure> {
        let config = Config::load(&common.config)?;
        // No quota: an import is the administrator's migration and is not held to one (an
        // account imported beyond its quota can then only shrink until it is under).
        let directory = Directory::new(
            &config.directory.users,
            config.passwd_file().as_deref(),
            None,
        )
        .map_err(|e| Failure::new(exit::CONFIG, format!("accounts: {e}")))?;
        let account = directory.canonical(&common.user).ok_or_else(|| {
            Failure::new(
                exit::NOUSER,
                format!("no account {:?} in the configured directory", common.user),
            )
        })?;
        if config.storage.backend == StorageBackend::Memory {
            return Err(Failure::new(
                exit::CONFIG,
                "[storage] backend = \"memory\" keeps nothing once this command ends",
            ));
        }
        let store = crate::server::open_store(&config)?;
        let max_message = usize::try_from(config.limits().imap_max_literal).unwrap_or(usize::MAX);
        Ok(Target {
            store,
            account,
            max_message,
        })
    }

    /// Runs one request now.
    pub fn run(&self, op: StorageOp) -> StorageResult {
        self.store.execute(op, unix_now(), &|| false)
    }

    /// Runs one request; a failure ends the command.
    pub fn must(&self, op: StorageOp, what: &str) -> Result<StorageReply, Failure> {
        self.run(op).map_err(|e| storage_failure(what, &e))
    }

    /// Calls `f` with every message of mailbox `name` and its octets, in UID order, a batch
    /// of requests at a time; returns the mailbox's UIDVALIDITY and UIDNEXT.
    pub fn each_message(
        &self,
        name: &str,
        mut f: impl FnMut(&FetchedMessage, &[u8]) -> Result<(), Failure>,
    ) -> Result<(u32, Uid), Failure> {
        /// Messages per FETCH.
        const FETCH_BATCH: usize = 200;
        let what = format!("cannot read {name}");
        let StorageReply::Opened(snapshot) = self.must(
            StorageOp::Open {
                account: self.account.clone(),
                name: name.to_string(),
                read_only: true,
            },
            &what,
        )?
        else {
            return Err(Failure::new(exit::IOERR, what));
        };
        for uids in snapshot.uids.chunks(FETCH_BATCH) {
            let StorageReply::Fetched(messages) = self.must(
                StorageOp::Fetch {
                    account: self.account.clone(),
                    mailbox: snapshot.id,
                    uids: uids.to_vec(),
                    want: FetchWant {
                        content: true,
                        info: false,
                        header_only: false,
                        ..Default::default()
                    },
                    mark_seen: false,
                },
                &what,
            )?
            else {
                return Err(Failure::new(exit::IOERR, what));
            };
            for m in messages.iter().filter(|m| !m.expunged) {
                let octets: Bytes = match &m.content {
                    Some(body) => body
                        .to_bytes()
                        .map_err(|e| Failure::new(exit::IOERR, format!("{what}: {e}")))?,
                    None => Bytes::new(),
                };
                f(m, &octets)?;
            }
        }
        Ok((snapshot.uid_validity, snapshot.uid_next))
    }

    /// Tidies the store up (checkpoints) before the process ends.
    pub fn close(&self) {
        self.store.close();
    }
}

/// The failure for a storage error while doing `what`.
pub fn storage_failure(what: &str, e: &StorageError) -> Failure {
    let code = match e {
        StorageError::InUse | StorageError::Unavailable(_) => exit::TEMPFAIL,
        _ => exit::IOERR,
    };
    Failure::new(code, format!("{what}: {e}"))
}

/// The wall clock in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs a command body and turns its outcome into the exit status, printing a failure.
pub fn finish(result: Result<u8, Failure>, command: &str) -> std::process::ExitCode {
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(f) => {
            eprintln!("tern {command}: {}", f.message);
            std::process::ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn common_options_parse() {
        let (c, v) = parse_common(
            &args("--user alice --format mbox -c x.toml out"),
            &["--format"],
            "u",
        )
        .unwrap();
        assert_eq!(
            c,
            Common {
                user: "alice".into(),
                config: "x.toml".into(),
                mailbox: None,
                path: "out".into()
            }
        );
        assert_eq!(v, [Some("mbox".to_string())]);
        for bad in [
            "--user alice",
            "a b --user x",
            "--user",
            "--bogus 1 --user a p",
        ] {
            assert_eq!(
                parse_common(&args(bad), &[], "u").unwrap_err().code,
                exit::USAGE,
                "{bad}"
            );
        }
    }
}
