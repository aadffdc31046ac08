//! SEARCH: the FTS5 trigram index narrows, the core's evaluator decides.
//!
//! The index never answers a query by itself. For each text criterion it yields a superset of
//! the bodies that can match (every trigram of the needle occurs in the right column); the
//! core's evaluator (`tern_core::store::evaluate`, the one `MemStore` uses) treats a text
//! criterion as false outside it and undecided inside, and only the undecided messages have
//! their stored [`SearchText`] loaded and evaluated again with it. A needle the index cannot
//! narrow soundly (under three characters) narrows nothing, so results equal `MemStore`'s.
//!
//! The FTS table is contentless with `detail=column`: the text is stored once, in `texts`, for
//! the exact check, and positions are not stored because phrase matching is the evaluator's
//! job. Each needle becomes an AND of its trigrams, each quoted so that FTS5 syntax in
//! the needle is inert.

use std::collections::HashSet;

use rusqlite::Connection;
use tern_core::mail::text::SearchText;
use tern_core::store::query::Query;

/// Trigrams per needle sent to FTS5: enough to be selective, few enough to stay cheap. Any
/// subset of a needle's trigrams still narrows soundly.
const MAX_TRIGRAMS: usize = 24;

/// What one index query costs in the core's meter units besides the bodies it returns: about
/// 60 µs on the development machine (4,000 queries took 0.23 s), as long as some 3,000
/// criterion tests. A program of thousands of needles is held to the search budget by it.
pub const INDEX_QUERY_UNITS: u64 = 3_000;

/// Stands in for NUL in indexed text: FTS5 may read its input as a C string, and a trigram
/// containing neither NUL nor this character is the same either way.
const NUL_STAND_IN: char = '\u{FFFD}';

/// The FTS5 columns, in table order: Subject values, From values, every header as
/// "name value" lines, and the body.
pub const FTS_COLUMNS: &str = "subj, sender, hdr, body";

/// The four column values indexed for one message. Reclaiming a body deletes its index row
/// by feeding these same values to FTS5's 'delete' command, so changing this function needs a
/// schema migration that rebuilds the index.
///
/// Takes the text by value: the body, the bulk of a large message's text, moves into the row
/// instead of being copied.
pub fn fts_row(text: SearchText) -> [String; 4] {
    let mut subject = String::new();
    let mut from = String::new();
    let mut headers = String::new();
    for (name, value) in &text.headers {
        match name.as_str() {
            "subject" => push_line(&mut subject, value),
            "from" => push_line(&mut from, value),
            _ => {}
        }
        headers.push_str(name);
        headers.push(' ');
        headers.push_str(value);
        headers.push('\n');
    }
    [subject, from, headers, text.body].map(|s| {
        if s.contains('\0') {
            s.replace('\0', &NUL_STAND_IN.to_string())
        } else {
            s
        }
    })
}

fn push_line(out: &mut String, value: &str) {
    out.push_str(value);
    out.push('\n');
}

/// The FTS5 query for a needle in some columns, or `None` when the index cannot narrow it.
fn fts_query(columns: &str, needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    let mut trigrams: Vec<String> = Vec::new();
    for w in chars.windows(3) {
        if w.contains(&'\0') {
            continue;
        }
        let t: String = w.iter().collect();
        if !trigrams.contains(&t) {
            trigrams.push(t);
        }
    }
    if trigrams.is_empty() {
        return None;
    }
    if trigrams.len() > MAX_TRIGRAMS {
        let step = trigrams.len() as f64 / MAX_TRIGRAMS as f64;
        trigrams = (0..MAX_TRIGRAMS)
            .filter_map(|i| trigrams.get((i as f64 * step) as usize).cloned())
            .collect();
    }
    let terms: Vec<String> = trigrams
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    Some(format!("{{{columns}}} : ({})", terms.join(" AND ")))
}

/// The FTS query of one text criterion, if it has one.
fn leaf_query(q: &Query) -> Option<String> {
    match q {
        Query::Header(name, needle) => {
            let column = match name.as_str() {
                "subject" => "subj",
                "from" => "sender",
                _ => "hdr",
            };
            fts_query(column, needle)
        }
        Query::Body(needle) => fts_query("body", needle),
        Query::Text(needle) => fts_query("hdr body", needle),
        _ => None,
    }
}

/// Bodies that can satisfy the text criterion `leaf` (a superset of those that do), or
/// `None` when the index cannot narrow it. The core's evaluator asks for each text leaf and
/// combines the answers through AND, OR and NOT itself: outside the superset a leaf is
/// certainly false, so a `NOT TEXT` the index rules out is decided without loading any text.
pub fn narrow(conn: &Connection, leaf: &Query) -> rusqlite::Result<Option<HashSet<i64>>> {
    match leaf_query(leaf) {
        Some(fts) => match run(conn, &fts) {
            Ok(set) => Ok(Some(set)),
            // A query FTS5 refuses to parse narrows nothing; I/O trouble is still trouble.
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::Unknown => {
                Ok(None)
            }
            Err(e) => Err(e),
        },
        None => Ok(None),
    }
}

/// Bodies whose FTS row is not written yet (schema version 4's queue): no superset the index
/// gives may leave them out.
pub fn unindexed(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM fts_pending")?;
    let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
    rows.collect()
}

fn run(conn: &Connection, fts: &str) -> rusqlite::Result<HashSet<i64>> {
    let mut stmt = conn.prepare_cached("SELECT rowid FROM fts WHERE fts MATCH ?1")?;
    let rows = stmt.query_map([fts], |r| r.get::<_, i64>(0))?;
    rows.collect()
}

/// Whether evaluating `q` reads header or body text (not just the sent date).
pub fn needs_full_text(q: &Query) -> bool {
    match q {
        Query::Header(..) | Query::Body(_) | Query::Text(_) => true,
        Query::And(v) => v.iter().any(needs_full_text),
        Query::Or(a, b) => needs_full_text(a) || needs_full_text(b),
        Query::Not(q) => needs_full_text(q),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needles_become_quoted_trigram_conjunctions() {
        assert_eq!(fts_query("body", "ab"), None);
        assert_eq!(
            fts_query("body", "a\"bc"),
            Some("{body} : (\"a\"\"b\" AND \"\"\"bc\")".to_string())
        );
        assert_eq!(
            fts_query("hdr body", "abab"),
            Some("{hdr body} : (\"aba\" AND \"bab\")".to_string())
        );
        assert_eq!(fts_query("body", "a\0b"), None);
        let long: String = "abcdefghijklmnopqrstuvwxyz0123456789".into();
        let q = fts_query("body", &long).unwrap_or_default();
        assert_eq!(q.matches(" AND ").count(), MAX_TRIGRAMS - 1);
    }
}
