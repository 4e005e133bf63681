//! What a `private_key_jwt` client assertion costs: building the claims and signing them,
//! once per request that authenticates the client (the driver does it right before sending).
//!
//! Run with `cargo bench -p auth0-server-protocol --bench client_assertion`.
//!
//! - `rs256`: RSASSA-PKCS1-v1_5, 2048-bit key, blinded (ChaCha20 seeded per call).
//! - `ps256`: RSASSA-PSS, same key, blinded, random salt.
//! - `es256`: ECDSA P-256, RFC 6979 deterministic nonce.
//! - `dpop_proof`: a DPoP proof (RFC 9449) for a resource request, with `ath` and `nonce`:
//!   the same ES256 signature, paid per token-endpoint request and per `dpop_headers` call.

use auth0_server_protocol::client_assertion::{AssertionAlg, AssertionKey, assertion};
use auth0_server_protocol::time::UnixTime;
use divan::black_box;

const RSA_PEM: &str = include_str!("../../tests/data/client_keys/rsa.pem");
const EC_PEM: &str = include_str!("../../tests/data/client_keys/ec.pem");

fn main() {
    divan::main();
}

fn sign(key: &AssertionKey) -> String {
    assertion(
        black_box(key),
        "bench-client",
        "https://tenant.example.com/",
        UnixTime::from_secs(1_700_000_000),
        &[7; 48],
    )
    .expect("signs")
}

#[divan::bench]
fn rs256(b: divan::Bencher) {
    let key = AssertionKey::parse(RSA_PEM, AssertionAlg::Rs256, None).unwrap();
    b.bench(|| sign(&key));
}

#[divan::bench]
fn ps256(b: divan::Bencher) {
    let key = AssertionKey::parse(RSA_PEM, AssertionAlg::Ps256, None).unwrap();
    b.bench(|| sign(&key));
}

#[divan::bench]
fn es256(b: divan::Bencher) {
    let key = AssertionKey::parse(EC_PEM, AssertionAlg::Es256, None).unwrap();
    b.bench(|| sign(&key));
}

#[divan::bench]
fn dpop_proof(b: divan::Bencher) {
    use auth0_server_protocol::dpop::{DpopKey, ProofFor, proof};
    let key = DpopKey::parse(EC_PEM).unwrap();
    b.bench(|| {
        proof(
            black_box(&key),
            &ProofFor {
                method: "GET",
                url: "https://api.example.com/orders?page=2",
                nonce: Some("server-nonce"),
                access_token: Some("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"),
            },
            UnixTime::from_secs(1_700_000_000),
            &[7; 16],
        )
        .expect("signs")
    });
}
