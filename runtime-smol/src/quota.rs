//! Quota settings (RFC 9208): the `[quota]` default and per-account values from
//! `[[directory.users]]` or a passwd-file's `quota_rule` fields, in Dovecot's syntax, turned
//! into the [`Quota`] the directory hands each login and delivery.
//!
//! Values follow Dovecot's `quota_rule` so that a passwd-file shared with Dovecot keeps its
//! meaning: a storage size is a number of kilobytes (1024 octets) unless a suffix says
//! otherwise (`B`, `K`, `M`, `G`, `T`, powers of 1024); a message count is a plain number;
//! `0` (or `unlimited`, `none`) means no limit, as in Dovecot.

use tern_core::store::Quota;

/// One account's own values: each, when given, replaces the default's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaRule {
    /// STORAGE in octets: `Some(None)` is "no limit", `None` "the default's".
    pub octets: Option<Option<u64>>,
    /// MESSAGE: as `octets`.
    pub messages: Option<Option<u64>>,
}

impl QuotaRule {
    /// The account's quota over `default`.
    pub fn over(&self, default: Quota) -> Quota {
        Quota {
            octets: self.octets.unwrap_or(default.octets),
            messages: self.messages.unwrap_or(default.messages),
        }
    }

    /// Adds a Dovecot `quota_rule` value (`*:storage=1G:messages=1000`). Rules for single
    /// mailboxes (`Trash:storage=+100M`) are not supported: one quota covers every mailbox.
    pub fn add_dovecot_rule(&mut self, rule: &str) -> Result<(), String> {
        let mut parts = rule.split(':');
        if parts.next() != Some("*") {
            return Err(format!(
                "quota rule {rule:?}: only rules for all mailboxes (\"*:...\") are supported"
            ));
        }
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("quota rule {rule:?}: expected key=value, got {part:?}"))?;
            match key.to_ascii_lowercase().as_str() {
                "storage" => self.octets = Some(parse_storage(value, 1024)?),
                "bytes" => self.octets = Some(parse_storage(value, 1)?),
                "messages" => self.messages = Some(parse_messages(value)?),
                _ => return Err(format!("quota rule {rule:?}: unsupported key {key:?}")),
            }
        }
        Ok(())
    }
}

/// A storage limit in octets: a number in units of `unit` octets, or with a suffix
/// (`B`, `K`, `M`, `G`, `T`, powers of 1024); `0`, `unlimited` or `none` for no limit.
pub fn parse_storage(value: &str, unit: u64) -> Result<Option<u64>, String> {
    if unlimited(value) {
        return Ok(None);
    }
    let value = value.trim();
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &value[digits.len()..];
    let multiply: u64 = match suffix.to_ascii_uppercase().as_str() {
        "" => unit,
        "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(format!("storage limit {value:?}: unknown unit {suffix:?}")),
    };
    let number: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("storage limit {value:?} is not a number with an optional unit"))?;
    // RFC 9208 §3.1.2: limits are 63-bit.
    let octets = number
        .checked_mul(multiply)
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| format!("storage limit {value:?} is too large"))?;
    Ok(Some(octets).filter(|n| *n > 0))
}

/// A message-count limit; `0`, `unlimited` or `none` for no limit.
pub fn parse_messages(value: &str) -> Result<Option<u64>, String> {
    if unlimited(value) {
        return Ok(None);
    }
    let number: u64 = value
        .trim()
        .parse()
        .map_err(|_| format!("message limit {value:?} is not a number"))?;
    if number > i64::MAX as u64 {
        return Err(format!("message limit {value:?} is too large"));
    }
    Ok(Some(number).filter(|n| *n > 0))
}

fn unlimited(value: &str) -> bool {
    let value = value.trim();
    value.eq_ignore_ascii_case("unlimited") || value.eq_ignore_ascii_case("none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_kilobytes_unless_a_unit_says_otherwise_and_zero_is_unlimited() {
        assert_eq!(parse_storage("10", 1024), Ok(Some(10 * 1024)));
        assert_eq!(parse_storage("10", 1), Ok(Some(10)));
        assert_eq!(parse_storage("1G", 1024), Ok(Some(1 << 30)));
        assert_eq!(parse_storage("512k", 1024), Ok(Some(512 << 10)));
        assert_eq!(parse_storage("100B", 1024), Ok(Some(100)));
        assert_eq!(parse_storage("0", 1024), Ok(None));
        assert_eq!(parse_storage("unlimited", 1024), Ok(None));
        assert!(parse_storage("1X", 1024).is_err());
        assert!(parse_storage("G", 1024).is_err());
        assert!(parse_storage("-1", 1024).is_err());
        assert!(parse_storage("99999999999T", 1024).is_err());
        assert_eq!(parse_messages("1000"), Ok(Some(1000)));
        assert_eq!(parse_messages("0"), Ok(None));
        assert!(parse_messages("1k").is_err());
    }

    #[test]
    fn dovecot_rules_override_the_default_per_resource() {
        let default = Quota {
            octets: Some(1 << 20),
            messages: Some(100),
        };
        let mut rule = QuotaRule::default();
        assert_eq!(rule.over(default), default);
        rule.add_dovecot_rule("*:storage=2M").unwrap();
        assert_eq!(
            rule.over(default),
            Quota {
                octets: Some(2 << 20),
                messages: Some(100)
            }
        );
        rule.add_dovecot_rule("*:messages=0:bytes=300").unwrap();
        assert_eq!(
            rule.over(default),
            Quota {
                octets: Some(300),
                messages: None
            }
        );
        assert!(rule.add_dovecot_rule("Trash:storage=+10M").is_err());
        assert!(rule.add_dovecot_rule("*:backend=x").is_err());
        assert!(rule.add_dovecot_rule("*:storage").is_err());
    }
}
