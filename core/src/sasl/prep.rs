//! SASLprep (RFC 4013): the string preparation SCRAM and PLAIN apply to user names and
//! passwords, so that visually identical input (a no-break space, a ligature, a composed or
//! decomposed accent) compares equal.

use std::borrow::Cow;

/// Why a string cannot be prepared. Carries no part of the input: the input may be a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrepError {
    /// The string holds a character RFC 4013 §2.3 prohibits or §2.5 leaves unassigned
    /// (control characters, private use, non-characters, …), or breaks the bidirectional
    /// rules of RFC 3454 §6.
    #[error("contains a character SASLprep (RFC 4013) prohibits")]
    Prohibited,
    /// The prepared string is empty.
    #[error("is empty")]
    Empty,
}

/// Prepares `input` with the SASLprep profile as a *stored string* (RFC 4013 §2.5: unassigned
/// code points are refused, which is also the safe choice for queries that are compared with
/// stored values).
///
/// Printable ASCII comes back borrowed and unchanged, so for most names and passwords this
/// costs one scan.
pub fn saslprep(input: &str) -> Result<Cow<'_, str>, PrepError> {
    let prepared = stringprep::saslprep(input).map_err(|_| PrepError::Prohibited)?;
    if prepared.is_empty() {
        return Err(PrepError::Empty);
    }
    Ok(prepared)
}

/// The key under which a user name is looked up: SASLprep, then Unicode lower case, so that
/// `Alice`, `ALICE` and `alice` (and their Unicode-equivalent spellings) name one account.
pub fn username_key(name: &str) -> Result<String, PrepError> {
    Ok(saslprep(name)?.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4013_examples() {
        // RFC 4013 §3, in order.
        assert_eq!(saslprep("I\u{00AD}X").unwrap(), "IX");
        assert_eq!(saslprep("user").unwrap(), "user");
        assert_eq!(saslprep("USER").unwrap(), "USER");
        assert_eq!(saslprep("\u{00AA}").unwrap(), "a");
        assert_eq!(saslprep("\u{2168}").unwrap(), "IX");
        assert_eq!(saslprep("\u{0007}"), Err(PrepError::Prohibited));
        assert_eq!(saslprep("\u{0627}\u{0031}"), Err(PrepError::Prohibited));
    }

    #[test]
    fn ascii_is_borrowed_and_spaces_are_mapped() {
        assert!(matches!(saslprep("pencil").unwrap(), Cow::Borrowed(_)));
        assert_eq!(saslprep("a\u{00A0}b").unwrap(), "a b");
        assert_eq!(saslprep(""), Err(PrepError::Empty));
        assert_eq!(saslprep("\u{00AD}"), Err(PrepError::Empty));
    }

    #[test]
    fn errors_never_echo_the_input() {
        let e = saslprep("secret\u{0007}").unwrap_err();
        assert!(!e.to_string().contains("secret"));
        assert!(!format!("{e:?}").contains("secret"));
    }

    #[test]
    fn username_keys_fold_case_and_compatibility_forms() {
        assert_eq!(username_key("Alice").unwrap(), "alice");
        assert_eq!(username_key("\u{FB01}LE").unwrap(), "file");
        assert_eq!(
            username_key("Jos\u{0065}\u{0301}").unwrap(),
            username_key("jos\u{00E9}").unwrap()
        );
    }
}
