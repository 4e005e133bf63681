//! The emulator answers as Auth0 does (issue 21), over plain HTTP: the ID token on refresh,
//! MRRT policies with scopes, Token Vault's errors and rotation rule, back-channel logout
//! delivery, and `mfa_required` by policy.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use auth0_emulator::{
    ANALYTICS_AUDIENCE, BACKCHANNEL_LOGOUT_EVENT, BackchannelDelivery, DEFAULT_AUDIENCE,
    DeliveryOutcome, Emulator, EmulatorConfig, FEDERATED_GRANT_TYPE, FEDERATED_TOKEN_TYPE,
    LogoutTrigger, MfaPolicy, MfaRequirements, MfaTarget, REFRESH_TOKEN_TYPE, RefreshGrant,
    RefreshTokenPolicy, decode_header, decode_payload,
};
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

mod emulator_support;
use emulator_support::{Answer, agent, answer};

fn refresh(emu: &Emulator, rt: &str, extra: &[(&str, &str)]) -> Answer {
    let mut params = vec![
        ("client_id", emu.client_id()),
        ("client_secret", emu.client_secret()),
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
    ];
    params.extend_from_slice(extra);
    answer(agent().post(emu.url("/oauth/token")).send_form(params))
}

fn claims(token: &Value) -> Map<String, Value> {
    decode_payload(token.as_str().expect("a token")).expect("a JWT")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-chars";
const CALLBACK: &str = "http://localhost:3000/callback";

/// A login: `/authorize` then the code exchange. Returns the session cookie (`name=value`) and
/// the token response.
fn login(emu: &Emulator) -> (String, Value) {
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(VERIFIER.as_bytes()));
    let mut url = url::Url::parse(&emu.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("client_id", emu.client_id()),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email offline_access"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let authorized = answer(agent().get(url.as_str()).call());
    let cookie = authorized
        .set_cookie
        .iter()
        .find_map(|c| c.split(';').next().filter(|p| p.starts_with("auth0=")))
        .expect("an Auth0 session cookie")
        .to_owned();
    let code = query_param(&authorized.location.unwrap(), "code").unwrap();
    let tokens = answer(agent().post(emu.url("/oauth/token")).send_form([
        ("client_id", emu.client_id()),
        ("client_secret", emu.client_secret()),
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ]));
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    (cookie, tokens.json())
}

/// A decoded form body.
type Form = Vec<(String, String)>;

/// A loopback application's back-channel logout endpoint: records every request's form
/// body and answers `status`.
struct Receiver {
    uri: String,
    received: Arc<Mutex<Vec<Form>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (server, received) = (server.clone(), received.clone());
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let mut body = Vec::new();
                    let _ = request.as_reader().read_to_end(&mut body);
                    let form = url::form_urlencoded::parse(&body).into_owned().collect();
                    received.lock().unwrap().push(form);
                    let _ = request.respond(tiny_http::Response::empty(status));
                }
            })
        };
        Receiver {
            uri: format!("http://127.0.0.1:{port}/backchannel-logout"),
            received,
            server,
            thread: Some(thread),
        }
    }

    fn received(&self) -> Vec<Form> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Checks a delivered logout token against OpenID Back-Channel Logout 1.0 §2.4.
fn assert_logout_token(emu: &Emulator, token: &str, sid: Option<&str>, sub: Option<&str>) {
    let header = decode_header(token).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], emu.current_kid());
    let c = decode_payload(token).unwrap();
    assert_eq!(c["iss"], emu.issuer());
    assert_eq!(c["aud"], emu.client_id());
    let (iat, exp) = (c["iat"].as_u64().unwrap(), c["exp"].as_u64().unwrap());
    assert!(exp > iat);
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(c["events"], json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
    assert!(
        c.get("nonce").is_none(),
        "a logout token never carries a nonce"
    );
    assert_eq!(c.get("sid").and_then(Value::as_str), sid);
    assert_eq!(c.get("sub").and_then(Value::as_str), sub);
}

#[test]
fn refresh_returns_an_id_token_when_the_original_grant_had_openid() {
    let emu = Emulator::start(EmulatorConfig {
        rotation: false,
        ..Default::default()
    });
    let rt = emu.issue_refresh_token(RefreshGrant {
        sid: Some("sid-openid".into()),
        ..Default::default()
    });
    // An MRRT refresh for another API, without openid in the request.
    let body = refresh(
        &emu,
        &rt,
        &[
            ("audience", ANALYTICS_AUDIENCE),
            ("scope", "read:analytics"),
        ],
    )
    .json();
    assert_eq!(body["scope"], "read:analytics");
    let id = claims(&body["id_token"]);
    assert_eq!(id["sid"], "sid-openid");
    assert_eq!(id["sub"], "auth0|emulator-user");
    assert!(id.get("nonce").is_none());
    // No scope at all.
    assert!(refresh(&emu, &rt, &[]).json()["id_token"].is_string());

    // Without openid in the original grant, asking for it on refresh gets neither openid nor
    // an ID token.
    let no_openid = emu.issue_refresh_token(RefreshGrant {
        scope: "offline_access read:data".into(),
        ..Default::default()
    });
    let body = refresh(&emu, &no_openid, &[("scope", "openid read:data")]).json();
    assert_eq!(body["scope"], "read:data");
    assert!(body.get("id_token").is_none(), "{body}");
}

#[test]
fn mrrt_policies_grant_only_permitted_scopes() {
    let emu = Emulator::start(EmulatorConfig {
        rotation: false,
        refresh_token_policies: vec![RefreshTokenPolicy::new(
            ANALYTICS_AUDIENCE,
            &["read:analytics"],
        )],
        ..Default::default()
    });
    let rt = emu.issue_refresh_token(RefreshGrant {
        scope: "openid offline_access read:data".into(),
        audience: Some(DEFAULT_AUDIENCE.into()),
        ..Default::default()
    });

    // The server grants fewer scopes than requested: write:analytics is not in the policy.
    let body = refresh(
        &emu,
        &rt,
        &[
            ("audience", ANALYTICS_AUDIENCE),
            ("scope", "openid read:analytics write:analytics"),
        ],
    )
    .json();
    assert_eq!(body["scope"], "openid read:analytics");
    let at = claims(&body["access_token"]);
    assert_eq!(at["scope"], "openid read:analytics");
    assert!(
        at["aud"]
            .as_array()
            .unwrap()
            .contains(&json!(ANALYTICS_AUDIENCE))
    );

    // The original grant's API scopes do not carry over to another API.
    let body = refresh(
        &emu,
        &rt,
        &[("audience", ANALYTICS_AUDIENCE), ("scope", "read:data")],
    )
    .json();
    assert_eq!(body["scope"], "");

    // No scope requested for the other API: the grant's OIDC scopes and the policy's scopes.
    let body = refresh(&emu, &rt, &[("audience", ANALYTICS_AUDIENCE)]).json();
    assert_eq!(body["scope"], "openid offline_access read:analytics");

    // The original audience: the original grant's scopes, nothing beyond (no policy for it).
    let body = refresh(&emu, &rt, &[("scope", "openid read:data write:data")]).json();
    assert_eq!(body["scope"], "openid read:data");
    let body = refresh(&emu, &rt, &[("audience", DEFAULT_AUDIENCE)]).json();
    assert_eq!(body["scope"], "openid offline_access read:data");

    // An audience without a policy falls back to the default audience (its scopes only).
    let body = refresh(
        &emu,
        &rt,
        &[
            ("audience", "https://admin.example.com"),
            ("scope", "read:data admin:all"),
        ],
    )
    .json();
    let at = claims(&body["access_token"]);
    assert_eq!(at["aud"], json!(DEFAULT_AUDIENCE));
    assert_eq!(body["scope"], "read:data");
}

#[test]
fn the_default_policies_cover_the_default_and_analytics_apis() {
    let emu = Emulator::start(EmulatorConfig::default());
    assert_eq!(
        emu.config().refresh_token_policies,
        vec![
            RefreshTokenPolicy::new(DEFAULT_AUDIENCE, &auth0_emulator::DEFAULT_API_SCOPES),
            RefreshTokenPolicy::new(ANALYTICS_AUDIENCE, &auth0_emulator::ANALYTICS_API_SCOPES),
        ]
    );
    let rt = emu.issue_refresh_token(RefreshGrant::default());
    let body = refresh(
        &emu,
        &rt,
        &[(
            "scope",
            "openid read:products write:orders delete:everything",
        )],
    )
    .json();
    assert_eq!(body["scope"], "openid read:products write:orders");
}

#[test]
fn token_vault_errors_and_the_rotation_rule() {
    let exchange = |emu: &Emulator, rt: &str, connection: &str| {
        answer(agent().post(emu.url("/oauth/token")).send_form([
            ("client_id", emu.client_id()),
            ("client_secret", emu.client_secret()),
            ("grant_type", FEDERATED_GRANT_TYPE),
            ("subject_token_type", REFRESH_TOKEN_TYPE),
            ("subject_token", rt),
            ("requested_token_type", FEDERATED_TOKEN_TYPE),
            ("connection", connection),
        ]))
    };
    // Rotation off, as Auth0 requires for Token Vault.
    let emu = Emulator::start(EmulatorConfig {
        rotation: false,
        token_vault_requires_non_rotating: true,
        ..Default::default()
    });
    let rt = emu.issue_refresh_token(RefreshGrant::default());
    assert_eq!(exchange(&emu, &rt, "google-oauth2").status, 200);
    let missing = exchange(&emu, &rt, "github");
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.json()["error"],
        "federated_connection_refresh_token_not_found"
    );

    // Rotation on: the client may not use the Token Vault grant.
    let emu = Emulator::start(EmulatorConfig {
        token_vault_requires_non_rotating: true,
        ..Default::default()
    });
    let rt = emu.issue_refresh_token(RefreshGrant::default());
    let refused = exchange(&emu, &rt, "google-oauth2");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"], "unauthorized_client");
    assert!(emu.refresh_token_is_live(&rt));

    // The default tenant does not enforce the rule (rotation on, exchange allowed).
    let emu = Emulator::start(EmulatorConfig::default());
    let rt = emu.issue_refresh_token(RefreshGrant::default());
    assert_eq!(exchange(&emu, &rt, "google-oauth2").status, 200);
}

#[test]
fn mfa_required_by_user_or_audience_policy() {
    let emu = Emulator::start(EmulatorConfig {
        mfa_policies: vec![MfaPolicy::for_user("auth0|emulator-user")],
        ..Default::default()
    });
    let rt = emu.issue_refresh_token(RefreshGrant::default());
    let a = refresh(&emu, &rt, &[]);
    assert_eq!(a.status, 403);
    let body = a.json();
    assert_eq!(body["error"], "mfa_required");
    assert_eq!(
        body["error_description"],
        "Multifactor authentication required"
    );
    assert!(body["mfa_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(
        body["mfa_requirements"],
        json!({"challenge": [{"type": "otp"}]})
    );
    assert!(emu.refresh_token_is_live(&rt), "nothing rotated");
    // Another user is not covered.
    let other = emu.issue_refresh_token(RefreshGrant {
        sub: Some("auth0|other".into()),
        ..Default::default()
    });
    assert_eq!(refresh(&emu, &other, &[]).status, 200);

    // Per audience (the resolved audience), with an enrollment requirement.
    emu.set_mfa_policies(vec![MfaPolicy {
        applies_to: MfaTarget::Audience(ANALYTICS_AUDIENCE.into()),
        requirements: MfaRequirements::Enroll(vec!["otp".into(), "webauthn-roaming".into()]),
    }]);
    let ok = refresh(&emu, &rt, &[]);
    assert_eq!(ok.status, 200, "{}", ok.text);
    let rt = ok.json()["refresh_token"].as_str().unwrap().to_owned();
    let a = refresh(&emu, &rt, &[("audience", ANALYTICS_AUDIENCE)]);
    assert_eq!(a.status, 403);
    assert_eq!(
        a.json()["mfa_requirements"],
        json!({"enroll": [{"type": "otp"}, {"type": "webauthn-roaming"}]})
    );
    emu.set_mfa_policies(Vec::new());
    assert_eq!(
        refresh(&emu, &rt, &[("audience", ANALYTICS_AUDIENCE)]).status,
        200
    );
}

#[test]
fn v2_logout_delivers_a_logout_token_for_the_browser_session() {
    let app = Receiver::start(200);
    let emu = Emulator::start(EmulatorConfig {
        backchannel_logout_uri: Some(app.uri.clone()),
        ..Default::default()
    });
    let (cookie, tokens) = login(&emu);
    let sid = claims(&tokens["id_token"])["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(cookie, format!("auth0={sid}"));
    assert_eq!(emu.session_ids(), vec![sid.clone()]);

    let out = answer(
        agent()
            .get(emu.url(
                "/v2/logout?client_id=emulator-client&returnTo=http%3A%2F%2Flocalhost%3A3000%2F",
            ))
            .header("Cookie", &cookie)
            .call(),
    );
    assert_eq!(out.status, 302);
    assert_eq!(out.location.as_deref(), Some("http://localhost:3000/"));
    assert!(out.set_cookie.iter().any(|c| c.starts_with("auth0=;")));

    // Delivered before the logout was answered.
    let received = app.received();
    assert_eq!(received.len(), 1);
    let form = &received[0];
    assert_eq!(form.len(), 1, "only logout_token: {form:?}");
    assert_eq!(form[0].0, "logout_token");
    assert_logout_token(&emu, &form[0].1, Some(&sid), Some("auth0|emulator-user"));
    let deliveries = emu.backchannel_deliveries();
    assert_eq!(
        deliveries,
        vec![BackchannelDelivery {
            trigger: LogoutTrigger::V2Logout,
            uri: app.uri.clone(),
            sid: Some(sid.clone()),
            sub: Some("auth0|emulator-user".into()),
            logout_token: form[0].1.clone(),
            outcome: DeliveryOutcome::Status(200),
        }]
    );
    assert!(emu.session_ids().is_empty(), "the session ended");
    // The same cookie again: the session is already over, nothing is announced.
    answer(
        agent()
            .get(emu.url("/v2/logout"))
            .header("Cookie", &cookie)
            .call(),
    );
    assert_eq!(emu.backchannel_deliveries().len(), 1);

    // No session cookie: nothing to end, nothing delivered.
    let out = answer(agent().get(emu.url("/v2/logout")).call());
    assert_eq!(out.status, 200);
    assert_eq!(app.received().len(), 1);
}

#[test]
fn oidc_logout_ends_the_session_named_by_the_id_token_hint_or_logout_hint() {
    let app = Receiver::start(200);
    let emu = Emulator::start(EmulatorConfig::default());
    emu.set_backchannel_logout_uri(Some(&app.uri));
    let (_, tokens) = login(&emu);
    let id_token = tokens["id_token"].as_str().unwrap();
    let sid = claims(&tokens["id_token"])["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut url = url::Url::parse(&emu.url("/oidc/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "http://localhost:3000/bye")
        .append_pair("state", "s-1");
    let out = answer(agent().get(url.as_str()).call());
    assert_eq!(
        out.location.as_deref(),
        Some("http://localhost:3000/bye?state=s-1")
    );
    let delivery = &emu.backchannel_deliveries()[0];
    assert_eq!(delivery.trigger, LogoutTrigger::OidcLogout);
    assert_eq!(delivery.outcome, DeliveryOutcome::Status(200));
    assert_logout_token(
        &emu,
        &delivery.logout_token,
        Some(&sid),
        Some("auth0|emulator-user"),
    );

    // logout_hint names the session by its sid.
    let rt_sid = "sid-from-a-minted-grant";
    emu.issue_refresh_token(RefreshGrant {
        sid: Some(rt_sid.into()),
        ..Default::default()
    });
    let out = answer(
        agent()
            .get(emu.url(&format!("/oidc/logout?logout_hint={rt_sid}")))
            .call(),
    );
    assert_eq!(out.status, 200);
    let delivery = &emu.backchannel_deliveries()[1];
    assert_logout_token(
        &emu,
        &delivery.logout_token,
        Some(rt_sid),
        Some("auth0|emulator-user"),
    );
    assert_eq!(app.received().len(), 2);

    // A forged hint ends nothing.
    let forged = format!("{}x", &id_token[..id_token.len() - 1]);
    answer(
        agent()
            .get(emu.url(&format!("/oidc/logout?id_token_hint={forged}")))
            .call(),
    );
    assert_eq!(emu.backchannel_deliveries().len(), 2);
}

#[test]
fn admin_end_session_records_each_delivery_outcome() {
    let emu = Emulator::start(EmulatorConfig::default());
    // No URI: the session ends, nothing is delivered.
    assert_eq!(emu.end_session("sid-0"), None);

    let ok = Receiver::start(200);
    emu.set_backchannel_logout_uri(Some(&ok.uri));
    let delivery = emu.end_session("unknown-sid").expect("delivered");
    assert_eq!(delivery.trigger, LogoutTrigger::EndSession);
    assert_eq!(delivery.outcome, DeliveryOutcome::Status(200));
    // An unknown session: the token names the sid only.
    assert_logout_token(&emu, &delivery.logout_token, Some("unknown-sid"), None);

    // Every session of a user, one token each.
    for sid in ["sid-a", "sid-b"] {
        emu.issue_refresh_token(RefreshGrant {
            sid: Some(sid.into()),
            ..Default::default()
        });
    }
    emu.issue_refresh_token(RefreshGrant {
        sub: Some("auth0|someone-else".into()),
        sid: Some("sid-c".into()),
        ..Default::default()
    });
    let ended = emu.end_user_sessions("auth0|emulator-user");
    let sids: Vec<_> = ended.iter().map(|d| d.sid.clone().unwrap()).collect();
    assert_eq!(sids, ["sid-a", "sid-b"]);
    assert_eq!(emu.session_ids(), ["sid-c"]);
    assert_eq!(ok.received().len(), 3);

    // The application refuses the token: its status is recorded.
    let refusing = Receiver::start(400);
    emu.set_backchannel_logout_uri(Some(&refusing.uri));
    assert_eq!(
        emu.end_session("sid-c").unwrap().outcome,
        DeliveryOutcome::Status(400)
    );

    // Nobody listening: a failed delivery.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    emu.set_backchannel_logout_uri(Some(&format!("http://127.0.0.1:{closed}/logout")));
    assert!(matches!(
        emu.end_session("sid-d").unwrap().outcome,
        DeliveryOutcome::Failed(_)
    ));

    // Only loopback http URIs are called.
    for uri in [
        "http://example.com/logout",
        "https://127.0.0.1/logout",
        "not a uri",
    ] {
        emu.set_backchannel_logout_uri(Some(uri));
        assert!(
            matches!(
                emu.end_session("sid-e").unwrap().outcome,
                DeliveryOutcome::Refused(_)
            ),
            "{uri}"
        );
    }
    assert_eq!(emu.backchannel_deliveries().len(), 8);
}
