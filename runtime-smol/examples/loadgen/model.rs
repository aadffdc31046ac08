//! What the mixed workload's clients know about the mailbox, and the violations they count.
//!
//! Each client keeps its own view of INBOX (sequence numbers → UIDs, the flags announced by
//! the last untagged FLAGS); the run shares what does not depend on a session: UIDVALIDITY,
//! which corpus message each appended UID holds (from APPENDUID), and a digest of every
//! message's immutable FETCH data, so that any client can notice a server that returns two
//! different ENVELOPEs (or bodies, sizes …) for one UID.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

/// How many violations of each kind are printed in full (they are all counted).
const PRINT_PER_KIND: u64 = 3;
/// How much of a response line a printed violation shows.
const PRINT_OCTETS: usize = 1500;
/// UIDs whose immutable data is remembered; the oldest are forgotten first (the mailbox
/// holds about 30 messages, so old UIDs are long expunged).
const MAX_UIDS: usize = 20_000;

/// Violations by kind, printed on standard error as they happen (the first few of each).
#[derive(Default)]
pub struct Log {
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl Log {
    pub fn violation(&self, kind: &'static str, client: usize, detail: &str, line: &[u8]) {
        let n = {
            let Ok(mut counts) = self.counts.lock() else {
                return;
            };
            let n = counts.entry(kind).or_insert(0);
            *n += 1;
            *n
        };
        if n <= PRINT_PER_KIND {
            eprintln!(
                "VIOLATION {kind} (client {client}): {detail}\n    line: {}",
                shown(line)
            );
        }
    }

    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// A response line for a message: the beginning, and how much was left out.
pub fn shown(line: &[u8]) -> String {
    let end = line.len().min(PRINT_OCTETS);
    let mut s = String::from_utf8_lossy(&line[..end]).trim_end().to_string();
    if end < line.len() {
        s.push_str(&format!(" …({} more octets)", line.len() - end));
    }
    s
}

/// What one UID is known to hold.
#[derive(Default)]
struct UidInfo {
    /// The corpus message appended as this UID (from APPENDUID).
    message: Option<usize>,
    /// (digest of the item's name, digest of its value) for the immutable FETCH items.
    items: Vec<(u64, u64)>,
}

/// Knowledge shared by every client of one run (one server).
pub struct Shared {
    pub corpus: Vec<Bytes>,
    uidvalidity: AtomicU32,
    uids: Mutex<BTreeMap<u32, UidInfo>>,
    pub log: Log,
}

/// What a comparison against the shared knowledge found.
pub enum Check {
    Fine,
    /// The item's value differs from the one seen before for this UID.
    Changed,
    /// The value differs from the appended message (detail says how).
    Content(String),
}

impl Shared {
    pub fn new(corpus: Vec<Bytes>) -> Shared {
        Shared {
            corpus,
            uidvalidity: AtomicU32::new(0),
            uids: Mutex::new(BTreeMap::new()),
            log: Log::default(),
        }
    }

    /// False when the server announces a UIDVALIDITY other than the one seen first.
    pub fn uidvalidity_is(&self, v: u32) -> bool {
        match self
            .uidvalidity
            .compare_exchange(0, v, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(old) => old == v,
        }
    }

    pub fn uidvalidity(&self) -> u32 {
        self.uidvalidity.load(Ordering::SeqCst)
    }

    /// Records that `uid` holds corpus message `message`; false when the UID was already
    /// given to another APPEND.
    pub fn appended(&self, uid: u32, message: usize) -> bool {
        let Ok(mut uids) = self.uids.lock() else {
            return true;
        };
        let info = uids.entry(uid).or_default();
        if info.message.is_some() {
            return false;
        }
        info.message = Some(message);
        while uids.len() > MAX_UIDS {
            uids.pop_first();
        }
        true
    }

    /// Compares one FETCH item of `uid` with what was seen before and with the appended
    /// message, and remembers it.
    pub fn check_item(&self, uid: u32, name: &[u8], value: &[u8]) -> Check {
        let Ok(mut uids) = self.uids.lock() else {
            return Check::Fine;
        };
        let info = uids.entry(uid).or_default();
        if let Some(i) = info.message {
            if let Some(why) = self
                .corpus
                .get(i)
                .and_then(|m| content_differs(m, name, value))
            {
                return Check::Content(why);
            }
        }
        let (key, digest) = (digest(name), digest(value));
        let verdict = match info.items.iter().find(|(k, _)| *k == key) {
            Some(&(_, d)) if d != digest => Check::Changed,
            Some(_) => Check::Fine,
            None => {
                info.items.push((key, digest));
                Check::Fine
            }
        };
        while uids.len() > MAX_UIDS {
            uids.pop_first();
        }
        verdict
    }
}

fn digest(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// Why a FETCH item does not match the message that was appended, if it does not.
fn content_differs(message: &[u8], name: &[u8], value: &[u8]) -> Option<String> {
    let split = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |p| p + 4);
    let (header, text) = message.split_at(split);
    let expected: &[u8] = match name {
        b"RFC822.SIZE" => {
            let size = std::str::from_utf8(value).ok()?.parse::<usize>().ok()?;
            return (size != message.len()).then(|| {
                format!(
                    "RFC822.SIZE {size}, the appended message has {}",
                    message.len()
                )
            });
        }
        b"BODY[]" => message,
        b"BODY[HEADER]" | b"RFC822.HEADER" => header,
        b"BODY[TEXT]" => text,
        _ => return None,
    };
    (value != expected).then(|| {
        let at = value
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(value.len().min(expected.len()));
        format!(
            "{} is {} octets, the appended message's is {}; they differ from octet {at}",
            String::from_utf8_lossy(name),
            value.len(),
            expected.len()
        )
    })
}

/// One client's view of its selected mailbox.
#[derive(Default)]
pub struct Mailbox {
    /// A tagged OK of SELECT arrived (and no new SELECT reset the view since).
    pub selected: bool,
    /// UID by sequence number − 1; 0 where not yet known.
    uids: Vec<u32>,
    /// Keywords (lower case) in the last untagged FLAGS.
    announced: HashSet<Vec<u8>>,
}

/// A violation of the model: its kind and what happened.
pub type Violation = (&'static str, String);

const SYSTEM_FLAGS: &[&[u8]] = &[
    b"\\seen",
    b"\\answered",
    b"\\flagged",
    b"\\deleted",
    b"\\draft",
    b"\\recent",
];

impl Mailbox {
    /// A new SELECT is being processed: everything known about the old view is gone.
    pub fn reset(&mut self) {
        self.selected = false;
        self.uids.clear();
        self.announced.clear();
    }

    pub fn exists(&self) -> u32 {
        self.uids.len() as u32
    }

    /// The highest UID this client knows of.
    pub fn max_uid(&self) -> u32 {
        self.uids.iter().copied().max().unwrap_or(0)
    }

    pub fn uid(&self, seq: u32) -> Option<u32> {
        self.uids
            .get(seq.checked_sub(1)? as usize)
            .copied()
            .filter(|&u| u != 0)
    }

    /// `* n EXISTS`: the mailbox never shrinks without EXPUNGE.
    pub fn on_exists(&mut self, n: u64) -> Result<(), Violation> {
        let old = self.uids.len() as u64;
        if n < old {
            return Err((
                "exists-shrank",
                format!("EXISTS {n} after {old} with no EXPUNGE between"),
            ));
        }
        // Bounded: a mailbox of the workload holds tens of messages, and a server claiming
        // millions is refused rather than believed.
        if n > 10_000_000 {
            return Err(("exists-absurd", format!("EXISTS {n}")));
        }
        self.uids.resize(n as usize, 0);
        Ok(())
    }

    /// `* n EXPUNGE`: n must be a message of the view; the ones after it move down.
    pub fn on_expunge(&mut self, n: u64) -> Result<(), Violation> {
        if n == 0 || n > self.uids.len() as u64 {
            return Err((
                "expunge-out-of-range",
                format!("EXPUNGE {n} with {} messages in the view", self.uids.len()),
            ));
        }
        self.uids.remove(n as usize - 1);
        Ok(())
    }

    /// `* FLAGS (…)`: the flags (and keywords) defined in the mailbox from now on.
    pub fn on_flags(&mut self, flags: &[&[u8]]) {
        self.announced = flags
            .iter()
            .filter(|f| !f.starts_with(b"\\"))
            .map(|f| f.to_ascii_lowercase())
            .collect();
    }

    /// The sequence number of a FETCH response is in the view.
    pub fn check_seq(&self, n: u64) -> Result<(), Violation> {
        if n == 0 || n > self.uids.len() as u64 {
            return Err((
                "fetch-out-of-range",
                format!(
                    "FETCH for {n} with {} messages in the view",
                    self.uids.len()
                ),
            ));
        }
        Ok(())
    }

    /// `UID u` for sequence number n: the same as before, and in order with its neighbours.
    pub fn on_uid(&mut self, n: u32, uid: u32) -> Result<(), Violation> {
        let i = n as usize - 1;
        let Some(&known) = self.uids.get(i) else {
            return Ok(());
        };
        if known != 0 && known != uid {
            return Err((
                "uid-changed",
                format!("message {n} had UID {known}, now UID {uid}"),
            ));
        }
        let below = self.uids[..i].iter().rev().find(|&&u| u != 0);
        let above = self.uids[i + 1..].iter().find(|&&u| u != 0);
        if uid == 0 || below.is_some_and(|&b| b >= uid) || above.is_some_and(|&a| a <= uid) {
            return Err((
                "uid-order",
                format!(
                    "message {n} has UID {uid}; the known UIDs around it are {below:?} and {above:?}"
                ),
            ));
        }
        self.uids[i] = uid;
        Ok(())
    }

    /// Flags of a FETCH response: system flags known, keywords announced by FLAGS first
    /// (RFC 3501 §7.2.6: FLAGS lists the flags defined in the mailbox, and a server that
    /// creates a keyword sends a new FLAGS before using it).
    pub fn check_flags(&self, flags: &[&[u8]]) -> Result<(), Violation> {
        for f in flags {
            let lower = f.to_ascii_lowercase();
            if lower.starts_with(b"\\") {
                if !SYSTEM_FLAGS.contains(&lower.as_slice()) {
                    return Err((
                        "flag-unknown",
                        format!("system flag {} in FETCH", String::from_utf8_lossy(f)),
                    ));
                }
            } else if !self.announced.contains(&lower) {
                let mut announced: Vec<String> = self
                    .announced
                    .iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect();
                announced.sort();
                return Err((
                    "keyword-not-announced",
                    format!(
                        "keyword {} in FETCH, but the last FLAGS announced only {announced:?}",
                        String::from_utf8_lossy(f)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expunge_renumbers_and_uids_stay_ordered() {
        let mut m = Mailbox::default();
        m.on_exists(3).unwrap();
        m.on_uid(1, 10).unwrap();
        m.on_uid(3, 30).unwrap();
        assert!(m.on_uid(2, 40).is_err());
        m.on_expunge(1).unwrap();
        assert_eq!(m.uid(2), Some(30));
        assert!(m.on_uid(2, 31).is_err());
        assert!(m.on_exists(1).is_err());
        assert!(m.on_expunge(3).is_err());
    }

    #[test]
    fn keywords_need_an_announcement() {
        let mut m = Mailbox::default();
        m.on_flags(&[b"\\Seen", b"$Label1"]);
        assert!(m.check_flags(&[b"\\Seen", b"$label1"]).is_ok());
        assert!(m.check_flags(&[b"$Label2"]).is_err());
        assert!(m.check_flags(&[b"\\Bogus"]).is_err());
    }

    #[test]
    fn content_is_compared_with_the_appended_message() {
        let shared = Shared::new(vec![Bytes::from_static(b"A: b\r\n\r\nbody\r\n")]);
        assert!(shared.appended(5, 0));
        assert!(!shared.appended(5, 0));
        assert!(matches!(
            shared.check_item(5, b"BODY[TEXT]", b"body\r\n"),
            Check::Fine
        ));
        assert!(matches!(
            shared.check_item(5, b"RFC822.SIZE", b"15"),
            Check::Content(_)
        ));
        assert!(matches!(
            shared.check_item(5, b"ENVELOPE", b"(x)"),
            Check::Fine
        ));
        assert!(matches!(
            shared.check_item(5, b"ENVELOPE", b"(y)"),
            Check::Changed
        ));
    }
}
