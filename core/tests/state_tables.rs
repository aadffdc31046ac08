//! Exhaustive (state × command) tables for both protocols, checked against the RFC state
//! diagrams and committed as `docs/state-tables.md`.
//!
//! Every command is sent, with valid arguments, to a fresh session in every state (the
//! protocol states of RFC 9051 §3 and RFC 1939 §3, and the sub-states in which a line is not a
//! command: an AUTHENTICATE/AUTH exchange, IDLE, a STARTTLS/STLS handshake, after LOGOUT/QUIT).
//! What the session does is classified, compared with what the RFC rules below say, and
//! rendered as a table; the test fails when the two disagree, or when the committed file
//! differs from the rendering (`TERN_UPDATE_STATE_TABLES=1` rewrites it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use tern_core::drive::{pump, Blocked};
use tern_core::imap::response::{Response, StatusResponse};
use tern_core::imap::response_decode::parse_response;
use tern_core::store::NewMessage;
use tern_core::{
    Input, MemDirectory, MemStore, MisuseError, Protocol, Session, SessionConfig, StorageOp, Store,
    Transport,
};

const MESSAGE: &str = "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n";

struct Conn {
    session: Session,
    store: MemStore,
    directory: MemDirectory,
    now: Instant,
    out: Vec<u8>,
    blocked: Blocked,
}

impl Conn {
    fn new(protocol: Protocol, transport: Transport) -> Conn {
        let mut store = MemStore::new();
        let mut directory = MemDirectory::new();
        directory.add_user("alice", "pw");
        store
            .execute(StorageOp::Append {
                account: "alice".into(),
                name: "INBOX".into(),
                messages: vec![NewMessage {
                    flags: Vec::new(),
                    internal_date: None,
                    data: Bytes::from_static(MESSAGE.as_bytes()),
                }],
            })
            .unwrap();
        // Like a public listener: plaintext passwords only over TLS (LOGINDISABLED otherwise).
        let config = SessionConfig::new(protocol, transport);
        #[allow(clippy::disallowed_methods)] // One real origin; the clock is virtual after it.
        let now = Instant::now();
        let mut c = Conn {
            session: Session::new(config, now),
            store,
            directory,
            now,
            out: Vec::new(),
            blocked: Blocked::Close,
        };
        c.run();
        c.out.clear();
        c
    }

    /// Runs the session; a deadline within half a minute (a failed-login delay) is waited out,
    /// as a client would, but not the login timeout (a minute).
    fn run(&mut self) {
        loop {
            let out = &mut self.out;
            self.blocked = pump(
                &mut self.session,
                &mut self.store,
                &mut self.directory,
                self.now,
                &mut |b| out.extend_from_slice(b),
            )
            .unwrap();
            match self.blocked {
                Blocked::Until(at) if at <= self.now + Duration::from_secs(30) => {
                    self.now = at;
                    self.session
                        .handle_input(Input::Timeout { now: self.now })
                        .unwrap();
                }
                _ => return,
            }
        }
    }

    fn send(&mut self, data: &str) -> Result<(), MisuseError> {
        self.session.handle_input(Input::Bytes {
            now: self.now,
            data: data.as_bytes(),
        })?;
        self.run();
        Ok(())
    }

    /// Sends set-up input and checks it got the expected start of an answer.
    fn setup(&mut self, data: &str, want: &str) {
        self.send(data).unwrap();
        let got = String::from_utf8_lossy(&self.out).into_owned();
        assert!(
            got.contains(want),
            "set-up {data:?} answered {got:?}, want {want:?}"
        );
        self.out.clear();
    }

    fn finish_tls(&mut self) {
        self.session
            .handle_input(Input::TlsEstablished {
                now: self.now,
                channel_bindings: Default::default(),
            })
            .unwrap();
        self.run();
    }
}

// ------------------------------------------------------------------------------------ IMAP

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ImapState {
    NotAuthPlain,
    NotAuthTls,
    Authenticate,
    StartTls,
    Authenticated,
    Selected,
    Examined,
    Idle,
    LoggedOut,
}

const IMAP_STATES: [(ImapState, &str); 9] = [
    (
        ImapState::NotAuthPlain,
        "not authenticated, plaintext (STARTTLS offered, LOGINDISABLED)",
    ),
    (ImapState::NotAuthTls, "not authenticated, TLS"),
    (ImapState::Authenticate, "AUTHENTICATE exchange (after `+`)"),
    (ImapState::StartTls, "STARTTLS handshake (after OK)"),
    (ImapState::Authenticated, "authenticated"),
    (ImapState::Selected, "selected (SELECT)"),
    (ImapState::Examined, "selected (EXAMINE, read-only)"),
    (ImapState::Idle, "IDLE (after `+`)"),
    (ImapState::LoggedOut, "logout (after LOGOUT)"),
];

/// Which RFC 9051 §6 group a command belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    /// §6.1: any state.
    Any,
    /// §6.2: not authenticated.
    NotAuth,
    /// §6.3: authenticated (and selected, §6.4: "in addition to ... the authenticated state
    /// commands"), except ENABLE (RFC 5161 §3.1: authenticated state only).
    Auth,
    /// §6.4: selected.
    Selected,
    /// Not advertised by tern: BAD everywhere.
    Unsupported,
}

/// (name, group, the command after the tag).
const IMAP_COMMANDS: &[(&str, Group, &str)] = &[
    ("CAPABILITY", Group::Any, "CAPABILITY"),
    ("NOOP", Group::Any, "NOOP"),
    ("LOGOUT", Group::Any, "LOGOUT"),
    ("ID", Group::Any, "ID NIL"),
    ("STARTTLS", Group::NotAuth, "STARTTLS"),
    (
        "AUTHENTICATE",
        Group::NotAuth,
        "AUTHENTICATE PLAIN AGFsaWNlAHB3",
    ),
    ("LOGIN", Group::NotAuth, "LOGIN alice pw"),
    ("ENABLE", Group::Auth, "ENABLE IMAP4rev2"),
    ("SELECT", Group::Auth, "SELECT INBOX"),
    ("EXAMINE", Group::Auth, "EXAMINE INBOX"),
    ("NAMESPACE", Group::Auth, "NAMESPACE"),
    ("CREATE", Group::Auth, "CREATE New"),
    ("DELETE", Group::Auth, "DELETE Junk"),
    ("RENAME", Group::Auth, "RENAME Archive Old"),
    ("SUBSCRIBE", Group::Auth, "SUBSCRIBE Drafts"),
    ("UNSUBSCRIBE", Group::Auth, "UNSUBSCRIBE Drafts"),
    ("LIST", Group::Auth, "LIST \"\" *"),
    ("LSUB", Group::Auth, "LSUB \"\" *"),
    ("STATUS", Group::Auth, "STATUS INBOX (MESSAGES)"),
    ("APPEND", Group::Auth, "APPEND Trash {5+}\r\nhello"),
    ("IDLE", Group::Auth, "IDLE\r\nDONE"),
    ("CHECK", Group::Selected, "CHECK"),
    ("CLOSE", Group::Selected, "CLOSE"),
    ("UNSELECT", Group::Selected, "UNSELECT"),
    ("UNAUTHENTICATE", Group::Auth, "UNAUTHENTICATE"),
    ("EXPUNGE", Group::Selected, "EXPUNGE"),
    ("UID EXPUNGE", Group::Selected, "UID EXPUNGE 1"),
    ("SEARCH", Group::Selected, "SEARCH ALL"),
    ("FETCH", Group::Selected, "FETCH 1 FLAGS"),
    ("STORE", Group::Selected, "STORE 1 +FLAGS (\\Seen)"),
    ("COPY", Group::Selected, "COPY 1 Trash"),
    ("MOVE", Group::Selected, "MOVE 1 Trash"),
    ("UID SEARCH", Group::Selected, "UID SEARCH ALL"),
    ("UID FETCH", Group::Selected, "UID FETCH 1 FLAGS"),
    ("UID STORE", Group::Selected, "UID STORE 1 +FLAGS (\\Seen)"),
    ("UID COPY", Group::Selected, "UID COPY 1 Trash"),
    ("UID MOVE", Group::Selected, "UID MOVE 1 Trash"),
    ("SORT", Group::Selected, "SORT (DATE) UTF-8 ALL"),
    ("UID SORT", Group::Selected, "UID SORT (SUBJECT) UTF-8 ALL"),
    ("REPLACE", Group::Selected, "REPLACE 1 Trash {5+}\r\nhello"),
    (
        "UID REPLACE",
        Group::Selected,
        "UID REPLACE 1 Trash {5+}\r\nhello",
    ),
    ("GETQUOTAROOT", Group::Unsupported, "GETQUOTAROOT INBOX"),
];

/// What the RFCs say a session in `state` does with a valid `command` of `group`.
fn imap_expected(state: ImapState, name: &str, group: Group) -> String {
    use ImapState as S;
    match state {
        // RFC 9051 §6.2.2: every line is the client's response until the exchange ends.
        S::Authenticate => return "SASL data".into(),
        // RFC 2177 §3: the only valid line is DONE; anything else ends IDLE with BAD.
        S::Idle => return "ends IDLE: BAD".into(),
        // RFC 9051 §6.2.1: nothing received before the handshake may be acted on after it.
        S::StartTls => return "ignored".into(),
        // RFC 9051 §3.4: the connection is closed; nothing more is read.
        S::LoggedOut => return "closed".into(),
        _ => {}
    }
    let authenticated = matches!(state, S::Authenticated | S::Selected | S::Examined);
    let selected = matches!(state, S::Selected | S::Examined);
    let ok = match group {
        Group::Any => true,
        Group::NotAuth => {
            if authenticated {
                false
            } else if name == "STARTTLS" {
                // §6.2.1: only where offered, i.e. not over TLS.
                state == S::NotAuthPlain
            } else if state == S::NotAuthPlain {
                // §6.2.3 LOGINDISABLED, §7.1 PRIVACYREQUIRED: refused by policy, not state.
                return "NO [PRIVACYREQUIRED]".into();
            } else {
                true
            }
        }
        Group::Auth => authenticated && !(name == "ENABLE" && selected),
        Group::Selected => selected,
        Group::Unsupported => false,
    };
    if !ok {
        return "BAD".into();
    }
    // §6.3.3: a read-only mailbox refuses changes with NO.
    if state == S::Examined
        && matches!(
            name,
            "STORE"
                | "UID STORE"
                | "EXPUNGE"
                | "UID EXPUNGE"
                | "MOVE"
                | "UID MOVE"
                | "REPLACE"
                | "UID REPLACE"
        )
    {
        return "NO [CANNOT]".into();
    }
    "OK".into()
}

fn imap_in(state: ImapState) -> Conn {
    use ImapState as S;
    let plain = matches!(state, S::NotAuthPlain | S::StartTls);
    let mut c = Conn::new(
        Protocol::Imap,
        if plain {
            Transport::StartTlsAvailable
        } else {
            Transport::ImplicitTls
        },
    );
    match state {
        S::NotAuthPlain | S::NotAuthTls => {}
        S::Authenticate => c.setup("s AUTHENTICATE PLAIN\r\n", "+ "),
        S::StartTls => {
            c.setup("s STARTTLS\r\n", "s OK");
            assert_eq!(c.blocked, Blocked::StartTls);
        }
        S::Authenticated | S::Selected | S::Examined | S::Idle | S::LoggedOut => {
            c.setup("s LOGIN alice pw\r\n", "s OK");
            match state {
                S::Selected => c.setup("s SELECT INBOX\r\n", "s OK [READ-WRITE]"),
                S::Examined => c.setup("s EXAMINE INBOX\r\n", "s OK [READ-ONLY]"),
                S::Idle => {
                    c.setup("s SELECT INBOX\r\n", "s OK");
                    c.setup("s IDLE\r\n", "+ ");
                }
                S::LoggedOut => {
                    c.setup("s LOGOUT\r\n", "s OK");
                    assert_eq!(c.blocked, Blocked::Close);
                }
                _ => {}
            }
        }
    }
    c
}

fn imap_observed(state: ImapState, command: &str) -> String {
    let mut c = imap_in(state);
    if c.send(&format!("x {command}\r\n")) == Err(MisuseError::Closed) {
        return "closed".into();
    }
    if state == ImapState::StartTls {
        c.finish_tls();
        return if c.out.is_empty() {
            "ignored".into()
        } else {
            format!("answered {:?}", String::from_utf8_lossy(&c.out))
        };
    }
    let mut at = 0;
    while at < c.out.len() {
        let Ok((r, used)) = parse_response(&c.out[at..]) else {
            return format!("unparsable {:?}", String::from_utf8_lossy(&c.out[at..]));
        };
        at += used;
        let Response::Status(StatusResponse {
            tag: Some(tag),
            condition,
            code,
            ..
        }) = r
        else {
            continue;
        };
        let mut label = format!("{condition:?}").to_uppercase();
        if let Some(code) = code.filter(|_| label == "NO") {
            let code = format!("{code:?}").to_uppercase();
            label = format!("{label} [{}]", code.split('(').next().unwrap_or_default());
        }
        return match tag.as_bytes() {
            b"x" => label,
            b"s" if state == ImapState::Authenticate => "SASL data".into(),
            b"s" if state == ImapState::Idle => format!("ends IDLE: {label}"),
            other => format!("{label} for tag {}", String::from_utf8_lossy(other)),
        };
    }
    format!("no answer: {:?}", String::from_utf8_lossy(&c.out))
}

// ------------------------------------------------------------------------------------ POP3

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PopState {
    AuthPlain,
    AuthTls,
    AfterUser,
    Auth,
    Stls,
    Transaction,
    Closed,
}

const POP3_STATES: [(PopState, &str); 7] = [
    (
        PopState::AuthPlain,
        "AUTHORIZATION, plaintext (STLS offered, no plaintext passwords)",
    ),
    (PopState::AuthTls, "AUTHORIZATION, TLS"),
    (PopState::AfterUser, "AUTHORIZATION after USER"),
    (PopState::Auth, "AUTH exchange (after `+`)"),
    (PopState::Stls, "STLS handshake (after +OK)"),
    (PopState::Transaction, "TRANSACTION"),
    (PopState::Closed, "after QUIT (UPDATE, closed)"),
];

/// (command, whether RFC 1939/2449/2595/5034 allow it in AUTHORIZATION, in TRANSACTION).
const POP3_COMMANDS: &[(&str, bool, bool)] = &[
    ("CAPA", true, true),
    ("QUIT", true, true),
    ("USER alice", true, false),
    ("PASS pw", true, false),
    ("APOP alice c4c9334bac560ecc979e58001b3e22fb", true, false),
    ("AUTH PLAIN AGFsaWNlAHB3", true, false),
    ("STLS", true, false),
    ("STAT", false, true),
    ("LIST", false, true),
    ("RETR 1", false, true),
    ("DELE 1", false, true),
    ("NOOP", false, true),
    ("RSET", false, true),
    ("TOP 1 0", false, true),
    ("UIDL", false, true),
];

fn pop3_expected(state: PopState, command: &str, in_auth: bool, in_trans: bool) -> String {
    use PopState as S;
    let keyword = command.split(' ').next().unwrap_or_default();
    match state {
        // RFC 5034 §4: each line is a response of the exchange (here not valid base64 or not
        // a valid PLAIN message, so the exchange fails).
        S::Auth => return "SASL data: -ERR".into(),
        // RFC 2595 §4: input before the handshake is discarded.
        S::Stls => return "ignored".into(),
        S::Closed => return "closed".into(),
        _ => {}
    }
    let allowed = if state == S::Transaction {
        in_trans
    } else {
        in_auth
    };
    if !allowed {
        return "-ERR".into();
    }
    match (state, keyword) {
        // RFC 1939 §7: APOP is optional; tern keeps no plaintext-equivalent secrets.
        (_, "APOP") => "-ERR".into(),
        // RFC 2595 §4: STLS only where offered (not over TLS).
        (S::AuthTls | S::AfterUser, "STLS") => "-ERR".into(),
        // RFC 1939 §7: PASS only right after a successful USER.
        (S::AuthPlain | S::AuthTls, "PASS") => "-ERR".into(),
        // RFC 2595 §2 / RFC 5034 §4: no plaintext passwords without TLS.
        (S::AuthPlain, "USER" | "AUTH") => "-ERR [AUTH]".into(),
        _ => "+OK".into(),
    }
}

fn pop3_in(state: PopState) -> Conn {
    use PopState as S;
    let plain = matches!(state, S::AuthPlain | S::Stls);
    let mut c = Conn::new(
        Protocol::Pop3,
        if plain {
            Transport::StartTlsAvailable
        } else {
            Transport::ImplicitTls
        },
    );
    match state {
        S::AuthPlain | S::AuthTls => {}
        S::AfterUser => c.setup("USER alice\r\n", "+OK"),
        S::Auth => c.setup("AUTH PLAIN\r\n", "+ "),
        S::Stls => {
            c.setup("STLS\r\n", "+OK");
            assert_eq!(c.blocked, Blocked::StartTls);
        }
        S::Transaction | S::Closed => {
            c.setup("USER alice\r\nPASS pw\r\n", "+OK Logged in");
            if state == S::Closed {
                c.setup("QUIT\r\n", "+OK");
                assert_eq!(c.blocked, Blocked::Close);
            }
        }
    }
    c
}

fn pop3_observed(state: PopState, command: &str) -> String {
    let mut c = pop3_in(state);
    if c.send(&format!("{command}\r\n")) == Err(MisuseError::Closed) {
        return "closed".into();
    }
    if state == PopState::Stls {
        c.finish_tls();
        return if c.out.is_empty() {
            "ignored".into()
        } else {
            format!("answered {:?}", String::from_utf8_lossy(&c.out))
        };
    }
    let out = String::from_utf8_lossy(&c.out).into_owned();
    let first = out.lines().next().unwrap_or_default();
    let label = if first.starts_with("+OK") {
        "+OK".to_string()
    } else if first.starts_with("-ERR [") {
        first
            .split(']')
            .next()
            .map(|s| format!("{s}]"))
            .unwrap_or_default()
    } else if first.starts_with("-ERR") {
        "-ERR".into()
    } else {
        format!("no answer: {out:?}")
    };
    if state == PopState::Auth && label.starts_with("-ERR") {
        return "SASL data: -ERR".into();
    }
    label
}

// ------------------------------------------------------------------------------------ the table

fn render() -> (String, Vec<String>) {
    let mut mismatches = Vec::new();
    let mut doc = String::new();
    doc.push_str(
        "# Session state tables\n\n\
         Generated by `core/tests/state_tables.rs`; do not edit. Each command is sent with valid \
         arguments to a fresh session in each state (an INBOX holding one message; plaintext \
         passwords allowed only over TLS, as on a public listener). The test checks every cell \
         against the RFC rules written in it and fails if this file differs from what it \
         renders; `TERN_UPDATE_STATE_TABLES=1 cargo test -p tern-core --test state_tables` \
         rewrites the file.\n\n\
         Cells: `OK`/`NO [code]`/`BAD`, `+OK`/`-ERR [code]` — the command's answer (`BAD` and \
         a state `-ERR` mean \"not valid in this state\"; `NO`/`-ERR [code]` a refusal by \
         policy); `SASL data` — the line was taken as the client's SASL response, not as a \
         command; `ends IDLE: BAD` — anything but DONE ends IDLE; `ignored` — discarded, \
         because nothing sent before a TLS handshake may be acted on after it; `closed` — the \
         session reads nothing more.\n\n",
    );
    doc.push_str(
        "## IMAP (RFC 9051 §3, §6; RFC 2177 IDLE; RFC 5161 ENABLE; RFC 8437 UNAUTHENTICATE)\n\n\
         Any state: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971). Not authenticated: STARTTLS (where \
         offered), AUTHENTICATE, LOGIN (NO [PRIVACYREQUIRED] under LOGINDISABLED). Authenticated, \
         and also selected: SELECT, EXAMINE, NAMESPACE, CREATE, DELETE, RENAME, SUBSCRIBE, \
         UNSUBSCRIBE, LIST, LSUB, STATUS, APPEND, IDLE, UNAUTHENTICATE (back to not \
         authenticated); ENABLE in the authenticated state only. \
         Selected: CHECK, CLOSE, UNSELECT, EXPUNGE, SEARCH, FETCH, STORE, COPY, MOVE and their \
         UID forms; a read-only (EXAMINEd) mailbox answers changes with NO [CANNOT]. Extensions \
         tern does not advertise are BAD everywhere.\n\n",
    );
    doc.push_str("| command |");
    for (_, title) in IMAP_STATES {
        doc.push_str(&format!(" {title} |"));
    }
    doc.push_str("\n|---|");
    doc.push_str(&"---|".repeat(IMAP_STATES.len()));
    doc.push('\n');
    for (name, group, command) in IMAP_COMMANDS {
        doc.push_str(&format!("| {name} |"));
        for (state, title) in IMAP_STATES {
            let got = imap_observed(state, command);
            let want = imap_expected(state, name, *group);
            if got != want {
                mismatches.push(format!("IMAP {name} in {title}: {got}, RFC: {want}"));
            }
            doc.push_str(&format!(" {got} |"));
        }
        doc.push('\n');
    }
    doc.push_str(
        "\n## POP3 (RFC 1939 §3–§7; RFC 2449 CAPA; RFC 2595 STLS; RFC 5034 AUTH)\n\n\
         AUTHORIZATION: USER, PASS (right after a successful USER), APOP (optional; tern does \
         not offer it), AUTH, STLS (where offered), QUIT. TRANSACTION: STAT, LIST, RETR, DELE, \
         NOOP, RSET, TOP, UIDL, QUIT. CAPA in both. USER and AUTH PLAIN need TLS \
         (-ERR [AUTH] otherwise). QUIT in TRANSACTION enters UPDATE and closes.\n\n",
    );
    doc.push_str("| command |");
    for (_, title) in POP3_STATES {
        doc.push_str(&format!(" {title} |"));
    }
    doc.push_str("\n|---|");
    doc.push_str(&"---|".repeat(POP3_STATES.len()));
    doc.push('\n');
    for (command, in_auth, in_trans) in POP3_COMMANDS {
        let name = command.split(' ').next().unwrap_or_default();
        doc.push_str(&format!("| {name} |"));
        for (state, title) in POP3_STATES {
            let got = pop3_observed(state, command);
            let want = pop3_expected(state, command, *in_auth, *in_trans);
            if got != want {
                mismatches.push(format!("POP3 {name} in {title}: {got}, RFC: {want}"));
            }
            doc.push_str(&format!(" {got} |"));
        }
        doc.push('\n');
    }
    (doc, mismatches)
}

#[test]
fn state_tables_follow_the_rfcs_and_the_docs() {
    let (doc, mismatches) = render();
    assert!(
        mismatches.is_empty(),
        "cells that depart from the RFC rules:\n  {}",
        mismatches.join("\n  ")
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/state-tables.md");
    if std::env::var_os("TERN_UPDATE_STATE_TABLES").is_some() {
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs")).unwrap();
        std::fs::write(path, &doc).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == doc,
        "docs/state-tables.md is stale; rerun with TERN_UPDATE_STATE_TABLES=1 and commit it"
    );
}
