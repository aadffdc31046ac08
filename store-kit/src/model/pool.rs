//! The vocabulary histories are made of: a few messages, flags, mailbox names, dates and
//! search criteria, chosen so that every command has something to find and to miss.

use std::sync::OnceLock;

use tern_core::mail::date::{Date, DateTime};

/// Mailbox names commands use. `X/Y` and `Z/Y` give hierarchy (parents created on the way,
/// `\Noselect` after deleting a parent); INBOX has its own RENAME rule.
pub const MAILBOXES: [&str; 7] = ["INBOX", "Trash", "Archive", "X", "X/Y", "Z", "Z/Y"];

pub struct PoolMessage {
    pub from: &'static str,
    pub subject: &'static str,
    pub body: &'static str,
}

/// Bodies use CRLF only, so the octets stored are the octets sent (bare LF would be rewritten)
/// and transcripts can show literals line by line. Message 1 has lines starting with a dot
/// (POP3 byte-stuffing); message 2 is large (LARGER/SMALLER).
pub const MESSAGES: [PoolMessage; 6] = [
    PoolMessage {
        from: "Bob <bob@example.org>",
        subject: "Lunch plans",
        body: "Shall we have lunch on Friday?\r\n",
    },
    PoolMessage {
        from: "Carol <carol@example.net>",
        subject: "Invoice 42",
        body: "Please find the invoice attached.\r\n.\r\n..dots\r\n",
    },
    PoolMessage {
        from: "Dave <dave@example.com>",
        subject: "Quarterly report",
        body: "",
    },
    PoolMessage {
        from: "bob@example.org",
        subject: "Re: Lunch plans",
        body: "Friday works. Bring the budget.\r\n",
    },
    PoolMessage {
        from: "Erin <erin@example.com>",
        subject: "Holiday photos",
        body: "Photos attached.\r\n",
    },
    PoolMessage {
        from: "",
        subject: "x",
        body: "y\r\n",
    },
];

pub struct Text {
    pub from: String,
    pub subject: String,
    pub body: String,
}

fn build() -> Vec<(Text, Vec<u8>)> {
    MESSAGES
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let body = if i == 2 {
                (1..=30)
                    .map(|n| format!("Quarterly report line {n:03} of the budget figures.\r\n"))
                    .collect::<String>()
            } else {
                m.body.to_string()
            };
            let mut raw = String::new();
            if !m.from.is_empty() {
                raw.push_str(&format!("From: {}\r\n", m.from));
                raw.push_str("To: alice@example.com\r\n");
                raw.push_str("Date: Mon, 2 Feb 2026 10:00:00 +0000\r\n");
            }
            raw.push_str(&format!("Subject: {}\r\n\r\n{body}", m.subject));
            (
                Text {
                    from: m.from.to_string(),
                    subject: m.subject.to_string(),
                    body,
                },
                raw.into_bytes(),
            )
        })
        .collect()
}

fn built() -> &'static [(Text, Vec<u8>)] {
    static POOL: OnceLock<Vec<(Text, Vec<u8>)>> = OnceLock::new();
    POOL.get_or_init(build)
}

pub fn raw(i: usize) -> &'static [u8] {
    &built()[i % MESSAGES.len()].1
}

pub fn message(i: usize) -> &'static Text {
    &built()[i % MESSAGES.len()].0
}

/// The header of a message: up to and including the blank line (BODY[HEADER]).
pub fn header(i: usize) -> &'static [u8] {
    let r = raw(i);
    let end = r
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(r.len(), |p| p + 4);
    &r[..end]
}

/// The body after the blank line (BODY[TEXT]).
pub fn text(i: usize) -> &'static [u8] {
    &raw(i)[header(i).len()..]
}

/// Words SEARCH looks for; "zebra" is in no message.
pub const WORDS: [&str; 9] = [
    "lunch", "invoice", "report", "bob", "carol", "photos", "budget", "friday", "zebra",
];

const fn d(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

/// Explicit APPEND dates: the day in the message's own zone is what SINCE/BEFORE/ON compare.
pub const APPEND_DATES: [(DateTime, &str); 3] = [
    (
        DateTime {
            date: d(2026, 2, 1),
            hour: 23,
            minute: 30,
            second: 0,
            zone_minutes: -300,
        },
        "01-Feb-2026 23:30:00 -0500",
    ),
    (
        DateTime {
            date: d(2026, 2, 2),
            hour: 8,
            minute: 0,
            second: 0,
            zone_minutes: 60,
        },
        " 2-Feb-2026 08:00:00 +0100",
    ),
    (
        DateTime {
            date: d(2026, 1, 15),
            hour: 12,
            minute: 0,
            second: 0,
            zone_minutes: 0,
        },
        "15-Jan-2026 12:00:00 +0000",
    ),
];

pub const SEARCH_DATES: [Date; 5] = [
    d(2026, 1, 1),
    d(2026, 1, 2),
    d(2026, 1, 15),
    d(2026, 2, 1),
    d(2026, 2, 2),
];

pub fn search_date_text(i: usize) -> String {
    let dt = SEARCH_DATES[i % SEARCH_DATES.len()];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}-{}-{}",
        dt.day,
        MONTHS[usize::from(dt.month) - 1],
        dt.year
    )
}

/// Flags clients set. `$Work` and `$WORK` are one keyword (RFC 9051 §2.3.2). Keywords beyond
/// the first few make it likely that one is first created while other sessions have the
/// mailbox selected, which must then be told with FLAGS before any FETCH shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fl {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    Work,
    WorkUpper,
    Junk,
    Label4,
    Label5,
}

impl Fl {
    pub const ALL: [Fl; 10] = [
        Fl::Seen,
        Fl::Answered,
        Fl::Flagged,
        Fl::Deleted,
        Fl::Draft,
        Fl::Work,
        Fl::WorkUpper,
        Fl::Junk,
        Fl::Label4,
        Fl::Label5,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fl::Seen => "\\Seen",
            Fl::Answered => "\\Answered",
            Fl::Flagged => "\\Flagged",
            Fl::Deleted => "\\Deleted",
            Fl::Draft => "\\Draft",
            Fl::Work => "$Work",
            Fl::WorkUpper => "$WORK",
            Fl::Junk => "Junk",
            Fl::Label4 => "$Label4",
            Fl::Label5 => "$Label5",
        }
    }

    pub fn system(self) -> bool {
        self.name().starts_with('\\')
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Add,
    Remove,
    Replace,
}

/// One end of a range in a message set, resolved against the session's view when the step
/// runs, so that shrinking a history never leaves numbers pointing nowhere by accident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pos {
    /// The n-th known message (modulo the view's size).
    At(u8),
    /// `*`.
    Star,
    /// Past the end: a sequence number beyond the view (BAD), or a UID the session has not
    /// heard of (which makes the server look for new messages first).
    Past(u8),
}

pub type SetSpec = Vec<(Pos, Pos)>;

/// SEARCH criteria; `Seq` and `UidSet` are resolved to `Uids` before the model evaluates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Crit {
    All,
    Flag(Fl, bool),
    Larger(u64),
    Smaller(u64),
    Subject(&'static str),
    From(&'static str),
    Body(&'static str),
    Text(&'static str),
    Since(usize),
    Before(usize),
    On(usize),
    Recent,
    New,
    Old,
    /// Index into the step's list of message sets (each a sequence or UID set).
    Set(usize),
    Not(Box<Crit>),
    Or(Box<Crit>, Box<Crit>),
    And(Vec<Crit>),
}

/// FETCH attributes with values the model can predict byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    Flags,
    Uid,
    Size,
    InternalDate,
    /// BODY[] (sets \Seen in a read-write session).
    Body,
    BodyPeek,
    HeaderPeek,
    TextPeek,
}

impl Item {
    pub const ALL: [Item; 8] = [
        Item::Flags,
        Item::Uid,
        Item::Size,
        Item::InternalDate,
        Item::Body,
        Item::BodyPeek,
        Item::HeaderPeek,
        Item::TextPeek,
    ];

    pub fn wire(self) -> &'static str {
        match self {
            Item::Flags => "FLAGS",
            Item::Uid => "UID",
            Item::Size => "RFC822.SIZE",
            Item::InternalDate => "INTERNALDATE",
            Item::Body => "BODY[]",
            Item::BodyPeek => "BODY.PEEK[]",
            Item::HeaderPeek => "BODY.PEEK[HEADER]",
            Item::TextPeek => "BODY.PEEK[TEXT]",
        }
    }
}

/// SORT keys (RFC 5256 §3, RFC 5957 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

impl SortBy {
    pub const ALL: [SortBy; 9] = [
        SortBy::Arrival,
        SortBy::Cc,
        SortBy::Date,
        SortBy::From,
        SortBy::Size,
        SortBy::Subject,
        SortBy::To,
        SortBy::DisplayFrom,
        SortBy::DisplayTo,
    ];

    pub fn text(self) -> &'static str {
        match self {
            SortBy::Arrival => "ARRIVAL",
            SortBy::Cc => "CC",
            SortBy::Date => "DATE",
            SortBy::From => "FROM",
            SortBy::Size => "SIZE",
            SortBy::Subject => "SUBJECT",
            SortBy::To => "TO",
            SortBy::DisplayFrom => "DISPLAYFROM",
            SortBy::DisplayTo => "DISPLAYTO",
        }
    }

    /// What the key compares of pool message `i`, written out by hand from [`MESSAGES`] as
    /// RFC 5256 reads them (upper case standing in for i;unicode-casemap, all ASCII here):
    /// FROM and TO the local part of the first address, DISPLAYFROM/DISPLAYTO the display
    /// name or else the address, SUBJECT the base subject ("Re: " gone), CC empty (no
    /// message has one); a message without From has no To or Date either. `None` for the
    /// keys that are not the message's text (ARRIVAL, SIZE, DATE).
    pub fn text_key(self, i: usize) -> Option<&'static str> {
        const FROM: [&str; 6] = ["BOB", "CAROL", "DAVE", "BOB", "ERIN", ""];
        const DISPLAY_FROM: [&str; 6] = ["BOB", "CAROL", "DAVE", "BOB@EXAMPLE.ORG", "ERIN", ""];
        const SUBJECT: [&str; 6] = [
            "LUNCH PLANS",
            "INVOICE 42",
            "QUARTERLY REPORT",
            "LUNCH PLANS",
            "HOLIDAY PHOTOS",
            "X",
        ];
        let i = i % MESSAGES.len();
        let has_from = !MESSAGES[i].from.is_empty();
        Some(match self {
            SortBy::From => FROM[i],
            SortBy::DisplayFrom => DISPLAY_FROM[i],
            SortBy::Subject => SUBJECT[i],
            SortBy::To if has_from => "ALICE",
            SortBy::DisplayTo if has_from => "ALICE@EXAMPLE.COM",
            SortBy::To | SortBy::DisplayTo | SortBy::Cc => "",
            SortBy::Arrival | SortBy::Size | SortBy::Date => return None,
        })
    }

    /// The sent date of pool message `i` in UTC seconds: every message with a From says
    /// "Mon, 2 Feb 2026 10:00:00 +0000"; the other has none (DATE then uses INTERNALDATE).
    pub fn sent(i: usize) -> Option<i64> {
        (!MESSAGES[i % MESSAGES.len()].from.is_empty()).then_some(1_770_026_400)
    }
}

/// THREAD algorithms (RFC 5256 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadBy {
    OrderedSubject,
    References,
    Refs,
}

impl ThreadBy {
    pub const ALL: [ThreadBy; 3] = [
        ThreadBy::OrderedSubject,
        ThreadBy::References,
        ThreadBy::Refs,
    ];

    pub fn text(self) -> &'static str {
        match self {
            ThreadBy::OrderedSubject => "ORDEREDSUBJECT",
            ThreadBy::References => "REFERENCES",
            ThreadBy::Refs => "REFS",
        }
    }

    /// Whether pool message `i`'s subject marks a reply or forward (RFC 5256 §4): only
    /// "Re: Lunch plans". No pool message has a Message-ID or References, so REFERENCES
    /// threads them by subject alone.
    pub fn reply(i: usize) -> bool {
        MESSAGES[i % MESSAGES.len()].subject.starts_with("Re: ")
    }
}

/// SEARCH RETURN options (RFC 4731, RFC 9394's PARTIAL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Min,
    Max,
    Count,
    All,
    /// `PARTIAL a:b`, or `-a:-b` (counted from the last result) when `last`.
    Partial {
        last: bool,
        a: u32,
        b: u32,
    },
}

impl Ret {
    /// The option as a client writes it.
    pub fn text(self) -> String {
        match self {
            Ret::Min => "MIN".into(),
            Ret::Max => "MAX".into(),
            Ret::Count => "COUNT".into(),
            Ret::All => "ALL".into(),
            Ret::Partial { last: false, a, b } => format!("PARTIAL {a}:{b}"),
            Ret::Partial { last: true, a, b } => format!("PARTIAL -{a}:-{b}"),
        }
    }
}
