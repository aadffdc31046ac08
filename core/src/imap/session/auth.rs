//! LOGIN and AUTHENTICATE (RFC 9051 §6.2.2, §6.2.3; SASL-IR, RFC 4959).

use std::time::Instant;

use bytes::Bytes;

use super::{Expect, Finish, ImapSession, Pending, State};
use crate::auth::plaintext_allowed;
use crate::imap::command::Tag;
use crate::imap::response::{Code, Condition, Response};
use crate::sasl::{self, Credentials, Mechanism};
use crate::secret::Secret;
use crate::session::{Event, Output};
use crate::store::{AuthOutcome, StorageOp, StorageReply, StorageResult};
use crate::time::Timer;

impl ImapSession {
    pub(super) fn plaintext_ok(&self) -> bool {
        plaintext_allowed(self.tls_active, self.config.plaintext_auth_without_tls)
    }

    pub(super) fn login(&mut self, tag: Tag, username: Bytes, password: Secret<Bytes>) {
        if !self.plaintext_ok() {
            self.no(
                tag,
                Some(Code::PrivacyRequired),
                "Plaintext authentication is disallowed without TLS.",
            );
            return;
        }
        let Ok(username) = String::from_utf8(username.to_vec()) else {
            self.no_auth(tag);
            return;
        };
        let creds = Credentials {
            username,
            password: Secret::new(password.into_inner().to_vec()),
        };
        self.check_credentials(tag, creds, "LOGIN");
    }

    pub(super) fn authenticate_command(
        &mut self,
        tag: Tag,
        mechanism: &[u8],
        initial_response: Option<Secret<Bytes>>,
    ) {
        let Some(mech) = Mechanism::from_name(mechanism) else {
            self.no(tag, None, "Unsupported authentication mechanism.");
            return;
        };
        if mech.is_plaintext() && !self.plaintext_ok() {
            self.no(
                tag,
                Some(Code::PrivacyRequired),
                "Plaintext authentication is disallowed without TLS.",
            );
            return;
        }
        match initial_response {
            Some(ir) => self.finish_sasl(tag, mech, ir.expose()),
            None => {
                self.send(Response::Continue(Bytes::new()));
                self.expect = Expect::SaslResponse {
                    tag,
                    mechanism: mech,
                };
            }
        }
    }

    pub(super) fn sasl_response(&mut self, line: Bytes) {
        let Expect::SaslResponse { tag, mechanism } =
            std::mem::replace(&mut self.expect, Expect::Command)
        else {
            return;
        };
        // RFC 9051 §6.2.2: a lone "*" cancels the exchange with a tagged BAD.
        if line.as_ref() == b"*" {
            self.status(Some(tag), Condition::Bad, None, "Authentication cancelled.");
            return;
        }
        self.finish_sasl(tag, mechanism, &line);
    }

    fn finish_sasl(&mut self, tag: Tag, mechanism: Mechanism, response: &[u8]) {
        match sasl::decode_response(response).and_then(|r| mechanism.finish(&r)) {
            Ok(creds) => self.check_credentials(tag, creds, mechanism.name()),
            Err(sasl::SaslError::BadBase64) => {
                self.status(Some(tag), Condition::Bad, None, "Invalid base64 data.")
            }
            Err(_) => self.no_auth(tag),
        }
    }

    fn check_credentials(&mut self, tag: Tag, creds: Credentials, mechanism: &'static str) {
        let username = creds.username.clone();
        self.request(
            StorageOp::Authenticate {
                username: creds.username,
                password: creds.password,
            },
            Pending::Login {
                tag,
                username,
                mechanism,
            },
        );
    }

    pub(super) fn login_reply(
        &mut self,
        tag: Tag,
        username: String,
        mechanism: &'static str,
        reply: StorageResult,
        now: Instant,
    ) {
        match reply {
            Ok(StorageReply::Authenticated(AuthOutcome::Accepted { account })) => {
                self.out.push(Output::Event(Event::LoggedIn {
                    account: account.clone(),
                    mechanism,
                }));
                self.state = State::Authenticated { account };
                let caps = self.capability_list();
                self.finish(Finish::ok(tag, "Logged in.").with_code(Code::Capability(caps)));
            }
            Ok(StorageReply::Authenticated(AuthOutcome::Rejected)) => {
                self.out.push(Output::Event(Event::AuthFailed {
                    username,
                    mechanism,
                }));
                let delay = self.failures.record(&self.config.limits);
                if delay.is_zero() {
                    self.answer_failed_auth(&tag);
                } else {
                    self.timers.set(Timer::AuthDelay, now + delay);
                    self.expect = Expect::AuthDelay { tag };
                }
            }
            Err(e) => self.storage_failed(tag, &e),
            Ok(_) => self.unexpected(tag),
        }
    }

    pub(super) fn answer_failed_auth(&mut self, tag: &Tag) {
        self.no_auth(tag.clone());
        if self.failures.exhausted(&self.config.limits) {
            self.untagged(
                Condition::Bye,
                None,
                "Too many failed authentication attempts.",
            );
            self.close();
        }
    }

    fn no_auth(&mut self, tag: Tag) {
        self.no(
            tag,
            Some(Code::AuthenticationFailed),
            "Authentication failed.",
        );
    }
}
