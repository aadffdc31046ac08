//! METADATA (RFC 5464): GETMETADATA and SETMETADATA on the account's mailboxes and on the
//! server (the empty mailbox name), which for tern is the account's own set of entries: there
//! are no shared mailboxes, so `/private` and `/shared` entries are both the user's. The
//! read-only server entry `/shared/admin` comes from the configuration. Unsolicited METADATA
//! responses (§4.4.2) are not sent, so ENABLE METADATA is not acknowledged.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::{Finish, ImapSession, Pending as SessionPending};
use crate::imap::command::Tag;
use crate::imap::response::{Code, Data, MetadataCode, Response};
use crate::imap::types::{MailboxArg, MetadataDepth, MetadataOptions};
use crate::store::metadata::{self, Depth};
use crate::store::{LimitKind, StorageError, StorageOp, StorageReply, StorageResult};

/// The server entry the configuration provides (§3.2.1.1).
const ADMIN: &str = "/shared/admin";

#[derive(Debug)]
pub(super) enum Pending {
    Get {
        tag: Tag,
        /// The mailbox as the response names it; empty for the server.
        wire: Bytes,
        server: bool,
        /// The entries asked for, canonical, in the order asked.
        names: Vec<String>,
        depth: Depth,
        max_size: Option<u32>,
    },
    Set {
        tag: Tag,
    },
}

impl ImapSession {
    /// GETMETADATA (§4.2).
    pub(super) fn get_metadata(
        &mut self,
        tag: Tag,
        options: MetadataOptions,
        mailbox: &MailboxArg,
        entries: &[Bytes],
    ) {
        let Some(names) = self.entry_names(&tag, entries.iter()) else {
            return;
        };
        let Some((name, wire)) = self.metadata_target(&tag, mailbox) else {
            return;
        };
        let Some(account) = self.account_name() else {
            return;
        };
        let depth = match options.depth {
            None | Some(MetadataDepth::Zero) => Depth::Zero,
            Some(MetadataDepth::One) => Depth::One,
            Some(MetadataDepth::Infinity) => Depth::Infinity,
        };
        let op = StorageOp::GetMetadata {
            account,
            mailbox: name.clone(),
            names: names.clone().into(),
            depth,
        };
        let pending = Pending::Get {
            tag,
            wire,
            server: name.is_none(),
            names,
            depth,
            max_size: options.max_size,
        };
        self.request(op, SessionPending::Metadata(pending));
    }

    /// SETMETADATA (§4.3): all entries or none.
    pub(super) fn set_metadata(
        &mut self,
        tag: Tag,
        mailbox: &MailboxArg,
        entries: &[(Bytes, Option<Bytes>)],
    ) {
        let Some(names) = self.entry_names(&tag, entries.iter().map(|(n, _)| n)) else {
            return;
        };
        if let Some(bare) = names.iter().find(|n| !metadata::settable(n)) {
            let why = format!("{bare} cannot hold a value.");
            return self.bad(Some(tag), None, &why);
        }
        let Some((name, _)) = self.metadata_target(&tag, mailbox) else {
            return;
        };
        if name.is_none() && names.iter().any(|n| n == ADMIN) {
            return self.no(tag, Some(Code::Cannot), "/shared/admin is read-only.");
        }
        let max = self.limits().imap_metadata_max_value;
        if entries
            .iter()
            .any(|(_, v)| v.as_ref().is_some_and(|v| v.len() as u64 > u64::from(max)))
        {
            let code = Code::Metadata(MetadataCode::MaxSize(max));
            return self.no(tag, Some(code), "Value too long.");
        }
        let Some(account) = self.account_name() else {
            return;
        };
        let entries: Box<[(String, Option<Bytes>)]> = names
            .into_iter()
            .zip(entries.iter().map(|(_, v)| v.clone()))
            .collect();
        let op = StorageOp::SetMetadata {
            account,
            mailbox: name,
            entries,
        };
        self.request(op, SessionPending::Metadata(Pending::Set { tag }));
    }

    pub(super) fn metadata_reply(&mut self, pending: Pending, reply: StorageResult) {
        match (pending, reply) {
            (
                Pending::Get {
                    tag,
                    wire,
                    server,
                    names,
                    depth,
                    max_size,
                },
                Ok(StorageReply::Metadata(mut found)),
            ) => {
                if let Some(admin) = self.config.imap_admin.clone().filter(|_| server) {
                    if names.iter().any(|r| metadata::within(r, ADMIN, depth)) {
                        found.push((ADMIN.to_string(), Bytes::from(admin)));
                        found.sort_by(|a, b| a.0.cmp(&b.0));
                    }
                }
                let (entries, longest) = answer(&names, depth, max_size, found);
                if !entries.is_empty() {
                    self.send(Response::Data(Data::Metadata {
                        mailbox: wire,
                        entries,
                    }));
                }
                let mut finish = Finish::ok(tag, "GETMETADATA completed.");
                if let Some(n) = longest {
                    // §4.2.1: the size of the largest value left out.
                    finish = finish.with_code(Code::Metadata(MetadataCode::LongEntries(n)));
                }
                self.finish(finish);
            }
            (Pending::Set { tag }, Ok(StorageReply::Done)) => {
                self.finish(Finish::ok(tag, "SETMETADATA completed."))
            }
            (Pending::Set { tag }, Err(StorageError::Limit(LimitKind::MetadataEntries))) => {
                let code = Code::Metadata(MetadataCode::TooMany);
                self.no(tag, Some(code), "Too many entries.")
            }
            (Pending::Get { tag, .. } | Pending::Set { tag }, Err(StorageError::NoSuchMailbox)) => {
                self.no(tag, Some(Code::NonExistent), "Mailbox does not exist.")
            }
            (Pending::Get { tag, .. } | Pending::Set { tag }, Err(e)) => {
                self.storage_failed(tag, &e)
            }
            (Pending::Get { tag, .. } | Pending::Set { tag }, Ok(_)) => self.unexpected(tag),
        }
    }

    /// The entry names, canonical, or the BAD that refuses the command (§3.2: "Invalid entry
    /// names result in a BAD response").
    fn entry_names<'a>(
        &mut self,
        tag: &Tag,
        raw: impl Iterator<Item = &'a Bytes>,
    ) -> Option<Vec<String>> {
        let mut names = Vec::new();
        for r in raw {
            match metadata::entry_name(r) {
                Ok(n) => names.push(n),
                Err(why) => {
                    self.bad(Some(tag.clone()), None, why);
                    return None;
                }
            }
        }
        Some(names)
    }

    /// The canonical mailbox (`None` for the server's entries) and its name for responses.
    fn metadata_target(
        &mut self,
        tag: &Tag,
        mailbox: &MailboxArg,
    ) -> Option<(Option<String>, Bytes)> {
        if mailbox.0.is_empty() {
            return Some((None, Bytes::new()));
        }
        let name = self.mailbox_name(tag, mailbox)?;
        let wire = self.wire_name(&name);
        Some((Some(name), wire))
    }
}

/// The METADATA response's entries for what was asked and found (ascending by name): every
/// entry found within a requested name, and, as Dovecot does, NIL for a name asked for at
/// depth 0 that has no value. Values over `max_size` are left out; the longest of those is
/// returned for LONGENTRIES.
fn answer(
    names: &[String],
    depth: Depth,
    max_size: Option<u32>,
    found: Vec<(String, Bytes)>,
) -> (Vec<(Bytes, Option<Bytes>)>, Option<u32>) {
    let mut entries = Vec::new();
    let mut longest: Option<u32> = None;
    let mut sent = BTreeSet::new();
    for (name, value) in found {
        if !sent.insert(name.clone()) {
            continue;
        }
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        if max_size.is_some_and(|m| len > m) {
            longest = Some(longest.map_or(len, |l| l.max(len)));
            continue;
        }
        entries.push((Bytes::from(name), Some(value)));
    }
    if depth == Depth::Zero {
        for name in names {
            if !sent.contains(name.as_str()) && sent.insert(name.clone()) {
                entries.push((Bytes::from(name.clone()), None));
            }
        }
    }
    (entries, longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(pairs: &[(&str, &str)]) -> Vec<(String, Bytes)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), Bytes::from(v.to_string())))
            .collect()
    }

    #[test]
    fn missing_names_are_nil_at_depth_zero_and_long_values_are_counted() {
        let names = vec!["/private/a".to_string(), "/private/none".to_string()];
        let (entries, longest) = answer(
            &names,
            Depth::Zero,
            Some(3),
            found(&[("/private/a", "toolong")]),
        );
        assert_eq!(entries, vec![(Bytes::from("/private/none"), None)]);
        assert_eq!(longest, Some(7));
        let (entries, longest) = answer(&names, Depth::One, None, found(&[("/private/a", "x")]));
        assert_eq!(
            entries,
            vec![(Bytes::from("/private/a"), Some(Bytes::from("x")))]
        );
        assert_eq!(longest, None);
    }
}
