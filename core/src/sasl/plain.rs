//! SASL PLAIN, RFC 4616: `[authzid] NUL authcid NUL passwd`.

use super::{Credentials, SaslError};
use crate::secret::Secret;

pub(super) fn parse(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut fields = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslError::Malformed("PLAIN"));
    };
    let username = std::str::from_utf8(authcid)
        .map_err(|_| SaslError::Malformed("PLAIN"))?
        .to_string();
    // RFC 4616 §2: authcid must not be empty. An authzid naming someone else would let one user
    // act as another; that is only for configured master users, which do not exist yet.
    if username.is_empty() {
        return Err(SaslError::Malformed("PLAIN"));
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(SaslError::AuthzidRefused);
    }
    Ok(Credentials {
        username,
        password: Secret::new(passwd.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4616_forms() {
        let c = parse(b"\0tim\0tanstaaftanstaaf").unwrap();
        assert_eq!(c.username, "tim");
        assert_eq!(c.password.expose(), b"tanstaaftanstaaf");
        assert!(parse(b"tim\0tim\0pw").is_ok());
        assert_eq!(
            parse(b"Ursel\0Kurt\0xipj3plmq"),
            Err(SaslError::AuthzidRefused)
        );
        assert_eq!(parse(b"\0tim"), Err(SaslError::Malformed("PLAIN")));
        assert_eq!(parse(b"\0\0pw"), Err(SaslError::Malformed("PLAIN")));
        assert_eq!(parse(b"\0a\0b\0c"), Err(SaslError::Malformed("PLAIN")));
    }
}
