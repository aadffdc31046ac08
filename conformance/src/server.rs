//! Finding, building and starting the `tern` binary on ephemeral loopback ports.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::net::Endpoints;
use crate::transcript::{Proto, Security, User};

/// How long the binary may take to print `tern is ready`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the binary is not available or did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `cargo build` failed and there is no binary from before.
    #[error("cannot build the tern binary ({command}):\n{output}")]
    Build {
        /// The command that was run.
        command: String,
        /// Its standard error.
        output: String,
    },
    /// The binary is not where it should be.
    #[error("no tern binary at {0} (set TERN_BIN to use another)")]
    Missing(PathBuf),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The server exited or stayed silent instead of becoming ready.
    #[error("tern did not become ready; its log:\n{log}")]
    NotReady {
        /// Its standard error.
        log: String,
    },
    /// An account the configuration cannot hold.
    #[error("account {0:?} cannot be written to a configuration file")]
    BadAccount(String),
}

/// The `tern` binary, built if needed.
///
/// `TERN_BIN` names a binary to use as it is. Otherwise this runs
/// `cargo build -p tern-smol --bin tern` in the workspace, with the profile and target folder
/// of the running executable (so `cargo test --release` tests a release server), and returns
/// `<target>/<profile>/tern`. Building every time rather than only when the file is missing
/// costs a fraction of a second when nothing changed, and never tests a stale server against
/// a fresh core. If cargo is unavailable, an existing binary is used as it is.
pub fn tern_binary() -> Result<PathBuf, ServerError> {
    if let Some(path) = std::env::var_os("TERN_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ServerError::Missing(path))
        };
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let (target_dir, profile) = target_dir_and_profile(&workspace);
    let binary = target_dir
        .join(&profile)
        .join(format!("tern{}", std::env::consts::EXE_SUFFIX));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--quiet", "-p", "tern-smol", "--bin", "tern"])
        .arg("--target-dir")
        .arg(&target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let described = format!("{command:?}");
    match command.stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) if !binary.is_file() => {
            return Err(ServerError::Build {
                command: described,
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
        Err(e) if !binary.is_file() => {
            return Err(ServerError::Build {
                command: described,
                output: e.to_string(),
            })
        }
        _ => eprintln!(
            "warning: `{described}` failed; using the existing {}",
            binary.display()
        ),
    }
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(ServerError::Missing(binary))
    }
}

/// The target folder and profile this executable was built into: test binaries live in
/// `<target>/<profile>/deps/`, `cargo run` binaries in `<target>/<profile>/`.
fn target_dir_and_profile(workspace: &Path) -> (PathBuf, String) {
    let fallback = (workspace.join("target"), "debug".to_string());
    let Ok(exe) = std::env::current_exe() else {
        return fallback;
    };
    let Some(mut dir) = exe.parent() else {
        return fallback;
    };
    if dir.file_name().is_some_and(|n| n == "deps") {
        let Some(parent) = dir.parent() else {
            return fallback;
        };
        dir = parent;
    }
    match (dir.parent(), dir.file_name()) {
        (Some(target), Some(profile)) if target.join("CACHEDIR.TAG").is_file() => {
            (target.to_path_buf(), profile.to_string_lossy().into_owned())
        }
        _ => fallback,
    }
}

/// A running `tern`; killed when dropped.
pub struct LocalServer {
    child: Child,
    dir: tempfile::TempDir,
    listeners: HashMap<String, SocketAddr>,
}

impl LocalServer {
    /// Starts `binary` with four listeners on loopback port 0 (IMAP, IMAPS, POP3, POP3S), the
    /// given accounts with `{plain}` secrets, and no failed-login delay: the delay is pacing,
    /// and the in-process runs check it on the virtual clock.
    pub fn start(binary: &Path, users: &[User]) -> Result<LocalServer, ServerError> {
        let dir = tempfile::tempdir().map_err(|source| ServerError::Io {
            what: "cannot create a temporary folder".into(),
            source,
        })?;
        let config = dir.path().join("tern.toml");
        std::fs::write(&config, config_text(users)?).map_err(|source| ServerError::Io {
            what: format!("cannot write {}", config.display()),
            source,
        })?;
        let log_path = dir.path().join("stderr.log");
        let log = std::fs::File::create(&log_path).map_err(|source| ServerError::Io {
            what: format!("cannot create {}", log_path.display()),
            source,
        })?;
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|source| ServerError::Io {
                what: format!("cannot start {}", binary.display()),
                source,
            })?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(ServerError::NotReady {
                log: "no standard output".into(),
            });
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = LocalServer {
            child,
            dir,
            listeners: HashMap::new(),
        };
        loop {
            let Ok(line) = rx.recv_timeout(START_TIMEOUT) else {
                return Err(ServerError::NotReady {
                    log: std::fs::read_to_string(&log_path).unwrap_or_default(),
                });
            };
            if line == "tern is ready" {
                return Ok(server);
            }
            // `listening NAME ADDR (mode)`
            let mut words = line.split(' ');
            if let (Some("listening"), Some(name), Some(addr)) =
                (words.next(), words.next(), words.next())
            {
                if let Ok(addr) = addr.parse() {
                    server.listeners.insert(name.to_string(), addr);
                }
            }
        }
    }

    /// The listeners by protocol and security.
    pub fn endpoints(&self) -> Endpoints {
        let mut map = HashMap::new();
        for (name, key) in [
            ("imap", (Proto::Imap, Security::Plain)),
            ("imaps", (Proto::Imap, Security::Tls)),
            ("pop3", (Proto::Pop3, Security::Plain)),
            ("pop3s", (Proto::Pop3, Security::Tls)),
        ] {
            if let Some(addr) = self.listeners.get(name) {
                map.insert(key, *addr);
            }
        }
        Endpoints(map)
    }

    /// The self-signed certificate the server generated.
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("data/tls/cert.pem")
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(users: &[User]) -> Result<String, ServerError> {
    let mut text = String::from(
        r#"[storage]
path = "data"

[server.listener."imap"]
bind = ["127.0.0.1:0"]
protocol = "imap"

[server.listener."imaps"]
bind = ["127.0.0.1:0"]
protocol = "imap"
tls.implicit = true

[server.listener."pop3"]
bind = ["127.0.0.1:0"]
protocol = "pop3"

[server.listener."pop3s"]
bind = ["127.0.0.1:0"]
protocol = "pop3"
tls.implicit = true

[auth]
failure-delay = 0
"#,
    );
    for user in users {
        let quote = |s: &str| -> Result<String, ServerError> {
            if s.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
                return Err(ServerError::BadAccount(user.name.clone()));
            }
            Ok(format!("\"{s}\""))
        };
        text.push_str(&format!(
            "\n[[directory.users]]\nname = {}\nsecret = {}\n",
            quote(&user.name)?,
            quote(&format!("{{plain}}{}", user.password))?
        ));
        if let Some(q) = user.quota {
            if let Some(kib) = q.storage_kib {
                text.push_str(&format!("quota-storage = \"{kib}\"\n"));
            }
            if let Some(messages) = q.messages {
                text.push_str(&format!("quota-messages = {messages}\n"));
            }
        }
    }
    if users.iter().any(|u| u.quota.is_some()) {
        text.push_str("\n[quota]\n");
    }
    Ok(text)
}

/// Starts servers from one binary: every run gets its own, so that what one transcript stores
/// (or a POP3 maildrop lock it leaves for a moment) cannot change the next.
pub struct ServerPool {
    binary: PathBuf,
}

impl ServerPool {
    /// A pool that starts `binary`.
    pub fn new(binary: PathBuf) -> ServerPool {
        ServerPool { binary }
    }

    /// A server of its own with these accounts.
    pub fn fresh(&self, users: &[User]) -> Result<LocalServer, ServerError> {
        LocalServer::start(&self.binary, users)
    }
}
