//! The IMAP command grammar (RFC 9051 §9), run once over a complete framed command.

use bytes::{Bytes, BytesMut};
use nom::branch::alt;
use nom::bytes::complete::{tag, take, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::{map, opt};
use nom::sequence::{delimited, preceded, terminated};
use nom::{IResult, Parser};

use super::command::{Command, CommandLine, Tag};
use super::{is_astring_char, is_atom_char, is_tag_char};
use crate::secret::Secret;

/// A command that does not fit the grammar.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DecodeError {
    /// The tag, when the command got that far; the `BAD` answer carries it.
    pub(crate) tag: Option<Tag>,
    /// Said to the client after `BAD`.
    pub(crate) message: &'static str,
}

type Res<'a, T> = IResult<&'a [u8], T>;

/// Decodes one complete command as produced by the framer (line end included).
pub(crate) fn command(input: &Bytes) -> Result<CommandLine, DecodeError> {
    let whole: &[u8] = input;
    let tagged: Res<'_, &[u8]> = terminated(take_while1(is_tag_char), char(' ')).parse(whole);
    let Ok((rest, raw_tag)) = tagged else {
        return Err(DecodeError {
            tag: None,
            message: "Error in IMAP command: missing or invalid tag.",
        });
    };
    let tag = Tag::new(input.slice_ref(raw_tag));
    let fail = |message| DecodeError {
        tag: tag.clone(),
        message,
    };
    let tag = tag.clone().ok_or(fail("Invalid tag."))?;
    let Ok((rest, name)) = take_while1::<_, _, nom::error::Error<&[u8]>>(is_atom_char)(rest) else {
        return Err(fail("Error in IMAP command: missing command name."));
    };
    let sub = |s: &[u8]| input.slice_ref(s);
    let parsed: Res<'_, Command> = match name.to_ascii_uppercase().as_slice() {
        b"CAPABILITY" => map(crlf, |_| Command::Capability).parse(rest),
        b"NOOP" => map(crlf, |_| Command::Noop).parse(rest),
        b"LOGOUT" => map(crlf, |_| Command::Logout).parse(rest),
        b"STARTTLS" => map(crlf, |_| Command::StartTls).parse(rest),
        b"LOGIN" => map(
            (
                preceded(char(' '), astring),
                preceded(char(' '), astring),
                crlf,
            ),
            |(user, pass, _)| Command::Login {
                username: user.into_bytes(&sub),
                password: Secret::new(pass.into_bytes(&sub)),
            },
        )
        .parse(rest),
        b"AUTHENTICATE" => map(
            (
                preceded(char(' '), take_while1(is_atom_char)),
                opt(preceded(char(' '), take_while1(is_base64_char))),
                crlf,
            ),
            |(mechanism, ir, _)| Command::Authenticate {
                mechanism: sub(mechanism),
                initial_response: ir.map(|ir| Secret::new(sub(ir))),
            },
        )
        .parse(rest),
        _ => {
            return Ok(CommandLine {
                tag,
                command: Command::Unknown { name: sub(name) },
            })
        }
    };
    match parsed {
        Ok((&[], command)) => Ok(CommandLine { tag, command }),
        _ => Err(fail("Error in IMAP command: invalid arguments.")),
    }
}

/// Line end: CRLF, or a bare LF from lenient clients (Dovecot accepts both).
fn crlf(input: &[u8]) -> Res<'_, ()> {
    map(alt((tag("\r\n"), tag("\n"))), |_| ()).parse(input)
}

/// base64 plus `=`, the SASL-IR empty response.
fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// A decoded string: a slice of the input, or an unescaped copy.
enum Str<'a> {
    Slice(&'a [u8]),
    Owned(Vec<u8>),
}

impl Str<'_> {
    fn into_bytes(self, sub: &dyn Fn(&[u8]) -> Bytes) -> Bytes {
        match self {
            Str::Slice(s) => sub(s),
            Str::Owned(v) => Bytes::from(v),
        }
    }
}

/// `astring = 1*ASTRING-CHAR / string`.
fn astring(input: &[u8]) -> Res<'_, Str<'_>> {
    alt((map(take_while1(is_astring_char), Str::Slice), string)).parse(input)
}

/// `string = quoted / literal`.
fn string(input: &[u8]) -> Res<'_, Str<'_>> {
    alt((quoted, map(literal, Str::Slice))).parse(input)
}

/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`, where `\` escapes `"` and `\` only.
fn quoted(input: &[u8]) -> Res<'_, Str<'_>> {
    let (input, _) = char('"').parse(input)?;
    let mut owned: Option<BytesMut> = None;
    let mut i = 0;
    loop {
        match input.get(i) {
            Some(b'"') => {
                let value = match owned {
                    Some(buf) => Str::Owned(buf.to_vec()),
                    None => Str::Slice(&input[..i]),
                };
                return Ok((&input[i + 1..], value));
            }
            Some(b'\\') => match input.get(i + 1) {
                Some(&c @ (b'"' | b'\\')) => {
                    let buf = owned.get_or_insert_with(|| BytesMut::from(&input[..i]));
                    buf.extend_from_slice(&[c]);
                    i += 2;
                }
                _ => return Err(nom_error(input)),
            },
            // TEXT-CHAR excludes CR and LF; NUL is never a character.
            Some(b'\r' | b'\n' | 0) | None => return Err(nom_error(input)),
            Some(&c) => {
                if let Some(buf) = owned.as_mut() {
                    buf.extend_from_slice(&[c]);
                }
                i += 1;
            }
        }
    }
}

/// `literal = "{" number64 ["+"] "}" CRLF *CHAR8`; the framer has already checked that the
/// announced octets are present.
fn literal(input: &[u8]) -> Res<'_, &[u8]> {
    let (input, len) = delimited(
        char('{'),
        terminated(digit1, opt(char('+'))),
        (char('}'), crlf),
    )
    .parse(input)?;
    let len = std::str::from_utf8(len)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or_else(|| nom_error(input))?;
    let (input, data) = take(len).parse(input)?;
    // CHAR8 excludes NUL; literal8 (~{n}) is where binary data goes.
    if data.contains(&0) {
        return Err(nom_error(input));
    }
    Ok((input, data))
}

fn nom_error(input: &[u8]) -> nom::Err<nom::error::Error<&[u8]>> {
    nom::Err::Error(nom::error::Error::new(input, nom::error::ErrorKind::Verify))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &'static [u8]) -> Result<CommandLine, DecodeError> {
        command(&Bytes::from_static(s))
    }

    fn tag(s: &'static [u8]) -> Tag {
        Tag::new(Bytes::from_static(s)).unwrap()
    }

    #[test]
    fn rfc9051_6_1_examples() {
        assert_eq!(
            parse(b"abcd CAPABILITY\r\n").unwrap().command,
            Command::Capability
        );
        assert_eq!(parse(b"a002 NOOP\r\n").unwrap().command, Command::Noop);
        assert_eq!(parse(b"A023 LOGOUT\r\n").unwrap().command, Command::Logout);
        assert_eq!(
            parse(b"a001 starttls\n").unwrap().command,
            Command::StartTls
        );
    }

    #[test]
    fn rfc9051_6_2_3_login_with_every_string_form() {
        let c = parse(b"a001 LOGIN SMITH SESAME\r\n").unwrap();
        assert_eq!(c.tag, tag(b"a001"));
        assert_eq!(
            c.command,
            Command::Login {
                username: Bytes::from_static(b"SMITH"),
                password: Secret::new(Bytes::from_static(b"SESAME"))
            }
        );
        let c = parse(b"x LOGIN \"fred \\\"q\\\\\" {5}\r\nab cd\r\n").unwrap();
        assert_eq!(
            c.command,
            Command::Login {
                username: Bytes::from_static(b"fred \"q\\"),
                password: Secret::new(Bytes::from_static(b"ab cd"))
            }
        );
        assert!(parse(b"x LOGIN a\r\n").is_err());
        assert!(parse(b"x LOGIN a b c\r\n").is_err());
        assert!(parse(b"x LOGIN \"a\\b\" c\r\n").is_err());
        assert!(parse(b"x LOGIN {1}\r\n\0 c\r\n").is_err());
    }

    #[test]
    fn rfc4959_authenticate_initial_response() {
        let c = parse(b"a AUTHENTICATE PLAIN AGZyZWQAcGFzcw==\r\n").unwrap();
        assert_eq!(
            c.command,
            Command::Authenticate {
                mechanism: Bytes::from_static(b"PLAIN"),
                initial_response: Some(Secret::new(Bytes::from_static(b"AGZyZWQAcGFzcw==")))
            }
        );
        let c = parse(b"a AUTHENTICATE PLAIN =\r\n").unwrap();
        assert!(matches!(
            c.command,
            Command::Authenticate {
                initial_response: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn errors_keep_the_tag_when_there_is_one() {
        assert_eq!(parse(b"* NOOP\r\n").unwrap_err().tag, None);
        assert_eq!(parse(b"\r\n").unwrap_err().tag, None);
        assert_eq!(
            parse(b"t1 NOOP extra\r\n").unwrap_err().tag,
            Some(tag(b"t1"))
        );
        assert_eq!(
            parse(b"t1 FROB x\r\n").unwrap().command,
            Command::Unknown {
                name: Bytes::from_static(b"FROB")
            }
        );
    }
}
