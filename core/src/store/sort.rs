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
    items.sort_by(|a, b| {
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
            .then(a.uid.cmp(&b.uid))
    });
    items.into_iter().map(|s| s.uid).collect()
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
