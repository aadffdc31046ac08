//! The protocol's rules about particular mailboxes, decided here once, above every store.
//!
//! A store keeps mailboxes and messages and treats every name alike. What IMAP says about
//! particular names is decided here, and the session consults it before it asks storage
//! anything:
//! - INBOX always exists: CREATE of it and RENAME onto it are refused (RFC 9051 §6.3.4,
//!   §6.3.6), and so is DELETE of it (§6.3.5: "It is an error to attempt to delete the name
//!   INBOX").
//! - RENAME of INBOX moves its messages to a new mailbox and leaves INBOX there, empty, with
//!   its children (RFC 9051 §6.3.6, RFC 3501 §6.3.5): [`rename`] turns it into
//!   [`StorageOp::MoveAllMessages`], which a store carries out like any other request.
//! - A new account starts with INBOX and the special-use mailboxes clients look for
//!   ([`AccountTemplate`]); whoever builds a store hands it the template, and the store
//!   creates those mailboxes when an account is first addressed.
//! - INBOX's name is case-insensitive: [`crate::mail::mailbox_name::canonical`] spells it
//!   `INBOX` before any rule here or any store sees it.
//!
//! The session chooses the words and response codes for a [`Refusal`].

use super::{SpecialUse, StorageOp};

/// The mailbox that always exists (its canonical spelling).
pub const INBOX: &str = "INBOX";

/// The mailboxes besides INBOX that a new account starts with, with their special uses
/// (RFC 6154), so that clients find Drafts, Sent, Trash, Junk and Archive without creating
/// them.
pub const DEFAULT_MAILBOXES: [(&str, SpecialUse); 5] = [
    ("Drafts", SpecialUse::Drafts),
    ("Sent", SpecialUse::Sent),
    ("Trash", SpecialUse::Trash),
    ("Junk", SpecialUse::Junk),
    ("Archive", SpecialUse::Archive),
];

/// One mailbox of a new account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMailbox {
    /// Canonical name; parents must come earlier in the template.
    pub name: String,
    /// Its special use.
    pub special_use: Option<SpecialUse>,
    /// Whether the account starts subscribed to it.
    pub subscribed: bool,
}

/// What a new account holds. A store creates these mailboxes, in this order (the first gets
/// the lowest [`super::MailboxId`]) and with these subscriptions, in the same change that
/// brings the account into being: the first request that names the account, whatever it is.
/// The default is tern's policy: INBOX, then [`DEFAULT_MAILBOXES`], all subscribed. A
/// template must hold INBOX: the session relies on it existing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountTemplate {
    /// The mailboxes, in creation order.
    pub mailboxes: Vec<NewMailbox>,
}

impl Default for AccountTemplate {
    fn default() -> AccountTemplate {
        let inbox = NewMailbox {
            name: INBOX.to_string(),
            special_use: None,
            subscribed: true,
        };
        let defaults = DEFAULT_MAILBOXES.iter().map(|&(name, special)| NewMailbox {
            name: name.to_string(),
            special_use: Some(special),
            subscribed: true,
        });
        AccountTemplate {
            mailboxes: std::iter::once(inbox).chain(defaults).collect(),
        }
    }
}

/// Why a mailbox command is refused before any store sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// CREATE INBOX, or RENAME onto INBOX: it always exists.
    #[error("INBOX always exists")]
    InboxExists,
    /// DELETE INBOX.
    #[error("INBOX cannot be deleted")]
    InboxPermanent,
}

/// CREATE `name` (canonical) in `account`.
pub fn create(
    account: String,
    name: String,
    special_use: Option<SpecialUse>,
) -> Result<StorageOp, Refusal> {
    if name == INBOX {
        return Err(Refusal::InboxExists);
    }
    Ok(StorageOp::CreateMailbox {
        account,
        name,
        special_use,
    })
}

/// DELETE `name` (canonical) in `account`.
pub fn delete(account: String, name: String) -> Result<StorageOp, Refusal> {
    if name == INBOX {
        return Err(Refusal::InboxPermanent);
    }
    Ok(StorageOp::DeleteMailbox { account, name })
}

/// RENAME `from` to `to` (both canonical) in `account`: INBOX's messages move instead.
pub fn rename(account: String, from: String, to: String) -> Result<StorageOp, Refusal> {
    if to == INBOX {
        return Err(Refusal::InboxExists);
    }
    if from == INBOX {
        return Ok(StorageOp::MoveAllMessages { account, from, to });
    }
    Ok(StorageOp::RenameMailbox { account, from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn inbox_always_exists() {
        assert_eq!(create(s("a"), s("INBOX"), None), Err(Refusal::InboxExists));
        assert_eq!(
            rename(s("a"), s("Work"), s("INBOX")),
            Err(Refusal::InboxExists)
        );
        assert_eq!(
            rename(s("a"), s("INBOX"), s("INBOX")),
            Err(Refusal::InboxExists)
        );
        assert_eq!(delete(s("a"), s("INBOX")), Err(Refusal::InboxPermanent));
        // Its children and look-alikes are ordinary names.
        assert_eq!(
            delete(s("a"), s("INBOX/old")),
            Ok(StorageOp::DeleteMailbox {
                account: s("a"),
                name: s("INBOX/old")
            })
        );
        assert!(create(s("a"), s("INBOXES"), None).is_ok());
    }

    #[test]
    fn renaming_inbox_moves_its_messages() {
        assert_eq!(
            rename(s("a"), s("INBOX"), s("Old")),
            Ok(StorageOp::MoveAllMessages {
                account: s("a"),
                from: s("INBOX"),
                to: s("Old")
            })
        );
        assert_eq!(
            rename(s("a"), s("INBOX/x"), s("Old")),
            Ok(StorageOp::RenameMailbox {
                account: s("a"),
                from: s("INBOX/x"),
                to: s("Old")
            })
        );
    }

    #[test]
    fn the_default_template_starts_with_inbox_and_the_special_uses() {
        let t = AccountTemplate::default();
        let names: Vec<&str> = t.mailboxes.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"]
        );
        assert!(t.mailboxes.iter().all(|m| m.subscribed));
        assert_eq!(t.mailboxes[0].special_use, None);
        assert_eq!(t.mailboxes[2].special_use, Some(SpecialUse::Sent));
    }
}
