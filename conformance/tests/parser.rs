//! The transcript parser: what it builds, and what it says about malformed transcripts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tern_conformance::pattern::{Class, Hole, PatPiece};
use tern_conformance::transcript::{
    parse, parse_duration, Action, MessageSource, Piece, Proto, RfcRef, Security, Setup, Var,
};

fn sends(text: &str) -> Vec<Vec<Piece>> {
    parse("imap/t.txt", text)
        .unwrap()
        .steps
        .into_iter()
        .filter_map(|s| match s.action {
            Action::Send { data, .. } => Some(data),
            _ => None,
        })
        .collect()
}

fn bytes(s: &str) -> Piece {
    Piece::Bytes(s.as_bytes().to_vec())
}

#[test]
fn header_connections_and_steps() {
    let t = parse(
        "pop3/x.txt",
        "# a comment\n\
         @rfc 1939 7\n\
         @rfc 2449 5\n\
         @security tls\n\
         @known-gap not yet\n\
         @user alice wonderland\n\
         \n\
         @open a\n\
         S: +OK {{text}}\n\
         @open b imap\n\
         S: * OK\n\
         @on a\n\
         C: USER {{user}}\n\
         @advance 1h30m\n\
         @silent\n\
         @close\n",
    )
    .unwrap();
    assert_eq!(t.protocol, Proto::Pop3);
    assert_eq!(
        t.rfcs,
        vec![
            RfcRef {
                rfc: 1939,
                section: "7".into()
            },
            RfcRef {
                rfc: 2449,
                section: "5".into()
            }
        ]
    );
    assert_eq!(t.security, Some(Security::Tls));
    assert_eq!(t.securities(), vec![Security::Tls]);
    assert_eq!(t.known_gap.as_deref(), Some("not yet"));
    assert_eq!(t.users[0].name, "alice");
    assert_eq!(t.connections[1].protocol, Proto::Imap);
    assert!(t.uses_clock());
    let kinds: Vec<String> = t
        .steps
        .iter()
        .map(|s| match &s.action {
            Action::Open { conn } => format!("{}:open {conn}", s.line),
            Action::Send { conn, .. } => format!("{}:send {conn}", s.line),
            Action::Expect { conn, .. } => format!("{}:expect {conn}", s.line),
            Action::Advance(d) => format!("{}:advance {}", s.line, d.as_secs()),
            Action::Silent { conn } => format!("{}:silent {conn}", s.line),
            Action::Close { conn } => format!("{}:close {conn}", s.line),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "8:open 0",
            "9:expect 0",
            "10:open 1",
            "11:expect 1",
            "13:send 0",
            "14:advance 5400",
            "15:silent 0",
            "16:close 0"
        ]
    );
}

#[test]
fn the_first_line_opens_main_and_the_folder_gives_the_protocol() {
    let t = parse("imap/x.txt", "@rfc 9051 6.1.2\nS: * OK\n").unwrap();
    assert_eq!(t.protocol, Proto::Imap);
    assert_eq!(t.connections.len(), 1);
    assert_eq!(t.connections[0].name, "main");
    assert_eq!(t.securities(), vec![Security::Plain, Security::Tls]);
    assert!(!t.uses_clock());
}

#[test]
fn server_lines_become_patterns() {
    let t = parse(
        "imap/x.txt",
        "@rfc 9051 6.3.2\n\
         S: * OK [UIDVALIDITY {{uidvalidity}}] {{text}}\n\
         S: * {{n:number}} EXISTS {{uidvalidity}} {{n}}\n",
    )
    .unwrap();
    let Action::Expect { pattern, .. } = &t.steps[1].action else {
        panic!("{:?}", t.steps[1]);
    };
    assert_eq!(
        pattern,
        &vec![
            PatPiece::Exact(b"* OK [UIDVALIDITY ".to_vec()),
            PatPiece::Hole(Hole {
                class: Class::Number,
                bind: Some("uidvalidity".into())
            }),
            PatPiece::Exact(b"] ".to_vec()),
            PatPiece::Hole(Hole {
                class: Class::Text,
                bind: None
            }),
            PatPiece::Exact(b"\r\n".to_vec()),
        ]
    );
    let Action::Expect { pattern, .. } = &t.steps[2].action else {
        panic!();
    };
    assert_eq!(
        pattern[3],
        PatPiece::Var(Var::Captured("uidvalidity".into()))
    );
    assert_eq!(pattern[5], PatPiece::Var(Var::Captured("n".into())));
}

#[test]
fn a_server_literal_spans_lines_and_is_one_unit() {
    let t = parse(
        "imap/x.txt",
        "@rfc 9051 7.5.2\n\
         S: * 1 FETCH (BODY[] {7}\n\
         S: ab\n\
         S: cd) {{*}}\n\
         S: a OK\n",
    )
    .unwrap();
    let expects: Vec<_> = t
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Expect {
                pattern, source, ..
            } => Some((s.line, pattern, source.len())),
            _ => None,
        })
        .collect();
    assert_eq!(expects.len(), 2);
    assert_eq!(expects[0].0, 2);
    assert_eq!(expects[0].2, 3);
    assert_eq!(
        expects[0].1[0],
        PatPiece::Exact(b"* 1 FETCH (BODY[] {7}\r\nab\r\ncd) ".to_vec())
    );
}

#[test]
fn client_lines_send_exact_octets() {
    let flat: Vec<Vec<u8>> = sends(
        "@rfc 9051 4.3\n\
         C: a NOOP\n\
         C+: b {{hex 0d0a}}{{repeat 3 xy}}\n\
         C:\n",
    )
    .into_iter()
    .map(|pieces| {
        pieces
            .into_iter()
            .flat_map(|p| match p {
                Piece::Bytes(b) => b,
                other => panic!("{other:?}"),
            })
            .collect()
    })
    .collect();
    assert_eq!(
        flat,
        [
            b"a NOOP\r\n".to_vec(),
            b"b \r\nxyxyxy".to_vec(),
            b"\r\n".to_vec()
        ]
    );
}

#[test]
fn literal_counts_follow_values_that_a_remote_run_substitutes() {
    let sent = sends(
        "@rfc 9051 4.3\n\
         @user alice wonderland\n\
         C: a LOGIN {5}\n\
         S: + go\n\
         C: {{user}} {10+}\n\
         C: {{pass}}\n",
    );
    assert_eq!(
        sent[0],
        vec![
            bytes("a LOGIN {"),
            Piece::LiteralLength(vec![Piece::Var(Var::User)]),
            bytes("}\r\n")
        ]
    );
    assert_eq!(
        sent[1],
        vec![
            Piece::Var(Var::User),
            bytes(" {"),
            Piece::LiteralLength(vec![Piece::Var(Var::Pass)]),
            bytes("+}\r\n"),
        ]
    );
    // Literal bodies without values keep their counts as written.
    let sent = sends(
        "@rfc 9051 4.3\n\
         C: a LOGIN {7}\n\
         S: + go\n\
         C: ab\n\
         C: cd x\n",
    );
    assert_eq!(
        sent[0],
        vec![bytes("a LOGIN {"), bytes("7"), bytes("}\r\n")]
    );
}

#[test]
fn a_refused_synchronising_literal_is_never_sent() {
    let t = parse(
        "imap/x.txt",
        "@rfc 9051 7.1\n\
         C: a LOGIN {9000}\n\
         S: a NO [TOOBIG] too big\n\
         C: b NOOP {3}\n\
         S: + go\n\
         C: abc\n",
    )
    .unwrap();
    assert_eq!(t.steps.len(), 6);
}

#[test]
fn groups_collect_consecutive_lines() {
    let t = parse(
        "pop3/x.txt",
        "@rfc 2449 5\n\
         C: CAPA\n\
         S: +OK\n\
         S~: USER\n\
         # comments do not end a group\n\
         S~: SASL {{caps PLAIN}}\n\
         S*: {{*}}\n\
         S: .\n",
    )
    .unwrap();
    let Action::ExpectGroup { members, .. } = &t.steps[3].action else {
        panic!("{:?}", t.steps[3]);
    };
    let shape: Vec<(bool, &str)> = members
        .iter()
        .map(|m| (m.repeat, m.source.as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            (false, "S~: USER"),
            (false, "S~: SASL {{caps PLAIN}}"),
            (true, "S*: {{*}}")
        ]
    );
}

#[test]
fn set_up_directives_are_parsed_for_later() {
    let t = parse(
        "imap/x.txt",
        "@rfc 9051 6.3.2\n\
         @user alice wonderland\n\
         @mailbox alice Saved Drafts\n\
         @message alice INBOX messages/one.eml \\Seen \\Flagged\n\
         @message alice INBOX -\n\
         M: Subject: hi\n\
         M:\n\
         M: body\n\
         S: * OK\n",
    )
    .unwrap();
    assert_eq!(
        t.setup[0],
        Setup::Mailbox {
            line: 3,
            user: "alice".into(),
            name: "Saved Drafts".into()
        }
    );
    assert!(matches!(
        &t.setup[1],
        Setup::Message { flags, source: MessageSource::File { path, .. }, .. }
            if flags == &["\\Seen", "\\Flagged"] && path.to_str() == Some("messages/one.eml")
    ));
    assert!(matches!(
        &t.setup[2],
        Setup::Message { source: MessageSource::Inline(text), .. }
            if text == b"Subject: hi\r\n\r\nbody\r\n"
    ));
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
    assert_eq!(parse_duration("1h30m5s"), Some(Duration::from_secs(5405)));
    assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_duration("5"), None);
    assert_eq!(parse_duration("m"), None);
    assert_eq!(parse_duration("2d"), None);
    assert_eq!(parse_duration(""), None);
}

/// Each malformed transcript fails at the right line, saying what is wrong.
#[test]
fn error_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "@rfc 9051 6.1.1\n@frobnicate\n",
            "imap/x.txt:2: unknown directive @frobnicate (see conformance/README.md for the list)",
        ),
        (
            "S: * OK\n",
            "imap/x.txt:1: no @rfc line: every transcript names the RFC and section it covers",
        ),
        (
            "@rfc 9051\n",
            "imap/x.txt:1: @rfc expects an RFC number and a section: @rfc 9051 6.1.1, got \"9051\"",
        ),
        (
            "@rfc 9051 6.1.1\nX: hello\n",
            "imap/x.txt:2: expected `C: `, `C+: `, `S: `, `S~: `, `S*: `, `M: `, `@directive` or \
             `# comment`, found \"X: hello\"",
        ),
        (
            "@rfc 9051 6.1.1\nS: * OK {{text\n",
            "imap/x.txt:2: placeholder opened with {{ is not closed with }}",
        ),
        (
            "@rfc 9051 6.1.1\nS: * OK {{nonsense}}\n",
            "imap/x.txt:2: unknown placeholder {{nonsense}} (not a class, a variable, or a value \
             captured earlier)",
        ),
        (
            "@rfc 9051 6.1.1\nS: * OK\nC: a NOOP {{*}}\n",
            "imap/x.txt:3: {{*}} cannot be used in C: lines (it matches server output; clients \
             send exact octets)",
        ),
        (
            "@rfc 9051 6.1.1\nS: * OK\nC: a LOGIN {{user}} x\n",
            "imap/x.txt:3: {{user}} needs a @user line",
        ),
        (
            "@rfc 9051 6.1.1\n@user alice wonderland\nS: * OK\nC: a LOGIN {9}\nS: + go\nC: abc\n",
            "imap/x.txt:4: the literal {9} announced here lacks 4 octets when the transcript ends",
        ),
        (
            "@rfc 9051 6.1.1\n@user alice wonderland\nS: * OK\nC: a LOGIN {3+}\nC: {{user}}\n",
            "imap/x.txt:5: {{user}} runs past the end of the literal it is in",
        ),
        (
            "@rfc 9051 6.1.1\n@user alice wonderland\nC+: a LOGIN {5\nC: }\nS: + go\nC: {{user}}\n",
            "imap/x.txt:6: a literal whose body uses {{user}} must be announced within one line \
             piece, so that its length can follow the value",
        ),
        (
            "@rfc 9051 6.1.1\n@known-gap\n",
            "imap/x.txt:2: @known-gap needs a reason",
        ),
        (
            "@rfc 9051 6.1.1\nS: * OK\n@user alice wonderland\n",
            "imap/x.txt:3: @user must come before the first connection line",
        ),
        (
            "@rfc 9051 6.1.1\n@on nowhere\n",
            "imap/x.txt:2: no connection named \"nowhere\" (open it with @open)",
        ),
        (
            "@rfc 9051 6.1.1\n@open a\n@open a\n",
            "imap/x.txt:3: connection \"a\" is already open",
        ),
        (
            "@rfc 9051 6.1.1\n@open a/b\n",
            "imap/x.txt:2: connection names are letters, digits, '-' and '_', got \"a/b\"",
        ),
        (
            "@rfc 9051 6.1.1\nS: * OK\nC: CAPA\nS*: {{*}}\n",
            "imap/x.txt:4: an S*: group must be followed by an S: line on the same connection, \
             which ends it",
        ),
        (
            "@rfc 9051 6.1.1\nS~: * 1 FETCH (BODY[] {5}\n",
            "imap/x.txt:2: S~: and S*: lines cannot announce literals; use S: lines",
        ),
        (
            "@rfc 9051 6.1.1\nM: hello\n",
            "imap/x.txt:2: M: lines belong right after `@message USER MAILBOX -`",
        ),
        (
            "@rfc 9051 6.1.1\n@security sometimes\n",
            "imap/x.txt:2: @security expects plain, tls or any, got \"sometimes\"",
        ),
        (
            "@rfc 9051 6.1.1\nS: * 1 FETCH (BODY[] {5}\nS: ab\nC: a NOOP\n",
            "imap/x.txt:4: the server literal announced on line 2 is not complete",
        ),
        (
            "@rfc 9051 6.1.1\n@starttls\n",
            "imap/x.txt:2: @starttls needs a connection; none is open yet",
        ),
        (
            "@rfc 9051 6.1.1\nS: * OK\n@closed\nC: a NOOP\n",
            "imap/x.txt:4: connection \"main\" was closed earlier",
        ),
        (
            "@rfc 9051 6.1.1\n@advance soon\n",
            "imap/x.txt:2: @advance expects a duration such as 30m, 2s, 1500ms or 1h30m, got \
             \"soon\"",
        ),
        (
            "@rfc 9051 6.1.1\nS: {{hex 0}}\n",
            "imap/x.txt:2: bad placeholder {{hex 0}}: expected pairs of hex digits: {{hex 0d0a}}",
        ),
        (
            "@rfc 9051 6.1.1\nS: * OK [UIDVALIDITY {{uv:number}}] {{uv:number}}\n",
            "imap/x.txt:2: bad placeholder {{uv:number}}: this name was captured already; refer \
             to it as {{name}}",
        ),
        (
            "@rfc 9051 6.1.1\nS: * OK\nC: a SELECT {{uv}}\n",
            "imap/x.txt:3: unknown placeholder {{uv}} (not a class, a variable, or a value \
             captured earlier)",
        ),
        (
            "@rfc 9051 6.1.1\n@mailbox bob Drafts\n",
            "imap/x.txt:2: @mailbox expects an account declared earlier with @user, got \"bob\"",
        ),
        (
            "@rfc 9051 6.1.1\n@user alice wonderland\n@message alice INBOX\n",
            "imap/x.txt:3: @message expects a user, a mailbox, a file or `-` (M: lines follow), \
             then flags: @message alice INBOX messages/plain.eml \\Seen, got \"alice INBOX\"",
        ),
    ];
    for (text, expected) in cases {
        let got = parse("imap/x.txt", text)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(&got, expected, "for transcript {text:?}");
    }
    assert_eq!(
        parse("misc/x.txt", "@rfc 9051 6.1.1\nS: * OK\n")
            .unwrap_err()
            .to_string(),
        "misc/x.txt:2: cannot tell the protocol: put the file under imap/ or pop3/, or add @protocol"
    );
}
