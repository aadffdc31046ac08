//! The checks of [`StorageOp::ImportMessages`](super::StorageOp::ImportMessages), shared by
//! every store so that they refuse exactly alike.

use super::{StorageError, Uid};

/// What an import may do to a mailbox now at `have_validity`/`have_next`, for messages with
/// `uids` and the source's `uid_validity`/`uid_next`. `Ok(true)`: the mailbox has never held
/// a message and takes `uid_validity`. `Ok(false)`: it keeps its own, which is the same.
pub fn check(
    have_validity: u32,
    have_next: Uid,
    uid_validity: u32,
    uids: impl IntoIterator<Item = Uid>,
) -> Result<bool, StorageError> {
    let conflict = |why: &str| Err(StorageError::UidConflict(why.to_string()));
    if uid_validity == 0 {
        return conflict("UIDVALIDITY 0");
    }
    let fresh = have_next <= 1;
    if !fresh && have_validity != uid_validity {
        return conflict("the mailbox has another UIDVALIDITY");
    }
    let mut floor = have_next.max(1);
    for uid in uids {
        if uid < floor {
            return conflict("a UID is not above the mailbox's last one");
        }
        if uid == Uid::MAX {
            return conflict("UID 4294967295 leaves no UIDNEXT");
        }
        floor = uid + 1;
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_mailbox_takes_the_source_uidvalidity() {
        assert_eq!(check(77, 1, 5, [3, 9]), Ok(true));
        assert_eq!(check(5, 4, 5, [4, 9]), Ok(false));
        assert_eq!(check(5, 4, 5, []), Ok(false));
    }

    #[test]
    fn conflicts_are_refused() {
        let refused =
            |r: Result<bool, StorageError>| matches!(r, Err(StorageError::UidConflict(_)));
        assert!(refused(check(5, 4, 6, [7])));
        assert!(refused(check(5, 4, 5, [3])));
        assert!(refused(check(5, 1, 5, [3, 3])));
        assert!(refused(check(5, 1, 5, [9, 3])));
        assert!(refused(check(5, 1, 5, [0])));
        assert!(refused(check(5, 1, 0, [1])));
        assert!(refused(check(5, 1, 5, [u32::MAX])));
    }
}
