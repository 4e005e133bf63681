//! `token_endpoint::parse_token_response`: the status from the first two bytes, the rest as
//! the body. Every answer is a token response or a typed error; no message quotes the body.
#![no_main]

use auth0_server_protocol::token_endpoint::{
    MAX_RESPONSE_BODY, ResponseError, parse_error_body, parse_token_response,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    // Statuses 100..=999 are representable by `http`; map the two bytes into that range.
    let status = 100 + u16::from_be_bytes([data[0], data[1]]) % 900;
    let body = data[2..].to_vec();
    let response = http::Response::builder()
        .status(status)
        .body(body.clone())
        .expect("status in range");
    match parse_token_response(&response) {
        Ok(token) => {
            assert!((200..300).contains(&status), "success from HTTP {status}");
            assert!(!token.access_token.expose().is_empty());
            assert!(
                token
                    .refresh_token
                    .as_ref()
                    .is_none_or(|t| !t.expose().is_empty())
            );
            assert!(body.len() <= MAX_RESPONSE_BODY);
        }
        Err(e) => {
            assert_eq!(e.status(), status);
            let _ = (e.to_string(), format!("{e:?}"), e.oauth());
            if let ResponseError::OAuth(o) = &e {
                assert!(!o.error.is_empty());
            }
        }
    }
    let e = parse_error_body(status, &body);
    assert_eq!(e.status(), status);
});
