//! SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO) as every store answers it: what is
//! compared of a message ([`SortFields`], derived from its envelope), and the order itself
//! ([`sort`]), so that all backends sort alike and exactly as the session's reference does.

use std::cmp::Ordering;

use crate::mail::structure::{Address, Envelope};
use crate::mail::subject::{base_subject, casemap};
use crate::store::Uid;

/// A sort key (RFC 5256 §3, RFC 5957 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// INTERNALDATE.
    Arrival,
    /// The first Cc address's local part.
    Cc,
    /// The sent date (§2.2), INTERNALDATE when there is none.
    Date,
    /// The first From address's local part.
    From,
    /// RFC822.SIZE.
    Size,
    /// The base subject (§2.1).
    Subject,
    /// The first To address's local part.
    To,
    /// The first From address's display name, its address when it has none.
    DisplayFrom,
    /// The same of To.
    DisplayTo,
}

/// One criterion of a sort program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SortCriterion {
    /// Descending order for this key only.
    pub reverse: bool,
    /// The key.
    pub key: SortKey,
}

/// What SORT compares of a message beside its INTERNALDATE and size, each string already in
/// its i;unicode-casemap form (RFC 5256 §7), so comparing is comparing octets. Derived from
/// the envelope alone; a store may keep it to sort without reading messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SortFields {
    /// The Date: field in UTC seconds (§2.2); `None` when missing or unreadable.
    pub sent: Option<i64>,
    /// The base subject.
    pub subject: String,
    /// `addr-mailbox` of the first From address (§3: "FROM ... addr-mailbox of the first
    /// From address"), empty when there is none.
    pub from: String,
    /// The same of To.
    pub to: String,
    /// The same of Cc.
    pub cc: String,
    /// RFC 5957 §3: the display name of the first From address, decoded, or its address
    /// (`mailbox@host`) when the name is missing or empty.
    pub display_from: String,
    /// The same of To.
    pub display_to: String,
}

impl SortFields {
    /// The fields of a message with this envelope.
    pub fn of(envelope: &Envelope) -> SortFields {
        let text = |b: &Option<bytes::Bytes>| {
            b.as_deref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let sent = sent_date(envelope);
        let subject = envelope
            .subject
            .as_deref()
            .map(crate::mail::text::decode_words)
            .unwrap_or_default();
        SortFields {
            sent,
            subject: casemap(&base_subject(&subject)),
            from: mailbox(&envelope.from, text),
            to: mailbox(&envelope.to, text),
            cc: mailbox(&envelope.cc, text),
            display_from: display(&envelope.from, text),
            display_to: display(&envelope.to, text),
        }
    }
}

impl SortFields {
    /// The fields as a store keeps them: a presence byte and the sent date (8 octets, little
    /// endian) when there is one, then each string with its length (4 octets) before it.
    pub fn encode(&self) -> Vec<u8> {
        let strings = self.strings();
        let mut out = Vec::with_capacity(9 + strings.iter().map(|s| 4 + s.len()).sum::<usize>());
        match self.sent {
            Some(sent) => {
                out.push(1);
                out.extend_from_slice(&sent.to_le_bytes());
            }
            None => out.push(0),
        }
        for s in strings {
            // A string is at most a header field, far below 4 GiB; longer would not be stored.
            let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(s.as_bytes().get(..len as usize).unwrap_or_default());
        }
        out
    }

    /// The fields [`SortFields::encode`] wrote; `None` for anything else (damaged data).
    pub fn decode(data: &[u8]) -> Option<SortFields> {
        let (&tag, mut rest) = data.split_first()?;
        let sent = match tag {
            0 => None,
            1 => {
                let (date, after) = rest.split_first_chunk::<8>()?;
                rest = after;
                Some(i64::from_le_bytes(*date))
            }
            _ => return None,
        };
        let mut string = || {
            let (len, after) = rest.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let text = after.get(..len)?;
            rest = after.get(len..)?;
            String::from_utf8(text.to_vec()).ok()
        };
        let fields = SortFields {
            sent,
            subject: string()?,
            from: string()?,
            to: string()?,
            cc: string()?,
            display_from: string()?,
            display_to: string()?,
        };
        rest.is_empty().then_some(fields)
    }

    /// Memory the fields hold, themselves included (for a cache's budget).
    pub fn bytes(&self) -> usize {
        self.strings()
            .iter()
            .map(|s| s.capacity())
            .fold(std::mem::size_of::<SortFields>(), usize::saturating_add)
    }

    fn strings(&self) -> [&String; 6] {
        [
            &self.subject,
            &self.from,
            &self.to,
            &self.cc,
            &self.display_from,
            &self.display_to,
        ]
    }
}

/// The fields of no message: what a sort on INTERNALDATE and size alone is given, since it
/// compares nothing else.
pub static NO_FIELDS: SortFields = SortFields {
    sent: None,
    subject: String::new(),
    from: String::new(),
    to: String::new(),
    cc: String::new(),
    display_from: String::new(),
    display_to: String::new(),
};

impl SortKey {
    /// Every key, in RFC 5256 §3's order then RFC 5957's.
    pub const ALL: [SortKey; 9] = [
        SortKey::Arrival,
        SortKey::Cc,
        SortKey::Date,
        SortKey::From,
        SortKey::Size,
        SortKey::Subject,
        SortKey::To,
        SortKey::DisplayFrom,
        SortKey::DisplayTo,
    ];

    /// Whether the key compares [`SortFields`] (all but ARRIVAL and SIZE).
    pub fn needs_fields(self) -> bool {
        !matches!(self, SortKey::Arrival | SortKey::Size)
    }
}

/// The sent date (RFC 5256 §2.2): the Date: field in UTC seconds, `None` when it is missing
/// or unreadable (the caller then uses INTERNALDATE). THREAD orders by the same date.
pub fn sent_date(envelope: &Envelope) -> Option<i64> {
    envelope.date.as_deref().and_then(|d| {
        let d = std::str::from_utf8(d).ok()?;
        // With white space after it (CFWS may end a date-time): at the very end of its input
        // the parser gives up on a date without seconds ("Wed, 11 Feb 98 11:51 CST"), which
        // then sorted by its INTERNALDATE, unlike Dovecot.
        let parsed = mail_parser::DateTime::parse_rfc822(&format!("{d} "))?;
        parsed.is_valid().then(|| parsed.to_timestamp())
    })
}

/// The first address of a list as ENVELOPE gives it: for `undisclosed-recipients:;` that is
/// the group's start, whose addr-mailbox is the group's name (NIL host), and that name is what
/// sorts, as in Dovecot (where mailboxes hold much such mail, skipping to a later address or
/// to the empty string put it elsewhere).
fn first(list: &[Address]) -> Option<&Address> {
    list.first()
}

fn mailbox(list: &[Address], text: impl Fn(&Option<bytes::Bytes>) -> String) -> String {
    first(list)
        .map(|a| casemap(&text(&a.mailbox)))
        .unwrap_or_default()
}

fn display(list: &[Address], text: impl Fn(&Option<bytes::Bytes>) -> String) -> String {
    let Some(a) = first(list) else {
        return String::new();
    };
    let name = a
        .name
        .as_deref()
        .map(crate::mail::text::decode_words)
        .unwrap_or_default();
    if name.trim().is_empty() {
        match a.host {
            // A group: its name.
            None => casemap(&text(&a.mailbox)),
            Some(_) => casemap(&format!("{}@{}", text(&a.mailbox), text(&a.host))),
        }
    } else {
        casemap(name.trim())
    }
}

/// One message to sort.
#[derive(Clone, Debug)]
pub struct Sortable<'f> {
    /// Its UID: the final tie-breaker, which is mailbox order (§2.2: "the order in which the
    /// two messages appear in the mailbox").
    pub uid: Uid,
    /// INTERNALDATE in UTC seconds.
    pub arrival: i64,
    /// RFC822.SIZE.
    pub size: u64,
    /// The rest.
    pub fields: &'f SortFields,
}

/// The UIDs of `items` in the order `criteria` give: each key ascending (descending when
/// reversed), the next key breaking ties, then mailbox order.
pub fn sort(mut items: Vec<Sortable<'_>>, criteria: &[SortCriterion]) -> Vec<Uid> {
    // In UID order (a search's answer already is), an item's index is its place in the
    // mailbox: the last tie-breaker then needs no item.
    if !items.is_sorted_by_key(|s| s.uid) {
        items.sort_unstable_by_key(|s| s.uid);
    }
    let Some((first, rest)) = criteria.split_first() else {
        return items.iter().map(|s| s.uid).collect();
    };
    // What is sorted is each item's first key as a [`Lead`] with the item's index, not the
    // items: most comparisons then read neither the fields nor the strings (following them
    // from each item was most of a 20,000-message SORT), and less is moved.
    let mut keyed: Vec<Lead<'_>> = items
        .iter()
        .enumerate()
        .map(|(i, s)| Lead::of(first.key, s, i as u32))
        .collect();
    let item = |i: u32| items.get(i as usize);
    // The UID makes the order total, so an unstable sort gives the same answer without the
    // stable one's buffer.
    keyed.sort_unstable_by(|la, lb| {
        let lead = if first.reverse {
            lb.key_cmp(la)
        } else {
            la.key_cmp(lb)
        };
        lead.then_with(|| {
            let (Some(a), Some(b)) = (item(la.index), item(lb.index)) else {
                return Ordering::Equal;
            };
            by_criteria(rest, a, b)
        })
        .then(la.index.cmp(&lb.index))
    });
    keyed
        .iter()
        .filter_map(|l| item(l.index).map(|s| s.uid))
        .collect()
}

/// One item's first key, ordered exactly as [`compare`] orders the key ([`Lead::key_cmp`]),
/// and the item's index. The key is a number, or a string as its first sixteen octets
/// (big-endian, zero-padded, in two halves), the octets after them and its length up to
/// sixteen: with zero padding, two strings whose heads look alike and which end within
/// them differ only in trailing NULs, and then the shorter sorts first, as octet comparison
/// has it; past sixteen octets the tails decide. Most comparisons end at the head; base
/// subjects often share their first word or two, hence sixteen octets rather than eight.
/// Forty octets, so that the sort moves little.
struct Lead<'f> {
    head: [u64; 2],
    tail: &'f [u8],
    index: u32,
    /// The string's length, at most 16 (the tail holds the rest).
    len: u8,
}

impl<'f> Lead<'f> {
    fn of(key: SortKey, s: &Sortable<'f>, index: u32) -> Lead<'f> {
        // Two's complement with the sign bit flipped orders as the signed value.
        let signed = |v: i64| (v as u64) ^ (1 << 63);
        let number = |n: u64| Lead {
            head: [n, 0],
            tail: &[],
            index,
            len: 0,
        };
        let f = s.fields;
        let text = |t: &'f str| {
            let mut octets = [0u8; 16];
            for (slot, b) in octets.iter_mut().zip(t.bytes()) {
                *slot = b;
            }
            let (hi, lo) = octets.split_at(8);
            let half = |h: &[u8]| u64::from_be_bytes(h.try_into().unwrap_or_default());
            Lead {
                head: [half(hi), half(lo)],
                tail: t.as_bytes().get(16..).unwrap_or_default(),
                index,
                len: t.len().min(16) as u8,
            }
        };
        match key {
            SortKey::Arrival => number(signed(s.arrival)),
            SortKey::Date => number(signed(f.sent.unwrap_or(s.arrival))),
            SortKey::Size => number(s.size),
            SortKey::Subject => text(&f.subject),
            SortKey::From => text(&f.from),
            SortKey::To => text(&f.to),
            SortKey::Cc => text(&f.cc),
            SortKey::DisplayFrom => text(&f.display_from),
            SortKey::DisplayTo => text(&f.display_to),
        }
    }

    /// The keys' order (the index aside).
    fn key_cmp(&self, other: &Lead<'_>) -> Ordering {
        self.head
            .cmp(&other.head)
            .then_with(|| {
                // Most strings end within the head: no call to compare two empty tails.
                if self.tail.is_empty() && other.tail.is_empty() {
                    Ordering::Equal
                } else {
                    self.tail.cmp(other.tail)
                }
            })
            .then(self.len.cmp(&other.len))
    }
}

/// The order of two items under `criteria`, each key reversed where it says so; equal when
/// every key is.
fn by_criteria(criteria: &[SortCriterion], a: &Sortable<'_>, b: &Sortable<'_>) -> Ordering {
    criteria
        .iter()
        .map(|c| {
            let o = compare(c.key, a, b);
            if c.reverse {
                o.reverse()
            } else {
                o
            }
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn compare(key: SortKey, a: &Sortable<'_>, b: &Sortable<'_>) -> Ordering {
    let (x, y) = (a.fields, b.fields);
    match key {
        SortKey::Arrival => a.arrival.cmp(&b.arrival),
        SortKey::Date => x
            .sent
            .unwrap_or(a.arrival)
            .cmp(&y.sent.unwrap_or(b.arrival)),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => x.subject.cmp(&y.subject),
        SortKey::From => x.from.cmp(&y.from),
        SortKey::To => x.to.cmp(&y.to),
        SortKey::Cc => x.cc.cmp(&y.cc),
        SortKey::DisplayFrom => x.display_from.cmp(&y.display_from),
        SortKey::DisplayTo => x.display_to.cmp(&y.display_to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::analyze::analyze;

    fn fields(header: &str) -> SortFields {
        let raw = format!("{header}\r\n\r\nbody\r\n")
            .replace('\n', "\r\n")
            .replace("\r\r", "\r");
        SortFields::of(&analyze(raw.as_bytes()).envelope)
    }

    #[test]
    fn fields_come_from_the_envelope() {
        let f = fields(
            "From: =?utf-8?q?J=C3=B6rg?= <Joerg@Example.ORG>\nTo: undisclosed-recipients:;, b@x\n\
             Cc: \"\" <cc@y>\nSubject: Re: [list] =?utf-8?q?gr=C3=BC=C3=9Fe?= (fwd)\n\
             Date: Sun, 31 Dec 2000 16:01:33 -0800",
        );
        assert_eq!(f.from, casemap("joerg"));
        assert_eq!(f.display_from, casemap("Jörg"));
        // A group comes first with its name, as ENVELOPE gives it (and Dovecot sorts it).
        assert_eq!(f.to, casemap("undisclosed-recipients"));
        assert_eq!(f.display_to, casemap("undisclosed-recipients"));
        let g = fields("To: b@x, c@y");
        assert_eq!((g.to, g.display_to), (casemap("b"), casemap("b@x")));
        // An empty display name sorts by the address (RFC 5957 §3).
        assert_eq!(f.cc, casemap("cc"));
        assert_eq!(f.subject, casemap("grüße"));
        // §2.2's example: 1 Jan 2001 00:01:33 UTC.
        assert_eq!(f.sent, Some(978_307_293));
        // No seconds, an obsolete two-digit year and zone (RFC 5322 §4.3), the field's end
        // right after them: 11 Feb 1998 (the parser takes CST for +0000 here, not -0600).
        let sent = fields("Date: Wed, 11 Feb 98 11:51 CST").sent;
        assert_eq!(sent.map(|s| s / 86_400), Some(887_197_860 / 86_400));
        assert_eq!(fields("Subject: x").sent, None);
        assert_eq!(fields("Date: yesterday").sent, None);
    }

    #[test]
    fn fields_are_kept_and_read_back_whole() {
        let f = fields(
            "From: =?utf-8?q?J=C3=B6rg?= <Joerg@Example.ORG>\nTo: b@x\nSubject: Re: gr\u{fc}\u{df}e\n\
             Date: Sun, 31 Dec 2000 16:01:33 -0800",
        );
        for f in [f, fields("Subject: x"), SortFields::default()] {
            let data = f.encode();
            assert_eq!(SortFields::decode(&data), Some(f));
            // Damaged data is refused, never misread or a panic.
            for cut in 0..data.len() {
                assert_eq!(SortFields::decode(&data[..cut]), None);
            }
            let mut longer = data.clone();
            longer.push(0);
            assert_eq!(SortFields::decode(&longer), None);
        }
        assert_eq!(SortFields::decode(&[2]), None);
        let mut bad = SortFields::default().encode();
        bad.truncate(1);
        bad.extend_from_slice(&[1, 0, 0, 0, 0xff]);
        bad.extend_from_slice(&[0; 20]);
        assert_eq!(SortFields::decode(&bad), None, "not UTF-8");
    }

    /// The order without lead keys: the whole comparison, in a stable sort.
    fn reference(mut items: Vec<Sortable<'_>>, criteria: &[SortCriterion]) -> Vec<Uid> {
        items.sort_by(|a, b| by_criteria(criteria, a, b).then(a.uid.cmp(&b.uid)));
        items.into_iter().map(|s| s.uid).collect()
    }

    /// Lead keys never change the order: strings sharing their first sixteen octets, shorter
    /// than sixteen, differing only in trailing NULs, with NULs and 8-bit octets; negative, equal and missing dates; every key,
    /// reversed or not, alone or before another.
    #[test]
    fn lead_keys_keep_the_order_of_the_full_comparison() {
        const WORDS: [&str; 10] = [
            "",
            "a",
            "a\0",
            "a\0\0",
            "abcdefghijklmnop\0",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnoo",
            "\u{e9}t\u{e9}",
            "b",
        ];
        const KEYS: [SortKey; 9] = SortKey::ALL;
        fn prop(raw: Vec<(u8, u8, i8, Option<i8>, u8)>, keys: Vec<(u8, bool)>) -> bool {
            let word = |n: u8| WORDS[n as usize % WORDS.len()].to_string();
            let fields: Vec<SortFields> = raw
                .iter()
                .map(|&(a, b, _, sent, _)| SortFields {
                    sent: sent.map(i64::from),
                    subject: word(a),
                    from: word(b),
                    to: word(a ^ b),
                    cc: word(b / 3),
                    display_from: word(a / 2),
                    display_to: word(a.wrapping_add(b)),
                })
                .collect();
            let items: Vec<Sortable<'_>> = raw
                .iter()
                .zip(&fields)
                .enumerate()
                .map(|(i, (&(_, _, arrival, _, size), fields))| Sortable {
                    uid: i as Uid + 1,
                    arrival: i64::from(arrival) * 1_000_000_000_000,
                    size: u64::from(size % 4),
                    fields,
                })
                .collect();
            let criteria: Vec<SortCriterion> = keys
                .iter()
                .take(3)
                .map(|&(k, reverse)| SortCriterion {
                    key: KEYS[k as usize % KEYS.len()],
                    reverse,
                })
                .collect();
            // Callers give UID order; any other order sorts alike.
            let mut items = items;
            if raw.len() % 2 == 1 {
                items.reverse();
            }
            sort(items.clone(), &criteria) == reference(items, &criteria)
        }
        quickcheck::QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(Vec<(u8, u8, i8, Option<i8>, u8)>, Vec<(u8, bool)>) -> bool);
    }

    #[test]
    fn keys_then_reverse_then_mailbox_order() {
        let f = |subject: &str, from: &str| SortFields {
            subject: casemap(subject),
            from: casemap(from),
            ..SortFields::default()
        };
        let (a, b, c) = (f("b", "x"), f("a", "y"), f("b", "y"));
        let items = || {
            vec![
                Sortable {
                    uid: 1,
                    arrival: 30,
                    size: 5,
                    fields: &a,
                },
                Sortable {
                    uid: 2,
                    arrival: 10,
                    size: 5,
                    fields: &b,
                },
                Sortable {
                    uid: 3,
                    arrival: 20,
                    size: 1,
                    fields: &c,
                },
            ]
        };
        let by = |key, reverse| SortCriterion { key, reverse };
        assert_eq!(sort(items(), &[by(SortKey::Subject, false)]), [2, 1, 3]);
        assert_eq!(
            sort(
                items(),
                &[by(SortKey::Subject, false), by(SortKey::From, true)]
            ),
            [2, 3, 1]
        );
        assert_eq!(sort(items(), &[by(SortKey::Arrival, true)]), [1, 3, 2]);
        // No sent date: DATE is ARRIVAL.
        assert_eq!(sort(items(), &[by(SortKey::Date, false)]), [2, 3, 1]);
        // Equal sizes keep mailbox order; REVERSE SIZE reverses only the key.
        assert_eq!(sort(items(), &[by(SortKey::Size, false)]), [3, 1, 2]);
        assert_eq!(sort(items(), &[by(SortKey::Size, true)]), [1, 2, 3]);
    }
}
