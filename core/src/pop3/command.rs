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
    /// RFC 1939 §5.
    Stat,
    /// RFC 1939 §5: all messages or one.
    List(Option<u32>),
    /// RFC 1939 §7: all messages or one.
    Uidl(Option<u32>),
    /// RFC 1939 §5.
    Retr(u32),
    /// RFC 1939 §5.
    Dele(u32),
    /// RFC 1939 §5.
    Rset,
    /// RFC 1939 §7: message and number of body lines.
    Top(u32, u64),
    /// RFC 1939 §7 (not enabled; parsed to answer it properly).
    Apop,
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
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::Stls => "STLS",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Rset => "RSET",
            Command::Top(..) => "TOP",
            Command::Apop => "APOP",
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
            b"STAT" => no_args(Command::Stat),
            b"RSET" => no_args(Command::Rset),
            b"LIST" | b"UIDL" => {
                let n = match args.as_slice() {
                    [] => None,
                    [n] => match number(n) {
                        Some(n) => Some(n),
                        None => return invalid("Invalid message number."),
                    },
                    _ => return invalid("Too many arguments."),
                };
                if upper.as_slice() == b"LIST" {
                    Command::List(n)
                } else {
                    Command::Uidl(n)
                }
            }
            b"RETR" | b"DELE" => match args.as_slice() {
                [n] => match number(n) {
                    Some(n) if upper.as_slice() == b"RETR" => Command::Retr(n),
                    Some(n) => Command::Dele(n),
                    None => invalid("Invalid message number."),
                },
                _ => invalid("Exactly one message number expected."),
            },
            b"TOP" => match args.as_slice() {
                [n, lines] => match (number(n), lines_count(lines)) {
                    (Some(n), Some(l)) => Command::Top(n, l),
                    _ => invalid("Invalid TOP arguments."),
                },
                _ => invalid("TOP takes a message number and a line count."),
            },
            b"APOP" => Command::Apop,
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

/// A message number: 1 or more, at most ten digits.
fn number(arg: &[u8]) -> Option<u32> {
    if arg.is_empty() || arg.len() > 10 || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg)
        .ok()?
        .parse::<u32>()
        .ok()
        .filter(|&n| n > 0)
}

/// TOP's line count: 0 or more (saturating, as asking for more lines than exist is harmless).
fn lines_count(arg: &[u8]) -> Option<u64> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(arg.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
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
    fn rfc1939_transaction_commands() {
        assert_eq!(parse(b"STAT"), Command::Stat);
        assert_eq!(parse(b"list"), Command::List(None));
        assert_eq!(parse(b"LIST 2"), Command::List(Some(2)));
        assert_eq!(parse(b"UIDL 1"), Command::Uidl(Some(1)));
        assert_eq!(parse(b"RETR 1"), Command::Retr(1));
        assert_eq!(parse(b"DELE 3"), Command::Dele(3));
        assert_eq!(parse(b"TOP 1 10"), Command::Top(1, 10));
        assert_eq!(
            parse(b"TOP 1 99999999999999999999999"),
            Command::Top(1, u64::MAX)
        );
        assert!(matches!(parse(b"RETR 0"), Command::Invalid { .. }));
        assert!(matches!(parse(b"RETR x"), Command::Invalid { .. }));
        assert!(matches!(parse(b"LIST 1 2"), Command::Invalid { .. }));
        assert!(matches!(parse(b"TOP 1"), Command::Invalid { .. }));
        assert!(matches!(
            parse(b"DELE 99999999999"),
            Command::Invalid { .. }
        ));
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
