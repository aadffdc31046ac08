//! The `blocking_server` example, over real loopback sockets: the core embeds in a plain
//! `std::net` thread-per-connection runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // Measuring real delays needs the real clock.

#[path = "../examples/blocking_server.rs"]
#[allow(dead_code)] // Its `main` is not run here.
mod blocking_server;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tern_core::{Limits, Protocol};

/// Bounds every read, so a server that stops answering fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(10);

fn start(protocol: Protocol, limits: Limits) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let backing = Arc::new(blocking_server::Backing::default());
    backing.directory.lock().unwrap().add_user("demo", "demo");
    thread::spawn(move || blocking_server::serve_with(listener, protocol, limits, backing));
    addr
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send(&mut self, data: &str) {
        self.writer.write_all(data.as_bytes()).unwrap();
    }

    /// The next line, CRLF included; panics on EOF or after [`PATIENCE`].
    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert_ne!(n, 0, "server closed the connection unexpectedly");
        line
    }

    fn expect_eof(&mut self) {
        let mut rest = String::new();
        assert_eq!(self.reader.read_line(&mut rest).unwrap(), 0, "got {rest:?}");
    }
}

#[test]
fn imap_login_and_logout_over_tcp() {
    let mut c = Client::connect(start(Protocol::Imap, Limits::default()));
    assert_eq!(
        c.line(),
        "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN] tern ready.\r\n"
    );
    // A command split across two segments is framed once.
    c.send("a LOG");
    c.writer.flush().unwrap();
    thread::sleep(Duration::from_millis(50));
    c.send("IN demo demo\r\n");
    assert_eq!(
        c.line(),
        "a OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UNAUTHENTICATE UIDPLUS ESEARCH SEARCHRES SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES THREAD=REFS ESORT PARTIAL LIST-EXTENDED LIST-STATUS MOVE BINARY SPECIAL-USE CREATE-SPECIAL-USE STATUS=SIZE CHILDREN MULTIAPPEND REPLACE UTF8=ACCEPT WITHIN OBJECTID PREVIEW SAVEDATE CONDSTORE QRESYNC UIDONLY MULTISEARCH METADATA INPROGRESS APPENDLIMIT=67108864] Logged in.\r\n"
    );
    c.send("b LOGOUT\r\n");
    assert_eq!(c.line(), "* BYE Logging out.\r\n");
    assert_eq!(c.line(), "b OK LOGOUT completed.\r\n");
    c.expect_eof();
}

#[test]
fn pop3_user_pass_quit_over_tcp() {
    let mut c = Client::connect(start(Protocol::Pop3, Limits::default()));
    assert_eq!(c.line(), "+OK tern ready.\r\n");
    c.send("USER demo\r\n");
    assert_eq!(c.line(), "+OK\r\n");
    c.send("PASS demo\r\n");
    assert_eq!(c.line(), "+OK Logged in.\r\n");
    c.send("QUIT\r\n");
    assert_eq!(c.line(), "+OK Logging out.\r\n");
    c.expect_eof();
}

#[test]
fn deadlines_become_read_timeouts() {
    let mut limits = Limits::default();
    limits.auth_failure_delay = Duration::from_millis(200);
    limits.imap_autologout = Duration::from_millis(600);
    let mut c = Client::connect(start(Protocol::Imap, limits));
    c.line();
    let asked = Instant::now();
    c.send("a LOGIN demo wrong\r\nb NOOP\r\n");
    assert_eq!(
        c.line(),
        "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    assert!(asked.elapsed() >= Duration::from_millis(200));
    assert_eq!(c.line(), "b OK NOOP completed.\r\n");
    // The inactivity timer runs from the last bytes received, not from the last answer.
    assert_eq!(c.line(), "* BYE Autologout; idle for too long.\r\n");
    assert!(asked.elapsed() >= Duration::from_millis(600));
    c.expect_eof();
}

#[test]
fn peer_closing_ends_the_connection_thread_quietly() {
    let addr = start(Protocol::Pop3, Limits::default());
    let mut c = Client::connect(addr);
    c.line();
    c.writer.shutdown(std::net::Shutdown::Write).unwrap();
    c.expect_eof();
    // The listener still serves others.
    let mut d = Client::connect(addr);
    assert_eq!(d.line(), "+OK tern ready.\r\n");
}
