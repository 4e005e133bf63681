//! `discovery::parse_metadata` on arbitrary bodies (HTTP 200): accepted metadata always names
//! the configured issuer and only https endpoints (the tenant is not on loopback).
#![no_main]

use auth0_server_fuzz::{ISSUER, config};
use auth0_server_protocol::discovery::parse_metadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let response = http::Response::new(data.to_vec());
    if let Ok(m) = parse_metadata(config(), &response) {
        assert_eq!(m.issuer.trim_end_matches('/'), ISSUER.trim_end_matches('/'));
        for endpoint in [
            Some(&m.authorization_endpoint),
            Some(&m.token_endpoint),
            m.jwks_uri.as_ref(),
            m.pushed_authorization_request_endpoint.as_ref(),
            m.end_session_endpoint.as_ref(),
            m.revocation_endpoint.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            let url = url::Url::parse(endpoint).expect("accepted endpoint parses");
            assert_eq!(url.scheme(), "https", "non-https endpoint accepted");
        }
        // What the core builds from accepted metadata must be a valid request.
        assert!(
            http::Request::post(m.token_endpoint.as_str())
                .body(())
                .is_ok()
        );
    }
    // The same body under an error status is a typed error.
    let response = http::Response::builder()
        .status(500)
        .body(data.to_vec())
        .expect("valid");
    assert!(parse_metadata(config(), &response).is_err());
});
