//! The TOML configuration: its shape, its defaults, and the checks that turn mistakes into
//! one-line errors naming the file, line and key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tern_core::store::{Quota, StoreLimits};
use tern_core::Limits;

use crate::error::StartError;
use crate::guard::GuardConfig;
use crate::limits::ConnectionLimitsConfig;
use crate::quota::{self, QuotaRule};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub storage: Storage,
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub directory: Directory,
    /// Quotas (RFC 9208); without this table there are none, and IMAP does not offer QUOTA.
    pub quota: Option<QuotaConfig>,
    /// The folder relative paths are resolved against (the config file's folder).
    #[serde(skip)]
    pub base: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Storage {
    /// The store's folder (also where a generated certificate goes).
    pub path: PathBuf,
    /// Which implementation of the storage contract holds the mail.
    #[serde(default)]
    pub backend: StorageBackend,
}

/// `[storage] backend`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageBackend {
    /// The embedded durable store: one SQLite database per account under `path`.
    #[default]
    Sqlite,
    /// Everything in memory, gone when the process ends: for tests and trying tern out.
    Memory,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Server {
    /// The name in greetings.
    #[serde(default = "default_name")]
    pub name: String,
    /// How to reach the administrator, a URI such as `mailto:postmaster@example.org`: IMAP's
    /// read-only METADATA server entry `/shared/admin` (RFC 5464 §3.2.1.1).
    pub admin: Option<String>,
    pub tls: Option<TlsFiles>,
    #[serde(default)]
    pub listener: BTreeMap<String, Listener>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            name: default_name(),
            admin: None,
            tls: None,
            listener: BTreeMap::new(),
        }
    }
}

fn default_name() -> String {
    "tern".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Listener {
    #[serde(default)]
    pub bind: Vec<SocketAddr>,
    /// A Unix socket to listen on (LMTP only: how an MTA on the same machine reaches a
    /// delivery agent). A stale socket file left by an earlier run is replaced.
    pub path: Option<PathBuf>,
    /// Permission bits of the Unix socket (TOML takes `0o660`), so that an MTA running as
    /// another user can connect; unset, the process umask decides.
    pub socket_mode: Option<u32>,
    pub protocol: ListenerProtocol,
    #[serde(default)]
    pub tls: ListenerTls,
    /// LMTP only: serve only peers on loopback (and the Unix socket). LMTP has no
    /// authentication, so anyone who can connect can deliver mail to every account.
    #[serde(default = "default_true")]
    pub local_only: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ListenerProtocol {
    Imap,
    Pop3,
    /// Delivery from an MTA (RFC 2033).
    Lmtp,
    /// Operator metrics over HTTP (`GET /metrics`), plain text only.
    Metrics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ListenerTls {
    /// TLS from the first byte (IMAPS 993, POP3S 995) rather than STARTTLS/STLS.
    #[serde(default)]
    pub implicit: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Auth {
    /// Allow LOGIN, USER/PASS and PLAIN on connections that are neither TLS nor loopback.
    #[serde(default)]
    pub allow_plain_text: bool,
    /// Seconds before a failed authentication is answered; doubles per further failure.
    #[serde(default = "default_failure_delay")]
    pub failure_delay: f64,
    /// Failed authentications before a connection is closed.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// Failed logins from one address (IPv6: one /64) within `failure-window` that block it
    /// for `block-duration`; 0 turns the counter off.
    #[serde(default = "default_ip_failure_limit")]
    pub ip_failure_limit: u32,
    /// Failed logins for one account name within `failure-window` that block it for
    /// addresses it has not seen log in successfully; 0 turns the counter off.
    #[serde(default = "default_account_failure_limit")]
    pub account_failure_limit: u32,
    /// Seconds of the sliding window failures are counted in.
    #[serde(default = "default_guard_seconds")]
    pub failure_window: u64,
    /// Seconds a block lasts.
    #[serde(default = "default_guard_seconds")]
    pub block_duration: u64,
    /// Password checks that run at once; 0: one per core.
    #[serde(default)]
    pub max_parallel_checks: usize,
    /// Password checks that may wait for one of those; more are refused at once as a
    /// temporary failure.
    #[serde(default = "default_check_queue")]
    pub check_queue: usize,
    /// Seconds a successful password check is remembered (keyed hash of name and password,
    /// never the password); 0 turns the cache off.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl: u64,
    /// Successful checks remembered at most; 0 turns the cache off.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
    /// Offer IMAP UNAUTHENTICATE (RFC 8437), by which a logged-in connection logs in again,
    /// perhaps as another user. RFC 8437 §8 asks for this switch: behind a proxy that checks
    /// only the first login and then passes bytes through, turn it off.
    #[serde(default = "default_true")]
    pub unauthenticate: bool,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            allow_plain_text: false,
            failure_delay: default_failure_delay(),
            max_failures: default_max_failures(),
            ip_failure_limit: default_ip_failure_limit(),
            account_failure_limit: default_account_failure_limit(),
            failure_window: default_guard_seconds(),
            block_duration: default_guard_seconds(),
            max_parallel_checks: 0,
            check_queue: default_check_queue(),
            cache_ttl: default_cache_ttl(),
            cache_size: default_cache_size(),
            unauthenticate: true,
        }
    }
}

/// About a second of waiting behind two cores hashing argon2id at its default cost.
fn default_check_queue() -> usize {
    64
}

/// Dovecot's `auth_cache_ttl` default: an hour.
fn default_cache_ttl() -> u64 {
    3600
}

/// Entries are about 100 bytes: a megabyte for ten thousand clients.
fn default_cache_size() -> usize {
    10_000
}

fn default_ip_failure_limit() -> u32 {
    GuardConfig::default().ip_limit
}

fn default_account_failure_limit() -> u32 {
    GuardConfig::default().account_limit
}

fn default_guard_seconds() -> u64 {
    GuardConfig::default().window.as_secs()
}

fn default_failure_delay() -> f64 {
    2.0
}

fn default_max_failures() -> u32 {
    3
}

/// Size bounds; defaults come from [`tern_core::Limits`], where each one's reason is given.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    pub imap_max_line: Option<usize>,
    pub imap_max_literal: Option<u64>,
    /// Advertise LITERAL- instead of LITERAL+ (RFC 7888 §5).
    pub imap_literal_minus: Option<bool>,
    pub pop3_max_line: Option<usize>,
    pub max_buffered_input: Option<usize>,
    /// Open connections in all; 0 for no limit. Defaults in [`ConnectionLimitsConfig`].
    pub max_connections: Option<usize>,
    /// Open connections from one address (IPv6: one /64); 0 for no limit.
    pub max_connections_per_ip: Option<usize>,
    /// Open connections that have not logged in; 0 for no limit.
    pub max_unauthenticated_connections: Option<usize>,
    /// Logged-in IMAP connections per account; 0 for no limit.
    pub imap_max_connections_per_account: Option<usize>,
    /// Logged-in POP3 connections per account; 0 for no limit.
    pub pop3_max_connections_per_account: Option<usize>,
    /// Mailboxes per account, `\Noselect` parents included. Defaults in
    /// [`tern_core::store::StoreLimits`].
    pub max_mailboxes: Option<usize>,
    /// Work units one SEARCH may spend before it is refused with `NO [LIMIT]`.
    pub search_work: Option<u64>,
    /// IMAP METADATA entries one account may hold in all.
    pub metadata_entries: Option<usize>,
}

/// Durations in seconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Timeouts {
    /// IMAP autologout; RFC 9051 §5.4 asks for at least 1800.
    #[serde(default = "default_autologout")]
    pub imap_autologout: u64,
    /// POP3 inactivity; RFC 1939 §3 asks for at least 600.
    #[serde(default = "default_pop3_inactivity")]
    pub pop3_inactivity: u64,
    /// Seconds between `* OK Still here` lines to an idling IMAP client.
    #[serde(default = "default_idle_keepalive")]
    pub idle_keepalive: u64,
    /// A write that makes no progress for this long drops the connection.
    #[serde(default = "default_send")]
    pub send: u64,
    /// How long shutdown waits for connections to finish their command and say goodbye.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace: u64,
    /// A TLS handshake (implicit TLS, STARTTLS, STLS) that has not finished by then drops the
    /// connection: a peer that opens one and sends nothing must not hold a connection slot.
    #[serde(default = "default_tls_handshake")]
    pub tls_handshake: u64,
    /// A connection that has not logged in this long after it opened is closed.
    #[serde(default = "default_login")]
    pub login: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            imap_autologout: default_autologout(),
            pop3_inactivity: default_pop3_inactivity(),
            idle_keepalive: default_idle_keepalive(),
            send: default_send(),
            shutdown_grace: default_shutdown_grace(),
            tls_handshake: default_tls_handshake(),
            login: default_login(),
        }
    }
}

fn default_login() -> u64 {
    Limits::default().login_timeout.as_secs()
}

fn default_tls_handshake() -> u64 {
    30
}
fn default_autologout() -> u64 {
    30 * 60
}
fn default_idle_keepalive() -> u64 {
    2 * 60
}
fn default_pop3_inactivity() -> u64 {
    10 * 60
}
fn default_send() -> u64 {
    5 * 60
}
fn default_shutdown_grace() -> u64 {
    10
}

/// `[quota]`: the default every account is held to (values as Dovecot's `quota_rule`, see
/// `quota.rs`); an account's own `quota-storage`/`quota-messages` (or passwd-file
/// `quota_rule`) replace it per resource.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QuotaConfig {
    /// STORAGE: kilobytes, or with a unit (`"1G"`); `"0"` or absent is no limit.
    pub storage: Option<String>,
    /// MESSAGE: a count; 0 or absent is no limit.
    pub messages: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Directory {
    #[serde(default)]
    pub users: Vec<User>,
    /// A Dovecot-style passwd-file with more accounts, re-read when it changes.
    pub passwd_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct User {
    pub name: String,
    /// A PHC string (`$argon2id$...`), another supported hash (see `passwords.rs`), or
    /// `{plain}text` for tests.
    pub secret: String,
    /// SCRAM-SHA-256 keys in RFC 5803 form (`tern hash-password --scram`), so the account can
    /// use SCRAM although its secret is a hash.
    pub scram: Option<String>,
    /// The account's STORAGE limit, replacing `[quota] storage` (same syntax).
    pub quota_storage: Option<String>,
    /// The account's MESSAGE limit, replacing `[quota] messages`.
    pub quota_messages: Option<u64>,
}

impl User {
    /// The account's own quota values, checked.
    pub fn quota_rule(&self) -> Result<QuotaRule, String> {
        Ok(QuotaRule {
            octets: self
                .quota_storage
                .as_deref()
                .map(|v| quota::parse_storage(v, 1024))
                .transpose()?,
            messages: self
                .quota_messages
                .map(|v| quota::parse_messages(&v.to_string()))
                .transpose()?,
        })
    }
}

impl Config {
    /// Reads, parses and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, StartError> {
        let text = std::fs::read_to_string(path).map_err(|e| StartError::ReadConfig {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut config = Self::parse(&text, path)?;
        config.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.check(path)?;
        Ok(config)
    }

    fn parse(text: &str, path: &Path) -> Result<Config, StartError> {
        toml::from_str::<Config>(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((0, 0));
            StartError::Config {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().replace('\n', " "),
            }
        })
    }

    fn check(&self, path: &Path) -> Result<(), StartError> {
        let invalid = |message: String| StartError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if self.server.listener.is_empty() {
            return Err(invalid("no [server.listener.NAME] is configured".into()));
        }
        for (name, listener) in &self.server.listener {
            let lmtp = listener.protocol == ListenerProtocol::Lmtp;
            if listener.bind.is_empty() && listener.path.is_none() {
                return Err(invalid(format!(
                    "server.listener.\"{name}\".bind: at least one address is required{}",
                    if lmtp { " (or a Unix socket path)" } else { "" }
                )));
            }
            if listener.path.is_some() && !lmtp {
                return Err(invalid(format!(
                    "server.listener.\"{name}\".path: a Unix socket is only for protocol = \"lmtp\""
                )));
            }
            if listener.socket_mode.is_some_and(|m| m > 0o777) {
                return Err(invalid(format!(
                    "server.listener.\"{name}\".socket-mode: permission bits only (at most 0o777)"
                )));
            }
            if listener.socket_mode.is_some() && listener.path.is_none() {
                return Err(invalid(format!(
                    "server.listener.\"{name}\".socket-mode: needs a socket path"
                )));
            }
            if lmtp && listener.tls.implicit {
                return Err(invalid(format!(
                    "server.listener.\"{name}\".tls.implicit: LMTP is served without TLS"
                )));
            }
            if listener.protocol == ListenerProtocol::Metrics && listener.tls.implicit {
                return Err(invalid(format!(
                    "server.listener.\"{name}\".tls: the metrics listener speaks plain HTTP \
                     (keep it on loopback or behind a proxy that adds TLS)"
                )));
            }
        }
        if self.auth.failure_delay.is_nan() || !(0.0..=60.0).contains(&self.auth.failure_delay) {
            return Err(invalid(
                "auth.failure-delay: must be between 0 and 60 seconds".into(),
            ));
        }
        if self.auth.max_failures == 0 {
            return Err(invalid("auth.max-failures: must be at least 1".into()));
        }
        for (key, value) in [
            ("auth.failure-window", self.auth.failure_window),
            ("auth.block-duration", self.auth.block_duration),
        ] {
            if value == 0 {
                return Err(invalid(format!("{key}: must be at least 1 second")));
            }
        }
        for (key, value) in [
            ("timeouts.imap-autologout", self.timeouts.imap_autologout),
            ("timeouts.pop3-inactivity", self.timeouts.pop3_inactivity),
            ("timeouts.idle-keepalive", self.timeouts.idle_keepalive),
            ("timeouts.send", self.timeouts.send),
            ("timeouts.tls-handshake", self.timeouts.tls_handshake),
            ("timeouts.login", self.timeouts.login),
        ] {
            if value == 0 {
                return Err(invalid(format!("{key}: must be at least 1 second")));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, user) in self.directory.users.iter().enumerate() {
            let key = format!("directory.users[{i}]");
            crate::directory::check_name(&user.name)
                .map_err(|why| invalid(format!("{key}.name: {why}")))?;
            crate::directory::check_secret(&user.secret)
                .map_err(|why| invalid(format!("{key}.secret: {why}")))?;
            let account = crate::directory::Account::new(&user.name, &user.secret)
                .map_err(|why| invalid(format!("{key}: {why}")))?;
            if let Some(record) = &user.scram {
                account
                    .with_scram(record)
                    .map_err(|why| invalid(format!("{key}.scram: {why}")))?;
            }
            // Names that differ only in case or Unicode spelling are one account.
            let lookup = tern_core::sasl::username_key(&user.name)
                .map_err(|why| invalid(format!("{key}.name: {why}")))?;
            if !seen.insert(lookup) {
                return Err(invalid(format!(
                    "{key}.name: account {:?} is defined twice",
                    user.name
                )));
            }
            let rule = user
                .quota_rule()
                .map_err(|why| invalid(format!("{key}: {why}")))?;
            if rule != QuotaRule::default() && self.quota.is_none() {
                return Err(invalid(format!(
                    "{key}: a quota needs a [quota] table (it may be empty)"
                )));
            }
        }
        self.quota_default().map_err(invalid)?;
        Ok(())
    }

    /// The quota every account is held to unless it has its own values; `None` without a
    /// `[quota]` table (no quotas at all).
    pub fn quota_default(&self) -> Result<Option<Quota>, String> {
        let Some(q) = &self.quota else {
            return Ok(None);
        };
        let octets = match &q.storage {
            Some(v) => quota::parse_storage(v, 1024).map_err(|e| format!("quota.storage: {e}"))?,
            None => None,
        };
        let messages = match q.messages {
            Some(v) => {
                quota::parse_messages(&v.to_string()).map_err(|e| format!("quota.messages: {e}"))?
            }
            None => None,
        };
        Ok(Some(Quota { octets, messages }))
    }

    /// Resolves a configured path against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }

    /// The storage folder.
    pub fn storage_path(&self) -> PathBuf {
        self.resolve(&self.storage.path)
    }

    /// The passwd-file, resolved against the config file's folder.
    pub fn passwd_file(&self) -> Option<PathBuf> {
        self.directory
            .passwd_file
            .as_deref()
            .map(|p| self.resolve(p))
    }

    /// The failed-login counters' settings.
    pub fn guard(&self) -> GuardConfig {
        GuardConfig {
            ip_limit: self.auth.ip_failure_limit,
            account_limit: self.auth.account_failure_limit,
            window: Duration::from_secs(self.auth.failure_window),
            block: Duration::from_secs(self.auth.block_duration),
        }
    }

    /// The connection limits.
    pub fn connection_limits(&self) -> ConnectionLimitsConfig {
        let mut limits = ConnectionLimitsConfig::default();
        let l = &self.limits;
        if let Some(v) = l.max_connections {
            limits.total = v;
        }
        if let Some(v) = l.max_connections_per_ip {
            limits.per_ip = v;
        }
        if let Some(v) = l.max_unauthenticated_connections {
            limits.unauthenticated = v;
        }
        if let Some(v) = l.imap_max_connections_per_account {
            limits.imap_per_account = v;
        }
        if let Some(v) = l.pop3_max_connections_per_account {
            limits.pop3_per_account = v;
        }
        limits
    }

    /// The store's bounds this configuration asks for.
    pub fn store_limits(&self) -> StoreLimits {
        let mut limits = StoreLimits::default();
        if let Some(v) = self.limits.max_mailboxes {
            limits.max_mailboxes = v;
        }
        if let Some(v) = self.limits.search_work {
            limits.search_work = v;
        }
        if let Some(v) = self.limits.metadata_entries {
            limits.metadata_entries = v;
        }
        limits
    }

    /// The session limits this configuration asks for.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        let l = &self.limits;
        if let Some(v) = l.imap_max_line {
            limits.imap_max_line = v;
        }
        if let Some(v) = l.imap_max_literal {
            limits.imap_max_literal = v;
        }
        if let Some(v) = l.imap_literal_minus {
            limits.imap_literal_minus = v;
        }
        if let Some(v) = l.pop3_max_line {
            limits.pop3_max_line = v;
        }
        if let Some(v) = l.max_buffered_input {
            limits.max_buffered_input = v;
        }
        limits.auth_failure_delay = Duration::from_secs_f64(self.auth.failure_delay);
        limits.max_auth_failures = self.auth.max_failures;
        limits.imap_autologout = Duration::from_secs(self.timeouts.imap_autologout);
        limits.pop3_inactivity = Duration::from_secs(self.timeouts.pop3_inactivity);
        limits.imap_idle_keepalive = Duration::from_secs(self.timeouts.idle_keepalive);
        limits.login_timeout = Duration::from_secs(self.timeouts.login);
        limits
    }

    /// The failure counters, the password-check pool and the cache of successful checks.
    pub fn login_checks(&self) -> crate::backend::LoginChecks {
        let threads = match self.auth.max_parallel_checks {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        crate::backend::LoginChecks {
            guard: crate::guard::AuthGuard::new(self.guard()),
            pool: crate::checks::CheckPool::new(threads, self.auth.check_queue),
            cache: crate::auth_cache::AuthCache::new(
                Duration::from_secs(self.auth.cache_ttl),
                self.auth.cache_size,
            ),
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// The configuration `tern` writes on first start: the four standard listeners on loopback,
/// the store under `./data`, and one account.
pub fn starter(demo_secret: &str) -> String {
    format!(
        r#"# tern configuration, written on first start. See README.md for every key.

[storage]
path = "data"                 # relative paths are relative to this file

# Without [server.tls], a self-signed certificate is generated under the storage folder.
# [server.tls]
# certificate = "tls/cert.pem"
# private-key = "tls/key.pem"

[server.listener."imap"]
bind = ["127.0.0.1:1143"]
protocol = "imap"

[server.listener."imaps"]
bind = ["127.0.0.1:1993"]
protocol = "imap"
tls.implicit = true

[server.listener."pop3"]
bind = ["127.0.0.1:1110"]
protocol = "pop3"

[server.listener."pop3s"]
bind = ["127.0.0.1:1995"]
protocol = "pop3"
tls.implicit = true

[[directory.users]]
name = "demo"
secret = "{demo_secret}"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, StartError> {
        let config = Config::parse(text, Path::new("t.toml"))?;
        config.check(Path::new("t.toml"))?;
        Ok(config)
    }

    #[test]
    fn the_starter_config_is_valid() {
        let c = parse(&starter("{plain}pw")).unwrap();
        assert_eq!(c.server.listener.len(), 4);
        assert!(c.server.listener["imaps"].tls.implicit);
        assert_eq!(c.server.listener["pop3"].protocol, ListenerProtocol::Pop3);
        assert_eq!(c.limits().imap_autologout, Duration::from_secs(1800));
        assert!(!c.limits().imap_literal_minus);
        let c = parse(&starter("{plain}pw").replace(
            "[storage]",
            "[limits]\nimap-literal-minus = true\n[storage]",
        ))
        .unwrap();
        assert!(c.limits().imap_literal_minus);
    }

    #[test]
    fn quotas_come_from_the_quota_table_and_per_user_values() {
        let base = starter("{plain}pw");
        // No [quota]: no quotas, and QUOTA is not offered.
        assert_eq!(parse(&base).unwrap().quota_default(), Ok(None));
        let c = parse(&format!("{base}\n[quota]\n")).unwrap();
        assert_eq!(c.quota_default(), Ok(Some(Quota::default())));
        let c = parse(&format!(
            "{base}\n[quota]\nstorage = \"1G\"\nmessages = 5000\n"
        ))
        .unwrap();
        assert_eq!(
            c.quota_default(),
            Ok(Some(Quota {
                octets: Some(1 << 30),
                messages: Some(5000)
            }))
        );
        let user = "[[directory.users]]\nname = \"b\"\nsecret = \"{plain}x\"\n";
        let c = parse(&format!(
            "{base}\n{user}quota-storage = \"512\"\nquota-messages = 0\n[quota]\n"
        ))
        .unwrap();
        let rule = c.directory.users.last().unwrap().quota_rule().unwrap();
        assert_eq!(
            rule.over(Quota {
                octets: Some(1),
                messages: Some(1)
            }),
            Quota {
                octets: Some(512 * 1024),
                messages: None
            }
        );
        for (bad, why) in [
            (
                format!("{base}\n[quota]\nstorage = \"1X\"\n"),
                "unknown unit",
            ),
            (
                format!("{base}\n{user}quota-storage = \"1G\"\n"),
                "needs a [quota] table",
            ),
            (
                format!("{base}\n{user}quota-storage = \"-1\"\n[quota]\n"),
                "not a number",
            ),
        ] {
            let e = parse(&bad).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn lmtp_listeners_take_a_socket_path_and_are_local_only_by_default() {
        let base = "[storage]\npath = \"d\"\n[server.listener.x]\n";
        let c = parse(&format!(
            "{base}path = \"lmtp.sock\"\nprotocol = \"lmtp\"\n"
        ))
        .unwrap();
        let l = &c.server.listener["x"];
        assert_eq!(l.protocol, ListenerProtocol::Lmtp);
        assert!(l.local_only && l.bind.is_empty());
        let c = parse(&format!(
            "{base}path = \"s\"\nsocket-mode = 0o660\nprotocol = \"lmtp\"\n"
        ))
        .unwrap();
        assert_eq!(c.server.listener["x"].socket_mode, Some(0o660));
        let c = parse(&format!(
            "{base}bind = [\"127.0.0.1:1\"]\nprotocol = \"lmtp\"\nlocal-only = false\n"
        ))
        .unwrap();
        assert!(!c.server.listener["x"].local_only);
        for (bad, why) in [
            (
                "path = \"s\"\nprotocol = \"imap\"\n",
                "only for protocol = \"lmtp\"",
            ),
            ("protocol = \"lmtp\"\n", "or a Unix socket path"),
            (
                "path = \"s\"\nprotocol = \"lmtp\"\ntls.implicit = true\n",
                "served without TLS",
            ),
            (
                "path = \"s\"\nsocket-mode = 0o4777\nprotocol = \"lmtp\"\n",
                "at most 0o777",
            ),
        ] {
            let e = parse(&format!("{base}{bad}")).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn unauthenticate_is_offered_unless_turned_off() {
        let base = "[storage]\npath = \"d\"\n[server.listener.x]\nbind = [\"127.0.0.1:1\"]\nprotocol = \"imap\"\n";
        assert!(parse(base).unwrap().auth.unauthenticate);
        let c = parse(&format!("{base}[auth]\nunauthenticate = false\n")).unwrap();
        assert!(!c.auth.unauthenticate);
    }

    #[test]
    fn errors_name_line_and_key() {
        let base = "[storage]\npath = \"d\"\n[server.listener.x]\nbind = [\"127.0.0.1:1\"]\nprotocol = \"imap\"\n";
        let e = parse(&format!("{base}bogus = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml:6:1: unknown field `bogus`"), "{e}");
        assert!(!e.contains('\n'));
        let e = parse("[storage]\npath = 5\n").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:2:8: invalid type"), "{e}");
        let e = parse(&base.replace("imap\"", "smtp\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.toml:5:") && e.contains("unknown variant `smtp`"),
            "{e}"
        );
        let e = parse(&base.replace("127.0.0.1:1", "localhost"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.toml:4:") && e.contains("socket address"),
            "{e}"
        );
        let e = parse(&format!(
            "{base}[[directory.users]]\nname = \"a b\"\nsecret = \"{{plain}}x\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("directory.users[0].name"), "{e}");
        let e = parse(&format!(
            "{base}[[directory.users]]\nname = \"a\"\nsecret = \"md5:x\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("directory.users[0].secret"), "{e}");
        let e = parse("[storage]\npath = \"d\"\n").unwrap_err().to_string();
        assert!(e.contains("no [server.listener.NAME]"), "{e}");
    }

    #[test]
    fn defence_keys_have_safe_defaults_and_can_be_set() {
        let c = parse(&starter("{plain}pw")).unwrap();
        assert_eq!(c.guard(), GuardConfig::default());
        assert_eq!(c.connection_limits(), ConnectionLimitsConfig::default());
        assert_eq!(c.store_limits(), StoreLimits::default());
        assert_eq!(c.passwd_file(), None);
        let text = starter("{plain}pw").replace(
            "[storage]",
            "[auth]\nip-failure-limit = 3\naccount-failure-limit = 0\nfailure-window = 60\n\
             block-duration = 120\n[limits]\nmax-connections = 10\nmax-connections-per-ip = 2\n\
             max-unauthenticated-connections = 5\n\
             imap-max-connections-per-account = 4\npop3-max-connections-per-account = 0\n\
             max-mailboxes = 50\nsearch-work = 1000\nmetadata-entries = 20\n\
             [directory]\npasswd-file = \"users\"\n[storage]",
        );
        let c = parse(&text).unwrap();
        assert_eq!(
            c.guard(),
            GuardConfig {
                ip_limit: 3,
                account_limit: 0,
                window: Duration::from_secs(60),
                block: Duration::from_secs(120),
            }
        );
        assert_eq!(
            c.connection_limits(),
            ConnectionLimitsConfig {
                total: 10,
                per_ip: 2,
                unauthenticated: 5,
                imap_per_account: 4,
                pop3_per_account: 0,
            }
        );
        assert_eq!(c.passwd_file(), Some(PathBuf::from("users")));
        assert_eq!(
            c.store_limits(),
            StoreLimits {
                max_mailboxes: 50,
                search_work: 1000,
                metadata_entries: 20,
            }
        );
    }

    #[test]
    fn account_errors_name_the_key() {
        let base = "[storage]\npath = \"d\"\n[server.listener.x]\nbind = [\"127.0.0.1:1\"]\nprotocol = \"imap\"\n";
        for (extra, expected) in [
            (
                "[[directory.users]]\nname = \"a\"\nsecret = \"{MD5-CRYPT}$1$x$y\"\n",
                "directory.users[0].secret: unsupported password scheme {MD5-CRYPT}",
            ),
            (
                "[[directory.users]]\nname = \"a\"\nsecret = \"$6$salt$x\"\n",
                "directory.users[0].secret: not a valid SHA512-CRYPT value",
            ),
            (
                "[[directory.users]]\nname = \"a\"\nsecret = \"{plain}x\"\nscram = \"SCRAM-SHA-256$1:x$y:z\"\n",
                "directory.users[0].scram: ",
            ),
            (
                "[[directory.users]]\nname = \"Bob\"\nsecret = \"{plain}x\"\n\
                 [[directory.users]]\nname = \"BOB\"\nsecret = \"{plain}y\"\n",
                "directory.users[1].name: account \"BOB\" is defined twice",
            ),
            (
                "[[directory.users]]\nname = \"\\u2168\"\nsecret = \"{plain}x\"\n",
                "directory.users[0].name: account name \"\u{2168}\" is not in SASLprep normal form",
            ),
            (
                "[auth]\nfailure-window = 0\n",
                "auth.failure-window: must be at least 1 second",
            ),
        ] {
            let e = parse(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(e.contains(expected), "{extra}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn line_columns_are_one_based() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
