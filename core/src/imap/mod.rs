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

/// Every command name the grammar knows (RFC 9051 §6 and the extensions in the AST).
const COMMAND_NAMES: &[&str] = &[
    "APPEND",
    "AUTHENTICATE",
    "CAPABILITY",
    "CHECK",
    "CLOSE",
    "COMPRESS",
    "COPY",
    "CREATE",
    "DELETE",
    "ENABLE",
    "EXAMINE",
    "EXPUNGE",
    "FETCH",
    "GETMETADATA",
    "GETQUOTA",
    "GETQUOTAROOT",
    "ID",
    "IDLE",
    "LIST",
    "LOGIN",
    "LOGOUT",
    "LSUB",
    "MOVE",
    "NAMESPACE",
    "NOOP",
    "NOTIFY",
    "RENAME",
    "REPLACE",
    "SEARCH",
    "SELECT",
    "SETMETADATA",
    "SETQUOTA",
    "SORT",
    "STARTTLS",
    "STATUS",
    "STORE",
    "SUBSCRIBE",
    "THREAD",
    "UID",
    "UNAUTHENTICATE",
    "UNSELECT",
    "UNSUBSCRIBE",
];

/// Whether `name` is a command name tern's grammar knows (case-insensitive).
pub(crate) fn is_command_name(name: &[u8]) -> bool {
    COMMAND_NAMES
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(name))
}

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
