//! `GetAccessToken` driven by the fuzzer: an arbitrary session (token sets with audiences,
//! scopes and expiry; a refresh token or not), request, configuration (default audience,
//! scopes, leeway) and time, and for every effect the machine asks for, the fuzzer's answer
//! (cached metadata or none, HTTP responses of any status with well-formed token JSON, OAuth
//! errors, discovery documents or raw bytes, and now and then the wrong kind of input).
//!
//! Invariants checked on every run:
//! * no panic, and the operation finishes within `MAX_STEPS` steps;
//! * at most one token-endpoint request per call (discovery is separate), and at most one
//!   discovery request;
//! * a returned token is either a stored one that is unexpired by the leeway rule (and then
//!   no token request was made), or exactly the one just received;
//! * a saved session never loses the refresh token: it is kept, or replaced by the non-empty
//!   rotated one from the response; the session is saved at most once, only after a token
//!   response;
//! * `missing_session` exactly when there was no session, `missing_refresh_token` only when
//!   the session had no refresh token.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use auth0_server_fuzz::{CLIENT_ID, DOMAIN, ISSUER, SECRET, jwks, jwks_document};
use auth0_server_protocol::Core;
use auth0_server_protocol::access_token::{AccessTokenError, AccessTokenRequest, is_expired};
use auth0_server_protocol::config::Config;
use auth0_server_protocol::discovery::{CachedMetadata, Metadata};
use auth0_server_protocol::effect::{CachedJwks, Effect, Input, Operation, Step};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{Merged, StateData, TokenSet, Updated};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::token_endpoint::parse_token_response;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

const MAX_STEPS: usize = 12;
const TOKEN_ENDPOINT: &str = "https://tenant.auth0.com/oauth/token";

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Aud {
    A,
    B,
    Default,
}

impl Aud {
    fn as_str(self) -> &'static str {
        match self {
            Aud::A => "https://api-a.example.com",
            Aud::B => "https://api-b.example.com",
            Aud::Default => "default",
        }
    }
}

const WORDS: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "offline_access",
    "read:x",
    "write:x",
];

#[derive(Arbitrary, Debug)]
struct Scope {
    words: Vec<u8>,
    raw: Option<String>,
}

impl Scope {
    fn render(&self) -> String {
        let mut s: Vec<&str> = self
            .words
            .iter()
            .take(8)
            .map(|w| WORDS[usize::from(*w) % WORDS.len()])
            .collect();
        if let Some(raw) = &self.raw {
            s.push(raw);
        }
        s.join(" ")
    }
}

#[derive(Arbitrary, Debug)]
enum TokenText {
    Opaque(String),
    Jwt { aud: Vec<Aud>, exp: Option<u64> },
    JwtString(Aud),
}

fn jwt(claims: serde_json::Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.c2ln",
        b64(br#"{"alg":"RS256"}"#),
        b64(claims.to_string().as_bytes())
    )
}

impl TokenText {
    fn render(&self) -> String {
        match self {
            TokenText::Opaque(s) => s.clone(),
            TokenText::Jwt { aud, exp } => {
                let aud: Vec<&str> = aud.iter().take(4).map(|a| a.as_str()).collect();
                jwt(serde_json::json!({"aud": aud, "exp": exp}))
            }
            TokenText::JwtString(a) => jwt(serde_json::json!({"aud": a.as_str()})),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Expiry {
    /// Seconds from now (negative: in the past).
    Relative(i32),
    Absolute(u64),
}

#[derive(Arbitrary, Debug)]
struct FTokenSet {
    audience: Aud,
    token: TokenText,
    scope: Option<Scope>,
    expires: Expiry,
}

#[derive(Arbitrary, Debug)]
enum Who {
    Same,
    OtherSub,
    OtherIss,
    Absent,
}

#[derive(Arbitrary, Debug)]
struct FSession {
    sets: Vec<FTokenSet>,
    refresh_token: Option<String>,
    user: bool,
}

#[derive(Arbitrary, Debug)]
enum ExpiresIn {
    Int(u64),
    Float(f64),
    Text(String),
    Negative(i64),
}

#[derive(Arbitrary, Debug)]
enum Body {
    Token {
        access_token: Option<TokenText>,
        expires_in: Option<ExpiresIn>,
        scope: Option<Scope>,
        refresh_token: Option<String>,
        id_token: Option<Who>,
    },
    OAuthError {
        error: String,
        description: Option<String>,
        mfa_token: Option<String>,
    },
    Discovery {
        good_issuer: bool,
        token_endpoint: Option<String>,
    },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Response {
    status: u16,
    body: Body,
}

#[derive(Arbitrary, Debug)]
enum Answer {
    /// Answer the effect the way a correct driver would, using these choices.
    Proper {
        metadata: Option<u32>,
        response: Response,
    },
    /// A driver bug: the wrong kind of input.
    Wrong,
}

#[derive(Arbitrary, Debug)]
struct Case {
    now: u64,
    leeway: u16,
    default_audience: bool,
    config_scope: Option<Scope>,
    per_audience_scope: bool,
    session: Option<FSession>,
    audience: Option<Aud>,
    scope: Option<Scope>,
    answers: Vec<Answer>,
}

fn metadata() -> Arc<Metadata> {
    Arc::new(Metadata {
        issuer: ISSUER.into(),
        authorization_endpoint: "https://tenant.auth0.com/authorize".into(),
        token_endpoint: TOKEN_ENDPOINT.into(),
        jwks_uri: Some("https://tenant.auth0.com/.well-known/jwks.json".into()),
        pushed_authorization_request_endpoint: None,
        end_session_endpoint: None,
        revocation_endpoint: None,
        ..Default::default()
    })
}

fn render_body(body: &Body) -> Vec<u8> {
    match body {
        Body::Token {
            access_token,
            expires_in,
            scope,
            refresh_token,
            id_token,
        } => {
            let mut o = serde_json::Map::new();
            if let Some(t) = access_token {
                o.insert("access_token".into(), t.render().into());
            }
            if let Some(e) = expires_in {
                let v = match e {
                    ExpiresIn::Int(n) => serde_json::json!(n),
                    ExpiresIn::Float(f) => serde_json::json!(f),
                    ExpiresIn::Text(s) => serde_json::json!(s),
                    ExpiresIn::Negative(n) => serde_json::json!(n),
                };
                o.insert("expires_in".into(), v);
            }
            if let Some(s) = scope {
                o.insert("scope".into(), s.render().into());
            }
            if let Some(r) = refresh_token {
                o.insert("refresh_token".into(), r.clone().into());
            }
            if let Some(who) = id_token {
                let claims = match who {
                    Who::Same => serde_json::json!({"sub": "auth0|1", "iss": ISSUER}),
                    Who::OtherSub => serde_json::json!({"sub": "auth0|2", "iss": ISSUER}),
                    Who::OtherIss => serde_json::json!({"sub": "auth0|1", "iss": "https://evil/"}),
                    Who::Absent => serde_json::json!({}),
                };
                o.insert("id_token".into(), jwt(claims).into());
            }
            o.insert("token_type".into(), "Bearer".into());
            serde_json::Value::Object(o).to_string().into_bytes()
        }
        Body::OAuthError {
            error,
            description,
            mfa_token,
        } => serde_json::json!({
            "error": error, "error_description": description, "mfa_token": mfa_token,
            "mfa_requirements": {"challenge": [{"type": "otp"}]}
        })
        .to_string()
        .into_bytes(),
        Body::Discovery {
            good_issuer,
            token_endpoint,
        } => serde_json::json!({
            "issuer": if *good_issuer { ISSUER } else { "https://evil.example/" },
            "authorization_endpoint": "https://tenant.auth0.com/authorize",
            "token_endpoint": token_endpoint.as_deref().unwrap_or(TOKEN_ENDPOINT),
            "jwks_uri": "https://tenant.auth0.com/.well-known/jwks.json",
        })
        .to_string()
        .into_bytes(),
        Body::Raw(bytes) => bytes.clone(),
    }
}

fn http_response(r: &Response) -> http::Response<Vec<u8>> {
    let status = match r.status % 8 {
        0..=3 => 200,
        4 => 400,
        5 => 401,
        6 => 403,
        _ => 100 + r.status % 900,
    };
    http::Response::builder()
        .status(status)
        .body(render_body(&r.body))
        .expect("status in range")
}

fn build_session(s: &FSession, now: u64) -> StateData {
    StateData {
        user: s.user.then(|| {
            serde_json::json!({"sub": "auth0|1", "iss": ISSUER})
                .as_object()
                .cloned()
                .unwrap_or_default()
        }),
        refresh_token: s.refresh_token.clone().map(Secret::new),
        token_sets: s
            .sets
            .iter()
            .take(6)
            .map(|t| TokenSet {
                audience: t.audience.as_str().into(),
                access_token: Secret::new(t.token.render()),
                scope: t.scope.as_ref().map(Scope::render),
                expires_at: match t.expires {
                    Expiry::Relative(d) => now.saturating_add_signed(i64::from(d)),
                    Expiry::Absolute(a) => a,
                },
                requested_scope: None,
                token_type: Default::default(),
            })
            .collect(),
        ..Default::default()
    }
}

fuzz_target!(|case: Case| {
    // Mostly realistic times, sometimes extreme ones.
    let now = if case.now % 4 == 0 {
        case.now
    } else {
        1_700_000_000 + case.now % 100_000_000
    };
    let leeway = u64::from(case.leeway);
    let mut builder = Config::builder(DOMAIN, CLIENT_ID)
        .client_secret("client-secret")
        .secret(SECRET)
        .leeway(Duration::from_secs(leeway));
    if case.default_audience {
        builder = builder.audience(Aud::A.as_str());
    }
    if let Some(scope) = &case.config_scope {
        builder = if case.per_audience_scope {
            builder.scope_for(Aud::A.as_str(), scope.render())
        } else {
            builder.scope(scope.render())
        };
    }
    let Ok(config) = builder.build() else { return };
    let core = Core::new(config.clone());
    let session = case.session.as_ref().map(|s| build_session(s, now));
    let mut request = AccessTokenRequest::default();
    request.audience = case.audience.map(|a| a.as_str().to_owned());
    request.scope = case.scope.as_ref().map(Scope::render);
    let audience_key = config.audience_key(request.audience.as_deref()).to_owned();

    let mut op = core.get_access_token(request);
    let mut answers = case.answers.iter();
    let mut input = Input::Start;
    let mut token_requests = 0;
    let mut discovery_requests = 0;
    let mut saves = 0;
    let mut last_token_response: Option<http::Response<Vec<u8>>> = None;
    let mut wrong_answer = false;
    let mut steps = 0;
    let result = loop {
        steps += 1;
        assert!(
            steps <= MAX_STEPS,
            "GetAccessToken did not finish in {MAX_STEPS} steps"
        );
        let effect = match op.step(input, UnixTime::from_secs(now)) {
            Step::Done(result) => break result,
            Step::Effect(effect) => effect,
        };
        let answer = answers.next();
        if let Some(Answer::Wrong) = answer {
            wrong_answer = true;
            input = Input::Random(Vec::new());
            continue;
        }
        let (cached, response) = match answer {
            Some(Answer::Proper { metadata, response }) => (*metadata, Some(response)),
            _ => (None, None),
        };
        input = match effect {
            Effect::LoadSession => Input::Session(session.clone().map(std::sync::Arc::new)),
            Effect::LoadMetadata => Input::Metadata(cached.map(|age| CachedMetadata {
                metadata: metadata(),
                fetched_at: UnixTime::from_secs(now.saturating_sub(u64::from(age))),
            })),
            Effect::StoreMetadata(m) => {
                assert_eq!(m.fetched_at, UnixTime::from_secs(now));
                Input::Done
            }
            // A refreshed ID token is verified against the tenant's keys (cached, or fetched).
            Effect::LoadJwks => Input::Jwks(Some(CachedJwks {
                jwks: jwks().clone(),
                fetched_at: UnixTime::from_secs(now),
            })),
            Effect::StoreJwks(_) => Input::Done,
            Effect::Http(req) if req.request.uri().path().ends_with("/jwks.json") => Input::Http(
                http::Response::builder()
                    .status(200)
                    .body(jwks_document())
                    .expect("valid"),
            ),
            Effect::Http(req) => {
                let uri = req.request.uri().to_string();
                let response = response.map(http_response).unwrap_or_else(|| {
                    http::Response::builder()
                        .status(503)
                        .body(Vec::new())
                        .expect("valid")
                });
                if uri.ends_with("/.well-known/openid-configuration") {
                    discovery_requests += 1;
                    assert!(discovery_requests <= 1, "discovery requested twice");
                } else {
                    token_requests += 1;
                    assert!(
                        token_requests <= 1,
                        "more than one token request in one call"
                    );
                    assert_eq!(req.request.method(), http::Method::POST);
                    let body = String::from_utf8_lossy(req.request.body()).into_owned();
                    assert!(body.contains("grant_type=refresh_token"));
                    last_token_response = Some(
                        http::Response::builder()
                            .status(response.status())
                            .body(response.body().clone())
                            .expect("valid"),
                    );
                }
                Input::Http(response)
            }
            Effect::UpdateSession(update) => {
                saves += 1;
                let stored = session.clone().expect("a session update without a session");
                let Merged::Updated(saved) = update.apply(stored) else {
                    panic!("the update of the session it read is for another session");
                };
                assert_eq!(saves, 1, "session saved twice");
                let received = last_token_response
                    .as_ref()
                    .expect("session saved without a token response");
                let parsed = parse_token_response(received).expect("saved after a failed refresh");
                let before = session
                    .as_ref()
                    .and_then(|s| s.refresh_token.as_ref())
                    .expect("refreshed without a refresh token");
                let after = saved
                    .refresh_token
                    .as_ref()
                    .expect("the saved session lost its refresh token");
                match &parsed.refresh_token {
                    Some(rotated) => {
                        assert!(!rotated.expose().is_empty());
                        assert_eq!(after, rotated, "rotated refresh token not stored");
                    }
                    None => assert_eq!(after, before, "refresh token changed without rotation"),
                }
                Input::Updated(Ok(Updated::Saved))
            }
            other => panic!("GetAccessToken asked for {other:?}"),
        };
    };

    match result {
        Ok(token) => {
            assert!(!wrong_answer, "succeeded despite a wrong answer");
            assert_eq!(token.audience, audience_key);
            match &last_token_response {
                None => {
                    // Served from the session: a stored, unexpired (by the leeway rule) set.
                    let stored = session.as_ref().expect("a token without a session");
                    assert!(
                        stored
                            .token_sets
                            .iter()
                            .any(|s| s.audience == token.audience
                                && s.access_token == token.access_token
                                && s.expires_at == token.expires_at
                                && s.scope == token.scope),
                        "returned a token that is not stored"
                    );
                    assert!(
                        !is_expired(
                            UnixTime::from_secs(token.expires_at),
                            UnixTime::from_secs(now),
                            Duration::from_secs(leeway)
                        ),
                        "served an expired token"
                    );
                }
                Some(received) => {
                    let parsed = parse_token_response(received).expect("success from a failure");
                    assert_eq!(
                        token.access_token, parsed.access_token,
                        "not the token received"
                    );
                    assert_eq!(saves, 1, "a refreshed token was not saved");
                }
            }
        }
        Err(e) => {
            let _ = (e.code(), e.to_string(), format!("{e:?}"));
            match e {
                AccessTokenError::MissingSession => assert!(session.is_none()),
                AccessTokenError::MissingRefreshToken => assert!(
                    session.as_ref().is_some_and(|s| s.refresh_token.is_none()),
                    "missing_refresh_token with a refresh token"
                ),
                _ => {}
            }
            if session.is_none() {
                assert!(token_requests == 0 && discovery_requests == 0);
            }
        }
    }
    assert!(token_requests <= 1);
});
