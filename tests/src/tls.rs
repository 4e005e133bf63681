//! The emulator's TLS listener for mutual TLS (RFC 8705), and the test PKI it uses
//! (`tests/data/mtls/`, see the README there).
//!
//! tiny_http cannot ask for client certificates, so TLS is terminated here, in front of it:
//! each connection accepted on the TLS listener (`127.0.0.1`, its own port) is handshaken with
//! rustls (ring provider), the server asking for — but not requiring — a client certificate,
//! and then forwarded as plain bytes over a new loopback connection to the tiny_http listener.
//! The local port of that upstream connection is what tiny_http reports as the request's
//! peer, so the front records `upstream port → the client's certificate chain` for the
//! connection's lifetime, and the request handler looks the peer up
//! ([`RecordedRequest::tls`](crate::RecordedRequest::tls)).
//!
//! The handshake verifies that the client holds the private key of the certificate it
//! presents (its `CertificateVerify` signature) but accepts any certificate: whether the
//! certificate authenticates the client is the token endpoint's decision (401
//! `invalid_client`, as Auth0 answers), made by [`check_ca_issued`] and the thumbprint
//! comparison of `self_signed_tls_client_auth`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};

/// The test CA (PEM): issuer of the emulator's server certificate and of
/// [`CLIENT_CERT_PEM`]. Trust it in the HTTP client to reach the TLS listener.
pub const TEST_CA_PEM: &str = include_str!("../data/mtls/ca.pem");
/// A client certificate issued by the test CA, subject [`CLIENT_SUBJECT_DN`]
/// (`tls_client_auth`).
pub const CLIENT_CERT_PEM: &str = include_str!("../data/mtls/client.pem");
/// The private key of [`CLIENT_CERT_PEM`] (PKCS#8).
pub const CLIENT_KEY_PEM: &str = include_str!("../data/mtls/client.key");
/// The subject of [`CLIENT_CERT_PEM`] (and of [`WRONG_CLIENT_CERT_PEM`]), RFC 4514.
pub const CLIENT_SUBJECT_DN: &str = "CN=auth0-server-test-client,O=auth0-server tests";
/// A client certificate with the same subject as [`CLIENT_CERT_PEM`], issued by another CA.
pub const WRONG_CLIENT_CERT_PEM: &str = include_str!("../data/mtls/wrong_client.pem");
/// The private key of [`WRONG_CLIENT_CERT_PEM`].
pub const WRONG_CLIENT_KEY_PEM: &str = include_str!("../data/mtls/wrong_client.key");
/// A self-signed client certificate (`self_signed_tls_client_auth`).
pub const SELF_SIGNED_CERT_PEM: &str = include_str!("../data/mtls/self_signed.pem");
/// The private key of [`SELF_SIGNED_CERT_PEM`].
pub const SELF_SIGNED_KEY_PEM: &str = include_str!("../data/mtls/self_signed.key");

const SERVER_CERT_PEM: &str = include_str!("../data/mtls/server.pem");
const SERVER_KEY_PEM: &str = include_str!("../data/mtls/server.key");

/// How a request reached the emulator through the TLS listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPeer {
    /// The certificate chain the client presented (DER, its own certificate first); empty
    /// when it presented none.
    pub client_chain: Vec<Vec<u8>>,
}

impl TlsPeer {
    /// The SHA-256 thumbprint (base64url) of the client's certificate, when it sent one: the
    /// `x5t#S256` of RFC 8705 §3.1.
    pub fn x5t_s256(&self) -> Option<String> {
        self.client_chain.first().map(|c| thumbprint(c))
    }
}

/// The base64url SHA-256 of a DER certificate.
pub fn thumbprint(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// The DER of the first certificate of a PEM text.
pub fn certificate_der(pem: &str) -> Option<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()
        .map(|c| c.to_vec())
}

/// Upstream port → the client chain of the TLS connection it carries.
pub(crate) type Peers = Arc<Mutex<HashMap<u16, TlsPeer>>>;

/// The running TLS listener; stops when dropped.
pub(crate) struct TlsFront {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// Starts a TLS listener on `127.0.0.1` forwarding to `upstream`, recording peers in
    /// `peers`.
    pub(crate) fn start(upstream: SocketAddr, peers: Peers) -> TlsFront {
        let config = Arc::new(server_config());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the TLS listener");
        let addr = listener.local_addr().expect("TLS listener address");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("auth0-emulator-tls".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(stream) = stream else { continue };
                        let (config, peers) = (config.clone(), peers.clone());
                        let _ = std::thread::Builder::new()
                            .name("auth0-emulator-tls-conn".into())
                            .spawn(move || {
                                let _ = serve(stream, config, upstream, &peers);
                            });
                    }
                })
                .expect("spawn the TLS listener")
        };
        TlsFront {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub(crate) fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn server_config() -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(SERVER_CERT_PEM.as_bytes())
            .collect::<Result<_, _>>()
            .expect("server certificate fixture");
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM.as_bytes()).expect("server key fixture");
    rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_client_cert_verifier(Arc::new(AnyClientCertificate(provider)))
        .with_single_cert(chain, key)
        .expect("server certificate and key match")
}

/// Handshakes one connection, then forwards it to `upstream` in both directions until either
/// side closes.
fn serve(
    mut tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    upstream: SocketAddr,
    peers: &Peers,
) -> std::io::Result<()> {
    let _ = tcp.set_nodelay(true);
    // A client that never finishes its handshake does not hold a thread forever.
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    tcp.set_read_timeout(None)?;
    let peer = TlsPeer {
        client_chain: conn
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.to_vec()).collect())
            .unwrap_or_default(),
    };
    let up = TcpStream::connect(upstream)?;
    let _ = up.set_nodelay(true);
    let port = up.local_addr()?.port();
    lock(peers).insert(port, peer);
    let conn = Arc::new(Mutex::new(conn));
    let to_client = {
        let (conn, mut up, mut tcp) = (conn.clone(), up.try_clone()?, tcp.try_clone()?);
        std::thread::Builder::new()
            .name("auth0-emulator-tls-out".into())
            .spawn(move || upstream_to_client(&conn, &mut up, &mut tcp))?
    };
    let mut up_w = up.try_clone()?;
    client_to_upstream(&conn, &mut tcp, &mut up_w);
    let _ = up_w.shutdown(Shutdown::Write);
    let _ = to_client.join();
    lock(peers).remove(&port);
    Ok(())
}

/// Reads TLS records from the client, writes their plaintext upstream, until the client
/// closes (or says `close_notify`) or the connection fails.
fn client_to_upstream(
    conn: &Mutex<rustls::ServerConnection>,
    tcp: &mut TcpStream,
    up: &mut TcpStream,
) {
    // The request may have arrived with the client's last handshake message: rustls then
    // holds its plaintext already.
    let (mut plain, mut closed) = drain(&mut lock(conn));
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !plain.is_empty() && up.write_all(&plain).is_err() {
            return;
        }
        if closed {
            return;
        }
        let n = match tcp.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        plain.clear();
        let mut conn = lock(conn);
        let mut input = &buf[..n];
        while !input.is_empty() {
            if conn.read_tls(&mut input).is_err() {
                return;
            }
            if conn.process_new_packets().is_err() {
                let _ = conn.write_tls(tcp);
                return;
            }
            let (more, end) = drain(&mut conn);
            plain.extend(more);
            closed |= end;
        }
        while conn.wants_write() {
            if conn.write_tls(tcp).is_err() {
                return;
            }
        }
    }
}

/// The plaintext rustls holds, and whether the client said `close_notify`.
fn drain(conn: &mut rustls::ServerConnection) -> (Vec<u8>, bool) {
    let mut plain = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match conn.reader().read(&mut chunk) {
            Ok(0) => return (plain, true),
            Ok(k) => plain.extend_from_slice(&chunk[..k]),
            // WouldBlock: nothing more for now (or an unclean close, seen on the next read).
            Err(_) => return (plain, false),
        }
    }
}

/// Reads tiny_http's answers, encrypts them to the client; on upstream EOF sends
/// `close_notify` and closes the client connection.
fn upstream_to_client(
    conn: &Mutex<rustls::ServerConnection>,
    up: &mut TcpStream,
    tcp: &mut TcpStream,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = up.read(&mut buf).unwrap_or(0);
        let mut conn = lock(conn);
        if n == 0 {
            conn.send_close_notify();
        } else if conn.writer().write_all(&buf[..n]).is_err() {
            break;
        }
        while conn.wants_write() {
            if conn.write_tls(tcp).is_err() {
                break;
            }
        }
        if n == 0 {
            break;
        }
    }
    let _ = tcp.shutdown(Shutdown::Both);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Asks every client for a certificate and checks it proves possession of the certificate's
/// key, but leaves whether the certificate is acceptable to the token endpoint.
#[derive(Debug)]
struct AnyClientCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

/// `tls_client_auth` (RFC 8705 §2.1): the chain verifies to the test CA for client
/// authentication (signatures, validity, key usage), and the client certificate's subject is
/// `subject_dn` (RFC 4514 text, compared exactly). `Err` says what failed.
pub(crate) fn check_ca_issued(chain: &[Vec<u8>], subject_dn: &str) -> Result<(), &'static str> {
    let (end_entity, intermediates) = chain.split_first().ok_or("no client certificate")?;
    let mut roots = rustls::RootCertStore::empty();
    let ca = certificate_der(TEST_CA_PEM).ok_or("test CA fixture")?;
    roots
        .add(CertificateDer::from(ca))
        .map_err(|_| "test CA fixture")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|_| "verifier")?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let end_entity = CertificateDer::from(end_entity.as_slice());
    verifier
        .verify_client_cert(&end_entity, &intermediates, UnixTime::now())
        .map_err(|_| "the client certificate does not chain to a trusted CA")?;
    let cert = webpki::EndEntityCert::try_from(&end_entity).map_err(|_| "unparsable")?;
    if subject_text(cert.subject()).as_deref() != Some(subject_dn) {
        return Err("the client certificate's subject is not the registered one");
    }
    Ok(())
}

/// An X.509 `Name` (its SEQUENCE contents, as webpki gives it) as RFC 4514 text: RDNs last
/// first, `CN`, `O`, `OU`, `C`, `L`, `ST` by name and other attributes by dotted OID.
fn subject_text(name: &[u8]) -> Option<String> {
    use der::asn1::{Any, ObjectIdentifier};
    use der::{Decode, Reader, SliceReader, Tag, Tagged};
    let mut rdns = Vec::new();
    let mut reader = SliceReader::new(name).ok()?;
    while !reader.is_finished() {
        let set = Any::decode(&mut reader).ok()?;
        if set.tag() != Tag::Set {
            return None;
        }
        let mut attributes = SliceReader::new(set.value()).ok()?;
        let mut parts = Vec::new();
        while !attributes.is_finished() {
            let pair = Any::decode(&mut attributes).ok()?;
            let mut pair = SliceReader::new(pair.value()).ok()?;
            let oid = ObjectIdentifier::decode(&mut pair).ok()?;
            let value = Any::decode(&mut pair).ok()?;
            let text = std::str::from_utf8(value.value()).ok()?;
            let oid = oid.to_string();
            let key = match oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                other => other,
            };
            let mut escaped = String::new();
            for c in text.chars() {
                if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
                    escaped.push('\\');
                }
                escaped.push(c);
            }
            parts.push(format!("{key}={escaped}"));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> Vec<u8> {
        certificate_der(pem).unwrap()
    }

    #[test]
    fn only_the_ca_issued_certificate_with_the_registered_subject_passes() {
        assert_eq!(
            check_ca_issued(&[der(CLIENT_CERT_PEM)], CLIENT_SUBJECT_DN),
            Ok(())
        );
        assert!(check_ca_issued(&[der(CLIENT_CERT_PEM)], "CN=someone else").is_err());
        assert!(check_ca_issued(&[der(WRONG_CLIENT_CERT_PEM)], CLIENT_SUBJECT_DN).is_err());
        assert!(check_ca_issued(&[der(SELF_SIGNED_CERT_PEM)], CLIENT_SUBJECT_DN).is_err());
        assert!(check_ca_issued(&[], CLIENT_SUBJECT_DN).is_err());
    }
}
