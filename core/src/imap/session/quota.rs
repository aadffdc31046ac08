//! QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT and the refusal of SETQUOTA.
//!
//! Each account has one quota root, named `User quota` as Dovecot names its default root,
//! over all the account's mailboxes; so `GETQUOTAROOT` names it for any mailbox name, existing
//! or not (§4.1.2: "doesn't have to reference an existing mailbox"). Its resources are
//! STORAGE (the sum of RFC822.SIZEs, in units of 1024 octets, rounded up as Dovecot shows
//! it: any mail at all is never shown as 0) and MESSAGE, from the account's [`Quota`] (the directory's answer at login) and
//! the store's [`StorageOp::Usage`]; a resource without a bound is left out of the list
//! (§4.2.1: "Resources not named in the list are not limited"). An account without any bound
//! has no root at all: `* QUOTAROOT INBOX` names none (§4.2.2's comp.mail.mime example), and
//! GETQUOTA finds none, as Dovecot answers "No quota" for it. The writes that add mail are
//! held to the same quota by the store ([`Quota::hold`]), which answers `NO [OVERQUOTA]`.
//!
//! Limits are the administrator's: SETQUOTA is refused (`NO [NOPERM]`, and `QUOTASET` is not
//! advertised), as Dovecot refuses it to every user but its admins.

use bytes::Bytes;

use super::{Finish, ImapSession, Pending as SessionPending};
use crate::imap::command::Tag;
use crate::imap::response::{Code, Data, Response};
use crate::imap::types::MailboxArg;
use crate::store::{AccountUsage, Quota, StorageOp, StorageReply, StorageResult};

/// The name of every account's one quota root.
pub(super) const ROOT: &[u8] = b"User quota";

/// What a quota command waits for: the account's usage.
#[derive(Debug)]
pub(super) enum Pending {
    /// GETQUOTA.
    Quota { tag: Tag },
    /// GETQUOTAROOT, with the mailbox name as the client sent it.
    Root { tag: Tag, mailbox: Bytes },
}

impl ImapSession {
    /// `GETQUOTA root` (§4.1.1).
    pub(super) fn get_quota(&mut self, tag: Tag, root: &[u8]) {
        if root != ROOT || self.quota.is_unlimited() {
            // Dovecot's words; RFC 9208 §4.1.1 names this NO "no such quota root".
            self.no(tag, Some(Code::NonExistent), "Quota root does not exist.");
            return;
        }
        self.ask_usage(Pending::Quota { tag });
    }

    /// `GETQUOTAROOT mailbox` (§4.1.2).
    pub(super) fn get_quota_root(&mut self, tag: Tag, mailbox: &MailboxArg) {
        let Some(name) = self.mailbox_name(&tag, mailbox) else {
            return;
        };
        let mailbox = self.wire_name(&name);
        if self.quota.is_unlimited() {
            self.send(Response::Data(Data::QuotaRoot {
                mailbox,
                roots: Vec::new(),
            }));
            self.finish(Finish::ok(tag, "GETQUOTAROOT completed."));
            return;
        }
        self.ask_usage(Pending::Root { tag, mailbox });
    }

    /// `SETQUOTA` (§4.1.3): limits come from the server's configuration only.
    pub(super) fn set_quota(&mut self, tag: Tag) {
        self.no(
            tag,
            Some(Code::NoPerm),
            "Quota can be changed only by the administrator.",
        );
    }

    fn ask_usage(&mut self, pending: Pending) {
        let Some(account) = self.account_name() else {
            return;
        };
        self.request(StorageOp::Usage { account }, SessionPending::Quota(pending));
    }

    pub(super) fn quota_reply(&mut self, pending: Pending, reply: StorageResult) {
        let (tag, root_of) = match pending {
            Pending::Quota { tag } => (tag, None),
            Pending::Root { tag, mailbox } => (tag, Some(mailbox)),
        };
        let usage = match reply {
            Ok(StorageReply::Usage(usage)) => usage,
            Err(e) => return self.storage_failed(tag, &e),
            Ok(_) => return self.unexpected(tag),
        };
        let text = match root_of {
            Some(mailbox) => {
                self.send(Response::Data(Data::QuotaRoot {
                    mailbox,
                    roots: vec![Bytes::from_static(ROOT)],
                }));
                "GETQUOTAROOT completed."
            }
            None => "GETQUOTA completed.",
        };
        let resources = resources(&self.quota, usage);
        self.send(Response::Data(Data::Quota {
            root: Bytes::from_static(ROOT),
            resources,
        }));
        self.finish(Finish::ok(tag, text));
    }
}

/// The `(resource usage limit)` triplets of the root: STORAGE in units of 1024 octets (§5.1),
/// rounded up, as Dovecot shows them; a resource without a bound is not listed.
fn resources(quota: &Quota, usage: AccountUsage) -> Vec<(Bytes, u64, u64)> {
    let mut out = Vec::with_capacity(2);
    if let Some(limit) = quota.octets {
        out.push((
            Bytes::from_static(b"STORAGE"),
            usage.octets.div_ceil(1024),
            limit.div_ceil(1024),
        ));
    }
    if let Some(limit) = quota.messages {
        out.push((Bytes::from_static(b"MESSAGE"), usage.messages, limit));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_shown_in_kibibytes_rounded_up_and_unbounded_resources_are_left_out() {
        let usage = AccountUsage {
            messages: 3,
            octets: 2047,
        };
        let both = Quota {
            octets: Some(10 * 1024 + 1023),
            messages: Some(5),
        };
        assert_eq!(
            resources(&both, usage),
            vec![
                (Bytes::from_static(b"STORAGE"), 2, 11),
                (Bytes::from_static(b"MESSAGE"), 3, 5)
            ]
        );
        let messages_only = Quota {
            octets: None,
            messages: Some(5),
        };
        assert_eq!(
            resources(&messages_only, usage),
            vec![(Bytes::from_static(b"MESSAGE"), 3, 5)]
        );
        assert!(resources(&Quota::default(), usage).is_empty());
        let empty = AccountUsage::default();
        assert_eq!(
            resources(&both, empty)[0],
            (Bytes::from_static(b"STORAGE"), 0, 11)
        );
    }
}
