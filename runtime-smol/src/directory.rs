//! Accounts and password checks: the `[[directory.users]]` of the configuration and an
//! optional Dovecot-style passwd-file.
//!
//! It answers the core's directory requests (`tern_core::directory`) through `backend.rs`,
//! behind the login defences: password checks run on the check pool (`checks.rs`), SCRAM
//! lookups on the blocking pool, since a slow hash must never stall other connections.
//!
//! Names are matched by their lookup key, SASLprep (RFC 4013) then lower case, so `Alice`,
//! `ALICE` and `alice` are one account. A name in both the configuration and the passwd-file
//! is taken from the configuration (a warning at start says so).
//!
//! SCRAM-SHA-256 needs keys derived from the password, which a password hash cannot give.
//! An account has them when its secret is `{plain}` (derived at load), `{SCRAM-SHA-256}…`, or
//! when its configuration gives `scram = "SCRAM-SHA-256$…"` (RFC 5803, as
//! `tern hash-password --scram` prints it). For other accounts, and for unknown names,
//! [`Directory::scram`] hands out stand-in keys that no proof can match, so SCRAM fails for
//! them exactly as a wrong password does and reveals nothing about which names exist.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use tern_core::sasl::{saslprep, username_key, ScramCredentials};
use tern_core::AuthOutcome;

use crate::config::User;
use crate::passwd_file::PasswdFile;
use crate::passwords::{HashScratch, StoredSecret};
use crate::quota::QuotaRule;
use tern_core::store::Quota;

/// PBKDF2 iterations for SCRAM keys tern makes itself (`{plain}` accounts, stand-ins, and
/// `hash-password --scram`). RFC 7677 §4 asks for at least 4096; more slows offline guessing
/// should the keys leak, at a cost clients pay at each login.
pub const SCRAM_ITERATIONS: u32 = 10_000;

/// One account as the directory knows it.
#[derive(Debug, Clone)]
pub struct Account {
    /// The name as configured: the account's canonical name in the store.
    pub name: String,
    /// The lookup key (SASLprep, lower case).
    pub key: String,
    /// What a password is checked against.
    pub secret: StoredSecret,
    /// SCRAM-SHA-256 keys, if the account can use SCRAM.
    pub scram: Option<ScramCredentials>,
    /// Its own quota values over the `[quota]` default.
    pub quota: QuotaRule,
}

impl Account {
    /// Checks a configured name and secret. The error names neither the secret nor a part of it.
    pub fn new(name: &str, secret: &str) -> Result<Account, String> {
        check_name(name)?;
        let secret = StoredSecret::parse(secret).map_err(|e| e.to_string())?;
        let key = username_key(name).map_err(|e| format!("account name {name:?} {e}"))?;
        let scram = match &secret {
            StoredSecret::Scram(keys) => Some(keys.clone()),
            _ => None,
        };
        Ok(Account {
            name: name.to_string(),
            key,
            secret,
            scram,
            quota: QuotaRule::default(),
        })
    }

    /// Adds SCRAM keys given in RFC 5803 form.
    pub fn with_scram(mut self, record: &str) -> Result<Account, String> {
        self.scram = Some(ScramCredentials::from_rfc5803(record).map_err(|e| e.to_string())?);
        Ok(self)
    }

    /// For a `{plain}` secret, derives SCRAM keys with a fresh salt (unless some are given).
    pub fn derive_scram_from_plain(&mut self) {
        if self.scram.is_none() && self.secret.is_plain() {
            self.scram = self.secret.scram_keys(&random_salt(), SCRAM_ITERATIONS);
        }
    }
}

/// Account names end up in paths and protocol strings: keep them plain. They must also be
/// in SASLprep's normal form, so the name the store sees is the one a client can type.
pub fn check_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c == ':' || c.is_whitespace() || c.is_control())
        && name != "."
        && name != "..";
    if !plain {
        return Err(format!(
            "{name:?} is not a valid account name (1-255 characters, no '/', '\\', ':', \
             whitespace or control characters)"
        ));
    }
    match saslprep(name) {
        Ok(prepared) if prepared == name => Ok(()),
        Ok(prepared) => Err(format!(
            "account name {name:?} is not in SASLprep normal form; write it as {prepared:?}"
        )),
        Err(e) => Err(format!("account name {name:?} {e}")),
    }
}

fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    salt
}

/// What [`Directory::scram`] answers.
#[derive(Debug, Clone)]
pub struct ScramLookup {
    /// The canonical account name, if the name is an account that can use SCRAM.
    pub account: Option<String>,
    /// Its keys, or stand-ins (see the module docs).
    pub credentials: ScramCredentials,
}

/// The configured accounts.
#[derive(Debug)]
pub struct Directory {
    /// From `[[directory.users]]`, by lookup key.
    users: HashMap<String, Arc<Account>>,
    file: Option<PasswdFile>,
    /// Verified against when the user does not exist, so that an unknown name costs the same
    /// time as a wrong password and cannot be told apart by timing.
    decoy: StoredSecret,
    /// Keys the stand-in SCRAM credentials are derived from; random per start.
    decoy_key: [u8; 32],
    /// The `[quota]` default; `None` when quotas are off.
    quota: Option<Quota>,
}

/// Checks that a configured secret is in a scheme tern can verify.
pub fn check_secret(secret: &str) -> Result<(), String> {
    StoredSecret::parse(secret)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Hashes a password for the config file: argon2id with the crate's default (OWASP)
/// parameters, over the SASLprep-ed password when it has one (see `StoredSecret::verify`).
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    let prepared = std::str::from_utf8(password)
        .ok()
        .and_then(|p| saslprep(p).ok());
    let input = prepared.as_deref().map_or(password, str::as_bytes);
    Argon2::default()
        .hash_password(input, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// SCRAM-SHA-256 keys for a password in RFC 5803 form, with a fresh salt.
pub fn scram_record(password: &str, iterations: u32) -> Result<String, String> {
    ScramCredentials::derive(password, &random_salt(), iterations)
        .map(|c| c.to_rfc5803())
        .map_err(|e| format!("the password {e}"))
}

impl Directory {
    /// Builds the directory from checked configuration (see `Config::check`) and reads the
    /// passwd-file, if one is configured.
    pub fn new(
        users: &[User],
        passwd_file: Option<&Path>,
        quota: Option<Quota>,
    ) -> Result<Directory, String> {
        let mut map = HashMap::new();
        for user in users {
            let mut account = Account::new(&user.name, &user.secret)
                .map_err(|e| format!("user {:?}: {e}", user.name))?;
            account.quota = user
                .quota_rule()
                .map_err(|e| format!("user {:?}: {e}", user.name))?;
            if let Some(record) = &user.scram {
                account = account
                    .with_scram(record)
                    .map_err(|e| format!("user {:?}: scram: {e}", user.name))?;
            }
            if account.secret.is_plain() {
                tracing::warn!(
                    user = %user.name,
                    "account has a {{plain}} secret: use only for tests (tern hash-password makes a hash)"
                );
            }
            account.derive_scram_from_plain();
            map.insert(account.key.clone(), Arc::new(account));
        }
        let file = match passwd_file {
            Some(path) => {
                let file = PasswdFile::open(path, Instant::now()).map_err(|e| e.to_string())?;
                let table = file.table(Instant::now());
                let plain = table.values().filter(|a| a.secret.is_plain()).count();
                if plain > 0 {
                    tracing::warn!(path = %path.display(), accounts = plain, "passwd-file has {{plain}} secrets: use only for tests");
                }
                for key in table.keys().filter(|k| map.contains_key(*k)) {
                    tracing::warn!(account = %key, "account is in both the configuration and the passwd-file; the configuration's entry is used");
                }
                tracing::info!(path = %path.display(), accounts = table.len(), "passwd-file read");
                Some(file)
            }
            None => None,
        };
        let decoy = StoredSecret::parse(&hash_password(b"tern decoy password")?)
            .map_err(|e| e.to_string())?;
        let mut decoy_key = [0u8; 32];
        OsRng.fill_bytes(&mut decoy_key);
        Ok(Directory {
            users: map,
            file,
            decoy,
            decoy_key,
            quota,
        })
    }

    /// The quota of the account named `account` (canonical): its own values over the
    /// default; unlimited when quotas are off or the account is unknown.
    pub fn quota(&self, account: &str) -> Quota {
        self.account(account)
            .map_or_else(Quota::default, |a| self.quota_of(&a))
    }

    fn quota_of(&self, account: &Account) -> Quota {
        self.quota
            .map_or_else(Quota::default, |default| account.quota.over(default))
    }

    fn find(&self, key: &str) -> Option<Arc<Account>> {
        if let Some(account) = self.users.get(key) {
            return Some(account.clone());
        }
        let table = self.file.as_ref()?.table(Instant::now());
        table.get(key).cloned()
    }

    /// Every account's canonical name (the passwd-file as it is now included).
    pub fn account_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.users.values().map(|a| a.name.clone()).collect();
        if let Some(file) = &self.file {
            let table = file.table(Instant::now());
            let configured = |key: &String| self.users.contains_key(key);
            names.extend(
                table
                    .iter()
                    .filter(|(key, _)| !configured(key))
                    .map(|(_, a)| a.name.clone()),
            );
        }
        names
    }

    /// The canonical name of the account `username` names, if there is one.
    pub fn canonical(&self, username: &str) -> Option<String> {
        let key = username_key(username).ok()?;
        self.find(&key).map(|a| a.name.clone())
    }

    /// The account `username` names, if any.
    pub fn account(&self, username: &str) -> Option<Arc<Account>> {
        username_key(username).ok().and_then(|key| self.find(&key))
    }

    /// Checks a name and password with working memory of its own.
    pub fn verify(&self, username: &str, password: &[u8]) -> AuthOutcome {
        let account = self.account(username);
        if self.verify_account(account.as_deref(), password, &mut HashScratch::default()) {
            if let Some(account) = account {
                return AuthOutcome::Accepted {
                    account: account.name.clone(),
                    quota: self.quota_of(&account),
                };
            }
        }
        AuthOutcome::Rejected
    }

    /// Whether `password` is `account`'s. Blocking and slow by design; argon2 works in
    /// `scratch`. For no account (an unknown name) a stand-in secret is checked, so the answer
    /// takes as long as for a wrong password and cannot tell names apart by timing.
    pub fn verify_account(
        &self,
        account: Option<&Account>,
        password: &[u8],
        scratch: &mut HashScratch,
    ) -> bool {
        match account {
            Some(account) => account.secret.verify_with(password, scratch),
            None => {
                let _ = self.decoy.verify_with(password, scratch);
                false
            }
        }
    }

    /// SCRAM keys for `username`: the account's, or stand-ins that never verify.
    pub fn scram(&self, username: &str) -> ScramLookup {
        let key = username_key(username).unwrap_or_else(|_| username.to_string());
        if let Some(account) = self.find(&key) {
            if let Some(credentials) = &account.scram {
                return ScramLookup {
                    account: Some(account.name.clone()),
                    credentials: credentials.clone(),
                };
            }
        }
        // Stable per name within a run, so repeated lookups cannot tell stand-ins from real
        // keys by a changing salt.
        let derive = |label: &[u8]| -> [u8; 32] {
            // HMAC zero-pads short keys to its 64-byte block (RFC 2104 §2); padding here lets
            // the infallible fixed-size constructor take the key.
            let mut block = [0u8; 64];
            block[..32].copy_from_slice(&self.decoy_key);
            let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
            mac.update(label);
            mac.update(key.as_bytes());
            mac.finalize().into_bytes().into()
        };
        let salt = derive(b"salt\0");
        ScramLookup {
            account: None,
            credentials: ScramCredentials {
                salt: salt.get(..16).unwrap_or(&salt).to_vec(),
                iterations: SCRAM_ITERATIONS,
                stored_key: derive(b"stored\0"),
                server_key: derive(b"server\0"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, secret: &str) -> User {
        User {
            name: name.into(),
            secret: secret.into(),
            scram: None,
            quota_storage: None,
            quota_messages: None,
        }
    }

    #[test]
    fn verifies_argon2_and_plain_secrets_case_insensitively() {
        let hash = hash_password(b"s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(check_secret(&hash).is_ok());
        assert!(check_secret("{plain}x").is_ok());
        assert!(check_secret("$6$abc$def").is_err());
        assert!(check_secret("$argon2id$garbage").is_err());
        let dir = Directory::new(
            &[user("Alice", &hash), user("bob", "{plain}pw")],
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            dir.verify("alice", b"s3cret"),
            AuthOutcome::Accepted {
                account: "Alice".into(),
                quota: Quota::default(),
            }
        );
        assert_eq!(dir.verify("alice", b"wrong"), AuthOutcome::Rejected);
        assert_eq!(
            dir.verify("BOB", b"pw"),
            AuthOutcome::Accepted {
                account: "bob".into(),
                quota: Quota::default(),
            }
        );
        assert_eq!(dir.verify("bob", b"pw "), AuthOutcome::Rejected);
        assert_eq!(dir.verify("carol", b"pw"), AuthOutcome::Rejected);
        assert_eq!(dir.verify("\u{7}", b"pw"), AuthOutcome::Rejected);
        assert_eq!(dir.canonical("ALICE").as_deref(), Some("Alice"));
        assert_eq!(dir.canonical("carol"), None);
    }

    #[test]
    fn names_match_after_saslprep() {
        let dir = Directory::new(&[user("jos\u{e9}", "{plain}pw")], None, None).unwrap();
        // Decomposed and upper-case spellings name the same account.
        assert_eq!(
            dir.verify("JOSE\u{301}", b"pw"),
            AuthOutcome::Accepted {
                account: "jos\u{e9}".into(),
                quota: Quota::default(),
            }
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for (name, why) in [
            ("a b", "not a valid account name"),
            ("a:b", "not a valid account name"),
            ("..", "not a valid account name"),
            ("I\u{2168}", "SASLprep normal form; write it as \"IIX\""),
            ("a\u{E000}", "prohibits"),
        ] {
            let e = check_name(name).unwrap_err();
            assert!(e.contains(why), "{name:?}: {e}");
        }
        assert!(check_name("alice@example.org").is_ok());
    }

    #[test]
    fn scram_keys_for_plain_configured_and_unknown_users() {
        let stored = scram_record("pencil", 4096).unwrap();
        let dir = Directory::new(
            &[
                user("plain", "{plain}pencil"),
                User {
                    name: "hashed".into(),
                    secret: hash_password(b"pencil").unwrap(),
                    scram: Some(stored.clone()),
                    quota_storage: None,
                    quota_messages: None,
                },
                user("nokeys", &hash_password(b"pencil").unwrap()),
            ],
            None,
            None,
        )
        .unwrap();
        let plain = dir.scram("PLAIN");
        assert_eq!(plain.account.as_deref(), Some("plain"));
        let expected =
            ScramCredentials::derive("pencil", &plain.credentials.salt, SCRAM_ITERATIONS).unwrap();
        assert_eq!(plain.credentials, expected);
        let hashed = dir.scram("hashed");
        assert_eq!(hashed.account.as_deref(), Some("hashed"));
        assert_eq!(hashed.credentials.to_rfc5803(), stored);
        // Stand-ins: stable per name, different across names, and shaped like real keys.
        let a = dir.scram("nokeys");
        assert_eq!(a.account, None);
        assert_eq!(a.credentials, dir.scram("NOKEYS").credentials);
        assert_ne!(a.credentials, dir.scram("nobody").credentials);
        assert_eq!(a.credentials.salt.len(), 16);
        assert_eq!(a.credentials.iterations, SCRAM_ITERATIONS);
    }

    #[test]
    fn hash_password_hashes_the_prepared_form() {
        let hash = hash_password("a\u{A0}b".as_bytes()).unwrap();
        let secret = StoredSecret::parse(&hash).unwrap();
        assert!(secret.verify(b"a b"));
        assert!(secret.verify("a\u{A0}b".as_bytes()));
    }

    #[test]
    fn passwd_file_accounts_and_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(
            &path,
            "alice:{plain}from-file\ncarol:{SHA256-CRYPT}$5$3v8O0AChEo.nIGTG$lRXDZnelW/zbYSByUje5QCaUoXiWKALVGrT3TJLi6p0\n",
        )
        .unwrap();
        let d = Directory::new(&[user("Alice", "{plain}from-config")], Some(&path), None).unwrap();
        assert_eq!(d.verify("alice", b"from-file"), AuthOutcome::Rejected);
        assert_eq!(
            d.verify("alice", b"from-config"),
            AuthOutcome::Accepted {
                account: "Alice".into(),
                quota: Quota::default(),
            }
        );
        assert_eq!(
            d.verify("Carol", b"pencil"),
            AuthOutcome::Accepted {
                account: "carol".into(),
                quota: Quota::default(),
            }
        );
        let e = Directory::new(&[], Some(&dir.path().join("missing")), None).unwrap_err();
        assert!(e.contains("missing"), "{e}");
    }
}
