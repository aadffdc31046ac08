//! SASL mechanisms (RFC 4422) as pure step machines over the client's decoded responses.
//!
//! Shared by IMAP AUTHENTICATE and POP3 AUTH; the protocols only differ in how a challenge or
//! response is framed on the wire (`+ base64` lines both), which their sessions handle.
//!
//! # Driving an exchange
//!
//! A session creates an [`Exchange`] for the mechanism the client named, then follows the
//! [`Step`]s it returns:
//!
//! ```text
//! Exchange::new(mechanism, &context).start(initial_response)
//!   │
//!   ├─ Step::Challenge(bytes)      send "+ " base64(bytes); feed the client's decoded reply
//!   │                              to Exchange::respond (a lone "*" cancels: the session's job)
//!   ├─ Step::NeedCredentials{..}   SCRAM: ask the directory for the user's ScramCredentials and
//!   │                              a ServerNonce (DirectoryOp::ScramLookup); feed both to
//!   │                              Exchange::credentials
//!   ├─ Step::Done(Outcome::Verify(credentials))
//!   │                              PLAIN/LOGIN: check name and password with the directory
//!   │                              (DirectoryOp::Authenticate), as for the LOGIN/USER+PASS
//!   │                              commands
//!   ├─ Step::Done(Outcome::Authenticated{username})
//!   │                              SCRAM: the client proved it knows the password; the session
//!   │                              claims the account the directory named with the keys
//!   │                              (DirectoryOp::ClaimAccount)
//!   └─ Step::Failed(error)         BadBase64 → BAD (IMAP) / -ERR; anything else →
//!                                  NO [AUTHENTICATIONFAILED] / -ERR [AUTH]
//! ```
//!
//! Each call returns exactly one step, and the exchange is over after `Done` or `Failed`;
//! further calls fail with [`SaslError::Misuse`]. The machines read no clock and draw no
//! random numbers: SCRAM's server nonce comes from the caller.
//!

use base64::Engine;

use crate::secret::Secret;

mod login;
mod plain;
pub mod prep;
pub mod scram;

pub use prep::{saslprep, username_key, PrepError};
pub use scram::{ChannelBindings, ScramClient, ScramCredentials, ScramRecordError, ServerNonce};

/// The mechanisms tern speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// draft-murchison-sasl-login.
    Login,
    /// RFC 7677.
    ScramSha256,
    /// RFC 7677 with channel binding (RFC 5802 §6, RFC 9266).
    ScramSha256Plus,
}

impl Mechanism {
    /// Every mechanism, strongest first (the order to advertise them in).
    pub const ALL: [Mechanism; 4] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha256,
        Mechanism::Plain,
        Mechanism::Login,
    ];

    /// Looks a mechanism up by its (case-insensitive) registered name.
    pub fn lookup(name: &[u8]) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| name.eq_ignore_ascii_case(m.name().as_bytes()))
    }

    /// The registered name, as advertised.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
        }
    }

    /// Whether the mechanism reveals the password to an eavesdropper (and so needs TLS).
    pub fn is_plaintext(self) -> bool {
        match self {
            Mechanism::Plain | Mechanism::Login => true,
            Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => false,
        }
    }

    /// Whether the mechanism needs stored SCRAM keys rather than a password check.
    pub fn is_scram(self) -> bool {
        matches!(self, Mechanism::ScramSha256 | Mechanism::ScramSha256Plus)
    }
}

/// A user name and password taken from a SASL exchange or a LOGIN/USER+PASS command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication identity as the client sent it.
    pub username: String,
    /// The password octets as the client sent them.
    pub password: Secret<Vec<u8>>,
}

/// Why a SASL exchange failed. None of the variants carries client data, so any may be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The response was not valid base64 (RFC 4648 §4).
    #[error("invalid base64 data")]
    BadBase64,
    /// The decoded response does not have the mechanism's shape.
    #[error("malformed {0} response")]
    Malformed(&'static str),
    /// The client asked to act as another user, which is not permitted.
    #[error("authorization identity not permitted")]
    AuthzidRefused,
    /// SCRAM: the user name is not `saslname` (bad `=XX` escape, not UTF-8) or SASLprep
    /// refuses it.
    #[error("invalid user name encoding")]
    InvalidUsernameEncoding,
    /// SCRAM: the client demanded an extension (`m=`), which tern does not know.
    #[error("mandatory extension not supported")]
    ExtensionsNotSupported,
    /// SCRAM: the GS2 flag contradicts the mechanism (`p=` with SCRAM-SHA-256, or no
    /// binding with SCRAM-SHA-256-PLUS).
    #[error("channel binding flag does not fit the mechanism")]
    ChannelBindingNotSupported,
    /// SCRAM: the client binds to a type this connection cannot provide.
    #[error("unsupported channel binding type")]
    UnsupportedChannelBindingType,
    /// SCRAM: the client said `y` (it thinks the server cannot bind) although -PLUS was
    /// offered, so someone stripped -PLUS from the capability list (RFC 5802 §6).
    #[error("channel binding downgrade detected")]
    DowngradeDetected,
    /// SCRAM: `c=` does not match the GS2 header and this connection's binding data.
    #[error("channel bindings do not match")]
    ChannelBindingsDontMatch,
    /// SCRAM: the client-final nonce is not the combined nonce of this exchange.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// SCRAM: the client proof does not verify: a wrong password, or an unknown user.
    #[error("invalid proof")]
    InvalidProof,
    /// The session called the exchange out of order (a session bug, not the client's).
    #[error("SASL exchange driven out of order")]
    Misuse,
}

/// What the session does next; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes as a challenge (`+ ` and their base64), then feed the client's decoded
    /// response to [`Exchange::respond`].
    Challenge(Vec<u8>),
    /// Look up this user's stored SCRAM keys, then call [`Exchange::credentials`]. The name is
    /// decoded and SASLprep-ed; storage should match it as it matches LOGIN names.
    NeedCredentials {
        /// The authentication identity.
        username: String,
    },
    /// The mechanism has finished; see [`Outcome`].
    Done(Outcome),
    /// The exchange failed.
    Failed(SaslError),
}

/// How a finished exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// PLAIN, LOGIN: the client gave a name and password, which storage still has to check.
    Verify(Credentials),
    /// SCRAM: the client proved it knows the password for `username`.
    Authenticated {
        /// The authentication identity, as in [`Step::NeedCredentials`].
        username: String,
    },
}

/// What the connection offers an exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaslContext {
    /// Channel-binding data of the TLS session, if any. SCRAM-SHA-256-PLUS should be
    /// advertised exactly when [`ChannelBindings::available`] is true.
    pub channel_bindings: ChannelBindings,
}

impl SaslContext {
    /// A context with these channel bindings.
    pub fn new(channel_bindings: ChannelBindings) -> SaslContext {
        SaslContext { channel_bindings }
    }
}

/// One SASL exchange, server side.
#[derive(Debug)]
pub struct Exchange {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// PLAIN before its one response.
    Plain,
    Login(login::LoginServer),
    Scram(Box<scram::ScramServer>),
    Finished,
}

impl Exchange {
    /// Prepares an exchange; [`Exchange::start`] begins it.
    pub fn new(mechanism: Mechanism, context: &SaslContext) -> Exchange {
        let inner = match mechanism {
            Mechanism::Plain => Inner::Plain,
            Mechanism::Login => Inner::Login(login::LoginServer::AwaitUsername),
            Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => {
                Inner::Scram(Box::new(scram::ScramServer::new(
                    mechanism == Mechanism::ScramSha256Plus,
                    context.channel_bindings.clone(),
                )))
            }
        };
        Exchange { inner }
    }

    /// Begins the exchange with the decoded initial response (SASL-IR, RFC 4959; `=` is
    /// `Some(b"")`), or `None` when the client sent none.
    pub fn start(&mut self, initial_response: Option<&[u8]>) -> Step {
        match &mut self.inner {
            Inner::Plain => match initial_response {
                Some(response) => self.respond(response),
                // RFC 4616 §2: PLAIN starts with an empty challenge.
                None => Step::Challenge(Vec::new()),
            },
            Inner::Login(_) => {
                let (server, step) = login::LoginServer::start(initial_response);
                self.inner = Inner::Login(server);
                self.settle(step)
            }
            Inner::Scram(server) => {
                let step = server.start(initial_response);
                self.settle(step)
            }
            Inner::Finished => Step::Failed(SaslError::Misuse),
        }
    }

    /// Feeds the client's decoded response to the last [`Step::Challenge`].
    pub fn respond(&mut self, response: &[u8]) -> Step {
        let step = match &mut self.inner {
            Inner::Plain => match plain::parse(response) {
                Ok(credentials) => Step::Done(Outcome::Verify(credentials)),
                Err(e) => Step::Failed(e),
            },
            Inner::Login(server) => server.respond(response),
            Inner::Scram(server) => server.respond(response),
            Inner::Finished => Step::Failed(SaslError::Misuse),
        };
        self.settle(step)
    }

    /// Answers [`Step::NeedCredentials`] with the user's stored keys and a fresh server nonce.
    ///
    /// For an unknown user, or one without SCRAM keys, pass stand-in keys (the runtime's
    /// directory makes stable ones per name) rather than ending the exchange: the proof then
    /// fails like a wrong password, and the client cannot tell which names exist.
    pub fn credentials(&mut self, keys: &ScramCredentials, nonce: &ServerNonce) -> Step {
        let step = match &mut self.inner {
            Inner::Scram(server) => server.credentials(keys, nonce),
            _ => Step::Failed(SaslError::Misuse),
        };
        self.settle(step)
    }

    /// Whether the exchange is over (after `Done` or `Failed`).
    pub fn is_finished(&self) -> bool {
        matches!(self.inner, Inner::Finished)
    }

    fn settle(&mut self, step: Step) -> Step {
        if matches!(step, Step::Done(_) | Step::Failed(_)) {
            self.inner = Inner::Finished;
        }
        step
    }
}

/// Decodes a base64 SASL response. An empty line or a lone `=` is the empty response
/// (RFC 4959 §3 for `=`).
pub(crate) fn decode_response(line: &[u8]) -> Result<Vec<u8>, SaslError> {
    if line.is_empty() || line == b"=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(line)
        .map_err(|_| SaslError::BadBase64)
}

/// Encodes a challenge for the `+ ` line; an empty challenge is an empty line.
pub fn encode_challenge(challenge: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_and_the_empty_forms() {
        assert_eq!(decode_response(b"=").as_deref(), Ok(&b""[..]));
        assert_eq!(decode_response(b"").as_deref(), Ok(&b""[..]));
        assert_eq!(decode_response(b"AGEAYg==").as_deref(), Ok(&b"\0a\0b"[..]));
        assert_eq!(decode_response(b"not base64!"), Err(SaslError::BadBase64));
    }

    #[test]
    fn mechanism_names_are_case_insensitive() {
        assert_eq!(Mechanism::lookup(b"plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::lookup(b"CRAM-MD5"), None);
        assert_eq!(
            Mechanism::lookup(b"scram-sha-256-plus"),
            Some(Mechanism::ScramSha256Plus)
        );
        assert_eq!(Mechanism::lookup(b"login"), Some(Mechanism::Login));
        assert_eq!(Mechanism::lookup(b"SCRAM-SHA-1"), None);
    }

    #[test]
    fn plain_through_an_exchange() {
        let ctx = SaslContext::default();
        let mut ex = Exchange::new(Mechanism::Plain, &ctx);
        assert_eq!(ex.start(None), Step::Challenge(Vec::new()));
        let Step::Done(Outcome::Verify(creds)) = ex.respond(b"\0tim\0pw") else {
            panic!("PLAIN did not finish");
        };
        assert_eq!(creds.username, "tim");
        assert!(ex.is_finished());
        assert_eq!(ex.respond(b"\0tim\0pw"), Step::Failed(SaslError::Misuse));

        let mut ex = Exchange::new(Mechanism::Plain, &ctx);
        assert!(matches!(
            ex.start(Some(b"\0tim\0pw")),
            Step::Done(Outcome::Verify(_))
        ));
        let mut ex = Exchange::new(Mechanism::Plain, &ctx);
        assert_eq!(
            ex.start(Some(b"")),
            Step::Failed(SaslError::Malformed("PLAIN"))
        );
    }

    #[test]
    fn login_through_an_exchange() {
        let mut ex = Exchange::new(Mechanism::Login, &SaslContext::default());
        assert_eq!(ex.start(None), Step::Challenge(b"Username:".to_vec()));
        assert_eq!(ex.respond(b"tim"), Step::Challenge(b"Password:".to_vec()));
        assert!(matches!(ex.respond(b"pw"), Step::Done(Outcome::Verify(_))));
        assert!(ex.is_finished());
        assert_eq!(
            ex.credentials(
                &ScramCredentials::derive("x", b"salt", 4096).unwrap(),
                &ServerNonce::from_entropy(b"n")
            ),
            Step::Failed(SaslError::Misuse)
        );
    }

    #[test]
    fn scram_through_an_exchange() {
        // RFC 7677 §3 again, through the public API.
        use base64::engine::general_purpose::STANDARD as B64;
        let mut ex = Exchange::new(Mechanism::ScramSha256, &SaslContext::default());
        assert_eq!(
            ex.start(Some(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")),
            Step::NeedCredentials {
                username: "user".into()
            }
        );
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let keys = ScramCredentials::derive("pencil", &salt, 4096).unwrap();
        let nonce = ServerNonce::new("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").unwrap();
        assert!(matches!(ex.credentials(&keys, &nonce), Step::Challenge(_)));
        let final_message = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            ex.respond(final_message.as_bytes()),
            Step::Challenge(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec())
        );
        assert!(!ex.is_finished());
        assert_eq!(
            ex.respond(b""),
            Step::Done(Outcome::Authenticated {
                username: "user".into()
            })
        );
        assert!(ex.is_finished());
        assert_eq!(encode_challenge(b"v="), "dj0=");
        assert_eq!(encode_challenge(b""), "");
    }
}
