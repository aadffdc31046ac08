//! Histories: what each connection does, step by step, and how they are generated and made
//! smaller. Steps name messages by position in the session's view ([`Pos`]), so a shorter
//! history still means something.

use super::pool::{
    Crit, Fl, Item, Pos, Ret, SetSpec, SortBy, StoreOp, ThreadBy, MAILBOXES, MESSAGES, WORDS,
};

/// A seeded generator (SplitMix64): the same seed gives the same history on every machine,
/// which is what lets a failure print a seed to replay. (quickcheck's `Gen` cannot be seeded.)
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    // A generator, not an iterator: it never ends.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with probability `n` in 100.
    pub fn percent(&mut self, n: usize) -> bool {
        self.below(100) < n
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMsg {
    pub body: usize,
    pub flags: Vec<Fl>,
    /// Index into `APPEND_DATES`, or the store's clock.
    pub date: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    Select(usize),
    Examine(usize),
    Status(usize),
    Append(usize, Vec<NewMsg>),
    Create(usize),
    Delete(usize),
    Rename(usize, usize),
    List,
    Fetch {
        uid: bool,
        set: SetSpec,
        items: Vec<Item>,
    },
    Store {
        uid: bool,
        set: SetSpec,
        op: StoreOp,
        silent: bool,
        flags: Vec<Fl>,
    },
    Search {
        uid: bool,
        /// RETURN options; `Some(vec![])` is `RETURN ()`.
        ret: Option<Vec<Ret>>,
        crit: Vec<Crit>,
        /// Message sets the criteria refer to: (is a UID set, set).
        sets: Vec<(bool, SetSpec)>,
        /// SORT instead of SEARCH, with these (REVERSE, key) criteria; never with `ret`.
        sort: Option<Vec<(bool, SortBy)>>,
        /// THREAD instead of SEARCH (RFC 5256 §4); never with `ret` or `sort`.
        thread: Option<ThreadBy>,
    },
    Copy {
        uid: bool,
        set: SetSpec,
        to: usize,
    },
    Move {
        uid: bool,
        set: SetSpec,
        to: usize,
    },
    Expunge,
    UidExpunge(SetSpec),
    Close,
    Unselect,
    Noop,
    Check,
}

impl Cmd {
    /// Commands that must not announce EXPUNGE (RFC 9051 §7.5.1).
    pub fn forbids_expunge(&self) -> bool {
        matches!(
            self,
            Cmd::Fetch { .. } | Cmd::Store { .. } | Cmd::Search { .. }
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopCmd {
    Stat,
    List,
    Uidl,
    Retr(Pos),
    Top(Pos),
    Dele(Pos),
    Rset,
    Noop,
    Quit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// IMAP connection `c` connects and logs in; IMAP4rev2 is enabled if asked.
    Open {
        c: usize,
        rev2: bool,
    },
    Cmd {
        c: usize,
        cmd: Cmd,
    },
    Idle {
        c: usize,
    },
    Done {
        c: usize,
    },
    Logout {
        c: usize,
    },
    /// The client goes away without a word.
    Drop {
        c: usize,
    },
    /// POP3 connection `p` connects and logs in (USER/PASS).
    PopOpen {
        p: usize,
    },
    Pop {
        p: usize,
        cmd: PopCmd,
    },
    PopDrop {
        p: usize,
    },
    /// The store's clock moves on (default INTERNALDATEs change).
    Tick,
    /// The process dies and restarts on the same store folder (durable stores only).
    Crash,
}

/// What the generator may use.
#[derive(Clone, Debug)]
pub struct Shape {
    pub max_steps: usize,
    pub imap: usize,
    pub pop3: usize,
    pub crash: bool,
}

/// A rough picture of each connection, so that most generated commands fit the state they
/// will meet (a failing SELECT is simply not known here; the runner copes).
#[derive(Clone, Copy, Default)]
struct Shadow {
    open: bool,
    /// The mailbox SELECT was last asked for (it may not exist).
    selected: Option<usize>,
    idle: bool,
    /// IMAP4rev2 has no RECENT/NEW/OLD search keys (RFC 9051 Appendix E), so none are sent.
    rev2: bool,
}

pub fn generate(seed: u64, shape: &Shape) -> Vec<Step> {
    let mut r = Rng::new(seed);
    let len = 1 + r.below(shape.max_steps);
    let mut imap = vec![Shadow::default(); shape.imap];
    let mut pop = vec![false; shape.pop3];
    let mut steps = Vec::with_capacity(len);
    while steps.len() < len {
        let roll = r.below(100);
        if shape.pop3 > 0 && roll < 12 {
            let p = r.below(shape.pop3);
            steps.push(if !pop[p] {
                pop[p] = true;
                Step::PopOpen { p }
            } else {
                let cmd = pop_cmd(&mut r);
                if matches!(cmd, PopCmd::Quit) {
                    pop[p] = false;
                }
                if r.percent(4) {
                    pop[p] = false;
                    Step::PopDrop { p }
                } else {
                    Step::Pop { p, cmd }
                }
            });
            continue;
        }
        if roll == 12 {
            steps.push(Step::Tick);
            continue;
        }
        if roll == 13 && shape.crash {
            steps.push(Step::Crash);
            imap.iter_mut().for_each(|s| *s = Shadow::default());
            pop.iter_mut().for_each(|p| *p = false);
            continue;
        }
        let c = r.below(shape.imap);
        let s = &mut imap[c];
        if !s.open {
            let rev2 = r.percent(30);
            steps.push(Step::Open { c, rev2 });
            s.open = true;
            s.rev2 = rev2;
            continue;
        }
        if s.idle {
            if r.percent(40) {
                steps.push(Step::Done { c });
                s.idle = false;
            }
            continue;
        }
        let roll = r.below(100);
        let step = match roll {
            0 => {
                *s = Shadow::default();
                Step::Logout { c }
            }
            1 => {
                *s = Shadow::default();
                Step::Drop { c }
            }
            2..=5 => {
                s.idle = true;
                Step::Idle { c }
            }
            _ => {
                let cmd = match s.selected {
                    // Messages for the selected mailbox, so that message commands find some.
                    Some(mb) if roll >= 88 => Cmd::Append(mb, new_messages(&mut r)),
                    Some(_) if roll >= 30 => message_cmd(&mut r, s.rev2),
                    _ => mailbox_cmd(&mut r, s.selected.is_some(), s.rev2),
                };
                match &cmd {
                    Cmd::Select(mb) | Cmd::Examine(mb) => s.selected = Some(*mb),
                    Cmd::Close | Cmd::Unselect => s.selected = None,
                    _ => {}
                }
                Step::Cmd { c, cmd }
            }
        };
        steps.push(step);
    }
    steps
}

fn mailbox(r: &mut Rng) -> usize {
    // INBOX most often: POP3 sees it, and RENAME INBOX is special.
    if r.percent(40) {
        0
    } else {
        r.below(MAILBOXES.len())
    }
}

fn mailbox_cmd(r: &mut Rng, selected: bool, rev2: bool) -> Cmd {
    match r.below(if selected { 100 } else { 90 }) {
        0..=29 => {
            if r.percent(20) {
                Cmd::Examine(mailbox(r))
            } else {
                Cmd::Select(mailbox(r))
            }
        }
        30..=49 => Cmd::Append(mailbox(r), new_messages(r)),
        50..=57 => Cmd::Status(mailbox(r)),
        58..=63 => Cmd::Create(1 + r.below(MAILBOXES.len() - 1)),
        64..=67 => Cmd::Delete(mailbox(r)),
        68..=71 => Cmd::Rename(mailbox(r), mailbox(r)),
        72..=74 => Cmd::List,
        75..=84 => Cmd::Noop,
        // Message commands without a selection: BAD, which the state table also checks.
        85..=89 => message_cmd(r, rev2),
        _ => Cmd::Check,
    }
}

fn new_messages(r: &mut Rng) -> Vec<NewMsg> {
    let n = if r.percent(15) { 2 } else { 1 };
    (0..n)
        .map(|_| NewMsg {
            body: r.below(MESSAGES.len()),
            flags: flags(r, 2),
            date: r.percent(40).then(|| r.below(3)),
        })
        .collect()
}

fn flags(r: &mut Rng, max: usize) -> Vec<Fl> {
    let n = r.below(max + 1);
    let mut v: Vec<Fl> = (0..n).map(|_| r.pick(&Fl::ALL)).collect();
    v.dedup();
    v
}

fn pos(r: &mut Rng) -> Pos {
    match r.below(20) {
        0 => Pos::Star,
        1 => Pos::Past(r.below(3) as u8),
        _ => Pos::At(r.below(256) as u8),
    }
}

fn set(r: &mut Rng) -> SetSpec {
    let n = 1 + usize::from(r.percent(20));
    (0..n)
        .map(|_| {
            let a = pos(r);
            let b = if r.percent(50) { a } else { pos(r) };
            (a, b)
        })
        .collect()
}

fn message_cmd(r: &mut Rng, rev2: bool) -> Cmd {
    let uid = r.percent(40);
    match r.below(100) {
        0..=29 => {
            let mut items = Vec::new();
            for _ in 0..1 + r.below(3) {
                let i = r.pick(&Item::ALL);
                if !items.contains(&i) {
                    items.push(i);
                }
            }
            if !uid && !items.contains(&Item::Uid) {
                // Solicited FETCH responses carry the UID (UID FETCH adds it by itself),
                // which tells them apart from unsolicited flag updates.
                items.insert(0, Item::Uid);
            }
            Cmd::Fetch {
                uid,
                set: set(r),
                items,
            }
        }
        30..=54 => Cmd::Store {
            uid,
            set: set(r),
            op: r.pick(&[
                StoreOp::Add,
                StoreOp::Add,
                StoreOp::Remove,
                StoreOp::Replace,
            ]),
            silent: r.percent(30),
            flags: if r.percent(50) {
                vec![Fl::Deleted]
            } else {
                flags(r, 3)
            },
        },
        55..=69 => {
            let mut sets = Vec::new();
            let crit = (0..1 + r.below(2))
                .map(|_| criterion(r, 2, &mut sets, rev2))
                .collect();
            let ret = if r.percent(25) {
                let mut v = Vec::new();
                for o in [Ret::Min, Ret::Max, Ret::Count, Ret::All] {
                    if r.percent(40) {
                        v.push(o);
                    }
                }
                // RFC 9394 §3.1: PARTIAL, never beside ALL.
                if !v.contains(&Ret::All) && r.percent(30) {
                    v.push(Ret::Partial {
                        last: r.percent(50),
                        a: 1 + r.below(6) as u32,
                        b: 1 + r.below(6) as u32,
                    });
                }
                Some(v)
            } else {
                None
            };
            // SORT (RFC 5256): a fifth of them, each key perhaps REVERSE.
            let sort = (ret.is_none() && r.percent(20)).then(|| {
                (0..1 + r.below(3))
                    .map(|_| (r.percent(30), SortBy::ALL[r.below(SortBy::ALL.len())]))
                    .collect()
            });
            // THREAD (RFC 5256 §4): a tenth of the plain searches. The draw is one more per
            // plain search, so a seed gives another history than before THREAD (as when
            // SORT came).
            let thread = (ret.is_none() && sort.is_none() && r.percent(10))
                .then(|| ThreadBy::ALL[r.below(ThreadBy::ALL.len())]);
            Cmd::Search {
                uid,
                ret,
                crit,
                sets,
                sort,
                thread,
            }
        }
        70..=76 => Cmd::Copy {
            uid,
            set: set(r),
            to: mailbox(r),
        },
        77..=83 => Cmd::Move {
            uid,
            set: set(r),
            to: mailbox(r),
        },
        84..=88 => Cmd::Expunge,
        89..=91 => Cmd::UidExpunge(set(r)),
        92..=94 => Cmd::Close,
        95..=96 => Cmd::Unselect,
        _ => Cmd::Noop,
    }
}

fn criterion(r: &mut Rng, depth: usize, sets: &mut Vec<(bool, SetSpec)>, rev2: bool) -> Crit {
    let leaf = depth == 0 || r.percent(70);
    if leaf {
        return match r.below(15) {
            0 => Crit::All,
            1..=3 => Crit::Flag(r.pick(&Fl::ALL), r.percent(60)),
            4 => Crit::Larger(r.pick(&[50, 100, 200, 1000])),
            5 => Crit::Smaller(r.pick(&[50, 100, 200, 1000])),
            6 => Crit::Subject(r.pick(&WORDS)),
            7 => Crit::From(r.pick(&WORDS)),
            8 => Crit::Body(r.pick(&WORDS)),
            9 => Crit::Text(r.pick(&WORDS)),
            10 => match r.below(3) {
                0 => Crit::Since(r.below(5)),
                1 => Crit::Before(r.below(5)),
                _ => Crit::On(r.below(5)),
            },
            11 if rev2 => Crit::All,
            11 => match r.below(3) {
                0 => Crit::Recent,
                1 => Crit::New,
                _ => Crit::Old,
            },
            _ => {
                sets.push((r.percent(50), set(r)));
                Crit::Set(sets.len() - 1)
            }
        };
    }
    match r.below(3) {
        0 => Crit::Not(Box::new(criterion(r, depth - 1, sets, rev2))),
        1 => Crit::Or(
            Box::new(criterion(r, depth - 1, sets, rev2)),
            Box::new(criterion(r, depth - 1, sets, rev2)),
        ),
        _ => Crit::And(
            (0..2)
                .map(|_| criterion(r, depth - 1, sets, rev2))
                .collect(),
        ),
    }
}

fn pop_cmd(r: &mut Rng) -> PopCmd {
    let p = Pos::At(r.below(256) as u8);
    match r.below(100) {
        0..=9 => PopCmd::Stat,
        10..=17 => PopCmd::List,
        18..=23 => PopCmd::Uidl,
        24..=43 => PopCmd::Retr(if r.percent(10) { Pos::Past(0) } else { p }),
        44..=48 => PopCmd::Top(p),
        49..=73 => PopCmd::Dele(p),
        74..=79 => PopCmd::Rset,
        80..=84 => PopCmd::Noop,
        _ => PopCmd::Quit,
    }
}

/// Simpler versions of one step, tried while shrinking.
pub fn simpler(step: &Step) -> Vec<Step> {
    let mut out = Vec::new();
    let Step::Cmd { c, cmd } = step else {
        if let Step::Open { c, rev2: true } = step {
            out.push(Step::Open { c: *c, rev2: false });
        }
        return out;
    };
    let c = *c;
    let mut push = |cmd: Cmd| out.push(Step::Cmd { c, cmd });
    match cmd {
        Cmd::Append(mb, msgs) => {
            if msgs.len() > 1 {
                push(Cmd::Append(*mb, msgs[..1].to_vec()));
            }
            for (i, m) in msgs.iter().enumerate() {
                if !m.flags.is_empty() || m.date.is_some() {
                    let mut v = msgs.clone();
                    v[i] = NewMsg {
                        flags: Vec::new(),
                        date: None,
                        body: m.body,
                    };
                    push(Cmd::Append(*mb, v));
                }
            }
        }
        Cmd::Fetch { uid, set, items } => {
            if items.len() > 1 {
                for i in 0..items.len() {
                    let mut v = items.clone();
                    v.remove(i);
                    if v.contains(&Item::Uid) || *uid {
                        push(Cmd::Fetch {
                            uid: *uid,
                            set: set.clone(),
                            items: v,
                        });
                    }
                }
            }
            if set.len() > 1 {
                push(Cmd::Fetch {
                    uid: *uid,
                    set: set[..1].to_vec(),
                    items: items.clone(),
                });
            }
        }
        Cmd::Store {
            uid,
            set,
            op,
            silent,
            flags,
        } => {
            for i in 0..flags.len() {
                let mut v = flags.clone();
                v.remove(i);
                push(Cmd::Store {
                    uid: *uid,
                    set: set.clone(),
                    op: *op,
                    silent: *silent,
                    flags: v,
                });
            }
            if *silent {
                push(Cmd::Store {
                    uid: *uid,
                    set: set.clone(),
                    op: *op,
                    silent: false,
                    flags: flags.clone(),
                });
            }
        }
        Cmd::Search {
            uid,
            ret,
            crit,
            sets,
            sort,
            thread,
        } => {
            if crit.len() > 1 || crit.first() != Some(&Crit::All) {
                push(Cmd::Search {
                    uid: *uid,
                    ret: ret.clone(),
                    crit: vec![Crit::All],
                    sets: Vec::new(),
                    sort: sort.clone(),
                    thread: *thread,
                });
            }
            if let Some(keys) = sort.as_ref().filter(|k| k.len() > 1) {
                push(Cmd::Search {
                    uid: *uid,
                    ret: None,
                    crit: crit.clone(),
                    sets: sets.clone(),
                    sort: Some(keys[..1].to_vec()),
                    thread: None,
                });
            }
            for (i, k) in crit.iter().enumerate() {
                let inner: Vec<Crit> = match k {
                    Crit::Not(a) => vec![(**a).clone()],
                    Crit::Or(a, b) => vec![(**a).clone(), (**b).clone()],
                    Crit::And(v) => v.clone(),
                    _ => Vec::new(),
                };
                for x in inner {
                    let mut v = crit.clone();
                    v[i] = x;
                    push(Cmd::Search {
                        uid: *uid,
                        ret: ret.clone(),
                        crit: v,
                        sets: sets.clone(),
                        sort: sort.clone(),
                        thread: *thread,
                    });
                }
            }
            if ret.is_some() || sort.is_some() || thread.is_some() {
                push(Cmd::Search {
                    uid: *uid,
                    ret: None,
                    crit: crit.clone(),
                    sets: sets.clone(),
                    sort: None,
                    thread: None,
                });
            }
        }
        Cmd::Copy { uid, set, to } if set.len() > 1 => push(Cmd::Copy {
            uid: *uid,
            set: set[..1].to_vec(),
            to: *to,
        }),
        Cmd::Move { uid, set, to } if set.len() > 1 => push(Cmd::Move {
            uid: *uid,
            set: set[..1].to_vec(),
            to: *to,
        }),
        _ => {}
    }
    out
}
