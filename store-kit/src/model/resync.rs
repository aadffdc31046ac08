//! The QRESYNC property (RFC 7162 §3.2.5): a client that went offline at any earlier probe,
//! knowing a mailbox's UIDs, flags, UIDVALIDITY and HIGHESTMODSEQ then, and that comes back
//! with `EXAMINE mailbox (QRESYNC (uidvalidity modseq [known-uids [seq-match]]))` followed by
//! `UID FETCH <old UIDNEXT>:* (FLAGS)` for what arrived, holds exactly what the mailbox holds
//! now: every expunge since reached it in VANISHED (EARLIER) (a superset is allowed, a missing
//! UID is not), every flag change in a FETCH with its MODSEQ.
//!
//! The resynchronising session is a fresh one on the same store, outside the history: EXAMINE
//! claims nothing and changes nothing, so the history goes on as if it had not run.

use std::collections::BTreeMap;

use tern_core::drive::pump;
use tern_core::imap::response::{Code, Data, FetchItem, Response};
use tern_core::{Input, Protocol};

use super::runner::{expand, flag_name, lossy, parse_all, World, PASS, USER};
use super::spec::{FlagSet, Uid};

/// What a client knew of a mailbox when it went offline.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub uid_validity: u32,
    pub highest_modseq: u64,
    pub uid_next: Uid,
    /// UIDs in sequence order, with their flags.
    pub messages: Vec<(Uid, FlagSet)>,
}

/// Checkpoints kept per mailbox; the oldest and the most recent ones are kept, the others
/// are replaced, so that both long and short absences are tried.
const KEPT: usize = 6;

/// Clients resynchronise at every probe of a step that is a multiple of this, and at the
/// probes that compare octets (after a crash, at the end of a history): a third of the cost
/// of doing it at every probe, which tripled the time of the in-memory histories.
pub const RESYNC_EVERY: usize = 3;

/// Keeps `cp` among a mailbox's checkpoints.
pub fn remember(list: &mut Vec<Checkpoint>, cp: Checkpoint) {
    if list
        .last()
        .is_some_and(|l| l.highest_modseq == cp.highest_modseq && l.uid_validity == cp.uid_validity)
    {
        return;
    }
    if list.len() >= KEPT {
        // Keep the first; drop the second oldest.
        list.remove(1);
    }
    list.push(cp);
}

/// How the resynchronising client describes what it knows: the three forms of §3.2.5.
#[derive(Clone, Copy, Debug)]
enum Known {
    /// `(QRESYNC (v m))`: every UID below UIDNEXT.
    Nothing,
    /// `(QRESYNC (v m uids))`.
    Uids,
    /// `(QRESYNC (v m uids (seqs uids)))`, every other message as a sample.
    SeqMatch,
}

impl World<'_> {
    /// Resynchronises from every checkpoint of mailbox `id` (now called `name`, holding
    /// `now`, with UIDVALIDITY `uid_validity` and HIGHESTMODSEQ `highest`) and compares.
    pub(super) fn check_resync(
        &mut self,
        name: &str,
        uid_validity: u32,
        highest: u64,
        now: &[(Uid, FlagSet)],
        checkpoints: &[Checkpoint],
    ) -> Result<(), String> {
        // One absence per probe and mailbox, a different one each time: every checkpoint is
        // tried over a history, at the cost of one EXAMINE per probe.
        let turn = self.step_no / RESYNC_EVERY;
        let Some(i) = (!checkpoints.is_empty()).then(|| turn % checkpoints.len()) else {
            return Ok(());
        };
        if let Some(cp) = checkpoints
            .get(i)
            .filter(|cp| cp.uid_validity == uid_validity)
        {
            let known = match (i + turn) % 3 {
                0 => Known::Nothing,
                1 => Known::Uids,
                _ => Known::SeqMatch,
            };
            let want: BTreeMap<Uid, FlagSet> = now.iter().cloned().collect();
            let got = self.resync(name, cp, known, highest, &want)?;
            if got != want {
                return Err(format!(
                    "QRESYNC of {name} from MODSEQ {} ({known:?}) reached\n    {got:?}\n  the mailbox holds\n    {want:?}",
                    cp.highest_modseq
                ));
            }
        }
        Ok(())
    }

    fn resync(
        &mut self,
        name: &str,
        cp: &Checkpoint,
        known: Known,
        highest: u64,
        now: &BTreeMap<Uid, FlagSet>,
    ) -> Result<BTreeMap<Uid, FlagSet>, String> {
        let mut state: BTreeMap<Uid, FlagSet> = cp.messages.iter().cloned().collect();
        let uids: Vec<Uid> = cp.messages.iter().map(|(u, _)| *u).collect();
        let params = match known {
            Known::Nothing => String::new(),
            Known::Uids if uids.is_empty() => String::new(),
            Known::Uids => format!(" {}", set_text(&uids)),
            Known::SeqMatch if uids.is_empty() => String::new(),
            Known::SeqMatch => {
                let sample: Vec<(u32, Uid)> = uids
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 2 == 0)
                    .map(|(i, u)| (i as u32 + 1, *u))
                    .collect();
                let seqs: Vec<u32> = sample.iter().map(|(s, _)| *s).collect();
                let sample_uids: Vec<Uid> = sample.iter().map(|(_, u)| *u).collect();
                format!(
                    " {} ({} {})",
                    set_text(&uids),
                    set_text(&seqs),
                    set_text(&sample_uids)
                )
            }
        };
        let scripts = [
            format!(
                "x EXAMINE \"{name}\" (QRESYNC ({} {}{params}))\r\n",
                cp.uid_validity, cp.highest_modseq
            ),
            // What arrived since: the client fetches from the UIDNEXT it knew.
            format!("f UID FETCH {}:* (FLAGS)\r\n", cp.uid_next),
        ];
        let outs = self.side_session(&scripts)?;
        let (Some(examined), Some(fetched)) = (outs.first(), outs.get(1)) else {
            return Err("resync session: no output".into());
        };
        let rs = parse_all(examined)?;
        let mut saw_highest = None;
        let mut ok = false;
        for r in &rs {
            match r {
                Response::Data(Data::Vanished { earlier, uids }) => {
                    if !earlier {
                        return Err(format!("QRESYNC of {name}: VANISHED without EARLIER"));
                    }
                    // UIDs the client never knew may be named (a superset is allowed), a
                    // message still there may not.
                    for u in expand(uids) {
                        if now.contains_key(&u) {
                            return Err(format!(
                                "QRESYNC of {name}: VANISHED (EARLIER) names UID {u}, which exists"
                            ));
                        }
                        state.remove(&u);
                    }
                }
                Response::Data(Data::Fetch { items, .. }) => {
                    let uid = items.iter().find_map(|i| match i {
                        FetchItem::Uid(u) => Some(*u),
                        _ => None,
                    });
                    let flags = items.iter().find_map(|i| match i {
                        FetchItem::Flags(f) => Some(f),
                        _ => None,
                    });
                    let has_modseq = items.iter().any(|i| matches!(i, FetchItem::ModSeq(_)));
                    let (Some(uid), Some(flags), true) = (uid, flags, has_modseq) else {
                        return Err(format!(
                            "QRESYNC of {name}: FETCH without UID, FLAGS or MODSEQ: {items:?}"
                        ));
                    };
                    if let Some(f) = state.get_mut(&uid) {
                        *f = flags
                            .iter()
                            .map(flag_name)
                            .filter(|n| n != "\\recent")
                            .collect();
                    }
                }
                Response::Status(s) => {
                    if let Some(Code::HighestModSeq(h)) = &s.code {
                        saw_highest = Some(*h);
                    }
                    if s.tag.as_ref().is_some_and(|t| t.as_bytes() == b"x") {
                        ok = s.condition == tern_core::imap::response::Condition::Ok;
                    }
                }
                _ => {}
            }
        }
        if !ok {
            return Err(format!(
                "QRESYNC of {name}: EXAMINE failed: {}",
                lossy(examined)
            ));
        }
        if saw_highest != Some(highest) {
            return Err(format!(
                "QRESYNC of {name}: HIGHESTMODSEQ {saw_highest:?}, the mailbox has {highest}"
            ));
        }
        // What arrived since: new UIDs only (`n:*` also names the last message below n).
        let rs = parse_all(fetched)?;
        for r in &rs {
            if let Response::Data(Data::Fetch { items, .. }) = r {
                let uid = items.iter().find_map(|i| match i {
                    FetchItem::Uid(u) => Some(*u),
                    _ => None,
                });
                let flags = items.iter().find_map(|i| match i {
                    FetchItem::Flags(f) => Some(f),
                    _ => None,
                });
                if let (Some(uid), Some(flags)) = (uid, flags) {
                    if uid >= cp.uid_next {
                        state.insert(
                            uid,
                            flags
                                .iter()
                                .map(flag_name)
                                .filter(|n| n != "\\recent")
                                .collect(),
                        );
                    }
                }
            }
        }
        Ok(state)
    }

    /// Runs scripts on the resynchronising session outside the history (logged in once, with
    /// QRESYNC enabled), one after the other, each answered in full before the next; returns
    /// what each got.
    fn side_session(&mut self, scripts: &[String]) -> Result<Vec<Vec<u8>>, String> {
        let mut session = match self.offline.take() {
            Some(s) => s,
            None => {
                let (s, _greeting) = self.new_session(Protocol::Imap)?;
                self.offline = Some(s);
                let login = format!("l LOGIN {USER} {PASS}\r\ne ENABLE QRESYNC\r\n");
                let out = self.side_session(&[login])?;
                let rs = parse_all(out.first().map_or(&[][..], |o| &o[..]))?;
                if !rs.iter().any(|r| matches!(r, Response::Data(Data::Enabled(v)) if v.iter().any(|x| x.eq_ignore_ascii_case(b"QRESYNC")))) {
                    return Err("resync session: ENABLE QRESYNC not confirmed".into());
                }
                self.offline.take().ok_or("resync session lost")?
            }
        };
        let now = self.now;
        let mut outs = Vec::new();
        for script in scripts {
            let mut wire = Vec::new();
            session
                .handle_input(Input::Bytes {
                    now,
                    data: script.as_bytes(),
                })
                .map_err(|e| format!("resync session: {e}"))?;
            pump(
                &mut session,
                &mut self.store,
                &mut self.directory,
                now,
                &mut |b| wire.extend_from_slice(b),
            )
            .map_err(|e| format!("resync session: {e}"))?;
            outs.push(wire);
        }
        self.offline = Some(session);
        Ok(outs)
    }
}

/// Ascending numbers as a sequence set (`1:3,7`).
fn set_text(numbers: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            i += 1;
            end = numbers[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}
