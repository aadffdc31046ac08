//! Client commands as owned values. Payloads are `Bytes` slices of the received command, so
//! decoding copies nothing but unescaped quoted strings.

use bytes::Bytes;

use crate::secret::Secret;

/// A command tag: `1*<any ASTRING-CHAR except "+">`, echoed verbatim in the tagged response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag(Bytes);

impl Tag {
    /// Validates a tag; `None` for an empty one or one with a character the grammar excludes.
    pub fn new(raw: Bytes) -> Option<Tag> {
        (!raw.is_empty() && raw.iter().all(|&b| super::is_tag_char(b))).then_some(Tag(raw))
    }

    /// The tag's octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// One command with its tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine {
    /// The client's tag.
    pub tag: Tag,
    /// What it asks for.
    pub command: Command,
}

/// The commands tern understands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// RFC 9051 §6.1.1.
    Capability,
    /// RFC 9051 §6.1.2.
    Noop,
    /// RFC 9051 §6.1.3.
    Logout,
    /// RFC 9051 §6.2.1.
    StartTls,
    /// RFC 9051 §6.2.2, with the SASL-IR initial response of RFC 4959.
    Authenticate {
        /// The SASL mechanism name as sent.
        mechanism: Bytes,
        /// The base64 initial response (`=` for an empty one), not yet decoded.
        initial_response: Option<Secret<Bytes>>,
    },
    /// RFC 9051 §6.2.3.
    Login {
        /// The user name.
        username: Bytes,
        /// The password.
        password: Secret<Bytes>,
    },
    /// A well-formed command name tern does not implement; answered with `BAD`.
    Unknown {
        /// The command name as sent.
        name: Bytes,
    },
}

impl Command {
    /// The command's name for logs (never its arguments, which may hold credentials).
    pub fn name(&self) -> &str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Logout => "LOGOUT",
            Command::StartTls => "STARTTLS",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::Login { .. } => "LOGIN",
            Command::Unknown { .. } => "(unknown)",
        }
    }
}
