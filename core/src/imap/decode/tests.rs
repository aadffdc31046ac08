//! Known-answer tests for the command grammar: every example command of RFC 9051 §6/§8 and
//! RFC 3501 §6/§8, the extensions' examples, and each production with a pitfall.

use std::num::NonZeroU32;

use bytes::Bytes;

use super::*;
use crate::imap::command::SearchProgram;
use crate::imap::types::{
    EntryType, FetchAttr, FetchItems, Partial, PartialRange, SearchKey, SearchReturn, SeqNo,
    SeqRange, SequenceSet, SortCriterion, SortKey,
};
use crate::mail::date::{Date, DateTime};
use crate::mail::flags::Flag;
use crate::mail::section::{Section, SectionText};

fn parse(s: &str) -> Result<CommandLine, DecodeError> {
    let mut v = s.as_bytes().to_vec();
    if !v.ends_with(b"\n") {
        v.extend_from_slice(b"\r\n");
    }
    command(&Bytes::from(v))
}

fn ok(s: &str) -> Command {
    match parse(s) {
        Ok(c) => c.command,
        Err(e) => panic!("{s:?}: {e}"),
    }
}

fn bad(s: &str) -> &'static str {
    match parse(s) {
        Ok(c) => panic!("{s:?} parsed as {:?}", c.command),
        Err(e) => e.message,
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn mb(s: &str) -> MailboxArg {
    MailboxArg(b(s))
}

fn n(v: u32) -> SeqNo {
    SeqNo::Value(NonZeroU32::new(v).unwrap())
}

fn set(ranges: &[(SeqNo, SeqNo)]) -> SequenceSet {
    SequenceSet::Ranges(
        ranges
            .iter()
            .map(|&(from, to)| SeqRange { from, to })
            .collect(),
    )
}

fn one(v: u32) -> SequenceSet {
    set(&[(n(v), n(v))])
}

fn range(a: u32, z: u32) -> SequenceSet {
    set(&[(n(a), n(z))])
}

fn date(day: u8, month: u8, year: u16) -> Date {
    Date { year, month, day }
}

fn program(criteria: Vec<SearchKey>) -> SearchProgram {
    SearchProgram {
        charset: None,
        criteria,
    }
}

fn search(uid: bool, returns: Option<Vec<SearchReturn>>, p: SearchProgram) -> Command {
    Command::Search {
        uid,
        returns,
        program: p,
    }
}

fn fetch(uid: bool, s: SequenceSet, items: FetchItems) -> Command {
    Command::Fetch {
        uid,
        set: s,
        items,
        modifiers: FetchModifiers::default(),
    }
}

fn section(part: &[u32], text: Option<SectionText>) -> Section {
    Section {
        part: part.to_vec(),
        text,
    }
}

fn body_peek(s: Section) -> FetchAttr {
    FetchAttr::BodySection {
        peek: true,
        section: s,
        partial: None,
    }
}

fn list(
    select: Vec<ListSelect>,
    reference: &str,
    patterns: &[&str],
    returns: Vec<ListReturn>,
) -> Command {
    Command::List {
        select,
        reference: mb(reference),
        patterns: patterns.iter().map(|p| ListPattern(b(p))).collect(),
        returns,
    }
}

// ---------------------------------------------------------------- RFC 9051 §6.1 / RFC 3501 §6.1

#[test]
fn rfc9051_6_1_any_state_examples() {
    assert_eq!(ok("abcd CAPABILITY"), Command::Capability);
    assert_eq!(ok("efgh STARTTLS"), Command::StartTls);
    assert_eq!(ok("ijkl CAPABILITY"), Command::Capability);
    assert_eq!(ok("a002 NOOP"), Command::Noop);
    assert_eq!(ok("a047 NOOP"), Command::Noop);
    assert_eq!(ok("A023 LOGOUT"), Command::Logout);
    // §9 note 1: command names are case-insensitive.
    assert_eq!(ok("a000 starttls"), Command::StartTls);
}

#[test]
fn rfc9051_6_2_authenticate_examples() {
    let auth = |m: &str, ir: Option<&str>| Command::Authenticate {
        mechanism: b(m),
        initial_response: ir.map(|ir| Secret::new(b(ir))),
    };
    assert_eq!(
        ok("a004 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q="),
        auth("PLAIN", Some("dGVzdAB0ZXN0AHRlc3Q="))
    );
    assert_eq!(ok("A001 AUTHENTICATE GSSAPI"), auth("GSSAPI", None));
    assert_eq!(ok("A01 AUTHENTICATE PLAIN"), auth("PLAIN", None));
    // §6.2.2: `=` is an empty initial response (RFC 4959).
    assert_eq!(
        ok("A01 AUTHENTICATE EXTERNAL ="),
        auth("EXTERNAL", Some("="))
    );
    assert_eq!(
        ok("A001 AUTHENTICATE SCRAM-SHA-256"),
        auth("SCRAM-SHA-256", None)
    );
    assert_eq!(
        bad("A01 AUTHENTICATE PLAIN ab%d"),
        "Unexpected characters at the end of the command."
    );
}

#[test]
fn rfc9051_6_2_3_login_examples_and_string_forms() {
    let login = |u: &str, p: &str| Command::Login {
        username: b(u),
        password: Secret::new(b(p)),
    };
    assert_eq!(ok("a001 LOGIN SMITH SESAME"), login("SMITH", "SESAME"));
    assert_eq!(ok("a004 LOGIN joe password"), login("joe", "password"));
    assert_eq!(ok("a001 login mrc secret"), login("mrc", "secret"));
    // §4.3: quoted strings escape only `"` and `\`; literals carry anything but NUL.
    assert_eq!(
        ok("x LOGIN \"fred \\\"q\\\\\" {5}\r\nab cd"),
        login("fred \"q\\", "ab cd")
    );
    assert_eq!(ok("x LOGIN {3+}\r\nbob \"\""), login("bob", ""));
    // `]` is an ASTRING-CHAR (resp-specials) but not an ATOM-CHAR.
    assert_eq!(ok("x LOGIN a]b c"), login("a]b", "c"));
    assert!(parse("x LOGIN a").is_err());
    assert!(parse("x LOGIN a b c").is_err());
    assert_eq!(
        bad("x LOGIN \"a\\b\" c"),
        "Invalid escape in quoted string."
    );
    assert_eq!(
        bad("x LOGIN {1}\r\n\0 c"),
        "NUL in a literal; use literal8."
    );
    // literal8 is only for APPEND (RFC 3516 §4.3) and SETMETADATA values.
    assert!(parse("x LOGIN ~{1}\r\na c").is_err());
}

#[test]
fn errors_keep_the_tag_when_there_is_one() {
    assert_eq!(parse("* NOOP").unwrap_err().tag, None);
    assert_eq!(parse("a+b NOOP").unwrap_err().tag, None);
    assert_eq!(command(&Bytes::from_static(b"\r\n")).unwrap_err().tag, None);
    assert_eq!(
        parse("t1 NOOP extra").unwrap_err().tag,
        Some(Tag::new(b("t1")).unwrap())
    );
    assert_eq!(ok("t1 FROB x y"), Command::Unknown { name: b("FROB") });
    assert_eq!(
        ok("A442 XPIG-LATIN"),
        Command::Unknown {
            name: b("XPIG-LATIN")
        }
    );
    assert_eq!(
        ok("t UID FROB 1"),
        Command::Unknown {
            name: b("UID FROB")
        }
    );
}

#[test]
fn rfc9051_9_note_2_sp_is_exactly_one_space() {
    assert!(parse("a  NOOP").is_err());
    assert!(parse("a LOGIN  u p").is_err());
    assert!(parse("a LOGIN u\tp").is_err());
    assert!(parse("a NOOP ").is_err());
}

#[test]
fn bare_lf_ends_a_command_like_crlf() {
    assert_eq!(ok("a NOOP\n"), Command::Noop);
    assert_eq!(
        ok("x LOGIN {2}\nab c\n"),
        Command::Login {
            username: b("ab"),
            password: Secret::new(b("c"))
        }
    );
    assert!(command(&Bytes::from_static(b"a NOOP\r")).is_err());
    assert!(command(&Bytes::from_static(b"a NOOP")).is_err());
}

#[test]
fn literal_bodies_are_slices_of_the_input() {
    let input = Bytes::from_static(b"x LOGIN {5}\r\nhello world\r\n");
    let Command::Login { username, .. } = command(&input).unwrap().command else {
        panic!()
    };
    assert_eq!(username, "hello");
    assert!(input.as_ptr_range().contains(&username.as_ptr()));
}

#[test]
fn announced_literal_longer_than_the_input_is_refused_without_allocating() {
    assert_eq!(
        bad("x LOGIN {18446744073709551615}\r\nab c"),
        "Literal is shorter than announced."
    );
    assert_eq!(
        bad("x LOGIN {99999999999999999999}\r\nab c"),
        "Literal is shorter than announced."
    );
    assert!(parse("x LOGIN {10}\r\nab c").is_err());
}

// ---------------------------------------------------------------- RFC 9051 §6.3

#[test]
fn rfc9051_6_3_1_enable_examples() {
    assert_eq!(
        ok("t2 ENABLE CONDSTORE X-GOOD-IDEA"),
        Command::Enable(vec![b("CONDSTORE"), b("X-GOOD-IDEA")])
    );
    assert_eq!(
        ok("a1 ENABLE CONDSTORE"),
        Command::Enable(vec![b("CONDSTORE")])
    );
    assert_eq!(
        ok("babc ENABLE IMAP4rev2"),
        Command::Enable(vec![b("IMAP4rev2")])
    );
    assert!(parse("a ENABLE").is_err());
}

#[test]
fn rfc9051_6_3_2_select_examine_examples() {
    let select = |m: &str| Command::Select {
        mailbox: mb(m),
        params: vec![],
    };
    assert_eq!(ok("A142 SELECT INBOX"), select("INBOX"));
    assert_eq!(ok("A143 SELECT Drafts"), select("Drafts"));
    assert_eq!(ok("a002 select inbox"), select("inbox"));
    // §9 `mailbox`: INBOX in any case is returned raw; the session folds it.
    assert_eq!(ok("a SELECT \"iNbOx\""), select("iNbOx"));
    assert_eq!(
        ok("A932 EXAMINE blurdybloop"),
        Command::Examine {
            mailbox: mb("blurdybloop"),
            params: vec![]
        }
    );
}

#[test]
fn rfc7162_select_condstore_and_qresync() {
    assert_eq!(
        ok("A142 SELECT INBOX (CONDSTORE)"),
        Command::Select {
            mailbox: mb("INBOX"),
            params: vec![SelectParam::CondStore]
        }
    );
    // RFC 7162 §3.2.5.2 examples.
    assert_eq!(
        ok("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
        Command::Select {
            mailbox: mb("INBOX"),
            params: vec![SelectParam::QResync {
                uid_validity: 67890007,
                mod_seq: 20050715194045000,
                known_uids: Some(set(&[(n(41), n(41)), (n(43), n(211)), (n(214), n(541))])),
                seq_match: None
            }]
        }
    );
    assert_eq!(
        ok("B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))"),
        Command::Select {
            mailbox: mb("INBOX"),
            params: vec![SelectParam::QResync {
                uid_validity: 67890007,
                mod_seq: 90060115194045000,
                known_uids: Some(range(1, 29997)),
                seq_match: Some((
                    set(&[(n(5000), n(5000)), (n(7500), n(7500)), (n(9000), n(9000)), (n(9990), n(9999))]),
                    SequenceSet::Ranges(
                        [15000, 22500, 27000, 29970, 29973, 29976, 29979, 29982, 29985, 29988, 29991, 29994, 29997]
                            .iter()
                            .map(|&v| SeqRange { from: n(v), to: n(v) })
                            .collect()
                    )
                ))
            }]
        }
    );
    // Sequence match data without known UIDs is allowed by the grammar.
    assert_eq!(
        ok("a SELECT x (QRESYNC (1 2 (1:2 3:4)))"),
        Command::Select {
            mailbox: mb("x"),
            params: vec![SelectParam::QResync {
                uid_validity: 1,
                mod_seq: 2,
                known_uids: None,
                seq_match: Some((range(1, 2), range(3, 4)))
            }]
        }
    );
    assert!(parse("a SELECT x (QRESYNC (0 2))").is_err());
    assert!(parse("a SELECT x (FROB)").is_err());
}

#[test]
fn rfc9051_6_3_4_create_and_rfc6154_use() {
    let create = |m: &str, u: &[&str]| Command::Create {
        mailbox: mb(m),
        special_use: u.iter().map(|s| b(s)).collect(),
    };
    assert_eq!(ok("A003 CREATE owatagusiam/"), create("owatagusiam/", &[]));
    assert_eq!(
        ok("A004 CREATE owatagusiam/blurdybloop"),
        create("owatagusiam/blurdybloop", &[])
    );
    assert_eq!(
        ok("A005 CREATE NonNormalized"),
        create("NonNormalized", &[])
    );
    assert_eq!(
        ok("A002 CREATE \"INBOX.Sent Mail\""),
        create("INBOX.Sent Mail", &[])
    );
    assert_eq!(ok("A004 CREATE \"Sent Mail\""), create("Sent Mail", &[]));
    assert_eq!(
        ok("A006 CREATE \"#mh/Deleted Items\""),
        create("#mh/Deleted Items", &[])
    );
    // RFC 6154 §5.2.
    assert_eq!(
        ok("t1 CREATE \"Important Messages\" (USE (\\Important))"),
        create("Important Messages", &["\\Important"])
    );
    assert_eq!(
        ok("t1 CREATE x (use (\\Drafts \\Sent))"),
        create("x", &["\\Drafts", "\\Sent"])
    );
    assert!(parse("t1 CREATE x (USE (Drafts))").is_err());
}

#[test]
fn rfc9051_6_3_5_to_6_3_8_delete_rename_subscribe_examples() {
    for (cmd, m) in [
        ("A683 DELETE blurdybloop", "blurdybloop"),
        ("A684 DELETE foo", "foo"),
        ("A685 DELETE foo/bar", "foo/bar"),
        ("A83 DELETE blurdybloop", "blurdybloop"),
    ] {
        assert_eq!(ok(cmd), Command::Delete { mailbox: mb(m) });
    }
    assert_eq!(
        ok("A683 RENAME blurdybloop sarasoop"),
        Command::Rename {
            from: mb("blurdybloop"),
            to: mb("sarasoop")
        }
    );
    assert_eq!(
        ok("Z433 RENAME INBOX old-mail"),
        Command::Rename {
            from: mb("INBOX"),
            to: mb("old-mail")
        }
    );
    assert_eq!(
        ok("1001 RENAME X Y"),
        Command::Rename {
            from: mb("X"),
            to: mb("Y")
        }
    );
    assert_eq!(
        ok("1002 SUBSCRIBE Y"),
        Command::Subscribe { mailbox: mb("Y") }
    );
    assert_eq!(
        ok("1003 UNSUBSCRIBE X"),
        Command::Unsubscribe { mailbox: mb("X") }
    );
    assert_eq!(
        ok("A002 SUBSCRIBE #news.comp.mail.mime"),
        Command::Subscribe {
            mailbox: mb("#news.comp.mail.mime")
        }
    );
    assert_eq!(
        ok("A002 UNSUBSCRIBE #news.comp.mail.mime"),
        Command::Unsubscribe {
            mailbox: mb("#news.comp.mail.mime")
        }
    );
}

#[test]
fn rfc9051_6_3_9_list_examples() {
    assert_eq!(ok("A682 LIST \"\" *"), list(vec![], "", &["*"], vec![]));
    assert_eq!(ok("A86 LIST \"\" %"), list(vec![], "", &["%"], vec![]));
    assert_eq!(ok("A101 LIST \"\" \"\""), list(vec![], "", &[""], vec![]));
    assert_eq!(
        ok("A102 LIST #news.comp.mail.misc \"\""),
        list(vec![], "#news.comp.mail.misc", &[""], vec![])
    );
    assert_eq!(
        ok("A103 LIST /usr/staff/jones \"\""),
        list(vec![], "/usr/staff/jones", &[""], vec![])
    );
    assert_eq!(
        ok("A202 LIST ~/Mail/ %"),
        list(vec![], "~/Mail/", &["%"], vec![])
    );
    assert_eq!(ok("A01 LIST \"\" \"*\""), list(vec![], "", &["*"], vec![]));
    use ListReturn as R;
    use ListSelect as S;
    assert_eq!(
        ok("A02 LIST (SUBSCRIBED) \"\" \"*\""),
        list(vec![S::Subscribed], "", &["*"], vec![])
    );
    assert_eq!(
        ok("A03 LIST () \"\" \"%\" RETURN (CHILDREN)"),
        list(vec![], "", &["%"], vec![R::Children])
    );
    assert_eq!(
        ok("A04 LIST (REMOTE) \"\" \"%\" RETURN (CHILDREN)"),
        list(vec![S::Remote], "", &["%"], vec![R::Children])
    );
    assert_eq!(
        ok("A05 LIST (REMOTE SUBSCRIBED) \"\" \"*\""),
        list(vec![S::Remote, S::Subscribed], "", &["*"], vec![])
    );
    assert_eq!(
        ok("A06 LIST (REMOTE) \"\" \"*\" RETURN (SUBSCRIBED)"),
        list(vec![S::Remote], "", &["*"], vec![R::Subscribed])
    );
    assert_eq!(
        ok("CA3 LIST \"\" \"%\" RETURN (CHILDREN)"),
        list(vec![], "", &["%"], vec![R::Children])
    );
    assert_eq!(
        ok("C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)"),
        list(
            vec![S::Subscribed, S::RecursiveMatch],
            "",
            &["%"],
            vec![R::Children]
        )
    );
    assert_eq!(
        ok("D03 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" \"*2\""),
        list(vec![S::RecursiveMatch, S::Subscribed], "", &["*2"], vec![])
    );
    assert_eq!(
        ok("a1 LIST \"\" (\"foo\")"),
        list(vec![], "", &["foo"], vec![])
    );
    assert_eq!(
        ok("a3 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" foo RETURN (CHILDREN)"),
        list(
            vec![S::Subscribed, S::RecursiveMatch],
            "",
            &["foo"],
            vec![R::Children]
        )
    );
    assert_eq!(
        ok("a3.1 LIST \"\" (% music/rock)"),
        list(vec![], "", &["%", "music/rock"], vec![])
    );
    assert_eq!(
        ok("A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))"),
        list(
            vec![],
            "",
            &["%"],
            vec![R::Status(vec![StatusItem::Messages, StatusItem::Unseen])]
        )
    );
    assert_eq!(
        ok("A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (STATUS (MESSAGES))"),
        list(
            vec![S::Subscribed, S::RecursiveMatch],
            "",
            &["%"],
            vec![R::Status(vec![StatusItem::Messages])]
        )
    );
    assert_eq!(
        ok("A002 LIST (SPECIAL-USE) \"\" \"*\""),
        list(vec![S::SpecialUse], "", &["*"], vec![])
    );
    assert_eq!(
        ok("A002 LIST \"\" \"Other Users/%\""),
        list(vec![], "", &["Other Users/%"], vec![])
    );
    // §9 `list-mailbox`: `]`, `%` and `*` are list-chars outside quotes.
    assert_eq!(
        ok("a LIST \"\" foo]*%bar"),
        list(vec![], "", &["foo]*%bar"], vec![])
    );
}

#[test]
fn rfc5258_3_recursivematch_alone_and_unknown_options_are_errors() {
    assert_eq!(
        bad("a LIST (RECURSIVEMATCH) \"\" *"),
        "RECURSIVEMATCH needs SUBSCRIBED."
    );
    assert_eq!(
        bad("a LIST (REMOTE RECURSIVEMATCH) \"\" *"),
        "RECURSIVEMATCH needs SUBSCRIBED."
    );
    assert_eq!(
        bad("a LIST (FROB) \"\" *"),
        "Unknown LIST selection option."
    );
    assert_eq!(
        bad("a LIST \"\" * RETURN (FROB)"),
        "Unknown LIST return option."
    );
}

#[test]
fn rfc3501_6_3_9_lsub_examples() {
    assert_eq!(
        ok("A002 LSUB \"#news.\" \"comp.mail.*\""),
        Command::Lsub {
            reference: mb("#news."),
            pattern: ListPattern(b("comp.mail.*"))
        }
    );
    assert_eq!(
        ok("A003 LSUB \"#news.\" \"comp.%\""),
        Command::Lsub {
            reference: mb("#news."),
            pattern: ListPattern(b("comp.%"))
        }
    );
}

#[test]
fn rfc9051_6_3_10_namespace_and_6_3_11_status() {
    assert_eq!(ok("A001 NAMESPACE"), Command::Namespace);
    assert_eq!(
        ok("A042 STATUS blurdybloop (UIDNEXT MESSAGES)"),
        Command::Status {
            mailbox: mb("blurdybloop"),
            items: vec![StatusItem::UidNext, StatusItem::Messages]
        }
    );
    assert_eq!(
        ok("a STATUS x (messages recent uidnext uidvalidity unseen deleted size highestmodseq appendlimit mailboxid)"),
        Command::Status {
            mailbox: mb("x"),
            items: vec![
                StatusItem::Messages,
                StatusItem::Recent,
                StatusItem::UidNext,
                StatusItem::UidValidity,
                StatusItem::Unseen,
                StatusItem::Deleted,
                StatusItem::Size,
                StatusItem::HighestModSeq,
                StatusItem::AppendLimit,
                StatusItem::MailboxId
            ]
        }
    );
    assert!(parse("a STATUS x ()").is_err());
}

const MSG_3501: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.COM>\r\nSubject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu\r\nMessage-Id: <B27397-0100000@Blurdybloop.COM>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
const MSG_9051: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu.example\r\nMessage-Id: <B27397-0100000@Blurdybloop.example>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
const MSG_9051_PLUS: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@example.com>\r\nSubject: afternoon meeting\r\nTo: mooch@example.com\r\nMessage-Id: <B27397-0100000@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

fn append1(mailbox: &str, flags: Vec<Flag>, date: Option<DateTime>, data: &str) -> Command {
    Command::Append {
        mailbox: mb(mailbox),
        messages: vec![AppendMessage {
            flags,
            date,
            data: b(data),
            binary: false,
        }],
    }
}

#[test]
fn rfc9051_6_3_12_and_rfc3501_6_3_11_append_examples() {
    assert_eq!(MSG_3501.len(), 310);
    assert_eq!(
        ok(&format!(
            "A003 APPEND saved-messages (\\Seen) {{310}}\r\n{MSG_3501}\r\n"
        )),
        append1("saved-messages", vec![Flag::Seen], None, MSG_3501)
    );
    assert_eq!(
        ok(&format!(
            "A003 APPEND saved-messages (\\Seen) {{326}}\r\n{MSG_9051}\r\n"
        )),
        append1("saved-messages", vec![Flag::Seen], None, MSG_9051)
    );
    assert_eq!(
        ok(&format!(
            "A003 APPEND saved-messages (\\Seen) {{297+}}\r\n{MSG_9051_PLUS}\r\n"
        )),
        append1("saved-messages", vec![Flag::Seen], None, MSG_9051_PLUS)
    );
}

#[test]
fn append_date_time_multiappend_and_literal8() {
    let t = DateTime {
        date: date(7, 2, 1994),
        hour: 21,
        minute: 52,
        second: 25,
        zone_minutes: -480,
    };
    // §9 `date-day-fixed`: a space-padded or two-digit day.
    assert_eq!(
        ok("a APPEND x \" 7-Feb-1994 21:52:25 -0800\" {2}\r\nhi"),
        append1("x", vec![], Some(t), "hi")
    );
    assert_eq!(
        ok("a APPEND x () \"07-feb-1994 21:52:25 -0800\" {2}\r\nhi"),
        append1("x", vec![], Some(t), "hi")
    );
    // RFC 3502 §6.1: several messages; RFC 3516 §4.4: literal8 may carry NUL.
    let c = ok("a APPEND x (\\Seen $Forwarded) {1}\r\nA ~{3}\r\nB\0C (\\Draft) {1+}\r\nD");
    let Command::Append { messages, .. } = c else {
        panic!()
    };
    assert_eq!(messages.len(), 3);
    assert_eq!(
        messages[0].flags,
        vec![Flag::Seen, Flag::Keyword(b("$Forwarded"))]
    );
    assert!(!messages[0].binary);
    assert_eq!(messages[1].data, Bytes::from_static(b"B\0C"));
    assert!(messages[1].binary);
    assert_eq!(messages[2].flags, vec![Flag::Draft]);
    assert!(parse("a APPEND x").is_err());
    assert!(parse("a APPEND x \"31-Apr-2020 00:00:00 +0000\" {1}\r\nA").is_err());
    assert!(parse("a APPEND x \"01-Apr-2020 24:00:00 +0000\" {1}\r\nA").is_err());
    assert!(parse("a APPEND x \"01-Apr-2020 00:00:00 +0060\" {1}\r\nA").is_err());
    assert!(parse("a APPEND x \"hello\"").is_err());
}

#[test]
fn rfc9394_partial_return_option_and_fetch_modifier() {
    let nz = |v| NonZeroU32::new(v).unwrap();
    // §3.1's examples: from the newest with minus signs, from the oldest without.
    let c = ok("A01 UID SEARCH RETURN (PARTIAL -1:-100) UNDELETED UNKEYWORD $Junk");
    let Command::Search { returns, .. } = c else {
        panic!("{c:?}")
    };
    assert_eq!(
        returns,
        Some(vec![SearchReturn::Partial(PartialRange::Last(
            nz(1),
            nz(100)
        ))])
    );
    let c = ok("A02 UID SEARCH RETURN (COUNT PARTIAL 23500:24000 SAVE) UNDELETED");
    let Command::Search { returns, .. } = c else {
        panic!("{c:?}")
    };
    assert_eq!(
        returns,
        Some(vec![
            SearchReturn::Count,
            SearchReturn::Partial(PartialRange::First(nz(23500), nz(24000))),
            SearchReturn::Save
        ])
    );
    // §3.3 and §3.4: a UID FETCH modifier, beside CHANGEDSINCE in either order.
    let c = ok("101 UID FETCH 25900:26600 (UID FLAGS) (PARTIAL -1:-30 CHANGEDSINCE 98305)");
    let Command::Fetch { modifiers, .. } = c else {
        panic!("{c:?}")
    };
    assert_eq!(modifiers.partial, Some(PartialRange::Last(nz(1), nz(30))));
    assert_eq!(modifiers.changed_since, Some(98305));
    // §4: both ends the same sign, no zero, no `*`.
    for bad in [
        "a SEARCH RETURN (PARTIAL 1:-5) ALL",
        "a SEARCH RETURN (PARTIAL -1:5) ALL",
        "a SEARCH RETURN (PARTIAL 0:5) ALL",
        "a SEARCH RETURN (PARTIAL 1:*) ALL",
        "a SEARCH RETURN (PARTIAL 5) ALL",
        "a UID FETCH 1 FLAGS (PARTIAL)",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn rfc8508_replace_and_uid_replace() {
    // §3.2: a message number, a mailbox and one append-message.
    let c = ok("A003 REPLACE 4 Drafts (\\Seen \\Draft) {2}\r\nhi");
    let Command::Replace {
        uid: false,
        target: SeqNo::Value(n),
        mailbox,
        message,
    } = c
    else {
        panic!("{c:?}")
    };
    assert_eq!((n.get(), mailbox.0), (4, b("Drafts")));
    assert_eq!(message.flags, vec![Flag::Seen, Flag::Draft]);
    assert_eq!(message.data, b("hi"));
    // §3.3: the UID form; `*` is a seq-number too; literal8 and a date as in APPEND.
    let c = ok("a UID REPLACE * x \"07-Feb-1994 21:52:25 -0800\" ~{3}\r\nB\0C");
    let Command::Replace {
        uid: true,
        target: SeqNo::Star,
        message,
        ..
    } = c
    else {
        panic!("{c:?}")
    };
    assert!(message.binary && message.date.is_some());
    // Exactly one message (§4.7: no MULTIAPPEND form), and one target, never a set.
    assert!(parse("a REPLACE 1 x {1}\r\nA {1}\r\nB").is_err());
    assert!(parse("a REPLACE 1:2 x {1}\r\nA").is_err());
    assert!(parse("a REPLACE 0 x {1}\r\nA").is_err());
    assert!(parse("a REPLACE 1 x").is_err());
    assert!(parse("a UID REPLACE 1").is_err());
}

#[test]
fn rfc2177_idle_and_done() {
    assert_eq!(ok("A002 IDLE"), Command::Idle);
    assert!(idle_done(b"DONE"));
    assert!(idle_done(b"done"));
    assert!(!idle_done(b"DONE x"));
}

// ---------------------------------------------------------------- RFC 8437 §6

#[test]
fn rfc8437_6_unauthenticate_takes_no_arguments() {
    assert_eq!(ok("a1 UNAUTHENTICATE"), Command::Unauthenticate);
    assert_eq!(ok("a1 unauthenticate"), Command::Unauthenticate);
    bad("a1 UNAUTHENTICATE now");
}

// ---------------------------------------------------------------- RFC 9051 §6.4

#[test]
fn rfc9051_6_4_close_unselect_expunge_check() {
    assert_eq!(ok("A341 CLOSE"), Command::Close);
    assert_eq!(ok("A342 UNSELECT"), Command::Unselect);
    assert_eq!(ok("A202 EXPUNGE"), Command::Expunge);
    assert_eq!(ok("FXXZ CHECK"), Command::Check);
    assert_eq!(
        ok("A003 UID EXPUNGE 3000:3002"),
        Command::UidExpunge(range(3000, 3002))
    );
}

#[test]
fn rfc9051_6_4_4_search_examples() {
    use SearchKey as K;
    assert_eq!(
        ok("A282 SEARCH RETURN (MIN COUNT) FLAGGED"),
        search(
            false,
            Some(vec![SearchReturn::Min, SearchReturn::Count]),
            program(vec![K::Flagged])
        )
    );
    assert_eq!(
        ok("A283 SEARCH RETURN () FLAGGED"),
        search(false, Some(vec![]), program(vec![K::Flagged]))
    );
    assert_eq!(
        ok("A284 SEARCH TEXT \"string not in mailbox\""),
        search(
            false,
            None,
            program(vec![K::Text(b("string not in mailbox"))])
        )
    );
    assert_eq!(
        ok("A285 SEARCH CHARSET UTF-8 TEXT {12}\r\nотпуск"),
        search(
            false,
            None,
            SearchProgram {
                charset: Some(b("UTF-8")),
                criteria: vec![K::Text(b("отпуск"))]
            }
        )
    );
    assert_eq!(
        ok("A284 SEARCH RETURN (MIN) UNSEEN"),
        search(
            false,
            Some(vec![SearchReturn::Min]),
            program(vec![K::Unseen])
        )
    );
    assert_eq!(
        ok("A285 UID SEARCH RETURN (MIN MAX) 1:5000"),
        search(
            true,
            Some(vec![SearchReturn::Min, SearchReturn::Max]),
            program(vec![K::SequenceSet(range(1, 5000))])
        )
    );
    assert_eq!(
        ok("A286 SEARCH RETURN (COUNT) DELETED"),
        search(
            false,
            Some(vec![SearchReturn::Count]),
            program(vec![K::Deleted])
        )
    );
    // RFC 3501 §6.4.4.
    assert_eq!(
        ok("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\""),
        search(
            false,
            None,
            program(vec![
                K::Flagged,
                K::Since(date(1, 2, 1994)),
                K::Not(Box::new(K::From(b("Smith"))))
            ])
        )
    );
    assert_eq!(
        ok("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX"),
        search(
            false,
            None,
            SearchProgram {
                charset: Some(b("UTF-8")),
                criteria: vec![K::Text(b("XXXXXX"))]
            }
        )
    );
}

#[test]
fn rfc9051_6_4_4_4_searchres_examples() {
    use SearchKey as K;
    let save = Some(vec![SearchReturn::Save]);
    assert_eq!(
        ok("A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994"),
        search(
            false,
            save.clone(),
            program(vec![K::Flagged, K::Since(date(1, 2, 1994))])
        )
    );
    assert_eq!(
        ok("A283 FETCH $ (UID INTERNALDATE FLAGS BODY.PEEK[HEADER])"),
        fetch(
            false,
            SequenceSet::Saved,
            FetchItems::Attrs(vec![
                FetchAttr::Uid,
                FetchAttr::InternalDate,
                FetchAttr::Flags,
                body_peek(section(&[], Some(SectionText::Header)))
            ])
        )
    );
    assert_eq!(
        ok("A301 UID SEARCH UID $ SMALLER 4096"),
        search(
            true,
            None,
            program(vec![K::Uid(SequenceSet::Saved), K::Smaller(4096)])
        )
    );
    assert_eq!(
        ok("A301 UID SEARCH $ SMALLER 4096"),
        search(
            true,
            None,
            program(vec![K::SequenceSet(SequenceSet::Saved), K::Smaller(4096)])
        )
    );
    assert_eq!(
        ok("P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8+}\r\nмать"),
        search(
            false,
            None,
            SearchProgram {
                charset: Some(b("UTF-8")),
                criteria: vec![
                    K::And(vec![K::Or(
                        Box::new(K::SequenceSet(SequenceSet::Saved)),
                        Box::new(K::SequenceSet(set(&[(n(1), n(1)), (n(3000), n(3021))])))
                    )]),
                    K::Text(b("мать"))
                ]
            }
        )
    );
    assert_eq!(
        ok("B283 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1,3000:3021) TEXT {4}\r\nXXXX"),
        search(
            false,
            save.clone(),
            SearchProgram {
                charset: Some(b("KOI8-R")),
                criteria: vec![
                    K::And(vec![K::Or(
                        Box::new(K::SequenceSet(SequenceSet::Saved)),
                        Box::new(K::SequenceSet(set(&[(n(1), n(1)), (n(3000), n(3021))])))
                    )]),
                    K::Text(b("XXXX"))
                ]
            }
        )
    );
    assert_eq!(
        ok("E283 COPY $ \"Other Messages\""),
        Command::Copy {
            uid: false,
            set: SequenceSet::Saved,
            mailbox: mb("Other Messages")
        }
    );
    assert_eq!(
        ok("F282 SEARCH RETURN (SAVE) KEYWORD $Junk"),
        search(false, save, program(vec![K::Keyword(b("$Junk"))]))
    );
    assert_eq!(
        ok("F284 STORE $ +FLAGS.Silent (\\Deleted)"),
        Command::Store {
            uid: false,
            set: SequenceSet::Saved,
            unchanged_since: None,
            mode: StoreMode::Add,
            silent: true,
            flags: vec![Flag::Deleted]
        }
    );
    assert_eq!(
        ok("C285 SEARCH RETURN (MAX SAVE MIN) SINCE 12-Feb-2006 NOT FROM \"Smith\""),
        search(
            false,
            Some(vec![
                SearchReturn::Max,
                SearchReturn::Save,
                SearchReturn::Min
            ]),
            program(vec![
                K::Since(date(12, 2, 2006)),
                K::Not(Box::new(K::From(b("Smith"))))
            ])
        )
    );
    assert_eq!(
        ok("C286 SEARCH RETURN (MAX SAVE MIN COUNT) SINCE 12-Feb-2006 NOT FROM \"Smith\""),
        search(
            false,
            Some(vec![
                SearchReturn::Max,
                SearchReturn::Save,
                SearchReturn::Min,
                SearchReturn::Count
            ]),
            program(vec![
                K::Since(date(12, 2, 2006)),
                K::Not(Box::new(K::From(b("Smith"))))
            ])
        )
    );
    // RFC 5182 §2.1: `$` stands alone; it does not combine with numbers.
    assert!(parse("a FETCH 1,$ FLAGS").is_err());
}

#[test]
fn search_keys_every_form() {
    use SearchKey as K;
    let keys = ok("a SEARCH ALL ANSWERED BCC x BEFORE \"1-Jan-2000\" BODY y CC z DELETED DRAFT FLAGGED FROM f HEADER X-Spam yes KEYWORD k LARGER 9223372036854775807 NEW OLD ON 31-Dec-1999 OR SEEN UNSEEN RECENT SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 SMALLER 0 SUBJECT s TEXT t TO u UID 1:* UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD k2 *:4 (ALL) OLDER 60 YOUNGER 1 MODSEQ 5 MODSEQ \"/flags/\\\\draft\" all 620162338 EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9 SAVEDBEFORE 1-Jan-2020 SAVEDON 1-Jan-2020 SAVEDSINCE 1-Jan-2020 SAVEDATESUPPORTED");
    let Command::Search { program: p, .. } = keys else {
        panic!()
    };
    let d = date(1, 1, 2000);
    assert_eq!(
        p.criteria,
        vec![
            K::All,
            K::Answered,
            K::Bcc(b("x")),
            K::Before(d),
            K::Body(b("y")),
            K::Cc(b("z")),
            K::Deleted,
            K::Draft,
            K::Flagged,
            K::From(b("f")),
            K::Header(b("X-Spam"), b("yes")),
            K::Keyword(b("k")),
            K::Larger(9223372036854775807),
            K::New,
            K::Old,
            K::On(date(31, 12, 1999)),
            K::Or(Box::new(K::Seen), Box::new(K::Unseen)),
            K::Recent,
            K::SentBefore(d),
            K::SentOn(d),
            K::SentSince(d),
            K::Smaller(0),
            K::Subject(b("s")),
            K::Text(b("t")),
            K::To(b("u")),
            K::Uid(set(&[(n(1), SeqNo::Star)])),
            K::Unanswered,
            K::Undeleted,
            K::Undraft,
            K::Unflagged,
            K::Unkeyword(b("k2")),
            K::SequenceSet(set(&[(SeqNo::Star, n(4))])),
            K::And(vec![K::All]),
            K::Older(60),
            K::Younger(1),
            K::ModSeq {
                entry: None,
                modseq: 5
            },
            K::ModSeq {
                entry: Some((b("/flags/\\draft"), EntryType::All)),
                modseq: 620162338
            },
            K::EmailId(b("M6d99ac3275bb4e")),
            K::ThreadId(b("T64b478a75b7ea9")),
            K::SavedBefore(date(1, 1, 2020)),
            K::SavedOn(date(1, 1, 2020)),
            K::SavedSince(date(1, 1, 2020)),
            K::SaveDateSupported,
        ]
    );
    // RFC 9051 §9 `number64` is 63-bit; RFC 5032 wants a non-zero interval.
    assert!(parse("a SEARCH LARGER 9223372036854775808").is_err());
    assert!(parse("a SEARCH OLDER 0").is_err());
    assert!(parse("a SEARCH FROB").is_err());
    assert!(parse("a SEARCH").is_err());
    assert!(parse("a SEARCH ()").is_err());
    assert!(parse("a SEARCH MODSEQ \"/flags/x\" mine 5").is_err());
}

#[test]
fn rfc9051_9_date_day_is_checked_against_the_month() {
    let on = |s: &str| match ok(&format!("a SEARCH ON {s}")) {
        Command::Search { program: p, .. } => p.criteria,
        _ => unreachable!(),
    };
    assert_eq!(on("29-Feb-2024"), vec![SearchKey::On(date(29, 2, 2024))]);
    assert_eq!(on("29-feb-2000"), vec![SearchKey::On(date(29, 2, 2000))]);
    assert_eq!(on("\"1-JAN-0001\""), vec![SearchKey::On(date(1, 1, 1))]);
    for wrong in [
        "29-Feb-2023",
        "29-Feb-1900",
        "31-Apr-2020",
        "0-Jan-2020",
        "32-Jan-2020",
        "1-Foo-2020",
        "1-Jan-20",
        "100-Jan-2020",
        "\"1-Jan-2020",
    ] {
        assert!(parse(&format!("a SEARCH ON {wrong}")).is_err(), "{wrong}");
    }
}

#[test]
fn rfc9051_9_sequence_sets() {
    let s = |t: &str| match ok(&format!("a FETCH {t} FLAGS")) {
        Command::Fetch { set, .. } => set,
        _ => unreachable!(),
    };
    // Ranges in either order are kept as sent.
    assert_eq!(s("4:2"), range(4, 2));
    assert_eq!(
        s("2,4:7,9,12:*"),
        set(&[
            (n(2), n(2)),
            (n(4), n(7)),
            (n(9), n(9)),
            (n(12), SeqNo::Star)
        ])
    );
    assert_eq!(s("*:4,5:7"), set(&[(SeqNo::Star, n(4)), (n(5), n(7))]));
    assert_eq!(s("*"), set(&[(SeqNo::Star, SeqNo::Star)]));
    assert_eq!(s("4294967295"), one(u32::MAX));
    assert_eq!(s("$"), SequenceSet::Saved);
    for wrong in [
        "0",
        "1:0",
        "4294967296",
        "1,",
        ",1",
        "1:",
        "1::2",
        "-1",
        "1.5",
    ] {
        assert!(parse(&format!("a FETCH {wrong} FLAGS")).is_err(), "{wrong}");
    }
}

#[test]
fn rfc9051_6_4_5_fetch_examples() {
    assert_eq!(
        ok("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])"),
        fetch(
            false,
            range(2, 4),
            FetchItems::Attrs(vec![
                FetchAttr::Flags,
                FetchAttr::BodySection {
                    peek: false,
                    section: section(
                        &[],
                        Some(SectionText::HeaderFields(vec![b("DATE"), b("FROM")]))
                    ),
                    partial: None
                }
            ])
        )
    );
    assert_eq!(
        ok("A999 UID FETCH 4827313:4828442 FLAGS"),
        fetch(
            true,
            range(4827313, 4828442),
            FetchItems::Attrs(vec![FetchAttr::Flags])
        )
    );
    assert_eq!(
        ok("A003 FETCH 4 ALL"),
        fetch(false, one(4), FetchItems::All)
    );
    assert_eq!(
        ok("a003 fetch 12 full"),
        fetch(false, one(12), FetchItems::Full)
    );
    assert_eq!(ok("a FETCH 1 fast"), fetch(false, one(1), FetchItems::Fast));
    assert_eq!(
        ok("a004 fetch 12 body[header]"),
        fetch(
            false,
            one(12),
            FetchItems::Attrs(vec![FetchAttr::BodySection {
                peek: false,
                section: section(&[], Some(SectionText::Header)),
                partial: None
            }])
        )
    );
}

#[test]
fn fetch_attributes_sections_and_partials() {
    let attrs = |t: &str| match ok(&format!("a FETCH 1 ({t})")) {
        Command::Fetch {
            items: FetchItems::Attrs(a),
            ..
        } => a,
        _ => unreachable!(),
    };
    assert_eq!(
        attrs("ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID MODSEQ EMAILID THREADID SAVEDATE PREVIEW"),
        vec![
            FetchAttr::Envelope,
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822,
            FetchAttr::Rfc822Header,
            FetchAttr::Rfc822Size,
            FetchAttr::Rfc822Text,
            FetchAttr::Body,
            FetchAttr::BodyStructure,
            FetchAttr::Uid,
            FetchAttr::ModSeq,
            FetchAttr::EmailId,
            FetchAttr::ThreadId,
            FetchAttr::SaveDate,
            FetchAttr::Preview { lazy: false },
        ]
    );
    assert_eq!(
        attrs("body.peek[1.2.HEADER.FIELDS.NOT (X-A \"X B\")]<0.100> BODY[1.MIME] BODY[] BODY[3]<5.1> BODY[TEXT] BODY[2.TEXT] BODY[4.HEADER]"),
        vec![
            FetchAttr::BodySection {
                peek: true,
                section: section(&[1, 2], Some(SectionText::HeaderFieldsNot(vec![b("X-A"), b("X B")]))),
                partial: Some(Partial {
                    origin: 0,
                    length: NonZeroU32::new(100).unwrap()
                })
            },
            FetchAttr::BodySection {
                peek: false,
                section: section(&[1], Some(SectionText::Mime)),
                partial: None
            },
            FetchAttr::BodySection {
                peek: false,
                section: section(&[], None),
                partial: None
            },
            FetchAttr::BodySection {
                peek: false,
                section: section(&[3], None),
                partial: Some(Partial {
                    origin: 5,
                    length: NonZeroU32::new(1).unwrap()
                })
            },
            FetchAttr::BodySection {
                peek: false,
                section: section(&[], Some(SectionText::Text)),
                partial: None
            },
            FetchAttr::BodySection {
                peek: false,
                section: section(&[2], Some(SectionText::Text)),
                partial: None
            },
            FetchAttr::BodySection {
                peek: false,
                section: section(&[4], Some(SectionText::Header)),
                partial: None
            },
        ]
    );
    // RFC 3516 §4.2.
    assert_eq!(
        attrs("BINARY[1.2] BINARY.PEEK[]<0.10> BINARY.SIZE[3]"),
        vec![
            FetchAttr::Binary {
                peek: false,
                part: vec![1, 2],
                partial: None
            },
            FetchAttr::Binary {
                peek: true,
                part: vec![],
                partial: Some(Partial {
                    origin: 0,
                    length: NonZeroU32::new(10).unwrap()
                })
            },
            FetchAttr::BinarySize { part: vec![3] },
        ]
    );
    // RFC 8970 §3.
    assert_eq!(
        attrs("PREVIEW (LAZY) UID"),
        vec![FetchAttr::Preview { lazy: true }, FetchAttr::Uid]
    );
    // §9 `section-spec`: MIME only after a part number; part numbers are non-zero.
    assert!(parse("a FETCH 1 BODY[MIME]").is_err());
    assert!(parse("a FETCH 1 BODY[0]").is_err());
    assert!(parse("a FETCH 1 BODY[1.]").is_err());
    assert!(parse("a FETCH 1 BODY[HEADER.FIELDS ()]").is_err());
    assert!(parse("a FETCH 1 BODY.PEEK").is_err());
    assert!(parse("a FETCH 1 BODY[]<0.0>").is_err());
    assert!(parse("a FETCH 1 BODY[]<4294967296.1>").is_err());
    assert!(parse("a FETCH 1 (FLAGS").is_err());
    assert!(parse("a FETCH 1 FROB").is_err());
}

#[test]
fn rfc7162_fetch_and_store_modifiers() {
    // RFC 7162 §3.1.4.1 / §3.2.6 examples.
    assert_eq!(
        ok("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)"),
        Command::Fetch {
            uid: true,
            set: set(&[(n(1), SeqNo::Star)]),
            items: FetchItems::Attrs(vec![FetchAttr::Flags]),
            modifiers: FetchModifiers {
                changed_since: Some(12345),
                vanished: false,
                partial: None
            }
        }
    );
    assert_eq!(
        ok("A04 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 20050715194045000 VANISHED)"),
        Command::Fetch {
            uid: true,
            set: set(&[(n(1), SeqNo::Star)]),
            items: FetchItems::Attrs(vec![FetchAttr::Flags]),
            modifiers: FetchModifiers {
                changed_since: Some(20050715194045000),
                vanished: true,
                partial: None
            }
        }
    );
    assert_eq!(
        ok("a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)"),
        Command::Store {
            uid: true,
            set: set(&[(n(6), n(6)), (n(4), n(4)), (n(8), n(8))]),
            unchanged_since: Some(12121230045),
            mode: StoreMode::Add,
            silent: true,
            flags: vec![Flag::Deleted]
        }
    );
    assert!(parse("a FETCH 1 FLAGS (FROB)").is_err());
    assert!(parse("a STORE 1 (FROB 1) FLAGS x").is_err());
}

#[test]
fn rfc9051_6_4_6_store_copy_move_examples() {
    assert_eq!(
        ok("A003 STORE 2:4 +FLAGS (\\Deleted)"),
        Command::Store {
            uid: false,
            set: range(2, 4),
            unchanged_since: None,
            mode: StoreMode::Add,
            silent: false,
            flags: vec![Flag::Deleted]
        }
    );
    // RFC 9051 §8: flags without parentheses, in lower case.
    assert_eq!(
        ok("a005 store 12 +flags \\deleted"),
        Command::Store {
            uid: false,
            set: one(12),
            unchanged_since: None,
            mode: StoreMode::Add,
            silent: false,
            flags: vec![Flag::Deleted]
        }
    );
    assert_eq!(
        ok("a STORE 1 -FLAGS \\Seen \\Recent $Label1 \\Frob"),
        Command::Store {
            uid: false,
            set: one(1),
            unchanged_since: None,
            mode: StoreMode::Remove,
            silent: false,
            flags: vec![
                Flag::Seen,
                Flag::Recent,
                Flag::Keyword(b("$Label1")),
                Flag::Extension(b("Frob"))
            ]
        }
    );
    assert_eq!(
        ok("a STORE 1 FLAGS ()"),
        Command::Store {
            uid: false,
            set: one(1),
            unchanged_since: None,
            mode: StoreMode::Replace,
            silent: false,
            flags: vec![]
        }
    );
    assert!(parse("a STORE 1 *FLAGS x").is_err());
    assert!(parse("a STORE 1 FLAGS \\*").is_err());
    let copy = |uid, s, m: &str| Command::Copy {
        uid,
        set: s,
        mailbox: mb(m),
    };
    assert_eq!(
        ok("A003 COPY 2:4 MEETING"),
        copy(false, range(2, 4), "MEETING")
    );
    assert_eq!(
        ok("A004 COPY 2:4 meeting"),
        copy(false, range(2, 4), "meeting")
    );
    assert_eq!(
        ok("A005 UID COPY 305:310 meeting"),
        copy(true, range(305, 310), "meeting")
    );
    assert_eq!(ok("A006 COPY 2 funny"), copy(false, one(2), "funny"));
    assert_eq!(
        ok("F283 COPY $ \"Junk\""),
        copy(false, SequenceSet::Saved, "Junk")
    );
    assert_eq!(
        ok("a UID MOVE 42:69 foo"),
        Command::Move {
            uid: true,
            set: range(42, 69),
            mailbox: mb("foo")
        }
    );
}

#[test]
fn rfc5256_sort_and_thread_examples() {
    use SearchKey as K;
    let crit = |reverse, key| SortCriterion { reverse, key };
    let utf8 = |criteria| SearchProgram {
        charset: Some(b("UTF-8")),
        criteria,
    };
    assert_eq!(
        ok("A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994"),
        Command::Sort {
            uid: false,
            returns: None,
            criteria: vec![crit(false, SortKey::Subject)],
            program: utf8(vec![K::Since(date(1, 2, 1994))])
        }
    );
    assert_eq!(
        ok("A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL"),
        Command::Sort {
            uid: false,
            returns: None,
            criteria: vec![crit(false, SortKey::Subject), crit(true, SortKey::Date)],
            program: utf8(vec![K::All])
        }
    );
    assert_eq!(
        ok("A284 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\""),
        Command::Sort {
            uid: false,
            returns: None,
            criteria: vec![crit(false, SortKey::Subject)],
            program: SearchProgram {
                charset: Some(b("US-ASCII")),
                criteria: vec![K::Text(b("not in mailbox"))]
            }
        }
    );
    // RFC 5267 §3.2.
    assert_eq!(
        ok("E01 UID SORT RETURN () (REVERSE DATE) UTF-8 UNDELETED"),
        Command::Sort {
            uid: true,
            returns: Some(vec![]),
            criteria: vec![crit(true, SortKey::Date)],
            program: utf8(vec![K::Undeleted])
        }
    );
    assert!(parse("a SORT () UTF-8 ALL").is_err());
    assert!(parse("a SORT (SUBJECT) ALL").is_err());
    assert_eq!(
        ok("A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000"),
        Command::Thread {
            uid: false,
            algorithm: ThreadAlgorithm::OrderedSubject,
            program: utf8(vec![K::Since(date(5, 3, 2000))])
        }
    );
    assert_eq!(
        ok("A284 THREAD ORDEREDSUBJECT US-ASCII TEXT \"gewp\""),
        Command::Thread {
            uid: false,
            algorithm: ThreadAlgorithm::OrderedSubject,
            program: SearchProgram {
                charset: Some(b("US-ASCII")),
                criteria: vec![K::Text(b("gewp"))]
            }
        }
    );
    assert_eq!(
        ok("A285 UID THREAD references UTF-8 SINCE 5-MAR-2000"),
        Command::Thread {
            uid: true,
            algorithm: ThreadAlgorithm::References,
            program: utf8(vec![K::Since(date(5, 3, 2000))])
        }
    );
}

#[test]
fn nesting_is_bounded() {
    let nested = |depth: usize| format!("a SEARCH {}ALL{}", "(".repeat(depth), ")".repeat(depth));
    assert!(parse(&nested(MAX_DEPTH - 1)).is_ok());
    assert_eq!(
        bad(&nested(MAX_DEPTH)),
        "Search keys are nested too deeply."
    );
    assert_eq!(bad(&nested(100_000)), "Search keys are nested too deeply.");
    let nots = |depth: usize| format!("a SEARCH {}ALL", "NOT ".repeat(depth));
    assert!(parse(&nots(MAX_DEPTH - 1)).is_ok());
    assert!(parse(&nots(100_000)).is_err());
    let ors = format!("a SEARCH {}ALL{}", "OR ALL ".repeat(10_000), "");
    assert!(parse(&ors).is_err());
    let cmd = Bytes::from(nested(5).into_bytes());
    let mut v = cmd.to_vec();
    v.extend_from_slice(b"\r\n");
    assert!(command_with_depth(&Bytes::from(v.clone()), 5).is_err());
    assert!(command_with_depth(&Bytes::from(v), 6).is_ok());
}

// ---------------------------------------------------------------- other extensions

#[test]
fn rfc2971_id() {
    assert_eq!(
        ok("a023 ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" \"Pink Floyd Music Limited\")"),
        Command::Id(Some(vec![
            (b("name"), Some(b("sodr"))),
            (b("version"), Some(b("19.34"))),
            (b("vendor"), Some(b("Pink Floyd Music Limited"))),
        ]))
    );
    assert_eq!(ok("a042 ID NIL"), Command::Id(None));
    assert_eq!(
        ok("a ID (\"x\" NIL)"),
        Command::Id(Some(vec![(b("x"), None)]))
    );
    assert_eq!(ok("a ID ()"), Command::Id(Some(vec![])));
    assert!(parse("a ID (\"x\")").is_err());
}

#[test]
fn rfc9208_quota() {
    assert_eq!(
        ok("G0001 GETQUOTA \"!partition/sda4\""),
        Command::GetQuota {
            root: b("!partition/sda4")
        }
    );
    assert_eq!(
        ok("A003 GETQUOTAROOT INBOX"),
        Command::GetQuotaRoot {
            mailbox: mb("INBOX")
        }
    );
    assert_eq!(
        ok("S0000 SETQUOTA \"User quota\" (STORAGE 510)"),
        Command::SetQuota {
            root: b("User quota"),
            limits: vec![(b("STORAGE"), 510)]
        }
    );
    assert_eq!(
        ok("S0001 SETQUOTA \"\" ()"),
        Command::SetQuota {
            root: b(""),
            limits: vec![]
        }
    );
}

#[test]
fn rfc5464_metadata() {
    assert_eq!(
        ok("a GETMETADATA \"\" /shared/comment"),
        Command::GetMetadata {
            options: MetadataOptions::default(),
            mailbox: mb(""),
            entries: vec![b("/shared/comment")]
        }
    );
    assert_eq!(
        ok("a GETMETADATA INBOX (/shared/comment /private/comment)"),
        Command::GetMetadata {
            options: MetadataOptions::default(),
            mailbox: mb("INBOX"),
            entries: vec![b("/shared/comment"), b("/private/comment")]
        }
    );
    assert_eq!(
        ok("a GETMETADATA (MAXSIZE 1024 DEPTH infinity) INBOX \"/private/comment\""),
        Command::GetMetadata {
            options: MetadataOptions {
                max_size: Some(1024),
                depth: Some(MetadataDepth::Infinity)
            },
            mailbox: mb("INBOX"),
            entries: vec![b("/private/comment")]
        }
    );
    assert_eq!(
        ok("a SETMETADATA INBOX (/private/comment \"My new comment\" /shared/x NIL /shared/y ~{2}\r\n\0\x01)"),
        Command::SetMetadata {
            mailbox: mb("INBOX"),
            entries: vec![
                (b("/private/comment"), Some(b("My new comment"))),
                (b("/shared/x"), None),
                (b("/shared/y"), Some(Bytes::from_static(b"\0\x01"))),
            ]
        }
    );
    assert!(parse("a GETMETADATA (DEPTH 2) INBOX x").is_err());
}

#[test]
fn rfc5465_notify() {
    assert_eq!(ok("a NOTIFY NONE"), Command::Notify { set: None });
    let c = ok("a NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From To)]) MessageExpunge)) (subtree Lists (MailboxName)) (mailboxes (INBOX Sent) NONE) (personal (FlagChange))");
    let Command::Notify { set: Some(s) } = c else {
        panic!()
    };
    assert!(s.status);
    assert_eq!(s.groups.len(), 4);
    assert_eq!(s.groups[0].filter, NotifyFilter::Selected);
    assert_eq!(s.groups[0].events[0].name, b("MessageNew"));
    assert_eq!(
        s.groups[0].events[0].fetch,
        vec![
            FetchAttr::Uid,
            body_peek(section(
                &[],
                Some(SectionText::HeaderFields(vec![b("From"), b("To")]))
            ))
        ]
    );
    assert_eq!(s.groups[0].events[1].name, b("MessageExpunge"));
    assert_eq!(s.groups[1].filter, NotifyFilter::Subtree(vec![mb("Lists")]));
    assert_eq!(
        s.groups[2].filter,
        NotifyFilter::Mailboxes(vec![mb("INBOX"), mb("Sent")])
    );
    assert!(s.groups[2].events.is_empty());
    assert_eq!(s.groups[3].filter, NotifyFilter::Personal);
    assert!(parse("a NOTIFY SET").is_err());
    assert!(parse("a NOTIFY SET (frob (MessageNew))").is_err());
}

#[test]
fn rfc4978_compress() {
    assert_eq!(
        ok("a COMPRESS DEFLATE"),
        Command::Compress {
            mechanism: b("DEFLATE")
        }
    );
}

/// Every client command line of the examples in RFC 9051 §6 and §8 and RFC 3501 §6 and §8, as
/// transcribed (continuation lines joined, literal data inline; SASL response lines and DONE
/// are not commands). All decode, and only the deliberately unknown `XPIG-LATIN` is unknown.
#[test]
fn every_example_command_of_rfc9051_and_rfc3501_decodes() {
    let koi8 = "B283 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1,3000:3021) TEXT {4}\r\nXXXX";
    let appends = [
        format!("A003 APPEND saved-messages (\\Seen) {{326}}\r\n{MSG_9051}\r\n"),
        format!("A003 APPEND saved-messages (\\Seen) {{297+}}\r\n{MSG_9051_PLUS}\r\n"),
        format!("A003 APPEND saved-messages (\\Seen) {{310}}\r\n{MSG_3501}\r\n"),
    ];
    let lines = [
        "abcd CAPABILITY",
        "efgh STARTTLS",
        "ijkl CAPABILITY",
        "a002 NOOP",
        "a047 NOOP",
        "A023 LOGOUT",
        "a001 CAPABILITY",
        "a002 STARTTLS",
        "a003 CAPABILITY",
        "a004 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
        "A001 AUTHENTICATE GSSAPI",
        "A01 STARTTLS",
        "A02 CAPABILITY",
        "A03 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
        "C01 CAPABILITY",
        "A01 AUTHENTICATE PLAIN",
        "A01 AUTHENTICATE EXTERNAL =",
        "a001 LOGIN SMITH SESAME",
        "t1 CAPABILITY",
        "t2 ENABLE CONDSTORE X-GOOD-IDEA",
        "t3 CAPABILITY",
        "a1 ENABLE CONDSTORE",
        "A142 SELECT INBOX",
        "A143 SELECT Drafts",
        "A932 EXAMINE blurdybloop",
        "A003 CREATE owatagusiam/",
        "A004 CREATE owatagusiam/blurdybloop",
        "A005 CREATE NonNormalized",
        "A682 LIST \"\" *",
        "A683 DELETE blurdybloop",
        "A684 DELETE foo",
        "A685 DELETE foo/bar",
        "A686 LIST \"\" *",
        "A687 DELETE foo",
        "A82 LIST \"\" *",
        "A83 DELETE blurdybloop",
        "A84 DELETE foo",
        "A85 LIST \"\" *",
        "A86 LIST \"\" %",
        "A683 RENAME blurdybloop sarasoop",
        "A684 RENAME foo zowie",
        "A685 LIST \"\" *",
        "Z432 LIST \"\" *",
        "Z433 RENAME INBOX old-mail",
        "Z434 LIST \"\" *",
        "1001 RENAME X Y",
        "1002 SUBSCRIBE Y",
        "1003 UNSUBSCRIBE X",
        "A002 SUBSCRIBE #news.comp.mail.mime",
        "A002 UNSUBSCRIBE #news.comp.mail.mime",
        "A101 LIST \"\" \"\"",
        "A102 LIST #news.comp.mail.misc \"\"",
        "A103 LIST /usr/staff/jones \"\"",
        "A202 LIST ~/Mail/ %",
        "A01 LIST \"\" \"*\"",
        "A02 LIST (SUBSCRIBED) \"\" \"*\"",
        "A03 LIST () \"\" \"%\" RETURN (CHILDREN)",
        "A04 LIST (REMOTE) \"\" \"%\" RETURN (CHILDREN)",
        "A05 LIST (REMOTE SUBSCRIBED) \"\" \"*\"",
        "A06 LIST (REMOTE) \"\" \"*\" RETURN (SUBSCRIBED)",
        "C01 LIST \"\" \"*\"",
        "CA3 LIST \"\" \"%\" RETURN (CHILDREN)",
        "C02 LIST (SUBSCRIBED) \"\" \"*\"",
        "C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"",
        "C04 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)",
        "D01 LIST \"\" \"*\"",
        "D02 LIST (SUBSCRIBED) \"\" \"*\"",
        "D03 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" \"*2\"",
        "D03 LIST (RECURSIVEMATCH SUBSCRIBED) \"\" \"*\"",
        "a1 LIST \"\" (\"foo\")",
        "a2 LIST (SUBSCRIBED) \"\" \"foo/*\"",
        "a3 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" foo RETURN (CHILDREN)",
        "a1 LIST (REMOTE) \"\" *",
        "a2 LIST () \"\" %",
        "a3 LIST (REMOTE) \"\" %",
        "a3.1 LIST \"\" (% music/rock)",
        "A01 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))",
        "A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (STATUS (MESSAGES))",
        "A001 NAMESPACE",
        "A002 CREATE \"INBOX.Sent Mail\"",
        "A002 LIST (SPECIAL-USE) \"\" \"*\"",
        "A003 LIST (SPECIAL-USE) \"#mh/\" \"*\"",
        "A004 CREATE \"Sent Mail\"",
        "A005 CREATE \"Delete Items\"",
        "A006 CREATE \"#mh/Deleted Items\"",
        "A002 LIST \"\" \"Other Users/%\"",
        "A002 LIST \"\" \"#Users/%\"",
        "A003 LIST \"\" \"#Users/Mike/%\"",
        "A002 LIST \"\" \"~mark/%\"",
        "A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
        &appends[0],
        &appends[1],
        "A004 COPY 2:4 meeting",
        "A005 UID COPY 305:310 meeting",
        "A006 COPY 2 funny",
        "A007 SELECT funny",
        "A001 SELECT INBOX",
        "A002 IDLE",
        "A003 FETCH 4 ALL",
        "A004 IDLE",
        "A005 FETCH 3 ALL",
        "A006 IDLE",
        "A341 CLOSE",
        "A342 UNSELECT",
        "A202 EXPUNGE",
        "A282 SEARCH RETURN (MIN COUNT) FLAGGED",
        "A283 SEARCH RETURN () FLAGGED",
        "A284 SEARCH TEXT \"string not in mailbox\"",
        "A285 SEARCH CHARSET UTF-8 TEXT {12}\r\nотпуск",
        "A284 SEARCH RETURN (MIN) UNSEEN",
        "A285 UID SEARCH RETURN (MIN MAX) 1:5000",
        "A286 SEARCH RETURN (COUNT) DELETED",
        "A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994",
        "A283 FETCH $ (UID INTERNALDATE FLAGS BODY.PEEK[HEADER])",
        "A300 SEARCH RETURN (SAVE) SINCE 1-Jan-2004",
        "A301 UID SEARCH UID $ SMALLER 4096",
        "A301 UID SEARCH $ SMALLER 4096",
        "P282 SEARCH RETURN (SAVE) SINCE 1-Feb-1994",
        "P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8+}\r\nмать",
        "B282 SEARCH RETURN (SAVE) SINCE 1-Feb-1994",
        koi8,
        "E282 SEARCH RETURN (SAVE) SINCE 28-Oct-2006",
        "E283 COPY $ \"Other Messages\"",
        "F282 SEARCH RETURN (SAVE) KEYWORD $Junk",
        "F283 COPY $ \"Junk\"",
        "F284 STORE $ +FLAGS.Silent (\\Deleted)",
        "G282 SEARCH RETURN (SAVE) KEYWORD $Junk",
        "G283 SEARCH RETURN (ALL) SINCE 28-Oct-2006",
        "H282 SEARCH RETURN (SAVE) KEYWORD $Junk",
        "H283 SEARCH RETURN (SAVE) SINCE 28-Oct-2006",
        "C282 SEARCH RETURN (ALL) SINCE 12-Feb-2006",
        "C283 SEARCH RETURN (ALL SAVE) SINCE 12-Feb-2006",
        "C284 SEARCH RETURN (SAVE MIN) SINCE 12-Feb-2006",
        "C285 SEARCH RETURN (MAX SAVE MIN) SINCE 12-Feb-2006 NOT FROM \"Smith\"",
        "C286 SEARCH RETURN (MAX SAVE MIN COUNT) SINCE 12-Feb-2006 NOT FROM \"Smith\"",
        "C286 SEARCH RETURN (ALL SAVE MIN) SINCE 12-Feb-2006 NOT FROM \"Smith\"",
        "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
        "A003 STORE 2:4 +FLAGS (\\Deleted)",
        "A003 COPY 2:4 MEETING",
        "a UID MOVE 42:69 foo",
        "A003 UID EXPUNGE 3000:3002",
        "A999 UID FETCH 4827313:4828442 FLAGS",
        "a441 CAPABILITY",
        "a000 starttls",
        "A001 AUTHENTICATE SCRAM-SHA-256",
        "babc ENABLE IMAP4rev2",
        "a002 select inbox",
        "a003 fetch 12 full",
        "a004 fetch 12 body[header]",
        "a005 store 12 +flags \\deleted",
        "a006 logout",
        // RFC 3501 only.
        "a004 LOGIN joe password",
        "A002 LSUB \"#news.\" \"comp.mail.*\"",
        "A003 LSUB \"#news.\" \"comp.%\"",
        &appends[2],
        "FXXZ CHECK",
        "A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
        "A283 SEARCH TEXT \"string not in mailbox\"",
        "A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX",
        "a001 login mrc secret",
    ];
    for line in lines {
        let c = ok(line);
        assert!(!matches!(c, Command::Unknown { .. }), "{line:?}");
    }
    assert_eq!(
        ok("A442 XPIG-LATIN"),
        Command::Unknown {
            name: b("XPIG-LATIN")
        }
    );
    // The DONE lines of the IDLE examples (RFC 9051 §6.3.13).
    assert!(idle_done(b"DONE"));
}
