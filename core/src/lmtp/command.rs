//! LMTP command lines (RFC 2033 §4, with the SMTP grammar of RFC 5321 §4.1).

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `LHLO domain` (RFC 2033 §4.1).
    Lhlo,
    /// `MAIL FROM:<path> [params]`.
    Mail {
        /// The reverse path without its angle brackets; empty for the null sender `<>`.
        from: String,
        /// `SIZE=n`, if given.
        size: Option<u64>,
    },
    /// `RCPT TO:<path> [params]`.
    Rcpt {
        /// The forward path without its angle brackets (and without a source route).
        to: String,
    },
    /// `DATA`.
    Data,
    /// `BDAT n [LAST]` (RFC 3030 §2).
    Bdat {
        /// The chunk's size in octets.
        size: u64,
        /// Whether this is the last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY` or `EXPN`: refused politely (RFC 5321 §3.5.3).
    Vrfy,
    /// `HELO` or `EHLO`: not LMTP's greeting (RFC 2033 §4.1).
    Helo,
    /// `STARTTLS`, `AUTH`: not offered.
    NotOffered,
    /// A known command with bad arguments: `501 5.5.4`.
    BadArguments(&'static str),
    /// A MAIL parameter that is not supported: `555 5.5.4` (RFC 5321 §4.1.1.11).
    UnsupportedParameter(&'static str),
    /// An unknown verb: `500 5.5.2`.
    Unknown,
}

impl Command {
    /// The command's name for the log.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Lhlo => "LHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Vrfy => "VRFY",
            Command::Helo => "HELO",
            Command::NotOffered => "(not offered)",
            Command::BadArguments(_) => "(bad arguments)",
            Command::UnsupportedParameter(_) => "(unsupported parameter)",
            Command::Unknown => "(unknown)",
        }
    }

    /// Parses one line, its line end removed.
    pub fn parse(line: &[u8]) -> Command {
        let Ok(line) = std::str::from_utf8(line) else {
            return Command::Unknown;
        };
        let (verb, rest) = match line.split_once(' ') {
            Some((verb, rest)) => (verb, rest),
            None => (line, ""),
        };
        let verb = verb.to_ascii_uppercase();
        match verb.as_str() {
            "LHLO" if rest.trim().is_empty() => Command::BadArguments("LHLO needs a domain."),
            "LHLO" => Command::Lhlo,
            "MAIL" => parse_mail(rest),
            "RCPT" => match path_after(rest, "TO:") {
                Some((to, _)) if !to.is_empty() => Command::Rcpt { to },
                _ => Command::BadArguments("Syntax: RCPT TO:<address>"),
            },
            "DATA" if rest.is_empty() => Command::Data,
            "BDAT" => parse_bdat(rest),
            "RSET" if rest.is_empty() => Command::Rset,
            // RFC 5321 §4.1.1.9: NOOP may carry a string, which is ignored.
            "NOOP" => Command::Noop,
            "QUIT" if rest.is_empty() => Command::Quit,
            "VRFY" | "EXPN" => Command::Vrfy,
            "HELO" | "EHLO" => Command::Helo,
            "STARTTLS" | "AUTH" => Command::NotOffered,
            "DATA" | "RSET" | "QUIT" => Command::BadArguments("No arguments allowed."),
            _ => Command::Unknown,
        }
    }
}

fn parse_mail(rest: &str) -> Command {
    let Some((from, params)) = path_after(rest, "FROM:") else {
        return Command::BadArguments("Syntax: MAIL FROM:<address> [parameters]");
    };
    let mut size = None;
    for param in params.split_ascii_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => match value.parse::<u64>() {
                Ok(n) => size = Some(n),
                Err(_) => return Command::BadArguments("Invalid SIZE parameter."),
            },
            "BODY" => {
                let value = value.to_ascii_uppercase();
                if value != "8BITMIME" && value != "7BIT" {
                    return Command::UnsupportedParameter("Unsupported mail BODY type.");
                }
            }
            _ => return Command::UnsupportedParameter("Unsupported parameters."),
        }
    }
    Command::Mail { from, size }
}

fn parse_bdat(rest: &str) -> Command {
    let mut words = rest.split_ascii_whitespace();
    let size = words.next().and_then(|n| {
        // RFC 3030 §3: the size is 1*DIGIT; a sign or other form is no size.
        n.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| n.parse::<u64>().ok())
            .flatten()
    });
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Command::BadArguments("Syntax: BDAT size [LAST]"),
    };
    match (size, words.next()) {
        (Some(size), None) => Command::Bdat { size, last },
        _ => Command::BadArguments("Syntax: BDAT size [LAST]"),
    }
}

/// `keyword<path> params` (the keyword case-insensitive, a space tolerated after the colon as
/// Postfix and Dovecot tolerate it): the path without brackets, and the parameters.
fn path_after<'a>(rest: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = rest.get(keyword.len()..)?.trim_start_matches(' ');
    let inner = rest.strip_prefix('<')?;
    // The closing bracket, outside a quoted local part.
    let mut quoted = false;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end?;
    let path = inner.get(..end)?;
    let params = inner.get(end + 1..)?;
    if !params.is_empty() && !params.starts_with(' ') {
        return None;
    }
    // The path goes into the Return-Path and Delivered-To header lines: a control character
    // (a bare CR survives line splitting) could start a forged header field there.
    if path.chars().any(char::is_control) {
        return None;
    }
    // RFC 5321 §4.1.2: a source route (`@a,@b:`) is accepted and ignored.
    let path = match path.strip_prefix('@') {
        Some(_) => path.split_once(':').map_or(path, |(_, mailbox)| mailbox),
        None => path,
    };
    Some((path.to_string(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_and_rcpt_paths() {
        assert_eq!(
            Command::parse(b"MAIL FROM:<a@b.example> SIZE=12 BODY=8BITMIME"),
            Command::Mail {
                from: "a@b.example".into(),
                size: Some(12)
            }
        );
        assert_eq!(
            Command::parse(b"mail from: <>"),
            Command::Mail {
                from: String::new(),
                size: None
            }
        );
        assert_eq!(
            Command::parse(b"RCPT TO:<@relay.example:\"a>b\"@c.example>"),
            Command::Rcpt {
                to: "\"a>b\"@c.example".into()
            }
        );
        assert!(matches!(
            Command::parse(b"MAIL FROM:<a@b> BODY=BINARYMIME"),
            Command::UnsupportedParameter(_)
        ));
        assert!(matches!(
            Command::parse(b"MAIL FROM:<a@b> SMTPUTF8"),
            Command::UnsupportedParameter(_)
        ));
        assert!(matches!(
            Command::parse(b"RCPT TO:a@b"),
            Command::BadArguments(_)
        ));
        assert!(matches!(
            Command::parse(b"RCPT TO:<>"),
            Command::BadArguments(_)
        ));
        // A bare CR would reach the header lines delivery prepends.
        assert!(matches!(
            Command::parse(b"MAIL FROM:<a@b\rX-Forged: yes>"),
            Command::BadArguments(_)
        ));
        assert!(matches!(
            Command::parse(b"RCPT TO:<alice\rX-Forged: yes>"),
            Command::BadArguments(_)
        ));
    }

    #[test]
    fn bdat_sizes() {
        assert_eq!(
            Command::parse(b"BDAT 10 LAST"),
            Command::Bdat {
                size: 10,
                last: true
            }
        );
        assert_eq!(
            Command::parse(b"bdat 0"),
            Command::Bdat {
                size: 0,
                last: false
            }
        );
        for bad in [
            "BDAT",
            "BDAT -1",
            "BDAT 1 FIRST",
            "BDAT 99999999999999999999",
        ] {
            assert!(
                matches!(Command::parse(bad.as_bytes()), Command::BadArguments(_)),
                "{bad}"
            );
        }
    }
}
