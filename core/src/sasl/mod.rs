//! SASL mechanisms (RFC 4422) as pure functions over the client's decoded responses.
//!
//! Shared by IMAP AUTHENTICATE and POP3 AUTH; the protocols only differ in how a response is
//! framed on the wire, which their sessions handle.

use base64::Engine;

use crate::secret::Secret;

mod plain;

/// The mechanisms tern speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// RFC 4616.
    Plain,
}

impl Mechanism {
    /// Looks a mechanism up by its (case-insensitive) registered name.
    pub(crate) fn from_name(name: &[u8]) -> Option<Mechanism> {
        name.eq_ignore_ascii_case(b"PLAIN")
            .then_some(Mechanism::Plain)
    }

    /// The registered name, as advertised.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
        }
    }

    /// Whether the mechanism reveals the password to an eavesdropper (and so needs TLS).
    pub(crate) fn is_plaintext(self) -> bool {
        match self {
            Mechanism::Plain => true,
        }
    }

    /// Consumes the client's one response and yields the credentials to check.
    pub(crate) fn finish(self, response: &[u8]) -> Result<Credentials, SaslError> {
        match self {
            Mechanism::Plain => plain::parse(response),
        }
    }
}

/// A user name and password taken from a SASL exchange or a LOGIN/USER+PASS command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: Secret<Vec<u8>>,
}

/// Why a SASL exchange failed before any credentials were checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SaslError {
    /// The response was not valid base64 (RFC 4648 §4).
    #[error("invalid base64 data")]
    BadBase64,
    /// The decoded response does not have the mechanism's shape.
    #[error("malformed {0} response")]
    Malformed(&'static str),
    /// The client asked to act as another user, which is not permitted.
    #[error("authorization identity not permitted")]
    AuthzidRefused,
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
        assert_eq!(Mechanism::from_name(b"plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name(b"CRAM-MD5"), None);
    }
}
