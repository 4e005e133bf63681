//! Writes the seed corpora of the byte-oriented targets to `fuzz/corpus/<target>/`:
//! `cargo run --example make_seeds` (from `fuzz/`). The inputs mirror the protocol tests:
//! valid token responses and OAuth errors, discovery documents, the fixture JWKS, tokens
//! signed with the fixture keys, Python-SDK JWEs and sessions, callback URLs.

use std::fs;
use std::path::Path;

use auth0_server_fuzz::{
    CLIENT_ID, ISSUER, NOW, PEM_A, PEM_B, jwe_keys, jwk_json, jwks_document, sign,
};
use auth0_server_protocol::__internals::b64;
use auth0_server_protocol::jose::jwe::encrypt;

fn write(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn with_status(status: u16, body: &str) -> Vec<u8> {
    let mut v = status.wrapping_sub(100).to_be_bytes().to_vec();
    v.extend_from_slice(body.as_bytes());
    v
}

fn main() {
    // callback_url
    write(
        "callback_url",
        "code",
        "/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj",
    );
    write(
        "callback_url",
        "absolute_error",
        "https://app.example.com/callback?error=access_denied&error_description=User%20did%20not%20consent&state=xyz",
    );
    write(
        "callback_url",
        "repeated",
        "/callback?code=a&state=s&state=t",
    );

    // token_response: two status bytes (status - 100), then the body.
    write(
        "token_response",
        "full",
        with_status(
            200,
            r#"{"access_token":"at","expires_in":86400,"scope":"openid profile email offline_access","refresh_token":"rt","id_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","token_type":"Bearer"}"#,
        ),
    );
    write(
        "token_response",
        "minimal_string_expiry",
        with_status(200, r#"{"access_token":"at","expires_in":"60"}"#),
    );
    write(
        "token_response",
        "invalid_grant",
        with_status(
            403,
            r#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#,
        ),
    );
    write(
        "token_response",
        "mfa_required",
        with_status(
            403,
            r#"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"mfa-tok","mfa_requirements":{"challenge":[{"type":"otp"}]}}"#,
        ),
    );
    write(
        "token_response",
        "html",
        with_status(502, "<!doctype html><h1>Bad gateway</h1>"),
    );

    // discovery
    write(
        "discovery",
        "minimal",
        r#"{"issuer":"https://tenant.auth0.com/","authorization_endpoint":"https://tenant.auth0.com/authorize","token_endpoint":"https://tenant.auth0.com/oauth/token","jwks_uri":"https://tenant.auth0.com/.well-known/jwks.json"}"#,
    );
    write(
        "discovery",
        "full",
        r#"{"issuer":"https://tenant.auth0.com/","authorization_endpoint":"https://tenant.auth0.com/authorize","token_endpoint":"https://tenant.auth0.com/oauth/token","jwks_uri":"https://tenant.auth0.com/.well-known/jwks.json","pushed_authorization_request_endpoint":"https://tenant.auth0.com/oauth/par","end_session_endpoint":"https://tenant.auth0.com/oidc/logout","revocation_endpoint":"https://tenant.auth0.com/oauth/revoke","response_types_supported":["code"],"scopes_supported":["openid","profile"]}"#,
    );

    // jwks
    write("jwks", "fixture", jwks_document());
    let mut mixed = serde_json::json!({"keys": [
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "ec"},
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"},
        {"kty": "RSA", "key_ops": ["sign"], "n": "AQAB", "e": "AQAB"},
    ]});
    mixed["keys"]
        .as_array_mut()
        .expect("array")
        .push(jwk_json(PEM_B, Some("b")));
    write("jwks", "mixed", mixed.to_string());
    write("jwks", "empty", r#"{"keys":[]}"#);

    // jws: correctly signed ID and logout tokens.
    let id_claims = serde_json::json!({
        "iss": ISSUER, "sub": "auth0|1", "aud": "client-id", "exp": NOW + 3600, "iat": NOW,
        "nonce": "nonce-1", "sid": "sid-1", "org_id": "org_123", "name": "Jane"
    });
    write(
        "jws",
        "id_token_kid_a",
        sign(
            PEM_A,
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "a"}),
            id_claims.clone(),
        ),
    );
    write(
        "jws",
        "id_token_no_kid",
        sign(PEM_A, serde_json::json!({"alg": "RS256"}), id_claims),
    );
    write(
        "jws",
        "logout_token_kid_b",
        sign(
            PEM_B,
            serde_json::json!({"alg": "RS256", "typ": "logout+jwt", "kid": "b"}),
            serde_json::json!({
                "iss": ISSUER, "aud": ["client-id", "other"], "azp": "client-id", "iat": NOW,
                "exp": NOW + 120, "sid": "sid-1", "sub": "auth0|1",
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}}
            }),
        ),
    );
    write(
        "jws",
        "hs256",
        format!(
            "{}.{}.c2ln",
            b64::encode(br#"{"alg":"HS256","kid":"a"}"#),
            b64::encode(br#"{"iss":"https://tenant.auth0.com/"}"#)
        ),
    );

    // jwe: the Python SDK's vectors (secret "a"*64, salt _a0_session) and our own output.
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../protocol/tests/data/python-jwe.json"))
            .expect("vectors");
    for (i, v) in vectors["vectors"]
        .as_array()
        .expect("vectors array")
        .iter()
        .enumerate()
        .filter(|(_, v)| v["salt"] == "_a0_session")
        .take(2)
    {
        {
            if let Some(jwe) = v["jwe"].as_str() {
                write("jwe", &format!("python_{i}"), jwe);
            }
        }
    }
    let session = session_json();
    write(
        "jwe",
        "session",
        encrypt(&jwe_keys()[0], session.as_bytes(), [7; 16]),
    );
    write("jwe", "old_secret", encrypt(&jwe_keys()[1], b"{}", [9; 16]));

    // session_json
    write("session_json", "full", &session);
    write(
        "session_json",
        "python_nulls",
        r#"{"user":{"sub":"auth0|1","name":null},"id_token":null,"refresh_token":"rt","token_sets":[{"audience":null,"access_token":"at","scope":null,"expires_at":10}],"connection_token_sets":null,"domain":"tenant.auth0.com","internal":{"sid":"s","created_at":5,"session_expires_at":null}}"#,
    );
    write(
        "session_json",
        "floats",
        r#"{"token_sets":[{"audience":"a","access_token":"t","expires_at":1700000000.75}],"internal":{"created_at":1.5}}"#,
    );

    // par_response: the status (two bytes) and the PAR endpoint's answer.
    write(
        "par_response",
        "created",
        with_status(
            201,
            r#"{"request_uri":"urn:ietf:params:oauth:request_uri:abc123","expires_in":60}"#,
        ),
    );
    write(
        "par_response",
        "invalid_request",
        with_status(
            400,
            r#"{"error":"invalid_request","error_description":"bad redirect_uri"}"#,
        ),
    );
    write(
        "par_response",
        "html",
        with_status(200, "<html>oops</html>"),
    );

    // backchannel_logout: logout tokens signed with key `a`, by sid and by sub.
    let logout_claims = |selector: serde_json::Value| {
        let mut claims = serde_json::json!({
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "iat": NOW,
            "exp": NOW + 120,
            "jti": "logout-jti",
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        });
        if let (Some(claims), Some(selector)) = (claims.as_object_mut(), selector.as_object()) {
            claims.extend(selector.clone());
        }
        claims
    };
    let header = serde_json::json!({"alg": "RS256", "typ": "logout+jwt", "kid": "a"});
    write(
        "backchannel_logout",
        "by_sid",
        sign(
            PEM_A,
            header.clone(),
            logout_claims(serde_json::json!({"sid": "sid-1"})),
        ),
    );
    write(
        "backchannel_logout",
        "by_sub",
        sign(
            PEM_A,
            header,
            logout_claims(serde_json::json!({"sub": "auth0|user-1"})),
        ),
    );
    write(
        "backchannel_logout",
        "not_a_token",
        "eyJhbGciOiJub25lIn0.e30.",
    );
}

fn session_json() -> String {
    serde_json::json!({
        "user": {"sub": "auth0|1", "iss": ISSUER, "name": "Jane", "email": "jane@example.com"},
        "id_token": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
        "refresh_token": "rt-1",
        "token_sets": [
            {"audience": "default", "access_token": "at-1", "scope": "openid profile email offline_access", "expires_at": NOW + 3600},
            {"audience": "https://api.example.com", "access_token": "at-2", "scope": "read:x", "expires_at": NOW - 10}
        ],
        "connection_token_sets": [
            {"connection": "google-oauth2", "login_hint": null, "access_token": "ct", "scope": "email", "expires_at": NOW + 60}
        ],
        "internal": {"sid": "sid-1", "created_at": NOW, "last_active_at": NOW}
    })
    .to_string()
}
