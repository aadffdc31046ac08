//! LOGIN and AUTHENTICATE (RFC 9051 §6.2.2, §6.2.3; SASL-IR, RFC 4959), driving the SASL
//! step machines of [`crate::sasl`].

use std::time::Instant;

use bytes::Bytes;

use super::{Expect, Finish, ImapSession, State, INTERNAL_ERROR, TEMPORARY_FAILURE};
use crate::auth::plaintext_allowed;
use crate::directory::{AuthOutcome, DirectoryError, DirectoryOp, DirectoryReply, DirectoryResult};
use crate::imap::command::Tag;
use crate::imap::response::{Code, Condition, Response};
use crate::sasl::{self, Credentials, Exchange, Mechanism, Outcome, SaslContext, SaslError, Step};
use crate::secret::Secret;
use crate::session::{Event, Output};
use crate::time::Timer;

/// What to do with the reply to the directory request in flight.
#[derive(Debug)]
pub(super) enum Pending {
    /// A password check or an account claim: the verdict ends the command.
    Login {
        tag: Tag,
        username: String,
        mechanism: &'static str,
    },
    /// SCRAM keys were asked for.
    ScramKeys(Box<SaslState>),
}

/// An AUTHENTICATE exchange in progress.
#[derive(Debug)]
pub(super) struct SaslState {
    pub(super) tag: Tag,
    mechanism: Mechanism,
    exchange: Exchange,
    /// The account whose SCRAM keys are in use, once the directory named it.
    account: Option<String>,
    /// The authentication identity, for failure logs.
    username: String,
}

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
        now: Instant,
    ) {
        let Some(mech) = Mechanism::lookup(mechanism) else {
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
        if mech == Mechanism::ScramSha256Plus && !self.channel_bindings.available() {
            self.no(
                tag,
                None,
                "Channel binding is not available on this connection.",
            );
            return;
        }
        let initial = match initial_response {
            None => None,
            Some(ir) => match sasl::decode_response(ir.expose()) {
                Ok(decoded) => Some(decoded),
                Err(_) => {
                    self.status(Some(tag), Condition::Bad, None, "Invalid base64 data.");
                    return;
                }
            },
        };
        let context = SaslContext::new(self.channel_bindings.clone());
        let mut state = SaslState {
            tag,
            mechanism: mech,
            exchange: Exchange::new(mech, &context),
            account: None,
            username: String::new(),
        };
        let step = state.exchange.start(initial.as_deref());
        self.sasl_step(state, step, now);
    }

    pub(super) fn sasl_response(&mut self, line: Bytes, now: Instant) {
        let Expect::SaslResponse(state) = std::mem::replace(&mut self.expect, Expect::Command)
        else {
            return;
        };
        let mut state = *state;
        // RFC 9051 §6.2.2: a lone "*" cancels the exchange with a tagged BAD.
        if line.as_ref() == b"*" {
            self.status(
                Some(state.tag),
                Condition::Bad,
                None,
                "Authentication cancelled.",
            );
            return;
        }
        let step = match sasl::decode_response(&line) {
            Ok(decoded) => state.exchange.respond(&decoded),
            Err(e) => Step::Failed(e),
        };
        self.sasl_step(state, step, now);
    }

    fn sasl_step(&mut self, mut state: SaslState, step: Step, now: Instant) {
        match step {
            Step::Challenge(challenge) => {
                self.send(Response::Continue(Bytes::from(sasl::encode_challenge(
                    &challenge,
                ))));
                self.expect = Expect::SaslResponse(Box::new(state));
            }
            Step::NeedCredentials { username } => {
                state.username = username.clone();
                self.ask_directory(
                    DirectoryOp::ScramLookup { username },
                    Pending::ScramKeys(Box::new(state)),
                );
            }
            Step::Done(Outcome::Verify(creds)) => {
                self.check_credentials(state.tag, creds, state.mechanism.name())
            }
            Step::Done(Outcome::Authenticated { .. }) => match state.account {
                // The proof is right; the account's connection limit still applies.
                Some(account) => self.ask_directory(
                    DirectoryOp::ClaimAccount { account },
                    Pending::Login {
                        tag: state.tag,
                        username: state.username,
                        mechanism: state.mechanism.name(),
                    },
                ),
                // Stand-in keys cannot verify; reaching here would be a directory bug.
                None => self.failed_login(state.tag, state.username, state.mechanism.name(), now),
            },
            Step::Failed(SaslError::BadBase64) => self.status(
                Some(state.tag),
                Condition::Bad,
                None,
                "Invalid base64 data.",
            ),
            Step::Failed(SaslError::InvalidProof) => {
                self.failed_login(state.tag, state.username, state.mechanism.name(), now)
            }
            Step::Failed(_) => self.no_auth(state.tag),
        }
    }

    /// Continues a login with the directory's reply.
    pub(super) fn login_reply(&mut self, pending: Pending, reply: DirectoryResult, now: Instant) {
        match pending {
            Pending::Login {
                tag,
                username,
                mechanism,
            } => self.verdict(tag, username, mechanism, reply, now),
            Pending::ScramKeys(state) => self.scram_keys(*state, reply, now),
        }
    }

    fn scram_keys(&mut self, mut state: SaslState, reply: DirectoryResult, now: Instant) {
        match reply {
            Ok(DirectoryReply::Scram {
                account,
                credentials,
                nonce,
            }) => {
                state.account = account;
                let step = state.exchange.credentials(&credentials, &nonce);
                self.sasl_step(state, step, now);
            }
            Err(e) => self.directory_failed(state.tag, &e),
            Ok(_) => self.directory_failed(
                state.tag,
                &DirectoryError::Internal("unexpected reply".into()),
            ),
        }
    }

    fn check_credentials(&mut self, tag: Tag, creds: Credentials, mechanism: &'static str) {
        let username = creds.username.clone();
        self.ask_directory(
            DirectoryOp::Authenticate {
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

    fn verdict(
        &mut self,
        tag: Tag,
        username: String,
        mechanism: &'static str,
        reply: DirectoryResult,
        now: Instant,
    ) {
        match reply {
            Ok(DirectoryReply::Authenticated(AuthOutcome::Accepted { account, quota })) => {
                if self.config.quota {
                    self.quota = quota;
                }
                self.logged_in(tag, account, mechanism)
            }
            Ok(DirectoryReply::Authenticated(AuthOutcome::Rejected)) => {
                self.failed_login(tag, username, mechanism, now)
            }
            Err(e) => self.directory_failed(tag, &e),
            Ok(_) => {
                self.directory_failed(tag, &DirectoryError::Internal("unexpected reply".into()))
            }
        }
    }

    /// A login the directory did not decide: refused without counting as a failure.
    fn directory_failed(&mut self, tag: Tag, error: &DirectoryError) {
        let (code, text) = match error {
            DirectoryError::Blocked => return self.blocked(tag),
            DirectoryError::InUse => (Code::InUse, "In use by another session."),
            DirectoryError::Unavailable(_) => (Code::Unavailable, TEMPORARY_FAILURE),
            DirectoryError::Internal(_) => (Code::ServerBug, INTERNAL_ERROR),
        };
        self.no(tag, Some(code), text);
    }

    /// The address is blocked for failed logins: refuse and hang up, so further guesses cost
    /// a new connection (which the driver refuses at accept while the block lasts).
    fn blocked(&mut self, tag: Tag) {
        self.no(
            tag,
            Some(Code::Unavailable),
            "Too many failed logins from your address; try again later.",
        );
        self.untagged(Condition::Bye, None, "Too many failed logins.");
        self.close();
    }

    fn logged_in(&mut self, tag: Tag, account: String, mechanism: &'static str) {
        self.timers.clear(Timer::Login);
        self.out.push(Output::Event(Event::LoggedIn {
            account: account.clone(),
            mechanism,
        }));
        self.state = State::Authenticated { account };
        let caps = self.capability_list();
        self.finish(Finish::ok(tag, "Logged in.").with_code(Code::Capability(caps)));
    }

    /// A wrong password (or proof): answered after the tarpit delay.
    fn failed_login(&mut self, tag: Tag, username: String, mechanism: &'static str, now: Instant) {
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
