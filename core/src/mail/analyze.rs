//! One pass over a message at APPEND: its ENVELOPE, BODYSTRUCTURE and the offsets of every
//! part, so that FETCH never parses the message again.
//!
//! mail-parser finds the MIME tree (boundaries, nested messages, part offsets); the fields
//! IMAP reports are then read from the raw header blocks, because ENVELOPE and BODYSTRUCTURE
//! must show values as written, not decoded.

use std::ops::Range;

use bytes::Bytes;
use mail_parser::{MessageParser, MessagePart, PartType};

use super::address::parse_list;
use super::header::{self, first, unfold};
use super::mime::{self, HeaderValue};
use super::structure::{BodyExtension, BodyFields, BodyStructure, Disposition, Envelope};

/// Deeper MIME nesting is reported as plain text (Dovecot uses the same bound), so hostile
/// structures cost bounded time and memory.
pub const MAX_DEPTH: usize = 100;
/// At most this many parts are described; the rest become plain text.
pub const MAX_PARTS: usize = 10_000;

/// How a part's body is encoded (RFC 2045 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferEncoding {
    /// 7bit, 8bit, binary, or absent: the octets are the content.
    Identity,
    /// base64.
    Base64,
    /// quoted-printable.
    QuotedPrintable,
    /// Anything else (BINARY answers `[UNKNOWN-CTE]`).
    Unknown(Bytes),
}

/// Where a part lies in the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The part's header block, blank line included.
    pub header: Range<usize>,
    /// The part's body.
    pub body: Range<usize>,
    /// The body's transfer encoding.
    pub encoding: TransferEncoding,
    /// Sub-parts.
    pub children: Children,
}

/// What a part contains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Children {
    /// A leaf.
    None,
    /// A multipart's parts.
    Multipart(Vec<Part>),
    /// A message/rfc822's encapsulated message (its root part).
    Message(Box<Part>),
}

/// What FETCH needs about a message, computed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// ENVELOPE.
    pub envelope: Envelope,
    /// BODYSTRUCTURE.
    pub body: BodyStructure,
    /// The part tree with offsets into the message.
    pub root: Part,
}

/// Analyses a message (ideally with CRLF line ends, as tern stores them).
pub fn analyze(raw: &[u8]) -> MessageInfo {
    // A panic inside the MIME parser on hostile input must cost only the structure, never the
    // session or the store: the message is then described as one text part.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw))
        .ok()
        .flatten();
    let mut budget = MAX_PARTS;
    match parsed.as_ref().filter(|m| !m.parts.is_empty()) {
        Some(message) => {
            let (root, body) = build(&message.parts, 0, raw, 0, &mut budget);
            let envelope = envelope(raw.get(root.header.clone()).unwrap_or_default());
            MessageInfo {
                envelope,
                body,
                root,
            }
        }
        None => fallback(raw),
    }
}

/// A message mail-parser could not make sense of (e.g. empty): one text part.
fn fallback(raw: &[u8]) -> MessageInfo {
    let split = find_body_start(raw);
    let root = Part {
        header: 0..split,
        body: split..raw.len(),
        encoding: TransferEncoding::Identity,
        children: Children::None,
    };
    let header = raw.get(..split).unwrap_or_default();
    let body = leaf(header, raw.get(split..).unwrap_or_default(), None);
    MessageInfo {
        envelope: envelope(header),
        body,
        root,
    }
}

/// Offset of the first octet after the header's blank line (or the end).
fn find_body_start(raw: &[u8]) -> usize {
    if raw.starts_with(b"\r\n") {
        return 2;
    }
    if raw.starts_with(b"\n") {
        return 1;
    }
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(raw.len()),
    }
}

fn build(
    parts: &[MessagePart<'_>],
    index: usize,
    raw: &[u8],
    depth: usize,
    budget: &mut usize,
) -> (Part, BodyStructure) {
    let Some(part) = parts.get(index) else {
        return empty_part();
    };
    *budget = budget.saturating_sub(1);
    let header_range = clamp(
        part.offset_header as usize,
        part.offset_body as usize,
        raw.len(),
    );
    let body_range = clamp(
        part.offset_body as usize,
        part.offset_end as usize,
        raw.len(),
    );
    let header_range = without_delimiter_crlf(raw, header_range, &body_range);
    let header = raw.get(header_range.clone()).unwrap_or_default();
    let body = raw.get(body_range.clone()).unwrap_or_default();
    let encoding = transfer_encoding(header);
    let over_budget = depth >= MAX_DEPTH || *budget == 0;
    let ct = mime::content_type(first(header, "Content-Type").unwrap_or_default());
    let mut node = Part {
        header: header_range,
        body: body_range,
        encoding,
        children: Children::None,
    };
    match &part.body {
        PartType::Multipart(children) if !over_budget => {
            let ct = ct.unwrap_or_default();
            let mut nodes = Vec::with_capacity(children.len().min(*budget));
            let mut structures = Vec::with_capacity(nodes.capacity());
            for &child in children {
                if *budget == 0 {
                    break;
                }
                let (n, s) = build(parts, child as usize, raw, depth + 1, budget);
                nodes.push(n);
                structures.push(s);
            }
            if structures.is_empty() {
                // RFC 9051 §9 requires at least one part; an empty multipart gets an empty one.
                let (n, s) = empty_part();
                nodes.push(n);
                structures.push(s);
            }
            node.children = Children::Multipart(nodes);
            let structure = BodyStructure::Multipart {
                parts: structures,
                subtype: ct.sub.clone(),
                params: ct.params.clone(),
                ext: extension(header),
            };
            (node, structure)
        }
        PartType::Message(inner)
            if !over_budget
                && inner.raw_message.as_ptr() == raw.as_ptr()
                && !inner.parts.is_empty() =>
        {
            // Only an unencoded message/rfc822 has offsets into this message; an encoded one
            // (which RFC 2046 §5.2.1 forbids) is reported as an opaque leaf below.
            let (inner_root, inner_body) = build(&inner.parts, 0, raw, depth + 1, budget);
            let inner_header = raw.get(inner_root.header.clone()).unwrap_or_default();
            let ct = ct.unwrap_or_else(|| default_type(true));
            let structure = BodyStructure::Message {
                subtype: ct.sub.clone(),
                fields: fields(header, &ct, body.len()),
                envelope: Box::new(envelope(inner_header)),
                body: Box::new(inner_body),
                lines: count_lines(body),
                md5: md5(header),
                ext: extension(header),
            };
            node.children = Children::Message(Box::new(inner_root));
            (node, structure)
        }
        _ => {
            let structure = leaf(header, body, ct);
            let structure = if over_budget {
                plain_text(header, body)
            } else {
                structure
            };
            (node, structure)
        }
    }
}

fn empty_part() -> (Part, BodyStructure) {
    let part = Part {
        header: 0..0,
        body: 0..0,
        encoding: TransferEncoding::Identity,
        children: Children::None,
    };
    (part, plain_text(&[], &[]))
}

/// The header of a part with an empty body, right before the next boundary: the parser ends
/// it after the blank line, but that line break belongs to the boundary delimiter
/// (RFC 2046 §5.1.1: "the CRLF preceding the boundary delimiter line is conceptually attached
/// to the boundary"), so BODY[n.MIME] is the header lines alone, as Dovecot sends it.
fn without_delimiter_crlf(raw: &[u8], header: Range<usize>, body: &Range<usize>) -> Range<usize> {
    let at_boundary = body.is_empty()
        && raw
            .get(body.start..)
            .is_some_and(|rest| rest.starts_with(b"--"));
    let text = raw.get(header.clone()).unwrap_or_default();
    let cut = if !at_boundary {
        0
    } else if text.ends_with(b"\r\n\r\n") {
        2
    } else if text.ends_with(b"\n\n") {
        1
    } else {
        0
    };
    header.start..header.end - cut
}

fn clamp(start: usize, end: usize, len: usize) -> Range<usize> {
    let end = end.min(len);
    start.min(end)..end
}

/// RFC 2045 §5.2: no Content-Type means text/plain; charset=us-ascii, except inside
/// multipart/digest (RFC 2046 §5.1.5), where it means message/rfc822.
fn default_type(message: bool) -> HeaderValue {
    if message {
        HeaderValue {
            main: Bytes::from_static(b"message"),
            sub: Bytes::from_static(b"rfc822"),
            params: Vec::new(),
        }
    } else {
        HeaderValue {
            main: Bytes::from_static(b"text"),
            sub: Bytes::from_static(b"plain"),
            params: vec![(
                Bytes::from_static(b"charset"),
                Bytes::from_static(b"us-ascii"),
            )],
        }
    }
}

/// A part mail-parser treats as a leaf. A multipart or message type it could not split is
/// reported as text, the type RFC 2046 gives unrecognised content.
fn leaf(header: &[u8], body: &[u8], ct: Option<HeaderValue>) -> BodyStructure {
    let ct = match ct {
        Some(ct) if !is_composite(&ct) => ct,
        _ => default_type(false),
    };
    let is_text = ct.main.eq_ignore_ascii_case(b"text");
    BodyStructure::Single {
        fields: fields(header, &ct, body.len()),
        media_type: ct.main,
        subtype: ct.sub,
        lines: is_text.then(|| count_lines(body)),
        md5: md5(header),
        ext: extension(header),
    }
}

fn is_composite(ct: &HeaderValue) -> bool {
    ct.main.eq_ignore_ascii_case(b"multipart")
        || (ct.main.eq_ignore_ascii_case(b"message") && ct.sub.eq_ignore_ascii_case(b"rfc822"))
}

fn plain_text(header: &[u8], body: &[u8]) -> BodyStructure {
    let ct = default_type(false);
    BodyStructure::Single {
        fields: fields(header, &ct, body.len()),
        media_type: ct.main,
        subtype: ct.sub,
        lines: Some(count_lines(body)),
        md5: None,
        ext: BodyExtension::default(),
    }
}

fn fields(header: &[u8], ct: &HeaderValue, octets: usize) -> BodyFields {
    let encoding = first(header, "Content-Transfer-Encoding")
        .map(trimmed)
        .filter(|e| !e.is_empty())
        .map_or(Bytes::from_static(b"7bit"), Bytes::from);
    let mut params = ct.params.clone();
    // Dovecot reports the RFC 2045 §5.2 default charset for text parts that name none;
    // clients display it, so tern does the same.
    if ct.main.eq_ignore_ascii_case(b"text") && ct.param("charset").is_none() {
        params.insert(
            0,
            (
                Bytes::from_static(b"charset"),
                Bytes::from_static(b"us-ascii"),
            ),
        );
    }
    BodyFields {
        params,
        id: nstring(header, "Content-ID"),
        description: nstring(header, "Content-Description"),
        encoding,
        octets: octets as u64,
    }
}

fn md5(header: &[u8]) -> Option<Bytes> {
    nstring(header, "Content-MD5")
}

fn extension(header: &[u8]) -> BodyExtension {
    let disposition = first(header, "Content-Disposition")
        .and_then(mime::disposition)
        .map(|d| Disposition {
            kind: d.main,
            params: d.params,
        });
    let language = first(header, "Content-Language")
        .map(|raw| {
            unfold(raw)
                .split(|&b| b == b',' || b == b' ' || b == b'\t')
                .filter(|t| !t.is_empty())
                .map(Bytes::copy_from_slice)
                .collect()
        })
        .unwrap_or_default();
    BodyExtension {
        disposition,
        language,
        location: nstring(header, "Content-Location"),
    }
}

/// A MIME field's value, unfolded and without trailing white space.
fn nstring(header: &[u8], name: &str) -> Option<Bytes> {
    first(header, name).map(|v| Bytes::from(trimmed(v)))
}

fn trimmed(v: &[u8]) -> Vec<u8> {
    let mut v = unfold(v);
    while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
        v.pop();
    }
    v
}

fn transfer_encoding(header: &[u8]) -> TransferEncoding {
    let Some(raw) = first(header, "Content-Transfer-Encoding") else {
        return TransferEncoding::Identity;
    };
    let value = trimmed(raw).to_ascii_lowercase();
    match value.as_slice() {
        b"" | b"7bit" | b"8bit" | b"binary" => TransferEncoding::Identity,
        b"base64" => TransferEncoding::Base64,
        b"quoted-printable" => TransferEncoding::QuotedPrintable,
        _ => TransferEncoding::Unknown(Bytes::from(value)),
    }
}

/// Lines of a body: its line feeds, as Dovecot counts them.
pub fn count_lines(body: &[u8]) -> u64 {
    body.iter().filter(|&&b| b == b'\n').count() as u64
}

/// The ENVELOPE of a header block (RFC 9051 §7.5.2), with Dovecot's handling of what
/// RFC 5322 forbids but mail contains: a repeated single field counts in its last
/// occurrence, repeated address fields are concatenated.
pub fn envelope(header: &[u8]) -> Envelope {
    let list = |name: &str| {
        let mut all = Vec::new();
        for f in header::fields(header).filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes())) {
            all.extend(parse_list(f.value));
        }
        all
    };
    let last = |name: &str| {
        header::fields(header)
            .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .last()
            .map(|f| f.value)
    };
    let text = |name: &str| last(name).map(|v| Bytes::from(unfold(v)));
    let from = list("From");
    let or_from = |v: Vec<_>| if v.is_empty() { from.clone() } else { v };
    Envelope {
        date: text("Date"),
        // Folding white space in a subject is one space, as clients show it.
        subject: last("Subject").map(|v| Bytes::from(collapse_space(&unfold(v)))),
        sender: or_from(list("Sender")),
        reply_to: or_from(list("Reply-To")),
        to: list("To"),
        cc: list("Cc"),
        bcc: list("Bcc"),
        in_reply_to: text("In-Reply-To"),
        message_id: text("Message-ID"),
        from,
    }
}

/// Runs of spaces and tabs become one space.
fn collapse_space(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &b in v {
        if b == b' ' || b == b'\t' {
            if out.last() != Some(&b' ') {
                out.push(b' ');
            }
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &[u8] = b"From: \"A\" <a@x.test>\r\nTo: b@y.test\r\nSubject: =?utf-8?q?hi?=\r\nMessage-ID: <1@x>\r\n\r\nline1\r\nline2\r\n";

    #[test]
    fn simple_message() {
        let info = analyze(SIMPLE);
        assert_eq!(
            info.envelope.subject.as_deref(),
            Some(&b"=?utf-8?q?hi?="[..])
        );
        assert_eq!(info.envelope.sender, info.envelope.from);
        assert_eq!(info.envelope.from[0].name.as_deref(), Some(&b"A"[..]));
        assert_eq!(info.envelope.date, None);
        match &info.body {
            BodyStructure::Single {
                media_type,
                subtype,
                fields,
                lines,
                ..
            } => {
                assert_eq!(&media_type[..], b"text");
                assert_eq!(&subtype[..], b"plain");
                assert_eq!(fields.octets, 14);
                assert_eq!(*lines, Some(2));
                assert_eq!(&fields.encoding[..], b"7bit");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(&SIMPLE[info.root.body.clone()], b"line1\r\nline2\r\n");
    }

    #[test]
    fn multipart_with_nested_message() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\nSubject: outer\r\n\r\npre\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n";
        let info = analyze(raw);
        let BodyStructure::Multipart { parts, subtype, .. } = &info.body else {
            panic!("{:?}", info.body)
        };
        assert_eq!(&subtype[..], b"mixed");
        assert_eq!(parts.len(), 2);
        let BodyStructure::Message { envelope, body, .. } = &parts[1] else {
            panic!("{:?}", parts[1])
        };
        assert_eq!(envelope.subject.as_deref(), Some(&b"inner"[..]));
        assert!(
            matches!(&**body, BodyStructure::Single { subtype, .. } if &subtype[..] == b"html")
        );
        let Children::Multipart(children) = &info.root.children else {
            panic!()
        };
        assert_eq!(&raw[children[0].body.clone()], b"hello");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut raw = Vec::new();
        for i in 0..1000 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: text/plain\r\n\r\nx\r\n");
        let info = analyze(&raw);
        let mut depth = 0;
        let mut node = &info.body;
        while let BodyStructure::Multipart { parts, .. } = node {
            depth += 1;
            node = &parts[0];
        }
        assert!(depth <= MAX_DEPTH, "{depth}");
    }
}
