//! POP3 commands: a keyword of up to four letters and its arguments (RFC 1939 §3).

use bytes::Bytes;

use crate::secret::Secret;

/// A client command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// RFC 2449 §5.
    Capa,
    /// RFC 1939 §7.
    User(Bytes),
    /// RFC 1939 §7; the rest of the line, spaces included, as Dovecot and most servers read it.
    Pass(Secret<Bytes>),
    /// RFC 5034: `AUTH mechanism [initial-response]`; `AUTH` alone lists mechanisms.
    Auth {
        /// The mechanism, if given.
        mechanism: Option<Bytes>,
        /// The base64 initial response (`=` for empty).
        initial_response: Option<Secret<Bytes>>,
    },
    /// RFC 2595 §4.
    Stls,
    /// RFC 1939 §5.
    Noop,
    /// RFC 1939 §§5, 6.
    Quit,
    /// A keyword tern does not know, or known arguments in the wrong shape.
    Invalid {
        /// The keyword as sent (for logs).
        keyword: Bytes,
        /// Why it was refused.
        reason: &'static str,
    },
}

impl Command {
    /// The keyword, for logs.
    pub fn name(&self) -> &str {
        match self {
            Command::Capa => "CAPA",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::Stls => "STLS",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Invalid { .. } => "(invalid)",
        }
    }

    /// Decodes one line (line end already removed).
    pub fn parse(line: &Bytes) -> Command {
        let (keyword, rest) = match line.iter().position(|&b| b == b' ') {
            Some(sp) => (line.slice(..sp), Some(line.slice(sp + 1..))),
            None => (line.clone(), None),
        };
        let invalid = |reason| Command::Invalid {
            keyword: keyword.clone(),
            reason,
        };
        let args: Vec<Bytes> = match &rest {
            Some(r) => r.split(|&b| b == b' ').map(|a| line.slice_ref(a)).collect(),
            None => Vec::new(),
        };
        let upper = keyword.to_ascii_uppercase();
        let no_args = |cmd: Command| {
            if rest.is_none() {
                cmd
            } else {
                invalid("No arguments expected.")
            }
        };
        match upper.as_slice() {
            b"CAPA" => no_args(Command::Capa),
            b"STLS" => no_args(Command::Stls),
            b"NOOP" => no_args(Command::Noop),
            b"QUIT" => no_args(Command::Quit),
            b"USER" => match args.as_slice() {
                [name] if !name.is_empty() => Command::User(name.clone()),
                _ => invalid("USER takes one argument."),
            },
            b"PASS" => match rest {
                Some(pass) => Command::Pass(Secret::new(pass)),
                None => invalid("PASS takes one argument."),
            },
            b"AUTH" => match args.as_slice() {
                [] => Command::Auth {
                    mechanism: None,
                    initial_response: None,
                },
                [mech] => Command::Auth {
                    mechanism: Some(mech.clone()),
                    initial_response: None,
                },
                [mech, ir] => Command::Auth {
                    mechanism: Some(mech.clone()),
                    initial_response: Some(Secret::new(ir.clone())),
                },
                _ => invalid("AUTH takes at most two arguments."),
            },
            _ => invalid("Unknown command."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &'static [u8]) -> Command {
        Command::parse(&Bytes::from_static(s))
    }

    #[test]
    fn rfc1939_keywords_are_case_insensitive() {
        assert_eq!(parse(b"capa"), Command::Capa);
        assert_eq!(
            parse(b"User mrose"),
            Command::User(Bytes::from_static(b"mrose"))
        );
        assert_eq!(
            parse(b"PASS secret with spaces"),
            Command::Pass(Secret::new(Bytes::from_static(b"secret with spaces")))
        );
        assert!(matches!(parse(b"QUIT now"), Command::Invalid { .. }));
        assert!(matches!(parse(b"USER"), Command::Invalid { .. }));
        assert!(matches!(parse(b"XYZZY"), Command::Invalid { .. }));
    }

    #[test]
    fn rfc5034_auth_forms() {
        assert_eq!(
            parse(b"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q="),
            Command::Auth {
                mechanism: Some(Bytes::from_static(b"PLAIN")),
                initial_response: Some(Secret::new(Bytes::from_static(b"dGVzdAB0ZXN0AHRlc3Q=")))
            }
        );
        assert_eq!(
            parse(b"AUTH"),
            Command::Auth {
                mechanism: None,
                initial_response: None
            }
        );
    }
}
