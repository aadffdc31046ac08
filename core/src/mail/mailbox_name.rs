//! Mailbox names: modified UTF-7 (RFC 3501 §5.1.3) for IMAP4rev1 sessions, UTF-8 for sessions
//! that enabled IMAP4rev2 or UTF8=ACCEPT; INBOX in any case is INBOX; `/` is the hierarchy
//! delimiter.

use base64::alphabet::Alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// The hierarchy delimiter.
pub const DELIMITER: char = '/';

/// Longest mailbox name in octets (UTF-8), a bound that keeps names usable as keys anywhere.
pub const MAX_NAME: usize = 1024;

/// Longest hierarchy (levels), bounding the work CREATE does for parents.
pub const MAX_DEPTH: usize = 64;

fn engine() -> GeneralPurpose {
    // RFC 3501 §5.1.3: base64 with "," for "/" and no padding.
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
            .unwrap_or(base64::alphabet::IMAP_MUTF7);
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    )
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not valid modified UTF-7 (or not UTF-8 in a UTF-8 session).
    #[error("invalid mailbox name encoding")]
    Encoding,
    /// Empty, too long, too deep, with empty levels or control characters.
    #[error("invalid mailbox name")]
    Invalid,
}

/// Decodes modified UTF-7.
pub fn decode_mutf7(raw: &[u8]) -> Result<String, NameError> {
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'&' {
            let end = raw
                .get(i + 1..)
                .and_then(|r| r.iter().position(|&c| c == b'-'))
                .map(|p| i + 1 + p)
                .ok_or(NameError::Encoding)?;
            let chunk = raw.get(i + 1..end).unwrap_or_default();
            if chunk.is_empty() {
                out.push('&');
            } else {
                let bytes = engine().decode(chunk).map_err(|_| NameError::Encoding)?;
                if bytes.len() % 2 != 0 {
                    return Err(NameError::Encoding);
                }
                let units: Vec<u16> = bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                let s = String::from_utf16(&units).map_err(|_| NameError::Encoding)?;
                // RFC 3501: printable ASCII must not be base64-encoded.
                if s.chars().any(|c| (' '..='~').contains(&c)) {
                    return Err(NameError::Encoding);
                }
                out.push_str(&s);
            }
            i = end + 1;
        } else if (0x20..0x7f).contains(&b) {
            out.push(char::from(b));
            i += 1;
        } else {
            return Err(NameError::Encoding);
        }
    }
    Ok(out)
}

/// Encodes modified UTF-7.
pub fn encode_mutf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&engine().encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Turns a name as a client sent it into the canonical UTF-8 name: decoded, `INBOX` (and
/// `INBOX/...`) upper-cased, checked for shape.
pub fn from_wire(raw: &[u8], utf8: bool) -> Result<String, NameError> {
    let name = if utf8 {
        String::from_utf8(raw.to_vec()).map_err(|_| NameError::Encoding)?
    } else {
        decode_mutf7(raw)?
    };
    canonical(name)
}

/// The canonical form of a decoded name: Net-Unicode (NFC, RFC 5198), as RFC 9051 §6.3.4
/// requires of names created over UTF-8, so one name cannot exist in two spellings.
pub fn canonical(name: String) -> Result<String, NameError> {
    let name = if name.is_ascii() {
        name
    } else {
        use unicode_normalization::UnicodeNormalization;
        name.nfc().collect()
    };
    let name = match name.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("INBOX") => match name.get(5..) {
            Some("") => "INBOX".to_string(),
            Some(rest) if rest.starts_with(DELIMITER) => format!("INBOX{rest}"),
            _ => name,
        },
        _ => name,
    };
    let name = name.strip_suffix(DELIMITER).unwrap_or(&name).to_string();
    if name.is_empty()
        || name.len() > MAX_NAME
        || name.starts_with(DELIMITER)
        || name.split(DELIMITER).any(str::is_empty)
        || name.split(DELIMITER).count() > MAX_DEPTH
        || name.chars().any(char::is_control)
    {
        return Err(NameError::Invalid);
    }
    Ok(name)
}

/// Encodes a canonical name for a session.
pub fn to_wire(name: &str, utf8: bool) -> String {
    if utf8 {
        name.to_string()
    } else {
        encode_mutf7(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_5_1_3_examples() {
        // "~peter/mail/台北/日本語" from RFC 3501 §5.1.3.
        let wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        let name = decode_mutf7(wire.as_bytes()).unwrap();
        assert_eq!(name, "~peter/mail/台北/日本語");
        assert_eq!(encode_mutf7(&name), wire);
        assert_eq!(decode_mutf7(b"a&-b").unwrap(), "a&b");
        assert_eq!(encode_mutf7("a&b"), "a&-b");
        assert!(decode_mutf7(b"&AGE-").is_err(), "ASCII must not be encoded");
        assert!(decode_mutf7(b"&Jjo").is_err());
        assert!(decode_mutf7("é".as_bytes()).is_err());
    }

    #[test]
    fn inbox_is_case_insensitive_and_names_are_checked() {
        assert_eq!(from_wire(b"inbox", false).unwrap(), "INBOX");
        assert_eq!(from_wire(b"InBox/Sub", false).unwrap(), "INBOX/Sub");
        assert_eq!(from_wire(b"INBOXES", false).unwrap(), "INBOXES");
        assert_eq!(from_wire(b"a/b/", false).unwrap(), "a/b");
        assert!(from_wire(b"a//b", false).is_err());
        assert!(from_wire(b"/a", false).is_err());
        assert!(from_wire(b"", false).is_err());
        assert_eq!(from_wire("Entwürfe".as_bytes(), true).unwrap(), "Entwürfe");
        // "Cafe" + U+0301 (combining acute) is stored as "Café" with U+00E9.
        assert_eq!(
            from_wire("Cafe\u{301}".as_bytes(), true).unwrap(),
            "Caf\u{e9}"
        );
    }
}
