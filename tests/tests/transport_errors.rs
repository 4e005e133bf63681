//! Transport failures explain themselves: through both clients (the blocking `ureq` client
//! and the async client over the shipped `ReqwestClient`), a DNS failure, a refused
//! connection, a TLS handshake with a plain-HTTP server, an `http://` URL answered by a
//! TLS-only server and a timeout each give an error whose message names the host and what
//! failed, never the query, and whose `source()` chain reaches the underlying error.
//! Everything stays on 127.0.0.1 (the DNS failure is a name the resolver rejects before
//! sending any query: a label longer than 63 bytes).

#[macro_use]
mod adapter_support;

use adapter_support::{RecordingStore, SECRET, TestOptions, now, reqwest_client};
use auth0_emulator::{DEFAULT_AUDIENCE, Emulator};
use auth0_server::protocol::session::{StateData, TokenSet};
use auth0_server::{Config, Error, TransportError, TransportErrorKind};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// A session whose access token expired: `get_access_token` must reach the tenant.
fn expired() -> StateData {
    StateData {
        refresh_token: Some("a-refresh-token".into()),
        token_sets: vec![TokenSet {
            audience: DEFAULT_AUDIENCE.into(),
            access_token: "expired".into(),
            scope: None,
            expires_at: now() - 10,
            requested_scope: None,
            token_type: Default::default(),
        }],
        ..Default::default()
    }
}

fn config(domain: &str) -> Config {
    Config::builder(domain, "client-id")
        .client_secret("client-secret")
        .secret(SECRET)
        .audience(DEFAULT_AUDIENCE)
        .build()
        .expect("valid config")
}

/// The transport error `get_access_token` fails with, through the blocking client and
/// through the async client (both with a `timeout` for connect and read).
fn both_clients(domain: &str, timeout: Duration) -> [TransportError; 2] {
    let store = RecordingStore::default();
    let blocking =
        auth0_server::blocking::ServerClient::builder(config(domain), store.clone(), store.clone())
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http = rt.block_on(async { reqwest_client(timeout) });
    let nonblocking = auth0_server::nonblocking::ServerClient::builder(
        config(domain),
        store.clone(),
        store,
        http,
    )
    .build();
    let transport = |result: Result<_, Error>| match result {
        Err(Error::Transport(t)) => t,
        other => panic!("expected a transport error, got {other:?}"),
    };
    [
        transport(blocking.get_access_token(&mut TestOptions::with("b", expired()))),
        transport(
            rt.block_on(nonblocking.get_access_token(&mut TestOptions::with("a", expired()))),
        ),
    ]
}

/// The whole `source()` chain, outermost first.
fn chain(e: &TransportError) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = std::error::Error::source(e);
    while let Some(s) = next {
        out.push(s.to_string());
        next = s.source();
    }
    out
}

fn assert_explains(e: &TransportError, kind: TransportErrorKind, needles: &[&str]) {
    let shown = e.to_string();
    assert_eq!(e.kind(), kind, "{shown}");
    for needle in needles {
        assert!(
            shown.contains(needle),
            "{shown:?} should contain {needle:?}"
        );
    }
    assert!(!shown.contains('?'), "no query in {shown:?}");
}

#[test]
fn an_unresolvable_domain_names_the_host_and_the_dns_lookup() {
    let host = format!("{}.invalid", "a".repeat(70));
    // The blocking client, through the SDK.
    let [blocking, _] = both_clients(&format!("https://{host}"), Duration::from_secs(5));
    assert_explains(
        &blocking,
        TransportErrorKind::Connect,
        &["DNS lookup of", &host],
    );
    assert!(chain(&blocking).len() > 1, "{:?}", chain(&blocking));
    // The reqwest client checks an https name for TLS before resolving it: send it a plain
    // http request to that name directly (with a query, which must not show).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let request = http::Request::post(format!("http://{host}/oauth/token?code=secret-code"))
        .body(Vec::new())
        .expect("request");
    let http = rt.block_on(async { reqwest_client(Duration::from_secs(5)) });
    let nonblocking = rt
        .block_on(auth0_server::nonblocking::HttpClient::send(&http, request))
        .expect_err("no such host");
    assert_explains(
        &nonblocking,
        TransportErrorKind::Connect,
        &["DNS lookup of", &host],
    );
    assert!(!format!("{:?}", chain(&nonblocking)).contains("secret-code"));
    assert!(chain(&nonblocking).len() > 1, "{:?}", chain(&nonblocking));
}

#[test]
fn a_refused_connection_names_host_and_port() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }; // closed again: nothing listens there
    for e in both_clients(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)) {
        assert_explains(
            &e,
            TransportErrorKind::Connect,
            &[&format!("connection to 127.0.0.1:{port} refused")],
        );
        assert!(chain(&e).len() > 1, "source chain kept: {:?}", chain(&e));
    }
}

/// A plain-HTTP server: whatever it receives, it answers `400 Bad Request` and closes.
fn plain_http_server() -> u16 {
    answering_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

/// A server on 127.0.0.1 that reads what a client sends, answers `reply` and closes.
fn answering_server(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(reply);
        }
    });
    port
}

#[test]
fn https_to_a_plain_http_server_is_a_tls_handshake_failure() {
    let port = plain_http_server();
    for e in both_clients(&format!("https://127.0.0.1:{port}"), Duration::from_secs(5)) {
        assert_explains(
            &e,
            TransportErrorKind::Connect,
            &[&format!("TLS handshake with 127.0.0.1:{port} failed")],
        );
        assert!(chain(&e).len() > 1, "source chain kept: {:?}", chain(&e));
    }
}

/// A server that speaks only TLS: whatever it receives, it answers with a TLS alert record
/// (`protocol_version`, as a TLS server does to a plain-text request) and closes.
fn tls_only_server() -> u16 {
    answering_server(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46])
}

#[test]
fn http_to_a_tls_only_server_says_to_use_https() {
    let port = tls_only_server();
    for e in both_clients(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)) {
        assert_explains(
            &e,
            TransportErrorKind::Io,
            &[
                &format!("127.0.0.1:{port} did not answer in HTTP"),
                "use an https:// URL",
            ],
        );
    }
}

#[test]
fn a_timeout_names_the_host_and_what_was_awaited() {
    use auth0_emulator::Failure;
    let emu = Emulator::start(Default::default());
    let authority = emu.base_url().trim_start_matches("http://").to_owned();
    // Both clients' requests are slow (each takes one slow answer).
    emu.fail_next("/oauth/token", Failure::Slow(Duration::from_secs(3)), 2);
    for e in both_clients(&emu.base_url(), Duration::from_millis(300)) {
        assert_explains(
            &e,
            TransportErrorKind::Timeout,
            &[
                &format!("{authority} did not answer in time"),
                "/oauth/token",
            ],
        );
    }
}
