//! DPoP (RFC 9449) in the core: what a proof says, when a request is sent again with a
//! server's nonce, which requests carry a proof, and how token types are read and stored.

use auth0_server_protocol::__internals::b64;
use auth0_server_protocol::access_token::AccessToken;
use auth0_server_protocol::config::{Config, TokenType};
use auth0_server_protocol::discovery::Metadata;
use auth0_server_protocol::dpop::{self, DpopError, DpopKey, NonceRetry, ProofFor};
use auth0_server_protocol::effect::AtSend;
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::StateData;
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::token_response::{
    ResponseError, parse_token_response, parse_token_response_expecting,
};
use p256::ecdsa::signature::Verifier;
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const EC_PEM: &str = include_str!("../../tests/data/client_keys/ec.pem");

fn key() -> DpopKey {
    DpopKey::parse(EC_PEM).unwrap()
}

/// Header and claims of a proof, after checking its signature with the `jwk` it embeds.
fn verified(proof: &str) -> (Value, Value) {
    let parts: Vec<&str> = proof.split('.').collect();
    assert_eq!(parts.len(), 3);
    let json = |s: &str| serde_json::from_slice::<Value>(&b64::decode(s).unwrap()).unwrap();
    let (header, claims) = (json(parts[0]), json(parts[1]));
    let coordinate = |n: &str| b64::decode(header["jwk"][n].as_str().unwrap()).unwrap();
    let mut point = vec![4u8];
    point.extend(coordinate("x"));
    point.extend(coordinate("y"));
    let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&b64::decode(parts[2]).unwrap()).unwrap();
    public
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("signed by the embedded key");
    (header, claims)
}

fn config() -> Config {
    Config::builder("t.auth0.com", "cid")
        .client_secret("s")
        .dpop(EC_PEM)
        .secret("0123456789abcdef0123456789abcdef")
        .build()
        .unwrap()
}

fn metadata() -> Metadata {
    serde_json::from_value(json!({
        "issuer": "https://t.auth0.com/",
        "authorization_endpoint": "https://t.auth0.com/authorize",
        "token_endpoint": "https://t.auth0.com/oauth/token",
        "revocation_endpoint": "https://t.auth0.com/oauth/revoke",
    }))
    .unwrap()
}

fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Vec<u8>> {
    let mut r = http::Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(body.as_bytes().to_vec()).unwrap()
}

fn nonce_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[!#-\\[\\]-~]{1,40}",     // NQCHAR: a usable nonce
        Just(String::new()),       // empty
        "[ -~]{0,20}\"[ -~]{0,5}", // with a quote: not NQCHAR
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the method, URL (query and fragment included), nonce, token, time and
    /// random bytes: the proof is signed by its embedded key, typed `dpop+jwt`, and says
    /// exactly them — `htu` without query and fragment, `ath` only with a token.
    #[test]
    fn every_proof_verifies_and_says_what_it_was_given(
        method in prop_oneof![Just("GET"), Just("POST"), Just("DELETE")],
        path in "/[a-z/]{0,12}",
        query in proptest::option::of("[a-z]{1,5}=[a-z0-9]{1,5}"),
        fragment in proptest::option::of("[a-z]{1,5}"),
        nonce in proptest::option::of("[!#-\\[\\]-~]{1,30}"),
        token in proptest::option::of("[A-Za-z0-9._-]{1,60}"),
        now in 0u64..4_000_000_000,
        random in proptest::collection::vec(any::<u8>(), 16..32),
    ) {
        let base = format!("https://api.example.com{path}");
        let mut url = base.clone();
        if let Some(q) = &query { url.push('?'); url.push_str(q); }
        if let Some(f) = &fragment { url.push('#'); url.push_str(f); }
        let what = ProofFor { method, url: &url, nonce: nonce.as_deref(), access_token: token.as_deref() };
        let proof = dpop::proof(&key(), &what, UnixTime::from_secs(now), &random).unwrap();
        let (header, claims) = verified(&proof);
        prop_assert_eq!(&header["typ"], "dpop+jwt");
        prop_assert_eq!(&header["alg"], "ES256");
        let k = key();
        prop_assert_eq!(&header["jwk"], k.public_jwk());
        prop_assert!(header["jwk"].get("d").is_none());
        prop_assert_eq!(&claims["htm"], method);
        let expected_htu = url::Url::parse(&base).unwrap().to_string();
        prop_assert_eq!(claims["htu"].as_str(), Some(expected_htu.as_str()));
        prop_assert!(!claims["htu"].as_str().unwrap().contains(['?', '#']));
        prop_assert_eq!(claims["iat"].as_u64(), Some(now));
        let jti = b64::encode(&random[..16]);
        prop_assert_eq!(claims["jti"].as_str(), Some(jti.as_str()));
        prop_assert_eq!(claims.get("nonce").and_then(Value::as_str), nonce.as_deref());
        let ath = token.as_deref().map(|t| b64::encode(&Sha256::digest(t.as_bytes())));
        prop_assert_eq!(claims.get("ath").and_then(Value::as_str), ath.as_deref());
    }

    /// The token endpoint's nonce retry: at most once, only for a 400/401 `use_dpop_nonce`
    /// answer, and only with the nonce the server gave (a usable one).
    #[test]
    fn token_endpoint_retries_at_most_once_and_only_with_the_servers_nonce(
        status in prop_oneof![Just(200u16), Just(400), Just(401), Just(403), Just(500)],
        error in prop_oneof![Just("use_dpop_nonce"), Just("invalid_grant"), Just("invalid_dpop_proof")],
        in_body in any::<bool>(),
        nonce in proptest::option::of(nonce_strategy()),
        retries in 0u8..3,
    ) {
        let body = if in_body { json!({"error": error}).to_string() } else { "{}".into() };
        let challenge = format!("DPoP error=\"{error}\"");
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if !in_body { headers.push(("www-authenticate", &challenge)); }
        if let Some(n) = &nonce { headers.push(("dpop-nonce", n)); }
        let decision = dpop::token_endpoint_retry(&answer(status, &headers, &body), retries);
        let usable = nonce.as_deref().filter(|n| !n.is_empty() && !n.contains('"'));
        let expected = match usable {
            Some(n) if retries == 0 && matches!(status, 400 | 401) && error == "use_dpop_nonce" => {
                NonceRetry::RetryWith(n.to_owned())
            }
            _ => NonceRetry::Done,
        };
        prop_assert_eq!(decision, expected);
    }

    /// A resource server's nonce challenge: a 401 with `WWW-Authenticate: DPoP
    /// error="use_dpop_nonce"` and a usable `DPoP-Nonce`, retried once.
    #[test]
    fn resource_retries_at_most_once_on_a_dpop_nonce_challenge(
        status in prop_oneof![Just(200u16), Just(400), Just(401), Just(403)],
        scheme in prop_oneof![Just("DPoP"), Just("dpop"), Just("Bearer")],
        error in prop_oneof![Just("use_dpop_nonce"), Just("invalid_token")],
        nonce in proptest::option::of(nonce_strategy()),
        retries in 0u8..3,
    ) {
        let mut headers = http::HeaderMap::new();
        headers.insert("www-authenticate", format!("{scheme} algs=\"ES256\", error=\"{error}\"").parse().unwrap());
        if let Some(n) = &nonce {
            if let Ok(v) = n.parse() { headers.insert("dpop-nonce", v); }
        }
        let decision = dpop::resource_retry(http::StatusCode::from_u16(status).unwrap(), &headers, retries);
        let usable = nonce.as_deref().filter(|n| !n.is_empty() && !n.contains('"'));
        let expected = match usable {
            Some(n) if retries == 0 && status == 401 && scheme != "Bearer" && error == "use_dpop_nonce" => {
                NonceRetry::RetryWith(n.to_owned())
            }
            _ => NonceRetry::Done,
        };
        prop_assert_eq!(decision, expected);
    }
}

#[test]
fn htu_is_the_url_without_query_and_fragment() {
    assert_eq!(
        dpop::htu("https://T.Auth0.com:443/oauth/token?x=1#f").unwrap(),
        "https://t.auth0.com/oauth/token"
    );
    assert_eq!(
        dpop::htu("http://127.0.0.1:8080/api/dpop?page=2").unwrap(),
        "http://127.0.0.1:8080/api/dpop"
    );
    assert_eq!(
        dpop::htu("https://user:pass@api.example.com/x?q").unwrap(),
        "https://api.example.com/x",
        "no credentials in a proof"
    );
    for bad in ["/relative", "mailto:a@b", "not a url", "file:///etc/passwd"] {
        assert_eq!(dpop::htu(bad), Err(DpopError::InvalidUrl), "{bad}");
    }
}

#[test]
fn token_endpoint_requests_carry_a_proof_made_at_sending_revocation_does_not() {
    let (config, metadata) = (config(), metadata());
    let refresh = auth0_server_protocol::access_token::refresh_request(
        &config,
        &metadata,
        &Secret::new("rt"),
        "default",
        None,
    );
    assert!(refresh.wants_dpop_proof());
    assert!(refresh.request.headers().get("dpop").is_none(), "not yet");
    let now = UnixTime::from_secs(1_700_000_000);
    let at_send = refresh.at_send.clone();
    assert_eq!(at_send, [AtSend::DpopProof { nonce: None }]);
    let send = |nonce: Option<&str>, seed: u8| {
        let mut request = refresh.duplicate().request;
        for part in &at_send {
            request = part
                .apply(request, &config, now, &[seed; 16], nonce)
                .unwrap();
        }
        request
    };
    let sent = send(Some("n-1"), 1);
    let proof = sent.headers()["dpop"].to_str().unwrap();
    let (_, claims) = verified(proof);
    assert_eq!(claims["htm"], "POST");
    assert_eq!(claims["htu"], "https://t.auth0.com/oauth/token");
    assert_eq!(claims["nonce"], "n-1", "the driver's remembered nonce");
    assert_ne!(
        send(None, 2).headers()["dpop"],
        sent.headers()["dpop"],
        "a new proof per sending"
    );
    // A nonce the request was given wins over the remembered one.
    let mut retried = refresh.duplicate();
    retried.set_dpop_nonce("n-2");
    let request = retried.at_send[0]
        .apply(retried.request, &config, now, &[3; 16], Some("n-1"))
        .unwrap();
    let (_, claims) = verified(request.headers()["dpop"].to_str().unwrap());
    assert_eq!(claims["nonce"], "n-2");
    // Revocation is not a DPoP endpoint.
    let revoke = auth0_server_protocol::token_endpoint::revocation_request(
        &config,
        &metadata,
        &Secret::new("rt"),
    )
    .unwrap();
    assert!(!revoke.wants_dpop_proof());
    // Without a DPoP key the proof cannot be made: a typed error, not a panic.
    let bearer = Config::builder("t.auth0.com", "cid")
        .client_secret("s")
        .secret("0123456789abcdef0123456789abcdef")
        .build()
        .unwrap();
    let e = at_send[0]
        .apply(refresh.duplicate().request, &bearer, now, &[0; 16], None)
        .unwrap_err();
    assert_eq!(e.code(), "dpop_failed");
}

#[test]
fn a_dpop_client_accepts_only_dpop_tokens_and_a_bearer_client_only_bearer_ones() {
    let ok = |t: &str| {
        answer(
            200,
            &[],
            &json!({"access_token": "at", "token_type": t}).to_string(),
        )
    };
    for t in ["DPoP", "dpop", "DPOP"] {
        let r = parse_token_response_expecting(&ok(t), Some(TokenType::Dpop)).unwrap();
        assert_eq!(r.kind(), TokenType::Dpop);
        assert!(
            parse_token_response(&ok(t)).is_err(),
            "a bearer client refuses {t}"
        );
    }
    for t in ["Bearer", "bearer"] {
        match parse_token_response_expecting(&ok(t), Some(TokenType::Dpop)) {
            Err(ResponseError::TokenTypeMismatch { expected, received }) => {
                assert_eq!((expected, received.as_str()), (TokenType::Dpop, t));
            }
            other => panic!("{other:?}"),
        }
    }
    let untyped = answer(200, &[], r#"{"access_token":"at"}"#);
    assert!(matches!(
        parse_token_response_expecting(&untyped, Some(TokenType::Dpop)),
        Err(ResponseError::TokenTypeMismatch { .. })
    ));
    assert_eq!(
        parse_token_response(&untyped).unwrap().kind(),
        TokenType::Bearer
    );
    // Either, for a rotation or a federated token; an unknown type never.
    assert!(parse_token_response_expecting(&ok("Bearer"), None).is_ok());
    assert!(parse_token_response_expecting(&ok("DPoP"), None).is_ok());
    assert!(parse_token_response_expecting(&ok("MAC"), None).is_err());
}

#[test]
fn sessions_store_the_token_type_only_when_it_is_not_bearer() {
    let peer = json!({
        "user": {"sub": "u"},
        "token_sets": [{"audience": "default", "access_token": "at", "scope": "openid", "expires_at": 10}],
        "internal": {"sid": "s", "created_at": 1}
    });
    let mut session: StateData = serde_json::from_value(peer.clone()).unwrap();
    assert_eq!(session.token_sets[0].token_type, TokenType::Bearer);
    assert_eq!(
        serde_json::to_value(&session).unwrap()["token_sets"],
        peer["token_sets"],
        "a bearer session keeps the peers' exact shape"
    );
    session.token_sets[0].token_type = TokenType::Dpop;
    let written = serde_json::to_value(&session).unwrap();
    assert_eq!(written["token_sets"][0]["token_type"], "DPoP");
    let read: StateData = serde_json::from_value(written).unwrap();
    assert_eq!(read.token_sets[0].token_type, TokenType::Dpop);
}

#[test]
fn resource_headers_need_a_dpop_bound_token() {
    let token = |token_type| AccessToken {
        access_token: Secret::new("the-access-token"),
        audience: "default".into(),
        scope: None,
        expires_at: 0,
        token_type,
    };
    let now = UnixTime::from_secs(1_700_000_000);
    let headers = dpop::resource_headers(
        &key(),
        &token(TokenType::Dpop),
        "POST",
        "https://api.example.com/orders?x=1",
        Some("rs-nonce"),
        now,
        &[5; 16],
    )
    .unwrap();
    assert_eq!(headers.authorization(), "DPoP the-access-token");
    let (_, claims) = verified(headers.proof());
    assert_eq!(claims["htu"], "https://api.example.com/orders");
    assert_eq!(claims["nonce"], "rs-nonce");
    assert_eq!(claims["ath"], dpop::access_token_hash("the-access-token"));
    assert!(!format!("{headers:?}").contains("the-access-token"));
    let mut map = http::HeaderMap::new();
    headers.apply_to(&mut map).unwrap();
    assert_eq!(map["authorization"], "DPoP the-access-token");
    assert!(map["authorization"].is_sensitive());
    assert_eq!(
        dpop::resource_headers(
            &key(),
            &token(TokenType::Bearer),
            "GET",
            "https://a/",
            None,
            now,
            &[5; 16]
        )
        .unwrap_err(),
        DpopError::NotDpopBound(TokenType::Bearer)
    );
    assert_eq!(
        dpop::resource_headers(
            &key(),
            &token(TokenType::Dpop),
            "GET",
            "https://a/",
            None,
            now,
            &[5; 8]
        )
        .unwrap_err(),
        DpopError::NotEnoughRandom
    );
}

#[test]
fn a_nonce_challenge_spent_nothing_and_is_never_remembered_or_published() {
    use auth0_server_protocol::effect::Coalesce;
    use auth0_server_protocol::flight::{Share, settle};
    let refresh = Coalesce {
        key: "refresh lane default ".into(),
        remember: true,
        lane: Some("lane".into()),
    };
    let challenge = answer(
        400,
        &[("dpop-nonce", "n-1")],
        r#"{"error":"use_dpop_nonce","error_description":"nonce required"}"#,
    );
    let settled = settle(&refresh, &challenge);
    assert_eq!(settled.share, Share::Unspent);
    assert!(settled.rotated_to.is_none());
    // Without the nonce header it is an ordinary failure.
    let no_nonce = answer(400, &[], r#"{"error":"use_dpop_nonce"}"#);
    assert_eq!(settle(&refresh, &no_nonce).share, Share::FailureOnly);
}

#[test]
fn a_dpop_challenge_among_several_is_recognised() {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "www-authenticate",
        r#"Bearer realm="api", DPoP algs="ES256", error="use_dpop_nonce""#
            .parse()
            .unwrap(),
    );
    headers.insert("dpop-nonce", "n-9".parse().unwrap());
    assert_eq!(
        dpop::resource_retry(http::StatusCode::UNAUTHORIZED, &headers, 0),
        NonceRetry::RetryWith("n-9".into())
    );
}

#[test]
fn a_request_can_need_a_client_assertion_and_a_proof() {
    use auth0_server_protocol::config::AssertionAlg;
    let config = Config::builder("t.auth0.com", "cid")
        .private_key_jwt(
            include_str!("../../tests/data/client_keys/rsa.pem"),
            AssertionAlg::Rs256,
        )
        .dpop(EC_PEM)
        .secret("0123456789abcdef0123456789abcdef")
        .build()
        .unwrap();
    let req = auth0_server_protocol::access_token::refresh_request(
        &config,
        &metadata(),
        &Secret::new("rt"),
        "default",
        None,
    );
    assert!(matches!(
        req.at_send.as_slice(),
        [
            AtSend::ClientAssertion { .. },
            AtSend::DpopProof { nonce: None }
        ]
    ));
    let mut request = req.request;
    let now = UnixTime::from_secs(1_700_000_000);
    for part in &req.at_send {
        let random = vec![4u8; part.random_len()];
        request = part.apply(request, &config, now, &random, None).unwrap();
    }
    let body = String::from_utf8(request.body().clone()).unwrap();
    assert!(body.contains("client_assertion="), "{body}");
    let (_, claims) = verified(request.headers()["dpop"].to_str().unwrap());
    assert_eq!(claims["htu"], "https://t.auth0.com/oauth/token");
}
