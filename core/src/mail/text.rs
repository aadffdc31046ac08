//! Decoded text for SEARCH: header values with RFC 2047 words and addresses decoded, body text
//! after transfer decoding and charset conversion, all folded for i;unicode-casemap matching.

use bytes::{Bytes, BytesMut};
use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue, MessagePart, PartType};

use super::date::Date;

/// Nested messages beyond this depth contribute no body text (bounded work on hostile mail).
const MAX_DEPTH: usize = 16;

/// What SEARCH's text keys look at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchText {
    /// (lower-case field name, folded value) for every top-level header field: the value as
    /// written with RFC 2047 words decoded, and for address fields also the addresses as
    /// parsed when that text is not already in it (one more entry under the same name).
    pub headers: Vec<(String, String)>,
    /// Folded text of every text part, nested messages included.
    pub body: String,
    /// The Date header's calendar date, in its own time zone (for SENTBEFORE/ON/SINCE).
    pub sent: Option<Date>,
}

impl SearchText {
    /// Octets a scan of the whole text reads (names, values, separators and body), the
    /// measure of a text test's work.
    pub fn octets(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 2)
                .sum::<usize>()
    }

    /// Whether a header field with this (lower-case) name contains the folded needle; an
    /// empty needle matches any message that has the field (RFC 9051 §6.4.4 HEADER).
    pub fn header_contains(&self, name: &str, needle: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n == name && v.contains(needle))
    }

    /// Whether the header block or body contains the folded needle (TEXT).
    pub fn text_contains(&self, needle: &str) -> bool {
        self.body.contains(needle)
            || self
                .headers
                .iter()
                .any(|(n, v)| n.contains(needle) || v.contains(needle))
    }
}

/// Folds text for comparison: an approximation of i;unicode-casemap (RFC 5051), which
/// lower-cases and decomposes; tern lower-cases and collapses runs of white space.
pub fn fold(text: &str) -> String {
    let mut folded = Folder {
        out: String::with_capacity(text.len()),
        space: false,
    };
    folded.push(text);
    folded.out
}

/// [`fold`] of text that comes in pieces, as if they were one string: a message's text parts
/// are folded as they are found, never gathered unfolded first (for a large message that was
/// a second copy of its text).
struct Folder {
    out: String,
    /// White space was skipped since the last character written.
    space: bool,
}

impl Folder {
    fn push(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_whitespace() {
                self.space = true;
                continue;
            }
            if self.space && !self.out.is_empty() {
                self.out.push(' ');
            }
            self.space = false;
            self.out.extend(c.to_lowercase());
        }
    }
}

/// Extracts the searchable text of a message.
pub fn extract(raw: &[u8]) -> SearchText {
    extract_parsed(raw, super::analyze::parse(raw))
}

/// [`extract`] from a parse already made (`None`: the parser gave up or panicked, and the raw
/// octets are searched).
pub(crate) fn extract_parsed(raw: &[u8], parsed: Option<mail_parser::Message<'_>>) -> SearchText {
    let Some(message) = parsed else {
        return SearchText {
            body: fold(&String::from_utf8_lossy(raw)),
            ..SearchText::default()
        };
    };
    let mut text = SearchText::default();
    if let Some(root) = message.parts.first() {
        for h in &root.headers {
            let name = h.name.as_str().to_ascii_lowercase();
            // HEADER matches the field as written (Dovecot does too): message IDs keep their
            // angle brackets, addresses their quotes and comments. Only RFC 2047 words are
            // decoded, as mail-parser decodes unstructured text.
            let written = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .map(decode_words)
                .unwrap_or_default();
            let written = fold(&written);
            // Addresses as parsed, "name <addr>", let FROM "doe, john <" find a quoted
            // display name.
            let parsed = match &h.value {
                HeaderValue::Address(a) => Some(fold(&address_text(a))),
                _ => None,
            };
            text.headers.push((name.clone(), written));
            if let Some(parsed) = parsed {
                if text
                    .headers
                    .last()
                    .is_some_and(|(_, w)| !w.contains(&parsed))
                {
                    text.headers.push((name, parsed));
                }
            }
        }
    }
    if let Some(date) = message.date() {
        text.sent = Some(Date {
            year: date.year,
            month: date.month,
            day: date.day,
        });
    }
    let mut body = Folder {
        out: String::new(),
        space: false,
    };
    collect_body(&message.parts, &mut body, 0);
    text.body = body.out;
    text
}

/// A field value with its RFC 2047 encoded words decoded (invalid UTF-8 replaced). The value
/// may come with its line end or without (an ENVELOPE string): mail-parser reads a value up
/// to a line end and finds nothing in one that has none.
pub(crate) fn decode_words(value: &[u8]) -> String {
    let ended: std::borrow::Cow<'_, [u8]> = if value.ends_with(b"\n") {
        value.into()
    } else {
        [value, b"\r\n"].concat().into()
    };
    let value = &*ended;
    let decoded =
        std::panic::catch_unwind(|| match MessageStream::new(value).parse_unstructured() {
            HeaderValue::Text(t) => Some(t.into_owned()),
            _ => None,
        });
    match decoded {
        Ok(Some(text)) => text,
        Ok(None) => String::new(),
        Err(_) => String::from_utf8_lossy(value).into_owned(),
    }
}

fn collect_body(parts: &[MessagePart<'_>], out: &mut Folder, depth: usize) {
    for part in parts {
        match &part.body {
            PartType::Text(t) | PartType::Html(t) => {
                out.push(t);
                out.push("\n");
            }
            PartType::Message(inner) if depth < MAX_DEPTH => {
                collect_body(&inner.parts, out, depth + 1);
            }
            _ => {}
        }
    }
}

fn address_text(address: &Address<'_>) -> String {
    let mut out = String::new();
    let mut push = |name: Option<&str>, addr: Option<&str>| {
        if !out.is_empty() {
            out.push_str(", ");
        }
        if let Some(n) = name {
            out.push_str(n);
            out.push(' ');
        }
        if let Some(a) = addr {
            out.push('<');
            out.push_str(a);
            out.push('>');
        }
    };
    match address {
        Address::List(list) => {
            for a in list {
                push(a.name.as_deref(), a.address.as_deref());
            }
        }
        Address::Group(groups) => {
            for g in groups {
                push(g.name.as_deref(), None);
                for a in &g.addresses {
                    push(a.name.as_deref(), a.address.as_deref());
                }
            }
        }
    }
    out
}

/// Stores messages with CRLF line ends, so that sizes and literals match what clients get
/// (bare LF, which some clients APPEND, becomes CRLF as Dovecot sends it).
pub(crate) fn crlf(data: Bytes) -> Bytes {
    let bare = data
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data.get(i - 1) != Some(&b'\r')));
    if !bare {
        return data;
    }
    let mut out = BytesMut::with_capacity(data.len() + data.len() / 16);
    let mut prev = 0u8;
    for &b in data.iter() {
        if b == b'\n' && prev != b'\r' {
            out.extend_from_slice(b"\r");
        }
        out.extend_from_slice(&[b]);
        prev = b;
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_words_addresses_and_bodies() {
        let raw = b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.com>\r\nSubject: =?iso-8859-1?q?Gr=FC=DFe?=\r\nDate: Tue, 3 Feb 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSch=C3=B6ne   Welt\r\n";
        let t = extract(raw);
        assert!(t.header_contains("from", "jörg"));
        assert!(t.header_contains("from", "joerg@example"));
        assert!(t.header_contains("subject", "grüße"));
        assert!(t.header_contains("subject", ""));
        assert!(!t.header_contains("cc", ""));
        assert!(t.body.contains("schöne welt"));
        assert!(t.text_contains("grüße"));
        assert_eq!(
            t.sent,
            Some(Date {
                year: 2026,
                month: 2,
                day: 3
            })
        );
    }

    #[test]
    fn header_values_are_searched_as_written() {
        let raw = b"From: \"Doe, John\" <john@example.org> (work)\r\nIn-Reply-To: <s1-20260101@example.org>\r\nReferences: <r1@x.org>\r\n  <r2@y.org>\r\nMessage-ID: <M-1@Example.Org>\r\nSubject: =?utf-8?q?caf=C3=A9?= <tag>\r\n\r\nhi\r\n";
        let t = extract(raw);
        assert!(t.header_contains("in-reply-to", "<s1-"));
        assert!(t.header_contains("message-id", "<m-1@example.org>"));
        assert!(t.header_contains("references", "<r1@x.org> <r2@y.org>"));
        assert!(t.header_contains("from", "\"doe, john\" <john@"));
        assert!(t.header_contains("from", "(work)"));
        // The parsed form still matches too.
        assert!(t.header_contains("from", "doe, john (work) <john@example.org>"));
        assert!(t.header_contains("subject", "café <tag>"));
        assert!(!t.header_contains("subject", "=?utf-8"));
    }
}
