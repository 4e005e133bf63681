//! `CompleteInteractiveLogin` past the state check: a callback whose `state` matches the
//! stored transaction, then the fuzzer's answer from the token endpoint — raw bytes, or a
//! token response whose ID token is signed with the tenant's key over claims the fuzzer
//! chooses (issuer, audience, nonce, expiry, issue time, subject, organization).
//!
//! Invariants: no panic; the operation finishes within a few steps; a session is saved only
//! after a 2xx answer whose ID token is signed by the tenant, for this issuer and client, with
//! the transaction's nonce and unexpired, and the saved session holds that answer's tokens
//! and the token's `sub`; the transaction is deleted whatever happens; no error message
//! quotes the code, the access token or the refresh token.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use auth0_server_fuzz::{CLIENT_ID, ISSUER, NOW, PEM_A, config, jwks, sign};
use auth0_server_protocol::Core;
use auth0_server_protocol::discovery::{CachedMetadata, Metadata};
use auth0_server_protocol::effect::{CachedJwks, Effect, Input, Operation, Step};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::transaction::TransactionData;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const MAX_STEPS: usize = 12;
const STATE: &str = "fuzz-state-0123456789";
const NONCE: &str = "fuzz-nonce-0123456789";
const CODE: &str = "authorization-code-SHOULD-NOT-LEAK";
const ACCESS: &str = "access-token-SHOULD-NOT-LEAK";
const REFRESH: &str = "refresh-token-SHOULD-NOT-LEAK";

#[derive(Arbitrary, Debug)]
struct Case {
    status: u16,
    answer: Answer,
}

#[derive(Arbitrary, Debug)]
enum Answer {
    Raw(Vec<u8>),
    Tokens {
        id_token: IdToken,
        expires_in: Option<i64>,
        with_refresh_token: bool,
        scope: Option<String>,
    },
}

#[derive(Arbitrary, Debug)]
enum IdToken {
    Missing,
    Raw(String),
    Signed(Claims),
}

#[derive(Arbitrary, Debug)]
struct Claims {
    right_issuer: bool,
    audience: Audience,
    right_nonce: bool,
    exp_offset: i32,
    iat_offset: i32,
    sub: Option<String>,
    org_id: Option<String>,
}

#[derive(Arbitrary, Debug)]
enum Audience {
    Client,
    ClientAmongOthers,
    Other,
    Missing,
}

impl Claims {
    fn acceptable(&self) -> bool {
        self.right_issuer
            && self.right_nonce
            && matches!(self.audience, Audience::Client)
            && self.exp_offset > 0
            && self.iat_offset <= 0
            && self.sub.as_deref().is_some_and(|s| !s.is_empty())
    }

    fn render(&self) -> String {
        let mut claims = json!({
            "iss": if self.right_issuer { ISSUER } else { "https://evil.example.com/" },
            "nonce": if self.right_nonce { NONCE } else { "another-nonce" },
            "exp": (NOW as i64).saturating_add(i64::from(self.exp_offset)),
            "iat": (NOW as i64).saturating_add(i64::from(self.iat_offset)),
        });
        match self.audience {
            Audience::Client => claims["aud"] = json!(CLIENT_ID),
            Audience::ClientAmongOthers => claims["aud"] = json!([CLIENT_ID, "another"]),
            Audience::Other => claims["aud"] = json!("another-client"),
            Audience::Missing => {}
        }
        if let Some(sub) = &self.sub {
            claims["sub"] = json!(sub);
        }
        if let Some(org) = &self.org_id {
            claims["org_id"] = json!(org);
        }
        sign(
            PEM_A,
            json!({"alg": "RS256", "typ": "JWT", "kid": "a"}),
            claims,
        )
    }
}

fn metadata() -> Arc<Metadata> {
    Arc::new(Metadata {
        issuer: ISSUER.into(),
        authorization_endpoint: "https://tenant.auth0.com/authorize".into(),
        token_endpoint: "https://tenant.auth0.com/oauth/token".into(),
        jwks_uri: Some("https://tenant.auth0.com/.well-known/jwks.json".into()),
        pushed_authorization_request_endpoint: None,
        end_session_endpoint: None,
        revocation_endpoint: None,
        ..Default::default()
    })
}

fn transaction() -> TransactionData {
    TransactionData {
        code_verifier: Some(Secret::new(
            "verifier-verifier-verifier-verifier-verifier-0",
        )),
        state: Some(STATE.into()),
        nonce: Some(NONCE.into()),
        redirect_uri: Some("https://app.example.com/callback".into()),
        created_at: NOW - 10,
        ..Default::default()
    }
}

fuzz_target!(|case: Case| {
    let status = 100 + case.status % 900;
    let (body, signed) = match &case.answer {
        Answer::Raw(bytes) => (bytes.clone(), None),
        Answer::Tokens {
            id_token,
            expires_in,
            with_refresh_token,
            scope,
        } => {
            let mut body = json!({"access_token": ACCESS, "token_type": "Bearer"});
            if let Some(e) = expires_in {
                body["expires_in"] = json!(e);
            }
            if *with_refresh_token {
                body["refresh_token"] = json!(REFRESH);
            }
            if let Some(s) = scope {
                body["scope"] = json!(s);
            }
            let claims = match id_token {
                IdToken::Missing => None,
                IdToken::Raw(raw) => {
                    body["id_token"] = json!(raw);
                    None
                }
                IdToken::Signed(claims) => {
                    body["id_token"] = json!(claims.render());
                    Some(claims)
                }
            };
            (body.to_string().into_bytes(), claims)
        }
    };
    let callback = format!("https://app.example.com/callback?code={CODE}&state={STATE}");
    let core = Core::new(config().clone());
    let mut login = core.complete_interactive_login(&callback);
    let now = UnixTime::from_secs(NOW);
    let mut input = Input::Start;
    let mut answered = false;
    let mut saved: Option<Value> = None;
    let mut forgotten = false;
    for _ in 0..MAX_STEPS {
        let effect = match login.step(input, now) {
            Step::Done(Ok(_)) => {
                assert!(forgotten, "the transaction was not deleted");
                let user = saved.expect("success without a saved session");
                assert!((200..300).contains(&status), "success from HTTP {status}");
                let claims = signed.expect("success without a signed ID token");
                assert!(claims.acceptable(), "accepted {claims:?}");
                assert_eq!(user["sub"].as_str(), claims.sub.as_deref());
                return;
            }
            Step::Done(Err(e)) => {
                assert!(forgotten, "the transaction was not deleted after {e:?}");
                assert!(saved.is_none(), "an error after saving the session");
                let text = format!("{e} {e:?}");
                for secret in [CODE, ACCESS, REFRESH] {
                    assert!(!text.contains(secret), "error shows a secret: {text}");
                }
                let _ = e.code();
                return;
            }
            Step::Effect(effect) => effect,
        };
        input = match effect {
            Effect::LoadTransaction { .. } => Input::Transaction(Some(transaction())),
            Effect::LoadMetadata => Input::Metadata(Some(CachedMetadata {
                metadata: metadata(),
                fetched_at: now,
            })),
            Effect::LoadJwks => Input::Jwks(Some(CachedJwks {
                jwks: jwks().clone(),
                fetched_at: now,
            })),
            Effect::StoreMetadata(_) | Effect::StoreJwks(_) => Input::Done,
            Effect::Http(req) => {
                assert!(!answered, "a second token request");
                answered = true;
                let form = String::from_utf8_lossy(req.request.body()).into_owned();
                assert!(form.contains("grant_type=authorization_code"));
                Input::Http(
                    http::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .expect("status in range"),
                )
            }
            Effect::DeleteSession => Input::Done,
            Effect::SaveSession(session) => {
                assert!(saved.is_none(), "saved twice");
                assert_eq!(
                    session.token_sets[0].access_token.expose(),
                    ACCESS,
                    "not the answer's access token"
                );
                assert!(
                    session
                        .refresh_token
                        .as_ref()
                        .is_none_or(|r| r.expose() == REFRESH)
                );
                saved = Some(Value::Object(session.user.clone().unwrap_or_default()));
                Input::Done
            }
            Effect::DeleteTransaction { .. } => {
                forgotten = true;
                Input::Done
            }
            other => panic!("unexpected effect {other:?}"),
        };
    }
    panic!("the login did not finish in {MAX_STEPS} steps");
});
