//! Deterministic generation of varied, realistic messages, shared by the equivalence property,
//! the store benchmarks and the load generator. A tiny xorshift generator keeps runs
//! reproducible from one seed.

use bytes::Bytes;
use tern_core::mail::date::{Date, DateTime};
use tern_core::mail::flags::Flag;

/// xorshift64*.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    // A generator, not an iterator: it never ends.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Words bodies and subjects are made of; a few are rare so searches vary in selectivity.
pub const WORDS: &[&str] = &[
    "the",
    "meeting",
    "project",
    "budget",
    "report",
    "schedule",
    "invoice",
    "quarterly",
    "review",
    "please",
    "attached",
    "deadline",
    "tomorrow",
    "thanks",
    "regards",
    "update",
    "release",
    "server",
    "database",
    "customer",
    "contract",
    "holiday",
    "lunch",
    "team",
    "agenda",
    "minutes",
    "proposal",
    "feedback",
    "question",
    "answer",
    "problem",
    "solution",
    "urgent",
    "important",
    "reminder",
    "weekly",
    "monthly",
    "coffee",
    "office",
    "travel",
    "flight",
    "hotel",
    "conference",
    "presentation",
    "slides",
    "draft",
    "final",
    "version",
    "grüße",
    "schöne",
    "naïve",
    "café",
    "jörg",
    "straße",
    "日本語",
    "привет",
    "zebra",
    "xylophone",
    "quokka",
    "kumquat",
    "wombat",
];

const NAMES: &[(&str, &str)] = &[
    ("Alice Example", "alice@example.com"),
    ("Bob Builder", "bob@builder.test"),
    ("Carol Singer", "carol@music.test"),
    ("Dave", "dave@ops.example.org"),
    ("Eve Mallory", "eve@evil.test"),
    ("Jörg Müller", "joerg@beispiel.de"),
    ("", "noreply@service.test"),
];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn words(rng: &mut Rng, n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push(if rng.chance(8) { '\n' } else { ' ' });
        }
        let w = rng.pick::<&str>(WORDS);
        out.push_str(w);
    }
    out
}

fn address(rng: &mut Rng) -> String {
    let (name, addr) = *rng.pick(NAMES);
    if name.is_empty() {
        addr.to_string()
    } else if !name.is_ascii() {
        format!("=?utf-8?b?{}?= <{addr}>", base64(name.as_bytes()))
    } else if rng.chance(30) {
        format!("\"{name}\" <{addr}>")
    } else {
        format!("{name} <{addr}>")
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_lines(data: &[u8]) -> String {
    let b = base64(data);
    let mut out = String::new();
    for chunk in b.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push_str("\r\n");
    }
    out
}

fn quoted_printable(text: &str) -> String {
    let mut out = String::new();
    let mut line = 0;
    for &b in text.as_bytes() {
        let piece = if b == b'\n' {
            line = 0;
            out.push_str("\r\n");
            continue;
        } else if b.is_ascii_graphic() && b != b'=' || b == b' ' {
            char::from(b).to_string()
        } else {
            format!("={b:02X}")
        };
        if line + piece.len() > 72 {
            out.push_str("=\r\n");
            line = 0;
        }
        line += piece.len();
        out.push_str(&piece);
    }
    out
}

fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

/// A generated date header value and the date.
pub fn date(rng: &mut Rng) -> (String, DateTime) {
    let year = rng.range(2020, 2026) as u16;
    let month = rng.range(1, 12) as u8;
    let day = rng.range(1, 28) as u8;
    let hour = rng.below(24) as u8;
    let minute = rng.below(60) as u8;
    let zone = *rng.pick(&[0i16, 60, -300, 330, 120]);
    let sign = if zone < 0 { '-' } else { '+' };
    let header = format!(
        "{day} {} {year} {hour:02}:{minute:02}:00 {sign}{:02}{:02}",
        MONTHS[usize::from(month - 1)],
        zone.abs() / 60,
        zone.abs() % 60
    );
    let dt = DateTime {
        date: Date { year, month, day },
        hour,
        minute,
        second: 0,
        zone_minutes: zone,
    };
    (header, dt)
}

/// How big generated messages get.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Words in a text part (upper bound).
    pub max_words: u64,
    /// Percent of messages with a binary attachment.
    pub attachment_percent: u64,
    /// Attachment size range in octets.
    pub attachment: (u64, u64),
}

/// Small messages for property tests (an occasional attachment crosses the inline limit).
pub const SMALL: Shape = Shape {
    max_words: 60,
    attachment_percent: 10,
    attachment: (200, 3000),
};

/// Closer to real mail for the benchmark: a few hundred words, some attachments.
pub const REALISTIC: Shape = Shape {
    max_words: 900,
    attachment_percent: 4,
    attachment: (40_000, 400_000),
};

fn header_block(rng: &mut Rng, subject: &str) -> String {
    let mut h = String::new();
    h.push_str(&format!("From: {}\r\n", address(rng)));
    let to: Vec<String> = (0..rng.range(1, 3)).map(|_| address(rng)).collect();
    h.push_str(&format!("To: {}\r\n", to.join(", ")));
    if rng.chance(30) {
        h.push_str(&format!("Cc: {}\r\n", address(rng)));
    }
    let subject = if !subject.is_ascii() || rng.chance(20) {
        format!(
            "=?utf-8?q?{}?=",
            quoted_printable(subject).replace(' ', "_")
        )
    } else {
        subject.to_string()
    };
    h.push_str(&format!("Subject: {subject}\r\n"));
    if !rng.chance(5) {
        h.push_str(&format!("Date: {}\r\n", date(rng).0));
    }
    // Identifiers from a small space now and then, and References built from the same draw
    // (no further draws: histories pinned by seed stay as they were), so that conversations
    // form and meet, and THREADID is compared between stores (RFC 8474 §5.2).
    let id = rng.next();
    if id % 4 == 0 {
        h.push_str(&format!("Message-ID: <{}@gen.test>\r\n", id % 1000));
    } else {
        h.push_str(&format!("Message-ID: <{id}@gen.test>\r\n"));
    }
    if id % 3 == 0 {
        h.push_str(&format!(
            "References: <{}@gen.test>\r\n <{}@gen.test>\r\n",
            (id >> 10) % 1000,
            (id >> 20) % 1000
        ));
    }
    if rng.chance(30) {
        h.push_str(&format!("In-Reply-To: <{}@gen.test>\r\n", rng.below(1000)));
    }
    if rng.chance(40) {
        h.push_str(&format!(
            "X-Mailer: {}\r\n",
            rng.pick(&["Gen 1.0", "Mutt", "Thunderbird"])
        ));
    }
    h.push_str("MIME-Version: 1.0\r\n");
    h
}

fn text_part(rng: &mut Rng, shape: Shape) -> (String, String) {
    let n = rng.range(1, shape.max_words) as usize;
    text_part_of(rng, n)
}

/// A text part of `n` words in one of four encodings: its header lines and its body.
fn text_part_of(rng: &mut Rng, n: usize) -> (String, String) {
    // A ticket number: one of a thousand, so searching for one is selective (about 0.1%).
    let text = format!("{}\nticket tk{:04}", words(rng, n), rng.below(1000));
    match rng.below(4) {
        0 => (
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n".into(),
            quoted_printable(&text),
        ),
        1 => (
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n".into(),
            base64_lines(text.as_bytes()),
        ),
        2 => (
            "Content-Type: text/html; charset=utf-8\r\n".into(),
            crlf(&format!("<html><body><p>{text}</p></body></html>\n")),
        ),
        _ => (
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n".into(),
            crlf(&format!("{text}\n")),
        ),
    }
}

/// One message, CRLF line ends.
pub fn message(rng: &mut Rng, shape: Shape) -> Bytes {
    if rng.chance(2) {
        // Not really a message: no header, odd bytes.
        let junk = format!("{}\r\n\r\n\0{}", words(rng, 5), words(rng, 3));
        return Bytes::from(junk);
    }
    let n = rng.range(1, 6) as usize;
    let subject = words(rng, n).replace('\n', " ");
    let mut m = header_block(rng, &subject);
    let attach = rng.chance(shape.attachment_percent);
    match rng.below(if attach { 1 } else { 5 }) {
        0 if attach => {
            let (th, tb) = text_part(rng, shape);
            let size = rng.range(shape.attachment.0, shape.attachment.1) as usize;
            let blob: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
            m.push_str("Content-Type: multipart/mixed; boundary=\"=_mix\"\r\n\r\n");
            m.push_str(&format!("--=_mix\r\n{th}\r\n{tb}\r\n"));
            m.push_str("--=_mix\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n");
            m.push_str("Content-Disposition: attachment; filename=\"data.bin\"\r\n");
            m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
            m.push_str(&base64_lines(&blob));
            m.push_str("--=_mix--\r\n");
        }
        0 | 1 => {
            let (th, tb) = text_part(rng, shape);
            m.push_str(&th);
            m.push_str("\r\n");
            m.push_str(&tb);
        }
        2 => {
            let (h1, b1) = text_part(rng, shape);
            let (h2, b2) = text_part(rng, shape);
            m.push_str("Content-Type: multipart/alternative; boundary=alt\r\n\r\n");
            m.push_str(&format!(
                "--alt\r\n{h1}\r\n{b1}\r\n--alt\r\n{h2}\r\n{b2}\r\n--alt--\r\n"
            ));
        }
        3 => {
            let (th, tb) = text_part(rng, shape);
            let inner_subject = words(rng, 3).replace('\n', " ");
            let inner = header_block(rng, &inner_subject);
            m.push_str("Content-Type: multipart/mixed; boundary=outer\r\n\r\n");
            m.push_str(&format!("--outer\r\n{th}\r\n{tb}\r\n"));
            m.push_str("--outer\r\nContent-Type: message/rfc822\r\n\r\n");
            m.push_str(&inner);
            m.push_str("Content-Type: text/plain\r\n\r\n");
            m.push_str(&crlf(&words(rng, 20)));
            m.push_str("\r\n--outer--\r\n");
        }
        _ => {
            m.push_str("\r\n");
            let n = rng.range(0, shape.max_words) as usize;
            m.push_str(&crlf(&words(rng, n)));
            m.push_str("\r\n");
        }
    }
    Bytes::from(m)
}

/// Random flags, keywords included (in varying case: keywords compare case-insensitively).
pub fn flags(rng: &mut Rng) -> Vec<Flag> {
    let all = [
        Flag::Seen,
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Draft,
        Flag::Recent,
        Flag::Keyword(Bytes::from_static(b"$Junk")),
        Flag::Keyword(Bytes::from_static(b"work")),
        Flag::Keyword(Bytes::from_static(b"WORK")),
        Flag::Keyword(Bytes::from_static(b"$Forwarded")),
        Flag::Extension(Bytes::from_static(b"Unknown")),
    ];
    (0..rng.below(4)).map(|_| rng.pick(&all).clone()).collect()
}

/// One message of the mixed IMAP workload's corpus (`imap-mixed.md`: "varied MIME: plain,
/// multipart/mixed with attachments, alternative text+HTML, nested message/rfc822, DSNs; 600 B
/// to 1.1 MB, median about 3 KB"). The size is drawn first: 80 % between 650 B and 6.5 KB
/// (log-uniform, which puts the median near 3 KB), 16 % between 6.5 KB and 100 KB, 4 % between
/// 100 KB and 1.1 MB; the larger ones carry a base64 attachment that makes up the size. Every
/// message has a header and CRLF line ends, and no NUL.
pub fn mbox_message(rng: &mut Rng) -> Bytes {
    let r = rng.below(100);
    let (lo, hi) = match r {
        0..=79 => (650.0f64, 6_500.0f64),
        80..=95 => (6_500.0, 100_000.0),
        _ => (100_000.0, 1_100_000.0),
    };
    let u = rng.below(1_000_001) as f64 / 1_000_000.0;
    let target = (lo * (hi / lo).powf(u)) as usize;
    let n = rng.range(1, 6) as usize;
    let subject = words(rng, n).replace('\n', " ");
    let mut m = header_block(rng, &subject);
    // Words average about seven octets; encodings add a little, which is fine for a shape.
    let room = target.saturating_sub(m.len() + 120);
    let words_for = |octets: usize| (octets / 7).max(1);
    if target > 6_500 {
        let text = rng.range(200, 4_000) as usize;
        let (th, tb) = text_part_of(rng, words_for(text));
        let blob_len = room.saturating_sub(tb.len() + 300) * 3 / 4;
        let blob: Vec<u8> = (0..blob_len).map(|_| rng.next() as u8).collect();
        let (kind, name) = *rng.pick(&[
            ("application/pdf", "report.pdf"),
            ("image/jpeg", "photo.jpg"),
            ("application/zip", "files.zip"),
        ]);
        m.push_str("Content-Type: multipart/mixed; boundary=\"=_mix\"\r\n\r\n");
        m.push_str("This is a multi-part message in MIME format.\r\n");
        m.push_str(&format!("--=_mix\r\n{th}\r\n{tb}\r\n"));
        m.push_str(&format!(
            "--=_mix\r\nContent-Type: {kind}; name=\"{name}\"\r\n"
        ));
        m.push_str(&format!(
            "Content-Disposition: attachment; filename=\"{name}\"\r\n"
        ));
        m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        m.push_str(&base64_lines(&blob));
        m.push_str("--=_mix--\r\n");
        return Bytes::from(m);
    }
    match rng.below(10) {
        0..=4 => {
            let (th, tb) = text_part_of(rng, words_for(room));
            m.push_str(&th);
            m.push_str("\r\n");
            m.push_str(&tb);
        }
        5 | 6 => {
            let (h1, b1) = text_part_of(rng, words_for(room / 2));
            let text = words(rng, words_for(room / 3));
            m.push_str("Content-Type: multipart/alternative; boundary=alt\r\n\r\n");
            m.push_str(&format!("--alt\r\n{h1}\r\n{b1}\r\n--alt\r\n"));
            m.push_str("Content-Type: text/html; charset=utf-8\r\n\r\n");
            m.push_str(&crlf(&format!("<html><body><p>{text}</p></body></html>\n")));
            m.push_str("--alt--\r\n");
        }
        7 => {
            let (th, tb) = text_part_of(rng, words_for(room / 3));
            let inner_subject = words(rng, 3).replace('\n', " ");
            let inner = header_block(rng, &inner_subject);
            m.push_str("Content-Type: multipart/mixed; boundary=outer\r\n\r\n");
            m.push_str(&format!("--outer\r\n{th}\r\n{tb}\r\n"));
            m.push_str("--outer\r\nContent-Type: message/rfc822\r\n\r\n");
            m.push_str(&inner);
            m.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
            m.push_str(&crlf(&words(rng, words_for(room / 2))));
            m.push_str("\r\n--outer--\r\n");
        }
        8 => {
            let (th, tb) = text_part_of(rng, words_for(room / 3));
            let blob_len = (room / 2) * 3 / 4;
            let blob: Vec<u8> = (0..blob_len).map(|_| rng.next() as u8).collect();
            m.push_str("Content-Type: multipart/mixed; boundary=\"=_mix\"\r\n\r\n");
            m.push_str(&format!("--=_mix\r\n{th}\r\n{tb}\r\n"));
            m.push_str("--=_mix\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n");
            m.push_str("Content-Disposition: attachment; filename=\"data.bin\"\r\n");
            m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
            m.push_str(&base64_lines(&blob));
            m.push_str("--=_mix--\r\n");
        }
        _ => dsn(rng, &mut m, room),
    }
    Bytes::from(m)
}

/// A delivery status notification (RFC 3464): the explanation, the machine-readable status,
/// and the returned message's header and text.
fn dsn(rng: &mut Rng, m: &mut String, room: usize) {
    let (date, _) = date(rng);
    let (_, rcpt) = *rng.pick(NAMES);
    m.push_str(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"=_dsn\"\r\n\r\n",
    );
    m.push_str("--=_dsn\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
    m.push_str("This is the mail system at host mx.example.org.\r\n\r\n");
    m.push_str(&format!(
        "I'm sorry to have to inform you that your message could not\r\nbe delivered to \
         one or more recipients.\r\n\r\n<{rcpt}>: host mx.example.org said: 550 5.1.1 \
         user unknown\r\n\r\n"
    ));
    m.push_str("--=_dsn\r\nContent-Type: message/delivery-status\r\n\r\n");
    m.push_str(&format!(
        "Reporting-MTA: dns; mx.example.org\r\nArrival-Date: {date}\r\n\r\n\
         Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\n\
         Action: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected\r\n\r\n"
    ));
    m.push_str("--=_dsn\r\nContent-Type: message/rfc822\r\n\r\n");
    let inner_subject = words(rng, 4).replace('\n', " ");
    m.push_str(&header_block(rng, &inner_subject));
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
    m.push_str(&crlf(&words(rng, (room.saturating_sub(900) / 7).max(1))));
    m.push_str("\r\n\r\n--=_dsn--\r\n");
}
