//! End to end: bounds that must hold whatever a hostile client does before it logs in
//! (password-check bursts, parallel guessing, silent or trickling connections). Each test is
//! bounded in connections and time and talks to loopback only; other client addresses are
//! 127.0.0.2, 127.0.0.3, … (all of 127.0.0.0/8 is loopback on Linux).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{proc_status_kib, Client, Server};

fn tagged(c: &mut Client, tag: &str) -> Option<String> {
    loop {
        let line = c.line()?;
        if line.starts_with(&format!("{tag} ")) {
            return Some(line);
        }
    }
}

/// Issue 19, item 1: simultaneous wrong logins used to run one argon2id (19 MiB) each on a
/// thread pool that grew with them (8.8 GB after five bursts of 200). Password checks now
/// run on a fixed pool behind a bounded queue: the server's peak memory stays bounded, the
/// overflow is refused at once, and a user who logged in before still gets in meanwhile.
#[test]
fn a_burst_of_wrong_logins_keeps_memory_bounded_and_users_get_in() {
    let secret = common::hash_password("wonderland");
    let server = Server::start(&format!(
        "[[directory.users]]\nname = \"carol\"\nsecret = \"{secret}\"\n\
         [auth]\nfailure-delay = 0.0\nip-failure-limit = 0\naccount-failure-limit = 0\n\
         max-parallel-checks = 2\ncheck-queue = 16\n\
         [limits]\nmax-connections = 400\nmax-connections-per-ip = 100\n\
         max-unauthenticated-connections = 400\n"
    ));
    let pid = server.child.id();
    let port = server.port("imap");
    // carol logs in once: her check is remembered, so the burst cannot lock her out.
    let mut carol = Client::connect(port);
    carol.line().unwrap();
    carol.send("a LOGIN carol wonderland\r\n");
    assert!(tagged(&mut carol, "a").unwrap().starts_with("a OK"));
    drop(carol);
    let idle_kib = proc_status_kib(pid, "VmRSS:");

    const BURST: usize = 300;
    let mut attackers: Vec<Client> = (0..BURST)
        .map(|i| {
            let mut c = Client::connect_from(&format!("127.0.0.{}", 2 + i % 4), port);
            c.line().unwrap();
            c
        })
        .collect();
    for (i, c) in attackers.iter_mut().enumerate() {
        c.send(&format!("x LOGIN nobody{i} wrong{i}\r\n"));
    }
    // Meanwhile a user who logged in before is answered, from the cache.
    let mut carol = Client::connect(port);
    carol.line().unwrap();
    let started = Instant::now();
    carol.send("b LOGIN carol wonderland\r\n");
    let reply = tagged(&mut carol, "b").unwrap();
    assert!(reply.starts_with("b OK"), "{reply}");
    let carol_waited = started.elapsed();

    let (mut checked, mut refused) = (0, 0);
    for c in &mut attackers {
        let reply = tagged(c, "x").unwrap();
        if reply.starts_with("x NO [AUTHENTICATIONFAILED]") {
            checked += 1;
        } else {
            assert!(reply.starts_with("x NO [UNAVAILABLE]"), "{reply}");
            refused += 1;
        }
    }
    let peak_kib = proc_status_kib(pid, "VmHWM:");
    let threads = proc_status_kib(pid, "Threads:");
    eprintln!(
        "burst of {BURST}: {checked} checked, {refused} refused; RSS idle {idle_kib} KiB, \
         peak {peak_kib} KiB; {threads} threads; carol answered in {carol_waited:?}"
    );
    // 2 checks at a time and 16 waiting: at least that many checked, the rest refused.
    assert!(checked >= 18, "{checked}");
    assert!(refused > 0);
    // Two argon2id scratch areas (19 MiB each) and change; without the bound, hundreds.
    assert!(
        peak_kib < idle_kib + 128 * 1024,
        "peak RSS {peak_kib} KiB vs {idle_kib} KiB idle"
    );
    assert!(threads < 40, "{threads} threads");
    assert!(server
        .log()
        .contains("too many password checks are waiting"));
}

/// Issue 14, item 9: forty connections from one address sending one guess each at the same
/// moment used to have all forty passwords checked before the block applied. Attempts now
/// count from the moment their check starts, so at most the limit are ever checked.
#[test]
fn parallel_guesses_from_one_address_are_checked_at_most_up_to_the_limit() {
    let secret = common::hash_password("wonderland");
    let server = Server::start(&format!(
        "[[directory.users]]\nname = \"carol\"\nsecret = \"{secret}\"\n\
         [auth]\nfailure-delay = 0.0\nip-failure-limit = 10\naccount-failure-limit = 0\n\
         [limits]\nmax-connections-per-ip = 100\n"
    ));
    let port = server.port("imap");
    let mut guessers: Vec<Client> = (0..40)
        .map(|_| {
            let mut c = Client::connect_from("127.0.0.2", port);
            c.line().unwrap();
            c
        })
        .collect();
    for (i, c) in guessers.iter_mut().enumerate() {
        c.send(&format!("g LOGIN carol guess{i}\r\n"));
    }
    let mut checked = 0;
    for c in &mut guessers {
        let reply = tagged(c, "g").unwrap();
        if reply.starts_with("g NO [AUTHENTICATIONFAILED]") {
            checked += 1;
        } else {
            assert!(reply.starts_with("g NO [UNAVAILABLE]"), "{reply}");
            // Refused connections are closed after a goodbye.
            assert!(c.line().unwrap().starts_with("* BYE"));
            assert!(c.line().is_none());
        }
    }
    assert!(checked <= 10, "{checked} passwords checked, limit 10");
    assert!(checked >= 1);
    // The address is blocked now; another address is not.
    let mut other = Client::connect_from("127.0.0.3", port);
    other.line().unwrap();
    other.send("o LOGIN carol wonderland\r\n");
    assert!(tagged(&mut other, "o").unwrap().starts_with("o OK"));
}

/// Issue 19, item 4: a connection that never logs in is closed after `timeouts.login`,
/// whether it is silent or trickles bytes, and connections that have not logged in have a
/// cap of their own so they cannot take every place.
#[test]
fn strangers_are_timed_out_and_capped() {
    let server =
        Server::start("[timeouts]\nlogin = 2\n[limits]\nmax-unauthenticated-connections = 3\n");
    let imap_port = server.port("imap");
    let pop_port = server.port("pop3");
    let mut silent = Client::connect_from("127.0.0.2", imap_port);
    assert!(silent.line().unwrap().starts_with("* OK"));
    let mut trickler = Client::connect_from("127.0.0.3", pop_port);
    assert!(trickler.line().unwrap().starts_with("+OK"));
    let mut third = Client::connect_from("127.0.0.4", imap_port);
    third.line().unwrap();
    // A fourth stranger finds no place; a user who logs in frees one.
    let mut fourth = Client::connect_from("127.0.0.5", imap_port);
    assert_eq!(
        fourth.line().unwrap(),
        "* BYE [UNAVAILABLE] Too many connections; try again later."
    );
    third.send("a LOGIN alice wonderland\r\n");
    assert!(tagged(&mut third, "a").unwrap().starts_with("a OK"));
    let mut fifth = Client::connect_from("127.0.0.5", imap_port);
    assert!(fifth.line().unwrap().starts_with("* OK"));
    drop(fifth);

    // One byte every 300 ms never completes a line: it does not count as activity.
    let trickle = std::thread::spawn(move || {
        for b in b"USER alice and on and on and on" {
            if trickler.try_send(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        trickler
    });
    assert_eq!(silent.line().unwrap(), "* BYE Login timed out.");
    assert!(silent.line().is_none());
    let mut trickler = trickle.join().unwrap();
    assert_eq!(trickler.line().unwrap(), "-ERR Login timed out.");
    assert!(trickler.line().is_none());
    // The logged-in session is not subject to it.
    third.send("n NOOP\r\n");
    assert!(tagged(&mut third, "n").unwrap().starts_with("n OK"));
}
