//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, server side (RFC 5802, RFC 7677; channel binding
//! types `tls-exporter` from RFC 9266 and `tls-server-end-point` from RFC 5929).
//!
//! The exchange, with what the session does between the messages:
//!
//! ```text
//! C: n,,n=user,r=<client nonce>                       client-first
//!      → Step::NeedCredentials { username }            session looks the keys up
//!      ← ScramServer::credentials(keys, server nonce)  the runtime supplies the nonce
//! S: r=<client nonce><server nonce>,s=<salt>,i=4096    server-first
//! C: c=biws,r=<both nonces>,p=<proof>                  client-final
//! S: v=<server signature>                              server-final, sent as a challenge
//! C: (empty)                                           → Step::Done(Authenticated)
//! ```
//!
//! IMAP and POP3 cannot carry data in their success response (RFC 5034 §4, RFC 4422 §3.6),
//! so the server-final message goes out as one more challenge, answered with an empty
//! response. The server keeps only [`ScramCredentials`] (StoredKey, ServerKey), never the
//! password: a stolen key file lets nobody log in with SCRAM, nor learn the password.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::prep::{saslprep, username_key, PrepError};
use super::{Outcome, SaslError, Step};

type HmacSha256 = Hmac<Sha256>;

/// Length of SHA-256 output, and so of every SCRAM-SHA-256 key and proof.
const KEY_LEN: usize = 32;

/// RFC 7677 §4: at least 4096 iterations for SCRAM-SHA-256.
pub const MIN_ITERATIONS: u32 = 4096;

/// What the server stores for a user instead of the password (RFC 5802 §3).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The salt for PBKDF2 (`Hi()`), at least 16 random bytes in new records.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`: checks the client's proof.
    pub stored_key: [u8; KEY_LEN],
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server-final message.
    pub server_key: [u8; KEY_LEN],
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys let whoever holds them pose as the server, so they never reach a log.
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why a stored SCRAM record (RFC 5803 form) cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramRecordError {
    /// Not `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    #[error(
        "expected SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>"
    )]
    Shape,
    /// The iteration count is not a number, or is below RFC 7677's minimum of 4096.
    #[error("the iteration count must be a number of at least 4096")]
    Iterations,
    /// The salt is not base64 or is empty.
    #[error("the salt is not non-empty base64")]
    Salt,
    /// A key is not base64 of 32 bytes.
    #[error("StoredKey and ServerKey must each be base64 of 32 bytes")]
    Key,
}

impl ScramCredentials {
    /// Derives the stored keys from a password (RFC 5802 §3), preparing it with SASLprep as
    /// SCRAM requires. Slow by design: `iterations` rounds of HMAC-SHA-256.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Result<Self, PrepError> {
        let prepared = saslprep(password)?;
        let mut salted = [0u8; KEY_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(prepared.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        Ok(ScramCredentials {
            salt: salt.to_vec(),
            iterations,
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        })
    }

    /// Reads the RFC 5803 form, `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
    /// (base64 throughout), as `tern hash-password --scram` prints it.
    pub fn from_rfc5803(text: &str) -> Result<Self, ScramRecordError> {
        let rest = text
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or(ScramRecordError::Shape)?;
        let (params, keys) = rest.split_once('$').ok_or(ScramRecordError::Shape)?;
        let (iterations, salt) = params.split_once(':').ok_or(ScramRecordError::Shape)?;
        let (stored, server) = keys.split_once(':').ok_or(ScramRecordError::Shape)?;
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|&i| i >= MIN_ITERATIONS)
            .ok_or(ScramRecordError::Iterations)?;
        let salt = B64
            .decode(salt)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or(ScramRecordError::Salt)?;
        let key = |text: &str| -> Result<[u8; KEY_LEN], ScramRecordError> {
            B64.decode(text)
                .ok()
                .and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok())
                .ok_or(ScramRecordError::Key)
        };
        Ok(ScramCredentials {
            salt,
            iterations,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }

    /// The RFC 5803 form; see [`ScramCredentials::from_rfc5803`].
    pub fn to_rfc5803(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

/// The server's half of the nonce: printable ASCII except `,` (RFC 5802 §7 `printable`).
///
/// The core has no randomness source; the driver makes one from fresh random bytes with
/// [`ServerNonce::from_entropy`] for every exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNonce(String);

impl ServerNonce {
    /// Encodes random bytes (18 or more recommended) as a nonce.
    pub fn from_entropy(random: &[u8]) -> ServerNonce {
        // Standard base64 never produces ',' and is printable.
        ServerNonce(B64.encode(random))
    }

    /// Takes a nonce as given, if it is non-empty `printable`; for known-answer tests.
    pub fn new(nonce: &str) -> Option<ServerNonce> {
        (!nonce.is_empty() && nonce.bytes().all(is_printable)).then(|| ServerNonce(nonce.into()))
    }
}

/// The channel-binding data of the connection (RFC 5929, RFC 9266), as the driver computes it
/// from the TLS session. With none present, SCRAM-SHA-256-PLUS must not be advertised.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChannelBindings {
    /// `tls-exporter`: 32 bytes exported with label `EXPORTER-Channel-Binding` and no
    /// context (RFC 9266 §2); only sound on TLS 1.3, or TLS 1.2 with extended master secret.
    pub tls_exporter: Option<Vec<u8>>,
    /// `tls-server-end-point`: the hash of the server certificate (RFC 5929 §4.1).
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl fmt::Debug for ChannelBindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelBindings")
            .field("tls_exporter", &self.tls_exporter.is_some())
            .field("tls_server_end_point", &self.tls_server_end_point.is_some())
            .finish()
    }
}

impl ChannelBindings {
    /// Whether any binding is available, and so whether SCRAM-SHA-256-PLUS is offered.
    pub fn available(&self) -> bool {
        self.tls_exporter.is_some() || self.tls_server_end_point.is_some()
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        match name {
            "tls-exporter" => self.tls_exporter.as_deref(),
            "tls-server-end-point" => self.tls_server_end_point.as_deref(),
            _ => None,
        }
    }
}

/// The GS2 channel-binding flag the client chose.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CbindFlag {
    /// `n`: the client does not do channel binding.
    No,
    /// `y`: the client would, but believes the server cannot.
    ClientOnly,
    /// `p=<name>`: the client binds to this channel-binding type.
    Bound(String),
}

/// A SCRAM-SHA-256(-PLUS) exchange, server side.
#[derive(Debug)]
pub(super) struct ScramServer {
    plus: bool,
    bindings: ChannelBindings,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Nothing received yet.
    Start,
    /// The client-first message was read; waiting for the stored keys.
    AwaitCredentials(ClientFirst),
    /// The server-first message was sent.
    AwaitFinal {
        first: ClientFirst,
        server_first: String,
        nonce: String,
        keys: ScramCredentials,
    },
    /// The server-final message was sent; an empty response completes the exchange.
    AwaitAck { username: String },
    /// Over, successfully or not.
    Finished,
}

#[derive(Debug)]
struct ClientFirst {
    /// The GS2 header exactly as sent, which `c=` must repeat.
    gs2_header: String,
    flag: CbindFlag,
    /// The user name, decoded and SASLprep-ed.
    username: String,
    client_nonce: String,
    /// client-first-message-bare, the start of the AuthMessage.
    bare: String,
}

impl ScramServer {
    /// `plus`: the client chose SCRAM-SHA-256-PLUS. `bindings`: what this connection can bind
    /// to; if any is present the server offers -PLUS, which matters for the `y` flag.
    pub(super) fn new(plus: bool, bindings: ChannelBindings) -> ScramServer {
        ScramServer {
            plus,
            bindings,
            state: State::Start,
        }
    }

    /// Begins with the client-first message as initial response, or asks for it.
    pub(super) fn start(&mut self, initial_response: Option<&[u8]>) -> Step {
        match initial_response {
            Some(first) => self.respond(first),
            None => Step::Challenge(Vec::new()),
        }
    }

    /// Feeds a client response.
    pub(super) fn respond(&mut self, response: &[u8]) -> Step {
        let result = match std::mem::replace(&mut self.state, State::Finished) {
            State::Start => self.client_first(response),
            State::AwaitFinal {
                first,
                server_first,
                nonce,
                keys,
            } => self.client_final(response, &first, &server_first, &nonce, &keys),
            // RFC 4422 §5 step 4: the response to the additional-data challenge is empty.
            State::AwaitAck { username } if response.is_empty() => {
                Ok(Step::Done(Outcome::Authenticated { username }))
            }
            State::AwaitAck { .. } => Err(SaslError::Malformed("SCRAM")),
            State::AwaitCredentials(_) | State::Finished => Err(SaslError::Misuse),
        };
        result.unwrap_or_else(Step::Failed)
    }

    /// Supplies the stored keys asked for by [`Step::NeedCredentials`] and this exchange's
    /// server nonce; yields the server-first challenge.
    pub(super) fn credentials(&mut self, keys: &ScramCredentials, nonce: &ServerNonce) -> Step {
        let State::AwaitCredentials(first) = std::mem::replace(&mut self.state, State::Finished)
        else {
            return Step::Failed(SaslError::Misuse);
        };
        let nonce = format!("{}{}", first.client_nonce, nonce.0);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&keys.salt),
            keys.iterations
        );
        let challenge = server_first.clone().into_bytes();
        self.state = State::AwaitFinal {
            first,
            server_first,
            nonce,
            keys: keys.clone(),
        };
        Step::Challenge(challenge)
    }

    fn client_first(&mut self, message: &[u8]) -> Result<Step, SaslError> {
        let first = parse_client_first(message)?;
        // RFC 5802 §6: the flag must agree with the mechanism and with what was offered.
        match (&first.flag, self.plus) {
            (CbindFlag::Bound(_), false) | (CbindFlag::No | CbindFlag::ClientOnly, true) => {
                return Err(SaslError::ChannelBindingNotSupported)
            }
            // The client saw no -PLUS although it was offered: someone removed it on the way.
            (CbindFlag::ClientOnly, false) if self.bindings.available() => {
                return Err(SaslError::DowngradeDetected)
            }
            (CbindFlag::Bound(name), true) if self.bindings.get(name).is_none() => {
                return Err(SaslError::UnsupportedChannelBindingType)
            }
            _ => {}
        }
        let username = first.username.clone();
        self.state = State::AwaitCredentials(first);
        Ok(Step::NeedCredentials { username })
    }

    fn client_final(
        &mut self,
        message: &[u8],
        first: &ClientFirst,
        server_first: &str,
        nonce: &str,
        keys: &ScramCredentials,
    ) -> Result<Step, SaslError> {
        let text = std::str::from_utf8(message).map_err(|_| SaslError::Malformed("SCRAM"))?;
        // The proof is the last attribute; everything before it is signed (RFC 5802 §7).
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(SaslError::Malformed("SCRAM"))?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(SaslError::Malformed("SCRAM"))?;
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(SaslError::Malformed("SCRAM"))?;
        // Further attributes are extensions, which RFC 5802 §7 says to ignore, but they must
        // still have the attribute shape.
        if !attrs.all(is_attr_val) {
            return Err(SaslError::Malformed("SCRAM"));
        }

        let mut expected = first.gs2_header.as_bytes().to_vec();
        if let CbindFlag::Bound(name) = &first.flag {
            expected.extend_from_slice(
                self.bindings
                    .get(name)
                    .ok_or(SaslError::UnsupportedChannelBindingType)?,
            );
        }
        let cbind = B64
            .decode(cbind)
            .map_err(|_| SaslError::Malformed("SCRAM"))?;
        if cbind != expected {
            return Err(SaslError::ChannelBindingsDontMatch);
        }
        if client_nonce != nonce {
            return Err(SaslError::NonceMismatch);
        }
        let proof = B64
            .decode(proof)
            .ok()
            .and_then(|p| <[u8; KEY_LEN]>::try_from(p).ok())
            .ok_or(SaslError::Malformed("SCRAM"))?;

        let auth_message = format!("{},{server_first},{without_proof}", first.bare);
        let client_signature = hmac(&keys.stored_key, auth_message.as_bytes());
        let mut client_key = [0u8; KEY_LEN];
        for (k, (p, s)) in client_key
            .iter_mut()
            .zip(proof.iter().zip(client_signature.iter()))
        {
            *k = p ^ s;
        }
        let stored: [u8; KEY_LEN] = Sha256::digest(client_key).into();
        if !bool::from(stored.ct_eq(&keys.stored_key)) {
            return Err(SaslError::InvalidProof);
        }
        let server_signature = hmac(&keys.server_key, auth_message.as_bytes());
        self.state = State::AwaitAck {
            username: first.username.clone(),
        };
        Ok(Step::Challenge(
            format!("v={}", B64.encode(server_signature)).into_bytes(),
        ))
    }
}

/// The RFC 5802 §7 `server-error-value` for a failure, for a session that wants to send
/// `e=<value>` as its last challenge before refusing. Revealing the precise reason is
/// optional (the RFC allows `other-error` throughout); none of these reveals whether the
/// user exists.
pub fn server_error_value(error: &SaslError) -> &'static str {
    match error {
        SaslError::BadBase64 | SaslError::Malformed(_) => "invalid-encoding",
        SaslError::ExtensionsNotSupported => "extensions-not-supported",
        SaslError::InvalidProof => "invalid-proof",
        SaslError::ChannelBindingsDontMatch => "channel-bindings-dont-match",
        SaslError::DowngradeDetected => "server-does-support-channel-binding",
        SaslError::ChannelBindingNotSupported => "channel-binding-not-supported",
        SaslError::UnsupportedChannelBindingType => "unsupported-channel-binding-type",
        SaslError::InvalidUsernameEncoding => "invalid-username-encoding",
        SaslError::AuthzidRefused | SaslError::NonceMismatch | SaslError::Misuse => "other-error",
    }
}

fn parse_client_first(message: &[u8]) -> Result<ClientFirst, SaslError> {
    let text = std::str::from_utf8(message).map_err(|_| SaslError::InvalidUsernameEncoding)?;
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    let (flag_text, rest) = text.split_once(',').ok_or(SaslError::Malformed("SCRAM"))?;
    let flag = match flag_text {
        "n" => CbindFlag::No,
        "y" => CbindFlag::ClientOnly,
        _ => {
            let name = flag_text
                .strip_prefix("p=")
                .filter(|n| {
                    !n.is_empty()
                        && n.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                })
                .ok_or(SaslError::Malformed("SCRAM"))?;
            CbindFlag::Bound(name.to_string())
        }
    };
    let (authzid, bare) = rest.split_once(',').ok_or(SaslError::Malformed("SCRAM"))?;
    let gs2_header = &text[..text.len() - bare.len()];
    let authzid = match authzid {
        "" => None,
        a => Some(decode_saslname(
            a.strip_prefix("a=").ok_or(SaslError::Malformed("SCRAM"))?,
        )?),
    };

    let mut attrs = bare.split(',');
    let user_attr = attrs.next().unwrap_or_default();
    // RFC 5802 §7: a server that does not understand a mandatory extension must fail.
    if user_attr.starts_with("m=") {
        return Err(SaslError::ExtensionsNotSupported);
    }
    let raw_name = user_attr
        .strip_prefix("n=")
        .ok_or(SaslError::Malformed("SCRAM"))?;
    let username = decode_saslname(raw_name)?;
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(is_printable))
        .ok_or(SaslError::Malformed("SCRAM"))?;
    if !attrs.all(is_attr_val) {
        return Err(SaslError::Malformed("SCRAM"));
    }
    let username = saslprep(&username)
        .map_err(|_| SaslError::InvalidUsernameEncoding)?
        .into_owned();
    // Acting as another user is for configured master users, which do not exist; naming
    // oneself (in any case or equivalent spelling) is harmless.
    if let Some(authzid) = authzid {
        let same = matches!(
            (username_key(&authzid), username_key(&username)),
            (Ok(a), Ok(u)) if a == u
        );
        if !same {
            return Err(SaslError::AuthzidRefused);
        }
    }
    Ok(ClientFirst {
        gs2_header: gs2_header.to_string(),
        flag,
        username,
        client_nonce: client_nonce.to_string(),
        bare: bare.to_string(),
    })
}

/// `saslname`: `=2C` stands for `,` and `=3D` for `=`; any other `=` is an error.
fn decode_saslname(text: &str) -> Result<String, SaslError> {
    if text.is_empty() || text.contains('\0') {
        return Err(SaslError::Malformed("SCRAM"));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::InvalidUsernameEncoding),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// RFC 5802 `printable`: %x21-2B / %x2D-7E.
fn is_printable(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

/// `attr-val = ALPHA "=" value`.
fn is_attr_val(attr: &str) -> bool {
    let bytes = attr.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b'='
}

/// HMAC-SHA-256 with a 32-byte key. HMAC pads a key shorter than the 64-byte block with
/// zeros (RFC 2104 §2), so padding it here gives the same MAC through the infallible
/// fixed-size constructor.
fn hmac(key: &[u8; KEY_LEN], data: &[u8]) -> [u8; KEY_LEN] {
    let mut block = [0u8; 64];
    block[..KEY_LEN].copy_from_slice(key);
    let mut mac = <HmacSha256 as KeyInit>::new(&block.into());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The client side of SCRAM-SHA-256(-PLUS), for tests and tools that log in to a tern server
/// (RFC 5802 §3). It derives keys from the password each time; it is not tuned for use at
/// scale.
#[derive(Debug, Clone)]
pub struct ScramClient {
    gs2_header: String,
    client_first_bare: String,
    channel_binding: Vec<u8>,
}

impl ScramClient {
    /// Starts an exchange for `username` with a client nonce; `channel_binding` is the
    /// `tls-exporter` data for SCRAM-SHA-256-PLUS, or `None` for plain SCRAM-SHA-256.
    pub fn new(username: &str, client_nonce: &str, channel_binding: Option<&[u8]>) -> Self {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            gs2_header: if channel_binding.is_some() {
                "p=tls-exporter,,".to_string()
            } else {
                "n,,".to_string()
            },
            client_first_bare: format!("n={name},r={client_nonce}"),
            channel_binding: channel_binding.unwrap_or_default().to_vec(),
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> Vec<u8> {
        format!("{}{}", self.gs2_header, self.client_first_bare).into_bytes()
    }

    /// The client-final message answering `server_first`; `None` if it is malformed.
    pub fn client_final(&self, server_first: &[u8], password: &str) -> Option<Vec<u8>> {
        let server_first = std::str::from_utf8(server_first).ok()?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in server_first.split(',') {
            match part.split_at_checked(2)? {
                ("r=", v) => nonce = Some(v),
                ("s=", v) => salt = B64.decode(v).ok(),
                ("i=", v) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let (nonce, salt, iterations) = (nonce?, salt?, iterations?);
        let prepared = saslprep(password).ok()?;
        let mut salted = [0u8; KEY_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(prepared.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; KEY_LEN] = Sha256::digest(client_key).into();
        let mut binding = self.gs2_header.as_bytes().to_vec();
        binding.extend_from_slice(&self.channel_binding);
        let without_proof = format!("c={},r={nonce}", B64.encode(binding));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(k, s)| k ^ s)
            .collect();
        Some(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 §3.
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn pencil() -> ScramCredentials {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        ScramCredentials::derive("pencil", &salt, 4096).unwrap()
    }

    fn nonce() -> ServerNonce {
        ServerNonce::new(SERVER_NONCE).unwrap()
    }

    /// Runs the exchange up to the server-first message.
    fn to_server_first(server: &mut ScramServer, client_first: &str) -> Step {
        match server.start(Some(client_first.as_bytes())) {
            Step::NeedCredentials { username } => {
                assert_eq!(username, "user");
                server.credentials(&pencil(), &nonce())
            }
            other => other,
        }
    }

    /// A client's proof for `gs2_header` + cbind data over the RFC 7677 exchange's nonces.
    fn client_final_for(bare: &str, server_first: &str, cbind_input: &[u8]) -> String {
        let without_proof = format!(
            "c={},r=rOprNGfwEbeRWgbNEkqO{SERVER_NONCE}",
            B64.encode(cbind_input)
        );
        let auth = format!("{bare},{server_first},{without_proof}");
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"pencil", &salt, 4096, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        let signature = hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    #[test]
    fn the_padded_hmac_key_gives_the_standard_mac() {
        let key = [5u8; 32];
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
        mac.update(b"data");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(hmac(&key, b"data"), expected);
    }

    #[test]
    fn rfc7677_example_exchange() {
        let mut server = ScramServer::new(false, ChannelBindings::default());
        assert_eq!(
            to_server_first(&mut server, CLIENT_FIRST),
            Step::Challenge(SERVER_FIRST.as_bytes().to_vec())
        );
        assert_eq!(
            server.respond(CLIENT_FINAL.as_bytes()),
            Step::Challenge(SERVER_FINAL.as_bytes().to_vec())
        );
        assert_eq!(
            server.respond(b""),
            Step::Done(Outcome::Authenticated {
                username: "user".into()
            })
        );
        assert_eq!(server.respond(b""), Step::Failed(SaslError::Misuse));
    }

    #[test]
    fn asks_for_the_client_first_message_without_initial_response() {
        let mut server = ScramServer::new(false, ChannelBindings::default());
        assert_eq!(server.start(None), Step::Challenge(Vec::new()));
        assert!(matches!(
            server.respond(CLIENT_FIRST.as_bytes()),
            Step::NeedCredentials { .. }
        ));
    }

    #[test]
    fn stored_records_round_trip_in_rfc5803_form() {
        let keys = pencil();
        let text = keys.to_rfc5803();
        assert!(text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"));
        assert_eq!(ScramCredentials::from_rfc5803(&text), Ok(keys));
        assert_eq!(
            ScramCredentials::from_rfc5803("SCRAM-SHA-1$4096:c2FsdA==$a:b"),
            Err(ScramRecordError::Shape)
        );
        assert_eq!(
            ScramCredentials::from_rfc5803(&text.replace("$4096:", "$100:")),
            Err(ScramRecordError::Iterations)
        );
        assert_eq!(
            ScramCredentials::from_rfc5803(&text.replace("W22Z", "!!!!")),
            Err(ScramRecordError::Salt)
        );
        let (head, _) = text.rsplit_once(':').unwrap();
        assert_eq!(
            ScramCredentials::from_rfc5803(&format!("{head}:AAAA")),
            Err(ScramRecordError::Key)
        );
        assert!(!format!("{:?}", pencil()).contains("stored"));
    }

    #[test]
    fn a_wrong_password_fails_the_proof() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let other = ScramCredentials::derive("pencil2", &salt, 4096).unwrap();
        let mut server = ScramServer::new(false, ChannelBindings::default());
        assert!(matches!(
            server.start(Some(CLIENT_FIRST.as_bytes())),
            Step::NeedCredentials { .. }
        ));
        server.credentials(&other, &nonce());
        assert_eq!(
            server.respond(CLIENT_FINAL.as_bytes()),
            Step::Failed(SaslError::InvalidProof)
        );
        assert_eq!(
            server_error_value(&SaslError::InvalidProof),
            "invalid-proof"
        );
    }

    #[test]
    fn a_tampered_proof_or_message_fails() {
        for tampered in [
            CLIENT_FINAL.replace("p=dHzb", "p=dHzc"),
            // Changing a signed attribute invalidates the proof.
            CLIENT_FINAL.replace(",p=", ",x=extension,p="),
        ] {
            let mut server = ScramServer::new(false, ChannelBindings::default());
            to_server_first(&mut server, CLIENT_FIRST);
            assert_eq!(
                server.respond(tampered.as_bytes()),
                Step::Failed(SaslError::InvalidProof),
                "{tampered}"
            );
        }
    }

    #[test]
    fn the_combined_nonce_must_match() {
        let mut server = ScramServer::new(false, ChannelBindings::default());
        to_server_first(&mut server, CLIENT_FIRST);
        let wrong = CLIENT_FINAL.replace("k0,p=", "k1,p=");
        assert_eq!(
            server.respond(wrong.as_bytes()),
            Step::Failed(SaslError::NonceMismatch)
        );
    }

    #[test]
    fn the_final_ack_must_be_empty() {
        let mut server = ScramServer::new(false, ChannelBindings::default());
        to_server_first(&mut server, CLIENT_FIRST);
        server.respond(CLIENT_FINAL.as_bytes());
        assert_eq!(
            server.respond(b"x"),
            Step::Failed(SaslError::Malformed("SCRAM"))
        );
    }

    #[test]
    fn malformed_client_first_messages_are_refused() {
        let cases: &[(&str, SaslError)] = &[
            ("", SaslError::Malformed("SCRAM")),
            ("n,,", SaslError::Malformed("SCRAM")),
            ("x,,n=user,r=abc", SaslError::Malformed("SCRAM")),
            ("p=,,n=user,r=abc", SaslError::Malformed("SCRAM")),
            ("n,user,n=user,r=abc", SaslError::Malformed("SCRAM")),
            ("n,,r=abc,n=user", SaslError::Malformed("SCRAM")),
            ("n,,n=user", SaslError::Malformed("SCRAM")),
            ("n,,n=user,r=", SaslError::Malformed("SCRAM")),
            ("n,,n=user,r=a b", SaslError::Malformed("SCRAM")),
            ("n,,n=,r=abc", SaslError::Malformed("SCRAM")),
            ("n,,n=user,r=abc,bogus", SaslError::Malformed("SCRAM")),
            ("n,,m=ext,n=user,r=abc", SaslError::ExtensionsNotSupported),
            ("n,,n=us=er,r=abc", SaslError::InvalidUsernameEncoding),
            ("n,,n=us=2,r=abc", SaslError::InvalidUsernameEncoding),
            ("n,,n=\u{7},r=abc", SaslError::InvalidUsernameEncoding),
        ];
        for (message, error) in cases {
            let mut server = ScramServer::new(false, ChannelBindings::default());
            assert_eq!(
                server.start(Some(message.as_bytes())),
                Step::Failed(error.clone()),
                "{message:?}"
            );
        }
        let mut server = ScramServer::new(false, ChannelBindings::default());
        assert_eq!(
            server.start(Some(b"n,,n=\xff,r=abc")),
            Step::Failed(SaslError::InvalidUsernameEncoding)
        );
    }

    #[test]
    fn malformed_client_final_messages_are_refused() {
        for message in [
            "",
            "c=biws,r=x",
            "r=x,c=biws,p=AAAA",
            "c=biws,p=AAAA",
            "c=!!,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!",
        ] {
            let mut server = ScramServer::new(false, ChannelBindings::default());
            to_server_first(&mut server, CLIENT_FIRST);
            assert!(
                matches!(server.respond(message.as_bytes()), Step::Failed(_)),
                "{message:?}"
            );
        }
    }

    #[test]
    fn usernames_are_unescaped_and_prepared() {
        let mut server = ScramServer::new(false, ChannelBindings::default());
        assert_eq!(
            server.start(Some(b"n,,n=a=2Cb=3Dc,r=abc")),
            Step::NeedCredentials {
                username: "a,b=c".into()
            }
        );
        let mut server = ScramServer::new(false, ChannelBindings::default());
        assert_eq!(
            server.start(Some("n,,n=I\u{00AD}X,r=abc".as_bytes())),
            Step::NeedCredentials {
                username: "IX".into()
            }
        );
    }

    #[test]
    fn an_authzid_must_name_the_user_itself() {
        let mut server = ScramServer::new(false, ChannelBindings::default());
        assert_eq!(
            server.start(Some(b"n,a=admin,n=user,r=abc")),
            Step::Failed(SaslError::AuthzidRefused)
        );
        // Same account, other case: the GS2 header (with its authzid) is bound by c=.
        let client_first = "n,a=User,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let mut server = ScramServer::new(false, ChannelBindings::default());
        let Step::Challenge(server_first) = to_server_first(&mut server, client_first) else {
            panic!("no server-first");
        };
        let server_first = String::from_utf8(server_first).unwrap();
        let good = client_final_for("n=user,r=rOprNGfwEbeRWgbNEkqO", &server_first, b"n,a=User,");
        assert!(matches!(
            server.respond(good.as_bytes()),
            Step::Challenge(v) if v.starts_with(b"v=")
        ));
    }

    #[test]
    fn channel_binding_is_checked_against_the_connection() {
        let bindings = ChannelBindings {
            tls_exporter: Some(vec![7; 32]),
            tls_server_end_point: None,
        };
        let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let client_first = format!("p=tls-exporter,,{bare}");
        let mut cbind_input = b"p=tls-exporter,,".to_vec();
        cbind_input.extend_from_slice(&[7; 32]);

        // The right binding data succeeds.
        let mut server = ScramServer::new(true, bindings.clone());
        let Step::Challenge(sf) = to_server_first(&mut server, &client_first) else {
            panic!("no server-first");
        };
        let sf = String::from_utf8(sf).unwrap();
        let good = client_final_for(bare, &sf, &cbind_input);
        assert!(matches!(
            server.respond(good.as_bytes()),
            Step::Challenge(v) if v.starts_with(b"v=")
        ));

        // Another connection's binding data (a man in the middle) fails.
        let mut server = ScramServer::new(true, bindings.clone());
        to_server_first(&mut server, &client_first);
        let mut other = b"p=tls-exporter,,".to_vec();
        other.extend_from_slice(&[8; 32]);
        let bad = client_final_for(bare, &sf, &other);
        assert_eq!(
            server.respond(bad.as_bytes()),
            Step::Failed(SaslError::ChannelBindingsDontMatch)
        );

        // c= must repeat the GS2 header even without channel binding.
        let mut server = ScramServer::new(false, ChannelBindings::default());
        to_server_first(&mut server, CLIENT_FIRST);
        let bad = client_final_for(bare, SERVER_FIRST, b"y,,");
        assert_eq!(
            server.respond(bad.as_bytes()),
            Step::Failed(SaslError::ChannelBindingsDontMatch)
        );
    }

    #[test]
    fn the_flag_must_fit_the_mechanism_and_the_offer() {
        let bindings = ChannelBindings {
            tls_exporter: Some(vec![7; 32]),
            tls_server_end_point: None,
        };
        let cases = [
            // -PLUS offered, but the client believes it is not: a downgrade.
            (
                false,
                bindings.clone(),
                "y,,n=user,r=abc",
                Some(SaslError::DowngradeDetected),
            ),
            // Nothing offered: "y" is fine.
            (false, ChannelBindings::default(), "y,,n=user,r=abc", None),
            // Binding with the non-PLUS mechanism, or -PLUS without binding.
            (
                false,
                bindings.clone(),
                "p=tls-exporter,,n=user,r=abc",
                Some(SaslError::ChannelBindingNotSupported),
            ),
            (
                true,
                bindings.clone(),
                "n,,n=user,r=abc",
                Some(SaslError::ChannelBindingNotSupported),
            ),
            // A type this connection cannot provide.
            (
                true,
                bindings.clone(),
                "p=tls-unique,,n=user,r=abc",
                Some(SaslError::UnsupportedChannelBindingType),
            ),
            (
                true,
                bindings.clone(),
                "p=tls-server-end-point,,n=user,r=abc",
                Some(SaslError::UnsupportedChannelBindingType),
            ),
            (false, bindings, "n,,n=user,r=abc", None),
        ];
        for (plus, bindings, message, error) in cases {
            let mut server = ScramServer::new(plus, bindings);
            let step = server.start(Some(message.as_bytes()));
            match error {
                Some(e) => assert_eq!(step, Step::Failed(e), "{message}"),
                None => assert!(matches!(step, Step::NeedCredentials { .. }), "{message}"),
            }
        }
    }

    #[test]
    fn out_of_order_calls_are_misuse() {
        let mut server = ScramServer::new(false, ChannelBindings::default());
        assert_eq!(
            server.credentials(&pencil(), &nonce()),
            Step::Failed(SaslError::Misuse)
        );
        let mut server = ScramServer::new(false, ChannelBindings::default());
        server.start(Some(CLIENT_FIRST.as_bytes()));
        assert_eq!(
            server.respond(CLIENT_FINAL.as_bytes()),
            Step::Failed(SaslError::Misuse)
        );
    }

    #[test]
    fn server_nonces_are_printable_without_commas() {
        assert!(ServerNonce::new("a,b").is_none());
        assert!(ServerNonce::new("").is_none());
        assert!(ServerNonce::new("a b").is_none());
        let n = ServerNonce::from_entropy(&[0xff; 18]);
        assert!(n.0.bytes().all(is_printable));
    }
}
