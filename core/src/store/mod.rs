//! Storage as requests and replies.
//!
//! A session never calls storage. It emits a [`StorageRequest`] through
//! [`crate::Output::Storage`] (at most one in flight) and continues when the driver feeds the
//! matching reply back with [`crate::Input::Storage`]. The driver decides how to run the request:
//! inline, on a thread pool, or over the network. [`Store`] is the synchronous form that the
//! in-memory store and the embedded durable store implement.

use std::collections::HashMap;
use std::fmt;

use crate::secret::Secret;

/// Names one storage request of one session; the reply must carry the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub(crate) u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A request the session wants executed.
#[derive(Debug)]
pub struct StorageRequest {
    /// Echo this in [`crate::Input::Storage`].
    pub id: RequestId,
    /// What to do.
    pub op: StorageOp,
}

/// The operations a session asks of storage.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageOp {
    /// Check a user name and password. Hashing is slow on purpose, which is why this is a
    /// request rather than a call made from the session.
    Authenticate {
        /// The name as the client sent it.
        username: String,
        /// The password octets as the client sent them.
        password: Secret<Vec<u8>>,
    },
}

/// What storage answers to a [`StorageOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageReply {
    /// The answer to [`StorageOp::Authenticate`].
    Authenticated(AuthOutcome),
}

/// Whether credentials were accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials name this account (its canonical name, which may differ in case from
    /// what the client typed).
    Accepted {
        /// The account's canonical name.
        account: String,
    },
    /// Unknown user or wrong password; deliberately not told apart.
    Rejected,
}

/// Why storage could not carry out a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A passing condition (a busy database, a full queue); the client may retry.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A fault in storage itself.
    #[error("internal storage error: {0}")]
    Internal(String),
}

/// The reply type every store returns.
pub type StorageResult = Result<StorageReply, StorageError>;

/// Executes storage requests synchronously.
pub trait Store {
    /// Carries out `op`. Must not panic on any op; failures are [`StorageError`]s.
    fn execute(&mut self, op: StorageOp) -> StorageResult;
}

/// An in-memory store for tests, examples and the conformance suite.
///
/// Passwords are kept as given: it is never used to serve real accounts.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    users: HashMap<String, (String, Secret<Vec<u8>>)>,
}

impl MemStore {
    /// An empty store with no accounts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an account. Names match case-insensitively, as real clients expect.
    pub fn add_user(&mut self, name: &str, password: &str) {
        self.users.insert(
            name.to_lowercase(),
            (name.to_string(), Secret::new(password.as_bytes().to_vec())),
        );
    }
}

impl Store for MemStore {
    fn execute(&mut self, op: StorageOp) -> StorageResult {
        match op {
            StorageOp::Authenticate { username, password } => {
                let outcome = match self.users.get(&username.to_lowercase()) {
                    Some((account, stored)) if stored == &password => AuthOutcome::Accepted {
                        account: account.clone(),
                    },
                    _ => AuthOutcome::Rejected,
                };
                Ok(StorageReply::Authenticated(outcome))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memstore_checks_passwords_and_folds_case() {
        let mut store = MemStore::new();
        store.add_user("Alice", "pw");
        let auth = |store: &mut MemStore, user: &str, pw: &str| {
            store.execute(StorageOp::Authenticate {
                username: user.into(),
                password: Secret::new(pw.as_bytes().to_vec()),
            })
        };
        assert_eq!(
            auth(&mut store, "alice", "pw"),
            Ok(StorageReply::Authenticated(AuthOutcome::Accepted {
                account: "Alice".into()
            }))
        );
        assert_eq!(
            auth(&mut store, "alice", "PW"),
            Ok(StorageReply::Authenticated(AuthOutcome::Rejected))
        );
        assert_eq!(
            auth(&mut store, "bob", "pw"),
            Ok(StorageReply::Authenticated(AuthOutcome::Rejected))
        );
    }
}
