//! Drives a whole session from fuzzer bytes, as the binary would: `Session`, `MemStore` and
//! `MemDirectory` through `tern_core::drive::pump`, TLS handshakes completed at once, change
//! notifications delivered, short deadlines (failed-login delays) waited out on a virtual
//! clock.
//!
//! Input: the first octet picks how the rest is cut into reads (0: one read; n: reads of n
//! octets), the rest is what the client sends. Besides "never panics, never hangs, never
//! allocates wildly", the session must never report a driver error, never ask for a deadline
//! that has already passed, and must close when the peer does.
//!
//! A second IMAP session of the same account idles on INBOX throughout, so that what the
//! fuzzed session changes reaches another session's synchronisation code too.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tern_core::drive::{pump, Blocked};
use tern_core::store::NewMessage;
use tern_core::{
    Input, MemDirectory, MemStore, Output, Protocol, Session, SessionConfig, StorageOp, Store,
    Transport,
};

/// Deadlines closer than this are waited out (the failed-login delay is 2 s, doubling); the
/// autologout and inactivity timers are not, so a run never ends by timing out.
const WAIT: Duration = Duration::from_secs(60);

const MESSAGES: [&str; 3] = [
    "From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: Hello\r\nDate: Mon, 2 Feb 2026 10:00:00 +0000\r\n\r\nHello, world.\r\n.\r\n..dots\r\n",
    "From: carol@example.net\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain part\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX--\r\n",
    "Subject: x\r\n\r\ny\r\n",
];

struct Conn {
    session: Session,
    blocked: Blocked,
}

pub struct Driver {
    store: MemStore,
    directory: MemDirectory,
    now: Instant,
    main: Conn,
    watcher: Conn,
}

impl Driver {
    fn new(protocol: Protocol) -> Driver {
        let mut store = MemStore::new();
        let mut directory = MemDirectory::new();
        directory.add_user("alice", "wonderland");
        for (i, m) in MESSAGES.iter().enumerate() {
            let flags = if i == 0 {
                vec![tern_core::mail::flags::Flag::Seen]
            } else {
                Vec::new()
            };
            let _ = store.execute(StorageOp::Append {
                account: "alice".into(),
                name: "INBOX".into(),
                messages: vec![NewMessage {
                    flags,
                    internal_date: None,
                    data: Bytes::from_static(m.as_bytes()),
                }],
            });
        }
        let _ = store.take_changes();
        #[allow(clippy::disallowed_methods)] // One real origin; the clock is virtual after it.
        let now = Instant::now();
        // STARTTLS offered, and plaintext passwords allowed as for a loopback peer, so both
        // the upgrade and every login path are reachable.
        let mut config = SessionConfig::new(protocol, Transport::StartTlsAvailable);
        config.plaintext_auth_without_tls = true;
        let mut watcher_config = SessionConfig::new(Protocol::Imap, Transport::ImplicitTls);
        watcher_config.plaintext_auth_without_tls = true;
        let mut d = Driver {
            store,
            directory,
            now,
            main: Conn {
                session: Session::new(config, now),
                blocked: Blocked::Close,
            },
            watcher: Conn {
                session: Session::new(watcher_config, now),
                blocked: Blocked::Close,
            },
        };
        d.settle_main();
        let setup: &[u8] = b"w1 LOGIN alice wonderland\r\nw2 SELECT INBOX\r\nw3 IDLE\r\n";
        d.watcher
            .session
            .handle_input(Input::Bytes { now, data: setup })
            .expect("watcher set-up");
        d.watcher.blocked = pump(
            &mut d.watcher.session,
            &mut d.store,
            &mut d.directory,
            now,
            &mut |_| {},
        )
        .expect("watcher pump");
        d
    }

    fn pump_one(store: &mut MemStore, directory: &mut MemDirectory, now: Instant, c: &mut Conn) {
        loop {
            c.blocked = pump(&mut c.session, store, directory, now, &mut |_| {}).expect("pump");
            if c.blocked != Blocked::StartTls {
                return;
            }
            c.session
                .handle_input(Input::TlsEstablished {
                    now,
                    channel_bindings: Default::default(),
                })
                .expect("TLS established");
        }
    }

    /// Runs the fuzzed session, hands out change notifications, waits out short deadlines.
    fn settle_main(&mut self) {
        loop {
            Self::pump_one(
                &mut self.store,
                &mut self.directory,
                self.now,
                &mut self.main,
            );
            for change in self.store.take_changes() {
                for c in [&mut self.main, &mut self.watcher] {
                    if c.blocked == Blocked::Close
                        || c.session.account() != Some(change.account.as_str())
                    {
                        continue;
                    }
                    c.session
                        .handle_input(Input::MailboxChanged {
                            now: self.now,
                            account: &change.account,
                            mailbox: change.mailbox,
                            modseq: change.modseq,
                        })
                        .expect("MailboxChanged");
                    Self::pump_one(&mut self.store, &mut self.directory, self.now, c);
                }
            }
            match self.main.blocked {
                Blocked::Until(at) if at <= self.now + WAIT => {
                    self.now = self.now.max(at);
                    self.main
                        .session
                        .handle_input(Input::Timeout { now: self.now })
                        .expect("Timeout");
                    Self::pump_one(
                        &mut self.store,
                        &mut self.directory,
                        self.now,
                        &mut self.main,
                    );
                    if let Blocked::Until(next) = self.main.blocked {
                        assert!(next > self.now, "deadline {next:?} did not move past now");
                    }
                }
                _ => return,
            }
        }
    }

    fn feed(&mut self, data: &[u8]) {
        if self.main.blocked == Blocked::Close {
            return;
        }
        self.main
            .session
            .handle_input(Input::Bytes {
                now: self.now,
                data,
            })
            .expect("bytes refused by an open session");
        self.settle_main();
    }

    fn close(&mut self) {
        if self.main.blocked != Blocked::Close {
            self.main
                .session
                .handle_input(Input::PeerClosed { now: self.now })
                .expect("PeerClosed");
            Self::pump_one(
                &mut self.store,
                &mut self.directory,
                self.now,
                &mut self.main,
            );
        }
        assert_eq!(
            self.main.blocked,
            Blocked::Close,
            "still open after PeerClosed"
        );
        assert!(matches!(self.main.session.poll_output(), Output::Close));
        assert!(!self.main.session.wants_read());
    }
}

pub fn run(protocol: Protocol, data: &[u8]) {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let mut d = Driver::new(protocol);
    let size = if cut == 0 {
        input.len().max(1)
    } else {
        usize::from(cut)
    };
    for chunk in input.chunks(size) {
        d.feed(chunk);
    }
    d.close();
}
