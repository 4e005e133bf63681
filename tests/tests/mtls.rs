//! End-to-end: mutual-TLS client authentication and certificate-bound access tokens (RFC
//! 8705) through both clients (blocking and async) against the emulator's TLS listener on
//! 127.0.0.1, with the test PKI of `tests/data/mtls/`.
//!
//! For `tls_client_auth` (a certificate issued by the test CA, registered by subject) and
//! `self_signed_tls_client_auth` (a registered self-signed certificate): a login with PAR and
//! the code exchange, a refresh, a connection token exchange and a logout that revokes the
//! refresh token all go to the
//! `mtls_endpoint_aliases` over TLS with the client certificate, carry `client_id` and no
//! secret, and the access tokens are bound to the certificate (`cnf.x5t#S256`). A wrong
//! certificate is a typed `invalid_client` error and nothing is saved.

mod adapter_support;
mod emulator_support;
mod login_support;

use adapter_support::SECRET;
use auth0_emulator::tls::{
    CLIENT_CERT_PEM, CLIENT_KEY_PEM, CLIENT_SUBJECT_DN, SELF_SIGNED_CERT_PEM, SELF_SIGNED_KEY_PEM,
    TEST_CA_PEM, WRONG_CLIENT_CERT_PEM, WRONG_CLIENT_KEY_PEM,
};
use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, EmulatorConfig, RecordedRequest, TlsClientAuth};
use auth0_server::http::{ClientCertificate, RootCertificates};
use auth0_server::protocol::config::ClientAuthMethod;
use auth0_server::protocol::login::LoginError;
use auth0_server::store::CookieOptions;
use auth0_server::{
    Config, ConnectionTokenRequest, Error, LogoutOptions, StartLoginOptions, TransportErrorKind,
};
use login_support::{Browser, CALLBACK, Sessions, TlsClients, Transactions};

/// The two registrations, and the certificate and key each accepts.
#[derive(Clone, Copy, Debug)]
enum Kind {
    CaIssued,
    SelfSigned,
}

impl Kind {
    fn method(self) -> ClientAuthMethod {
        match self {
            Kind::CaIssued => ClientAuthMethod::TlsClientAuth,
            Kind::SelfSigned => ClientAuthMethod::SelfSignedTlsClientAuth,
        }
    }
    fn registration(self) -> TlsClientAuth {
        match self {
            Kind::CaIssued => TlsClientAuth::CaIssued {
                subject_dn: CLIENT_SUBJECT_DN.into(),
            },
            Kind::SelfSigned => TlsClientAuth::SelfSigned {
                certificate_pem: SELF_SIGNED_CERT_PEM.into(),
            },
        }
    }
    fn certificate(self) -> ClientCertificate {
        let (cert, key) = match self {
            Kind::CaIssued => (CLIENT_CERT_PEM, CLIENT_KEY_PEM),
            Kind::SelfSigned => (SELF_SIGNED_CERT_PEM, SELF_SIGNED_KEY_PEM),
        };
        ClientCertificate::from_pem(cert, key).expect("fixture certificate and key")
    }
}

/// An emulator with this mTLS registration; its access tokens live 10 s, under the SDK's
/// 30 s leeway, so every `get_access_token` refreshes.
fn emulator(kind: Kind) -> Emulator {
    Emulator::start(EmulatorConfig {
        tls_client_auth: Some(kind.registration()),
        access_token_lifetime: 10,
        ..Default::default()
    })
}

/// The application's configuration: the mTLS method, and (to prove it is never sent) the
/// client secret too.
fn config(emu: &Emulator, method: ClientAuthMethod) -> Config {
    Config::builder(emu.issuer_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .client_auth_method(method)
        .secret(SECRET)
        .redirect_uri(CALLBACK)
        .audience(DEFAULT_AUDIENCE)
        .build()
        .expect("valid config")
}

fn test_ca() -> RootCertificates {
    RootCertificates::from_pem(TEST_CA_PEM).expect("test CA")
}

/// One client-authenticated request: over the TLS listener with `certificate`, `client_id`,
/// no secret, assertion or Basic header.
fn assert_authenticated_by_certificate(
    emu: &Emulator,
    r: &RecordedRequest,
    certificate: &ClientCertificate,
) {
    let tls = r
        .tls
        .as_ref()
        .unwrap_or_else(|| panic!("{} over TLS", r.path));
    assert_eq!(
        tls.x5t_s256().as_deref(),
        Some(certificate.x5t_s256()),
        "{}: the client certificate",
        r.path
    );
    assert_eq!(r.param("client_id"), Some(emu.client_id()));
    assert_eq!(r.param("client_secret"), None, "{}: no secret", r.path);
    assert_eq!(r.param("client_assertion"), None, "{}", r.path);
    assert_eq!(r.header("authorization"), None, "{}", r.path);
    assert!(
        !String::from_utf8_lossy(&r.body).contains(emu.client_secret()),
        "{}",
        r.path
    );
}

/// The `cnf.x5t#S256` of an access token.
fn bound_to(access_token: &str) -> Option<String> {
    let claims = auth0_emulator::decode_payload(access_token)?;
    claims
        .get("cnf")?
        .get("x5t#S256")?
        .as_str()
        .map(str::to_owned)
}

/// PAR + code exchange, a refresh and a logout with revocation, all over mTLS.
fn whole_session<C: TlsClients>(kind: Kind) {
    let emu = emulator(kind);
    let certificate = kind.certificate();
    let api = C::build_tls(
        config(&emu, kind.method()),
        Sessions::default(),
        Transactions::default(),
        certificate.clone(),
        test_ca(),
    );
    let mut b = Browser::new(&*api);
    b.login(StartLoginOptions::new().pushed(true));
    let session = b.session().expect("session saved");
    let first = session.token_sets.first().expect("a token set");
    assert_eq!(
        bound_to(first.access_token.expose()).as_deref(),
        Some(certificate.x5t_s256()),
        "the login's access token is bound to the certificate"
    );

    let refreshed = b.request(|api, c| api.token(c)).expect("refresh");
    assert_ne!(
        refreshed.access_token.expose(),
        first.access_token.expose(),
        "a new access token"
    );
    assert_eq!(
        bound_to(refreshed.access_token.expose()).as_deref(),
        Some(certificate.x5t_s256()),
        "the refreshed access token is bound too"
    );
    let connection = b
        .request(|api, c| api.connection(ConnectionTokenRequest::new("google-oauth2"), c))
        .expect("connection token");
    assert_eq!(
        connection.access_token.expose(),
        "ya29.emulator-google-access-token"
    );
    let rt = b
        .session()
        .and_then(|s| s.refresh_token.clone())
        .expect("the session's (rotated) refresh token");
    assert!(emu.refresh_token_is_live(rt.expose()));
    b.request(|api, c| {
        api.logout(
            LogoutOptions {
                revoke_refresh_token: true,
                ..LogoutOptions::return_to("http://127.0.0.1:3000/")
            },
            c,
        )
    })
    .expect("logout");
    assert!(b.session().is_none());
    assert!(!emu.refresh_token_is_live(rt.expose()), "revoked over mTLS");

    let authenticated: Vec<RecordedRequest> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    let paths: Vec<&str> = authenticated.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/oauth/par",
            "/oauth/token",
            "/oauth/token",
            "/oauth/token",
            "/oauth/revoke"
        ],
        "PAR, code exchange, refresh, connection token, revocation"
    );
    for r in &authenticated {
        assert_authenticated_by_certificate(&emu, r, &certificate);
    }
    // Discovery and the key set were fetched from the ordinary endpoints.
    for r in emu.requests().iter().filter(|r| r.method == "GET") {
        assert!(r.tls.is_none(), "{} over plain HTTP", r.path);
    }
}

/// The client presents a certificate the registration does not accept: the code exchange is
/// refused with `invalid_client`, a typed login error, and no session is saved.
fn wrong_certificate_is_refused<C: TlsClients>(kind: Kind, presented: ClientCertificate) {
    let emu = emulator(kind);
    let sessions = Sessions::default();
    let api = C::build_tls(
        config(&emu, kind.method()),
        sessions.clone(),
        Transactions::default(),
        presented.clone(),
        test_ca(),
    );
    let mut b = Browser::new(&*api);
    let (_, callback) = b.authorize(StartLoginOptions::new());
    let err = b.complete(&callback).unwrap_err();
    assert_eq!(err.code(), "failed_to_exchange_code", "{err:?}");
    match &err {
        Error::Login(e) => match &**e {
            LoginError::CodeExchange(r) => assert_eq!(
                r.oauth().map(|o| (o.status, o.error.as_str())),
                Some((401, "invalid_client"))
            ),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert!(sessions.is_empty(), "nothing saved");
    assert!(b.session().is_none());
    let token = emu.token_requests();
    assert_eq!(token.len(), 1);
    assert_authenticated_by_certificate(&emu, &token[0], &presented);
}

/// Without the test CA among its roots the client does not trust the TLS listener: the
/// server certificate is verified (a transport error naming the TLS handshake), nothing is
/// sent in clear.
fn the_listener_is_untrusted_without_the_test_ca<C: TlsClients>() {
    let emu = emulator(Kind::CaIssued);
    let api = C::build_tls(
        config(&emu, ClientAuthMethod::TlsClientAuth),
        Sessions::default(),
        Transactions::default(),
        Kind::CaIssued.certificate(),
        RootCertificates::default(),
    );
    let mut cookies = CookieOptions::from_request_headers(&http::HeaderMap::new());
    let err = api
        .start(StartLoginOptions::new().pushed(true), &mut cookies)
        .unwrap_err();
    match &err {
        Error::Transport(t) => {
            assert_eq!(t.kind(), TransportErrorKind::Connect, "{t}");
            assert!(t.to_string().contains("TLS handshake"), "{t}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        emu.requests_to("/oauth/par").is_empty(),
        "nothing reached it"
    );
}

fn wrong_ca() -> ClientCertificate {
    ClientCertificate::from_pem(WRONG_CLIENT_CERT_PEM, WRONG_CLIENT_KEY_PEM).unwrap()
}

macro_rules! per_client {
    ($client:ty) => {
        use super::*;
        #[test]
        fn whole_session_with_tls_client_auth() {
            whole_session::<$client>(Kind::CaIssued);
        }
        #[test]
        fn whole_session_with_self_signed_tls_client_auth() {
            whole_session::<$client>(Kind::SelfSigned);
        }
        #[test]
        fn a_certificate_from_another_ca_is_invalid_client() {
            wrong_certificate_is_refused::<$client>(Kind::CaIssued, wrong_ca());
        }
        #[test]
        fn the_tls_listener_is_untrusted_without_the_test_ca() {
            the_listener_is_untrusted_without_the_test_ca::<$client>();
        }
        #[test]
        fn an_unregistered_self_signed_certificate_is_invalid_client() {
            wrong_certificate_is_refused::<$client>(Kind::SelfSigned, Kind::CaIssued.certificate());
        }
    };
}

mod blocking {
    per_client!(login_support::Blocking);
}

mod nonblocking {
    per_client!(login_support::Nonblocking);
}

// ---------------------------------------------------------------------------------------------
// The emulator itself
// ---------------------------------------------------------------------------------------------

#[test]
fn discovery_lists_the_aliases_on_the_tls_listener() {
    let emu = emulator(Kind::CaIssued);
    let tls = emu.tls_base_url().expect("a TLS listener");
    assert!(tls.starts_with("https://127.0.0.1:"), "{tls}");
    let doc = emulator_support::answer(
        emulator_support::agent()
            .get(emu.url("/.well-known/openid-configuration"))
            .call(),
    )
    .json();
    let aliases = &doc["mtls_endpoint_aliases"];
    assert_eq!(aliases["token_endpoint"], format!("{tls}/oauth/token"));
    assert_eq!(
        aliases["revocation_endpoint"],
        format!("{tls}/oauth/revoke")
    );
    assert_eq!(
        aliases["pushed_authorization_request_endpoint"],
        format!("{tls}/oauth/par")
    );
    assert_eq!(doc["tls_client_certificate_bound_access_tokens"], true);
    let plain = Emulator::start(EmulatorConfig::default());
    assert!(plain.tls_base_url().is_none());
}

/// Over plain HTTP (no certificate) or with a secret instead, an mTLS client is refused and
/// nothing is spent.
#[test]
fn without_a_client_certificate_the_emulator_refuses_an_mtls_client() {
    let emu = emulator(Kind::CaIssued);
    let rt = emu.issue_refresh_token(Default::default());
    for extra in [vec![], vec![("client_secret", emu.client_secret())]] {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", emu.client_id()),
        ];
        form.extend(extra);
        let answer = emulator_support::answer(
            emulator_support::agent()
                .post(emu.url("/oauth/token"))
                .send_form(form.iter().copied()),
        );
        assert_eq!(
            (answer.status, answer.json()["error"].as_str()),
            (401, Some("invalid_client"))
        );
    }
    assert!(emu.refresh_token_is_live(&rt));
}
