//! SCRAM-SHA-256-PLUS against the real binary over TLS 1.3, with the channel binding taken
//! from the client's own TLS session (RFC 9266 tls-exporter): it succeeds with the true
//! binding and fails with a different one, as it would behind a TLS-terminating attacker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tern_core::sasl::ScramClient;

use common::Server;

type Tls = BufReader<StreamOwned<ClientConnection, TcpStream>>;

fn connect(server: &Server) -> Tls {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server.cert()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
        .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", server.port("imaps"))).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    BufReader::new(StreamOwned::new(conn, tcp))
}

fn line(s: &mut Tls) -> String {
    let mut l = String::new();
    s.read_line(&mut l).unwrap();
    l
}

fn send(s: &mut Tls, data: &str) {
    s.get_mut().write_all(data.as_bytes()).unwrap();
    s.get_mut().flush().unwrap();
}

fn exporter(s: &Tls) -> Vec<u8> {
    let mut out = [0u8; 32];
    s.get_ref()
        .conn
        .export_keying_material(&mut out, b"EXPORTER-Channel-Binding", None)
        .unwrap();
    out.to_vec()
}

/// Runs AUTHENTICATE SCRAM-SHA-256-PLUS with the given binding; returns the tagged answer.
fn authenticate(binding: Option<Vec<u8>>) -> String {
    let server = Server::start("");
    let mut s = connect(&server);
    let greeting = line(&mut s);
    assert!(greeting.contains("AUTH=SCRAM-SHA-256-PLUS"), "{greeting}");
    let binding = binding.unwrap_or_else(|| exporter(&s));
    let client = ScramClient::new("alice", "e2e-nonce", Some(&binding));
    send(
        &mut s,
        &format!(
            "a AUTHENTICATE SCRAM-SHA-256-PLUS {}\r\n",
            B64.encode(client.client_first())
        ),
    );
    let first = line(&mut s);
    let server_first = B64
        .decode(first.trim_end().strip_prefix("+ ").unwrap())
        .unwrap();
    let last = client.client_final(&server_first, "wonderland").unwrap();
    send(&mut s, &format!("{}\r\n", B64.encode(last)));
    let reply = line(&mut s);
    if reply.starts_with("+ ") {
        send(&mut s, "\r\n");
        return line(&mut s);
    }
    reply
}

#[test]
fn scram_plus_succeeds_with_the_true_binding() {
    let reply = authenticate(None);
    assert!(reply.starts_with("a OK"), "{reply}");
}

#[test]
fn scram_plus_fails_when_the_binding_differs() {
    let reply = authenticate(Some(vec![0x42; 32]));
    assert!(reply.starts_with("a NO [AUTHENTICATIONFAILED]"), "{reply}");
}
