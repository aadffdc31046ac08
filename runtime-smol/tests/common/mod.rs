//! Starts the real `tern` binary on ephemeral loopback ports for end-to-end tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_tern");

/// The standard four listeners on port 0, a `{plain}` account and extra TOML.
pub fn config_text(extra: &str) -> String {
    format!(
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

[[directory.users]]
name = "alice"
secret = "{{plain}}wonderland"

{extra}
"#
    )
}

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub ports: HashMap<String, SocketAddr>,
    stderr: PathBuf,
}

impl Server {
    pub fn start(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tern.toml");
        std::fs::write(&config, config_text(extra)).unwrap();
        Self::start_with(dir, &config)
    }

    pub fn start_with(dir: tempfile::TempDir, config: &Path) -> Server {
        let stderr = dir.path().join("stderr.log");
        // TERN_TEST_BIN runs the tests against another build (say, to show one fails there).
        let bin = std::env::var_os("TERN_TEST_BIN").unwrap_or_else(|| BIN.into());
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut ports = HashMap::new();
        loop {
            let line = match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "server did not become ready; stderr:\n{}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    );
                }
            };
            if line == "tern is ready" {
                break;
            }
            if let Some(rest) = line.strip_prefix("listening ") {
                let mut parts = rest.split(' ');
                let name = parts.next().unwrap().to_string();
                // Unix-socket listeners print a path instead.
                if let Ok(addr) = parts.next().unwrap().parse::<SocketAddr>() {
                    ports.insert(name, addr);
                }
            }
        }
        Server {
            child,
            dir,
            ports,
            stderr,
        }
    }

    pub fn port(&self, listener: &str) -> u16 {
        self.ports[listener].port()
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("data/tls/cert.pem")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain TCP client with bounded reads.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects from another loopback address (127.0.0.2, …), which the server counts as
    /// another client address.
    pub fn connect_from(source: &str, port: u16) -> Client {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let source: SocketAddr = format!("{source}:0").parse().unwrap();
        socket.bind(&source.into()).unwrap();
        let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        socket.connect(&target.into()).unwrap();
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, data: &str) {
        self.stream.write_all(data.as_bytes()).unwrap();
    }

    /// Sends raw bytes, reporting failure (the server may have closed the connection).
    pub fn try_send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(data)
    }

    /// Reads one line (CRLF stripped); `None` at EOF.
    pub fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let s = String::from_utf8_lossy(&line);
                return Some(s.trim_end_matches(['\r', '\n']).to_string());
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Reads exactly `n` octets (after any buffered ones).
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut out: Vec<u8> = self.buf.drain(..n.min(self.buf.len())).collect();
        let mut rest = vec![0u8; n - out.len()];
        self.stream.read_exact(&mut rest).unwrap();
        out.extend_from_slice(&rest);
        out
    }

    /// Reads lines until the tagged one of `tag`; returns it.
    pub fn tagged(&mut self, tag: &str) -> Option<String> {
        loop {
            let line = self.line()?;
            if line.starts_with(&format!("{tag} ")) {
                return Some(line);
            }
        }
    }

    /// Whether the server closed the connection (EOF within the read timeout).
    pub fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(self.stream.read(&mut chunk), Ok(0) | Err(_))
    }
}

/// A kilobyte-resolution figure from `/proc/PID/status` (`VmRSS:`, `VmHWM:`, `Threads:`).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in /proc/{pid}/status"))
}

/// What `tern hash-password` prints for `password` on its standard input (trimmed), as an
/// operator would make a secret.
pub fn hash_password(password: &str) -> String {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Whether a program is on PATH; tests that need it print why they skip otherwise.
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs a Python script with arguments; panics with its output when it fails.
pub fn python(script: &str, args: &[String]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "python failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Postfix's `master.cf` for a private instance: SMTP on one loopback port, no chroot.
const POSTFIX_MASTER: &str = "\
PORT inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
";

/// Postfix from Debian's packages with its own configuration and queue, SMTP on a loopback
/// port, logging to a file; stopped when dropped.
pub struct Postfix {
    dir: tempfile::TempDir,
    conf: PathBuf,
    master: Child,
    pub smtp_port: u16,
}

impl Postfix {
    const BIN: &'static str = "/usr/sbin/postfix";

    /// Whether Postfix is installed and this runs as root (its daemons change user).
    pub fn available() -> bool {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        root && Path::new(Self::BIN).exists()
    }

    /// Starts it with `main_extra` appended to main.cf and `master_extra` to master.cf.
    pub fn start(main_extra: &str, master_extra: &str) -> Postfix {
        let dir = tempfile::tempdir().unwrap();
        let pf = dir.path();
        // Postfix's daemons run as user postfix: it must reach its directories.
        let run = |cmd: &mut Command| assert!(cmd.status().unwrap().success(), "{cmd:?}");
        run(Command::new("chmod").arg("755").arg(pf));
        for sub in ["conf", "queue", "data"] {
            std::fs::create_dir(pf.join(sub)).unwrap();
        }
        run(Command::new("chown").arg("postfix").arg(pf.join("data")));
        let smtp_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let main_cf = format!(
            "compatibility_level = 3.6\nqueue_directory = {q}\ndata_directory = {d}\n\
             mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\nmyhostname = mx.test\nmydestination =\n\
             mynetworks = 127.0.0.0/8\n\
             maillog_file = /dev/stdout\nalias_maps =\nalias_database =\n\
             smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
             {main_extra}",
            q = pf.join("queue").display(),
            d = pf.join("data").display(),
        );
        std::fs::write(pf.join("conf/main.cf"), main_cf).unwrap();
        std::fs::write(
            pf.join("conf/master.cf"),
            POSTFIX_MASTER.replace("PORT", &format!("127.0.0.1:{smtp_port}")) + master_extra,
        )
        .unwrap();
        let conf = pf.join("conf");
        let log = std::fs::File::create(pf.join("postfix.log")).unwrap();
        // `start-fg` logs to standard output (maillog_file); a background `start` needs syslog.
        let master = Command::new(Self::BIN)
            .arg("-c")
            .arg(&conf)
            .arg("start-fg")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let postfix = Postfix {
            dir,
            conf,
            master,
            smtp_port,
        };
        let listening = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            TcpStream::connect(("127.0.0.1", smtp_port)).is_ok()
        });
        assert!(listening, "Postfix did not start:\n{}", postfix.log());
        postfix
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// Runs `f`; if it panics, panics again with Postfix's log.
    pub fn check<T>(&self, f: impl FnOnce() -> T + std::panic::UnwindSafe) -> T {
        std::panic::catch_unwind(f).unwrap_or_else(|_| panic!("Postfix log:\n{}", self.log()))
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(Self::BIN)
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .status();
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}
