//! The LOGIN mechanism (draft-murchison-sasl-login): the server asks for `Username:`, then
//! `Password:`, and the client answers each with one response.
//!
//! Never standardised, but Outlook and many older clients offer nothing else besides PLAIN.
//! The draft gives LOGIN no initial response; clients that send their user name as one anyway
//! (common in SMTP) are accepted, since the meaning is unambiguous.

use super::{Credentials, Outcome, SaslError, Step};
use crate::secret::Secret;

/// The challenge texts most clients match on; the draft's example wording.
const USERNAME_PROMPT: &[u8] = b"Username:";
const PASSWORD_PROMPT: &[u8] = b"Password:";

/// Where a LOGIN exchange stands.
#[derive(Debug)]
pub(super) enum LoginServer {
    /// `Username:` was sent.
    AwaitUsername,
    /// `Password:` was sent.
    AwaitPassword { username: String },
    /// The exchange has ended.
    Finished,
}

impl LoginServer {
    /// Begins an exchange. An empty initial response counts as none: an empty user name
    /// could never succeed, and the draft defines no initial response to give it meaning.
    pub(super) fn start(initial_response: Option<&[u8]>) -> (LoginServer, Step) {
        match initial_response {
            Some(name) if !name.is_empty() => {
                let mut server = LoginServer::AwaitUsername;
                let step = server.respond(name);
                (server, step)
            }
            _ => (
                LoginServer::AwaitUsername,
                Step::Challenge(USERNAME_PROMPT.to_vec()),
            ),
        }
    }

    pub(super) fn respond(&mut self, response: &[u8]) -> Step {
        match std::mem::replace(self, LoginServer::Finished) {
            LoginServer::AwaitUsername => {
                let username = match std::str::from_utf8(response) {
                    Ok(name) if !name.is_empty() && !name.contains('\0') => name.to_string(),
                    _ => return Step::Failed(SaslError::Malformed("LOGIN")),
                };
                *self = LoginServer::AwaitPassword { username };
                Step::Challenge(PASSWORD_PROMPT.to_vec())
            }
            LoginServer::AwaitPassword { username } => Step::Done(Outcome::Verify(Credentials {
                username,
                password: Secret::new(response.to_vec()),
            })),
            LoginServer::Finished => Step::Failed(SaslError::Misuse),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(step: Step) -> Credentials {
        match step {
            Step::Done(Outcome::Verify(creds)) => creds,
            other => panic!("expected credentials, got {other:?}"),
        }
    }

    #[test]
    fn asks_for_name_then_password() {
        let (mut server, step) = LoginServer::start(None);
        assert_eq!(step, Step::Challenge(b"Username:".to_vec()));
        assert_eq!(
            server.respond(b"tim"),
            Step::Challenge(b"Password:".to_vec())
        );
        let creds = verify(server.respond(b"tanstaaftanstaaf"));
        assert_eq!(creds.username, "tim");
        assert_eq!(creds.password.expose(), b"tanstaaftanstaaf");
        assert_eq!(server.respond(b"more"), Step::Failed(SaslError::Misuse));
    }

    #[test]
    fn a_user_name_as_initial_response_skips_the_first_prompt() {
        let (mut server, step) = LoginServer::start(Some(b"tim"));
        assert_eq!(step, Step::Challenge(b"Password:".to_vec()));
        assert_eq!(verify(server.respond(b"")).password.expose(), b"");
        let (_, step) = LoginServer::start(Some(b""));
        assert_eq!(step, Step::Challenge(b"Username:".to_vec()));
    }

    #[test]
    fn refuses_empty_or_binary_names() {
        let (mut server, _) = LoginServer::start(None);
        assert_eq!(
            server.respond(b""),
            Step::Failed(SaslError::Malformed("LOGIN"))
        );
        let (mut server, _) = LoginServer::start(None);
        assert_eq!(
            server.respond(b"\xff\xfe"),
            Step::Failed(SaslError::Malformed("LOGIN"))
        );
        let (mut server, _) = LoginServer::start(None);
        assert_eq!(
            server.respond(b"a\0b"),
            Step::Failed(SaslError::Malformed("LOGIN"))
        );
    }
}
