//! Tests of the emulator itself, over plain HTTP.

use std::time::{Duration, Instant};

use auth0_emulator::{
    ANALYTICS_AUDIENCE, DEFAULT_AUDIENCE, Emulator, EmulatorConfig, FEDERATED_GRANT_TYPE,
    FEDERATED_TOKEN_TYPE, Failure, KeyChoice, REFRESH_TOKEN_TYPE, RefreshGrant, SignAlg,
    SignOptions, decode_header, decode_payload,
};
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

mod emulator_support;
use emulator_support::{Answer, agent, answer};

fn get(url: &str) -> Answer {
    answer(agent().get(url).call())
}

fn post_form(emu: &Emulator, path: &str, params: &[(&str, &str)]) -> Answer {
    answer(
        agent()
            .post(emu.url(path))
            .send_form(params.iter().copied()),
    )
}

/// POST /oauth/token with client_secret_post.
fn token(emu: &Emulator, params: &[(&str, &str)]) -> Answer {
    let mut all = vec![
        ("client_id", emu.client_id()),
        ("client_secret", emu.client_secret()),
    ];
    all.extend_from_slice(params);
    post_form(emu, "/oauth/token", &all)
}

fn refresh(emu: &Emulator, rt: &str, extra: &[(&str, &str)]) -> Answer {
    let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    params.extend_from_slice(extra);
    token(emu, &params)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn aud_contains(claims: &Map<String, Value>, audience: &str) -> bool {
    match &claims["aud"] {
        Value::String(s) => s == audience,
        Value::Array(a) => a.iter().any(|v| v == audience),
        _ => false,
    }
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-chars";
const CALLBACK: &str = "http://localhost:3000/callback";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn authorize(emu: &Emulator, extra: &[(&str, &str)]) -> Answer {
    let challenge = challenge(VERIFIER);
    let mut params = vec![
        ("client_id", emu.client_id()),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let mut url = url::Url::parse(&emu.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    get(url.as_str())
}

#[test]
fn discovery_and_jwks() {
    let emu = Emulator::start(EmulatorConfig::default());
    let d = get(&emu.url("/.well-known/openid-configuration")).json();
    assert_eq!(d["issuer"], emu.issuer());
    assert_eq!(d["token_endpoint"], emu.url("/oauth/token"));
    assert_eq!(d["authorization_endpoint"], emu.url("/authorize"));
    assert_eq!(d["jwks_uri"], emu.url("/.well-known/jwks.json"));
    assert_eq!(
        d["pushed_authorization_request_endpoint"],
        emu.url("/oauth/par")
    );
    assert_eq!(d["end_session_endpoint"], emu.url("/oidc/logout"));
    assert_eq!(d["revocation_endpoint"], emu.url("/oauth/revoke"));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));

    let jwks = get(&emu.url("/.well-known/jwks.json")).json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], emu.current_kid());
    for field in ["kty", "kid", "use", "alg", "n", "e"] {
        assert!(keys[0][field].is_string(), "{field}");
    }
    assert_eq!(keys[0]["e"], "AQAB");

    let first = emu.current_kid();
    emu.rotate_signing_key();
    assert_ne!(emu.current_kid(), first);
    let kids: Vec<Value> = get(&emu.url("/.well-known/jwks.json")).json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, vec![json!(emu.current_kid()), json!(first)]);
}

#[test]
fn refresh_rotates_and_reuse_revokes_the_family() {
    let emu = Emulator::start(EmulatorConfig::default());
    let rt0 = emu.issue_refresh_token(RefreshGrant::default());

    let a = refresh(&emu, &rt0, &[]);
    assert_eq!(a.status, 200, "{}", a.text);
    let body = a.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid profile email offline_access");
    let id = decode_payload(body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["aud"], emu.client_id());
    assert_eq!(id["iss"], emu.issuer());
    assert_eq!(id["sub"], "auth0|emulator-user");
    let at = decode_payload(body["access_token"].as_str().unwrap()).unwrap();
    assert!(aud_contains(&at, DEFAULT_AUDIENCE));
    assert_eq!(at["azp"], emu.client_id());
    let rt1 = body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt0);
    assert!(emu.refresh_token_is_live(&rt1));
    assert!(!emu.refresh_token_is_live(&rt0));

    // Reuse of the rotated token: invalid_grant and the whole family is revoked.
    let reuse = refresh(&emu, &rt0, &[]);
    assert_eq!(reuse.status, 403);
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(
        reuse.json()["error_description"],
        "Unknown or invalid refresh token."
    );
    assert_eq!(emu.revoked_families(), 1);
    assert_eq!(emu.reuse_detections(), 1);
    let latest = refresh(&emu, &rt1, &[]);
    assert_eq!(latest.status, 403);
    assert_eq!(latest.json()["error"], "invalid_grant");

    let unknown = refresh(&emu, "nope", &[]);
    assert_eq!(unknown.status, 403);
    assert_eq!(unknown.json()["error"], "invalid_grant");
}

#[test]
fn without_rotation_the_refresh_token_stays() {
    let emu = Emulator::start(EmulatorConfig {
        rotation: false,
        ..Default::default()
    });
    let rt = emu.issue_refresh_token(RefreshGrant::default());
    for _ in 0..2 {
        let body = refresh(&emu, &rt, &[]).json();
        assert!(body.get("refresh_token").is_none());
        assert!(body["access_token"].is_string());
    }
}

#[test]
fn mrrt_policy_and_fallback_to_the_default_audience() {
    let emu = Emulator::start(EmulatorConfig {
        rotation: false,
        ..Default::default()
    });
    let rt = emu.issue_refresh_token(RefreshGrant::default());

    let allowed = refresh(
        &emu,
        &rt,
        &[
            ("audience", ANALYTICS_AUDIENCE),
            ("scope", "read:analytics"),
        ],
    )
    .json();
    let claims = decode_payload(allowed["access_token"].as_str().unwrap()).unwrap();
    assert!(aud_contains(&claims, ANALYTICS_AUDIENCE));
    assert_eq!(allowed["scope"], "read:analytics");
    assert_eq!(claims["scope"], "read:analytics");
    // Auth0 returns an ID token whenever the original grant included openid, even for an
    // MRRT refresh for another API that does not ask for openid.
    let id = decode_payload(allowed["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["aud"], emu.client_id());

    let outside = refresh(
        &emu,
        &rt,
        &[("audience", "https://not-in-policy.example.com")],
    )
    .json();
    let claims = decode_payload(outside["access_token"].as_str().unwrap()).unwrap();
    assert!(aud_contains(&claims, DEFAULT_AUDIENCE));
    assert!(!aud_contains(&claims, "https://not-in-policy.example.com"));

    // OIDC scopes are only granted when the refresh token had them.
    let grant = emu.issue_refresh_token(RefreshGrant {
        scope: "offline_access".into(),
        ..Default::default()
    });
    let body = refresh(&emu, &grant, &[("scope", "openid read:data")]).json();
    assert_eq!(body["scope"], "read:data");
}

#[test]
fn authorization_code_with_pkce() {
    let emu = Emulator::start(EmulatorConfig::default());
    let a = authorize(&emu, &[("organization", "org_abc123")]);
    assert_eq!(a.status, 302);
    let location = a.location.unwrap();
    assert!(location.starts_with(CALLBACK), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    let code = query_param(&location, "code").unwrap();

    let exchange = |code: &str, verifier: &str| {
        token(
            &emu,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier),
            ],
        )
    };
    let ok = exchange(&code, VERIFIER);
    assert_eq!(ok.status, 200, "{}", ok.text);
    let body = ok.json();
    let id = decode_payload(body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["org_id"], "org_abc123");
    assert!(id["org_name"].is_string());
    assert!(id["sid"].is_string());
    assert_eq!(id["email"], "emulator-user@example.com");
    assert_eq!(
        decode_header(body["id_token"].as_str().unwrap()).unwrap()["alg"],
        "RS256"
    );
    assert!(body["refresh_token"].is_string());
    assert_eq!(body["scope"], "openid profile email offline_access");
    // Single use.
    let again = exchange(&code, VERIFIER);
    assert_eq!(again.status, 403);
    assert_eq!(again.json()["error"], "invalid_grant");

    // Wrong verifier.
    let location = authorize(&emu, &[]).location.unwrap();
    let code = query_param(&location, "code").unwrap();
    let bad = exchange(
        &code,
        "a-wrong-verifier-that-is-long-enough-to-be-valid-syntax",
    );
    assert_eq!(bad.status, 403);
    assert_eq!(bad.json()["error"], "invalid_grant");

    // Wrong redirect_uri.
    let location = authorize(&emu, &[]).location.unwrap();
    let code = query_param(&location, "code").unwrap();
    let bad = token(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:3000/other"),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(bad.json()["error"], "invalid_grant");

    // Authorize error injection.
    emu.set_authorize_error(Some(("access_denied".into(), "User said no".into())));
    let location = authorize(&emu, &[]).location.unwrap();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        query_param(&location, "error_description").as_deref(),
        Some("User said no")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
}

#[test]
fn client_authentication() {
    let emu = Emulator::start(EmulatorConfig::default());
    let rt = emu.issue_refresh_token(RefreshGrant::default());
    let wrong = post_form(
        &emu,
        "/oauth/token",
        &[
            ("client_id", emu.client_id()),
            ("client_secret", "wrong"),
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
        ],
    );
    assert_eq!(wrong.status, 401);
    let missing = post_form(
        &emu,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    );
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error"], "invalid_client");

    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        emu.client_id(),
        emu.client_secret()
    ));
    let ok = answer(
        agent()
            .post(emu.url("/oauth/token"))
            .header("Authorization", format!("Basic {basic}"))
            .send_form([
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
            ]),
    );
    assert_eq!(ok.status, 200, "{}", ok.text);

    let unsupported = token(&emu, &[("grant_type", "password")]);
    assert_eq!(unsupported.status, 400);
    assert_eq!(unsupported.json()["error"], "unsupported_grant_type");
}

#[test]
fn pushed_authorization_request_then_authorize() {
    let emu = Emulator::start(EmulatorConfig::default());
    let challenge = challenge(VERIFIER);
    let details = r#"[{"type":"payment_initiation","amount":"10.00"}]"#;
    let par = post_form(
        &emu,
        "/oauth/par",
        &[
            ("client_id", emu.client_id()),
            ("client_secret", emu.client_secret()),
            ("response_type", "code"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid offline_access"),
            ("state", "par-state"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("authorization_details", details),
        ],
    );
    assert_eq!(par.status, 201, "{}", par.text);
    let body = par.json();
    let request_uri = body["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(body["expires_in"], 60);

    let mut url = url::Url::parse(&emu.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", emu.client_id())
        .append_pair("request_uri", request_uri);
    let location = get(url.as_str()).location.unwrap();
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some("par-state")
    );
    let code = query_param(&location, "code").unwrap();
    let tokens = token(
        &emu,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .json();
    assert_eq!(
        tokens["authorization_details"][0]["type"],
        "payment_initiation"
    );

    // A request_uri is single use.
    assert_eq!(get(url.as_str()).status, 400);
    // PAR requires client authentication.
    let unauth = post_form(
        &emu,
        "/oauth/par",
        &[("client_id", emu.client_id()), ("redirect_uri", CALLBACK)],
    );
    assert_eq!(unauth.status, 401);
}

#[test]
fn federated_connection_exchange() {
    let emu = Emulator::start(EmulatorConfig::default());
    let rt = emu.issue_refresh_token(RefreshGrant::default());
    let exchange = |connection: &str, subject: &str| {
        token(
            &emu,
            &[
                ("grant_type", FEDERATED_GRANT_TYPE),
                ("subject_token_type", REFRESH_TOKEN_TYPE),
                ("subject_token", subject),
                ("requested_token_type", FEDERATED_TOKEN_TYPE),
                ("connection", connection),
                ("login_hint", "user@gmail.com"),
            ],
        )
    };
    let ok = exchange("google-oauth2", &rt);
    assert_eq!(ok.status, 200, "{}", ok.text);
    let body = ok.json();
    assert_eq!(body["access_token"], "ya29.emulator-google-access-token");
    assert_eq!(body["issued_token_type"], FEDERATED_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_u64() && body["scope"].is_string());
    // The exchange does not rotate the refresh token.
    assert!(emu.refresh_token_is_live(&rt));

    // Auth0's Token Vault answers 401 when it holds no token for the connection.
    let unknown = exchange("github", &rt);
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.json()["error"],
        "federated_connection_refresh_token_not_found"
    );
    let bad_subject = exchange("google-oauth2", "not-a-token");
    assert_eq!(bad_subject.json()["error"], "invalid_grant");
    assert_eq!(
        emu.token_requests()[0].param("login_hint"),
        Some("user@gmail.com")
    );
}

#[test]
fn failure_injection() {
    let emu = Emulator::start(EmulatorConfig::default());
    let rt = emu.issue_refresh_token(RefreshGrant::default());
    emu.fail_next("/oauth/token", Failure::Status(500), 1);
    emu.fail_next("/oauth/token", Failure::Html, 1);
    emu.fail_next("/oauth/token", Failure::MalformedJson, 1);
    emu.fail_next("/oauth/token", Failure::Empty, 1);
    emu.fail_next(
        "/oauth/token",
        Failure::OAuth {
            status: 403,
            body: json!({"error": "mfa_required", "error_description": "Multifactor authentication required",
                "mfa_token": "mfa-tok", "mfa_requirements": {"challenge": [{"type": "otp"}]}}),
        },
        1,
    );
    let a = refresh(&emu, &rt, &[]);
    assert_eq!(a.status, 500);
    let a = refresh(&emu, &rt, &[]);
    assert_eq!(a.status, 502);
    assert!(a.content_type.unwrap().starts_with("text/html"));
    let a = refresh(&emu, &rt, &[]);
    assert_eq!(a.status, 200);
    assert!(serde_json::from_str::<Value>(&a.text).is_err());
    let a = refresh(&emu, &rt, &[]);
    assert_eq!((a.status, a.text.as_str()), (200, ""));
    let a = refresh(&emu, &rt, &[]);
    assert_eq!(a.status, 403);
    assert_eq!(a.json()["mfa_token"], "mfa-tok");
    // Injected failures did not consume the refresh token.
    let a = refresh(&emu, &rt, &[]);
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(emu.token_requests().len(), 6);

    emu.fail_next(
        "/.well-known/jwks.json",
        Failure::Slow(Duration::from_millis(300)),
        1,
    );
    let started = Instant::now();
    let slow = get(&emu.url("/.well-known/jwks.json"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(slow.status, 200);
    let timed_out = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(100)))
        .build()
        .new_agent();
    emu.fail_next(
        "/.well-known/jwks.json",
        Failure::Slow(Duration::from_millis(500)),
        1,
    );
    assert!(
        timed_out
            .get(&emu.url("/.well-known/jwks.json"))
            .call()
            .is_err()
    );
}

#[test]
fn request_log() {
    let emu = Emulator::start(EmulatorConfig::default());
    get(&emu.url("/.well-known/openid-configuration?x=1"));
    let rt = emu.issue_refresh_token(RefreshGrant::default());
    refresh(&emu, &rt, &[("audience", DEFAULT_AUDIENCE)]);
    let all = emu.requests();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].method, "GET");
    assert_eq!(all[0].path, "/.well-known/openid-configuration");
    assert_eq!(all[0].param("x"), Some("1"));
    let t = &emu.token_requests()[0];
    assert_eq!(t.param("grant_type"), Some("refresh_token"));
    assert_eq!(t.param("audience"), Some(DEFAULT_AUDIENCE));
    assert_eq!(t.param("client_secret"), Some(emu.client_secret()));
    assert!(
        t.header("CONTENT-TYPE")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    assert!(!t.body.is_empty());
    assert_eq!(emu.requests_to("/oauth/token").len(), 1);
    emu.clear_requests();
    assert!(emu.requests().is_empty());
    assert_eq!(get(&emu.url("/nope")).status, 404);
    assert_eq!(emu.requests()[0].path, "/nope");
}

#[test]
fn protected_api_logout_and_revoke() {
    let emu = Emulator::start(EmulatorConfig::default());
    let at = emu.mint_access_token("auth0|x", DEFAULT_AUDIENCE, "read:data", 60);
    let call = |token: &str| {
        answer(
            agent()
                .get(emu.url("/api/data"))
                .header("Authorization", format!("Bearer {token}"))
                .call(),
        )
    };
    let ok = call(&at);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["sub"], "auth0|x");
    assert_eq!(ok.json()["scope"], "read:data");
    assert_eq!(
        call(&emu.mint_access_token("auth0|x", ANALYTICS_AUDIENCE, "", 60)).status,
        401
    );
    assert_eq!(get(&emu.url("/api/data")).status, 401);
    assert_eq!(call("garbage.garbage.garbage").status, 401);

    let out = get(&emu.url("/v2/logout?client_id=c&returnTo=http%3A%2F%2Flocalhost%3A3000%2F"));
    assert_eq!(
        (out.status, out.location.as_deref()),
        (302, Some("http://localhost:3000/"))
    );
    assert_eq!(get(&emu.url("/v2/logout")).status, 200);
    let oidc = get(&emu.url("/oidc/logout?post_logout_redirect_uri=http%3A%2F%2Flocalhost%2Fbye"));
    assert_eq!(oidc.location.as_deref(), Some("http://localhost/bye"));

    let rt = emu.issue_refresh_token(RefreshGrant::default());
    let revoked = post_form(
        &emu,
        "/oauth/revoke",
        &[
            ("client_id", emu.client_id()),
            ("client_secret", emu.client_secret()),
            ("token", &rt),
        ],
    );
    assert_eq!(revoked.status, 200);
    assert!(!emu.refresh_token_is_live(&rt));
    assert_eq!(refresh(&emu, &rt, &[]).json()["error"], "invalid_grant");
}

#[test]
fn minted_tokens_for_negative_tests() {
    let emu = Emulator::start(EmulatorConfig::default());
    let mut claims = Map::new();
    claims.insert("nonce".into(), "abc".into());
    claims.insert("sid".into(), Value::Null);
    let token = emu.mint_id_token(claims, SignOptions::default());
    let payload = decode_payload(&token).unwrap();
    assert_eq!(payload["nonce"], "abc");
    assert!(payload.get("sid").is_none());
    assert_eq!(payload["aud"], emu.client_id());
    assert_eq!(decode_header(&token).unwrap()["kid"], emu.current_kid());

    let none = emu.mint_id_token(
        Map::new(),
        SignOptions {
            alg: SignAlg::None,
            ..Default::default()
        },
    );
    assert_eq!(decode_header(&none).unwrap()["alg"], "none");
    assert!(none.ends_with('.'));
    let hs = emu.mint_id_token(
        Map::new(),
        SignOptions {
            alg: SignAlg::Hs256,
            ..Default::default()
        },
    );
    assert_eq!(decode_header(&hs).unwrap()["alg"], "HS256");
    let unpublished = emu.mint_id_token(
        Map::new(),
        SignOptions {
            key: KeyChoice::Unpublished,
            ..Default::default()
        },
    );
    assert_ne!(
        decode_header(&unpublished).unwrap()["kid"],
        emu.current_kid()
    );

    // A bad signature is rejected by the emulator's own verifier.
    let at = emu.mint_access_token("auth0|x", DEFAULT_AUDIENCE, "", 60);
    let bad = format!("{}x", &at[..at.len() - 1]);
    let status = answer(
        agent()
            .get(emu.url("/api/data"))
            .header("Authorization", format!("Bearer {bad}"))
            .call(),
    )
    .status;
    assert_eq!(status, 401);

    let logout = emu.mint_logout_token(Some("auth0|emulator-user"), Some("sid-1"), Map::new());
    let p = decode_payload(&logout).unwrap();
    assert!(p["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert_eq!(p["sid"], "sid-1");
    assert!(p["jti"].is_string() && p["iat"].is_u64());
    assert!(p.get("nonce").is_none());
}

#[test]
fn many_concurrent_keep_alive_clients() {
    let emu = Emulator::start(EmulatorConfig::default());
    emu.fail_next(
        "/.well-known/jwks.json",
        Failure::Slow(Duration::from_millis(200)),
        64,
    );
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                let agent = agent();
                for _ in 0..2 {
                    let mut r = agent.get(emu.url("/.well-known/jwks.json")).call().unwrap();
                    assert_eq!(r.status(), 200);
                    r.body_mut().read_to_string().unwrap();
                }
            });
        }
    });
    // 64 slow requests in parallel, not one after another.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let requests = emu.requests();
    assert_eq!(requests.len(), 128);
    // Each client reused its keep-alive connection for its second request.
    let mut peers: Vec<_> = requests.iter().map(|r| r.peer.unwrap()).collect();
    peers.sort();
    peers.dedup();
    assert_eq!(peers.len(), 64);
}

#[test]
fn malformed_input_is_answered_not_panicked() {
    let emu = Emulator::start(EmulatorConfig::default());
    for params in [
        vec![],
        vec![("grant_type", "authorization_code")],
        vec![("grant_type", "authorization_code"), ("code", "x")],
        vec![("grant_type", FEDERATED_GRANT_TYPE)],
        vec![("grant_type", "refresh_token")],
    ] {
        let a = token(&emu, &params);
        assert!((400..500).contains(&a.status), "{params:?} -> {}", a.status);
        assert!(a.json()["error"].is_string());
    }
    let garbage = answer(
        agent()
            .post(emu.url("/oauth/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(&b"%%%\xff\xfe=&&=="[..]),
    );
    assert_eq!(garbage.status, 401);
    assert_eq!(get(&emu.url("/authorize")).status, 400);
    assert_eq!(
        get(&emu.url("/authorize?client_id=emulator-client&redirect_uri=not%20a%20url")).status,
        400
    );
    let header = answer(
        agent()
            .get(emu.url("/api/data"))
            .header("Authorization", "Basic")
            .call(),
    );
    assert_eq!(header.status, 401);
}

#[test]
fn dropping_the_emulator_stops_the_server() {
    let emu = Emulator::start(EmulatorConfig::default());
    let url = emu.url("/.well-known/jwks.json");
    assert_eq!(get(&url).status, 200);
    let started = Instant::now();
    drop(emu);
    assert!(started.elapsed() < Duration::from_secs(2));
    let fresh: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    assert!(fresh.get(&url).call().is_err());
}
