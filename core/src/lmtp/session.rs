//! The LMTP session (RFC 2033 §4):
//!
//! ```text
//!   220 ──LHLO──▶ ready ──MAIL──▶ envelope ──RCPT…──▶ DATA/BDAT…LAST ──▶ one reply per
//!                   ▲                                                   accepted recipient
//!                   └──────────────────────── RSET / after the replies ────────┘
//! ```
//!
//! A recipient is accepted once the directory names its account; the message is stored with
//! one APPEND per accepted recipient, each answered only once storage has made it durable,
//! so the client may retry exactly the recipients that did not get a 2xx (RFC 2033 §4.2).

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::command::Command;
use crate::directory::{DirectoryError, DirectoryOp, DirectoryReply, DirectoryResult};
use crate::lines::{LineFrame, LineReader};
use crate::mail::mailbox_name;
use crate::mail::text::crlf;
use crate::outbox::Outbox;
use crate::session::{
    Completion, Event, Input, MisuseError, Output, RequestIds, SessionConfig, WRONG_KIND_REPLY,
};
use crate::store::{
    LimitKind, NewMessage, Quota, RequestId, StorageError, StorageOp, StorageReply, StorageRequest,
    StorageResult,
};
use crate::time::{Timer, Timers};
use crate::DirectoryRequest;

/// Consecutive refused commands before the connection is dropped: a peer speaking another
/// protocol (or garbage) is not kept busy forever.
const MAX_BAD_COMMANDS: u32 = 20;

/// The mailbox a recipient without a usable `+detail` gets, and the fallback when the detail
/// names no mailbox.
const INBOX: &str = "INBOX";

#[derive(Debug)]
enum Expect {
    Command,
    /// Reading DATA's lines up to the lone dot.
    Data,
    /// Reading a BDAT chunk's octets.
    Chunk {
        remaining: u64,
        last: bool,
        /// Keep the octets (a transaction with recipients), or read them only to stay in
        /// step and then answer this refusal (RFC 3030 §2: the chunk is sent regardless).
        refusal: Option<&'static str>,
    },
    /// The directory is asked which account a RCPT names.
    Lookup {
        id: RequestId,
        to: String,
        /// The detail the looked-up address was stripped of (deliver to that folder).
        detail: Option<String>,
        /// Asked first for the whole address of a `name+detail` recipient: if no account has
        /// that name, this address (without the detail) and the detail are asked next.
        then: Option<(String, String)>,
    },
    /// Storage is storing the message for recipient `index`.
    Deliver {
        id: RequestId,
        index: usize,
        mailbox: String,
    },
    Closed,
}

/// MAIL FROM and the accepted recipients.
#[derive(Debug)]
struct Envelope {
    from: String,
    recipients: Vec<Recipient>,
    /// The message as it arrives (DATA, or BDAT chunks so far).
    body: Option<Incoming>,
    /// The message, once complete, being delivered recipient by recipient.
    message: Bytes,
}

#[derive(Debug)]
struct Recipient {
    /// The address as the client gave it (for replies and `Delivered-To`).
    address: String,
    account: String,
    /// What the account may hold: delivery is refused beyond it (`552 5.2.2`).
    quota: Quota,
    /// The `+detail` folder, if it is a valid mailbox name.
    mailbox: Option<String>,
}

/// A message being received: never more than the size limit is kept.
#[derive(Debug, Default)]
struct Incoming {
    data: BytesMut,
    /// Octets received so far, kept or not.
    size: u64,
    /// Past the limit: the rest is read and dropped, and every recipient gets `552 5.3.4`.
    too_big: bool,
    /// From BDAT: raw octets, whose bare line feeds still need CRLF.
    chunked: bool,
    /// The last DATA line ended with a bare LF: a dot line after it is data, not the end.
    bare_lf: bool,
}

#[derive(Debug)]
pub(crate) struct LmtpSession {
    config: SessionConfig,
    expect: Expect,
    greeted: bool,
    envelope: Option<Envelope>,
    lines: LineReader,
    out: Outbox,
    timers: Timers,
    ids: RequestIds,
    bad_commands: u32,
    shutting_down: bool,
    now: Instant,
}

impl LmtpSession {
    pub(crate) fn new(config: SessionConfig, now: Instant) -> Self {
        let mut s = LmtpSession {
            config,
            expect: Expect::Command,
            greeted: false,
            envelope: None,
            lines: LineReader::default(),
            out: Outbox::default(),
            timers: Timers::default(),
            ids: RequestIds::default(),
            bad_commands: 0,
            shutting_down: false,
            now,
        };
        let greeting = format!("220 {} LMTP ready", s.config.server_name);
        s.reply(&greeting);
        s.touch();
        s
    }

    fn max_message(&self) -> u64 {
        self.config.limits.imap_max_literal
    }

    fn touch(&mut self) {
        let at = self.now + self.config.limits.lmtp_inactivity;
        self.timers.set(Timer::Inactivity, at);
    }

    pub(crate) fn wants_read(&self) -> bool {
        match self.expect {
            Expect::Closed => false,
            Expect::Command | Expect::Data | Expect::Chunk { .. } => true,
            Expect::Lookup { .. } | Expect::Deliver { .. } => {
                self.lines.buffered() < self.config.limits.max_buffered_input
            }
        }
    }

    pub(crate) fn poll_output(&mut self) -> Output {
        let closed = matches!(self.expect, Expect::Closed);
        self.out.next(closed, self.timers.next())
    }

    pub(crate) fn handle_input(&mut self, input: Input<'_>) -> Result<(), MisuseError> {
        if matches!(self.expect, Expect::Closed) {
            return match input {
                Input::Bytes { .. } | Input::TlsEstablished { .. } => Err(MisuseError::Closed),
                _ => Ok(()),
            };
        }
        let (Input::Bytes { now, .. }
        | Input::Timeout { now }
        | Input::Storage { now, .. }
        | Input::Directory { now, .. }
        | Input::TlsEstablished { now, .. }
        | Input::MailboxChanged { now, .. }
        | Input::PeerClosed { now }
        | Input::Shutdown { now }) = &input;
        self.now = *now;
        match input {
            Input::Bytes { data, .. } => {
                self.lines.push(data);
                self.process();
            }
            Input::Timeout { now } => {
                while let Some(timer) = self.timers.pop_expired(now) {
                    if timer == Timer::Inactivity {
                        // RFC 5321 §4.5.3.2.7 / §3.8: a server timing out says 421 and closes.
                        let text = format!(
                            "421 4.4.2 {} Timeout waiting for the client",
                            self.config.server_name
                        );
                        self.reply(&text);
                        self.close();
                    }
                }
            }
            Input::Storage { id, reply, .. } => {
                match std::mem::replace(&mut self.expect, Expect::Command) {
                    Expect::Deliver {
                        id: expected,
                        index,
                        mailbox,
                    } if expected == id => self.delivered(index, mailbox, reply),
                    Expect::Lookup {
                        id: expected, to, ..
                    } if expected == id => {
                        self.looked_up(
                            to,
                            None,
                            None,
                            Err(DirectoryError::Internal(WRONG_KIND_REPLY.into())),
                        );
                        self.after_step();
                        return Err(MisuseError::WrongReplyKind(id));
                    }
                    other => {
                        self.expect = other;
                        return Err(MisuseError::UnknownRequest(id));
                    }
                }
                self.after_step();
            }
            Input::Directory { id, reply, .. } => {
                match std::mem::replace(&mut self.expect, Expect::Command) {
                    Expect::Lookup {
                        id: expected,
                        to,
                        detail,
                        then,
                    } if expected == id => self.looked_up(to, detail, then, reply),
                    Expect::Deliver {
                        id: expected,
                        index,
                        mailbox,
                    } if expected == id => {
                        let wrong = Err(StorageError::Internal(WRONG_KIND_REPLY.into()));
                        self.delivered(index, mailbox, wrong);
                        self.after_step();
                        return Err(MisuseError::WrongReplyKind(id));
                    }
                    other => {
                        self.expect = other;
                        return Err(MisuseError::UnknownRequest(id));
                    }
                }
                self.after_step();
            }
            Input::TlsEstablished { .. } => return Err(MisuseError::UnexpectedTls),
            // LMTP selects no mailbox: other sessions' changes are none of its business.
            Input::MailboxChanged { .. } => {}
            // Whatever was not answered is not acknowledged: the client delivers it again.
            Input::PeerClosed { .. } => self.close(),
            Input::Shutdown { .. } => {
                self.shutting_down = true;
                self.after_step();
            }
        }
        Ok(())
    }

    /// After a reply: goes on with buffered input, or says goodbye if the server stops and
    /// no transaction is under way.
    fn after_step(&mut self) {
        if self.shutting_down && matches!(self.expect, Expect::Command) {
            let text = format!("421 4.3.2 {} Server shutting down", self.config.server_name);
            self.reply(&text);
            self.close();
            return;
        }
        self.process();
    }

    fn close(&mut self) {
        self.expect = Expect::Closed;
        self.envelope = None;
        self.lines.clear();
        self.timers = Timers::default();
        self.out.push(Output::Close);
    }

    fn reply(&mut self, line: &str) {
        // For the driver's log and metrics: the reply code (and enhanced code) of the last
        // line, success for 2xx and 3xx.
        let last = line.rsplit("\r\n").next().unwrap_or(line);
        let mut words = last.splitn(3, ' ');
        let code = words.next().unwrap_or_default();
        let enhanced = words.clone().next().filter(|w| {
            w.split('.').count() == 3 && w.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        });
        let text = if enhanced.is_some() {
            words.nth(1).unwrap_or_default()
        } else {
            last.get(code.len()..).unwrap_or_default().trim_start()
        };
        self.out.push(Output::Event(Event::Answered {
            outcome: if code.starts_with(['2', '3']) {
                Completion::Ok
            } else {
                Completion::No
            },
            code: Some(match enhanced {
                Some(e) => format!("{code} {e}"),
                None => code.to_string(),
            }),
            text: text.to_string(),
        }));
        let buf = self.out.bytes();
        buf.put_slice(line.as_bytes());
        buf.put_slice(b"\r\n");
    }

    /// A refusal of the client's command: counted, and past [`MAX_BAD_COMMANDS`] in a row
    /// the connection ends.
    fn refuse(&mut self, line: &str) {
        self.reply(line);
        self.bad_commands += 1;
        if self.bad_commands >= MAX_BAD_COMMANDS {
            self.reply("421 4.7.0 Too many errors, closing the connection");
            self.close();
        }
    }

    fn process(&mut self) {
        loop {
            match self.expect {
                Expect::Command => match self.lines.next(self.config.limits.lmtp_max_line) {
                    LineFrame::NeedMore => return,
                    LineFrame::TooLong => {
                        self.touch();
                        // RFC 5321 §4.5.3.1.4 and §4.2.2: too long a line is a syntax error.
                        self.refuse("500 5.5.2 Line too long");
                    }
                    LineFrame::Line(line) => {
                        self.touch();
                        self.command(&line);
                    }
                },
                Expect::Data => {
                    if !self.data_line() {
                        return;
                    }
                }
                Expect::Chunk { .. } => {
                    if !self.chunk() {
                        return;
                    }
                }
                Expect::Lookup { .. } | Expect::Deliver { .. } | Expect::Closed => return,
            }
        }
    }

    fn command(&mut self, line: &Bytes) {
        let command = Command::parse(line);
        self.out.push(Output::Event(Event::Command {
            name: command.name(),
        }));
        if !matches!(
            command,
            Command::Unknown
                | Command::BadArguments(_)
                | Command::UnsupportedParameter(_)
                | Command::Helo
        ) {
            self.bad_commands = 0;
        }
        match command {
            Command::Lhlo => {
                // RFC 5321 §4.1.4: a new greeting resets the transaction.
                self.greeted = true;
                self.envelope = None;
                let text = format!(
                    "250-{}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
                     250-CHUNKING\r\n250 SIZE {}",
                    self.config.server_name,
                    self.max_message()
                );
                self.reply(&text);
            }
            Command::Mail { from, size } => {
                if !self.greeted {
                    self.refuse("503 5.5.1 Send LHLO first");
                } else if self.envelope.is_some() {
                    self.refuse("503 5.5.1 Nested MAIL command");
                } else if size.is_some_and(|n| n > self.max_message()) {
                    // RFC 1870 §6.1: a declared size over the limit is refused at once.
                    self.reply("552 5.3.4 Message size exceeds fixed maximum message size");
                } else {
                    self.envelope = Some(Envelope {
                        from,
                        recipients: Vec::new(),
                        body: None,
                        message: Bytes::new(),
                    });
                    self.reply("250 2.1.0 Sender OK");
                }
            }
            Command::Rcpt { to } => self.rcpt(to),
            Command::Data => match &mut self.envelope {
                None => self.refuse("503 5.5.1 MAIL first"),
                Some(e) if e.recipients.is_empty() => self.refuse("503 5.5.1 No valid recipients"),
                Some(e) if e.body.is_some() => {
                    // RFC 3030 §3: DATA may not follow BDAT in one transaction.
                    self.refuse("503 5.5.1 DATA after BDAT")
                }
                Some(e) => {
                    e.body = Some(Incoming::default());
                    self.reply("354 Start mail input; end with <CRLF>.<CRLF>");
                    self.expect = Expect::Data;
                }
            },
            Command::Bdat { size, last } => {
                let refusal = match &mut self.envelope {
                    None => Some("503 5.5.1 MAIL first"),
                    Some(e) if e.recipients.is_empty() => Some("503 5.5.1 No valid recipients"),
                    Some(e) => {
                        let body = e.body.get_or_insert_with(|| Incoming {
                            chunked: true,
                            ..Incoming::default()
                        });
                        (!body.chunked).then_some("503 5.5.1 BDAT after DATA")
                    }
                };
                self.expect = Expect::Chunk {
                    remaining: size,
                    last,
                    refusal,
                };
            }
            Command::Rset => {
                self.envelope = None;
                self.reply("250 2.0.0 OK");
            }
            Command::Noop => self.reply("250 2.0.0 OK"),
            Command::Quit => {
                let text = format!("221 2.0.0 {} Bye", self.config.server_name);
                self.reply(&text);
                self.close();
            }
            // RFC 5321 §3.5.3: 252 when the server will not verify but will try RCPT (in
            // Dovecot's words and code).
            Command::Vrfy => self.reply("252 2.3.3 Try RCPT instead"),
            Command::Helo => self.refuse("500 5.5.1 This is LMTP: use LHLO (RFC 2033 §4.1)"),
            Command::NotOffered => self.refuse("502 5.5.1 Command not implemented"),
            Command::BadArguments(why) => {
                let text = format!("501 5.5.4 {why}");
                self.refuse(&text);
            }
            Command::UnsupportedParameter(why) => {
                let text = format!("555 5.5.4 {why}");
                self.refuse(&text);
            }
            // RFC 3463 §3.6: X.5.2 covers a command that is not recognised (Dovecot says 5.5.1).
            Command::Unknown => self.refuse("500 5.5.2 Unknown command"),
        }
    }

    fn rcpt(&mut self, to: String) {
        let max = self.config.limits.lmtp_max_recipients;
        let Some(envelope) = &self.envelope else {
            self.refuse("503 5.5.1 MAIL first");
            return;
        };
        if envelope.body.is_some() {
            self.refuse("503 5.5.1 RCPT during BDAT");
            return;
        }
        if envelope.recipients.len() >= max {
            // RFC 5321 §4.5.3.1.10: the client sends the rest in another transaction.
            self.reply("452 4.5.3 Too many recipients");
            return;
        }
        // An account may itself be named `name+x`: the whole address is asked first.
        let then = match split_detail(&to) {
            (address, Some(detail)) => Some((address, detail)),
            (_, None) => None,
        };
        self.look_up(to.clone(), to, None, then);
    }

    fn look_up(
        &mut self,
        address: String,
        to: String,
        detail: Option<String>,
        then: Option<(String, String)>,
    ) {
        let id = self.ids.next();
        self.out.push(Output::Directory(DirectoryRequest {
            id,
            op: DirectoryOp::FindRecipient { address },
        }));
        self.expect = Expect::Lookup {
            id,
            to,
            detail,
            then,
        };
    }

    fn looked_up(
        &mut self,
        to: String,
        detail: Option<String>,
        then: Option<(String, String)>,
        reply: DirectoryResult,
    ) {
        if let (Some((address, detail)), Ok(DirectoryReply::Recipient { account: None, .. })) =
            (then, &reply)
        {
            self.look_up(address, to, Some(detail), None);
            return;
        }
        match reply {
            Ok(DirectoryReply::Recipient {
                account: Some(account),
                quota,
            }) => {
                if let Some(envelope) = &mut self.envelope {
                    envelope.recipients.push(Recipient {
                        address: to.clone(),
                        account,
                        quota,
                        mailbox: detail.and_then(|d| mailbox_name::canonical(d).ok()),
                    });
                }
                self.reply(&format!("250 2.1.5 <{to}> Recipient OK"));
            }
            Ok(DirectoryReply::Recipient { account: None, .. }) => {
                self.reply(&format!("550 5.1.1 <{to}> No such user here"));
            }
            // The directory could not tell: the client tries this recipient again later.
            _ => self.reply(&format!(
                "451 4.3.0 <{to}> Temporary failure, try again later"
            )),
        }
    }

    /// One DATA line; false when more input is needed.
    fn data_line(&mut self) -> bool {
        let Some(body) = self.envelope.as_mut().and_then(|e| e.body.as_mut()) else {
            self.expect = Expect::Command;
            return true;
        };
        // Within the limit, a line may be as long as what is left of it; past it, lines are
        // only looked at for the final dot, and long ones skipped unbuffered.
        let max = if body.too_big {
            self.config.limits.lmtp_max_line
        } else {
            let left = self
                .config
                .limits
                .imap_max_literal
                .saturating_sub(body.size);
            usize::try_from(left)
                .unwrap_or(usize::MAX)
                .saturating_add(2)
                .max(self.config.limits.lmtp_max_line)
        };
        match self.lines.next(max) {
            LineFrame::NeedMore => return false,
            LineFrame::TooLong => body.overflow(),
            // RFC 5321 §4.1.1.4: the data ends with CRLF "." CRLF only. A dot between bare
            // line feeds is content: otherwise a message could end early and smuggle in a
            // second one (the "SMTP smuggling" of 2023).
            LineFrame::Line(line)
                if line.as_ref() == b"." && self.lines.ended_with_crlf() && !body.bare_lf =>
            {
                self.touch();
                self.message_complete();
                return true;
            }
            LineFrame::Line(line) => {
                // RFC 5321 §4.5.2: a leading dot was doubled by the client (a lone dot that
                // is not the end stays as it is). A bare LF ended the line as well as CRLF
                // would (the reader strips either), and is stored as CRLF.
                body.bare_lf = !self.lines.ended_with_crlf();
                let line = match line.strip_prefix(b".") {
                    Some(rest) if !rest.is_empty() => rest,
                    _ => &line,
                };
                body.size = body.size.saturating_add(line.len() as u64 + 2);
                if body.size > self.config.limits.imap_max_literal {
                    body.overflow();
                } else if !body.too_big {
                    body.data.put_slice(line);
                    body.data.put_slice(b"\r\n");
                }
            }
        }
        self.touch();
        true
    }

    /// Reads what is buffered of a BDAT chunk; false when more input is needed.
    fn chunk(&mut self) -> bool {
        let Expect::Chunk {
            remaining,
            last,
            refusal,
        } = self.expect
        else {
            return true;
        };
        if remaining > 0 {
            let want = usize::try_from(remaining).unwrap_or(usize::MAX);
            let got = self.lines.take(want);
            if got.is_empty() {
                return false;
            }
            let remaining = remaining - got.len() as u64;
            self.expect = Expect::Chunk {
                remaining,
                last,
                refusal,
            };
            let limit = self.config.limits.imap_max_literal;
            if refusal.is_none() {
                if let Some(body) = self.envelope.as_mut().and_then(|e| e.body.as_mut()) {
                    body.size = body.size.saturating_add(got.len() as u64);
                    if body.size > limit {
                        body.overflow();
                    } else if !body.too_big {
                        body.data.put_slice(&got);
                    }
                }
            }
            self.touch();
            if remaining > 0 {
                return false;
            }
        }
        self.expect = Expect::Command;
        if let Some(refusal) = refusal {
            self.refuse(refusal);
            return true;
        }
        if last {
            self.message_complete();
            return true;
        }
        let (size, too_big) = self
            .envelope
            .as_ref()
            .and_then(|e| e.body.as_ref())
            .map_or((0, false), |b| (b.size, b.too_big));
        if too_big {
            // RFC 3030 §2: after an error reply the client sends no more chunks of this
            // transaction; later ones are refused as out of sequence.
            self.envelope = None;
            self.reply("552 5.3.4 Message size exceeds fixed maximum message size");
        } else {
            self.reply(&format!("250 2.0.0 {size} octets received"));
        }
        true
    }

    /// The final dot or the last chunk: every recipient gets its reply, in order.
    fn message_complete(&mut self) {
        self.expect = Expect::Command;
        let Some(envelope) = &mut self.envelope else {
            return;
        };
        let Some(body) = envelope.body.take() else {
            return;
        };
        if body.too_big {
            // RFC 2033 §4.2: one reply per accepted recipient, even when all are the same.
            let count = envelope.recipients.len();
            self.envelope = None;
            for _ in 0..count {
                self.reply("552 5.3.4 Message size exceeds fixed maximum message size");
            }
            return;
        }
        let data = body.data.freeze();
        envelope.message = if body.chunked { crlf(data) } else { data };
        self.deliver(0, None);
    }

    /// Stores the message for recipient `index` (in `mailbox`, or its own), or ends the
    /// transaction when every recipient has its reply.
    fn deliver(&mut self, index: usize, mailbox: Option<String>) {
        let Some(envelope) = &self.envelope else {
            return;
        };
        let Some(rcpt) = envelope.recipients.get(index) else {
            self.envelope = None;
            return;
        };
        let mailbox = mailbox
            .or_else(|| rcpt.mailbox.clone())
            .unwrap_or_else(|| INBOX.to_string());
        // The trace fields a delivery agent adds (RFC 5321 §4.4, as Dovecot's LMTP writes
        // them); the MTA's own Received field is already in the message.
        let head = format!(
            "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
            envelope.from, rcpt.address
        );
        let mut data = BytesMut::with_capacity(head.len() + envelope.message.len());
        data.put_slice(head.as_bytes());
        data.put_slice(&envelope.message);
        // RFC 9208 §4.3.1 names LMTP delivery among what fills a quota; refused per recipient
        // with `552 5.2.2` (RFC 3463: mailbox full), as Dovecot without `quota_full_tempfail`.
        let op = rcpt.quota.hold(StorageOp::Append {
            account: rcpt.account.clone(),
            name: mailbox.clone(),
            messages: vec![NewMessage {
                flags: Vec::new(),
                internal_date: None,
                data: data.freeze(),
            }],
        });
        let id = self.ids.next();
        self.out.push(Output::Storage(StorageRequest { id, op }));
        self.expect = Expect::Deliver { id, index, mailbox };
    }

    fn delivered(&mut self, index: usize, mailbox: String, reply: StorageResult) {
        let Some(rcpt) = self.envelope.as_ref().and_then(|e| e.recipients.get(index)) else {
            return;
        };
        let to = rcpt.address.clone();
        let line = match reply {
            Ok(StorageReply::Appended { .. }) => {
                self.out.push(Output::Event(Event::Delivered {
                    account: rcpt.account.clone(),
                    mailbox: mailbox.clone(),
                }));
                format!("250 2.0.0 <{to}> Delivered")
            }
            // A `+detail` naming no mailbox: the message goes to INBOX instead.
            Err(StorageError::NoSuchMailbox) if mailbox != INBOX => {
                self.deliver(index, Some(INBOX.to_string()));
                return;
            }
            Err(StorageError::OverQuota) => format!("552 5.2.2 <{to}> Mailbox is full"),
            Err(StorageError::Limit(LimitKind::MessageSize)) => {
                format!("552 5.3.4 <{to}> Message too large to store")
            }
            // Anything else may pass: the MTA keeps the message and retries (RFC 2033 §4.2).
            Ok(_) | Err(_) => format!("451 4.3.0 <{to}> Temporary failure, try again later"),
        };
        self.reply(&line);
        self.deliver(index + 1, None);
    }
}

impl Incoming {
    /// The message went past the limit: drop what was kept and keep nothing more.
    fn overflow(&mut self) {
        self.too_big = true;
        self.data = BytesMut::new();
    }
}

/// `name+detail@domain` → (`name@domain`, `detail`); other addresses unchanged.
fn split_detail(address: &str) -> (String, Option<String>) {
    let (local, domain) = match address.rsplit_once('@') {
        Some((local, domain)) => (local, Some(domain)),
        None => (address, None),
    };
    match local.split_once('+') {
        Some((name, detail)) if !name.is_empty() && !detail.is_empty() => {
            let address = match domain {
                Some(domain) => format!("{name}@{domain}"),
                None => name.to_string(),
            };
            (address, Some(detail.to_string()))
        }
        _ => (address.to_string(), None),
    }
}

#[cfg(test)]
mod tests;
