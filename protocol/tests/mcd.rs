//! Multiple custom domains: the decisions of `auth0_server_protocol::mcd` — what a resolved
//! domain may be and how it is normalised, which domain a session belongs to, whether a
//! logout token is of a domain — and the `OnDomain` wrapper that binds an operation's
//! sessions and login transactions to its domain.

mod common;

use auth0_server_protocol::effect::{Effect, Input, Operation, Step, UnexpectedInput};
use auth0_server_protocol::logout::{BackchannelLogoutError, logout_token_selects};
use auth0_server_protocol::mcd::{
    Domain, DomainAllowlist, DomainBound, DomainError, OnDomain, SESSION_DOMAIN_KEY,
    SessionBinding, issuer_is_on_domain, logout_token_on_domain, session_binding, session_domain,
};
use auth0_server_protocol::session::StateData;
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::transaction::TransactionData;
use auth0_server_protocol::{ErrorCode, effect::LogoutTokenClaims};
use base64::Engine;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,12}(\\.[a-z][a-z0-9]{1,8}){1,2}"
}

/// The same host written differently: case, scheme, default port, trailing slash, spaces.
fn spelling(host: &str, upper: bool, scheme: bool, port: bool, slash: bool) -> String {
    let h = if upper {
        host.to_ascii_uppercase()
    } else {
        host.to_owned()
    };
    format!(
        " {}{}{}{} ",
        if scheme { "https://" } else { "" },
        h,
        if port { ":443" } else { "" },
        if slash { "/" } else { "" }
    )
}

fn session_on(domain: Option<&str>, iss: Option<&str>) -> StateData {
    let mut user = serde_json::Map::new();
    user.insert("sub".into(), SUB.into());
    if let Some(iss) = iss {
        user.insert("iss".into(), iss.into());
    }
    let mut s = StateData {
        user: Some(user),
        ..Default::default()
    };
    s.internal.sid = "sid-1".into();
    if let Some(d) = domain {
        s.extra.insert(SESSION_DOMAIN_KEY.into(), d.into());
    }
    s
}

/// An unsigned token with these claims (only its unverified `iss` is read here).
fn token(claims: Value) -> String {
    let b = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        b(&json!({"alg": "RS256", "kid": "k"})),
        b(&claims)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every spelling of a domain normalises to one origin, and the origin parses to itself.
    #[test]
    fn spellings_of_a_domain_are_one_domain(
        h in host(), upper: bool, scheme: bool, port: bool, slash: bool,
    ) {
        let d = Domain::parse(&spelling(&h, upper, scheme, port, slash)).unwrap();
        prop_assert_eq!(d.origin(), format!("https://{h}"));
        prop_assert_eq!(Domain::parse(d.origin()).unwrap(), d);
    }

    /// No input panics; whatever is accepted is an https origin (or http on loopback) that
    /// parses to itself.
    #[test]
    fn any_input_is_a_domain_or_an_invalid_domain_error(raw in ".{0,80}") {
        match Domain::parse(&raw) {
            Ok(d) => {
                prop_assert!(d.origin().starts_with("https://") || d.origin().starts_with("http://"));
                prop_assert_eq!(Domain::parse(d.origin()).unwrap(), d);
            }
            Err(e) => prop_assert_eq!(e.code(), ErrorCode::DomainResolverError),
        }
    }

    /// A path, query, fragment or credentials make it no custom domain.
    #[test]
    fn a_domain_is_only_a_host(h in host(), extra in prop_oneof![
        Just("/path"), Just("/a/b/"), Just("?q=1"), Just("#f"), Just("/?x"),
    ], creds: bool) {
        let raw = if creds { format!("https://user:pw@{h}") } else { format!("https://{h}{extra}") };
        let refused = matches!(Domain::parse(&raw), Err(DomainError::Invalid { .. }));
        prop_assert!(refused);
    }

    /// A session recorded on A is A's, never B's; a legacy session is its issuer's domain.
    #[test]
    fn a_session_belongs_to_its_domain_only(a in host(), b in host(), recorded: bool, upper: bool) {
        prop_assume!(a != b);
        let da = Domain::parse(&a).unwrap();
        let db = Domain::parse(&b).unwrap();
        let iss = format!("https://{a}/");
        let session = if recorded {
            // As another SDK may record it: a bare host, any case.
            let written = if upper { a.to_ascii_uppercase() } else { a.clone() };
            session_on(Some(&written), Some(&iss))
        } else {
            session_on(None, Some(&iss))
        };
        prop_assert_eq!(session_binding(&session, &da), SessionBinding::ThisDomain);
        prop_assert_eq!(session_binding(&session, &db), SessionBinding::OtherDomain);
        // The recorded domain wins over the issuer.
        let moved = session_on(Some(&b), Some(&iss));
        prop_assert_eq!(session_binding(&moved, &da), SessionBinding::OtherDomain);
    }

    /// A logout token is of a domain exactly when its issuer's origin is the domain.
    #[test]
    fn a_logout_token_is_of_its_issuers_domain(a in host(), b in host(), path: bool) {
        prop_assume!(a != b);
        let da = Domain::parse(&a).unwrap();
        let db = Domain::parse(&b).unwrap();
        let iss = format!("https://{a}{}", if path { "/" } else { "" });
        let t = token(json!({"iss": iss, "sid": "s"}));
        prop_assert!(logout_token_on_domain(&t, &da));
        prop_assert!(!logout_token_on_domain(&t, &db));
        prop_assert!(issuer_is_on_domain(&iss, &da));
        prop_assert!(!issuer_is_on_domain(&iss, &db));
    }

    /// Garbage is no logout token of any domain (and no panic).
    #[test]
    fn garbage_is_no_logout_token_of_a_domain(raw in ".{0,200}", a in host()) {
        prop_assert!(!logout_token_on_domain(&raw, &Domain::parse(&a).unwrap()));
    }
}

#[test]
fn plain_http_only_on_loopback() {
    for ok in [
        "http://127.0.0.1:4001",
        "http://localhost:8080/",
        "http://[::1]:9000",
    ] {
        assert!(Domain::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://login.example.com",
        "ftp://login.example.com",
        "",
        "   ",
        "login example.com",
    ] {
        assert_eq!(
            Domain::parse(bad).unwrap_err().code(),
            ErrorCode::DomainResolverError,
            "{bad:?}"
        );
    }
    assert_eq!(
        Domain::parse("http://127.0.0.1:4001/").unwrap().origin(),
        "http://127.0.0.1:4001"
    );
}

#[test]
fn a_session_without_domain_or_issuer_is_bound_to_no_domain() {
    let d = Domain::parse("login.a.example").unwrap();
    let s = session_on(None, None);
    assert_eq!(session_domain(&s), None);
    assert_eq!(session_binding(&s, &d), SessionBinding::Unbound);
    let mut odd = session_on(None, Some("https://login.a.example/"));
    odd.extra.insert(SESSION_DOMAIN_KEY.into(), json!(42));
    assert_eq!(session_binding(&odd, &d), SessionBinding::Unbound);
}

#[test]
fn the_allowlist_maps_a_host_to_an_allowed_domain_and_refuses_the_rest() {
    let list = DomainAllowlist::new(["login.a.example", "http://127.0.0.1:4001"]).unwrap();
    assert_eq!(
        list.resolve(Some("Login.A.Example")).unwrap().origin(),
        "https://login.a.example"
    );
    assert_eq!(
        list.resolve(Some("login.a.example:443")).unwrap().origin(),
        "https://login.a.example"
    );
    assert_eq!(
        list.resolve(Some("127.0.0.1:4001")).unwrap().origin(),
        "http://127.0.0.1:4001"
    );
    for refused in [
        Some("evil.example"),
        Some("127.0.0.1:4002"),
        Some("login.a.example.evil.example"),
        Some("user@login.a.example"),
        Some("login.a.example/x"),
        None,
    ] {
        let e = list.resolve(refused).unwrap_err();
        assert_eq!(e.code(), ErrorCode::DomainResolverError, "{refused:?}");
    }
    assert!(DomainAllowlist::new(["https://x.example/path"]).is_err());
}

#[test]
fn a_logout_token_ends_only_sessions_recorded_on_its_issuers_domain() {
    let claims = |iss: &str| LogoutTokenClaims {
        iss: iss.into(),
        sub: None,
        sid: Some("sid-1".into()),
    };
    // Recorded on A (an issuer-less session, so only the recorded domain can tell).
    let on_a = session_on(Some("login.a.example"), None);
    assert!(logout_token_selects(
        &claims("https://login.a.example/"),
        &on_a
    ));
    assert!(!logout_token_selects(
        &claims("https://login.b.example/"),
        &on_a
    ));
    // Without a recorded domain: as before (by sid).
    let legacy = session_on(None, None);
    assert!(logout_token_selects(
        &claims("https://login.b.example/"),
        &legacy
    ));
}

// --- the wrapper -------------------------------------------------------------------------------

/// A test operation: the effects it asks for in order, then `Done(inputs it saw)`.
struct Scripted {
    effects: std::vec::IntoIter<Effect>,
    seen: Vec<String>,
}

impl Scripted {
    fn new(effects: Vec<Effect>) -> Self {
        Scripted {
            effects: effects.into_iter(),
            seen: Vec::new(),
        }
    }
}

impl Operation for Scripted {
    type Output = Vec<String>;
    type Error = UnexpectedInput;
    fn step(&mut self, input: Input, _now: UnixTime) -> Step<Vec<String>, UnexpectedInput> {
        self.seen.push(match &input {
            Input::Session(s) => format!("Session({})", s.is_some()),
            Input::Transaction(t) => format!("Transaction({})", t.is_some()),
            other => format!("{other:?}"),
        });
        match self.effects.next() {
            Some(e) => Step::Effect(e),
            None => Step::Done(Ok(std::mem::take(&mut self.seen))),
        }
    }
}

/// Drives `op`, answering loads with `session` / `transaction`; returns the result and the
/// effects performed (sessions and transactions written, by their recorded domain).
fn drive(
    mut op: impl Operation<Output = Vec<String>, Error = DomainBound<UnexpectedInput>>,
    session: Option<StateData>,
    transaction: Option<TransactionData>,
) -> (
    Result<Vec<String>, DomainBound<UnexpectedInput>>,
    Vec<String>,
) {
    let mut performed = Vec::new();
    let mut input = Input::Start;
    let now = UnixTime::from_secs(NOW);
    for _ in 0..20 {
        match op.step(input, now) {
            Step::Done(r) => return (r, performed),
            Step::Effect(e) => {
                input = match e {
                    Effect::LoadSession => Input::Session(session.clone().map(std::sync::Arc::new)),
                    Effect::LoadTransaction { .. } => Input::Transaction(transaction.clone()),
                    Effect::SaveSession(s) => {
                        performed.push(format!(
                            "SaveSession({})",
                            s.extra
                                .get(SESSION_DOMAIN_KEY)
                                .and_then(Value::as_str)
                                .unwrap_or("-")
                        ));
                        Input::Done
                    }
                    Effect::SaveTransaction { transaction, .. } => {
                        performed.push(format!(
                            "SaveTransaction({})",
                            transaction.domain.as_deref().unwrap_or("-")
                        ));
                        Input::Done
                    }
                    Effect::DeleteSession => {
                        performed.push("DeleteSession".into());
                        Input::Done
                    }
                    Effect::DeleteTransaction { .. } => {
                        performed.push("DeleteTransaction".into());
                        Input::Done
                    }
                    _ => panic!("unexpected effect"),
                };
            }
        }
    }
    panic!("did not finish");
}

fn a() -> Domain {
    Domain::parse("login.a.example").unwrap()
}

#[test]
fn another_domains_session_is_no_session_and_is_not_deleted() {
    let on_b = session_on(Some("login.b.example"), Some("https://login.b.example/"));
    let op = OnDomain::new(
        Scripted::new(vec![Effect::LoadSession, Effect::DeleteSession]),
        a(),
    );
    let (seen, performed) = drive(op, Some(on_b), None);
    assert_eq!(seen.unwrap(), ["Start", "Session(false)", "Done"]);
    assert!(performed.is_empty(), "{performed:?}");
}

#[test]
fn this_domains_session_is_the_session_and_writes_are_stamped() {
    let on_a = session_on(None, Some("https://login.a.example/"));
    let op = OnDomain::new(
        Scripted::new(vec![
            Effect::LoadSession,
            Effect::SaveSession(Box::new(on_a.clone())),
            Effect::SaveTransaction {
                key: "_a0_tx.s".into(),
                transaction: Box::default(),
            },
            Effect::DeleteSession,
        ]),
        a(),
    );
    let (seen, performed) = drive(op, Some(on_a), None);
    assert_eq!(seen.unwrap()[1], "Session(true)");
    assert_eq!(
        performed,
        [
            "SaveSession(https://login.a.example)",
            "SaveTransaction(https://login.a.example)",
            "DeleteSession",
        ]
    );
}

#[test]
fn a_login_on_this_domain_replaces_another_domains_session() {
    let on_b = session_on(Some("login.b.example"), None);
    let op = OnDomain::new(
        Scripted::new(vec![
            Effect::LoadSession,
            Effect::SaveSession(Box::default()),
            Effect::DeleteSession,
        ]),
        a(),
    );
    let (_, performed) = drive(op, Some(on_b), None);
    // Once this domain's session is written, deleting it is deleting this domain's.
    assert_eq!(
        performed,
        ["SaveSession(https://login.a.example)", "DeleteSession"]
    );
}

#[test]
fn a_transaction_of_another_domain_is_refused_before_the_operation_sees_it() {
    for domain in [Some("https://login.b.example"), None] {
        let tx = TransactionData {
            state: Some("s".into()),
            domain: domain.map(str::to_owned),
            ..Default::default()
        };
        let op = OnDomain::new(
            Scripted::new(vec![
                Effect::LoadTransaction {
                    key: "_a0_tx.s".into(),
                },
                Effect::DeleteTransaction {
                    key: "_a0_tx.s".into(),
                },
            ]),
            a(),
        );
        let (result, performed) = drive(op, None, Some(tx));
        match result {
            Err(DomainBound::Domain(e)) => {
                assert_eq!(e, DomainError::TransactionOnOtherDomain);
                assert_eq!(e.code(), ErrorCode::DomainMismatch);
            }
            other => panic!("expected a domain mismatch, got {other:?}"),
        }
        assert!(performed.is_empty(), "nothing consumed: {performed:?}");
    }
    // The same domain, spelled differently: accepted.
    let tx = TransactionData {
        domain: Some("LOGIN.A.EXAMPLE".into()),
        ..Default::default()
    };
    let op = OnDomain::new(
        Scripted::new(vec![Effect::LoadTransaction { key: "k".into() }]),
        a(),
    );
    assert_eq!(drive(op, None, Some(tx)).0.unwrap()[1], "Transaction(true)");
}

#[test]
fn a_core_on_a_domain_uses_that_domain_and_refuses_other_domains_logout_tokens() {
    let base = core(config_builder().issuer("https://tenant.auth0.com/"));
    let on_a = base.on_domain(&a()).unwrap();
    assert_eq!(on_a.config().origin(), "https://login.a.example");
    assert_eq!(
        on_a.config().discovery_url(),
        "https://login.a.example/.well-known/openid-configuration"
    );
    assert_eq!(on_a.config().issuer_override(), None);
    assert_eq!(on_a.config().client_id(), CLIENT_ID);
    assert_eq!(on_a.domain(), Some(&a()));

    // A token of B: refused at once, before discovery or keys are asked for.
    let t = token(json!({"iss": "https://login.b.example/", "sid": "s"}));
    let mut op = on_a.handle_backchannel_logout(&t);
    match op.step(Input::Start, UnixTime::from_secs(NOW)) {
        Step::Done(Err(e)) => {
            assert_eq!(e, BackchannelLogoutError::IssuerNotOnDomain);
            assert_eq!(e.code(), ErrorCode::DomainMismatch);
        }
        Step::Done(Ok(_)) => panic!("accepted"),
        Step::Effect(_) => panic!("asked for an effect"),
    }
    // A token of A: verification starts (discovery first).
    let t = token(json!({"iss": "https://login.a.example/", "sid": "s"}));
    let mut op = on_a.handle_backchannel_logout(&t);
    assert!(matches!(
        op.step(Input::Start, UnixTime::from_secs(NOW)),
        Step::Effect(Effect::LoadMetadata)
    ));
}
