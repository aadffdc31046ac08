//! PREVIEW (RFC 8970): a short plain-text summary of a message, computed once when a body is
//! stored and kept beside its structure, so that listing previews never parses bodies again.
//!
//! The summary is the message's first displayable text part: text/plain when the message
//! has one (mail-parser's `text_body`, which prefers it in a multipart/alternative), else
//! text/html reduced to text by mail-parser's own reducer (`html_to_text`: tags dropped,
//! entities decoded, `<head>`, `<style>`, `<script>` and `<template>` contents dropped),
//! decoded from its transfer encoding and charset by mail-parser. From that text, quoted
//! lines (`>`), the attribution line just before them ("On … wrote:") and the signature
//! (from a `-- ` line on) are dropped, whitespace and control characters collapse to single
//! spaces, and the result is cut to [`MAX_CHARS`] characters (RFC 8970 §3.3: SHOULD be at
//! most 200, MUST NOT exceed 256).
//!
//! A message with no such text (attachments only, encrypted, empty) has the empty preview,
//! which RFC 8970 §3.2 requires ("the server MUST return a zero-length string"); NIL is only
//! for `PREVIEW (LAZY)` when the preview is not at hand.
//!
//! Every step is bounded: at most [`MAX_SCAN`] octets of a part's decoded text are read, at
//! most [`MAX_PARTS_TRIED`] parts are tried, and the output never exceeds [`MAX_CHARS`]
//! characters (so at most [`MAX_OCTETS`] octets).

use mail_parser::{Message, PartType};

/// Characters in a preview at most (RFC 8970 §3.3's SHOULD).
pub const MAX_CHARS: usize = 200;
/// Octets in a preview at most: [`MAX_CHARS`] UTF-8 characters of up to four octets each.
pub const MAX_OCTETS: usize = MAX_CHARS * 4;
/// Octets of one part's decoded text looked at: a message that opens with more quoted text
/// or markup than this has an empty preview rather than costing a scan of megabytes.
pub const MAX_SCAN: usize = 256 * 1024;
/// Text parts tried in turn when the earlier ones give nothing (an empty first part, a
/// reply that is all quote).
pub const MAX_PARTS_TRIED: usize = 8;

/// The preview of a message.
pub fn preview(raw: &[u8]) -> String {
    preview_parsed(super::analyze::parse(raw).as_ref())
}

/// The preview from a parse already made (the store's one parse at APPEND).
pub(crate) fn preview_parsed(parsed: Option<&Message<'_>>) -> String {
    let Some(message) = parsed else {
        return String::new();
    };
    for &id in message.text_body.iter().take(MAX_PARTS_TRIED) {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        let summary = match &part.body {
            PartType::Text(text) => summarise(prefix(text)),
            PartType::Html(html) => summarise(&html_text(prefix(html))),
            _ => continue,
        };
        if !summary.is_empty() {
            return summary;
        }
    }
    String::new()
}

/// At most [`MAX_SCAN`] octets of `s`, cut at a character boundary.
fn prefix(s: &str) -> &str {
    let mut end = s.len().min(MAX_SCAN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// HTML reduced to text. mail-parser's reducer is a linear scan; a panic inside it on hostile
/// markup costs only the preview.
fn html_text(html: &str) -> String {
    std::panic::catch_unwind(|| mail_parser::decoders::html::html_to_text(html)).unwrap_or_default()
}

/// The text without quotes, attribution and signature, collapsed and cut.
fn summarise(text: &str) -> String {
    let mut out = Collapsed::default();
    // An attribution line, kept back until the next non-blank line shows whether a quote
    // follows it.
    let mut held: Option<&str> = None;
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "-- " || line == "--" {
            break;
        }
        let content = line.trim_start();
        if content.starts_with('>') {
            held = None;
            continue;
        }
        if content.trim_end().is_empty() {
            if held.is_none() {
                out.push(" ");
            }
            continue;
        }
        if let Some(h) = held.take() {
            out.push(h);
            out.push(" ");
        }
        if is_attribution(content) {
            held = Some(line);
            continue;
        }
        out.push(line);
        out.push(" ");
        if out.is_full() {
            break;
        }
    }
    if let Some(h) = held {
        out.push(h);
    }
    out.finish()
}

/// "On Mon, 1 Jan 2024, Bob <bob@example.org> wrote:" and its like: the line a mail client
/// writes above the text it quotes.
fn is_attribution(line: &str) -> bool {
    let line = line.trim_end();
    ["wrote:", "writes:"]
        .iter()
        .any(|end| line.len() >= end.len() && ends_with_ignore_case(line, end))
}

fn ends_with_ignore_case(s: &str, end: &str) -> bool {
    s.len()
        .checked_sub(end.len())
        .and_then(|at| s.get(at..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case(end))
}

/// Text with every run of whitespace and control characters made one space, none leading or
/// trailing, stopping at [`MAX_CHARS`] characters.
#[derive(Default)]
struct Collapsed {
    out: String,
    chars: usize,
    /// A space is due before the next visible character.
    space: bool,
}

impl Collapsed {
    fn push(&mut self, s: &str) {
        for c in s.chars() {
            if self.is_full() {
                return;
            }
            if c.is_whitespace() || c.is_control() {
                self.space = !self.out.is_empty();
                continue;
            }
            // A byte-order mark or a zero-width no-break space shows nothing.
            if c == '\u{feff}' {
                continue;
            }
            if self.space {
                self.space = false;
                self.out.push(' ');
                self.chars += 1;
                if self.is_full() {
                    return;
                }
            }
            self.out.push(c);
            self.chars += 1;
        }
    }

    fn is_full(&self) -> bool {
        self.chars >= MAX_CHARS
    }

    fn finish(mut self) -> String {
        let kept = self.out.trim_end().len();
        self.out.truncate(kept);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(header: &str, body: &[u8]) -> Vec<u8> {
        let mut raw = header.replace('\n', "\r\n").into_bytes();
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(body);
        raw
    }

    #[test]
    fn plain_text_collapses_whitespace() {
        let raw = msg(
            "From: a@x.test\nSubject: hi\n",
            b"Hello  there,\r\n\r\n\tsee   you\r\nat noon.\r\n",
        );
        assert_eq!(preview(&raw), "Hello there, see you at noon.");
    }

    #[test]
    fn quoted_printable_and_charset_are_decoded() {
        let raw = msg(
            "Subject: x\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n",
            b"Gr=FC=DFe aus K=F6ln, =\r\nbis bald\r\n",
        );
        assert_eq!(preview(&raw), "Gr\u{fc}\u{df}e aus K\u{f6}ln, bis bald");
    }

    #[test]
    fn base64_is_decoded() {
        // "Caf\u{e9} ouvert" in UTF-8.
        let raw = msg(
            "Subject: x\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n",
            b"Q2Fmw6kgb3V2ZXJ0\r\n",
        );
        assert_eq!(preview(&raw), "Caf\u{e9} ouvert");
    }

    #[test]
    fn non_utf8_charsets_are_decoded() {
        // "Привет" in KOI8-R, and Shift_JIS "日本".
        let koi = msg(
            "Content-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: 8bit\n",
            b"\xf0\xd2\xc9\xd7\xc5\xd4\r\n",
        );
        assert_eq!(preview(&koi), "\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442}");
        let sjis = msg(
            "Content-Type: text/plain; charset=shift_jis\nContent-Transfer-Encoding: 8bit\n",
            b"\x93\xfa\x96\x7b\r\n",
        );
        assert_eq!(preview(&sjis), "\u{65e5}\u{672c}");
    }

    #[test]
    fn html_alone_is_reduced_to_text() {
        let raw = msg(
            "Content-Type: text/html; charset=utf-8\n",
            b"<html><head><title>T</title><style>p{color:red}</style></head><body><script>alert(1)</script><p>Fish &amp; chips&nbsp;<b>tonight</b></p><br>&lt;ok&gt;</body></html>\r\n",
        );
        assert_eq!(preview(&raw), "Fish & chips tonight <ok>");
    }

    #[test]
    fn alternative_prefers_plain_text() {
        let raw = msg(
            "Content-Type: multipart/alternative; boundary=b\n",
            b"--b\r\nContent-Type: text/html\r\n\r\n<p>from html</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nfrom plain\r\n--b--\r\n",
        );
        assert_eq!(preview(&raw), "from plain");
        let html_only = msg(
            "Content-Type: multipart/alternative; boundary=b\n",
            b"--b\r\nContent-Type: text/html\r\n\r\n<p>from html</p>\r\n--b--\r\n",
        );
        assert_eq!(preview(&html_only), "from html");
    }

    #[test]
    fn quotes_attribution_and_signature_are_dropped() {
        let raw = msg(
            "Subject: Re: x\n",
            b"Sounds good.\r\n\r\nOn Mon, 1 Jan 2024, Bob <bob@x.test> wrote:\r\n> Shall we meet?\r\n>> earlier\r\n\r\nSee you then.\r\n-- \r\nAlice\r\nAlice Corp\r\n",
        );
        assert_eq!(preview(&raw), "Sounds good. See you then.");
        // An attribution-like line with no quote after it is text.
        let kept = msg("", b"My teacher wrote:\r\n\r\npoems.\r\n");
        assert_eq!(preview(&kept), "My teacher wrote: poems.");
        // A reply that is all quote says nothing.
        let all = msg("", b"On Tue, Carol wrote:\r\n> everything\r\n");
        assert_eq!(preview(&all), "");
    }

    #[test]
    fn no_text_gives_the_empty_preview() {
        assert_eq!(preview(b""), "");
        assert_eq!(preview(b"Subject: nothing\r\n\r\n"), "");
        assert_eq!(preview(b"Subject: blank\r\n\r\n \r\n\t\r\n"), "");
        let attachment_only = msg(
            "Content-Type: multipart/mixed; boundary=b\n",
            b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n",
        );
        assert_eq!(preview(&attachment_only), "");
        let image = msg(
            "Content-Type: image/png\nContent-Transfer-Encoding: base64\n",
            b"iVBORw0KGgo=\r\n",
        );
        assert_eq!(preview(&image), "");
        let text_attachment = msg(
            "Content-Type: multipart/mixed; boundary=b\n",
            b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\nsecret notes\r\n--b--\r\n",
        );
        assert_eq!(preview(&text_attachment), "");
    }

    #[test]
    fn long_text_is_cut_at_200_characters_not_inside_one() {
        let body = "\u{e9}".repeat(1000);
        let raw = msg("Content-Type: text/plain; charset=utf-8\n", body.as_bytes());
        let p = preview(&raw);
        assert_eq!(p.chars().count(), MAX_CHARS);
        assert!(p.chars().all(|c| c == '\u{e9}'));
    }

    #[test]
    fn control_characters_and_bom_do_not_show() {
        let raw = msg(
            "Content-Type: text/plain; charset=utf-8\n",
            "\u{feff}a\u{1b}[31mb\u{7}c\u{0}d".as_bytes(),
        );
        assert_eq!(preview(&raw), "a [31mb c d");
    }

    #[test]
    fn hostile_inputs_stay_bounded() {
        // Markup with no end, an unterminated comment and script, deep nesting, a huge quote.
        let cases: Vec<Vec<u8>> = vec![
            msg("Content-Type: text/html\n", &b"<".repeat(100_000)),
            msg("Content-Type: text/html\n", b"<!-- never closed <p>x"),
            msg("Content-Type: text/html\n", b"<script>never closed"),
            msg(
                "Content-Type: text/html\n",
                &b"&amp;&#x;&#99999999999;&".repeat(10_000),
            ),
            msg("", &b"> quoted\r\n".repeat(100_000)),
            msg(
                "Content-Type: multipart/mixed; boundary=b\n",
                &b"--b\r\n".repeat(50_000),
            ),
        ];
        for raw in cases {
            let p = preview(&raw);
            assert!(p.chars().count() <= MAX_CHARS && p.len() <= MAX_OCTETS);
        }
    }

    quickcheck::quickcheck! {
        /// Any octets: no panic, at most 200 characters, no leading, trailing or doubled space.
        fn any_message_has_a_bounded_preview(raw: Vec<u8>) -> bool {
            let p = preview(&raw);
            p.chars().count() <= MAX_CHARS
                && p.len() <= MAX_OCTETS
                && p.trim() == p
                && !p.contains("  ")
                && !p.chars().any(char::is_control)
        }

        /// Any text as a plain body, or wrapped in HTML: the same bounds.
        fn any_text_body_has_a_bounded_preview(body: String, html: bool) -> bool {
            let header = if html {
                "Content-Type: text/html; charset=utf-8\n"
            } else {
                "Content-Type: text/plain; charset=utf-8\n"
            };
            let p = preview(&msg(header, body.as_bytes()));
            p.chars().count() <= MAX_CHARS && p.len() <= MAX_OCTETS
        }

        /// Plain text without quotes, signatures or attribution keeps its words, in order.
        fn plain_words_survive(words: Vec<u8>) -> bool {
            let text: Vec<String> = words.iter().map(|n| format!("w{n}")).collect();
            let body = text.join(" \r\n");
            let p = preview(&msg("Content-Type: text/plain\n", body.as_bytes()));
            let expected: String = text.join(" ").chars().take(MAX_CHARS).collect();
            p == expected.trim_end()
        }
    }
}
