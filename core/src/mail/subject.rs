//! Subjects as SORT and THREAD compare them: the base subject of RFC 5256 §2.1 and the
//! i;unicode-casemap collation key of RFC 5051 (RFC 5256 §7: "the i;unicode-casemap collation
//! MUST be used", at I18NLEVEL=1).

use unicode_normalization::UnicodeNormalization;

/// The base subject (RFC 5256 §2.1) of a subject already decoded from RFC 2047 (step 1's
/// first half is the caller's, the header decoder's). "All servers ... MUST use exactly this
/// algorithm", so every step below is the RFC's, in its order:
///
/// 1. white space (tabs, folding) becomes single spaces;
/// 2. trailing `(fwd)` and white space go, repeatedly (`subj-trailer`);
/// 3. a leading `subj-leader` goes: white space, or blobs (`[...]`) followed by
///    `re`/`fw`/`fwd`, white space, an optional blob and `:`;
/// 4. a leading blob goes if something non-blank is left after it;
/// 5. 3 and 4 repeat until neither applies;
/// 6. a `[fwd: ... ]` around the whole text is taken off, and everything repeats from 2.
///
/// The prefixes are matched without regard to case (RFC 5256 §5: "all alphabetic characters
/// are case-insensitive"); what is left keeps its case, for [`casemap`] to compare.
pub fn base_subject(decoded: &str) -> String {
    base_subject_and_reply(decoded).0
}

/// The base subject, and whether the message "is considered to be a reply or forward"
/// (RFC 5256 §4, REFERENCES): extracting it removed a `subj-refwd`, a `(fwd)` trailer, or a
/// `[fwd: ... ]` wrapping.
pub fn base_subject_and_reply(decoded: &str) -> (String, bool) {
    let collapsed = collapse_spaces(decoded);
    let mut reply = false;
    // Every later step only takes text off either end: a slice, so no step copies.
    let mut s: &str = &collapsed;
    loop {
        s = strip_trailers(s, &mut reply);
        loop {
            let before = s.len();
            s = strip_leading_blob(strip_leader(s, &mut reply));
            if s.len() == before {
                break;
            }
        }
        match fwd_wrapped(s) {
            Some(inner) => {
                reply = true;
                s = inner;
            }
            None => return (s.to_string(), reply),
        }
    }
}

/// Step 1's second half: every run of white space (RFC 5322 folding leaves CR LF and tabs)
/// becomes one space.
fn collapse_spaces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            space = true;
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    if space {
        out.push(' ');
    }
    out
}

/// Step 2: `subj-trailer = "(fwd)" / WSP`, removed from the end until none is left.
fn strip_trailers<'s>(mut s: &'s str, reply: &mut bool) -> &'s str {
    loop {
        if let Some(rest) = s.strip_suffix(' ') {
            s = rest;
        } else if ends_with_ignore_case(s, "(fwd)") {
            *reply = true;
            s = &s[..s.len() - "(fwd)".len()];
        } else {
            return s;
        }
    }
}

/// Step 3: one `subj-leader = (*subj-blob subj-refwd) / WSP` at the start, if there is one.
fn strip_leader<'s>(s: &'s str, reply: &mut bool) -> &'s str {
    if let Some(rest) = s.strip_prefix(' ') {
        return rest;
    }
    let mut at = 0;
    // `*subj-blob`: as many blobs as precede the `subj-refwd`.
    while let Some(end) = blob_end(s, at) {
        at = end;
    }
    match refwd_end(s, at) {
        Some(end) => {
            *reply = true;
            &s[end..]
        }
        None => s,
    }
}

/// Step 4: a leading `subj-blob`, unless nothing but blanks would be left (`subj-base` must
/// not become empty: RFC 5256 §5, "last subj-blob is subj-base if subj-base would otherwise
/// be empty").
///
/// Step 3 failed for the same text after these blobs, and still fails after fewer of them,
/// so every leading blob that leaves something non-blank goes here at once: one at a time,
/// a subject of many thousand blobs cost a scan of all the others per blob.
fn strip_leading_blob(mut s: &str) -> &str {
    while let Some(end) = blob_end(s, 0) {
        if !s[end..].chars().any(|c| c != ' ') {
            break;
        }
        s = &s[end..];
    }
    s
}

/// Where `subj-blob = "[" *BLOBCHAR "]" *WSP` starting at `at` ends, if one starts there.
/// BLOBCHAR is any character but the brackets.
fn blob_end(s: &str, at: usize) -> Option<usize> {
    let rest = s.get(at..)?.strip_prefix('[')?;
    let close = rest.find(['[', ']'])?;
    if rest.as_bytes().get(close) != Some(&b']') {
        return None;
    }
    let after = &rest[close + 1..];
    let blanks = after.len() - after.trim_start_matches(' ').len();
    Some(at + 1 + close + 1 + blanks)
}

/// Where `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"` starting at `at` ends.
fn refwd_end(s: &str, at: usize) -> Option<usize> {
    let rest = s.get(at..)?;
    let word = ["re", "fwd", "fw"]
        .into_iter()
        .find(|w| starts_with_ignore_case(rest, w))?;
    let mut i = at + word.len();
    i += s[i..].len() - s[i..].trim_start_matches(' ').len();
    if let Some(end) = blob_end(s, i) {
        i = end;
    }
    s[i..].starts_with(':').then_some(i + 1)
}

/// Step 6: the text inside `[fwd:` ... `]` when those wrap the whole of it.
fn fwd_wrapped(s: &str) -> Option<&str> {
    if !starts_with_ignore_case(s, "[fwd:") || !s.ends_with(']') {
        return None;
    }
    s.get("[fwd:".len()..s.len() - 1)
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// The i;unicode-casemap key of `text` (RFC 5051 §2): each character's titlecase mapping,
/// then the whole in compatibility decomposition (NFKD); keys compare as octet strings.
/// Rust has no titlecase mapping; the upper-case one is the same for every character but the
/// Latin digraphs (U+01C4–U+01CC, U+01F1–U+01F3), whose title forms are mapped here.
pub fn casemap(text: &str) -> String {
    let mut mapped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{01C4}'..='\u{01C6}' => mapped.push('\u{01C5}'),
            '\u{01C7}'..='\u{01C9}' => mapped.push('\u{01C8}'),
            '\u{01CA}'..='\u{01CC}' => mapped.push('\u{01CB}'),
            '\u{01F1}'..='\u{01F3}' => mapped.push('\u{01F2}'),
            c => mapped.extend(c.to_uppercase()),
        }
    }
    mapped.nfkd().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5256_leaders_and_trailers_go() {
        for (subject, base) in [
            ("Hello", "Hello"),
            ("Re: Hello", "Hello"),
            ("RE: re: Re:Hello", "Hello"),
            ("Fw: Hello", "Hello"),
            ("FWD: Hello", "Hello"),
            ("Re [foo]: Hello", "Hello"),
            ("[foo] Re: Hello", "Hello"),
            ("[list] [other] Re: [x] Hello", "Hello"),
            ("Hello (fwd)", "Hello"),
            ("Hello (FWD) (fwd)  ", "Hello"),
            ("  \t Hello\r\n   world  ", "Hello world"),
            ("[fwd: Re: Hello]", "Hello"),
            ("[Fwd: [fwd: Re: Hello (fwd)]]", "Hello"),
            ("Re: [fwd: Hello] (fwd)", "Hello"),
        ] {
            assert_eq!(base_subject(subject), base, "{subject:?}");
        }
    }

    #[test]
    fn a_blob_alone_is_the_base_subject() {
        // §5: "last subj-blob is subj-base if subj-base would otherwise be empty".
        assert_eq!(base_subject("[announce]"), "[announce]");
        assert_eq!(base_subject("Re: [announce]"), "[announce]");
        assert_eq!(base_subject("[a] [b]"), "[b]");
        assert_eq!(base_subject(""), "");
        assert_eq!(base_subject("Re:"), "");
    }

    #[test]
    fn many_blobs_go_all_but_the_last_alone() {
        let blobs = "[x] ".repeat(50_000);
        assert_eq!(base_subject(&format!("{blobs}hello")), "hello");
        assert_eq!(base_subject(&format!("{blobs}Re: hello")), "hello");
        assert_eq!(base_subject(&blobs), "[x]");
    }

    #[test]
    fn words_that_only_begin_like_a_prefix_stay() {
        assert_eq!(base_subject("Reply needed"), "Reply needed");
        assert_eq!(base_subject("Fwdx: a"), "Fwdx: a");
        assert_eq!(base_subject("Re [unclosed: a"), "Re [unclosed: a");
        // Not a `subj-fwd` (it does not wrap the whole), but a leading blob like any other.
        assert_eq!(base_subject("[fwd: a] b"), "b");
        assert_eq!(base_subject("Résumé: Re: x"), "Résumé: Re: x");
    }

    #[test]
    fn casemap_ignores_case_and_compatibility_forms() {
        assert_eq!(casemap("hello"), casemap("HELLO"));
        assert_eq!(casemap("straße"), casemap("STRASSE"));
        assert_eq!(casemap("ǆ"), casemap("ǅ"));
        // NFKD: the ligature and the composed letter compare as their parts.
        assert_eq!(casemap("ﬁle"), casemap("FILE"));
        assert_eq!(casemap("é"), casemap("E\u{301}"));
        assert!(casemap("apple") < casemap("Banana"));
    }

    #[test]
    fn base_subject_never_grows_and_is_a_fixed_point() {
        fn prop(s: String) -> bool {
            let once = base_subject(&s);
            once.len() <= s.len() + 1 && base_subject(&once) == once
        }
        quickcheck::QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(String) -> bool);
        for s in [
            "[fwd: [fwd: [fwd: x]]]",
            "re: re: [a]",
            "(fwd)(fwd)",
            "[]:",
            "re[]:x",
        ] {
            assert!(prop(s.to_string()), "{s}");
        }
    }

    /// RFC 5256 §4: "a reply or forward if the base subject extraction rules ... remove any
    /// of the following: a subj-refwd, a "(fwd)" subj-trailer, or a subj-fwd-hdr and
    /// subj-fwd-trl"; white space and blobs alone do not make one.
    #[test]
    fn reply_or_forward_is_what_extraction_removed() {
        for (subject, reply) in [
            ("Hello", false),
            ("  [list] Hello  ", false),
            ("Re: Hello", true),
            ("[list] fwd: Hello", true),
            ("Hello (fwd)", true),
            ("[fwd: Hello]", true),
            ("[fwd: a] b", false),
            ("Rehearsal", false),
        ] {
            assert_eq!(base_subject_and_reply(subject).1, reply, "{subject}");
        }
        assert_eq!(base_subject_and_reply("Re: Hello").0, "Hello");
    }
}
