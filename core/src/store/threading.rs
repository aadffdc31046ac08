//! THREAD (RFC 5256 §4) as every store answers it: what threading reads of a message
//! ([`ThreadFields`]: sent date, base subject, Message-ID and references) and the two
//! algorithms ([`thread`]: ORDEREDSUBJECT and REFERENCES), so that all backends thread alike.
//! A store computes the fields of the messages a search found; the tree is built here.
//!
//! Every cost is bounded whatever the messages hold: references are read as
//! [`crate::mail::thread::ThreadKeys`] reads them (at most 16 per message, identifiers of at
//! most 250 octets), the loop check of step 1 walks at most [`MAX_WALK`] ancestors (a link
//! whose check would walk further is not made, as a link that would make a loop is not), and
//! no message is nested deeper than [`MAX_DEPTH`] below its thread's root: the replies below
//! that level are listed, in sent-date order, as replies of the message at that level. That
//! keeps the response's parentheses nested at most `MAX_DEPTH + 1` deep, within what the
//! response decoder accepts ([`crate::imap::decode::MAX_DEPTH`]).

use std::collections::HashMap;

use crate::mail::structure::Envelope;
use crate::mail::subject::{base_subject_and_reply, casemap};
use crate::mail::thread::ThreadKeys;
use crate::store::sort::sent_date;
use crate::store::Uid;

/// Levels below a thread's root; deeper replies hang from the message at this level.
pub const MAX_DEPTH: usize = 60;
/// Ancestors the loop check of REFERENCES step 1 walks before giving up on a link.
pub const MAX_WALK: usize = 4096;
/// Header octets a store reads of a message for its references.
pub const MAX_HEADER: u64 = 256 * 1024;

/// The algorithm (RFC 5256 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Threads of equal base subjects.
    OrderedSubject,
    /// Threads by Message-ID and References, then merged by base subject.
    References,
    /// REFS (draft-ietf-morg-inthread, as Dovecot answers it): REFERENCES without step 5's
    /// subject merging, the threads in the order of their latest messages.
    Refs,
}

/// What threading reads of one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadFields {
    /// The sent date (§2.2) in UTC seconds; `None` when Date: is missing or unreadable.
    pub sent: Option<i64>,
    /// The base subject (§2.1) in its i;unicode-casemap form (§7), so that equal means equal.
    pub subject: String,
    /// Extracting the base subject removed a reply or forward marker (§4).
    pub reply: bool,
    /// Message-ID, In-Reply-To, References.
    pub keys: ThreadKeys,
}

impl ThreadFields {
    /// The fields of a message with this envelope and this header (or a prefix of it, at
    /// least [`MAX_HEADER`] octets when the header is longer).
    pub fn of(envelope: &Envelope, header: &[u8]) -> ThreadFields {
        let subject = envelope
            .subject
            .as_deref()
            .map(crate::mail::text::decode_words)
            .unwrap_or_default();
        let (base, reply) = base_subject_and_reply(&subject);
        ThreadFields {
            sent: sent_date(envelope),
            subject: casemap(&base),
            reply,
            keys: ThreadKeys::of(header),
        }
    }

    /// §4 step 1.A: the References identifiers, or when there is none the first of
    /// In-Reply-To.
    fn references(&self) -> &[String] {
        if self.keys.references.is_empty() {
            self.keys.in_reply_to.as_slice()
        } else {
            &self.keys.references
        }
    }
}

/// One message to thread.
#[derive(Clone, Debug)]
pub struct Threadable<'f> {
    /// Its UID (mailbox order: §2.2's tie-breaker, and "first" for duplicate Message-IDs).
    pub uid: Uid,
    /// INTERNALDATE in UTC seconds: the sent date when there is none (§2.2).
    pub arrival: i64,
    /// The rest.
    pub fields: &'f ThreadFields,
}

impl Threadable<'_> {
    /// The order of siblings (§2.2): sent date, then mailbox order.
    fn key(&self) -> (i64, Uid) {
        (self.fields.sent.unwrap_or(self.arrival), self.uid)
    }
}

/// One node of a thread: a message, or (only at the top, REFERENCES) a missing parent whose
/// replies are threads of their own that share a subject or a missing ancestor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thread {
    /// The message; `None` for a missing parent.
    pub uid: Option<Uid>,
    /// Its replies, in sent-date order.
    pub children: Vec<Thread>,
}

/// The threads of `items` (the messages a search found, any order) by `algorithm`, in
/// sent-date order of their first messages.
pub fn thread(mut items: Vec<Threadable<'_>>, algorithm: Algorithm) -> Vec<Thread> {
    items.sort_by_key(|t| t.uid);
    match algorithm {
        Algorithm::OrderedSubject => ordered_subject(&items),
        Algorithm::References => references(&items, true),
        Algorithm::Refs => references(&items, false),
    }
}

/// §4 ORDEREDSUBJECT: messages grouped by base subject, each group in sent-date order with
/// the first as the parent of all others, groups in the order of their first messages.
fn ordered_subject(items: &[Threadable<'_>]) -> Vec<Thread> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_subject: HashMap<&str, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let g = *by_subject
            .entry(item.fields.subject.as_str())
            .or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
        if let Some(group) = groups.get_mut(g) {
            group.push(i);
        }
    }
    let key = |i: &usize| items.get(*i).map(Threadable::key);
    for group in &mut groups {
        group.sort_by_key(key);
    }
    groups.sort_by_key(|g| g.first().and_then(key));
    groups
        .into_iter()
        .filter_map(|group| {
            let (&first, rest) = group.split_first()?;
            Some(Thread {
                uid: items.get(first).map(|t| t.uid),
                children: rest
                    .iter()
                    .filter_map(|&i| items.get(i))
                    .map(|t| leaf(t.uid))
                    .collect(),
            })
        })
        .collect()
}

fn leaf(uid: Uid) -> Thread {
    Thread {
        uid: Some(uid),
        children: Vec::new(),
    }
}

/// A node of REFERENCES' step 1: a message (index into the items) or a dummy.
#[derive(Default)]
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// The parent/child links of step 1, kept consistent both ways (§4 1.B's note).
struct Links {
    nodes: Vec<Node>,
}

impl Links {
    fn add(&mut self, msg: Option<usize>) -> usize {
        self.nodes.push(Node {
            msg,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    fn parent(&self, n: usize) -> Option<usize> {
        self.nodes.get(n).and_then(|n| n.parent)
    }

    /// Whether `a` is `b` or below it, walking up from `a`; a walk longer than [`MAX_WALK`]
    /// counts as yes, so that the caller makes no link it could not check.
    fn under(&self, a: usize, b: usize) -> bool {
        if a == b {
            return true;
        }
        if self.nodes.get(b).is_none_or(|n| n.children.is_empty()) {
            return false;
        }
        let mut at = a;
        for _ in 0..MAX_WALK {
            match self.parent(at) {
                None => return false,
                Some(p) if p == b => return true,
                Some(p) => at = p,
            }
        }
        true
    }

    /// Makes `parent` the parent of `child` unless that would make a loop (§4 1.A, 1.B);
    /// `child` has no parent.
    fn link(&mut self, parent: usize, child: usize) {
        if self.under(parent, child) {
            return;
        }
        if let Some(c) = self.nodes.get_mut(child) {
            c.parent = Some(parent);
        }
        if let Some(p) = self.nodes.get_mut(parent) {
            p.children.push(child);
        }
    }

    fn unlink(&mut self, child: usize) {
        let Some(parent) = self.nodes.get_mut(child).and_then(|c| c.parent.take()) else {
            return;
        };
        if let Some(p) = self.nodes.get_mut(parent) {
            p.children.retain(|&c| c != child);
        }
    }

    /// The message nodes below `n` one level down once every dummy among them is replaced by
    /// its own children, recursively (step 3 below the root: a dummy is deleted and its
    /// children promoted to its level, in its place). Iterative: chains of dummies are as
    /// deep as hostile references make them.
    fn spliced(&self, n: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self
            .nodes
            .get(n)
            .map(|n| n.children.iter().rev().copied().collect())
            .unwrap_or_default();
        while let Some(c) = stack.pop() {
            let Some(node) = self.nodes.get(c) else {
                continue;
            };
            if node.msg.is_some() {
                out.push(c);
            } else {
                stack.extend(node.children.iter().rev());
            }
        }
        out
    }
}

/// Where a thread goes at the top: its latest sent date (REFS only, else 0), then its
/// first message's sent date and UID.
type TopOrder = (i64, Option<(i64, Uid)>);

/// A thread under the root during steps 3 to 6.
enum Top {
    Message(usize),
    Dummy(Vec<usize>),
    Gone,
}

/// §4 REFERENCES, steps 1 to 6; without step 5 (`merge` false) and with the threads in
/// the order of their latest messages (ties as REFERENCES orders them), REFS.
fn references(items: &[Threadable<'_>], merge: bool) -> Vec<Thread> {
    let mut links = Links { nodes: Vec::new() };
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    // Step 1, for each message in mailbox order.
    for (i, item) in items.iter().enumerate() {
        // A missing or duplicate Message-ID makes the message unique: a node that no
        // identifier names. A dummy made for an earlier reference becomes this message.
        let own = match item.fields.keys.own.as_deref() {
            Some(id) => match by_id.get(id).copied() {
                Some(n) if links.nodes.get(n).is_some_and(|n| n.msg.is_none()) => {
                    if let Some(node) = links.nodes.get_mut(n) {
                        node.msg = Some(i);
                    }
                    n
                }
                Some(_) => links.add(Some(i)),
                None => {
                    let n = links.add(Some(i));
                    by_id.insert(id, n);
                    n
                }
            },
            None => links.add(Some(i)),
        };
        let mut refs = Vec::new();
        for id in item.fields.references() {
            let n = match by_id.get(id.as_str()) {
                Some(&n) => n,
                None => {
                    let n = links.add(None);
                    by_id.insert(id.as_str(), n);
                    n
                }
            };
            refs.push(n);
        }
        // 1.A: consecutive references as parent and child, an existing parent kept.
        for pair in refs.windows(2) {
            if let [p, c] = *pair {
                if links.parent(c).is_none() {
                    links.link(p, c);
                }
            }
        }
        // 1.B: the last reference is the parent, replacing any parent 1.A found.
        links.unlink(own);
        if let Some(&last) = refs.last() {
            links.link(last, own);
        }
    }
    let key = |n: usize| {
        links
            .nodes
            .get(n)
            .and_then(|n| n.msg)
            .and_then(|m| items.get(m))
            .map(Threadable::key)
    };
    // Step 2: the nodes without parents are the root's children. Step 3: dummies pruned;
    // one at the top is kept when it has two or more children.
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut tops = Vec::new();
    for (n, node) in links.nodes.iter().enumerate() {
        if node.msg.is_some() {
            let below = links.spliced(n);
            if !below.is_empty() {
                children.insert(n, below);
            }
        }
        if node.parent.is_some() {
            continue;
        }
        if node.msg.is_some() {
            tops.push(Top::Message(n));
            continue;
        }
        match links.spliced(n).as_slice() {
            [] => {}
            [only] => tops.push(Top::Message(*only)),
            many => tops.push(Top::Dummy(many.to_vec())),
        }
    }
    // Step 4: the top level in sent-date order, a dummy by its first child.
    let top_key = |t: &mut Top| match t {
        Top::Message(n) => key(*n),
        Top::Dummy(kids) => {
            kids.sort_by_key(|&k| key(k));
            kids.first().and_then(|&k| key(k))
        }
        Top::Gone => None,
    };
    let mut keyed: Vec<(Option<(i64, Uid)>, Top)> =
        tops.into_iter().map(|mut t| (top_key(&mut t), t)).collect();
    keyed.sort_by_key(|(k, _)| *k);
    let mut tops: Vec<Top> = keyed.into_iter().map(|(_, t)| t).collect();
    // Step 5: threads of the same base subject merged.
    let fields = |n: usize| {
        links
            .nodes
            .get(n)
            .and_then(|n| n.msg)
            .and_then(|m| items.get(m))
            .map(|t| t.fields)
    };
    let subject_of = |t: &Top| -> Option<&str> {
        let n = match t {
            Top::Message(n) => *n,
            Top::Dummy(kids) => *kids.first()?,
            Top::Gone => return None,
        };
        fields(n)
            .map(|f| f.subject.as_str())
            .filter(|s| !s.is_empty())
    };
    let reply = |t: &Top| matches!(t, Top::Message(n) if fields(*n).is_some_and(|f| f.reply));
    let subjects: Vec<Option<&str>> = tops
        .iter()
        .map(|t| if merge { subject_of(t) } else { None })
        .collect();
    // 5.B: one thread per subject: a dummy before a message, a message that is not a
    // reply before one that is.
    let mut table: HashMap<&str, usize> = HashMap::new();
    for (i, subject) in subjects.iter().enumerate() {
        let Some(subject) = subject else { continue };
        match table.get(subject).copied() {
            None => {
                table.insert(subject, i);
            }
            Some(held) => {
                let (Some(h), Some(t)) = (tops.get(held), tops.get(i)) else {
                    continue;
                };
                let held_dummy = matches!(h, Top::Dummy(_));
                let this_dummy = matches!(t, Top::Dummy(_));
                if !held_dummy && (this_dummy || (reply(h) && !reply(t))) {
                    table.insert(subject, i);
                }
            }
        }
    }
    // 5.C: every other thread of that subject merged into the table's.
    for (i, subject) in subjects.iter().enumerate() {
        let Some(subject) = subject else { continue };
        let Some(&held) = table.get(subject) else {
            continue;
        };
        if held == i {
            continue;
        }
        let this = std::mem::replace(tops.get_mut(i).unwrap_or(&mut Top::Gone), Top::Gone);
        let this_reply = reply(&this);
        let Some(h) = tops.get_mut(held) else {
            continue;
        };
        let held_reply = reply(h);
        match (h, this) {
            (Top::Dummy(kids), Top::Dummy(more)) => kids.extend(more),
            (Top::Dummy(kids), Top::Message(m)) => kids.push(m),
            (Top::Message(p), Top::Message(m)) if this_reply && !held_reply => {
                children.entry(*p).or_default().push(m);
            }
            (h, Top::Message(m)) => {
                let Top::Message(p) = *h else { continue };
                *h = Top::Dummy(vec![p, m]);
            }
            // 5.B put a dummy in the table whenever its subject has one.
            (_, Top::Dummy(_) | Top::Gone) => {}
        }
    }
    // Step 6: every set of siblings in sent-date order, the top level last.
    for kids in children.values_mut() {
        kids.sort_by_key(|&k| key(k));
    }
    // REFS: the latest sent date anywhere in the thread comes first in the order.
    let latest = |t: &Top| -> i64 {
        if merge {
            return 0;
        }
        let mut stack: Vec<usize> = match t {
            Top::Message(n) => vec![*n],
            Top::Dummy(kids) => kids.clone(),
            Top::Gone => Vec::new(),
        };
        let mut max = i64::MIN;
        while let Some(n) = stack.pop() {
            max = max.max(key(n).map_or(i64::MIN, |k| k.0));
            stack.extend(children.get(&n).into_iter().flatten());
        }
        max
    };
    let mut keyed: Vec<(TopOrder, Top)> = tops
        .into_iter()
        .filter(|t| !matches!(t, Top::Gone))
        .map(|mut t| ((latest(&t), top_key(&mut t)), t))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    let uid = |n: usize| {
        links
            .nodes
            .get(n)
            .and_then(|n| n.msg)
            .and_then(|m| items.get(m))
            .map(|t| t.uid)
    };
    let tree = Tree {
        children: &children,
        uid: &uid,
        key: &key,
    };
    keyed
        .into_iter()
        .filter_map(|(_, t)| match t {
            Top::Dummy(kids) => Some(Thread {
                uid: None,
                children: kids.iter().map(|&k| tree.build(k, 1)).collect(),
            }),
            Top::Message(n) => Some(tree.build(n, 0)),
            Top::Gone => None,
        })
        .collect()
}

/// The finished links, turned into [`Thread`]s with the depth bounded.
struct Tree<'a> {
    children: &'a HashMap<usize, Vec<usize>>,
    uid: &'a dyn Fn(usize) -> Option<Uid>,
    key: &'a dyn Fn(usize) -> Option<(i64, Uid)>,
}

impl Tree<'_> {
    fn kids(&self, n: usize) -> &[usize] {
        self.children.get(&n).map(Vec::as_slice).unwrap_or_default()
    }

    /// Node `n` at `depth` levels below its thread's root (recursion at most
    /// [`MAX_DEPTH`] deep): at that depth, every descendant becomes a direct reply.
    fn build(&self, n: usize, depth: usize) -> Thread {
        let children = if depth < MAX_DEPTH {
            self.kids(n)
                .iter()
                .map(|&k| self.build(k, depth + 1))
                .collect()
        } else {
            let mut all = Vec::new();
            let mut stack: Vec<usize> = self.kids(n).to_vec();
            while let Some(k) = stack.pop() {
                all.push(k);
                stack.extend(self.kids(k));
            }
            all.sort_by_key(|&k| (self.key)(k));
            all.into_iter()
                .filter_map(|k| (self.uid)(k))
                .map(leaf)
                .collect()
        };
        Thread {
            uid: (self.uid)(n),
            children,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message: UID, sent date, subject as sent, Message-ID, References.
    fn msg(uid: Uid, sent: i64, subject: &str, own: &str, refs: &[&str]) -> (Uid, ThreadFields) {
        let (base, reply) = base_subject_and_reply(subject);
        let fields = ThreadFields {
            sent: Some(sent),
            subject: casemap(&base),
            reply,
            keys: ThreadKeys {
                own: (!own.is_empty()).then(|| own.to_string()),
                in_reply_to: None,
                references: refs.iter().map(|r| r.to_string()).collect(),
            },
        };
        (uid, fields)
    }

    fn run(msgs: &[(Uid, ThreadFields)], algorithm: Algorithm) -> String {
        let items = msgs
            .iter()
            .map(|(uid, fields)| Threadable {
                uid: *uid,
                arrival: 0,
                fields,
            })
            .collect();
        let mut out = String::new();
        for t in thread(items, algorithm) {
            show(&t, &mut out);
        }
        out
    }

    /// The tree, every node with its children in parentheses (not the wire's shorthand).
    fn show(t: &Thread, out: &mut String) {
        out.push('(');
        if let Some(u) = t.uid {
            out.push_str(&u.to_string());
        }
        for c in &t.children {
            show(c, out);
        }
        out.push(')');
    }

    #[test]
    fn ordered_subject_groups_by_base_subject_then_sent_date() {
        let m = [
            msg(1, 50, "Hello", "", &[]),
            msg(2, 10, "Other", "", &[]),
            msg(3, 40, "Re: hello", "", &[]),
            msg(4, 40, "[list] Hello (fwd)", "", &[]),
            msg(5, 5, "", "", &[]),
        ];
        // Groups: "" {5}, other {2}, hello {3, 4 (same date: mailbox order), 1}.
        assert_eq!(run(&m, Algorithm::OrderedSubject), "(5)(2)(3(4)(1))");
    }

    /// Step 1.A/1.B: references chain parent to child, whatever order messages arrive in;
    /// step 3: a missing message with one child goes, with two stays at the top.
    #[test]
    fn references_link_and_dummies_are_pruned() {
        let m = [
            msg(1, 30, "c", "<c>", &["<a>", "<b>"]),
            msg(2, 20, "b", "<b>", &["<a>"]),
            msg(3, 10, "x", "<x>", &["<gone>"]),
            msg(4, 40, "y", "<y>", &["<gone2>"]),
            msg(5, 50, "z", "<z>", &["<gone2>"]),
        ];
        let m: Vec<_> = m
            .into_iter()
            .map(|(u, mut f)| {
                f.keys.own = f.keys.own.map(|o| o.trim_matches(['<', '>']).to_string());
                f.keys.references = f
                    .keys
                    .references
                    .iter()
                    .map(|r| r.trim_matches(['<', '>']).to_string())
                    .collect();
                (u, f)
            })
            .collect();
        // <a> is missing and has one child: 2 rises to the top. <gone2> has two: a dummy.
        assert_eq!(run(&m, Algorithm::References), "(3)(2(1))((4)(5))");
    }

    /// 1.A: "If a message already has a parent, don't change the existing link"; 1.B: the
    /// last reference always wins.
    #[test]
    fn references_keep_first_links_but_last_reference_is_the_parent() {
        let m = [
            msg(1, 1, "s", "a", &[]),
            msg(2, 2, "s", "b", &["a"]),
            msg(3, 3, "s", "c", &["a"]),
            // Says b is under c (1.A keeps b under a) and that it replies to b.
            msg(4, 4, "s", "d", &["c", "b"]),
            // A References line that names a parent of c other than a: 1.A keeps a.
            msg(5, 5, "s", "e", &["e2", "c"]),
        ];
        assert_eq!(run(&m, Algorithm::References), "(1(2(4))(3(5)))");
    }

    #[test]
    fn duplicate_and_missing_message_ids_are_unique() {
        let m = [
            msg(1, 1, "one", "a", &[]),
            msg(2, 2, "two", "a", &[]),
            msg(3, 3, "three", "", &["a"]),
            msg(4, 4, "four", "", &[]),
        ];
        // 2 duplicates 1's identifier: only 1 answers to it.
        assert_eq!(run(&m, Algorithm::References), "(1(3))(2)(4)");
    }

    #[test]
    fn loops_are_not_made() {
        let m = [
            msg(1, 1, "p", "a", &["b"]),
            msg(2, 2, "q", "b", &["a"]),
            msg(3, 3, "r", "c", &["c"]),
            msg(4, 4, "s", "d", &["e", "d", "e"]),
        ];
        // 1 under b; then b would go under a, which is below b: no link, b stays a root.
        assert_eq!(run(&m, Algorithm::References), "(2(1))(3)(4)");
    }

    /// Step 5: a reply joins the thread of the same subject that is not one; two that are
    /// not get a dummy; a dummy takes the others in.
    #[test]
    fn subjects_merge_top_level_threads() {
        let m = [
            msg(1, 1, "Hello", "a", &[]),
            msg(2, 2, "Re: Hello", "b", &[]),
            msg(3, 3, "World", "c", &[]),
            msg(4, 4, "world", "d", &[]),
            msg(5, 5, "Re: x", "e", &["gone"]),
            msg(6, 6, "Re: x", "f", &["gone"]),
            msg(7, 7, "x", "g", &[]),
            msg(8, 8, "", "h", &[]),
            msg(9, 9, "", "i", &[]),
        ];
        assert_eq!(
            run(&m, Algorithm::References),
            "(1(2))((3)(4))((5)(6)(7))(8)(9)"
        );
        // The reply came first: the table holds the later non-reply, which takes it in.
        let m = [
            msg(1, 1, "Re: Hello", "a", &[]),
            msg(2, 2, "Hello", "b", &[]),
        ];
        assert_eq!(run(&m, Algorithm::References), "(2(1))");
    }

    /// Step 6: siblings by sent date, ties by mailbox order; a dummy sorts by its first child.
    #[test]
    fn siblings_sort_by_sent_date_then_mailbox_order() {
        let m = [
            msg(1, 9, "r", "r", &[]),
            msg(2, 5, "a", "a", &["r"]),
            msg(3, 5, "b", "b", &["r"]),
            msg(4, 1, "c", "c", &["r"]),
            msg(5, 3, "d", "d", &["gone"]),
            msg(6, 4, "e", "e", &["gone"]),
        ];
        assert_eq!(run(&m, Algorithm::References), "((5)(6))(1(4)(2)(3))");
    }

    /// REFS, as Dovecot 2.3 answers it on the wire: no subject merging (5 and 6 share a
    /// missing parent, so a dummy still holds them), threads by their latest message.
    #[test]
    fn refs_orders_threads_by_their_latest_message_and_merges_no_subjects() {
        let m = [
            msg(1, 1, "A", "a1", &[]),
            msg(2, 5, "Re: A", "a2", &["a1"]),
            msg(3, 3, "B", "b1", &[]),
            msg(4, 4, "C", "c1", &[]),
            msg(5, 2, "Re: C", "c2", &["c1"]),
            msg(6, 3, "Re: C", "c3", &["c1"]),
            msg(7, 6, "D", "d1", &["missing"]),
            msg(8, 0, "D", "d2", &["missing"]),
            msg(9, 7, "E", "e1", &[]),
            msg(10, 8, "E", "e2", &["e1"]),
            msg(11, 2, "E", "e3", &["e2"]),
            msg(12, 9, "Re: B", "b2", &[]),
        ];
        assert_eq!(
            run(&m, Algorithm::Refs),
            "(3)(4(5)(6))(1(2))((8)(7))(9(10(11)))(12)"
        );
        assert_eq!(
            run(&m, Algorithm::References),
            "((8)(7))(1(2))(3(12))(4(5)(6))(9(10(11)))"
        );
    }

    fn depth(t: &Thread) -> usize {
        1 + t.children.iter().map(depth).max().unwrap_or(0)
    }

    fn uids(t: &Thread, out: &mut Vec<Uid>) {
        out.extend(t.uid);
        for c in &t.children {
            uids(c, out);
        }
    }

    /// A chain of replies deeper than [`MAX_DEPTH`]: the replies below that depth hang from
    /// the message there, in order, and every message is listed once.
    #[test]
    fn depth_is_bounded() {
        let n = 5_000u32;
        let ids: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
        let m: Vec<(Uid, ThreadFields)> = (0..n)
            .map(|i| {
                let own = ids[i as usize].as_str();
                let parent: Vec<&str> = i
                    .checked_sub(1)
                    .map(|p| ids[p as usize].as_str())
                    .into_iter()
                    .collect();
                msg(i + 1, i64::from(i), "s", own, &parent)
            })
            .collect();
        let items: Vec<Threadable<'_>> = m
            .iter()
            .map(|(uid, fields)| Threadable {
                uid: *uid,
                arrival: 0,
                fields,
            })
            .collect();
        let threads = thread(items, Algorithm::References);
        assert_eq!(threads.len(), 1);
        assert_eq!(depth(&threads[0]), MAX_DEPTH + 2);
        let mut all = Vec::new();
        uids(&threads[0], &mut all);
        assert_eq!(all, (1..=n).collect::<Vec<_>>());
    }

    /// Every message found is in the forest exactly once, whatever references, subjects and
    /// dates the messages carry, by both algorithms; the depth stays bounded.
    #[test]
    fn every_message_once() {
        fn prop(spec: Vec<(u8, u8, Vec<u8>, u8, u8)>, by_subject: bool) -> bool {
            let m: Vec<(Uid, ThreadFields)> = spec
                .iter()
                .enumerate()
                .take(60)
                .map(|(i, (own, subject, refs, sent, re))| {
                    let subject =
                        format!("{}{}", if re % 2 == 0 { "Re: " } else { "" }, subject % 4);
                    let own = if own % 5 == 0 {
                        String::new()
                    } else {
                        format!("{}", own % 16)
                    };
                    let refs: Vec<String> = refs
                        .iter()
                        .take(20)
                        .map(|r| format!("{}", r % 16))
                        .collect();
                    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
                    msg(
                        i as Uid * 2 + 1,
                        i64::from(*sent % 8),
                        &subject,
                        &own,
                        &refs,
                    )
                })
                .collect();
            let algorithm = match (by_subject, spec.len() % 2) {
                (true, _) => Algorithm::OrderedSubject,
                (false, 0) => Algorithm::References,
                (false, _) => Algorithm::Refs,
            };
            let items = m
                .iter()
                .rev()
                .map(|(uid, fields)| Threadable {
                    uid: *uid,
                    arrival: 0,
                    fields,
                })
                .collect();
            let threads = thread(items, algorithm);
            let mut all = Vec::new();
            for t in &threads {
                uids(t, &mut all);
                // Only a top-level node may be a dummy, and it has two children or more.
                if t.uid.is_none() && t.children.len() < 2 {
                    return false;
                }
                if depth(t) > MAX_DEPTH + 2 {
                    return false;
                }
            }
            all.sort_unstable();
            let expected: Vec<Uid> = m.iter().map(|(u, _)| *u).collect();
            all == expected
        }
        quickcheck::QuickCheck::new()
            .tests(2_000)
            .quickcheck(prop as fn(Vec<(u8, u8, Vec<u8>, u8, u8)>, bool) -> bool);
    }
}
