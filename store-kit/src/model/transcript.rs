//! Prints a history's exchanges in the transcript format of `testdata/transcripts/`
//! (conformance/README.md): `@open`, `@on`, `C:`/`S:` lines, literals line by line, and
//! placeholders where values legitimately vary (UIDVALIDITY, dates, free text).

use tern_core::Protocol;

use super::runner::{Event, PASS, USER};

pub fn render(events: &[Event], why: &str) -> String {
    let mut out = Vec::new();
    out.push("# Found by the model-based history check (core/tests/model).".to_string());
    for line in why.lines() {
        out.push(format!("# {line}"));
    }
    out.push("@rfc 9051 7.5.1".to_string());
    out.push(format!("@user {USER} {PASS}"));
    let mut current: Option<String> = None;
    let mut protocols: Vec<(String, Protocol)> = Vec::new();
    let on = |name: &str, out: &mut Vec<String>, current: &mut Option<String>| {
        if current.as_deref() != Some(name) {
            out.push(format!("@on {name}"));
            *current = Some(name.to_string());
        }
    };
    for e in events {
        match e {
            Event::Open(name, p) => {
                out.push(String::new());
                out.push(format!(
                    "@open {name} {}",
                    if *p == Protocol::Imap { "imap" } else { "pop3" }
                ));
                current = Some(name.clone());
                protocols.push((name.clone(), *p));
            }
            Event::Client(name, bytes) => {
                on(name, &mut out, &mut current);
                for line in split(bytes) {
                    out.push(format!("C: {}", client_line(&line)));
                }
            }
            Event::Server(name, bytes) => {
                if bytes.is_empty() {
                    continue;
                }
                on(name, &mut out, &mut current);
                let imap = protocols
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .is_none_or(|(_, p)| *p == Protocol::Imap);
                for (line, literal) in server_lines(bytes) {
                    let shown = if literal {
                        line
                    } else if imap {
                        imap_pattern(&line)
                    } else {
                        pop3_pattern(&line)
                    };
                    out.push(format!("S: {shown}"));
                }
            }
            Event::Close(name) => {
                on(name, &mut out, &mut current);
                out.push("@close".to_string());
            }
            Event::Crash => {
                out.push("# The server process dies here and restarts on the same store folder; every connection is gone.".to_string());
                current = None;
            }
            Event::Tick(secs) => out.push(format!("@advance {secs}s")),
            Event::Note(name, text) => {
                on(name, &mut out, &mut current);
                out.push(format!("# {text}"));
            }
        }
    }
    out.join("\n")
}

fn split(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut v: Vec<String> = text.split("\r\n").map(str::to_string).collect();
    if v.last().is_some_and(String::is_empty) {
        v.pop();
    }
    v
}

fn client_line(line: &str) -> String {
    let line = line.replace(&format!("LOGIN {USER} {PASS}"), "LOGIN {{user}} {{pass}}");
    if line == format!("USER {USER}") {
        return "USER {{user}}".into();
    }
    if line == format!("PASS {PASS}") {
        return "PASS {{pass}}".into();
    }
    line
}

/// Server lines, each marked whether it is literal content (shown verbatim).
fn server_lines(bytes: &[u8]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut literal = 0usize;
    for line in split(bytes) {
        if literal > 0 {
            literal = literal.saturating_sub(line.len() + 2);
            out.push((line, true));
            continue;
        }
        if let Some(n) = announced(&line) {
            literal = n;
        }
        out.push((line, false));
    }
    out
}

fn announced(line: &str) -> Option<usize> {
    let body = line.strip_suffix('}')?;
    let open = body.rfind('{')?;
    body[open + 1..].trim_end_matches('+').parse().ok()
}

fn imap_pattern(line: &str) -> String {
    if line.starts_with("* OK [CAPABILITY") {
        return "* OK {{*}}".into();
    }
    let mut words: Vec<String> = line.split(' ').map(str::to_string).collect();
    // Status responses: keep tag, condition and code; the text is the server's to word.
    let cond_at = words
        .iter()
        .position(|w| matches!(w.as_str(), "OK" | "NO" | "BAD" | "BYE"));
    if cond_at == Some(1) {
        if words[0] == "l" || words[0] == "e" {
            return format!("{} {} {{{{*}}}}", words[0], words[1]);
        }
        let code_end = if words.get(2).is_some_and(|w| w.starts_with('[')) {
            words
                .iter()
                .position(|w| w.ends_with(']'))
                .map_or(3, |i| i + 1)
        } else {
            2
        };
        words.truncate(code_end);
        words.push("{{text}}".into());
    }
    for i in 1..words.len() {
        let prev = words[i - 1].trim_start_matches('[').to_string();
        if matches!(
            prev.as_str(),
            "UIDVALIDITY" | "APPENDUID" | "COPYUID" | "HIGHESTMODSEQ"
        ) && words[i]
            .trim_end_matches([']', ')'])
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            let tail: String = words[i]
                .chars()
                .filter(|c| *c == ']' || *c == ')')
                .collect();
            words[i] = format!("{{{{number}}}}{tail}");
        }
    }
    let s = words.join(" ");
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(at) = rest.find("INTERNALDATE \"") {
        let start = at + "INTERNALDATE \"".len();
        out.push_str(&rest[..start]);
        match rest[start..].find('"') {
            Some(len) => {
                out.push_str("{{date}}");
                rest = &rest[start + len..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

fn pop3_pattern(line: &str) -> String {
    if line.starts_with("+OK") && line.ends_with("ready.") {
        return "+OK {{*}}".into();
    }
    // UIDL ids embed the UIDVALIDITY.
    if let Some((n, id)) = line.split_once(' ') {
        if n.chars().all(|c| c.is_ascii_digit())
            && id.len() == 16
            && id.chars().all(|c| c.is_ascii_hexdigit())
        {
            return format!("{n} {{{{atom}}}}");
        }
    }
    line.to_string()
}
