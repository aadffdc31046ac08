//! What computing the PREVIEW (RFC 8970) adds to the analysis every APPEND does.
//!
//! ```text
//! cargo run --release -p tern-core --example preview_cost [FILE_OR_DIR...]
//! ```
//!
//! For each message (the files given, folders walked; a few synthetic messages when none is
//! given) it times, best of several rounds: the whole analysis a store runs at APPEND
//! (`analyze_all`, which includes the preview), a bare mail-parser parse, and
//! `preview::preview` (a parse and the preview). The preview's own cost is the last minus the
//! parse; the figure printed is that cost as a share of the analysis. Timings are figures on
//! a shared machine, never assertions.

// A measuring tool beside the crate, not part of it: it reads the clock, which tern-core's own
// code never does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tern_core::mail::analyze::analyze_all;
use tern_core::mail::preview::preview;

fn files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            files(&e, out);
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}

fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 16);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

fn synthetic() -> Vec<Vec<u8>> {
    let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n".repeat(40);
    let html = format!(
        "<html><head><style>p{{margin:0}}</style></head><body>{}</body></html>",
        "<p>Lorem <b>ipsum</b> &amp; dolor sit amet.</p>\r\n".repeat(400)
    );
    let attachment = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n".repeat(5000);
    vec![
        format!("From: a@x.test\r\nSubject: plain\r\n\r\n{text}").into_bytes(),
        format!("From: a@x.test\r\nSubject: html\r\nContent-Type: text/html\r\n\r\n{html}")
            .into_bytes(),
        format!(
            "From: a@x.test\r\nSubject: mixed\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n\
             Content-Type: text/plain\r\n\r\n{text}\r\n--a\r\nContent-Type: text/html\r\n\r\n\
             {html}\r\n--a--\r\n--b\r\nContent-Type: application/pdf\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{attachment}--b--\r\n"
        )
        .into_bytes(),
        format!(
            "From: a@x.test\r\nSubject: Re: x\r\n\r\nYes.\r\n\r\nOn Mon, B wrote:\r\n{}-- \r\nA\r\n",
            "> quoted line of an earlier message\r\n".repeat(200)
        )
        .into_bytes(),
    ]
}

/// Best-of-rounds seconds per pass of `f` over every message.
fn time(messages: &[Vec<u8>], f: impl Fn(&[u8])) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for m in messages {
            f(m);
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let messages: Vec<Vec<u8>> = if args.is_empty() {
        synthetic()
    } else {
        let mut paths = Vec::new();
        for a in &args {
            files(Path::new(a), &mut paths);
        }
        paths
            .iter()
            .map(|p| crlf(&std::fs::read(p).unwrap()))
            .collect()
    };
    let n = messages.len() as f64;
    let octets: usize = messages.iter().map(Vec::len).sum();
    let analysis = time(&messages, |m| {
        black_box(analyze_all(black_box(m)));
    });
    let parse = time(&messages, |m| {
        black_box(mail_parser::MessageParser::default().parse(black_box(m)));
    });
    let with_preview = time(&messages, |m| {
        black_box(preview(black_box(m)));
    });
    let own = (with_preview - parse).max(0.0);
    println!(
        "{} messages, {} octets: analysis at APPEND {:.1} µs/message (preview included); \
         parse alone {:.1} µs; parse + preview {:.1} µs; the preview's own cost {:.1} µs/message, \
         {:.1}% of the analysis",
        messages.len(),
        octets,
        analysis / n * 1e6,
        parse / n * 1e6,
        with_preview / n * 1e6,
        own / n * 1e6,
        own / analysis * 100.0
    );
}
