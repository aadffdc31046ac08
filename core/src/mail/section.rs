//! Body sections ([`Section`]), and `BODY[section]` and `BINARY[part]` extraction from a stored
//! message and its part tree (RFC 9051 §6.4.5, RFC 3516), without parsing the message again.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::analyze::{Children, Part, TransferEncoding};
use super::decoded_size::DecodedSize;
use super::header::fields;

/// `section-text` of `BODY[...]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SectionText {
    /// `HEADER`.
    Header,
    /// `HEADER.FIELDS (names)`.
    HeaderFields(Vec<Bytes>),
    /// `HEADER.FIELDS.NOT (names)`.
    HeaderFieldsNot(Vec<Bytes>),
    /// `TEXT`.
    Text,
    /// `MIME` (only after a part number).
    Mime,
}

/// A body section: part numbers, then optionally a text specifier. `BODY[]` is both empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Section {
    /// `1.2.3`: each at least 1.
    pub part: Vec<u32>,
    /// What of that part.
    pub text: Option<SectionText>,
}

/// Why BINARY could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is not one tern decodes (RFC 3516 `UNKNOWN-CTE`).
    #[error("unknown content-transfer-encoding")]
    UnknownCte,
    /// The encoded data is not valid base64 or quoted-printable (answered `NO [PARSE]`, as
    /// Dovecot does; UNKNOWN-CTE would tell the client the encoding itself is unknown).
    #[error("the part's encoded data is invalid")]
    Corrupt,
}

/// Finds the part a part path names (RFC 9051 §6.4.5). The path starts at the message: a
/// multipart message's numbers pick its parts, any other message has only part 1, its body
/// (for a message whose own type is message/rfc822, that is the encapsulated message). After
/// that, a number picks a child of a multipart, and inside a message/rfc822 part numbering
/// continues in the encapsulated message by the same rule. The empty path is the message.
pub fn find<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    let Some((&first, rest)) = path.split_first() else {
        return Some(root);
    };
    let mut node = message_part(root, first)?;
    for &n in rest {
        node = match &node.children {
            Children::Multipart(parts) => parts.get((n as usize).checked_sub(1)?)?,
            Children::Message(inner) => message_part(inner, n)?,
            Children::None => return None,
        };
    }
    Some(node)
}

/// Part `n` of a message (top level or encapsulated): a child of its multipart body, or for
/// any other body, part 1 is the message itself in its role as that body.
fn message_part(message: &Part, n: u32) -> Option<&Part> {
    match &message.children {
        Children::Multipart(parts) => parts.get((n as usize).checked_sub(1)?),
        _ if n == 1 => Some(message),
        _ => None,
    }
}

/// Where the octets of a section are in the message, found from the part tree alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extent<'a> {
    /// A range of the message, as it is.
    Range(Range<usize>),
    /// The header in this range, only the fields named (`keep`) or only the others.
    Fields {
        /// The header's range, blank line included.
        header: Range<usize>,
        /// The field names.
        names: &'a [Bytes],
        /// Keep the named fields (`HEADER.FIELDS`) rather than drop them (`.NOT`).
        keep: bool,
    },
}

/// Where `BODY[section]` of a message of `len` octets is, or `None` when the section does not
/// exist (tern then answers with an empty string, as Dovecot does).
pub fn section_extent<'a>(root: &Part, section: &'a Section, len: usize) -> Option<Extent<'a>> {
    let within = |r: &Range<usize>| (r.start <= r.end && r.end <= len).then(|| r.clone());
    if section.part.is_empty() {
        return match &section.text {
            None => Some(Extent::Range(0..len)),
            Some(text) => message_text(root, text, len),
        };
    }
    let part = find(root, &section.part)?;
    match &section.text {
        None => within(&part.body).map(Extent::Range),
        Some(SectionText::Mime) => within(&part.header).map(Extent::Range),
        // HEADER/TEXT after a part number refer to an encapsulated message.
        Some(text) => match &part.children {
            Children::Message(inner) => message_text(inner, text, len),
            _ => None,
        },
    }
}

fn message_text<'a>(message: &Part, text: &'a SectionText, len: usize) -> Option<Extent<'a>> {
    let header = message.header.clone();
    if header.start > header.end || header.end > len {
        return None;
    }
    let fields = |names, keep| Extent::Fields {
        header: header.clone(),
        names,
        keep,
    };
    match text {
        SectionText::Header => Some(Extent::Range(header.clone())),
        SectionText::Text => {
            let body = &message.body;
            (body.start <= body.end && body.end <= len).then(|| Extent::Range(body.clone()))
        }
        SectionText::Mime => None,
        SectionText::HeaderFields(names) => Some(fields(names, true)),
        SectionText::HeaderFieldsNot(names) => Some(fields(names, false)),
    }
}

/// The octets `BODY[section]` returns, or `None` when the section does not exist.
pub fn body_section(raw: &Bytes, root: &Part, section: &Section) -> Option<Bytes> {
    match section_extent(root, section, raw.len())? {
        Extent::Range(r) => Some(raw.slice(r)),
        Extent::Fields {
            header,
            names,
            keep,
        } => Some(filter_fields(raw.get(header)?, names, keep)),
    }
}

/// The fields whose names are (or are not) in `names`, in message order, then the blank line
/// that ends a header (RFC 9051 §6.4.5 says the result includes it).
pub fn filter_fields(header: &[u8], names: &[Bytes], keep_listed: bool) -> Bytes {
    let mut out = BytesMut::new();
    for field in fields(header) {
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(field.name));
        if listed == keep_listed {
            out.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out.freeze()
}

/// Where `BINARY[part]` is: a range sent as it is, or one to decode first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinaryExtent {
    /// Octets with nothing to undo (the whole message, composite and identity parts).
    Range(Range<usize>),
    /// Base64 text in this range.
    Base64(Range<usize>),
    /// Quoted-printable text in this range.
    QuotedPrintable(Range<usize>),
}

/// Where `BINARY[part]` of a message of `len` octets is; `Ok(None)` when the part does not
/// exist.
pub fn binary_extent(
    root: &Part,
    path: &[u32],
    len: usize,
) -> Result<Option<BinaryExtent>, BinaryError> {
    if path.is_empty() {
        return Ok(Some(BinaryExtent::Range(0..len)));
    }
    let Some(part) = find(root, path) else {
        return Ok(None);
    };
    let body = part.body.clone();
    if body.start > body.end || body.end > len {
        return Ok(None);
    }
    if !matches!(part.children, Children::None) {
        // Composite parts have no transfer encoding of their own to undo.
        return Ok(Some(BinaryExtent::Range(body)));
    }
    match &part.encoding {
        TransferEncoding::Identity => Ok(Some(BinaryExtent::Range(body))),
        TransferEncoding::Base64 => Ok(Some(BinaryExtent::Base64(body))),
        TransferEncoding::QuotedPrintable => Ok(Some(BinaryExtent::QuotedPrintable(body))),
        TransferEncoding::Unknown(_) => Err(BinaryError::UnknownCte),
    }
}

impl BinaryExtent {
    /// The range of the message it covers.
    pub fn range(&self) -> Range<usize> {
        match self {
            BinaryExtent::Range(r) | BinaryExtent::Base64(r) | BinaryExtent::QuotedPrintable(r) => {
                r.clone()
            }
        }
    }

    /// The content, given the octets of [`BinaryExtent::range`].
    pub fn decode(&self, octets: Bytes) -> Result<Bytes, BinaryError> {
        match self {
            BinaryExtent::Range(_) => Ok(octets),
            BinaryExtent::Base64(_) => valid_base64(&octets)
                .then(|| mail_parser::decoders::base64::base64_decode(&octets))
                .flatten()
                .map(Bytes::from)
                .ok_or(BinaryError::Corrupt),
            BinaryExtent::QuotedPrintable(_) => valid_quoted_printable(&octets)
                .then(|| mail_parser::decoders::quoted_printable::quoted_printable_decode(&octets))
                .flatten()
                .map(Bytes::from)
                .ok_or(BinaryError::Corrupt),
        }
    }
}

/// The decoded content of a part for `BINARY[part]`; `Ok(None)` when the part does not exist.
pub fn binary(raw: &Bytes, root: &Part, path: &[u32]) -> Result<Option<Bytes>, BinaryError> {
    match binary_extent(root, path, raw.len())? {
        Some(extent) => extent.decode(raw.slice(extent.range())).map(Some),
        None => Ok(None),
    }
}

/// The decoded size of a part for `BINARY.SIZE[part]`, counted without decoding it whole;
/// `Ok(None)` when the part does not exist.
pub fn binary_size(raw: &Bytes, root: &Part, path: &[u32]) -> Result<Option<u64>, BinaryError> {
    match binary_extent(root, path, raw.len())? {
        Some(extent) => {
            let mut size = DecodedSize::new(&extent);
            size.push(raw.get(extent.range()).unwrap_or_default());
            size.finish().map(Some)
        }
        None => Ok(None),
    }
}

/// Whether base64 text is what Dovecot 2.3 decodes: the alphabet and white space, with
/// nothing but padding and white space after the first `=`. (A last quantum cut short without
/// padding is decoded as far as it goes; Dovecot drops the connection there.)
fn valid_base64(body: &[u8]) -> bool {
    let mut padding = false;
    body.iter().all(|&b| match b {
        b' ' | b'\t' | b'\r' | b'\n' => true,
        b'=' => {
            padding = true;
            true
        }
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => !padding,
        _ => false,
    })
}

/// Whether quoted-printable text is what Dovecot 2.3 decodes: every `=` starts two hex digits
/// (either case) or a soft line break (white space allowed before the line end, or the end of
/// the body). Unencoded 8-bit octets are tolerated, as Dovecot does.
fn valid_quoted_printable(body: &[u8]) -> bool {
    let mut rest = body;
    while let Some(at) = rest.iter().position(|&b| b == b'=') {
        let after = rest.get(at + 1..).unwrap_or_default();
        let hex = after.len() >= 2 && after.iter().take(2).all(u8::is_ascii_hexdigit);
        let blank = after
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let line_end = after.get(blank..).unwrap_or_default();
        let soft =
            line_end.is_empty() || line_end.starts_with(b"\n") || line_end.starts_with(b"\r\n");
        if !hex && !soft {
            return false;
        }
        rest = after;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::analyze::analyze;

    const MSG: &[u8] = b"Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\nX-A: 1\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nplain\r\n--c\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--c--\r\n--b--\r\n";

    fn sec(part: &[u32], text: Option<SectionText>) -> Option<Bytes> {
        let raw = Bytes::from_static(MSG);
        let info = analyze(MSG);
        body_section(
            &raw,
            &info.root,
            &Section {
                part: part.to_vec(),
                text,
            },
        )
    }

    #[test]
    fn rfc9051_6_4_5_part_numbering() {
        assert_eq!(sec(&[], None).unwrap().len(), MSG.len());
        assert_eq!(sec(&[1], None).unwrap(), &b"hello"[..]);
        assert_eq!(sec(&[2], None).unwrap(), &b"aGk="[..]);
        assert_eq!(sec(&[3, 1], None).unwrap(), &b"plain"[..]);
        assert_eq!(sec(&[3, 2], None).unwrap(), &b"<b>x</b>"[..]);
        assert_eq!(
            sec(&[3], Some(SectionText::Header)).unwrap(),
            &b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n"[..]
        );
        assert_eq!(
            sec(&[1], Some(SectionText::Mime)).unwrap(),
            &b"Content-Type: text/plain\r\n\r\n"[..]
        );
        assert_eq!(sec(&[4], None), None);
        assert_eq!(sec(&[1, 1], None), None);
        assert_eq!(sec(&[1], Some(SectionText::Header)), None);
    }

    #[test]
    fn header_fields_keep_order_and_end_with_blank_line() {
        let names = vec![Bytes::from_static(b"x-a"), Bytes::from_static(b"SUBJECT")];
        assert_eq!(
            sec(&[], Some(SectionText::HeaderFields(names.clone()))).unwrap(),
            &b"Subject: s\r\nX-A: 1\r\n\r\n"[..]
        );
        assert_eq!(
            sec(&[], Some(SectionText::HeaderFieldsNot(names))).unwrap(),
            &b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"[..]
        );
    }

    #[test]
    fn single_part_message_has_part_one() {
        let raw = Bytes::from_static(b"Subject: x\r\n\r\nbody\r\n");
        let info = analyze(&raw);
        let one = Section {
            part: vec![1],
            text: None,
        };
        assert_eq!(
            body_section(&raw, &info.root, &one).unwrap(),
            &b"body\r\n"[..]
        );
    }

    #[test]
    fn rfc3516_binary_decodes() {
        let raw = Bytes::from_static(MSG);
        let info = analyze(MSG);
        assert_eq!(binary(&raw, &info.root, &[2]).unwrap().unwrap(), &b"hi"[..]);
        assert_eq!(
            binary(&raw, &info.root, &[1]).unwrap().unwrap(),
            &b"hello"[..]
        );
        assert_eq!(binary(&raw, &info.root, &[9]).unwrap(), None);
        let odd = Bytes::from_static(b"Content-Transfer-Encoding: x-uuencode\r\n\r\nabc");
        let info = analyze(&odd);
        assert_eq!(binary(&odd, &info.root, &[1]), Err(BinaryError::UnknownCte));
    }
}

#[cfg(test)]
mod encapsulated {
    use super::*;
    use crate::mail::analyze::analyze;
    use crate::mail::structure::BodyStructure;

    /// A message whose own type is message/rfc822, around a digest (issue 14, item 3).
    const WRAPPED: &[u8] = b"Subject: outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: digest\r\nContent-Type: multipart/digest; boundary=d\r\n\r\npreamble\r\n--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n--d\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--d--\r\nepilogue\r\n";

    fn sec(raw: &'static [u8], part: &[u32], text: Option<SectionText>) -> Option<Bytes> {
        let info = analyze(raw);
        let section = Section {
            part: part.to_vec(),
            text,
        };
        body_section(&Bytes::from_static(raw), &info.root, &section)
    }

    #[test]
    fn part_one_of_a_message_rfc822_message_is_the_encapsulated_message() {
        let inner = &WRAPPED[48..];
        assert!(inner.starts_with(b"Subject: digest"));
        assert_eq!(sec(WRAPPED, &[1], None).unwrap(), inner);
        assert_eq!(
            sec(WRAPPED, &[1], Some(SectionText::Header)).unwrap(),
            &b"Subject: digest\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"[..]
        );
        assert_eq!(
            sec(WRAPPED, &[1], Some(SectionText::Text)).unwrap(),
            &inner[63..]
        );
        assert!(inner[63..].starts_with(b"preamble") && inner.ends_with(b"epilogue\r\n"));
        // The MIME header of part 1 of a non-multipart message is the message's header.
        assert_eq!(
            sec(WRAPPED, &[1], Some(SectionText::Mime)).unwrap(),
            &WRAPPED[..48]
        );
        assert_eq!(
            sec(WRAPPED, &[1, 1], None).unwrap(),
            &b"Subject: one\r\n\r\nfirst"[..]
        );
        assert_eq!(
            sec(WRAPPED, &[1, 1], Some(SectionText::Mime)).unwrap(),
            &b"\r\n"[..]
        );
        assert_eq!(
            sec(WRAPPED, &[1, 1], Some(SectionText::Header)).unwrap(),
            &b"Subject: one\r\n\r\n"[..]
        );
        assert_eq!(sec(WRAPPED, &[1, 1, 1], None).unwrap(), &b"first"[..]);
        assert_eq!(sec(WRAPPED, &[1, 2], None).unwrap(), &b"second"[..]);
        assert_eq!(sec(WRAPPED, &[1, 3], None), None);
        assert_eq!(sec(WRAPPED, &[2], None), None);
        let info = analyze(WRAPPED);
        let raw = Bytes::from_static(WRAPPED);
        assert_eq!(binary(&raw, &info.root, &[1]).unwrap().unwrap(), inner);
    }

    /// Every section number of a structure, with the structure of the part it names.
    fn numbered(body: &BodyStructure) -> Vec<(Vec<u32>, &BodyStructure)> {
        fn part<'a>(
            b: &'a BodyStructure,
            path: Vec<u32>,
            out: &mut Vec<(Vec<u32>, &'a BodyStructure)>,
        ) {
            out.push((path.clone(), b));
            match b {
                BodyStructure::Multipart { parts, .. } => children(parts, &path, out),
                BodyStructure::Message { body, .. } => message(body, path, out),
                BodyStructure::Single { .. } => {}
            }
        }
        fn children<'a>(
            parts: &'a [BodyStructure],
            path: &[u32],
            out: &mut Vec<(Vec<u32>, &'a BodyStructure)>,
        ) {
            for (i, c) in (1..).zip(parts) {
                part(c, [path, &[i]].concat(), out);
            }
        }
        fn message<'a>(
            b: &'a BodyStructure,
            path: Vec<u32>,
            out: &mut Vec<(Vec<u32>, &'a BodyStructure)>,
        ) {
            match b {
                BodyStructure::Multipart { parts, .. } => children(parts, &path, out),
                _ => part(b, [&path[..], &[1]].concat(), out),
            }
        }
        let mut out = Vec::new();
        message(body, Vec::new(), &mut out);
        out
    }

    #[test]
    fn bodystructure_sizes_and_binary_agree_with_body_sections() {
        const NESTED: &[u8] = b"Subject: level 0\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nzero\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: level 1\r\nContent-Type: message/rfc822\r\n\r\nSubject: level 2\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\r\ntwo\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>2</p>\r\n--b--\r\nepilogue\r\n--a--\r\n";
        for raw in [WRAPPED, NESTED] {
            let info = analyze(raw);
            let bytes = Bytes::from_static(raw);
            let sections = numbered(&info.body);
            assert!(sections.len() >= 4, "{sections:?}");
            for (path, structure) in sections {
                let section = Section {
                    part: path.clone(),
                    text: None,
                };
                let body = body_section(&bytes, &info.root, &section).unwrap();
                let octets = match structure {
                    BodyStructure::Single { fields, .. }
                    | BodyStructure::Message { fields, .. } => Some(fields.octets),
                    BodyStructure::Multipart { .. } => None,
                };
                if let Some(octets) = octets {
                    assert_eq!(octets, body.len() as u64, "{path:?}");
                }
                let decoded = binary(&bytes, &info.root, &path).unwrap().unwrap();
                assert_eq!(decoded, body, "{path:?}");
            }
        }
    }

    #[test]
    fn a_message_in_a_message_ends_at_the_enclosing_boundary() {
        // mail-parser runs the innermost body of message/rfc822-in-message/rfc822 on past
        // "--a--"; Dovecot ends part 2 before the CRLF of that delimiter.
        const RAW: &[u8] = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nzero\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: 1\r\nContent-Type: message/rfc822\r\n\r\nSubject: 2\r\n\r\ntwo\r\n--a--\r\n";
        assert_eq!(
            sec(RAW, &[2], None).unwrap(),
            &b"Subject: 1\r\nContent-Type: message/rfc822\r\n\r\nSubject: 2\r\n\r\ntwo"[..]
        );
        assert_eq!(
            sec(RAW, &[2, 1], None).unwrap(),
            &b"Subject: 2\r\n\r\ntwo"[..]
        );
        assert_eq!(sec(RAW, &[2, 1, 1], None).unwrap(), &b"two"[..]);
        // The MIME header of part 1 of the level-1 message is that message's header.
        assert_eq!(
            sec(RAW, &[2, 1], Some(SectionText::Mime)).unwrap(),
            &b"Subject: 1\r\nContent-Type: message/rfc822\r\n\r\n"[..]
        );
    }

    #[test]
    fn a_message_in_a_message_before_another_part() {
        // mail-parser runs the innermost body on through part 2; Dovecot has two parts.
        const RAW: &[u8] = b"Content-Type: multipart/mixed; boundary=q1q\r\n\r\n--q1q\r\nContent-Type: message/rfc822\r\n\r\nSubject: m9\r\nContent-Type: message/rfc822\r\n\r\nSubject: m10\r\nContent-Type: text/plain\r\n\r\ninner\r\n--q1q\r\nContent-Type: text/plain\r\n\r\nsecond part\r\n--q1q--\r\n";
        assert_eq!(
            sec(RAW, &[1], None).unwrap(),
            &b"Subject: m9\r\nContent-Type: message/rfc822\r\n\r\nSubject: m10\r\nContent-Type: text/plain\r\n\r\ninner"[..]
        );
        assert_eq!(sec(RAW, &[1, 1, 1], None).unwrap(), &b"inner"[..]);
        assert_eq!(sec(RAW, &[2], None).unwrap(), &b"second part"[..]);
        assert_eq!(
            sec(RAW, &[2], Some(SectionText::Mime)).unwrap(),
            &b"Content-Type: text/plain\r\n\r\n"[..]
        );
        assert_eq!(sec(RAW, &[3], None), None);
    }

    #[test]
    fn a_multipart_without_its_close_delimiter_ends_with_its_parent() {
        // The RFC 2060 example's part 4 lacks "--4.x--": the enclosing "--x--" ends 4 and 4.2.
        const RAW: &[u8] = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\none\r\n--x\r\nContent-Type: multipart/mixed; boundary=4.x\r\n\r\n--4.x\r\n\r\nfour one\r\n--4.x\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=4.2.x\r\n\r\n--4.2.x\r\n\r\nin\r\n--4.2.x--\r\n--x--\r\n";
        let four = sec(RAW, &[2], None).unwrap();
        assert!(four.ends_with(b"--4.2.x--\r\n"), "{four:?}");
        let four_two = sec(RAW, &[2, 2], None).unwrap();
        assert!(four_two.ends_with(b"--4.2.x--\r\n"), "{four_two:?}");
        assert_eq!(sec(RAW, &[2, 2, 1], None).unwrap(), &b"in"[..]);
    }

    #[test]
    fn an_empty_body_lends_its_blank_line_to_the_delimiter() {
        // As Dovecot: the CRLF before "--b" belongs to the delimiter, so a part with an
        // empty body has no blank line in its MIME header (an empty one, if it had no fields).
        const RAW: &[u8] = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-ID: <x>\r\n\r\n--b\r\n\r\n--b--\r\n";
        assert_eq!(
            sec(RAW, &[1], Some(SectionText::Mime)).unwrap(),
            &b"Content-ID: <x>\r\n"[..]
        );
        assert_eq!(sec(RAW, &[1], None).unwrap(), &b""[..]);
        assert_eq!(sec(RAW, &[2], Some(SectionText::Mime)).unwrap(), &b""[..]);
        assert_eq!(sec(RAW, &[2], None).unwrap(), &b""[..]);
    }

    #[test]
    fn a_nested_multipart_keeps_its_close_delimiter_line() {
        // As Dovecot: part 2 ends with the line of its own close-delimiter; part 1 (a leaf)
        // loses the CRLF before the next boundary.
        const RAW: &[u8] = b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\r\none\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\ntwo\r\n--i--\r\n--o--\r\n";
        assert_eq!(sec(RAW, &[1], None).unwrap(), &b"one"[..]);
        assert_eq!(
            sec(RAW, &[2], Some(SectionText::Text)).unwrap(),
            &b"--i\r\n\r\ntwo\r\n--i--\r\n"[..]
        );
        assert_eq!(sec(RAW, &[2, 1], None).unwrap(), &b"two"[..]);
    }
}

#[cfg(test)]
mod encodings {
    use super::*;

    #[test]
    fn base64_validity_follows_dovecot() {
        for ok in [
            &b"AAECAwQ="[..],
            b"AAE\r\nCAw==\r\n",
            b"AA EC Aw==",
            b"AAECAw",
            b"",
        ] {
            assert!(valid_base64(ok), "{ok:?}");
        }
        for bad in [&b"AAEC!!!AwQ="[..], b"AQ==AQ==", b"AA\x00EC", b"AA-_"] {
            assert!(!valid_base64(bad), "{bad:?}");
        }
    }

    #[test]
    fn quoted_printable_validity_follows_dovecot() {
        for ok in [
            &b"a=3db"[..],
            b"a=3Db",
            b"ab=",
            b"ab= \r\ncd",
            b"a=\r\nb",
            b"a=\nb",
            b"a\x80b",
            b"=\t",
            b"=",
        ] {
            assert!(valid_quoted_printable(ok), "{ok:?}");
        }
        for bad in [&b"ab=ZZcd"[..], b"ab=4", b"a=G1b", b"a= x", b"==41"] {
            assert!(!valid_quoted_printable(bad), "{bad:?}");
        }
    }

    #[test]
    fn corrupt_data_is_not_an_unknown_encoding() {
        let raw = Bytes::from_static(
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nab=4",
        );
        let info = crate::mail::analyze::analyze(&raw);
        assert_eq!(binary(&raw, &info.root, &[1]), Err(BinaryError::Corrupt));
    }
}
