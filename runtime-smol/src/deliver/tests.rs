use super::*;

fn args(list: &[&str]) -> Result<Parsed, String> {
    Args::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

fn reply(code: u16, enhanced: Option<&str>) -> Reply {
    Reply {
        code,
        enhanced: enhanced.map(str::to_string),
        text: "text".into(),
    }
}

#[test]
fn arguments_long_and_dovecot_lda_short() {
    assert_eq!(
        args(&[
            "--user",
            "alice",
            "--mailbox",
            "Lists/rust",
            "--config",
            "/etc/tern.toml"
        ]),
        Ok(Parsed::Deliver(Args {
            user: "alice".into(),
            mailbox: Some("Lists/rust".into()),
            config: "/etc/tern.toml".into(),
            sender: None,
        }))
    );
    assert_eq!(
        args(&[
            "-f",
            "",
            "-d",
            "alice@example.org",
            "-m",
            "Junk",
            "-c",
            "t.toml"
        ]),
        Ok(Parsed::Deliver(Args {
            user: "alice@example.org".into(),
            mailbox: Some("Junk".into()),
            config: "t.toml".into(),
            sender: Some(String::new()),
        }))
    );
    let Ok(Parsed::Deliver(a)) = args(&["--user", "bob"]) else {
        panic!()
    };
    assert_eq!(a.config, PathBuf::from("tern.toml"));
    assert_eq!(args(&["--help"]), Ok(Parsed::Help));
    // An empty `-m` (a pipe transport's empty `${extension}`) is no mailbox; `NAME+M` alone
    // is LMTP's own form.
    let Ok(Parsed::Deliver(a)) = args(&["-d", "bob", "-m", ""]) else {
        panic!()
    };
    assert_eq!(a.mailbox, None);
    let Ok(Parsed::Deliver(a)) = args(&["-d", "bob+Lists@example.org"]) else {
        panic!()
    };
    assert_eq!(a.recipient(), "bob+Lists@example.org");
}

#[test]
fn bad_arguments_are_refused() {
    for bad in [
        &[][..],
        &["--mailbox", "x"],
        &["--user"],
        &["--user", ""],
        &["--user", "a", "--user", "b"],
        &["--user", "a", "--bogus", "x"],
        &["--user", "a", "stray"],
        &["--user", "a>b"],
        &["--user", "a b"],
        // `a+b` names mailbox `b` already.
        &["--user", "a+b", "--mailbox", "c"],
        &["--user", "a+b@example.org", "-m", "c"],
        &["--user", "a", "--mailbox", "x>y"],
        &["--user", "a", "--mailbox", "x\r\nBcc: y"],
        &["--user", "a", "-f", "x>y"],
        &["--user", "a", "-f", "x y"],
    ] {
        assert!(args(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_mailbox_travels_as_a_detail() {
    let a = |user: &str, mailbox: Option<&str>| Args {
        user: user.into(),
        mailbox: mailbox.map(str::to_string),
        config: PathBuf::new(),
        sender: None,
    };
    assert_eq!(a("alice", None).recipient(), "alice");
    assert_eq!(a("alice", Some("A/B")).recipient(), "alice+A/B");
    assert_eq!(
        a("alice@example.org", Some("Junk")).recipient(),
        "alice+Junk@example.org"
    );
}

#[test]
fn replies_map_to_sysexits() {
    use Stage::*;
    let code = |stage, r: Reply| outcome(stage, &r).map_err(|e| e.exit_code());
    assert_eq!(code(Greeting, reply(220, None)), Ok(()));
    assert_eq!(code(Data, reply(354, None)), Ok(()));
    assert_eq!(code(Delivered, reply(250, Some("2.0.0"))), Ok(()));
    // 3xx is only right for DATA.
    assert_eq!(code(Rcpt, reply(354, None)), Err(EX_TEMPFAIL));
    assert_eq!(code(Delivered, reply(451, Some("4.3.0"))), Err(EX_TEMPFAIL));
    assert_eq!(code(Greeting, reply(421, Some("4.3.2"))), Err(EX_TEMPFAIL));
    assert_eq!(code(Rcpt, reply(550, Some("5.1.1"))), Err(EX_NOUSER));
    assert_eq!(code(Rcpt, reply(501, Some("5.5.4"))), Err(EX_NOUSER));
    assert_eq!(code(Mail, reply(552, Some("5.3.4"))), Err(EX_DATAERR));
    assert_eq!(code(Delivered, reply(552, Some("5.3.4"))), Err(EX_DATAERR));
    assert_eq!(code(Delivered, reply(552, Some("5.2.2"))), Err(EX_TEMPFAIL));
    assert_eq!(code(Mail, reply(501, Some("5.5.4"))), Err(EX_DATAERR));
    assert_eq!(code(Lhlo, reply(500, None)), Err(EX_TEMPFAIL));
    assert_eq!(code(Delivered, reply(199, None)), Err(EX_TEMPFAIL));
    assert_eq!(code(Delivered, reply(600, None)), Err(EX_TEMPFAIL));
}

#[test]
fn reply_lines_parse() {
    assert_eq!(parse_reply_line("250-PIPELINING"), Ok(None));
    assert_eq!(
        parse_reply_line("550 5.1.1 <x> No such user here"),
        Ok(Some(Reply {
            code: 550,
            enhanced: Some("5.1.1".into()),
            text: "<x> No such user here".into(),
        }))
    );
    assert_eq!(
        parse_reply_line("354 Start mail input"),
        Ok(Some(Reply {
            code: 354,
            enhanced: None,
            text: "Start mail input".into(),
        }))
    );
    assert_eq!(
        parse_reply_line("250"),
        Ok(Some(Reply {
            code: 250,
            enhanced: None,
            text: String::new(),
        }))
    );
    assert!(parse_reply_line("hello").is_err());
    assert!(parse_reply_line("25").is_err());
    assert!(parse_reply_line("250x").is_err());
}

#[test]
fn messages_are_stuffed_with_crlf_and_lose_their_from_line() {
    let m = Message::prepare(
        b"From bob@example.org Mon Dec  7 10:00:00 2026\nSubject: x\n\n.\n..two\nlast",
    );
    assert_eq!(m.from_line_sender.as_deref(), Some("bob@example.org"));
    assert_eq!(m.data, b"Subject: x\r\n\r\n..\r\n...two\r\nlast\r\n");
    // Unstuffed: "Subject: x\r\n\r\n.\r\n..two\r\nlast\r\n".
    assert_eq!(m.size, 30);
    assert!(!m.eight_bit);
    let m = Message::prepare(b"Subject: y\r\n\r\nj\xc3\xa4\r\n");
    assert_eq!(m.from_line_sender, None);
    assert_eq!(m.data, b"Subject: y\r\n\r\nj\xc3\xa4\r\n");
    assert!(m.eight_bit);
    // A bare CR is content, not a line end (as the LMTP server reads it).
    assert_eq!(Message::prepare(b"a\rb\n").data, b"a\rb\r\n");
}

#[test]
fn empty_and_oversized_input_is_a_data_error() {
    let read = |input: &[u8], limit| Message::read(&mut &input[..], limit).map(|m| m.size);
    assert_eq!(read(b"", 100).map_err(|e| e.exit_code()), Err(EX_DATAERR));
    assert_eq!(
        read(b"From a@b Mon Dec  7 10:00:00 2026\n", 100).map_err(|e| e.exit_code()),
        Err(EX_DATAERR)
    );
    // 10 lines of 8 octets and LF: 100 octets with CRLF, exactly the limit.
    let ten = b"12345678\n".repeat(10);
    assert_eq!(read(&ten, 100), Ok(100));
    assert_eq!(read(&ten, 99).map_err(|e| e.exit_code()), Err(EX_DATAERR));
    // Far over the limit: refused without reading it all.
    let huge = vec![b'x'; 10_000];
    assert_eq!(read(&huge, 100).map_err(|e| e.exit_code()), Err(EX_DATAERR));
}

#[test]
fn the_lmtp_socket_is_preferred_and_wildcards_are_reached_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let load = |listeners: &str| {
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            format!(
                "[storage]\npath = \"data\"\n\n{listeners}\n[[directory.users]]\n\
                 name = \"alice\"\nsecret = \"{{plain}}x\"\n"
            ),
        )
        .unwrap();
        Config::load(&path).unwrap()
    };
    let imap = "[server.listener.\"imap\"]\nbind = [\"127.0.0.1:0\"]\nprotocol = \"imap\"\n";
    assert_eq!(lmtp_place(&load(imap)), None);
    let tcp = "[server.listener.\"a\"]\nbind = [\"0.0.0.0:24\"]\nprotocol = \"lmtp\"\n\
               local-only = false\n";
    assert_eq!(
        lmtp_place(&load(&format!("{imap}{tcp}"))),
        Some(Place::Tcp("127.0.0.1:24".parse().unwrap()))
    );
    let v6 = "[server.listener.\"a\"]\nbind = [\"[::]:24\"]\nprotocol = \"lmtp\"\n";
    assert_eq!(
        lmtp_place(&load(v6)),
        Some(Place::Tcp("[::1]:24".parse().unwrap()))
    );
    let unix = "[server.listener.\"b\"]\npath = \"run/lmtp.sock\"\nprotocol = \"lmtp\"\n";
    assert_eq!(
        lmtp_place(&load(&format!("{tcp}{unix}"))),
        Some(Place::Unix(dir.path().join("run/lmtp.sock")))
    );
}
