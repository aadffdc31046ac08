//! IMAP: the command types, framing, decoder, response encoder and the session state machine.

pub mod command;
pub mod decode;
pub mod encode;
pub mod encode_command;
pub(crate) mod framing;
pub mod response;
pub mod response_decode;
pub(crate) mod session;
pub mod types;

/// `tag = 1*<any ASTRING-CHAR except "+">` (RFC 9051 §9).
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// `ATOM-CHAR = <any CHAR except atom-specials>`: printable ASCII except `(){ %*"\]`.
pub(crate) fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// `ASTRING-CHAR = ATOM-CHAR / resp-specials`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_classes_follow_rfc9051_section_9() {
        assert!(is_tag_char(b'A') && is_tag_char(b']') && is_tag_char(b'.'));
        assert!(!is_tag_char(b'+') && !is_tag_char(b' ') && !is_tag_char(b'*'));
        assert!(!is_atom_char(b']') && is_astring_char(b']'));
        assert!(!is_atom_char(0x80) && !is_atom_char(0x7f) && !is_atom_char(b'{'));
    }
}
