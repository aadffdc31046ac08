//! Message flags: one [`Flag`] as commands and responses name it, how STORE changes a set
//! ([`StoreMode`]), and [`Flags`] as stored: the five system flags as bits, keywords as names.

use bytes::Bytes;

/// A flag as used in STORE, APPEND, FLAGS and PERMANENTFLAGS.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `\Answered`.
    Answered,
    /// `\Flagged`.
    Flagged,
    /// `\Deleted`.
    Deleted,
    /// `\Seen`.
    Seen,
    /// `\Draft`.
    Draft,
    /// `\Recent` (IMAP4rev1 only; never settable).
    Recent,
    /// A keyword atom such as `$Forwarded` or `Junk`. Compared case-insensitively.
    Keyword(Bytes),
    /// Any other `\`-prefixed flag (the name after the backslash).
    Extension(Bytes),
}

/// STORE's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreMode {
    /// FLAGS: replace.
    Replace,
    /// +FLAGS: add.
    Add,
    /// -FLAGS: remove.
    Remove,
}

/// The flags of one message. `\Recent` is not here: it belongs to a session, not a message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    bits: u8,
    keywords: Vec<Bytes>,
}

/// The system flags that can be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemFlag {
    /// `\Seen`.
    Seen,
    /// `\Answered`.
    Answered,
    /// `\Flagged`.
    Flagged,
    /// `\Deleted`.
    Deleted,
    /// `\Draft`.
    Draft,
}

impl SystemFlag {
    /// All of them, in the order FLAGS lists them.
    pub const ALL: [SystemFlag; 5] = [
        SystemFlag::Answered,
        SystemFlag::Flagged,
        SystemFlag::Deleted,
        SystemFlag::Seen,
        SystemFlag::Draft,
    ];

    fn bit(self) -> u8 {
        match self {
            SystemFlag::Seen => 1,
            SystemFlag::Answered => 2,
            SystemFlag::Flagged => 4,
            SystemFlag::Deleted => 8,
            SystemFlag::Draft => 16,
        }
    }

    /// The protocol flag.
    pub fn flag(self) -> Flag {
        match self {
            SystemFlag::Seen => Flag::Seen,
            SystemFlag::Answered => Flag::Answered,
            SystemFlag::Flagged => Flag::Flagged,
            SystemFlag::Deleted => Flag::Deleted,
            SystemFlag::Draft => Flag::Draft,
        }
    }
}

impl Flags {
    /// No flags.
    pub fn new() -> Flags {
        Flags::default()
    }

    /// Builds from protocol flags, ignoring `\Recent` and unknown `\` flags (which cannot be
    /// stored: PERMANENTFLAGS does not list them).
    pub fn from_flags<'a>(flags: impl IntoIterator<Item = &'a Flag>) -> Flags {
        let mut f = Flags::new();
        for flag in flags {
            f.insert(flag);
        }
        f
    }

    /// Whether a system flag is set.
    pub fn has(&self, flag: SystemFlag) -> bool {
        self.bits & flag.bit() != 0
    }

    /// Sets or clears a system flag.
    pub fn set(&mut self, flag: SystemFlag, on: bool) {
        if on {
            self.bits |= flag.bit();
        } else {
            self.bits &= !flag.bit();
        }
    }

    /// Whether a keyword is set (keywords compare case-insensitively, RFC 9051 §2.3.2).
    pub fn has_keyword(&self, keyword: &[u8]) -> bool {
        self.keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }

    /// The keywords, in the order they were added.
    pub fn keywords(&self) -> &[Bytes] {
        &self.keywords
    }

    /// Adds one protocol flag.
    pub fn insert(&mut self, flag: &Flag) {
        match system(flag) {
            Some(s) => self.set(s, true),
            None => {
                if let Flag::Keyword(k) = flag {
                    if !self.has_keyword(k) {
                        self.keywords.push(k.clone());
                    }
                }
            }
        }
    }

    /// Removes one protocol flag.
    pub fn remove(&mut self, flag: &Flag) {
        match system(flag) {
            Some(s) => self.set(s, false),
            None => {
                if let Flag::Keyword(k) = flag {
                    self.keywords.retain(|x| !x.eq_ignore_ascii_case(k));
                }
            }
        }
    }

    /// The flags after STORE in `mode` with `flags` (every store computes it this way).
    pub fn stored(&self, mode: StoreMode, flags: &[Flag]) -> Flags {
        match mode {
            StoreMode::Replace => Flags::from_flags(flags),
            StoreMode::Add => {
                let mut f = self.clone();
                for flag in flags {
                    f.insert(flag);
                }
                f
            }
            StoreMode::Remove => {
                let mut f = self.clone();
                for flag in flags {
                    f.remove(flag);
                }
                f
            }
        }
    }

    /// The flags as protocol values, system flags first.
    pub fn to_flags(&self) -> Vec<Flag> {
        SystemFlag::ALL
            .iter()
            .filter(|s| self.has(**s))
            .map(|s| s.flag())
            .chain(self.keywords.iter().cloned().map(Flag::Keyword))
            .collect()
    }
}

fn system(flag: &Flag) -> Option<SystemFlag> {
    match flag {
        Flag::Seen => Some(SystemFlag::Seen),
        Flag::Answered => Some(SystemFlag::Answered),
        Flag::Flagged => Some(SystemFlag::Flagged),
        Flag::Deleted => Some(SystemFlag::Deleted),
        Flag::Draft => Some(SystemFlag::Draft),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9051 §6.4.6: FLAGS replaces, +FLAGS adds, -FLAGS removes.
    #[test]
    fn store_modes() {
        let work = Flag::Keyword(Bytes::from_static(b"Work"));
        let current = Flags::from_flags(&[Flag::Seen, work.clone()]);
        let replaced = current.stored(StoreMode::Replace, &[Flag::Flagged]);
        assert_eq!(replaced.to_flags(), [Flag::Flagged]);
        let added = current.stored(StoreMode::Add, &[Flag::Deleted]);
        assert!(added.has(SystemFlag::Deleted) && added.has(SystemFlag::Seen));
        assert!(added.has_keyword(b"work"));
        let removed = current.stored(StoreMode::Remove, &[Flag::Keyword("WORK".into())]);
        assert_eq!(removed.to_flags(), [Flag::Seen]);
    }

    #[test]
    fn keywords_are_case_insensitive_and_recent_is_not_stored() {
        let mut f = Flags::from_flags(&[
            Flag::Seen,
            Flag::Recent,
            Flag::Keyword(Bytes::from_static(b"$Junk")),
        ]);
        f.insert(&Flag::Keyword(Bytes::from_static(b"$JUNK")));
        assert_eq!(f.keywords().len(), 1);
        assert!(f.has(SystemFlag::Seen));
        f.remove(&Flag::Keyword(Bytes::from_static(b"$junk")));
        assert_eq!(f.to_flags(), vec![Flag::Seen]);
    }
}
