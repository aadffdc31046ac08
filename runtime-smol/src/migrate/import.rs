//! `tern import --user NAME [--config PATH] [--mailbox M] [--mbox-variant rd|o] PATH`.
//!
//! PATH is an mbox file (into `--mailbox`, INBOX by default), a Maildir or Maildir++ tree
//! (folders as named in it), or a folder of `.eml` files (into `--mailbox`).
//!
//! Repeating an import adds nothing:
//! - messages of a Maildir folder listed in its `dovecot-uidlist` keep their UID and the
//!   folder's UIDVALIDITY (`StorageOp::ImportMessages`); UIDs below the mailbox's UIDNEXT are
//!   skipped, so a second run finds them all below it;
//! - every other message (mbox, `.eml`, Maildir files without a uidlist entry) is compared by
//!   the SHA-256 of its octets with the messages already in the target mailbox: the k-th
//!   copy of some octets in the source is added only when the mailbox holds fewer than k
//!   copies, so a source with two identical messages still gives two, once.
//!
//! A message that cannot be stored (unreadable, empty, larger than the configured literal
//! limit, an mbox `From ` line without a readable date) is reported with its place (file and
//! byte offset, or file name) and skipped; the exit status is then 65 (EX_DATAERR), the rest
//! imported.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tern_core::mail::date::{from_unix, DateTime};
use tern_core::mail::flags::Flag;
use tern_core::mail::mailbox_name;
use tern_core::store::{NewMessage, StorageError, StorageOp, StorageReply, Uid};

use super::maildir::{self, Folder, Keywords};
use super::mbox::{self, Variant};
use super::progress::Progress;
use super::uidlist::UidList;
use super::{exit, finish, parse_common, storage_failure, Failure, Target};

/// The command line.
pub const USAGE: &str =
    "usage: tern import --user NAME [--config PATH] [--mailbox M] [--mbox-variant rd|o] PATH";

/// Messages per store request, and octets: a request is one transaction.
const BATCH_MESSAGES: usize = 500;
const BATCH_OCTETS: usize = 32 << 20;
/// The largest `dovecot-uidlist` read.
const UIDLIST_MAX: u64 = 1 << 30;

/// Runs `tern import` with the arguments after `import`.
pub fn main(args: &[String]) -> ExitCode {
    finish(run(args), "import")
}

fn run(args: &[String]) -> Result<u8, Failure> {
    let (common, values) = parse_common(args, &["--mbox-variant"], USAGE)?;
    let variant = match values.first().cloned().flatten().as_deref() {
        None | Some("rd") => Variant::Rd,
        Some("o") => Variant::O,
        Some(_) => return Err(Failure::new(exit::USAGE, USAGE)),
    };
    let path = &common.path;
    let meta = std::fs::metadata(path)
        .map_err(|e| Failure::new(exit::NOINPUT, format!("{}: {e}", path.display())))?;
    let mailbox = match &common.mailbox {
        Some(m) => mailbox_name::canonical(m.clone())
            .map_err(|_| Failure::new(exit::USAGE, format!("{m:?} is not a mailbox name")))?,
        None => "INBOX".to_string(),
    };
    let target = Target::open(&common)?;
    let mut importer = Importer::new(&target);
    let outcome = if meta.is_file() {
        importer.mbox(path, &mailbox, variant)
    } else if maildir::is_maildir(path) {
        if common.mailbox.is_some() {
            return Err(Failure::new(
                exit::USAGE,
                "--mailbox is for mbox files and .eml folders; a Maildir keeps its folders",
            ));
        }
        importer.maildir(path)
    } else {
        importer.eml_folder(path, &mailbox)
    };
    importer.progress.finish();
    target.close();
    outcome?;
    let s = &importer.stats;
    let secs = importer.start.elapsed().as_secs_f64().max(0.001);
    println!(
        "imported {} messages ({:.1} MB) into {} in {secs:.1} s ({:.0} messages/s, {:.1} MB/s); \
         {} already there, {} skipped",
        s.imported,
        s.octets as f64 / 1e6,
        target.account,
        s.imported as f64 / secs,
        s.octets as f64 / 1e6 / secs,
        s.present,
        s.skipped
    );
    Ok(if s.skipped > 0 {
        exit::DATAERR
    } else {
        exit::OK
    })
}

#[derive(Debug, Default)]
struct Stats {
    imported: u64,
    octets: u64,
    present: u64,
    skipped: u64,
    /// Messages read from the source (for progress).
    read: u64,
}

/// Messages waiting to be appended to one mailbox, with what it already holds.
struct Sink {
    name: String,
    /// Copies of each message's octets in the mailbox and seen in the source so far; loaded
    /// at the first message.
    dedup: Option<HashMap<[u8; 32], (u64, u64)>>,
    batch: Vec<NewMessage>,
    octets: usize,
}

impl Sink {
    fn new(name: &str) -> Sink {
        Sink {
            name: name.to_string(),
            dedup: None,
            batch: Vec::new(),
            octets: 0,
        }
    }
}

struct Importer<'a> {
    target: &'a Target,
    progress: Progress,
    stats: Stats,
    start: Instant,
}

fn hash(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

impl<'a> Importer<'a> {
    fn new(target: &'a Target) -> Importer<'a> {
        Importer {
            target,
            progress: Progress::new(0, false),
            stats: Stats::default(),
            start: Instant::now(),
        }
    }

    fn skip(&mut self, place: &str, why: &str) {
        self.stats.skipped += 1;
        self.progress
            .println(&format!("tern import: skipped {place}: {why}"));
    }

    fn warn(&self, text: &str) {
        self.progress.println(&format!("tern import: {text}"));
    }

    /// Creates `name` unless it exists, subscribed (as the folders of the source were to
    /// their owner's clients).
    fn ensure_mailbox(&self, name: &str) -> Result<(), Failure> {
        let account = self.target.account.clone();
        match self.target.run(StorageOp::CreateMailbox {
            account: account.clone(),
            name: name.to_string(),
            special_use: None,
        }) {
            Ok(_) => {
                let subscribe = StorageOp::Subscribe {
                    account,
                    name: name.to_string(),
                    subscribed: true,
                };
                self.target
                    .must(subscribe, &format!("cannot subscribe {name}"))
                    .map(|_| ())
            }
            Err(StorageError::AlreadyExists) => Ok(()),
            Err(e) => Err(storage_failure(&format!("cannot create {name}"), &e)),
        }
    }

    /// Counts the messages of `name` by the hash of their octets.
    fn load_hashes(&self, name: &str) -> Result<HashMap<[u8; 32], (u64, u64)>, Failure> {
        self.ensure_mailbox(name)?;
        let mut counts: HashMap<[u8; 32], (u64, u64)> = HashMap::new();
        self.target.each_message(name, |_, octets| {
            counts.entry(hash(octets)).or_default().0 += 1;
            Ok(())
        })?;
        Ok(counts)
    }

    /// Queues a message for `sink` unless the mailbox holds it already.
    fn add(&mut self, sink: &mut Sink, message: NewMessage) -> Result<(), Failure> {
        if sink.dedup.is_none() {
            sink.dedup = Some(self.load_hashes(&sink.name)?);
        }
        let counts = sink.dedup.get_or_insert_with(HashMap::new);
        let entry = counts.entry(hash(&message.data)).or_default();
        entry.1 += 1;
        if entry.1 <= entry.0 {
            self.stats.present += 1;
            return Ok(());
        }
        sink.octets += message.data.len();
        sink.batch.push(message);
        if sink.batch.len() >= BATCH_MESSAGES || sink.octets >= BATCH_OCTETS {
            self.flush(sink)?;
        }
        Ok(())
    }

    fn flush(&mut self, sink: &mut Sink) -> Result<(), Failure> {
        if sink.batch.is_empty() {
            return Ok(());
        }
        let messages = std::mem::take(&mut sink.batch);
        let octets = std::mem::take(&mut sink.octets);
        let n = messages.len();
        self.target.must(
            StorageOp::Append {
                account: self.target.account.clone(),
                name: sink.name.clone(),
                messages,
            },
            &format!("cannot store into {}", sink.name),
        )?;
        self.stats.imported += n as u64;
        self.stats.octets += octets as u64;
        Ok(())
    }

    /// One mbox file into `name`.
    fn mbox(&mut self, path: &Path, name: &str, variant: Variant) -> Result<(), Failure> {
        let file = File::open(path)
            .map_err(|e| Failure::new(exit::NOINPUT, format!("{}: {e}", path.display())))?;
        let len = file.metadata().map_or(0, |m| m.len());
        self.progress = Progress::new(len, true);
        let mut reader = mbox::Reader::new(
            BufReader::with_capacity(1 << 20, file),
            variant,
            self.target.max_message,
        );
        let mut sink = Sink::new(name);
        let shown = path.display().to_string();
        loop {
            let framed = match reader.next_message() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    // A read error leaves the rest of the file unreachable.
                    self.flush(&mut sink)?;
                    return Err(Failure::new(exit::IOERR, format!("{shown}: {e}")));
                }
            };
            self.stats.read += 1;
            let place = format!("{shown} at byte {}", framed.offset);
            if framed.oversize {
                let why = format!(
                    "larger than the limit of {} octets",
                    self.target.max_message
                );
                self.skip(&place, &why);
            } else if framed.data.is_empty() {
                self.skip(&place, "empty message");
            } else {
                match mbox::parse_from_line(&framed.from_line) {
                    None => self.skip(&place, "no readable date in its From_ line"),
                    Some((_, date)) => self.add(
                        &mut sink,
                        NewMessage {
                            flags: mbox::header_flags(&framed.data),
                            internal_date: Some(date),
                            data: Bytes::from(framed.data),
                        },
                    )?,
                }
            }
            self.progress.set(self.stats.read, framed.offset);
        }
        if reader.leading_garbage > 0 {
            let why = format!(
                "{} octets before the first From_ line",
                reader.leading_garbage
            );
            self.skip(&format!("{shown} at byte 0"), &why);
        }
        self.flush(&mut sink)
    }

    /// A folder of `.eml` files into `name`.
    fn eml_folder(&mut self, dir: &Path, name: &str) -> Result<(), Failure> {
        let read =
            |e: std::io::Error| Failure::new(exit::NOINPUT, format!("{}: {e}", dir.display()));
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read)? {
            let path = entry.map_err(read)?.path();
            let eml = path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("eml"));
            if eml && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        self.progress = Progress::new(files.len() as u64, false);
        let mut sink = Sink::new(name);
        for path in files {
            self.stats.read += 1;
            if let Some((data, date)) = self.read_file(&path) {
                self.add(
                    &mut sink,
                    NewMessage {
                        flags: Vec::new(),
                        internal_date: date,
                        data,
                    },
                )?;
            }
            self.progress.set(self.stats.read, 0);
        }
        self.flush(&mut sink)
    }

    /// A message file: its octets (CRLF) and its mtime; `None` when skipped (reported).
    fn read_file(&mut self, path: &Path) -> Option<(Bytes, Option<DateTime>)> {
        let shown = path.display().to_string();
        let result = (|| {
            let file = File::open(path)?;
            let meta = file.metadata()?;
            let mut raw = Vec::new();
            // One octet past the limit tells an oversize file without reading it all.
            file.take(self.target.max_message as u64 + 1)
                .read_to_end(&mut raw)?;
            Ok::<_, std::io::Error>((raw, meta.modified().ok()))
        })();
        let (raw, mtime) = match result {
            Ok(r) => r,
            Err(e) => {
                self.skip(&shown, &format!("cannot read: {e}"));
                return None;
            }
        };
        if raw.len() > self.target.max_message {
            let why = format!(
                "larger than the limit of {} octets",
                self.target.max_message
            );
            self.skip(&shown, &why);
            return None;
        }
        if raw.is_empty() {
            self.skip(&shown, "empty message");
            return None;
        }
        let mut data = Vec::with_capacity(raw.len() + raw.len() / 32);
        mbox::lf_to_crlf(&raw, &mut data);
        let date = mtime
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| from_unix(d.as_secs() as i64, 0));
        Some((Bytes::from(data), date))
    }

    /// A Maildir or Maildir++ tree.
    fn maildir(&mut self, root: &Path) -> Result<(), Failure> {
        let read =
            |e: std::io::Error| Failure::new(exit::NOINPUT, format!("{}: {e}", root.display()));
        let (folders, skipped) = maildir::folders(root).map_err(read)?;
        for name in skipped {
            self.warn(&format!(
                "folder {name:?} left out (not a mailbox name tern can hold)"
            ));
        }
        let mut listed = Vec::with_capacity(folders.len());
        let mut total = 0u64;
        for folder in folders {
            let files = maildir::message_files(&folder.dir).map_err(read)?;
            total += files.len() as u64;
            listed.push((folder, files));
        }
        self.progress = Progress::new(total, false);
        for (folder, files) in listed {
            self.maildir_folder(&folder, files)?;
        }
        Ok(())
    }

    fn maildir_folder(&mut self, folder: &Folder, files: Vec<PathBuf>) -> Result<(), Failure> {
        let keywords = Keywords::read(&folder.dir).unwrap_or_else(|e| {
            self.warn(&format!(
                "{}/dovecot-keywords: {e}; keywords left out",
                folder.dir.display()
            ));
            Keywords::default()
        });
        self.ensure_mailbox(&folder.name)?;
        let uidlist = self.read_uidlist(&folder.dir);
        // Files by their uidlist UID, and the others in name order.
        let mut by_uid: Vec<(Uid, PathBuf)> = Vec::new();
        let mut others: Vec<PathBuf> = Vec::new();
        for path in files {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let base = maildir::split_name(&file_name).0;
            match uidlist.as_ref().and_then(|l| l.uids.get(base)) {
                Some(&uid) => by_uid.push((uid, path)),
                None => others.push(path),
            }
        }
        by_uid.sort_by_key(|(uid, _)| *uid);
        // Two files under one UID (a uidlist out of date): the second is an "other".
        let mut kept: Vec<(Uid, PathBuf)> = Vec::with_capacity(by_uid.len());
        for (uid, path) in by_uid {
            if kept.last().is_some_and(|(u, _)| *u == uid) {
                others.push(path);
            } else {
                kept.push((uid, path));
            }
        }
        if let Some(list) = &uidlist {
            let floor = self.uid_floor(&folder.name, list.uid_validity)?;
            match floor {
                Some(floor) => self.import_with_uids(folder, list, kept, floor, &keywords)?,
                None => {
                    self.warn(&format!(
                        "{}: tern's mailbox {} has another UIDVALIDITY than the source's {}; \
                         its messages get new UIDs",
                        folder.dir.display(),
                        folder.name,
                        list.uid_validity
                    ));
                    others.splice(0..0, kept.into_iter().map(|(_, p)| p));
                }
            }
        }
        let mut sink = Sink::new(&folder.name);
        for path in others {
            self.stats.read += 1;
            let flags = file_flags(&path, &keywords);
            if let Some((data, date)) = self.read_file(&path) {
                self.add(
                    &mut sink,
                    NewMessage {
                        flags,
                        internal_date: date,
                        data,
                    },
                )?;
            }
            self.progress.set(self.stats.read, 0);
        }
        self.flush(&mut sink)
    }

    fn read_uidlist(&self, dir: &Path) -> Option<UidList> {
        let path = dir.join("dovecot-uidlist");
        let mut text = Vec::new();
        // About 60 octets a message: a bound far above any real folder's list.
        let read = File::open(&path).and_then(|f| f.take(UIDLIST_MAX).read_to_end(&mut text));
        match read {
            Ok(n) if n as u64 >= UIDLIST_MAX => {
                self.warn(&format!(
                    "{}: larger than {UIDLIST_MAX} octets; UIDs not kept",
                    path.display()
                ));
                return None;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.warn(&format!("{}: {e}; UIDs not kept", path.display()));
                return None;
            }
        }
        match UidList::parse(&String::from_utf8_lossy(&text)) {
            Ok(list) => {
                if !list.bad_lines.is_empty() {
                    self.warn(&format!(
                        "{}: lines {:?} unreadable; their messages get new UIDs",
                        path.display(),
                        list.bad_lines
                    ));
                }
                Some(list)
            }
            Err(e) => {
                self.warn(&format!("{}: {e}; UIDs not kept", path.display()));
                None
            }
        }
    }

    /// The lowest UID an import into `name` with `uid_validity` may add, or `None` when the
    /// mailbox holds messages under another UIDVALIDITY.
    fn uid_floor(&self, name: &str, uid_validity: u32) -> Result<Option<Uid>, Failure> {
        match self.target.run(StorageOp::Status {
            account: self.target.account.clone(),
            name: name.to_string(),
        }) {
            Ok(StorageReply::Status(s)) if s.uid_next <= 1 => Ok(Some(1)),
            Ok(StorageReply::Status(s)) if s.uid_validity == uid_validity => Ok(Some(s.uid_next)),
            Ok(StorageReply::Status(_)) => Ok(None),
            Err(StorageError::NoSuchMailbox) => Ok(Some(1)),
            Ok(_) => Err(Failure::new(exit::IOERR, format!("cannot read {name}"))),
            Err(e) => Err(storage_failure(&format!("cannot read {name}"), &e)),
        }
    }

    fn import_with_uids(
        &mut self,
        folder: &Folder,
        list: &UidList,
        kept: Vec<(Uid, PathBuf)>,
        floor: Uid,
        keywords: &Keywords,
    ) -> Result<(), Failure> {
        let mut batch: Vec<(Uid, NewMessage)> = Vec::new();
        let mut octets = 0usize;
        let mut last = 0;
        for (uid, path) in kept {
            self.stats.read += 1;
            last = uid;
            if uid < floor {
                self.stats.present += 1;
                self.progress.set(self.stats.read, 0);
                continue;
            }
            let flags = file_flags(&path, keywords);
            if let Some((data, date)) = self.read_file(&path) {
                octets += data.len();
                batch.push((
                    uid,
                    NewMessage {
                        flags,
                        internal_date: date,
                        data,
                    },
                ));
            }
            if batch.len() >= BATCH_MESSAGES || octets >= BATCH_OCTETS {
                // UIDNEXT only with the last batch: raised earlier, it would put the next
                // batch's UIDs below it.
                self.store_with_uids(folder, list.uid_validity, 1, &mut batch, &mut octets)?;
            }
            self.progress.set(self.stats.read, 0);
        }
        let uid_next = list.next_uid.max(last.saturating_add(1));
        self.store_with_uids(folder, list.uid_validity, uid_next, &mut batch, &mut octets)
    }

    fn store_with_uids(
        &mut self,
        folder: &Folder,
        uid_validity: u32,
        uid_next: Uid,
        batch: &mut Vec<(Uid, NewMessage)>,
        octets: &mut usize,
    ) -> Result<(), Failure> {
        let messages = std::mem::take(batch);
        let n = messages.len() as u64;
        self.target.must(
            StorageOp::ImportMessages {
                account: self.target.account.clone(),
                name: folder.name.clone(),
                uid_validity,
                uid_next,
                messages,
            },
            &format!("cannot store into {}", folder.name),
        )?;
        self.stats.imported += n;
        self.stats.octets += std::mem::take(octets) as u64;
        Ok(())
    }
}

/// The flags in a Maildir file's name.
fn file_flags(path: &Path, keywords: &Keywords) -> Vec<Flag> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match maildir::split_name(&name).1 {
        Some(info) => maildir::flags(info, keywords),
        None => Vec::new(),
    }
}
