//! Who may log in, as requests and replies: the directory's side of authentication.
//!
//! Logging in is not storage's business. A session that needs a password checked, a user's
//! SCRAM keys, or a verified login counted against its account's connection limit emits a
//! [`DirectoryRequest`] through [`crate::Output::Directory`] and continues when the driver feeds
//! the reply back with [`crate::Input::Directory`]. A session has at most one request in flight,
//! storage or directory, so a driver answering both still runs one at a time per session.
//!
//! The driver decides what answers: the `tern` binary checks passwords on its own thread pool
//! against its configured users, with its login defences (blocks after repeated failures, a
//! cache of recent successes, per-account connection limits) in front. [`Directory`] is the
//! synchronous form, and [`MemDirectory`] a ready-made one for tests and embedders.

use std::collections::HashMap;

use crate::sasl::{ScramCredentials, ServerNonce};
use crate::secret::Secret;
use crate::store::{Quota, RequestId};

/// A request the session wants answered by the directory.
#[derive(Debug)]
pub struct DirectoryRequest {
    /// Echo this in [`crate::Input::Directory`].
    pub id: RequestId,
    /// What to answer.
    pub op: DirectoryOp,
}

/// What a session asks of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirectoryOp {
    /// Check a user name and password. Hashing is slow on purpose, which is why this is a
    /// request rather than a call made from the session.
    Authenticate {
        /// The name as the client sent it.
        username: String,
        /// The password octets as the client sent them.
        password: Secret<Vec<u8>>,
    },
    /// Look up a user's stored SCRAM keys (RFC 5802) and draw a fresh server nonce. Unknown
    /// users get stand-in keys that never verify, so the exchange cannot reveal which names
    /// exist.
    ScramLookup {
        /// The authentication identity, SASLprep-ed.
        username: String,
    },
    /// A login verified inside the session (SCRAM's proof) asks to become a session of the
    /// account: the driver counts it against the account's connection limit as it does for a
    /// checked password, and answers `Authenticated(Accepted)` or a refusal
    /// ([`DirectoryError::Unavailable`], [`DirectoryError::InUse`]).
    ClaimAccount {
        /// The account's canonical name, as the SCRAM lookup gave it.
        account: String,
    },
    /// Which account an LMTP recipient address (its `+detail` already removed) delivers to:
    /// see [`resolve_recipient`]. Answered with [`DirectoryReply::Recipient`].
    FindRecipient {
        /// The address as `local@domain` (or a bare local part).
        address: String,
    },
}

/// What the directory answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirectoryReply {
    /// To [`DirectoryOp::Authenticate`] and [`DirectoryOp::ClaimAccount`].
    Authenticated(AuthOutcome),
    /// To [`DirectoryOp::ScramLookup`].
    Scram {
        /// The account the keys belong to; `None` for stand-in keys.
        account: Option<String>,
        /// The stored keys (or stand-ins).
        credentials: ScramCredentials,
        /// The server's nonce part for this exchange.
        nonce: ServerNonce,
    },
    /// To [`DirectoryOp::FindRecipient`]: the account's canonical name, or `None` for no
    /// such account.
    Recipient {
        /// The account mail for the address goes to.
        account: Option<String>,
        /// The account's quota, which delivery is held to (unlimited for no account).
        quota: Quota,
    },
}

/// The account a recipient address names, given `find` (a case-insensitive lookup of an
/// account by name, answering its canonical name): the account whose name is the whole
/// address, else the one whose name is its local part, provided that account's name carries
/// no domain itself (so `alice@other.example` never reaches the account `alice@example.org`).
pub fn resolve_recipient(address: &str, find: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(account) = find(address) {
        return Some(account);
    }
    let (local, _domain) = address.rsplit_once('@')?;
    find(local).filter(|account| !account.contains('@'))
}

/// Whether credentials were accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials name this account (its canonical name, which may differ in case from
    /// what the client typed).
    Accepted {
        /// The account's canonical name.
        account: String,
        /// The account's quota (RFC 9208), which the session holds its writes to and shows
        /// with GETQUOTA. Data from the driver's configuration: the core reads no files.
        quota: Quota,
    },
    /// Unknown user or wrong password; deliberately not told apart.
    Rejected,
}

/// Why the directory did not answer with a verdict. None of these counts as a failed login.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// A login from an address that is blocked after repeated failed logins. The session
    /// refuses it and closes the connection: answering more attempts on it would only give an
    /// attacker a fast oracle for free.
    #[error("logins from this address are blocked")]
    Blocked,
    /// The account has as many sessions of this protocol as it may (a POP3 maildrop already
    /// in use).
    #[error("the account is in use by another session")]
    InUse,
    /// A passing condition (the account is blocked for a while, too many connections to it,
    /// a full queue of password checks); the client may retry.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A fault in the directory itself, or a driver bug.
    #[error("internal directory error: {0}")]
    Internal(String),
}

/// The reply type every directory returns.
pub type DirectoryResult = Result<DirectoryReply, DirectoryError>;

/// Answers directory requests synchronously.
pub trait Directory {
    /// Answers `op`. Must not panic on any op; failures are [`DirectoryError`]s.
    fn answer(&mut self, op: DirectoryOp) -> DirectoryResult;
}

/// Users in memory, for tests, the conformance suite and embedders with a handful of fixed
/// accounts. Passwords are kept as given; every verified login may proceed (no connection
/// limits); SCRAM keys are derived on demand with a fixed salt and a counter nonce, so that
/// transcripts are deterministic. Never serve real users with it.
#[derive(Debug, Default)]
pub struct MemDirectory {
    /// By lower-cased name: (canonical name, password).
    users: HashMap<String, (String, Secret<Vec<u8>>)>,
    /// Quotas by lower-cased name; unlimited when absent.
    quotas: HashMap<String, Quota>,
    nonce_counter: u64,
}

impl MemDirectory {
    /// A directory without users: every login is rejected.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user. Names match case-insensitively, as real clients expect.
    pub fn add_user(&mut self, name: &str, password: &str) {
        self.users.insert(
            name.to_lowercase(),
            (name.to_string(), Secret::new(password.as_bytes().to_vec())),
        );
    }

    /// Gives a user a quota (RFC 9208), answered with its logins and its deliveries.
    pub fn set_quota(&mut self, name: &str, quota: Quota) {
        self.quotas.insert(name.to_lowercase(), quota);
    }

    fn quota(&self, name: &str) -> Quota {
        self.quotas
            .get(&name.to_lowercase())
            .copied()
            .unwrap_or_default()
    }
}

impl Directory for MemDirectory {
    fn answer(&mut self, op: DirectoryOp) -> DirectoryResult {
        match op {
            DirectoryOp::Authenticate { username, password } => {
                let outcome = match self.users.get(&username.to_lowercase()) {
                    Some((account, stored)) if stored == &password => AuthOutcome::Accepted {
                        account: account.clone(),
                        quota: self.quota(account),
                    },
                    _ => AuthOutcome::Rejected,
                };
                Ok(DirectoryReply::Authenticated(outcome))
            }
            DirectoryOp::ClaimAccount { account } => {
                Ok(DirectoryReply::Authenticated(AuthOutcome::Accepted {
                    quota: self.quota(&account),
                    account,
                }))
            }
            DirectoryOp::FindRecipient { address } => {
                let account = resolve_recipient(&address, |name| {
                    self.users.get(&name.to_lowercase()).map(|(n, _)| n.clone())
                });
                let quota = account
                    .as_deref()
                    .map(|a| self.quota(a))
                    .unwrap_or_default();
                Ok(DirectoryReply::Recipient { account, quota })
            }
            DirectoryOp::ScramLookup { username } => {
                self.nonce_counter += 1;
                let nonce = ServerNonce::from_entropy(&self.nonce_counter.to_be_bytes());
                let (account, password) = match self.users.get(&username.to_lowercase()) {
                    Some((account, password)) => (
                        Some(account.clone()),
                        String::from_utf8_lossy(password.expose()).into_owned(),
                    ),
                    // Stand-in keys from a password nobody has: the proof can never match.
                    None => (None, format!("unknown {username} {}", self.nonce_counter)),
                };
                let credentials = ScramCredentials::derive(&password, b"tern-memstore", 4096)
                    .map_err(|_| DirectoryError::Internal("password not SASLprep-able".into()))?;
                Ok(DirectoryReply::Scram {
                    account,
                    credentials,
                    nonce,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(d: &mut MemDirectory, user: &str, password: &str) -> DirectoryResult {
        d.answer(DirectoryOp::Authenticate {
            username: user.into(),
            password: Secret::new(password.as_bytes().to_vec()),
        })
    }

    #[test]
    fn names_match_case_insensitively_and_answer_canonically() {
        let mut d = MemDirectory::new();
        d.add_user("Alice", "pw");
        let accepted = Ok(DirectoryReply::Authenticated(AuthOutcome::Accepted {
            account: "Alice".into(),
            quota: Quota::default(),
        }));
        assert_eq!(login(&mut d, "alice", "pw"), accepted);
        assert_eq!(login(&mut d, "ALICE", "pw"), accepted);
        let rejected = Ok(DirectoryReply::Authenticated(AuthOutcome::Rejected));
        assert_eq!(login(&mut d, "alice", "PW"), rejected);
        assert_eq!(login(&mut d, "bob", "pw"), rejected);
    }

    #[test]
    fn recipients_match_whole_or_by_local_part_of_domainless_names() {
        let mut d = MemDirectory::new();
        d.add_user("Alice", "pw");
        d.add_user("bob@example.org", "pw");
        let find = |d: &mut MemDirectory, a: &str| match d
            .answer(DirectoryOp::FindRecipient { address: a.into() })
        {
            Ok(DirectoryReply::Recipient { account, .. }) => account,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(find(&mut d, "alice@example.org").as_deref(), Some("Alice"));
        assert_eq!(find(&mut d, "ALICE").as_deref(), Some("Alice"));
        assert_eq!(
            find(&mut d, "Bob@Example.org").as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(find(&mut d, "bob@other.example"), None);
        assert_eq!(find(&mut d, "carol@example.org"), None);
    }

    #[test]
    fn unknown_users_get_stand_in_keys_and_every_lookup_a_new_nonce() {
        let mut d = MemDirectory::new();
        d.add_user("alice", "pencil");
        let lookup = |d: &mut MemDirectory, user: &str| match d.answer(DirectoryOp::ScramLookup {
            username: user.into(),
        }) {
            Ok(DirectoryReply::Scram {
                account,
                credentials,
                nonce,
            }) => (account, credentials, nonce),
            other => panic!("unexpected {other:?}"),
        };
        let (account, keys, first) = lookup(&mut d, "alice");
        assert_eq!(account.as_deref(), Some("alice"));
        assert_eq!(
            keys,
            ScramCredentials::derive("pencil", b"tern-memstore", 4096).unwrap()
        );
        let (account, keys, second) = lookup(&mut d, "mallory");
        assert_eq!(account, None);
        assert_eq!(keys.salt, b"tern-memstore".to_vec());
        assert_ne!(first, second);
    }
}
