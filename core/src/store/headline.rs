//! A message's headline: the part of its search text that header criteria on From, To, Cc,
//! Bcc and Subject and the sent-date criteria read, kept small and apart from the rest so a
//! backend can decide those criteria without loading whole texts, and a filter of its
//! trigrams that rules most messages out without reading even the headline. Pure functions of
//! the analysed message, for every backend (the SQLite store keeps the headline in a table of
//! its own and the filter with each cached row).

use crate::mail::text::SearchText;
use crate::store::query::Query;

/// Header fields kept in a body's headline (schema version 2), lower case.
pub const HEADLINE_FIELDS: [&str; 5] = ["from", "to", "cc", "bcc", "subject"];

/// The part of a message's search text that the headline keeps: those fields, every
/// occurrence, and the sent date. Evaluating a query that [`headline_suffices`] for on it gives
/// the same answer as on the whole text.
pub fn headline(text: &SearchText) -> SearchText {
    SearchText {
        headers: text
            .headers
            .iter()
            .filter(|(name, _)| HEADLINE_FIELDS.contains(&name.as_str()))
            .cloned()
            .collect(),
        body: String::new(),
        sent: text.sent,
    }
}

/// The 3-octet sequences of a headline's values, each with its field's name, hashed onto 256
/// bits: a needle with a trigram whose bit is clear occurs in no value of that field, so a
/// header criterion rules the message out without its headline being read. (Without the
/// field in the hash, a FROM search let through every message naming the address in To or Cc:
/// 38,500 of 100,000 for 13,900 matches.) Kept inline with each cached row, it is read
/// in order with the rows; the headline itself is four dependent cache misses away (its
/// allocation, its field list, a name, a value), which were three quarters of a SEARCH FROM
/// over 100,000 messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trigrams([u64; 4]);

impl Trigrams {
    /// The trigrams of every value of `text`'s headline fields.
    pub fn of_headers(text: &SearchText) -> Trigrams {
        let mut t = Trigrams::default();
        for (name, value) in &text.headers {
            if let Some(field) = field_number(name) {
                t.add(field, value.as_bytes());
            }
        }
        t
    }

    /// The trigrams of `needle` in field `name`, or `None` when they cannot rule anything
    /// out: a needle under three octets, or a field the headline does not keep.
    pub fn of_needle(name: &str, needle: &str) -> Option<Trigrams> {
        let mut t = Trigrams::default();
        t.add(field_number(name)?, needle.as_bytes());
        (t != Trigrams::default()).then_some(t)
    }

    fn add(&mut self, field: u32, octets: &[u8]) {
        for w in octets.windows(3) {
            if let [a, b, c] = *w {
                let key = field << 24 | u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
                // Fibonacci hashing: the top 8 bits of the product spread nearby keys.
                let bit = (key.wrapping_mul(0x9E37_79B1) >> 24) as usize;
                if let Some(word) = self.0.get_mut(bit / 64) {
                    *word |= 1 << (bit % 64);
                }
            }
        }
    }

    /// Whether every trigram of `needle` may be among these (false: certainly not).
    pub fn may_contain(&self, needle: &Trigrams) -> bool {
        self.0
            .iter()
            .zip(&needle.0)
            .all(|(have, want)| want & !have == 0)
    }
}

/// A headline field's number for [`Trigrams`] (1 and up).
fn field_number(name: &str) -> Option<u32> {
    HEADLINE_FIELDS
        .iter()
        .position(|f| *f == name)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// Whether `q` reads no text beyond a headline: no BODY or TEXT, and only headline fields.
pub fn headline_suffices(q: &Query) -> bool {
    match q {
        Query::Body(_) | Query::Text(_) => false,
        Query::Header(name, _) => HEADLINE_FIELDS.contains(&name.as_str()),
        Query::And(v) => v.iter().all(headline_suffices),
        Query::Or(a, b) => headline_suffices(a) && headline_suffices(b),
        Query::Not(q) => headline_suffices(q),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> SearchText {
        SearchText {
            headers: values
                .iter()
                .map(|v| ("from".to_string(), v.to_string()))
                .collect(),
            ..SearchText::default()
        }
    }

    #[test]
    fn trigrams_never_rule_out_a_needle_that_occurs() {
        let text = headers(&["carol singer <carol@music.test>", "dave@example.net"]);
        let t = Trigrams::of_headers(&text);
        for value in ["carol singer <carol@music.test>", "dave@example.net"] {
            for start in 0..value.len() {
                for end in start + 3..=value.len() {
                    let needle = value.get(start..end).unwrap_or_default();
                    let n = Trigrams::of_needle("from", needle).unwrap_or_default();
                    assert!(t.may_contain(&n), "{needle:?} ruled out");
                }
            }
        }
        assert_eq!(Trigrams::of_needle("from", "ab"), None);
        assert_eq!(Trigrams::of_needle("from", ""), None);
        assert_eq!(Trigrams::of_needle("x-spam", "carol"), None);
    }

    #[test]
    fn trigrams_rule_out_a_needle_that_does_not_occur() {
        let t = Trigrams::of_headers(&headers(&["carol singer <carol@music.test>"]));
        let n = Trigrams::of_needle("from", "zyxwvutsrq").unwrap_or_default();
        assert!(!t.may_contain(&n));
        assert!(!Trigrams::default().may_contain(&n));
        // The same text in another field is not this field's.
        let n = Trigrams::of_needle("to", "carol@music.test").unwrap_or_default();
        assert!(!t.may_contain(&n));
    }

    quickcheck::quickcheck! {
        fn trigrams_of_a_substring_are_contained(value: String, start: usize, len: usize) -> bool {
            let t = Trigrams::of_headers(&headers(&[value.as_str()]));
            let bytes = value.as_bytes();
            let start = start % (bytes.len() + 1);
            let end = (start + len % 40).min(bytes.len());
            let mut needle = Trigrams::default();
            needle.add(1, bytes.get(start..end).unwrap_or_default());
            t.may_contain(&needle)
        }
    }
}
