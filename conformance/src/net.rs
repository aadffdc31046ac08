//! Runs transcripts over TCP (and TLS) against a real server: the `tern` binary or another one.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use crate::runner::{Received, Target, TargetError};
use crate::transcript::{Proto, Security, Setup, Transcript};
use crate::wire;

/// How long `@silent` and the end-of-transcript check listen for stray output. Loopback answers
/// in well under a millisecond; this only has to catch output that is already on its way.
const QUIET_WAIT: Duration = Duration::from_millis(50);

/// Where each kind of listener is.
#[derive(Clone, Debug, Default)]
pub struct Endpoints(pub HashMap<(Proto, Security), SocketAddr>);

/// How the TLS client decides to trust the server.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Certificates from a PEM file (the binary's generated `tls/cert.pem`, or `--ca`).
    Pem(std::path::PathBuf),
    /// Accept any certificate (`--insecure`, for test servers with self-signed certificates).
    Insecure,
    /// Trust nothing: a handshake fails, saying why (plaintext remote runs without `--ca`).
    Nothing,
}

/// Builds the TLS client configuration.
pub fn tls_config(trust: &Trust) -> Result<Arc<ClientConfig>, TargetError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TargetError::Tls(e.to_string()))?;
    let config = match trust {
        Trust::Pem(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| TargetError::Tls(format!("{}: {e}", path.display())))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| TargetError::Tls(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| TargetError::Tls(format!("{}: {e}", path.display())))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Nothing => builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Checks signatures (so the handshake is real) but not who signed the certificate.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

struct NetConn {
    stream: Option<Stream>,
    buf: Vec<u8>,
    imap: bool,
    eof: bool,
}

impl NetConn {
    /// Reads what arrives within `wait`; false if nothing did.
    fn fill(&mut self, wait: Duration) -> Result<bool, TargetError> {
        let Some(stream) = self.stream.as_mut() else {
            self.eof = true;
            return Ok(true);
        };
        let io = |source| TargetError::Io {
            what: "cannot read",
            source,
        };
        stream
            .tcp()
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(io)?;
        let mut chunk = [0u8; 16 * 1024];
        let read = match stream {
            Stream::Plain(s) => s.read(&mut chunk),
            Stream::Tls(s) => s.read(&mut chunk),
        };
        match read {
            Ok(0) => {
                self.eof = true;
                Ok(true)
            }
            Ok(n) => {
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            // A reset after the server's last word, or TLS without close_notify, still ends it.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::UnexpectedEof
                ) =>
            {
                self.eof = true;
                Ok(true)
            }
            Err(e) => Err(io(e)),
        }
    }
}

impl NetConn {
    /// The next complete unit, waiting at most `timeout`.
    fn next_unit(&mut self, timeout: Duration) -> Result<Received, TargetError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(unit) = wire::take_unit(&mut self.buf, self.imap) {
                return Ok(Received::Unit(unit));
            }
            if self.eof {
                return Ok(Received::Closed {
                    partial: std::mem::take(&mut self.buf),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TargetError::Timeout(timeout));
            }
            self.fill(left)?;
        }
    }

    fn send(&mut self, data: &[u8]) -> Result<(), TargetError> {
        let io = |source| TargetError::Io {
            what: "cannot send",
            source,
        };
        match self.stream.as_mut() {
            Some(Stream::Plain(s)) => s.write_all(data).and_then(|()| s.flush()).map_err(io),
            Some(Stream::Tls(s)) => s.write_all(data).and_then(|()| s.flush()).map_err(io),
            None => Err(TargetError::Closed),
        }
    }
}

/// Connections over the network to one server.
pub struct Net {
    endpoints: Endpoints,
    security: Security,
    tls: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    timeout: Duration,
    credentials: Option<(String, String)>,
    conns: Vec<Option<NetConn>>,
}

impl Net {
    /// A target for `endpoints`, connections secured as `security` says. `server_name` is what
    /// the certificate must name; `credentials` replace the transcript's account (remote runs,
    /// which then also skip transcripts that need more than one account).
    pub fn new(
        endpoints: Endpoints,
        security: Security,
        tls: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        timeout: Duration,
        credentials: Option<(String, String)>,
    ) -> Net {
        Net {
            endpoints,
            security,
            tls,
            server_name,
            timeout,
            credentials,
            conns: Vec::new(),
        }
    }

    fn conn(&mut self, conn: usize) -> Result<&mut NetConn, TargetError> {
        self.conns
            .get_mut(conn)
            .and_then(Option::as_mut)
            .ok_or(TargetError::Closed)
    }

    fn connect(&self, protocol: Proto) -> Result<NetConn, TargetError> {
        let Some(addr) = self.endpoints.0.get(&(protocol, self.security)).copied() else {
            return Err(TargetError::Unsupported(format!(
                "no {} endpoint over {}",
                protocol.name(),
                self.security.name()
            )));
        };
        let tcp =
            TcpStream::connect_timeout(&addr, self.timeout).map_err(|source| TargetError::Io {
                what: "cannot connect",
                source,
            })?;
        // Each C: line should leave as its own segment, as a client's writes would.
        let _ = tcp.set_nodelay(true);
        let stream = match self.security {
            Security::Plain => Stream::Plain(tcp),
            Security::Tls => self.handshake(tcp)?,
        };
        Ok(NetConn {
            stream: Some(stream),
            buf: Vec::new(),
            imap: protocol == Proto::Imap,
            eof: false,
        })
    }

    fn handshake(&self, tcp: TcpStream) -> Result<Stream, TargetError> {
        let client = ClientConnection::new(self.tls.clone(), self.server_name.clone())
            .map_err(|e| TargetError::Tls(e.to_string()))?;
        let mut tls = StreamOwned::new(client, tcp);
        tls.sock
            .set_read_timeout(Some(self.timeout))
            .map_err(|source| TargetError::Io {
                what: "cannot set a timeout",
                source,
            })?;
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| TargetError::Tls(e.to_string()))?;
        }
        Ok(Stream::Tls(Box::new(tls)))
    }
}

impl Target for Net {
    fn skip_reason(&self, transcript: &Transcript) -> Option<String> {
        if transcript.uses_clock() {
            return Some("uses @advance; only the in-process runner has a virtual clock".into());
        }
        if self.credentials.is_some() && !transcript.setup.is_empty() {
            return Some(
                "pre-loads mailboxes or messages, which needs an empty account of its own".into(),
            );
        }
        if self.credentials.is_some() && transcript.users.len() > 1 {
            return Some(format!(
                "needs {} accounts; a remote run has one",
                transcript.users.len()
            ));
        }
        for c in &transcript.connections {
            if !self.endpoints.0.contains_key(&(c.protocol, self.security)) {
                return Some(format!(
                    "no {} server over {} to connect to",
                    c.protocol.name(),
                    self.security.name()
                ));
            }
        }
        None
    }

    fn credentials(&self) -> Option<(String, String)> {
        self.credentials.clone()
    }

    fn open(&mut self, conn: usize, protocol: Proto) -> Result<(), TargetError> {
        let c = self.connect(protocol)?;
        if self.conns.len() <= conn {
            self.conns.resize_with(conn + 1, || None);
        }
        if let Some(slot) = self.conns.get_mut(conn) {
            *slot = Some(c);
        }
        Ok(())
    }

    /// Through IMAP itself, one connection per directive, as any client could: the binary's
    /// store is not reachable from outside.
    fn set_up(&mut self, transcript: &Transcript) -> Result<(), TargetError> {
        for setup in &transcript.setup {
            let line = setup.line();
            let fail = |message: String| TargetError::SetUp { line, message };
            let (user, command) = match setup {
                Setup::Mailbox { user, name, .. } => {
                    (user, format!("s2 CREATE {}\r\n", quoted(name)).into_bytes())
                }
                Setup::Message {
                    user,
                    mailbox,
                    flags,
                    source,
                    ..
                } => {
                    let data = source.data();
                    let mut command = format!(
                        "s2 APPEND {} ({}) {{{}+}}\r\n",
                        quoted(mailbox),
                        flags.join(" "),
                        data.len()
                    )
                    .into_bytes();
                    command.extend_from_slice(data);
                    command.extend_from_slice(b"\r\n");
                    (user, command)
                }
            };
            let password = transcript
                .users
                .iter()
                .find(|u| &u.name == user)
                .map(|u| u.password.clone())
                .unwrap_or_default();
            let mut c = self.connect(Proto::Imap).map_err(|e| fail(e.to_string()))?;
            c.next_unit(self.timeout)?;
            let login = format!("s1 LOGIN {} {}\r\n", quoted(user), quoted(&password));
            for (tag, command) in [("s1", login.into_bytes()), ("s2", command)] {
                c.send(&command)?;
                loop {
                    let unit = match c.next_unit(self.timeout)? {
                        Received::Unit(unit) => unit,
                        Received::Closed { .. } => {
                            return Err(fail("the server closed the connection".into()))
                        }
                    };
                    if unit.starts_with(format!("{tag} ").as_bytes()) {
                        let exists = matches!(setup, Setup::Mailbox { .. })
                            && unit.starts_with(format!("{tag} NO [ALREADYEXISTS]").as_bytes());
                        if !unit.starts_with(format!("{tag} OK").as_bytes()) && !exists {
                            return Err(fail(format!(
                                "the server answered {}",
                                wire::escape(&unit).trim_end()
                            )));
                        }
                        break;
                    }
                }
            }
            let _ = c.send(b"s3 LOGOUT\r\n");
        }
        Ok(())
    }

    fn send(&mut self, conn: usize, data: &[u8]) -> Result<(), TargetError> {
        self.conn(conn)?.send(data)
    }

    fn receive(&mut self, conn: usize) -> Result<Received, TargetError> {
        let timeout = self.timeout;
        self.conn(conn)?.next_unit(timeout)
    }

    fn pending(&mut self, conn: usize) -> Result<Vec<u8>, TargetError> {
        let c = self.conn(conn)?;
        let deadline = Instant::now() + QUIET_WAIT;
        while !c.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !c.fill(left)? {
                break;
            }
        }
        Ok(std::mem::take(&mut c.buf))
    }

    fn start_tls(&mut self, conn: usize) -> Result<(), TargetError> {
        let c = self.conn(conn)?;
        if !c.buf.is_empty() {
            return Err(TargetError::Tls(format!(
                "plaintext arrived after the response that started TLS: {}",
                wire::escape(&c.buf)
            )));
        }
        let Some(Stream::Plain(tcp)) = c.stream.take() else {
            return Err(TargetError::Tls("TLS is already active".into()));
        };
        let stream = self.handshake(tcp)?;
        self.conn(conn)?.stream = Some(stream);
        Ok(())
    }

    fn close(&mut self, conn: usize) -> Result<(), TargetError> {
        let Some(mut stream) = self
            .conns
            .get_mut(conn)
            .and_then(Option::take)
            .and_then(|mut c| c.stream.take())
        else {
            return Ok(());
        };
        // Best effort throughout: the server may be gone already.
        if let Stream::Tls(s) = &mut stream {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
        // Then wait (bounded) for the server to close its side. A server finishes what a
        // client's leaving sets off (a POP3 maildrop lock released, flags written) before it
        // closes, so the next step of the transcript does not race that clean-up; in-process
        // runs have the same order by construction.
        let tcp = stream.tcp();
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        let _ = tcp.set_read_timeout(Some(self.timeout));
        let deadline = std::time::Instant::now() + self.timeout;
        let mut sink = [0u8; 4096];
        let mut tcp = tcp;
        while std::time::Instant::now() < deadline {
            match tcp.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Ok(())
    }

    fn advance(&mut self, _by: Duration) -> Result<(), TargetError> {
        Err(TargetError::Unsupported(
            "a real server's clock cannot be advanced".into(),
        ))
    }
}

/// An IMAP quoted string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The server name to verify for `host`: an IP address or a DNS name.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TargetError> {
    ServerName::try_from(host.to_string()).map_err(|e| TargetError::Tls(format!("{host}: {e}")))
}
