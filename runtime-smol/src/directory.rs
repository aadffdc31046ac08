//! Accounts and password checks.
//!
//! Runs on the blocking pool (see `backend.rs`): argon2 is deliberately slow, and a slow hash
//! must never stall other connections.

use std::collections::HashMap;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand_core::OsRng;
use subtle::ConstantTimeEq;
use tern_core::AuthOutcome;

use crate::config::User;

/// A stored secret, parsed once at start.
#[derive(Clone)]
enum Secret {
    /// A PHC string of an argon2 variant.
    Argon2(String),
    /// A plaintext password, for tests only.
    Plain(Vec<u8>),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Argon2(_) => "Argon2(..)",
            Secret::Plain(_) => "Plain(..)",
        })
    }
}

/// The configured accounts.
#[derive(Debug)]
pub struct Directory {
    /// Lower-cased name → (canonical name, secret).
    users: HashMap<String, (String, Secret)>,
    /// Verified against when the user does not exist, so that an unknown name costs the same
    /// time as a wrong password and cannot be told apart by timing.
    decoy: String,
}

/// Checks that a configured secret is in a scheme tern can verify.
pub fn check_secret(secret: &str) -> Result<(), String> {
    if secret.starts_with("{plain}") {
        return Ok(());
    }
    if secret.starts_with("$argon2") {
        let hash = PasswordHash::new(secret)
            .map_err(|e| format!("not a valid argon2 PHC string ({e})"))?;
        argon2::Params::try_from(&hash).map_err(|e| format!("invalid argon2 parameters ({e})"))?;
        if hash.salt.is_none() || hash.hash.is_none() {
            return Err("argon2 PHC string lacks its salt or hash".into());
        }
        return Ok(());
    }
    Err(
        "unsupported password scheme: expected an argon2 PHC string ($argon2id$...) or {plain}text"
            .into(),
    )
}

/// Hashes a password for the config file: argon2id with the crate's default (OWASP) parameters.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

impl Directory {
    /// Builds the directory from checked configuration (see `Config::check`).
    pub fn new(users: &[User]) -> Result<Directory, String> {
        let mut map = HashMap::new();
        for user in users {
            let secret = match user.secret.strip_prefix("{plain}") {
                Some(plain) => {
                    tracing::warn!(
                        user = %user.name,
                        "account has a {{plain}} secret: use only for tests (tern hash-password makes a hash)"
                    );
                    Secret::Plain(plain.as_bytes().to_vec())
                }
                None => Secret::Argon2(user.secret.clone()),
            };
            map.insert(user.name.to_lowercase(), (user.name.clone(), secret));
        }
        let decoy = hash_password(b"tern decoy password")?;
        Ok(Directory { users: map, decoy })
    }

    /// Checks a name and password. Blocking and slow by design.
    pub fn verify(&self, username: &str, password: &[u8]) -> AuthOutcome {
        let Some((account, secret)) = self.users.get(&username.to_lowercase()) else {
            let _ = verify_phc(&self.decoy, password);
            return AuthOutcome::Rejected;
        };
        let ok = match secret {
            Secret::Argon2(phc) => verify_phc(phc, password),
            Secret::Plain(stored) => bool::from(stored.as_slice().ct_eq(password)),
        };
        if ok {
            AuthOutcome::Accepted {
                account: account.clone(),
            }
        } else {
            AuthOutcome::Rejected
        }
    }
}

fn verify_phc(phc: &str, password: &[u8]) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|hash| Argon2::default().verify_password(password, &hash).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_argon2_and_plain_secrets_case_insensitively() {
        let hash = hash_password(b"s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(check_secret(&hash).is_ok());
        assert!(check_secret("{plain}x").is_ok());
        assert!(check_secret("$6$abc$def").is_err());
        assert!(check_secret("$argon2id$garbage").is_err());
        let dir = Directory::new(&[
            User {
                name: "Alice".into(),
                secret: hash,
            },
            User {
                name: "bob".into(),
                secret: "{plain}pw".into(),
            },
        ])
        .unwrap();
        assert_eq!(
            dir.verify("alice", b"s3cret"),
            AuthOutcome::Accepted {
                account: "Alice".into()
            }
        );
        assert_eq!(dir.verify("alice", b"wrong"), AuthOutcome::Rejected);
        assert_eq!(
            dir.verify("BOB", b"pw"),
            AuthOutcome::Accepted {
                account: "bob".into()
            }
        );
        assert_eq!(dir.verify("bob", b"pw "), AuthOutcome::Rejected);
        assert_eq!(dir.verify("carol", b"pw"), AuthOutcome::Rejected);
    }
}
