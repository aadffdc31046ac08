//! Writes IMAP responses (RFC 9051 §7) into the session's output buffer.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::command::Tag;

/// The status condition of a status response (RFC 9051 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    No,
    Bad,
    Bye,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
        }
    }
}

/// Response codes (RFC 9051 §7.1, RFC 5530).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Code<'a> {
    Capability(&'a str),
    AuthenticationFailed,
    PrivacyRequired,
    TooBig,
    Unavailable,
    ServerBug,
}

impl std::fmt::Display for Code<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Code::Capability(caps) => write!(f, "CAPABILITY {caps}"),
            Code::AuthenticationFailed => f.write_str("AUTHENTICATIONFAILED"),
            Code::PrivacyRequired => f.write_str("PRIVACYREQUIRED"),
            Code::TooBig => f.write_str("TOOBIG"),
            Code::Unavailable => f.write_str("UNAVAILABLE"),
            Code::ServerBug => f.write_str("SERVERBUG"),
        }
    }
}

/// `tag SP status [SP "[" code "]"] SP text CRLF`, or `*` in place of a missing tag.
pub(crate) fn status(
    out: &mut BytesMut,
    tag: Option<&Tag>,
    status: Status,
    code: Option<Code<'_>>,
    text: &str,
) {
    match tag {
        Some(tag) => out.put_slice(tag.as_bytes()),
        None => out.put_u8(b'*'),
    }
    out.put_u8(b' ');
    out.put_slice(status.as_str().as_bytes());
    if let Some(code) = code {
        let _ = write!(Writer(out), " [{code}]");
    }
    out.put_u8(b' ');
    put_text(out, text);
    out.put_slice(b"\r\n");
}

/// `* CAPABILITY ...` (RFC 9051 §7.2.2).
pub(crate) fn capability(out: &mut BytesMut, caps: &str) {
    out.put_slice(b"* CAPABILITY ");
    out.put_slice(caps.as_bytes());
    out.put_slice(b"\r\n");
}

/// A continuation request, `+ text` (RFC 9051 §7.6). SASL challenges pass an empty text.
pub(crate) fn continuation(out: &mut BytesMut, text: &str) {
    out.put_slice(b"+ ");
    put_text(out, text);
    out.put_slice(b"\r\n");
}

/// Human-readable text never carries a line break, whatever a caller passes.
fn put_text(out: &mut BytesMut, text: &str) {
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn status_lines() {
        let mut out = BytesMut::new();
        let tag = Tag::new(Bytes::from_static(b"a1")).unwrap();
        status(
            &mut out,
            Some(&tag),
            Status::No,
            Some(Code::TooBig),
            "too\r\nbig",
        );
        status(&mut out, None, Status::Bye, None, "bye");
        assert_eq!(&out[..], b"a1 NO [TOOBIG] too  big\r\n* BYE bye\r\n");
    }
}
