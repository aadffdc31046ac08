//! Dovecot's passwd-file format, and a table of it that follows the file as it changes.
//!
//! ```text
//! # comment
//! user:{SCHEME}hash:uid:gid:gecos:home:shell:extra
//! ```
//!
//! The first two fields matter to tern, and of the extra fields only `quota_rule` (or
//! `userdb_quota_rule`, and their `2`, `3`... variants), Dovecot's per-user quota; the others
//! may be present (and empty) so that a file shared with Dovecot works unchanged. The table is re-read when the file's
//! modification time, size or inode change, checked lazily at lookup time and at most once a
//! second; a file that fails to parse on re-read is logged and the previous table kept, so
//! an editor's half-written save cannot lock everyone out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::directory::Account;

/// How often at most the file's metadata is looked at.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Why a passwd-file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line is not acceptable.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The accounts of one file, by lookup key (see `tern_core::sasl::username_key`).
pub type Table = HashMap<String, Arc<Account>>;

/// Parses the whole file; any bad line fails it (with its line number).
pub fn parse(path: &Path, text: &str) -> Result<Table, PasswdError> {
    let mut table = Table::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |message: String| PasswdError::Line {
            path: path.to_path_buf(),
            line,
            message,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut fields = raw.split(':');
        let name = fields.next().unwrap_or_default();
        let Some(secret) = fields.next() else {
            return Err(error(
                "expected user:password[:uid:gid:gecos:home:shell:extra]".into(),
            ));
        };
        // Dovecot reads an empty password as "any password", which tern never allows.
        if secret.is_empty() {
            return Err(error(format!("user {name:?} has an empty password field")));
        }
        let mut account = Account::new(name, secret).map_err(error)?;
        account.derive_scram_from_plain();
        // The extra field (the 8th, after uid, gid, gecos, home and shell) holds space-separated
        // `key=value` pairs, and a quota rule holds ':' itself.
        let rest: Vec<&str> = fields.collect();
        if let Some(extra) = rest.get(5..).filter(|e| !e.is_empty()) {
            for pair in extra.join(":").split_whitespace() {
                let Some((key, value)) = pair.split_once('=') else {
                    continue;
                };
                let key = key.strip_prefix("userdb_").unwrap_or(key);
                let numbered = key
                    .strip_prefix("quota_rule")
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
                if numbered {
                    account.quota.add_dovecot_rule(value).map_err(error)?;
                }
            }
        }
        if table
            .insert(account.key.clone(), Arc::new(account))
            .is_some()
        {
            return Err(error(format!("user {name:?} appears twice")));
        }
    }
    Ok(table)
}

/// What identifies a version of the file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

fn signature(path: &Path) -> std::io::Result<Signature> {
    let meta = std::fs::metadata(path)?;
    Ok(Signature {
        modified: meta.modified().ok(),
        len: meta.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

/// A passwd-file and its current table.
#[derive(Debug)]
pub struct PasswdFile {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    table: Arc<Table>,
    signature: Option<Signature>,
    checked: Instant,
}

impl PasswdFile {
    /// Reads the file; at start a bad file is an error, unlike on re-read.
    pub fn open(path: &Path, now: Instant) -> Result<PasswdFile, PasswdError> {
        let read = |source| PasswdError::Read {
            path: path.to_path_buf(),
            source,
        };
        let signature = signature(path).map_err(read)?;
        let text = std::fs::read_to_string(path).map_err(read)?;
        let table = parse(path, &text)?;
        Ok(PasswdFile {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                table: Arc::new(table),
                signature: Some(signature),
                checked: now,
            }),
        })
    }

    /// The table as of `now`, re-read first if the file changed and a check is due.
    /// Blocking (it may read the file): call it where directory lookups run.
    pub fn table(&self, now: Instant) -> Arc<Table> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(state.checked) >= CHECK_INTERVAL {
            state.checked = now;
            self.refresh(&mut state);
        }
        state.table.clone()
    }

    fn refresh(&self, state: &mut State) {
        let current = match signature(&self.path) {
            Ok(sig) => sig,
            Err(e) => {
                // Logged once per disappearance, not once a second.
                if state.signature.take().is_some() {
                    tracing::warn!(path = %self.path.display(), error = %e, "passwd-file unreadable; keeping the accounts read before");
                }
                return;
            }
        };
        if state.signature.as_ref() == Some(&current) {
            return;
        }
        state.signature = Some(current);
        let parsed = std::fs::read_to_string(&self.path)
            .map_err(|source| PasswdError::Read {
                path: self.path.clone(),
                source,
            })
            .and_then(|text| parse(&self.path, &text));
        match parsed {
            Ok(table) => {
                tracing::info!(path = %self.path.display(), accounts = table.len(), "passwd-file re-read");
                state.table = Arc::new(table);
            }
            Err(e) => {
                tracing::warn!(error = %e, "passwd-file not re-read; keeping the accounts read before");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA512: &str = "{SHA512-CRYPT}$6$0G7ox8WR4DD5YUfb$BBwy6UH6ABE2Ivd1URL6z/wvVPpXQQbVqTifIBXkVErcQBERxNGanvAs0LpS/ArxItN/oLy8hiGOkOTpwAqWW0";

    #[test]
    fn parses_dovecot_lines_comments_and_blank_lines() {
        let text = format!(
            "# accounts\n\n  \nalice:{SHA512}:1000:1000::/home/alice::userdb_quota_rule=*:storage=1G\n\
             Bob:{{plain}}pw\ncarol:{{PLAIN}}x:::::\n\
             dave:{{plain}}x::::::mail=x quota_rule=*:messages=10 quota_rule2=*:bytes=5M\n"
        );
        let table = parse(Path::new("p"), &text).unwrap();
        assert_eq!(table.len(), 4);
        // Dovecot's per-user quota rules, with or without `userdb_`, numbered or not.
        let default = tern_core::store::Quota {
            octets: Some(1),
            messages: Some(2),
        };
        assert_eq!(
            table["alice"].quota.over(default),
            tern_core::store::Quota {
                octets: Some(1 << 30),
                messages: Some(2)
            }
        );
        assert_eq!(
            table["dave"].quota.over(default),
            tern_core::store::Quota {
                octets: Some(5 << 20),
                messages: Some(10)
            }
        );
        assert_eq!(table["bob"].quota.over(default), default);
        assert!(table["alice"].secret.verify(b"pencil"));
        assert_eq!(table["bob"].name, "Bob");
        assert!(table["bob"].scram.is_some());
        assert!(table["alice"].scram.is_none());
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        for (text, line, message) in [
            ("a:{plain}x\nbob\n", 2, "expected user:password"),
            ("bob:\n", 1, "empty password"),
            ("bob:{MD5}x\n", 1, "unsupported password scheme {MD5}"),
            ("a b:{plain}x\n", 1, "not a valid account name"),
            ("#\nbob:{plain}x\nBOB:{plain}y\n", 3, "appears twice"),
            (
                "bob:{plain}x::::::quota_rule=Trash:storage=+1M\n",
                1,
                "only rules for all mailboxes",
            ),
        ] {
            let e = parse(Path::new("users"), text).unwrap_err().to_string();
            assert!(e.starts_with(&format!("users:{line}: ")), "{text:?}: {e}");
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }

    #[test]
    fn follows_the_file_and_keeps_the_old_table_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "alice:{plain}one\n").unwrap();
        let t0 = Instant::now();
        let file = PasswdFile::open(&path, t0).unwrap();
        assert!(file.table(t0)["alice"].secret.verify(b"one"));

        // A change is seen at the next check, not before.
        std::fs::write(&path, "alice:{plain}two\nbob:{plain}b\n").unwrap();
        assert!(file.table(t0 + Duration::from_millis(500))["alice"]
            .secret
            .verify(b"one"));
        let t1 = t0 + Duration::from_secs(1);
        let table = file.table(t1);
        assert!(table["alice"].secret.verify(b"two"));
        assert!(table.contains_key("bob"));

        // A broken file leaves the last good table in place.
        std::fs::write(&path, "alice:{plain}three\nbroken line\n").unwrap();
        let t2 = t1 + Duration::from_secs(1);
        assert!(file.table(t2)["alice"].secret.verify(b"two"));
        // ... and so does a missing one; its return is picked up.
        std::fs::remove_file(&path).unwrap();
        let t3 = t2 + Duration::from_secs(1);
        assert!(file.table(t3)["alice"].secret.verify(b"two"));
        std::fs::write(&path, "alice:{plain}four\n").unwrap();
        let t4 = t3 + Duration::from_secs(1);
        assert!(file.table(t4)["alice"].secret.verify(b"four"));
        assert!(!file.table(t4).contains_key("bob"));
    }

    #[test]
    fn a_missing_file_is_an_error_at_start() {
        let e = PasswdFile::open(Path::new("/nonexistent/users"), Instant::now())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/users: "), "{e}");
    }
}
