//! `BODY[section]` and `BINARY[part]` extraction from a stored message and its part tree
//! (RFC 9051 §6.4.5, RFC 3516), without parsing the message again.

use bytes::{Bytes, BytesMut};

use super::analyze::{Children, Part, TransferEncoding};
use super::header::fields;
use crate::imap::types::{Section, SectionText};

/// Why BINARY could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is not one tern decodes (RFC 3516 `UNKNOWN-CTE`).
    #[error("unknown content-transfer-encoding")]
    UnknownCte,
    /// The encoded data is broken beyond decoding.
    #[error("the part's encoded data is invalid")]
    Corrupt,
}

/// Finds the part a part path names. Each number picks a child of a multipart; inside a
/// message/rfc822 part numbering continues in the encapsulated message; a non-multipart
/// message (or encapsulated message) has only part 1, itself.
pub fn find<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    let mut node = root;
    // Whether `node` is a message (top level or encapsulated), whose part 1 may be itself.
    let mut at_message = true;
    for &n in path {
        let container = match &node.children {
            Children::Message(inner) => {
                at_message = true;
                &**inner
            }
            _ => node,
        };
        node = match &container.children {
            Children::Multipart(parts) => parts.get((n as usize).checked_sub(1)?)?,
            _ if n == 1 && at_message => container,
            _ => return None,
        };
        at_message = false;
    }
    Some(node)
}

/// The octets `BODY[section]` returns, or `None` when the section does not exist (tern then
/// answers with an empty string, as Dovecot does).
pub fn body_section(raw: &Bytes, root: &Part, section: &Section) -> Option<Bytes> {
    let slice = |r: std::ops::Range<usize>| raw.get(r.clone()).map(|_| raw.slice(r));
    if section.part.is_empty() {
        return match &section.text {
            None => Some(raw.clone()),
            Some(text) => message_text(raw, root, text),
        };
    }
    let part = find(root, &section.part)?;
    match &section.text {
        None => slice(part.body.clone()),
        Some(SectionText::Mime) => slice(part.header.clone()),
        // HEADER/TEXT after a part number refer to an encapsulated message.
        Some(text) => match &part.children {
            Children::Message(inner) => message_text(raw, inner, text),
            _ => None,
        },
    }
}

fn message_text(raw: &Bytes, message: &Part, text: &SectionText) -> Option<Bytes> {
    let header = raw.get(message.header.clone())?;
    match text {
        SectionText::Header => Some(raw.slice(message.header.clone())),
        SectionText::Text => Some(raw.slice(message.body.clone())),
        SectionText::Mime => None,
        SectionText::HeaderFields(names) => Some(filter_fields(header, names, true)),
        SectionText::HeaderFieldsNot(names) => Some(filter_fields(header, names, false)),
    }
}

/// The fields whose names are (or are not) in `names`, in message order, then the blank line
/// that ends a header (RFC 9051 §6.4.5 says the result includes it).
fn filter_fields(header: &[u8], names: &[Bytes], keep_listed: bool) -> Bytes {
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

/// The decoded content of a part for `BINARY[part]`; `Ok(None)` when the part does not exist.
pub fn binary(raw: &Bytes, root: &Part, path: &[u32]) -> Result<Option<Bytes>, BinaryError> {
    if path.is_empty() {
        return Ok(Some(raw.clone()));
    }
    let Some(part) = find(root, path) else {
        return Ok(None);
    };
    let Some(body) = raw.get(part.body.clone()) else {
        return Ok(None);
    };
    if !matches!(part.children, Children::None) {
        // Composite parts have no transfer encoding of their own to undo.
        return Ok(Some(raw.slice(part.body.clone())));
    }
    match &part.encoding {
        TransferEncoding::Identity => Ok(Some(raw.slice(part.body.clone()))),
        TransferEncoding::Base64 => mail_parser::decoders::base64::base64_decode(body)
            .map(|d| Some(Bytes::from(d)))
            .ok_or(BinaryError::Corrupt),
        TransferEncoding::QuotedPrintable => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
                .map(|d| Some(Bytes::from(d)))
                .ok_or(BinaryError::Corrupt)
        }
        TransferEncoding::Unknown(_) => Err(BinaryError::UnknownCte),
    }
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
