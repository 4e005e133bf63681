//! mTLS client authentication (RFC 8705) in the core: which endpoint a request goes to (the
//! `mtls_endpoint_aliases` of discovery for an mTLS client, the endpoint itself otherwise),
//! how the aliases are validated, and what the form carries (`client_id`, never a secret or
//! an assertion).

mod common;

use auth0_server_protocol::access_token::AccessTokenRequest;
use auth0_server_protocol::config::{ClientAuthMethod, ClientTransport, Config};
use auth0_server_protocol::discovery::{
    CachedMetadata, Endpoint, Metadata, MtlsEndpointAliases, parse_metadata,
};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{Internal, StateData};
use auth0_server_protocol::time::UnixTime;
use common::*;
use proptest::prelude::*;
use serde_json::json;
use std::sync::Arc;

const MTLS: &str = "https://mtls.tenant.auth0.com";

fn mtls_config(method: ClientAuthMethod) -> Config {
    Config::builder(DOMAIN, CLIENT_ID)
        // Configured, to show it is never sent.
        .client_secret(CLIENT_SECRET)
        .client_auth_method(method)
        .secret(COOKIE_SECRET)
        .build()
        .expect("valid mTLS configuration")
}

fn aliased_metadata() -> Metadata {
    Metadata {
        revocation_endpoint: Some(format!("{ISSUER}oauth/revoke")),
        pushed_authorization_request_endpoint: Some(format!("{ISSUER}oauth/par")),
        userinfo_endpoint: Some(format!("{ISSUER}userinfo")),
        mtls_endpoint_aliases: Some(MtlsEndpointAliases {
            token_endpoint: Some(format!("{MTLS}/oauth/token")),
            revocation_endpoint: Some(format!("{MTLS}/oauth/revoke")),
            pushed_authorization_request_endpoint: None,
            userinfo_endpoint: Some(format!("{MTLS}/userinfo")),
            ..Default::default()
        }),
        ..metadata()
    }
}

fn session() -> StateData {
    StateData {
        user: Some(user()),
        id_token: None,
        refresh_token: Some(Secret::new(REFRESH_TOKEN)),
        token_sets: Vec::new(),
        connection_token_sets: Vec::new(),
        internal: Internal {
            sid: "sid-1".into(),
            created_at: NOW - 100,
            last_active_at: None,
            extra: Default::default(),
            session_expires_at: None,
        },
        extra: Default::default(),
    }
}

#[test]
fn an_mtls_client_uses_the_aliases_listed_and_the_endpoints_otherwise() {
    let m = aliased_metadata();
    let mtls = ClientTransport::MutualTls;
    assert_eq!(
        m.endpoint(Endpoint::Token, mtls),
        Some("https://mtls.tenant.auth0.com/oauth/token")
    );
    assert_eq!(
        m.endpoint(Endpoint::Revocation, mtls),
        Some("https://mtls.tenant.auth0.com/oauth/revoke")
    );
    assert_eq!(
        m.endpoint(Endpoint::PushedAuthorizationRequest, mtls),
        Some("https://tenant.auth0.com/oauth/par"),
        "no alias: the endpoint itself"
    );
    assert_eq!(
        m.endpoint(Endpoint::Userinfo, mtls),
        Some("https://mtls.tenant.auth0.com/userinfo")
    );
    for e in [
        Endpoint::Token,
        Endpoint::Revocation,
        Endpoint::PushedAuthorizationRequest,
        Endpoint::Userinfo,
    ] {
        let plain = m.endpoint(e, ClientTransport::Tls).unwrap();
        assert!(plain.starts_with(ISSUER), "{e:?}: {plain}");
    }
    assert_eq!(
        metadata().endpoint(Endpoint::Revocation, mtls),
        None,
        "neither endpoint nor alias"
    );
}

fn url() -> impl Strategy<Value = String> {
    "[a-z]{1,8}".prop_map(|s| format!("https://{s}.example.com/{s}"))
}

fn arb_method() -> impl Strategy<Value = ClientAuthMethod> {
    prop_oneof![
        Just(ClientAuthMethod::ClientSecretPost),
        Just(ClientAuthMethod::ClientSecretBasic),
        Just(ClientAuthMethod::PrivateKeyJwt),
        Just(ClientAuthMethod::TlsClientAuth),
        Just(ClientAuthMethod::SelfSignedTlsClientAuth),
    ]
}

proptest! {
    /// The alias is used exactly when the client authenticates with mTLS and discovery lists
    /// one for that endpoint; otherwise the endpoint itself (which may be absent).
    #[test]
    fn the_alias_is_chosen_exactly_for_mtls_clients_when_listed(
        method in arb_method(),
        token in url(),
        revocation in proptest::option::of(url()),
        par in proptest::option::of(url()),
        userinfo in proptest::option::of(url()),
        aliases in proptest::option::of((
            proptest::option::of(url()),
            proptest::option::of(url()),
            proptest::option::of(url()),
            proptest::option::of(url()),
        )),
    ) {
        let m = Metadata {
            token_endpoint: token.clone(),
            revocation_endpoint: revocation.clone(),
            pushed_authorization_request_endpoint: par.clone(),
            userinfo_endpoint: userinfo.clone(),
            mtls_endpoint_aliases: aliases.clone().map(|(t, r, p, u)| MtlsEndpointAliases {
                token_endpoint: t,
                revocation_endpoint: r,
                pushed_authorization_request_endpoint: p,
                userinfo_endpoint: u,
                ..Default::default()
            }),
            ..metadata()
        };
        let mtls = matches!(
            method,
            ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth
        );
        prop_assert_eq!(method.transport() == ClientTransport::MutualTls, mtls);
        let (at, ar, ap, au) = aliases.unwrap_or_default();
        for (endpoint, own, alias) in [
            (Endpoint::Token, Some(token.clone()), at),
            (Endpoint::Revocation, revocation.clone(), ar),
            (Endpoint::PushedAuthorizationRequest, par.clone(), ap),
            (Endpoint::Userinfo, userinfo.clone(), au),
        ] {
            let expected = if mtls { alias.or(own) } else { own };
            prop_assert_eq!(m.endpoint(endpoint, method.transport()), expected.as_deref());
        }
        prop_assert_eq!(
            m.token_endpoint_for(method.transport()),
            m.endpoint(Endpoint::Token, method.transport()).unwrap()
        );
    }
}

fn document(aliases: serde_json::Value) -> http::Response<Vec<u8>> {
    json(
        200,
        &json!({
            "issuer": ISSUER,
            "authorization_endpoint": format!("{ISSUER}authorize"),
            "token_endpoint": TOKEN_ENDPOINT,
            "jwks_uri": format!("{ISSUER}.well-known/jwks.json"),
            "mtls_endpoint_aliases": aliases,
        })
        .to_string(),
    )
}

#[test]
fn aliases_are_parsed_and_validated_like_every_endpoint() {
    let config = mtls_config(ClientAuthMethod::TlsClientAuth);
    let m = parse_metadata(
        &config,
        &document(json!({
            "token_endpoint": format!("{MTLS}/oauth/token"),
            "revocation_endpoint": format!("{MTLS}/oauth/revoke"),
            "pushed_authorization_request_endpoint": format!("{MTLS}/oauth/par"),
            "userinfo_endpoint": format!("{MTLS}/userinfo"),
            "registration_endpoint": "an unknown member is ignored",
        })),
    )
    .expect("valid aliases");
    let aliases = m.mtls_endpoint_aliases.expect("aliases");
    assert_eq!(
        aliases.pushed_authorization_request_endpoint.as_deref(),
        Some("https://mtls.tenant.auth0.com/oauth/par")
    );
    for bad in [
        json!({"token_endpoint": "http://mtls.tenant.auth0.com/oauth/token"}),
        json!({"revocation_endpoint": "ftp://mtls.tenant.auth0.com/revoke"}),
        json!({"userinfo_endpoint": "https://{bad}.example.com/userinfo"}),
        json!({"introspection_endpoint": "not a url"}),
        json!({"token_endpoint": 7}),
        json!("https://mtls.tenant.auth0.com/"),
    ] {
        assert!(
            parse_metadata(&config, &document(bad.clone())).is_err(),
            "{bad}"
        );
    }
    // Loopback http is allowed, as for the other endpoints (a local emulator).
    let local = Config::builder("http://127.0.0.1:8080", CLIENT_ID)
        .tls_client_auth()
        .secret(COOKIE_SECRET)
        .build()
        .unwrap();
    let doc = json(
        200,
        &json!({
            "issuer": "http://127.0.0.1:8080/",
            "authorization_endpoint": "http://127.0.0.1:8080/authorize",
            "token_endpoint": "http://127.0.0.1:8080/oauth/token",
            "jwks_uri": "http://127.0.0.1:8080/jwks",
            "mtls_endpoint_aliases": {"token_endpoint": "https://127.0.0.1:8443/oauth/token"},
        })
        .to_string(),
    );
    assert!(parse_metadata(&local, &doc).is_ok());
}

/// A refresh by an mTLS client: to the token endpoint's alias, with `client_id` and the
/// grant's parameters only — no secret, no assertion, no Authorization header.
#[test]
fn an_mtls_refresh_goes_to_the_alias_with_the_client_id_and_no_secret() {
    for method in [
        ClientAuthMethod::TlsClientAuth,
        ClientAuthMethod::SelfSignedTlsClientAuth,
    ] {
        let core = auth0_server_protocol::Core::new(mtls_config(method));
        let (result, rec) = Script::new()
            .session(Some(session()))
            .metadata(Some(CachedMetadata {
                metadata: Arc::new(aliased_metadata()),
                fetched_at: UnixTime::from_secs(NOW - 10),
            }))
            .jwks(Some(cached_jwks()))
            .http(json(
                200,
                r#"{"access_token":"at","token_type":"Bearer","expires_in":3600}"#,
            ))
            .run(core.get_access_token(AccessTokenRequest::default()), NOW);
        assert_eq!(result.expect("refreshed").access_token.expose(), "at");
        let requests = rec.token_requests();
        assert_eq!(requests.len(), 1);
        let req = requests[0];
        assert_eq!(req.uri, "https://mtls.tenant.auth0.com/oauth/token");
        assert_eq!(
            req.param_names(),
            ["client_id", "grant_type", "refresh_token", "scope"]
        );
        assert_eq!(req.param("client_id"), Some(CLIENT_ID));
        assert_eq!(req.header("authorization"), None);
        assert!(!String::from_utf8_lossy(&req.body).contains(CLIENT_SECRET));
    }
}

/// Without aliases in discovery an mTLS client sends to the token endpoint itself (a
/// provider whose only endpoints ask for a certificate).
#[test]
fn without_aliases_an_mtls_refresh_goes_to_the_token_endpoint() {
    let core = auth0_server_protocol::Core::new(mtls_config(ClientAuthMethod::TlsClientAuth));
    let (result, rec) = Script::new()
        .session(Some(session()))
        .metadata(Some(cached_metadata(NOW, 10)))
        .jwks(Some(cached_jwks()))
        .http(json(200, r#"{"access_token":"at","expires_in":3600}"#))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    assert!(result.is_ok());
    assert_eq!(rec.token_requests()[0].uri, TOKEN_ENDPOINT);
    assert_eq!(rec.token_requests()[0].param("client_secret"), None);
}

/// Revocation goes to its alias too, authenticated by `client_id` alone.
#[test]
fn an_mtls_revocation_goes_to_the_alias_with_the_client_id_and_no_secret() {
    let config = mtls_config(ClientAuthMethod::SelfSignedTlsClientAuth);
    let req = auth0_server_protocol::token_endpoint::revocation_request(
        &config,
        &aliased_metadata(),
        &Secret::new(REFRESH_TOKEN),
    )
    .expect("a revocation endpoint");
    assert!(req.at_send.is_empty(), "nothing to add when sending");
    assert_eq!(
        req.request.uri(),
        "https://mtls.tenant.auth0.com/oauth/revoke"
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(req.request.body())
        .into_owned()
        .collect();
    let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["token", "token_type_hint", "client_id"]);
    assert!(req.request.headers().get("authorization").is_none());
}

/// A Custom Token Exchange by an mTLS client goes to the token endpoint's alias with
/// `client_id` and no secret, like every other token request.
#[test]
fn a_custom_token_exchange_goes_to_the_alias() {
    use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
    use auth0_server_protocol::login::TokenExchangeRequest;
    let core = auth0_server_protocol::Core::new(mtls_config(ClientAuthMethod::TlsClientAuth));
    let mut op =
        core.custom_token_exchange(TokenExchangeRequest::new("legacy", "urn:acme:legacy-token"));
    let mut input = Input::Start;
    loop {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(auth0_server_protocol::discovery::CachedMetadata {
                    metadata: Arc::new(aliased_metadata()),
                    fetched_at: UnixTime::from_secs(NOW),
                }))
            }
            Step::Effect(Effect::Http(request)) => {
                assert_eq!(
                    request.request.uri().to_string(),
                    "https://mtls.tenant.auth0.com/oauth/token"
                );
                let body = String::from_utf8(request.request.body().clone()).unwrap();
                assert!(body.contains("client_id="), "{body}");
                assert!(!body.contains("client_secret"), "{body}");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
