//! `tern export --user NAME [--config PATH] [--mailbox M] --format mbox|maildir PATH`.
//!
//! mbox: one mailbox (`--mailbox`, INBOX by default) into a new file, mboxrd with LF line
//! ends; each `From ` line names the message's `Return-Path` address (else `MAILER-DAEMON`)
//! and its internal date in UTC, as a local delivery agent writes them.
//!
//! maildir: every mailbox (or only `--mailbox`, at the root) into a new Maildir++ tree for
//! Dovecot: one file per message, LF line ends (Dovecot's own), flags and keyword letters in
//! the `:2,` info, the internal date as the file's mtime, and per folder a `dovecot-uidlist`
//! with the mailbox's UIDVALIDITY, UIDNEXT and UIDs and a `dovecot-keywords`, so Dovecot
//! serves the same identifiers and clients download nothing again.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use tern_core::mail::date::to_unix;
use tern_core::mail::flags::Flag;
use tern_core::mail::mailbox_name;
use tern_core::store::{StorageOp, StorageReply, Uid};

use super::maildir::{self, Keywords, KEYWORD_LETTERS};
use super::mbox;
use super::uidlist::UidList;
use super::{exit, finish, parse_common, Failure, Target};

/// The command line.
pub const USAGE: &str =
    "usage: tern export --user NAME [--config PATH] [--mailbox M] --format mbox|maildir PATH";

/// Runs `tern export` with the arguments after `export`.
pub fn main(args: &[String]) -> ExitCode {
    finish(run(args), "export")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Mbox,
    Maildir,
}

fn run(args: &[String]) -> Result<u8, Failure> {
    let (common, values) = parse_common(args, &["--format"], USAGE)?;
    let format = match values.first().cloned().flatten().as_deref() {
        Some("mbox") => Format::Mbox,
        Some("maildir") => Format::Maildir,
        _ => return Err(Failure::new(exit::USAGE, USAGE)),
    };
    let path = &common.path;
    let taken = match format {
        Format::Mbox => path.exists(),
        Format::Maildir => std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()),
    };
    if taken {
        return Err(Failure::new(
            exit::CANTCREAT,
            format!(
                "{} exists; export writes only a new file or an empty folder",
                path.display()
            ),
        ));
    }
    let only = match &common.mailbox {
        Some(m) => Some(
            mailbox_name::canonical(m.clone())
                .map_err(|_| Failure::new(exit::USAGE, format!("{m:?} is not a mailbox name")))?,
        ),
        None => None,
    };
    let target = Target::open(&common)?;
    let mut count = 0u64;
    let result = match format {
        Format::Mbox => {
            let name = only.unwrap_or_else(|| "INBOX".into());
            export_mbox(&target, &name, path, &mut count)
        }
        Format::Maildir => export_maildir(&target, only, path, &mut count),
    };
    target.close();
    result?;
    println!(
        "exported {count} messages of {} to {}",
        target.account,
        path.display()
    );
    Ok(exit::OK)
}

fn io_failure(path: &Path) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::new(exit::IOERR, format!("{}: {e}", path.display()))
}

/// Calls `f` with each message of `name` in UID order, and returns the mailbox's
/// UIDVALIDITY and UIDNEXT.
fn export_mbox(target: &Target, name: &str, path: &Path, count: &mut u64) -> Result<(), Failure> {
    let io = io_failure(path);
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(&io)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    target.each_message(name, |m, octets| {
        *count += 1;
        let sender = mbox::envelope_sender(octets);
        mbox::write_message(&mut out, &sender, &m.internal_date, octets).map_err(&io)
    })?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(&io)
}

fn export_maildir(
    target: &Target,
    only: Option<String>,
    root: &Path,
    count: &mut u64,
) -> Result<(), Failure> {
    let folders: Vec<(String, PathBuf)> = match only {
        Some(name) => vec![(name, root.to_path_buf())],
        None => {
            let StorageReply::Mailboxes(list) = target.must(
                StorageOp::ListMailboxes {
                    account: target.account.clone(),
                },
                "cannot list mailboxes",
            )?
            else {
                return Err(Failure::new(exit::IOERR, "cannot list mailboxes"));
            };
            let mut out = Vec::new();
            for m in list.mailboxes.into_iter().filter(|m| m.selectable) {
                if m.name == "INBOX" {
                    out.push((m.name, root.to_path_buf()));
                } else if let Some(dir) = maildir::folder_dir_name(&m.name) {
                    out.push((m.name, root.join(dir)));
                } else {
                    eprintln!(
                        "tern export: mailbox {:?} left out: a Maildir++ folder name cannot hold a '.'",
                        m.name
                    );
                }
            }
            out
        }
    };
    for (name, dir) in folders {
        export_folder(target, &name, &dir, count)?;
    }
    Ok(())
}

fn export_folder(target: &Target, name: &str, dir: &Path, count: &mut u64) -> Result<(), Failure> {
    let io = io_failure(dir);
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(&io)?;
    }
    let mut keywords: Vec<String> = Vec::new();
    let mut lost_keywords = 0u64;
    let mut entries: Vec<(Uid, String)> = Vec::new();
    let (uid_validity, uid_next) = target.each_message(name, |m, octets| {
        *count += 1;
        let flags = m.flags.to_flags();
        let info = maildir::info(&flags, |k| {
            let k = String::from_utf8_lossy(k).into_owned();
            let i = match keywords.iter().position(|x| x.eq_ignore_ascii_case(&k)) {
                Some(i) => i,
                None => {
                    keywords.push(k);
                    keywords.len() - 1
                }
            };
            (i < KEYWORD_LETTERS).then(|| char::from(b'a' + i as u8))
        });
        let letters = flags
            .iter()
            .filter(|f| matches!(f, Flag::Keyword(k) if !k.eq_ignore_ascii_case(maildir::PASSED_KEYWORD)))
            .count();
        lost_keywords +=
            letters.saturating_sub(info.chars().filter(char::is_ascii_lowercase).count()) as u64;
        let mut lf = Vec::with_capacity(octets.len());
        mbox::crlf_to_lf(octets, &mut lf);
        let unix = to_unix(&m.internal_date);
        // Dovecot's own shape: S= the file's size, W= the message's with CRLF (RFC822.SIZE).
        let base = format!("{unix}.T{}.tern,S={},W={}", m.uid, lf.len(), octets.len());
        let path = dir.join("cur").join(format!("{base}:2,{info}"));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(&io)?;
        (&file).write_all(&lf).map_err(&io)?;
        if let Ok(secs) = u64::try_from(unix) {
            let _ = file.set_modified(UNIX_EPOCH + Duration::from_secs(secs));
        }
        entries.push((m.uid, base));
        Ok(())
    })?;
    if lost_keywords > 0 {
        eprintln!(
            "tern export: {name}: {lost_keywords} keyword uses left out (Maildir names at most {KEYWORD_LETTERS} keywords per folder)"
        );
    }
    let keywords: Vec<String> = keywords.into_iter().take(KEYWORD_LETTERS).collect();
    std::fs::write(dir.join("dovecot-keywords"), Keywords::write(&keywords)).map_err(&io)?;
    std::fs::write(
        dir.join("dovecot-uidlist"),
        UidList::write(uid_validity, uid_next, &entries),
    )
    .map_err(&io)?;
    Ok(())
}
