//! Known-answer tests for the response encoder: RFC example responses parsed with
//! `parse_response` and written back byte for byte, and each choice of string form.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::imap::command::Tag;
use crate::imap::response::{Code, FetchItem};
use crate::imap::response_decode::parse_response;
use crate::mail::section::{Section, SectionText};
use crate::mail::structure::{BodyExtension, BodyFields, BodyStructure, Disposition};

fn enc(r: &Response, opts: EncodeOptions) -> String {
    let mut out = BytesMut::new();
    response(&mut out, r, &opts);
    String::from_utf8(out.to_vec()).unwrap()
}

fn parsed(line: &str) -> Response {
    let (r, used) = parse_response(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert_eq!(used, line.len(), "{line:?}");
    r
}

/// Parses `line` and checks that the encoder writes exactly it again.
fn same(line: &str) {
    let r = parsed(line);
    assert_eq!(enc(&r, EncodeOptions::utf8()), line, "{r:?}");
}

fn data(d: Data) -> Response {
    Response::Data(d)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[test]
fn status_lines_and_codes() {
    let tag = Tag::new(b("a1"));
    let r = Response::Status(StatusResponse {
        tag,
        condition: Condition::No,
        code: Some(Code::TooBig),
        text: "too\r\nbig".into(),
    });
    assert_eq!(
        enc(&r, EncodeOptions::default()),
        "a1 NO [TOOBIG] too  big\r\n"
    );
    let r = Response::Status(StatusResponse {
        tag: None,
        condition: Condition::Ok,
        code: Some(Code::PermanentFlags {
            flags: vec![Flag::Seen, Flag::Keyword(b("$Junk"))],
            keywords: true,
        }),
        text: "x".into(),
    });
    assert_eq!(
        enc(&r, EncodeOptions::default()),
        "* OK [PERMANENTFLAGS (\\Seen $Junk \\*)] x\r\n"
    );
}

#[test]
fn rfc9051_7_strings_pick_their_form() {
    let item = ListItem {
        attributes: vec![b("\\HasNoChildren")],
        delimiter: Some(b'/'),
        name: b("Sent Items"),
        extended: vec![],
    };
    assert_eq!(
        enc(&data(Data::List(item)), EncodeOptions::default()),
        "* LIST (\\HasNoChildren) \"/\" \"Sent Items\"\r\n"
    );
    // An atom NIL would read as nil to a client expecting an nstring.
    assert_eq!(
        enc(
            &data(Data::Status {
                mailbox: b("nil"),
                items: vec![(StatusItem::Messages, StatusValue::Number(3))]
            }),
            EncodeOptions::default()
        ),
        "* STATUS \"nil\" (MESSAGES 3)\r\n"
    );
    let id = data(Data::Id(Some(vec![(b("name"), Some(b("tërn")))])));
    assert_eq!(
        enc(&id, EncodeOptions::default()),
        "* ID (\"name\" {5}\r\ntërn)\r\n"
    );
    assert_eq!(
        enc(&id, EncodeOptions::utf8()),
        "* ID (\"name\" \"tërn\")\r\n"
    );
    // Long values go as literals even when they could be quoted.
    let long = "x ".repeat(2049);
    let r = data(Data::Id(Some(vec![(b("k"), Some(b(&long)))])));
    assert!(enc(&r, EncodeOptions::default()).starts_with("* ID (\"k\" {4098}\r\n"));
}

#[test]
fn fetch_items_message_data_is_always_a_literal() {
    let r = data(Data::Fetch {
        seq: 12,
        items: vec![
            FetchItem::Uid(7),
            FetchItem::InternalDate(crate::mail::date::DateTime {
                date: crate::mail::date::Date {
                    year: 1996,
                    month: 7,
                    day: 1,
                },
                hour: 2,
                minute: 44,
                second: 25,
                zone_minutes: -420,
            }),
            FetchItem::BodySection {
                section: Section {
                    part: vec![1],
                    text: Some(SectionText::Mime),
                },
                origin: Some(0),
                data: Some(b("ab")),
            },
            FetchItem::Binary {
                part: vec![2],
                origin: None,
                data: Some(Bytes::from_static(b"a\0")),
            },
            FetchItem::Rfc822Text(None),
        ],
    });
    assert_eq!(
        enc(&r, EncodeOptions::default()),
        "* 12 FETCH (UID 7 INTERNALDATE \" 1-Jul-1996 02:44:25 -0700\" BODY[1.MIME]<0> {2}\r\nab BINARY[2] ~{2}\r\na\0 RFC822.TEXT NIL)\r\n"
    );
}

/// Empty sections are empty literals, as Dovecot sends them, never `""` (issue 14 item 6).
#[test]
fn fetch_items_empty_message_data_is_an_empty_literal() {
    let section = |part: Vec<u32>| FetchItem::BodySection {
        section: Section { part, text: None },
        origin: None,
        data: Some(Bytes::new()),
    };
    let r = data(Data::Fetch {
        seq: 1,
        items: vec![
            section(vec![1]),
            FetchItem::Binary {
                part: vec![1],
                origin: None,
                data: Some(Bytes::new()),
            },
            FetchItem::Rfc822Text(Some(Bytes::new())),
            FetchItem::Rfc822Header(Some(Bytes::new())),
            FetchItem::Rfc822(Some(Bytes::new())),
        ],
    });
    assert_eq!(
        enc(&r, EncodeOptions::utf8()),
        "* 1 FETCH (BODY[1] {0}\r\n BINARY[1] {0}\r\n RFC822.TEXT {0}\r\n RFC822.HEADER {0}\r\n RFC822 {0}\r\n)\r\n"
    );
}

#[test]
fn rfc9051_8_sample_connection_server_lines() {
    for line in [
        "* OK [CAPABILITY STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED IMAP4rev2] IMAP4rev2 Service Ready\r\n",
        "a000 OK Proceed with TLS negotiation\r\n",
        "+ cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGopaE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=\r\n",
        "A001 OK SCRAM-SHA-256 authentication successful\r\n",
        "* ENABLED IMAP4rev2\r\n",
        "babc OK Some capabilities enabled\r\n",
        "* 18 EXISTS\r\n",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
        "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
        "* LIST () \"/\" INBOX (\"OLDNAME\" (\"inbox\"))\r\n",
        "a002 OK [READ-WRITE] SELECT completed\r\n",
        "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.ed>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n",
        "a003 OK FETCH completed\r\n",
        "* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\n",
        "a005 OK +FLAGS completed\r\n",
        "* BYE IMAP4rev2 server terminating connection\r\n",
        "a006 OK LOGOUT completed\r\n",
    ] {
        same(line);
    }
    let header = "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev2 WG mtg summary and minutes\r\nTo: imap@cac.washington.edu\r\ncc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\nMessage-Id: <B27397-0100000@cac.washington.edu>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n";
    assert_eq!(header.len(), 342);
    let line = format!("* 12 FETCH (BODY[HEADER] {{342}}\r\n{header})\r\n");
    same(&line);
    assert_eq!(
        parsed(&line),
        data(Data::Fetch {
            seq: 12,
            items: vec![FetchItem::BodySection {
                section: Section {
                    part: vec![],
                    text: Some(SectionText::Header)
                },
                origin: None,
                data: Some(b(header))
            }]
        })
    );
}

#[test]
fn rfc9051_7_examples() {
    for line in [
        "* OK IMAP4rev2 server ready\r\n",
        "* OK [ALERT] System shutdown in 10 minutes\r\n",
        "A001 OK LOGIN Completed\r\n",
        "A223 NO COPY failed: disk is full\r\n",
        "* BAD Command line too long\r\n",
        "* PREAUTH IMAP4rev2 server logged in as Smith\r\n",
        "* BYE Autologout; idle for too long\r\n",
        "* CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI XPIG-LATIN\r\n",
        "* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n",
        "* LIST (\\Marked \\NoInferiors) \"/\" inbox\r\n",
        "* LIST () NIL Foo\r\n",
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n",
        "* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"Public Folders.\" \".\")(\"#ftp/\" \"/\"))\r\n",
        "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
        "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n",
        "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n",
        "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n",
        "* ESEARCH (TAG \"a4\") MIN 2 COUNT 10 MODSEQ 917162500\r\n",
        "* ESEARCH UID COUNT 17 ALL 4:18,21,28\r\n",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
        "* 23 EXISTS\r\n",
        "* 5 RECENT\r\n",
        "* 44 EXPUNGE\r\n",
        "* 23 FETCH (FLAGS (\\Seen) RFC822.SIZE 44827)\r\n",
        "+ Ready for additional command text\r\n",
        "* OK [UNSEEN 17] Message 17 is the first unseen message\r\n",
        "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
        "* OK [PERMANENTFLAGS ()] No permanent flags permitted\r\n",
        "A142 OK [READ-WRITE] SELECT completed\r\n",
        "A932 OK [READ-ONLY] EXAMINE completed\r\n",
        "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
        "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
        "B283 NO [BADCHARSET (UTF-8)] KOI8-R is not supported\r\n",
        "a NO [BADCHARSET] no\r\n",
        "C2 NO [TRYCREATE] Mailbox doesn't exist\r\n",
        "a OK [CLOSED] Previous mailbox is now closed\r\n",
        "a NO [XFOO some text] Unknown code\r\n",
        "a NO [XFOO] Unknown code without text\r\n",
        "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
        "* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n",
        "d105 OK [MODIFIED 7,9] Conditional STORE completed\r\n",
        "* OK [MAILBOXID (F2212ea87-6097-4256-9d51-71338625)] Ok\r\n",
        "* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n",
        "* VANISHED 405,407,410,425\r\n",
        "* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n",
        "* SEARCH\r\n",
        "* SORT 2 84 882\r\n",
        "* SORT\r\n",
        "* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" \"sunos\" \"support-url\" NIL)\r\n",
        "* ID NIL\r\n",
        "* QUOTA \"\" (STORAGE 10 512)\r\n",
        "* QUOTAROOT INBOX \"\"\r\n",
        "* QUOTAROOT comp.mail.mime\r\n",
        "* METADATA \"\" (/shared/comment \"Shared comment\")\r\n",
        "* METADATA INBOX (/private/comment NIL /shared/x ~{2}\r\n\0\x01)\r\n",
        "* 12 FETCH (BINARY[1.2]<10> ~{3}\r\na\0b BINARY.SIZE[1] 3 MODSEQ (624140003) EMAILID (M6d99ac3275bb4e) THREADID NIL SAVEDATE \" 1-Jan-2020 10:00:00 +0000\" PREVIEW \"Hi\" UID 4)\r\n",
        "* 1 FETCH (THREADID (T64b478a75b7ea9) SAVEDATE NIL PREVIEW NIL RFC822 NIL RFC822.HEADER {1}\r\nx RFC822.TEXT {1}\r\ny)\r\n",
        "* 2 FETCH (BODY[1.2.HEADER.FIELDS.NOT (X-A \"X B\")]<0> {0}\r\n BODY[] NIL BINARY[] {2}\r\nab)\r\n",
    ] {
        same(line);
    }
}

#[test]
fn rfc5256_thread_responses() {
    for line in [
        "* THREAD (166)(167)(168)(169)(172)(170)(171)(173)(174 (175)(176)(178)(181)(180))(179)(177 (183)(182)(188)(184)(185)(186)(187)(189))(190)(191)(192)(193)(194 195)(196 (197)(198))(199)(200 202)(201)(203)(204)(205)(206 207)(208)\r\n",
        "* THREAD\r\n",
        "* THREAD (166)(167)(168)(169)(172)((170)(179))(171)(173)((174)(175)(176)(178)(181)(180))(177 (183)(182)(188 (184)(189))(185 186)(187))\r\n",
        "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n",
        "* THREAD ((3)(5))\r\n",
    ] {
        same(line);
    }
    let Response::Data(Data::Thread(t)) = parsed("* THREAD (2)(3 6 (4 23)(44 7 96))\r\n") else {
        panic!()
    };
    let leaf = |n| ThreadNode {
        seq: Some(n),
        children: vec![],
    };
    let chain = |n, c| ThreadNode {
        seq: Some(n),
        children: vec![c],
    };
    assert_eq!(
        t,
        vec![
            leaf(2),
            chain(
                3,
                ThreadNode {
                    seq: Some(6),
                    children: vec![chain(4, leaf(23)), chain(44, chain(7, leaf(96)))]
                }
            )
        ]
    );
}

#[test]
fn rfc9051_7_5_2_body_structure_example() {
    let line = "* 1 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \"MIXED\"))\r\n";
    same(line);
    let Response::Data(Data::Fetch { items, .. }) = parsed(line) else {
        panic!()
    };
    let FetchItem::Body(body) = &items[0] else {
        panic!()
    };
    let BodyStructure::Multipart { parts, subtype, .. } = body.as_ref() else {
        panic!()
    };
    assert_eq!(subtype, "MIXED");
    assert_eq!(parts.len(), 2);
    let BodyStructure::Single { fields, lines, .. } = &parts[1] else {
        panic!()
    };
    assert_eq!(fields.encoding, "BASE64");
    assert_eq!(fields.description.as_deref(), Some(&b"Compiler diff"[..]));
    assert_eq!(*lines, Some(73));
}

#[test]
fn bodystructure_writes_every_extension_field() {
    let single = BodyStructure::Single {
        media_type: b("APPLICATION"),
        subtype: b("PDF"),
        fields: BodyFields {
            params: vec![(b("NAME"), b("a.pdf"))],
            id: None,
            description: None,
            encoding: b("BASE64"),
            octets: 100,
        },
        lines: None,
        md5: None,
        ext: BodyExtension {
            disposition: Some(Disposition {
                kind: b("attachment"),
                params: vec![(b("filename"), b("a.pdf"))],
            }),
            language: vec![b("en"), b("de")],
            location: Some(b("http://x/")),
        },
    };
    let multi = BodyStructure::Multipart {
        parts: vec![single],
        subtype: b("MIXED"),
        params: vec![(b("BOUNDARY"), b("xx"))],
        ext: BodyExtension::default(),
    };
    let r = data(Data::Fetch {
        seq: 1,
        items: vec![FetchItem::BodyStructure(Box::new(multi))],
    });
    let s = enc(&r, EncodeOptions::ascii());
    assert_eq!(
        s,
        "* 1 FETCH (BODYSTRUCTURE ((\"APPLICATION\" \"PDF\" (\"NAME\" \"a.pdf\") NIL NIL \"BASE64\" 100 NIL (\"attachment\" (\"filename\" \"a.pdf\")) (\"en\" \"de\") \"http://x/\") \"MIXED\" (\"BOUNDARY\" \"xx\") NIL NIL NIL))\r\n"
    );
    assert_eq!(parsed(&s), r);
}

#[test]
fn strings_take_the_lightest_allowed_form() {
    let w = Strings::response(&EncodeOptions::ascii());
    let u = Strings::response(&EncodeOptions::utf8());
    let astr = |w: &Strings, s: &[u8]| {
        let mut o = BytesMut::new();
        w.astring(&mut o, s);
        o.to_vec()
    };
    let nstr8 = |w: &Strings, s: &[u8]| {
        let mut o = BytesMut::new();
        w.nstring8(&mut o, Some(s));
        o.to_vec()
    };
    assert_eq!(astr(&w, b"INBOX"), b"INBOX");
    assert_eq!(astr(&w, b"Nil"), b"\"Nil\"");
    assert_eq!(astr(&w, b"a]b"), b"a]b");
    assert_eq!(astr(&w, b""), b"\"\"");
    assert_eq!(astr(&w, b"a b"), b"\"a b\"");
    assert_eq!(astr(&w, b"a%b"), b"\"a%b\"");
    assert_eq!(astr(&w, b"q\"\\"), b"\"q\\\"\\\\\"");
    assert_eq!(astr(&w, b"a\r\nb"), b"{4}\r\na\r\nb");
    assert_eq!(
        astr(&w, "Entwürfe".as_bytes()),
        "{9}\r\nEntwürfe".as_bytes()
    );
    assert_eq!(astr(&u, "Entwürfe".as_bytes()), "\"Entwürfe\"".as_bytes());
    // Invalid UTF-8 is never quoted, even with UTF-8 on.
    assert_eq!(astr(&u, b"\xff"), b"{1}\r\n\xff");
    assert_eq!(nstr8(&w, b"a\0b"), b"~{3}\r\na\0b");
    assert_eq!(nstr8(&w, b"ab"), b"\"ab\"");
}

#[test]
fn text_is_one_line_and_seven_bit_unless_utf8() {
    let r = Response::Status(StatusResponse {
        tag: None,
        condition: Condition::Ok,
        code: None,
        text: "Grüße\r\nx".into(),
    });
    assert_eq!(enc(&r, EncodeOptions::ascii()), "* OK Gr??e  x\r\n");
    assert_eq!(enc(&r, EncodeOptions::utf8()), "* OK Grüße  x\r\n");
    let empty = Response::Status(StatusResponse {
        tag: Some(Tag::new(b("t")).unwrap()),
        condition: Condition::No,
        code: Some(Code::Limit),
        text: String::new(),
    });
    assert_eq!(
        enc(&empty, EncodeOptions::ascii()),
        "t NO [LIMIT] Done.\r\n"
    );
    let bracket = Response::Status(StatusResponse {
        tag: None,
        condition: Condition::Ok,
        code: None,
        text: "[not a code]".into(),
    });
    assert_eq!(
        enc(&bracket, EncodeOptions::ascii()),
        "* OK  [not a code]\r\n"
    );
    let other = Response::Status(StatusResponse {
        tag: None,
        condition: Condition::No,
        code: Some(Code::Other(b("X"), Some(b("a]b\r\n")))),
        text: "t".into(),
    });
    assert_eq!(enc(&other, EncodeOptions::ascii()), "* NO [X a b  ] t\r\n");
}

#[test]
fn parse_response_reports_incomplete_input() {
    use crate::imap::response_decode::ResponseDecodeError as E;
    assert_eq!(parse_response(b"* 1 EXISTS"), Err(E::Incomplete));
    assert_eq!(
        parse_response(b"* 1 FETCH (BODY[] {5}\r\nab"),
        Err(E::Incomplete)
    );
    assert!(matches!(parse_response(b"* FROB\r\n"), Err(E::Invalid(_))));
    let two = b"* 1 EXISTS\r\n* 2 EXISTS\r\n";
    let (r, used) = parse_response(two).unwrap();
    assert_eq!(r, data(Data::Exists(1)));
    assert_eq!(used, 12);
}
