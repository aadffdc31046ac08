//! Operator metrics: counters and latency histograms kept by the connections and the backend,
//! served in the OpenMetrics text format (which Prometheus scrapes) by listeners with
//! `protocol = "metrics"`.
//!
//! Every label takes its values from a fixed set (protocols, command names the parsers know,
//! outcomes, the directory's accounts), never from client input, so the series stay few
//! whatever clients send (two per account for the store sizes, see `usage.rs`). A
//! scrape is one short HTTP/1.x exchange: `GET /metrics` answered and the connection closed.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use tern_core::store::AccountUsage;
use tern_core::{Completion, Protocol};

/// A request head longer than this is refused: a scraper sends a few hundred octets.
const MAX_REQUEST: usize = 8 * 1024;
/// A scrape not done by then (request read, answer written) is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes answered at once; more connections are closed at once.
const MAX_SCRAPES: usize = 8;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    protocol: &'static str,
    tls: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    protocol: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    protocol: &'static str,
    command: &'static str,
    result: &'static str,
}

/// An account of the directory (never a name a client typed).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandNameLabels {
    protocol: &'static str,
    command: &'static str,
}

/// How a login attempt ended, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginResult {
    /// Authenticated.
    Succeeded,
    /// Wrong credentials or unknown name.
    Failed,
    /// Turned away before any check: a blocked address or name, a connection limit, a
    /// passing condition.
    Refused,
}

impl LoginResult {
    fn as_str(self) -> &'static str {
        match self {
            LoginResult::Succeeded => "succeeded",
            LoginResult::Failed => "failed",
            LoginResult::Refused => "refused",
        }
    }
}

/// The server's metrics; one per process, shared by every connection.
pub struct Metrics {
    registry: Registry,
    connections: Family<ConnectionLabels, Counter>,
    open: Family<ProtocolLabels, Gauge>,
    refused: Family<ProtocolLabels, Counter>,
    logins: Family<LoginLabels, Counter>,
    commands: Family<CommandLabels, Counter>,
    command_seconds: Family<CommandNameLabels, Histogram>,
    storage_seconds: Histogram,
    deliveries: Counter,
    blocked_addresses: Gauge,
    blocked_accounts: Gauge,
    account_messages: Family<AccountLabels, Gauge>,
    account_octets: Family<AccountLabels, Gauge>,
    /// Serialises scrapes: the blocked gauges are set, then everything is encoded.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Imap => "imap",
        Protocol::Pop3 => "pop3",
        Protocol::Lmtp => "lmtp",
    }
}

/// Latency buckets from 100 µs to about 13 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tern");
        let connections = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "connections",
            "Connections accepted, by protocol and whether TLS started at once",
            connections.clone(),
        );
        let open = Family::<ProtocolLabels, Gauge>::default();
        registry.register("connections_open", "Connections open now", open.clone());
        let refused = Family::<ProtocolLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections turned away at accept (blocked address, connection limits)",
            refused.clone(),
        );
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register("logins", "Login attempts by how they ended", logins.clone());
        let commands = Family::<CommandLabels, Counter>::default();
        registry.register(
            "commands",
            "Commands answered, by name and result (ok, no, bad)",
            commands.clone(),
        );
        let command_seconds =
            Family::<CommandNameLabels, Histogram>::new_with_constructor(latency as fn() -> _);
        registry.register(
            "command_seconds",
            "Time from a command's arrival to its answer",
            command_seconds.clone(),
        );
        let storage_seconds = latency();
        registry.register(
            "storage_request_seconds",
            "Time a storage request took to be answered",
            storage_seconds.clone(),
        );
        let deliveries = Counter::default();
        registry.register(
            "lmtp_deliveries",
            "Messages delivered over LMTP, one per recipient",
            deliveries.clone(),
        );
        let blocked_addresses = Gauge::default();
        registry.register(
            "blocked_addresses",
            "Addresses (IPv6: /64 networks) blocked by the login defences now",
            blocked_addresses.clone(),
        );
        let blocked_accounts = Gauge::default();
        registry.register(
            "blocked_accounts",
            "Account names blocked by the login defences now (for untrusted addresses)",
            blocked_accounts.clone(),
        );
        let account_messages = Family::<AccountLabels, Gauge>::default();
        registry.register(
            "account_messages",
            "Messages stored per account, all mailboxes (read when the account changed; \
             accounts not read yet since start appear within a few scrapes)",
            account_messages.clone(),
        );
        let account_octets = Family::<AccountLabels, Gauge>::default();
        registry.register(
            "account_octets",
            "Octets stored per account: the sum of RFC822.SIZE over all mailboxes, a copy \
             counted in each mailbox, as quota counts",
            account_octets.clone(),
        );
        Metrics {
            registry,
            connections,
            open,
            refused,
            logins,
            commands,
            command_seconds,
            storage_seconds,
            deliveries,
            blocked_addresses,
            blocked_accounts,
            account_messages,
            account_octets,
            scrape: Mutex::new(()),
        }
    }

    /// A connection was accepted; the guard counts it open until dropped.
    pub fn connection(&self, protocol: Protocol, implicit_tls: bool) -> OpenConnection {
        let protocol = protocol_name(protocol);
        self.connections
            .get_or_create(&ConnectionLabels {
                protocol,
                tls: if implicit_tls { "implicit" } else { "none" },
            })
            .inc();
        let open = self
            .open
            .get_or_create(&ProtocolLabels { protocol })
            .clone();
        open.inc();
        OpenConnection(open)
    }

    /// A connection was turned away at accept.
    pub fn refused(&self, protocol: Protocol) {
        self.refused
            .get_or_create(&ProtocolLabels {
                protocol: protocol_name(protocol),
            })
            .inc();
    }

    pub fn login(&self, protocol: Protocol, result: LoginResult) {
        self.logins
            .get_or_create(&LoginLabels {
                protocol: protocol_name(protocol),
                result: result.as_str(),
            })
            .inc();
    }

    pub fn command(
        &self,
        protocol: Protocol,
        command: &'static str,
        result: Completion,
        took: Duration,
    ) {
        let protocol = protocol_name(protocol);
        self.commands
            .get_or_create(&CommandLabels {
                protocol,
                command,
                result: result.as_str(),
            })
            .inc();
        self.command_seconds
            .get_or_create(&CommandNameLabels { protocol, command })
            .observe(took.as_secs_f64());
    }

    /// A message stored for one LMTP recipient.
    pub fn delivered(&self) {
        self.deliveries.inc();
    }

    pub fn storage_request(&self, took: Duration) {
        self.storage_seconds.observe(took.as_secs_f64());
    }

    /// The metrics as OpenMetrics text, with the blocked counts (addresses, accounts) and
    /// the accounts' sizes as of now.
    pub fn render(&self, blocked: (usize, usize), sizes: &[(String, AccountUsage)]) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.blocked_addresses
            .set(i64::try_from(blocked.0).unwrap_or(i64::MAX));
        self.blocked_accounts
            .set(i64::try_from(blocked.1).unwrap_or(i64::MAX));
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (account, usage) in sizes {
            let labels = AccountLabels {
                account: account.clone(),
            };
            self.account_messages
                .get_or_create(&labels)
                .set(gauge(usage.messages));
            self.account_octets
                .get_or_create(&labels)
                .set(gauge(usage.octets));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts a connection open while it lives.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Answers scrapes on `listener` until the task is dropped. `render` makes the body.
pub async fn serve(
    listener: TcpListener,
    name: String,
    render: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
) {
    let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                use std::sync::atomic::Ordering;
                if running.fetch_add(1, Ordering::SeqCst) >= MAX_SCRAPES {
                    running.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
                let (render, running) = (render.clone(), running.clone());
                smol::spawn(async move {
                    // The whole exchange is bounded: a scraper that never reads the answer
                    // holds a task for the timeout, no longer.
                    let _ = answer(socket, render)
                        .or(async {
                            smol::Timer::after(REQUEST_TIMEOUT).await;
                            Err(std::io::ErrorKind::TimedOut.into())
                        })
                        .await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!(listener = %name, error = %e, "accept failed");
                smol::Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One HTTP/1.x exchange: the request head (bounded in size and time), then the answer.
async fn answer(
    mut socket: TcpStream,
    render: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<()> {
    let head = read_head(&mut socket).await?;
    // Rendering reads the store (the accounts' sizes): on the blocking pool.
    let (status, content_type, body) = smol::unblock(move || respond(&head, &*render)).await;
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(reply.as_bytes()).await?;
    socket.flush().await
}

/// Reads until the blank line ending the request head; refuses heads over [`MAX_REQUEST`].
async fn read_head(socket: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(head);
        }
        // Only the new octets (and the three before them) can complete the blank line.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        let fresh = head.get(from..).unwrap_or_default();
        if fresh.windows(4).any(|w| w == b"\r\n\r\n") || fresh.windows(2).any(|w| w == b"\n\n") {
            return Ok(head);
        }
        if head.len() > MAX_REQUEST {
            return Ok(head);
        }
    }
}

/// The status line, content type and body for a request head.
fn respond(
    head: &[u8],
    render: &(dyn Fn() -> String + Send + Sync),
) -> (&'static str, &'static str, String) {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line
        .split(|&b| b == b' ' || b == b'\r')
        .filter(|w| !w.is_empty());
    let (method, target) = (words.next(), words.next());
    let text = "text/plain; charset=utf-8";
    if head.len() > MAX_REQUEST {
        return (
            "431 Request Header Fields Too Large",
            text,
            "Request head too large.\n".into(),
        );
    }
    match (method, target) {
        (Some(b"GET"), Some(b"/metrics")) => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render(),
        ),
        (Some(b"GET"), Some(_)) => ("404 Not Found", text, "Try /metrics.\n".into()),
        (Some(_), Some(_)) => ("405 Method Not Allowed", text, "Only GET.\n".into()),
        _ => ("400 Bad Request", text, "Not an HTTP request.\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> String {
        "x 1\n".into()
    }

    #[test]
    fn only_get_metrics_is_answered_with_the_metrics() {
        let render = body;
        assert_eq!(
            respond(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &render).0,
            "200 OK"
        );
        assert_eq!(
            respond(b"GET / HTTP/1.1\r\n\r\n", &render).0,
            "404 Not Found"
        );
        assert_eq!(
            respond(b"POST /metrics HTTP/1.1\r\n\r\n", &render).0,
            "405 Method Not Allowed"
        );
        assert_eq!(respond(b"\r\n\r\n", &render).0, "400 Bad Request");
        let long = vec![b'a'; MAX_REQUEST + 1];
        assert!(respond(&long, &render).0.starts_with("431"));
    }

    /// Counters and histograms come out in the text format, labels from the fixed sets.
    #[test]
    fn what_is_counted_is_rendered() {
        let m = Metrics::new();
        let open = m.connection(Protocol::Imap, false);
        m.login(Protocol::Imap, LoginResult::Failed);
        m.command(
            Protocol::Imap,
            "FETCH",
            Completion::Ok,
            Duration::from_millis(3),
        );
        let sizes = [(
            "alice".to_string(),
            AccountUsage {
                messages: 3,
                octets: 1234,
            },
        )];
        let text = m.render((2, 1), &sizes);
        for line in [
            "tern_connections_total{protocol=\"imap\",tls=\"none\"} 1",
            "tern_connections_open{protocol=\"imap\"} 1",
            "tern_logins_total{protocol=\"imap\",result=\"failed\"} 1",
            "tern_commands_total{protocol=\"imap\",command=\"FETCH\",result=\"ok\"} 1",
            "tern_command_seconds_count{protocol=\"imap\",command=\"FETCH\"} 1",
            "tern_blocked_addresses 2",
            "tern_blocked_accounts 1",
            "tern_account_messages{account=\"alice\"} 3",
            "tern_account_octets{account=\"alice\"} 1234",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        drop(open);
        assert!(m
            .render((0, 0), &[])
            .lines()
            .any(|l| l == "tern_connections_open{protocol=\"imap\"} 0"));
    }
}
