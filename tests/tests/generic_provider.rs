//! End-to-end against OpenID Providers that are not shaped like Auth0 (issue 14): the whole
//! login → tokens → refresh → logout → back-channel logout sequence through both clients,
//! against each provider shape the emulator plays:
//!
//! * a path issuer without trailing slash (`{base}/realms/acme`, as Keycloak), RFC 9207 `iss`
//!   in the callback, tokens signed PS256;
//! * an issuer at the origin without trailing slash, RS256, no callback `iss`;
//! * a path issuer with a trailing slash, ES256 (EC keys in the JWKS);
//! * Auth0 itself (`{base}/`), to show the same code path.
//!
//! Then the negative cases of the OpenID RP certification that need a real provider: a
//! callback `iss` of another issuer, a callback without `iss` when the provider advertises
//! it, a discovery document naming another issuer, a token signed with an algorithm the
//! provider does not advertise, and a replayed logout token.

mod adapter_support;
mod login_support;

use auth0_emulator::{DEFAULT_AUDIENCE, EmulatorConfig, ProviderAlg, ProviderShape};
use auth0_server::{Config, Error, LogoutOptions, StartLoginOptions};
use login_support::{CALLBACK, Clients, Fixture, query};
use serde_json::{Map, Value};

/// The shapes every scenario runs against.
fn shapes() -> Vec<(&'static str, ProviderShape)> {
    vec![
        (
            "path issuer, PS256, iss in callback",
            ProviderShape::generic("/realms/acme"),
        ),
        (
            "origin issuer without slash, RS256",
            ProviderShape {
                issuer_path: String::new(),
                issuer_trailing_slash: false,
                iss_in_callback: false,
                alg: ProviderAlg::Rs256,
            },
        ),
        (
            "path issuer with a trailing slash, ES256",
            ProviderShape {
                issuer_path: "/oauth2/default".into(),
                issuer_trailing_slash: true,
                iss_in_callback: true,
                alg: ProviderAlg::Es256,
            },
        ),
        ("Auth0", ProviderShape::auth0()),
    ]
}

fn fixture<C: Clients>(shape: &ProviderShape) -> Fixture {
    Fixture::with::<C>(EmulatorConfig {
        provider: shape.clone(),
        // Shorter than the SDK's 30 s leeway: every get_access_token refreshes.
        access_token_lifetime: 10,
        ..Default::default()
    })
}

fn header_alg(token: &str) -> String {
    auth0_emulator::decode_header(token)
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

fn whole_sequence<C: Clients>() {
    for (name, shape) in shapes() {
        let fx = fixture::<C>(&shape);
        let issuer = fx.emu.issuer();
        assert_eq!(issuer.ends_with('/'), shape.issuer_trailing_slash, "{name}");
        let mut b = fx.browser();

        // Login: the callback carries `iss` exactly when the provider advertises it.
        let (_, callback, _) = b.login(StartLoginOptions::new());
        assert_eq!(
            query(&callback, "iss"),
            shape.iss_in_callback.then(|| issuer.clone()),
            "{name}"
        );
        let session = b.session().expect("session saved");
        assert_eq!(
            session.user.as_ref().unwrap()["iss"],
            Value::String(issuer.clone()),
            "{name}"
        );
        let login_id_token = session.id_token.clone().unwrap();
        assert_eq!(
            header_alg(login_id_token.expose()),
            shape.alg.name(),
            "{name}"
        );
        let discovery = fx.emu.requests_to(&format!(
            "{}/.well-known/openid-configuration",
            shape.issuer_path
        ));
        assert!(
            !discovery.is_empty(),
            "{name}: discovery fetched below the issuer path"
        );

        // Tokens and a refresh that returns a new ID token, verified before it replaces
        // the old one.
        let first = b.request(|api, c| api.token(c)).expect("token");
        let second = b.request(|api, c| api.token(c)).expect("refreshed token");
        assert_ne!(first.access_token, second.access_token, "{name}: refreshed");
        let refreshed = b.session().unwrap();
        assert_ne!(
            refreshed.id_token.as_ref().unwrap().expose(),
            login_id_token.expose(),
            "{name}: the refreshed ID token replaced the login one"
        );
        assert_eq!(
            fx.emu.token_requests().len(),
            3,
            "{name}: code + two refreshes"
        );

        // Logout: the provider's end_session_endpoint (every shape advertises one), with
        // id_token_hint, client_id and post_logout_redirect_uri.
        let url = b
            .request(|api, c| api.logout(LogoutOptions::return_to("http://127.0.0.1:3000/bye"), c))
            .expect("logout");
        assert_eq!(
            url.as_str().split('?').next().unwrap(),
            format!("{}/oidc/logout", fx.emu.issuer_url()),
            "{name}"
        );
        assert_eq!(
            query(url.as_str(), "client_id").as_deref(),
            Some(fx.emu.client_id())
        );
        assert_eq!(
            query(url.as_str(), "post_logout_redirect_uri").as_deref(),
            Some("http://127.0.0.1:3000/bye")
        );
        assert!(query(url.as_str(), "id_token_hint").is_some(), "{name}");
        assert!(b.session().is_none(), "{name}: session deleted");
        assert_eq!(login_support::follow(&url), "http://127.0.0.1:3000/bye");

        // Back-channel logout of a second login, signed as the provider signs; then the same
        // token again is a replay.
        let mut other = fx.browser();
        other.login(StartLoginOptions::new());
        let sid = other.session().unwrap().internal.sid.clone();
        let token =
            fx.emu
                .mint_provider_logout_token(Some("auth0|emulator-user"), Some(&sid), Map::new());
        let done = fx
            .api
            .backchannel(&token, &mut Default::default())
            .expect("back-channel logout");
        assert_eq!(done.sid.as_deref(), Some(sid.as_str()), "{name}");
        assert!(other.session().is_none(), "{name}: session ended");
        let replay = fx
            .api
            .backchannel(&token, &mut Default::default())
            .unwrap_err();
        assert_eq!(replay.code(), "logout_token_replayed", "{name}: {replay}");
    }
}

/// RFC 9207: a callback naming another issuer is refused, and so is a callback without `iss`
/// when the provider advertises that it always sends one. No session is written.
fn a_callback_iss_of_another_issuer_or_missing_is_refused<C: Clients>() {
    let shape = ProviderShape::generic("/realms/acme");
    for (case, edit) in [
        ("another issuer", "https://evil.example.com/realms/acme"),
        ("missing", ""),
    ] {
        let fx = fixture::<C>(&shape);
        let mut b = fx.browser();
        let (_, callback) = b.authorize(StartLoginOptions::new());
        let mut url = url::Url::parse(&callback).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "iss")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        {
            let mut q = url.query_pairs_mut();
            q.clear().extend_pairs(pairs);
            if !edit.is_empty() {
                q.append_pair("iss", edit);
            }
        }
        let err = b.complete(url.as_str()).unwrap_err();
        assert_eq!(err.code(), "invalid_callback_issuer", "{case}: {err}");
        assert!(
            err.to_string().contains(&fx.emu.issuer()),
            "{case}: names the expected issuer"
        );
        assert!(
            !err.to_string().contains("evil"),
            "{case}: the query value stays out"
        );
        assert_eq!(fx.sessions.len(), 0, "{case}: no session");
        assert!(
            fx.emu.token_requests().is_empty(),
            "{case}: the code is not exchanged"
        );
    }
}

/// RFC 9207 on an error response: the provider's own error keeps its meaning; the same error
/// with another issuer's `iss` is reported as a mix-up.
fn an_error_callback_from_another_issuer_is_a_mix_up<C: Clients>() {
    let shape = ProviderShape::generic("/realms/acme");
    let fx = fixture::<C>(&shape);
    fx.emu.set_authorize_error(Some((
        "access_denied".into(),
        "User did not consent".into(),
    )));
    let mut b = fx.browser();
    let (_, callback) = b.authorize(StartLoginOptions::new());
    assert_eq!(query(&callback, "iss"), Some(fx.emu.issuer()));
    let err = b.complete(&callback).unwrap_err();
    assert_eq!(err.code(), "authorization_error", "{err}");

    let (_, callback) = b.authorize(StartLoginOptions::new());
    let forged = callback.replace(
        &url::form_urlencoded::byte_serialize(fx.emu.issuer().as_bytes()).collect::<String>(),
        "https%3A%2F%2Fevil.example.com",
    );
    assert_ne!(forged, callback);
    let err = b.complete(&forged).unwrap_err();
    assert_eq!(err.code(), "invalid_callback_issuer", "{err}");
}

/// A domain whose discovery document names another issuer (here: the origin, while the
/// provider's issuer has a path) cannot log in; the error names both issuers.
fn a_discovered_issuer_other_than_the_configured_url_is_refused<C: Clients>() {
    let shape = ProviderShape::generic("/realms/acme");
    let emu = auth0_emulator::Emulator::start(EmulatorConfig {
        provider: shape,
        ..Default::default()
    });
    // Configured with the origin: discovery at the origin answers the path issuer.
    let config = Config::builder(emu.base_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .secret(login_support::COOKIE_SECRET)
        .redirect_uri(CALLBACK)
        .audience(DEFAULT_AUDIENCE)
        .build()
        .unwrap();
    let api = C::build(
        config,
        login_support::Sessions::default(),
        login_support::Transactions::default(),
    );
    let mut b = login_support::Browser::new(&*api);
    let err = b
        .request(|api, c| api.start(StartLoginOptions::new(), c))
        .unwrap_err();
    assert_eq!(err.code(), "discovery_failed", "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&emu.issuer()) && text.contains(&emu.base_url()),
        "{text}"
    );

    // The explicit override accepts exactly that discovered issuer.
    let config = Config::builder(emu.base_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .secret(login_support::COOKIE_SECRET)
        .redirect_uri(CALLBACK)
        .issuer(emu.issuer())
        .build()
        .unwrap();
    let api = C::build(
        config,
        login_support::Sessions::default(),
        login_support::Transactions::default(),
    );
    let mut b = login_support::Browser::new(&*api);
    let (_, _, _) = b.login(StartLoginOptions::new());
    assert!(b.session().is_some());
}

/// The provider advertises PS256 only: an ID token signed RS256 with its own key is refused
/// (`unsupported_algorithm`), as is a logout token; nothing is saved or deleted.
fn an_algorithm_the_provider_does_not_advertise_is_refused<C: Clients>() {
    let shape = ProviderShape::generic("/realms/acme");
    let fx = fixture::<C>(&shape);
    let mut b = fx.browser();
    b.login(StartLoginOptions::new());
    let sid = b.session().unwrap().internal.sid.clone();
    let rs256 = fx.emu.mint_logout_token(None, Some(&sid), Map::new());
    let err = fx
        .api
        .backchannel(&rs256, &mut Default::default())
        .unwrap_err();
    let Error::BackchannelLogout(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        e.token_error().map(|t| t.code().as_str()),
        Some("unsupported_algorithm")
    );
    assert_eq!(fx.sessions.len(), 1, "nothing deleted");
}

macro_rules! scenarios {
    ($client:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                super::$name::<$client>();
            }
        )*
    };
}

macro_rules! all_scenarios {
    ($client:ty) => {
        scenarios!($client;
            whole_sequence,
            a_callback_iss_of_another_issuer_or_missing_is_refused,
            an_error_callback_from_another_issuer_is_a_mix_up,
            a_discovered_issuer_other_than_the_configured_url_is_refused,
            an_algorithm_the_provider_does_not_advertise_is_refused,
        );
    };
}

mod blocking {
    all_scenarios!(crate::login_support::Blocking);
}

mod nonblocking {
    all_scenarios!(crate::login_support::Nonblocking);
}
