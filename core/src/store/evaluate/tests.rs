use super::*;
use crate::mail::date::Date;
use crate::mail::flags::{Flags, SystemFlag};
use crate::mail::text::SearchText;
use crate::store::{EmailId, ModSeq, ThreadId, Uid};

struct Msg {
    uid: Uid,
    flags: Flags,
    size: u64,
    text: SearchText,
}

impl Candidate for Msg {
    fn uid(&self) -> Uid {
        self.uid
    }
    fn flags(&self) -> &Flags {
        &self.flags
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn internal_day(&self) -> Date {
        Date {
            year: 2026,
            month: 1,
            day: 1,
        }
    }
    fn internal_unix(&self) -> i64 {
        0
    }
    fn saved_day(&self) -> Date {
        self.internal_day()
    }
    fn modseq(&self) -> ModSeq {
        u64::from(self.uid)
    }
    fn email_id(&self) -> EmailId {
        EmailId(u64::from(self.uid))
    }
    fn thread_id(&self) -> ThreadId {
        ThreadId(u64::from(self.uid / 2))
    }
    fn text(&self) -> &SearchText {
        &self.text
    }
}

/// xorshift64*, so the property runs are reproducible without another dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

const WORDS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

fn mailbox(rng: &mut Rng, n: usize) -> Vec<Msg> {
    let mut uid = 0;
    (0..n)
        .map(|_| {
            uid += 1 + rng.below(3) as Uid;
            let mut flags = Flags::new();
            flags.set(SystemFlag::Seen, rng.below(2) == 0);
            flags.set(SystemFlag::Flagged, rng.below(3) == 0);
            let body = (0..rng.below(4))
                .map(|_| WORDS[rng.below(4) as usize])
                .collect::<Vec<_>>()
                .join(" ");
            Msg {
                uid,
                flags,
                size: rng.below(100),
                text: SearchText {
                    headers: vec![("subject".into(), WORDS[rng.below(4) as usize].into())],
                    body,
                    sent: None,
                },
            }
        })
        .collect()
}

fn query(rng: &mut Rng, depth: u32, max_uid: Uid) -> Query {
    let leaf = depth > 3;
    match rng.below(if leaf { 6 } else { 10 }) {
        0 => Query::Flag(SystemFlag::Seen, rng.below(2) == 0),
        1 => Query::Flag(SystemFlag::Flagged, true),
        2 => Query::Larger(rng.below(100)),
        3 => {
            let k = rng.below(4);
            Query::Uids(UidSet::from_ranges((0..k).map(|_| {
                let a = rng.below(u64::from(max_uid) + 2) as Uid;
                (a, a + rng.below(5) as Uid)
            })))
        }
        4 => Query::Body(WORDS[rng.below(4) as usize].into()),
        5 => Query::Header("subject".into(), WORDS[rng.below(4) as usize][..3].into()),
        6 | 7 => Query::And(
            (0..rng.below(4))
                .map(|_| query(rng, depth + 1, max_uid))
                .collect(),
        ),
        8 => Query::Or(
            Box::new(query(rng, depth + 1, max_uid)),
            Box::new(query(rng, depth + 1, max_uid)),
        ),
        _ => Query::Not(Box::new(query(rng, depth + 1, max_uid))),
    }
}

fn no_narrowing(_: &Query, _: &mut Meter<'_>) -> Result<Option<Bits>, Halt> {
    Ok(None)
}

fn unlimited() -> Meter<'static> {
    Meter::new(u64::MAX, &|| false)
}

/// With text, the set evaluation is the per-message specification; without, its certain
/// answers are right and its undecided ones are exactly what text decides, whatever a sound
/// index narrows.
#[test]
fn agrees_with_matches_on_every_message() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for round in 0..400 {
        let n = rng.below(150) as usize;
        let msgs = mailbox(&mut rng, n);
        let max_uid = msgs.last().map_or(0, |m| m.uid);
        let q = query(&mut rng, 0, max_uid);
        let expected: Vec<usize> = (0..n).filter(|&i| q.matches(&msgs[i], 0)).collect();
        let with =
            evaluate(&q, &msgs, true, 0, &mut unlimited(), &mut no_narrowing).expect("unlimited");
        assert!(with.maybe.is_clear());
        assert_eq!(
            with.yes.iter().collect::<Vec<_>>(),
            expected,
            "round {round}: {q:?}"
        );
        // A sound index: messages whose text holds the needle somewhere.
        let mut index = |leaf: &Query, _: &mut Meter<'_>| -> Result<Option<Bits>, Halt> {
            let needle = match leaf {
                Query::Body(s) | Query::Header(_, s) => s,
                _ => return Ok(None),
            };
            let mut b = Bits::none(n);
            for (i, m) in msgs.iter().enumerate() {
                if m.text.body.contains(needle.as_str())
                    || m.text.headers[0].1.contains(needle.as_str())
                {
                    b.insert(i);
                }
            }
            Ok(Some(b))
        };
        let without =
            evaluate(&q, &msgs, false, 0, &mut unlimited(), &mut index).expect("unlimited");
        for (i, m) in msgs.iter().enumerate() {
            let truth = q.matches(m, 0);
            if without.yes.contains(i) {
                assert!(truth, "round {round}: {i} certain but wrong: {q:?}");
            } else if !without.maybe.contains(i) {
                assert!(!truth, "round {round}: {i} excluded but matches: {q:?}");
            }
        }
        assert!(without.yes.iter().all(|i| !without.maybe.contains(i)));
    }
}

/// The programs of issue 19 cost a small multiple of (criteria × candidates / 64) units; the
/// per-message tree walk did (criteria × candidates) tests, each a binary search.
#[test]
fn repeated_whole_mailbox_sets_cost_linear_work() {
    let mut rng = Rng(7);
    let n = 20_000;
    let msgs = mailbox(&mut rng, n);
    let every = || Query::Uids(UidSet::from_ranges([(1, msgs[n - 1].uid)]));
    let ors = Query::And(
        (0..5_000)
            .map(|_| Query::Or(Box::new(every()), Box::new(every())))
            .collect(),
    );
    let mut meter = unlimited();
    let r = evaluate(&ors, &msgs, false, 0, &mut meter, &mut no_narrowing).expect("unlimited");
    assert_eq!(r.yes.count(), n);
    let words = (n as u64).div_ceil(64) + 1;
    // 15,000 nodes; a few passes over words each.
    assert!(meter.used() <= 15_000 * 12 * words, "{}", meter.used());
    assert!(meter.used() < 5_000 * n as u64 / 4, "{}", meter.used());

    let nots = Query::And(
        (0..4_000)
            .map(|i| Query::Not(Box::new(Query::Text(format!("zz{i}")))))
            .collect(),
    );
    // An index that knows no message holds any needle decides everything without text.
    let mut nothing = |_: &Query, m: &mut Meter<'_>| -> Result<Option<Bits>, Halt> {
        m.charge(1)?;
        Ok(Some(Bits::none(n)))
    };
    let mut meter = unlimited();
    let r = evaluate(&nots, &msgs, false, 0, &mut meter, &mut nothing).expect("unlimited");
    assert_eq!((r.yes.count(), r.maybe.count()), (n, 0));
    assert!(meter.used() <= 8_000 * 12 * words, "{}", meter.used());
}

#[test]
fn budget_and_abandonment_stop_work() {
    let mut rng = Rng(9);
    let msgs = mailbox(&mut rng, 1_000);
    let heavy = Query::And(
        (0..1_000)
            .map(|i| Query::Not(Box::new(Query::Body(format!("z{i}")))))
            .collect(),
    );
    let mut meter = Meter::new(100_000, &|| false);
    let r = evaluate(&heavy, &msgs, true, 0, &mut meter, &mut no_narrowing);
    assert_eq!(r, Err(Halt::Exhausted));
    assert!(meter.used() <= 100_000 + 1_000, "{}", meter.used());

    let asked = std::cell::Cell::new(0u32);
    let gone = || {
        asked.set(asked.get() + 1);
        asked.get() > 50
    };
    let mut meter = Meter::new(u64::MAX, &gone);
    let r = evaluate(&heavy, &msgs, true, 0, &mut meter, &mut no_narrowing);
    assert_eq!(r, Err(Halt::Abandoned));
    assert_eq!(asked.get(), 51);
}

#[test]
fn bit_sets() {
    let mut b = Bits::none(130);
    b.insert_range(3, 70);
    b.insert(129);
    b.insert(130);
    assert_eq!(b.count(), 68);
    assert!(b.contains(3) && b.contains(69) && !b.contains(70) && b.contains(129));
    let all = Bits::all(130);
    assert_eq!(all.count(), 130);
    let mut rest = all.clone();
    rest.and_not(&b);
    assert_eq!(rest.count(), 62);
    assert_eq!(Bits::all(64).count(), 64);
    assert!(Bits::none(0).is_clear() && Bits::all(0).is_empty());
}

/// A text test is charged by the candidate's `text_octets`, so a store that measured its text
/// once (store-sqlite's headlines) need not walk it again; by default that is the walk.
#[test]
fn text_tests_are_charged_by_the_candidates_octets() {
    struct Measured(Msg, usize);
    impl Candidate for Measured {
        fn uid(&self) -> Uid {
            self.0.uid()
        }
        fn flags(&self) -> &Flags {
            self.0.flags()
        }
        fn size(&self) -> u64 {
            self.0.size()
        }
        fn internal_day(&self) -> Date {
            self.0.internal_day()
        }
        fn internal_unix(&self) -> i64 {
            self.0.internal_unix()
        }
        fn saved_day(&self) -> Date {
            self.0.saved_day()
        }
        fn modseq(&self) -> ModSeq {
            self.0.modseq()
        }
        fn email_id(&self) -> EmailId {
            self.0.email_id()
        }
        fn thread_id(&self) -> ThreadId {
            self.0.thread_id()
        }
        fn text(&self) -> &SearchText {
            self.0.text()
        }
        fn text_octets(&self) -> usize {
            self.1
        }
    }
    let text = SearchText {
        headers: vec![("from".into(), "alpha".into())],
        body: "beta".repeat(100),
        sent: None,
    };
    assert_eq!(text.octets(), 4 + 5 + 2 + 400);
    let msg = |uid| Msg {
        uid,
        flags: Flags::default(),
        size: 1,
        text: text.clone(),
    };
    let q = Query::Text("beta".into());
    let cost = |octets: Option<usize>| {
        let mut meter = unlimited();
        let out = match octets {
            None => evaluate(&q, &[msg(1)], true, 0, &mut meter, &mut no_narrowing),
            Some(o) => evaluate(
                &q,
                &[Measured(msg(1), o)],
                true,
                0,
                &mut meter,
                &mut no_narrowing,
            ),
        };
        assert_eq!(out.map(|o| o.yes.count()), Ok(1));
        meter.used()
    };
    assert_eq!(cost(Some(411)), cost(None));
    assert_eq!(cost(Some(411 + 64 * 1000)), cost(None) + 1000);
}
