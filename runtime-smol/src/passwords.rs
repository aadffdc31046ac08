//! Stored password secrets: which schemes tern verifies, how each is recognised, and how a
//! login password is checked against one.
//!
//! Accepted forms, with or without a Dovecot-style `{SCHEME}` prefix (names are
//! case-insensitive, as in Dovecot):
//!
//! | prefix | stored value | verified with |
//! |---|---|---|
//! | `{ARGON2ID}`, `{ARGON2I}` or none | `$argon2id$…`, `$argon2i$…` PHC string | `argon2` |
//! | `{SHA512-CRYPT}` or none | `$6$[rounds=N$]salt$hash` | `sha-crypt` |
//! | `{SHA256-CRYPT}` or none | `$5$[rounds=N$]salt$hash` | `sha-crypt` |
//! | `{BLF-CRYPT}` or none | `$2b$`, `$2y$` or `$2a$` bcrypt | `bcrypt` |
//! | `{CRYPT}` | any of the `$…$` forms above (what `crypt(3)` would accept) | as above |
//! | `{SCRAM-SHA-256}` | Dovecot's `iterations,salt,StoredKey,ServerKey` | PBKDF2, and usable for SCRAM |
//! | `{PLAIN}`, `{CLEARTEXT}` | the password itself (tests only: a warning at start) | constant-time compare |
//!
//! Anything else (MD5-crypt, DES crypt, `{SSHA}`, …) is refused when the configuration is
//! loaded, so a typo cannot leave an account that never logs in.

use std::fmt;

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha_crypt::PasswordVerifier as _;
use subtle::ConstantTimeEq;
use tern_core::sasl::{saslprep, ScramCredentials};

/// A secret as stored for an account; never the password itself, except `Plain`.
#[derive(Clone)]
pub enum StoredSecret {
    /// An argon2id or argon2i PHC string.
    Argon2(String),
    /// A SHA-crypt string, `$5$` or `$6$`.
    ShaCrypt(String),
    /// A bcrypt string.
    Bcrypt(String),
    /// SCRAM-SHA-256 keys: a password is checked by deriving them again.
    Scram(ScramCredentials),
    /// A plaintext password, for tests only.
    Plain(Vec<u8>),
}

impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoredSecret::Argon2(_) => "Argon2(..)",
            StoredSecret::ShaCrypt(_) => "ShaCrypt(..)",
            StoredSecret::Bcrypt(_) => "Bcrypt(..)",
            StoredSecret::Scram(_) => "Scram(..)",
            StoredSecret::Plain(_) => "Plain(..)",
        })
    }
}

/// Why a configured secret is unusable. The message never repeats the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemeError {
    /// A `{SCHEME}` prefix tern does not know.
    #[error(
        "unsupported password scheme {{{0}}} (supported: ARGON2ID, ARGON2I, SHA512-CRYPT, \
         SHA256-CRYPT, BLF-CRYPT, CRYPT, SCRAM-SHA-256, PLAIN)"
    )]
    UnknownScheme(String),
    /// No prefix, and not a recognised `$id$` string either.
    #[error(
        "unsupported password format: expected an argon2 PHC string ($argon2id$...), \
         SHA-crypt ($6$/$5$), bcrypt ($2b$/$2y$), a {{SCHEME}} prefix, or {{plain}}text"
    )]
    UnknownFormat,
    /// The scheme is known but the value does not have its shape.
    #[error("not a valid {scheme} value ({why})")]
    Invalid {
        /// The scheme's name.
        scheme: &'static str,
        /// What is wrong, without the value.
        why: String,
    },
}

impl StoredSecret {
    /// Parses and checks a configured secret. Cheap: no hashing happens here, so a file of
    /// thousands of accounts loads at once.
    pub fn parse(text: &str) -> Result<StoredSecret, SchemeError> {
        if let Some(rest) = text.strip_prefix('{') {
            let (scheme, value) = rest.split_once('}').ok_or(SchemeError::UnknownFormat)?;
            return match scheme.to_ascii_uppercase().as_str() {
                "PLAIN" | "CLEARTEXT" => Ok(StoredSecret::Plain(value.as_bytes().to_vec())),
                "ARGON2ID" => expect_prefix(value, "$argon2id$", "ARGON2ID").and_then(argon2),
                "ARGON2I" => expect_prefix(value, "$argon2i$", "ARGON2I").and_then(argon2),
                "SHA512-CRYPT" => {
                    expect_prefix(value, "$6$", "SHA512-CRYPT").and_then(sha_crypt_value)
                }
                "SHA256-CRYPT" => {
                    expect_prefix(value, "$5$", "SHA256-CRYPT").and_then(sha_crypt_value)
                }
                "BLF-CRYPT" => bcrypt_value(value),
                "CRYPT" => match bare(value) {
                    Err(SchemeError::UnknownFormat) => Err(SchemeError::Invalid {
                        scheme: "CRYPT",
                        why: "only the $argon2$, $6$, $5$ and $2b$/$2y$ forms of crypt(3) are \
                              supported"
                            .into(),
                    }),
                    other => other,
                },
                "SCRAM-SHA-256" => dovecot_scram(value),
                _ => Err(SchemeError::UnknownScheme(scheme.to_string())),
            };
        }
        bare(text)
    }

    /// Whether this is a `{plain}` secret (which earns a warning at start).
    pub fn is_plain(&self) -> bool {
        matches!(self, StoredSecret::Plain(_))
    }

    /// SCRAM keys, when the secret provides them: derived for `{plain}` (with `salt`), or
    /// stored for `{SCRAM-SHA-256}`. Hashes of other schemes cannot give SCRAM keys.
    pub fn scram_keys(&self, salt: &[u8], iterations: u32) -> Option<ScramCredentials> {
        match self {
            StoredSecret::Scram(keys) => Some(keys.clone()),
            StoredSecret::Plain(password) => std::str::from_utf8(password)
                .ok()
                .and_then(|p| ScramCredentials::derive(p, salt, iterations).ok()),
            _ => None,
        }
    }

    /// Checks a password with working memory of its own; see [`StoredSecret::verify_with`].
    pub fn verify(&self, password: &[u8]) -> bool {
        self.verify_with(password, &mut HashScratch::default())
    }

    /// Checks a password. Blocking and slow by design for every scheme but `Plain`.
    ///
    /// argon2 works in `scratch` instead of allocating its memory (19 MiB for the default
    /// parameters) at each check: a thread that keeps one scratch for all its checks holds
    /// that memory once, and the allocator is never asked for (and never keeps) more.
    ///
    /// The password is tried as SASLprep (RFC 4013) prepares it, which is what PLAIN asks
    /// servers to compare (RFC 4616 §5) and what SCRAM keys are derived from; when that
    /// differs from the bytes as sent, those are tried too, because hashes made elsewhere
    /// (Dovecot does not prepare passwords) hold the unprepared form.
    pub fn verify_with(&self, password: &[u8], scratch: &mut HashScratch) -> bool {
        let prepared = std::str::from_utf8(password)
            .ok()
            .and_then(|p| saslprep(p).ok())
            .filter(|p| p.as_bytes() != password);
        if let Some(prepared) = prepared {
            if self.verify_exact(prepared.as_bytes(), scratch) {
                return true;
            }
        }
        self.verify_exact(password, scratch)
    }

    fn verify_exact(&self, password: &[u8], scratch: &mut HashScratch) -> bool {
        match self {
            StoredSecret::Argon2(phc) => verify_argon2(phc, password, scratch),
            StoredSecret::ShaCrypt(hash) => sha_crypt::ShaCrypt::default()
                .verify_password(password, hash.as_str())
                .is_ok(),
            StoredSecret::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            StoredSecret::Scram(keys) => std::str::from_utf8(password)
                .ok()
                .and_then(|p| ScramCredentials::derive(p, &keys.salt, keys.iterations).ok())
                .is_some_and(|derived| bool::from(derived.stored_key.ct_eq(&keys.stored_key))),
            StoredSecret::Plain(stored) => bool::from(stored.as_slice().ct_eq(password)),
        }
    }
}

/// Working memory for password checks, reused from one check to the next.
#[derive(Default)]
pub struct HashScratch {
    argon2: Vec<Block>,
}

impl HashScratch {
    /// Bytes held.
    pub fn len_bytes(&self) -> usize {
        self.argon2.len() * Block::SIZE
    }
}

/// What `argon2`'s `PasswordVerifier` does, with the caller's memory: recompute the hash with
/// the stored parameters and salt, and compare in constant time.
fn verify_argon2(phc: &str, password: &[u8], scratch: &mut HashScratch) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
        Algorithm::try_from(hash.algorithm),
        Params::try_from(&hash),
        hash.hash,
        hash.salt,
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if scratch.argon2.len() < blocks {
        scratch.argon2.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut scratch.argon2[..])
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// A secret without `{SCHEME}`: recognised by its `$id$`.
fn bare(text: &str) -> Result<StoredSecret, SchemeError> {
    if text.starts_with("$argon2id$") || text.starts_with("$argon2i$") {
        argon2(text)
    } else if text.starts_with("$6$") || text.starts_with("$5$") {
        sha_crypt_value(text)
    } else if text.starts_with("$2") {
        bcrypt_value(text)
    } else {
        Err(SchemeError::UnknownFormat)
    }
}

fn expect_prefix<'a>(
    value: &'a str,
    prefix: &str,
    scheme: &'static str,
) -> Result<&'a str, SchemeError> {
    if value.starts_with(prefix) {
        Ok(value)
    } else {
        Err(SchemeError::Invalid {
            scheme,
            why: format!("expected a value starting with {prefix}"),
        })
    }
}

fn argon2(text: &str) -> Result<StoredSecret, SchemeError> {
    let invalid = |why: String| SchemeError::Invalid {
        scheme: "argon2",
        why,
    };
    let hash = PasswordHash::new(text).map_err(|e| invalid(format!("not a PHC string: {e}")))?;
    argon2::Params::try_from(&hash).map_err(|e| invalid(format!("parameters: {e}")))?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(invalid("the salt or hash is missing".into()));
    }
    // argon2d is not accepted: it is not meant for passwords (side channels).
    if hash.algorithm.as_str() != "argon2id" && hash.algorithm.as_str() != "argon2i" {
        return Err(invalid("only argon2id and argon2i are accepted".into()));
    }
    Ok(StoredSecret::Argon2(text.to_string()))
}

/// `$5$` or `$6$`, an optional `rounds=N$`, a salt, and the hash in crypt's base64.
fn sha_crypt_value(text: &str) -> Result<StoredSecret, SchemeError> {
    let (scheme, hash_len) = if text.starts_with("$6$") {
        ("SHA512-CRYPT", 86)
    } else {
        ("SHA256-CRYPT", 43)
    };
    let invalid = |why: &str| SchemeError::Invalid {
        scheme,
        why: why.to_string(),
    };
    let fields: Vec<&str> = text.get(3..).unwrap_or_default().split('$').collect();
    let (rounds, salt, hash) = match fields.as_slice() {
        [salt, hash] => (None, *salt, *hash),
        [rounds, salt, hash] => (Some(*rounds), *salt, *hash),
        _ => return Err(invalid("expected $id$[rounds=N$]salt$hash")),
    };
    if let Some(rounds) = rounds {
        let n: u32 = rounds
            .strip_prefix("rounds=")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| invalid("expected rounds=N"))?;
        // glibc would silently raise a smaller count to 1000; sha-crypt refuses it, and such
        // an account could never log in, so say so now.
        if !(1000..=999_999_999).contains(&n) {
            return Err(invalid("rounds must be between 1000 and 999999999"));
        }
    }
    let crypt64 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    };
    if salt.is_empty() || salt.len() > 16 || !crypt64(salt) {
        return Err(invalid("the salt must be 1-16 characters of [./0-9A-Za-z]"));
    }
    if hash.len() != hash_len || !crypt64(hash) {
        return Err(invalid("the hash has the wrong length or characters"));
    }
    Ok(StoredSecret::ShaCrypt(text.to_string()))
}

fn bcrypt_value(text: &str) -> Result<StoredSecret, SchemeError> {
    let invalid = |why: String| SchemeError::Invalid {
        scheme: "BLF-CRYPT",
        why,
    };
    // $2x$ marks hashes made by a buggy implementation; verifying them as $2b$ would fail for
    // some passwords and accept others wrongly.
    if !["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p)) {
        return Err(invalid("expected $2b$, $2y$ or $2a$".into()));
    }
    text.parse::<bcrypt::HashParts>()
        .map_err(|e| invalid(e.to_string()))?;
    Ok(StoredSecret::Bcrypt(text.to_string()))
}

/// Dovecot's `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey`, base64 throughout.
fn dovecot_scram(value: &str) -> Result<StoredSecret, SchemeError> {
    let parts: Vec<&str> = value.split(',').collect();
    let [iterations, salt, stored, server] = parts.as_slice() else {
        return Err(SchemeError::Invalid {
            scheme: "SCRAM-SHA-256",
            why: "expected iterations,salt,StoredKey,ServerKey".into(),
        });
    };
    // The same fields as RFC 5803's form, which tern-core already parses and checks.
    ScramCredentials::from_rfc5803(&format!(
        "SCRAM-SHA-256${iterations}:{salt}${stored}:{server}"
    ))
    .map(StoredSecret::Scram)
    .map_err(|e| SchemeError::Invalid {
        scheme: "SCRAM-SHA-256",
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `doveadm pw -s SCHEME -p pencil` (Dovecot 2.3) and Python's crypt module
    // (libxcrypt), so they are checked against independent implementations.
    const SHA512: &str = "{SHA512-CRYPT}$6$0G7ox8WR4DD5YUfb$BBwy6UH6ABE2Ivd1URL6z/wvVPpXQQbVqTifIBXkVErcQBERxNGanvAs0LpS/ArxItN/oLy8hiGOkOTpwAqWW0";
    const SHA512_ROUNDS: &str = "{SHA512-CRYPT}$6$rounds=7000$n3pvp94E5IW.8yA0$L0wmGZK6Va.5x4sfd9u83gEVsTPvtxQmk2pjJDqk7stt4WCZJ1QHQynRDUMLCgVBKDBmx8ic4.wc/4yON5LFy1";
    const SHA512_BARE: &str = "$6$rounds=5000$saltsaltsaltsalt$TC.srYZRdhUNd1hUaX8BXmGPkCpq7TP8IIfBuwlVqWVsOskMwYShHaSiuvPe57wq5SGBJgI8u2TksJeC/Zaz50";
    const SHA256: &str =
        "{SHA256-CRYPT}$5$3v8O0AChEo.nIGTG$lRXDZnelW/zbYSByUje5QCaUoXiWKALVGrT3TJLi6p0";
    const SHA256_BARE: &str = "$5$abcdefgh$2fBC4A6a5zMUaFynrzCXz1gz3QtUtBsVxjmcncJUE67";
    const BLF: &str = "{BLF-CRYPT}$2y$05$gXLxvikHsAQD8OhY0QEgZeobFU1PXKgWpZ4uO7r9wVdkBveuE/nbu";
    const BLF_BARE: &str = "$2b$04$abcdefghijklmnopqrstuu/FyAyuZSl3DbPdvio4KrIBdz2k2yhV2";
    const CRYPT: &str = "{CRYPT}$2y$05$v0stPaXJ47qxuncLqAAhf.Z/OjY7yfwD.v/JTU4d9r7n50AGIhOcG";
    const ARGON2ID: &str = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$GXzRA/RMGhIYTkdWPN4AQg$u1HZV1J1LeGpCX7wJstn0n/2/U+LcztOaj9dHqP7prM";
    const ARGON2I: &str = "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$1Ahc76Sz2x3vmLyuzWx2eQ$7MOYdZplq7bf+yhtwcoBaldLgLKTzxFD3DteCFqgz5Y";
    const SCRAM: &str = "{SCRAM-SHA-256}4096,O2zE5ePBQ+dDwzfLWAHOKg==,mepmerUIUfV3ZIo+deXF2+khEd1Q6vYT3xWYZcuM/iI=,ofN/IilRQAmEbLLAhQG+1RhzD1gsBDA1nrGU89ZdkMo=";
    /// crypt("päss", "$6$uni$"), UTF-8 bytes as given.
    const SHA512_UTF8: &str = "$6$uni$JUSdVmPtxOyODTCoW7FLd3hd.G4dAZFahJNV2L41i8iyWrj828p8nKSS3heZZCvXA7ZCsKrgCMIJYql7.YCE0.";

    #[test]
    fn every_scheme_verifies_its_known_hash() {
        for stored in [
            SHA512,
            SHA512_ROUNDS,
            SHA512_BARE,
            SHA256,
            SHA256_BARE,
            BLF,
            BLF_BARE,
            CRYPT,
            ARGON2ID,
            ARGON2I,
            SCRAM,
            "{PLAIN}pencil",
            "{plain}pencil",
            "{CLEARTEXT}pencil",
        ] {
            let secret = StoredSecret::parse(stored).unwrap_or_else(|e| panic!("{stored}: {e}"));
            assert!(secret.verify(b"pencil"), "{stored}");
            assert!(!secret.verify(b"pencil2"), "{stored}");
            assert!(!secret.verify(b""), "{stored}");
        }
    }

    #[test]
    fn non_ascii_passwords_match_hashes_of_the_unprepared_form() {
        let secret = StoredSecret::parse(SHA512_UTF8).unwrap();
        assert!(secret.verify("p\u{e4}ss".as_bytes()));
        // Decomposed input prepares (NFKC) to the composed form the hash was made from.
        assert!(secret.verify("pa\u{308}ss".as_bytes()));
        assert!(!secret.verify(b"pass"));
    }

    #[test]
    fn scram_keys_come_from_plain_and_scram_secrets_only() {
        let plain = StoredSecret::parse("{plain}pencil").unwrap();
        let keys = plain.scram_keys(b"0123456789abcdef", 4096).unwrap();
        assert_eq!(
            keys,
            ScramCredentials::derive("pencil", b"0123456789abcdef", 4096).unwrap()
        );
        let scram = StoredSecret::parse(SCRAM).unwrap();
        assert_eq!(scram.scram_keys(b"ignored", 1).unwrap().iterations, 4096);
        assert!(StoredSecret::parse(SHA512)
            .unwrap()
            .scram_keys(b"s", 4096)
            .is_none());
    }

    #[test]
    fn bad_secrets_are_refused_with_a_reason_and_without_the_value() {
        let cases = [
            ("{MD5-CRYPT}$1$abc$def", "unsupported password scheme {MD5-CRYPT}"),
            ("{SSHA}abc", "unsupported password scheme {SSHA}"),
            ("$1$abc$def", "unsupported password format"),
            ("md5:x", "unsupported password format"),
            ("hunter2", "unsupported password format"),
            ("{PLAIN", "unsupported password format"),
            ("{SHA512-CRYPT}$5$abc$def", "expected a value starting with $6$"),
            ("$6$salt", "expected $id$[rounds=N$]salt$hash"),
            ("$6$rounds=500$salt$TC.srYZRdhUNd1hUaX8BXmGPkCpq7TP8IIfBuwlVqWVsOskMwYShHaSiuvPe57wq5SGBJgI8u2TksJeC/Zaz50", "rounds must be"),
            ("$6$sa!t$TC.srYZRdhUNd1hUaX8BXmGPkCpq7TP8IIfBuwlVqWVsOskMwYShHaSiuvPe57wq5SGBJgI8u2TksJeC/Zaz50", "salt"),
            ("$6$salt$short", "wrong length"),
            ("$2x$05$gXLxvikHsAQD8OhY0QEgZeobFU1PXKgWpZ4uO7r9wVdkBveuE/nbu", "expected $2b$"),
            ("$2y$05$tooshort", "BLF-CRYPT"),
            ("{CRYPT}abcdefghijklm", "only the $argon2$"),
            ("$argon2id$garbage", "argon2"),
            ("$argon2d$v=19$m=65536,t=3,p=1$GXzRA/RMGhIYTkdWPN4AQg$u1HZV1J1LeGpCX7wJstn0n/2/U+LcztOaj9dHqP7prM", "unsupported password format"),
            ("{SCRAM-SHA-256}4096,abc", "iterations,salt"),
            ("{SCRAM-SHA-256}10,O2zE5ePBQ+dDwzfLWAHOKg==,mepmerUIUfV3ZIo+deXF2+khEd1Q6vYT3xWYZcuM/iI=,ofN/IilRQAmEbLLAhQG+1RhzD1gsBDA1nrGU89ZdkMo=", "4096"),
        ];
        for (stored, expected) in cases {
            let e = StoredSecret::parse(stored)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{stored}: {e}");
            assert!(!e.contains('\n'));
        }
        let e = StoredSecret::parse("$6$salt$hunter2hunter2")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(
            format!("{:?}", StoredSecret::parse("{plain}x").unwrap()),
            "Plain(..)"
        );
    }
}
