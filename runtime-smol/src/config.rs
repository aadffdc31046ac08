//! The TOML configuration: its shape, its defaults, and the checks that turn mistakes into
//! one-line errors naming the file, line and key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tern_core::Limits;

use crate::error::StartError;

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
    /// The folder relative paths are resolved against (the config file's folder).
    #[serde(skip)]
    pub base: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Storage {
    pub path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Server {
    /// The name in greetings.
    #[serde(default = "default_name")]
    pub name: String,
    pub tls: Option<TlsFiles>,
    #[serde(default)]
    pub listener: BTreeMap<String, Listener>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            name: default_name(),
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
    pub bind: Vec<SocketAddr>,
    pub protocol: ListenerProtocol,
    #[serde(default)]
    pub tls: ListenerTls,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ListenerProtocol {
    Imap,
    Pop3,
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
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            allow_plain_text: false,
            failure_delay: default_failure_delay(),
            max_failures: default_max_failures(),
        }
    }
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
    pub pop3_max_line: Option<usize>,
    pub max_buffered_input: Option<usize>,
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
    /// A write that makes no progress for this long drops the connection.
    #[serde(default = "default_send")]
    pub send: u64,
    /// How long shutdown waits for connections to finish their command and say goodbye.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            imap_autologout: default_autologout(),
            pop3_inactivity: default_pop3_inactivity(),
            send: default_send(),
            shutdown_grace: default_shutdown_grace(),
        }
    }
}

fn default_autologout() -> u64 {
    30 * 60
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Directory {
    #[serde(default)]
    pub users: Vec<User>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct User {
    pub name: String,
    /// A PHC string (`$argon2id$...`) or `{plain}text` for tests.
    pub secret: String,
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
            if listener.bind.is_empty() {
                return Err(invalid(format!(
                    "server.listener.\"{name}\".bind: at least one address is required"
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
            ("timeouts.imap-autologout", self.timeouts.imap_autologout),
            ("timeouts.pop3-inactivity", self.timeouts.pop3_inactivity),
            ("timeouts.send", self.timeouts.send),
        ] {
            if value == 0 {
                return Err(invalid(format!("{key}: must be at least 1 second")));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, user) in self.directory.users.iter().enumerate() {
            let key = format!("directory.users[{i}]");
            if !valid_account_name(&user.name) {
                return Err(invalid(format!(
                    "{key}.name: {:?} is not a valid account name (1-255 characters, no '/', \
                     whitespace or control characters)",
                    user.name
                )));
            }
            if !seen.insert(user.name.to_lowercase()) {
                return Err(invalid(format!(
                    "{key}.name: account {:?} is defined twice",
                    user.name
                )));
            }
            crate::directory::check_secret(&user.secret)
                .map_err(|why| invalid(format!("{key}.secret: {why}")))?;
        }
        Ok(())
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
        limits
    }
}

/// Account names end up in paths and protocol strings: keep them plain.
fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_whitespace() || c.is_control())
        && name != "."
        && name != ".."
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
    fn line_columns_are_one_based() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
