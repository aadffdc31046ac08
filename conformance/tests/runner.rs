//! The runner: matching, failure reports, substitution, and the in-process clock rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tern_conformance::runner::{run, Outcome, Received, Target, TargetError};
use tern_conformance::suite;
use tern_conformance::transcript::{parse, Proto, Security, Transcript};
use tern_conformance::wire;

/// A server that answers from a script, whatever is sent, and records what was sent.
struct Scripted {
    output: Vec<u8>,
    sent: Vec<Vec<u8>>,
    credentials: Option<(String, String)>,
}

impl Scripted {
    fn new(output: &str) -> Scripted {
        Scripted {
            output: output.as_bytes().to_vec(),
            sent: Vec::new(),
            credentials: None,
        }
    }
}

impl Target for Scripted {
    fn skip_reason(&self, _: &Transcript) -> Option<String> {
        None
    }
    fn credentials(&self) -> Option<(String, String)> {
        self.credentials.clone()
    }
    fn open(&mut self, _: usize, _: Proto) -> Result<(), TargetError> {
        Ok(())
    }
    fn send(&mut self, _: usize, data: &[u8]) -> Result<(), TargetError> {
        self.sent.push(data.to_vec());
        Ok(())
    }
    fn receive(&mut self, _: usize) -> Result<Received, TargetError> {
        Ok(match wire::take_unit(&mut self.output, true) {
            Some(unit) => Received::Unit(unit),
            None => Received::Closed {
                partial: std::mem::take(&mut self.output),
            },
        })
    }
    fn pending(&mut self, _: usize) -> Result<Vec<u8>, TargetError> {
        Ok(std::mem::take(&mut self.output))
    }
    fn start_tls(&mut self, _: usize) -> Result<(), TargetError> {
        Ok(())
    }
    fn close(&mut self, _: usize) -> Result<(), TargetError> {
        Ok(())
    }
    fn advance(&mut self, _: Duration) -> Result<(), TargetError> {
        Ok(())
    }
}

fn transcript(text: &str) -> Transcript {
    parse("imap/t.txt", text).unwrap()
}

fn failure(outcome: Outcome) -> String {
    match outcome {
        Outcome::Fail(f) => f.to_string(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_mismatch_shows_the_line_both_sides_and_the_exchange() {
    let t = transcript(
        "@rfc 9051 6.2.3\n\
         @user alice wonderland\n\
         S: * OK {{text}}\n\
         C: a1 LOGIN {{user}} {{pass}}\n\
         S: a1 OK {{text}}\n",
    );
    let mut target = Scripted::new("* OK hi\r\na1 NO [AUTHENTICATIONFAILED] Nope.\r\n");
    assert_eq!(
        failure(run(&t, &mut target)),
        "imap/t.txt:5: connection main:\n\
         \x20   expected: S: a1 OK {{text}}\n\
         \x20   received: S: a1 NO [AUTHENTICATIONFAILED] Nope.\n\
         \x20 exchange so far:\n\
         \x20   | S: * OK hi\n\
         \x20   | C: a1 LOGIN {{user}} {{pass}}\n\
         \x20   | S: a1 NO [AUTHENTICATIONFAILED] Nope.   <- mismatch\n"
    );
}

#[test]
fn values_are_substituted_and_literal_counts_follow_them() {
    let t = transcript(
        "@rfc 9051 4.3\n\
         @user alice wonderland\n\
         S: * OK\n\
         C: a LOGIN {5}\n\
         S: + go\n\
         C: {{user}} {10+}\n\
         C: {{pass}}\n\
         C: b AUTHENTICATE PLAIN {{sasl-plain}}\n\
         S: a OK\n",
    );
    let mut target = Scripted::new("* OK\r\n+ go\r\na OK\r\n");
    target.credentials = Some(("bob".into(), "pw".into()));
    assert!(matches!(run(&t, &mut target), Outcome::Pass(_)));
    let sent: Vec<String> = target
        .sent
        .iter()
        .map(|s| String::from_utf8(s.clone()).unwrap())
        .collect();
    assert_eq!(
        sent,
        [
            "a LOGIN {3}\r\n",
            "bob {2+}\r\n",
            "pw\r\n",
            "b AUTHENTICATE PLAIN AGJvYgBwdw==\r\n"
        ]
    );
}

#[test]
fn captured_values_must_repeat_and_are_recorded_by_name() {
    let t = transcript(
        "@rfc 9051 6.3.2\n\
         S: * OK [UIDVALIDITY {{uidvalidity}}] {{text}}\n\
         C: a SELECT {{uidvalidity}}\n\
         S: * {{number}} EXISTS, still {{uidvalidity}}\n",
    );
    let mut target = Scripted::new("* OK [UIDVALIDITY 42] ok\r\n* 3 EXISTS, still 42\r\n");
    let Outcome::Pass(record) = run(&t, &mut target) else {
        panic!()
    };
    assert_eq!(target.sent, [b"a SELECT 42\r\n".to_vec()]);
    assert_eq!(
        record,
        "S: * OK [UIDVALIDITY {{uidvalidity}}] ok\n\
         C: a SELECT {{uidvalidity}}\n\
         S: * {{number}} EXISTS, still {{uidvalidity}}\n"
    );
    let mut target = Scripted::new("* OK [UIDVALIDITY 42] ok\r\n* 3 EXISTS, still 43\r\n");
    assert!(failure(run(&t, &mut target)).contains("received: S: * 3 EXISTS, still 43"));
}

#[test]
fn groups_match_in_any_order_and_end_at_the_following_line() {
    let t = parse(
        "pop3/t.txt",
        "@rfc 2449 5\n\
         S: +OK\n\
         S~: USER\n\
         S~: SASL {{caps PLAIN}}\n\
         S*: {{*}}\n\
         S: .\n\
         S: +OK after\n",
    )
    .unwrap();
    let mut target =
        Scripted::new("+OK\r\nTOP\r\nSASL PLAIN\r\nUIDL\r\nUSER\r\n.\r\n+OK after\r\n");
    assert!(matches!(run(&t, &mut target), Outcome::Pass(_)));
    let mut target = Scripted::new("+OK\r\nTOP\r\nSASL PLAIN\r\n.\r\n+OK after\r\n");
    let f = failure(run(&t, &mut target));
    assert!(f.contains("expected: one of\n"), "{f}");
    assert!(f.contains("S~: USER"), "{f}");
    assert!(
        f.contains("received: the server closed the connection"),
        "{f}"
    );
}

#[test]
fn stray_output_after_the_last_line_fails() {
    let t = transcript("@rfc 9051 6.1.2\nS: * OK\n");
    let mut target = Scripted::new("* OK\r\n* BYE extra\r\n");
    let f = failure(run(&t, &mut target));
    assert!(
        f.contains("after the last line, on connection main:\n    expected: nothing more\n    received: S: * BYE extra"),
        "{f}"
    );
}

#[test]
fn set_up_that_cannot_be_done_fails_clearly() {
    let t = transcript(
        "@rfc 9051 6.3.2\n@user alice wonderland\n@mailbox alice Drafts\nS: * OK {{*}}\n",
    );
    // A target without set-up support.
    let f = failure(run(&t, &mut Scripted::new("* OK\r\n")));
    assert!(
        f.starts_with(
            "imap/t.txt:3: set-up failed: @mailbox is not supported by this runner\n  (before any exchange)"
        ),
        "{f}"
    );
    // In-process, into a mailbox that does not exist.
    let t = transcript(
        "@rfc 9051 6.3.2\n@user alice wonderland\n@message alice Nowhere -\nM: Subject: x\nS: * OK {{*}}\n",
    );
    let f = failure(suite::in_process(&t, Security::Plain, usize::MAX));
    assert!(
        f.starts_with("imap/t.txt:3: set-up failed: the store refused it: no such mailbox"),
        "{f}"
    );
}

#[test]
fn in_process_set_up_fills_the_store() {
    let t = transcript(
        "@rfc 9051 6.3.2\n\
         @user alice wonderland\n\
         @mailbox alice Projects\n\
         @message alice Projects - \\Flagged\n\
         M: Subject: x\n\
         M:\n\
         M: x\n\
         S: * OK {{*}}\n\
         C: a LOGIN {{user}} {{pass}}\n\
         S: a OK {{text}}\n\
         C: b STATUS Projects (MESSAGES)\n\
         S: * STATUS Projects (MESSAGES 1)\n\
         S: b OK {{text}}\n",
    );
    let outcome = suite::in_process(&t, Security::Plain, usize::MAX);
    assert!(matches!(outcome, Outcome::Pass(_)), "{outcome:?}");
}

#[test]
fn in_process_short_timers_pass_by_themselves_long_ones_need_advance() {
    // The failed-login delay (2 s) passes while the runner waits for the answer.
    let t = transcript(
        "@rfc 9051 6.2.3\n\
         S: * OK {{*}}\n\
         C: a LOGIN nobody nothing\n\
         S: a NO [AUTHENTICATIONFAILED] {{text}}\n",
    );
    assert!(matches!(
        suite::in_process(&t, Security::Tls, usize::MAX),
        Outcome::Pass(_)
    ));
    // The login timeout (1 min) does not.
    let t = transcript("@rfc 9051 5.4\nS: * OK {{*}}\nS: * BYE {{text}}\n");
    let f = failure(suite::in_process(&t, Security::Tls, usize::MAX));
    assert!(
        f.contains(
            "received: the server sent nothing and waits for input (its next timer is 60s away"
        ),
        "{f}"
    );
    let t = transcript("@rfc 9051 5.4\nS: * OK {{*}}\n@advance 1m\nS: * BYE {{text}}\n@closed\n");
    assert!(matches!(
        suite::in_process(&t, Security::Tls, usize::MAX),
        Outcome::Pass(_)
    ));
}

#[test]
fn silent_sees_output_that_should_not_be_there() {
    let t = transcript("@rfc 9051 6.1.2\nS: * OK {{*}}\nC: a NOOP\n@silent\n");
    let f = failure(suite::in_process(&t, Security::Tls, usize::MAX));
    assert!(
        f.contains("expected: nothing more (@silent)\n    received: S: a OK NOOP completed."),
        "{f}"
    );
}
