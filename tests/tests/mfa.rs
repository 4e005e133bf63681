//! End-to-end: multi-factor authentication (step-up) through the blocking and the async
//! client against the emulator. `get_access_token` for an API behind an MFA policy answers
//! `mfa_required`; the application seals the `mfa_token`, lists the authenticators, challenges
//! one and verifies (OTP, OOB + binding code, recovery code); the tokens land in the session.
//! The negative cases: a wrong OTP (typed `mfa_failed`, nothing saved), an expired sealed
//! token, a tampered sealed token, Auth0's own expiry of the `mfa_token`, and no session.

mod adapter_support;

use adapter_support::param;
use auth0_emulator::{ANALYTICS_AUDIENCE, Emulator, EmulatorConfig, MfaPolicy};
use auth0_server::clock::Clock;
use auth0_server::store::CookieOptions;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::{
    AccessToken, AccessTokenRequest, Authenticator, Challenge, ChallengeType, Config, Enrollment,
    Error, MfaFactor, MfaProof, MfaVerified, MfaVerify, PasswordlessOtp, PasswordlessStart,
    SealedMfaToken, blocking, nonblocking,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

type Blocking = blocking::ServerClient<MemoryStateStore, MemoryTransactionStore>;
type Async = nonblocking::ServerClient<
    MemoryStateStore,
    MemoryTransactionStore,
    auth0_server::http::ReqwestClient,
>;
type O = CookieOptions;

/// The operations under test, implemented by both clients so each scenario is written once.
trait Mfa {
    fn start(&self, s: PasswordlessStart, o: &mut O) -> Result<(), Error>;
    fn login(&self, otp: PasswordlessOtp, o: &mut O) -> Result<(), Error>;
    fn token(&self, r: AccessTokenRequest, o: &mut O) -> Result<AccessToken, Error>;
    fn seal(&self, e: &Error, r: &AccessTokenRequest) -> Result<SealedMfaToken, Error>;
    fn list(&self, s: &SealedMfaToken, o: &mut O) -> Result<Vec<Authenticator>, Error>;
    fn enroll(&self, s: &SealedMfaToken, f: MfaFactor, o: &mut O) -> Result<Enrollment, Error>;
    fn challenge(
        &self,
        s: &SealedMfaToken,
        t: ChallengeType,
        id: Option<String>,
        o: &mut O,
    ) -> Result<Challenge, Error>;
    fn verify(&self, v: MfaVerify, o: &mut O) -> Result<MfaVerified, Error>;
    fn delete(&self, s: &SealedMfaToken, id: &str, o: &mut O) -> Result<(), Error>;
}

impl Mfa for Blocking {
    fn start(&self, s: PasswordlessStart, o: &mut O) -> Result<(), Error> {
        self.start_passwordless(s, o)
    }
    fn login(&self, otp: PasswordlessOtp, o: &mut O) -> Result<(), Error> {
        self.login_with_passwordless(otp, o).map(|_| ())
    }
    fn token(&self, r: AccessTokenRequest, o: &mut O) -> Result<AccessToken, Error> {
        self.get_access_token_with(r, o)
    }
    fn seal(&self, e: &Error, r: &AccessTokenRequest) -> Result<SealedMfaToken, Error> {
        self.seal_mfa_token(e, r)
    }
    fn list(&self, s: &SealedMfaToken, o: &mut O) -> Result<Vec<Authenticator>, Error> {
        self.list_authenticators(s, o)
    }
    fn enroll(&self, s: &SealedMfaToken, f: MfaFactor, o: &mut O) -> Result<Enrollment, Error> {
        self.enroll_authenticator(s, f, o)
    }
    fn challenge(
        &self,
        s: &SealedMfaToken,
        t: ChallengeType,
        id: Option<String>,
        o: &mut O,
    ) -> Result<Challenge, Error> {
        self.challenge_authenticator(s, t, id, o)
    }
    fn verify(&self, v: MfaVerify, o: &mut O) -> Result<MfaVerified, Error> {
        self.verify_mfa(v, o)
    }
    fn delete(&self, s: &SealedMfaToken, id: &str, o: &mut O) -> Result<(), Error> {
        self.delete_authenticator(s, id, o)
    }
}

struct AsyncClient {
    client: Async,
    rt: tokio::runtime::Runtime,
}

impl Mfa for AsyncClient {
    fn start(&self, s: PasswordlessStart, o: &mut O) -> Result<(), Error> {
        self.rt.block_on(self.client.start_passwordless(s, o))
    }
    fn login(&self, otp: PasswordlessOtp, o: &mut O) -> Result<(), Error> {
        self.rt
            .block_on(self.client.login_with_passwordless(otp, o))
            .map(|_| ())
    }
    fn token(&self, r: AccessTokenRequest, o: &mut O) -> Result<AccessToken, Error> {
        self.rt.block_on(self.client.get_access_token_with(r, o))
    }
    fn seal(&self, e: &Error, r: &AccessTokenRequest) -> Result<SealedMfaToken, Error> {
        self.client.seal_mfa_token(e, r)
    }
    fn list(&self, s: &SealedMfaToken, o: &mut O) -> Result<Vec<Authenticator>, Error> {
        self.rt.block_on(self.client.list_authenticators(s, o))
    }
    fn enroll(&self, s: &SealedMfaToken, f: MfaFactor, o: &mut O) -> Result<Enrollment, Error> {
        self.rt.block_on(self.client.enroll_authenticator(s, f, o))
    }
    fn challenge(
        &self,
        s: &SealedMfaToken,
        t: ChallengeType,
        id: Option<String>,
        o: &mut O,
    ) -> Result<Challenge, Error> {
        self.rt
            .block_on(self.client.challenge_authenticator(s, t, id, o))
    }
    fn verify(&self, v: MfaVerify, o: &mut O) -> Result<MfaVerified, Error> {
        self.rt.block_on(self.client.verify_mfa(v, o))
    }
    fn delete(&self, s: &SealedMfaToken, id: &str, o: &mut O) -> Result<(), Error> {
        self.rt.block_on(self.client.delete_authenticator(s, id, o))
    }
}

/// A clock the test moves (starts at the real time).
fn test_clock() -> (Clock, Arc<AtomicU64>) {
    let t = Arc::new(AtomicU64::new(adapter_support::now()));
    let read = t.clone();
    (Clock::from_fn(move || read.load(Ordering::SeqCst)), t)
}

fn config(emu: &Emulator) -> Config {
    adapter_support::config_builder(emu)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .build()
        .expect("valid config")
}

fn blocking_client(config: Config, clock: Clock) -> Box<dyn Mfa> {
    Box::new(
        blocking::ServerClient::builder(
            config,
            MemoryStateStore::new().secure(false),
            MemoryTransactionStore::new().secure(false),
        )
        .clock(clock)
        .build(),
    )
}

fn async_client(config: Config, clock: Clock) -> Box<dyn Mfa> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http =
        rt.block_on(async { adapter_support::reqwest_client(std::time::Duration::from_secs(10)) });
    let client = nonblocking::ServerClient::builder(
        config,
        MemoryStateStore::new().secure(false),
        MemoryTransactionStore::new().secure(false),
        http,
    )
    .clock(clock)
    .build();
    Box::new(AsyncClient { client, rt })
}

type MakeClient = fn(Config, Clock) -> Box<dyn Mfa>;

/// The cookies of the last response, as the browser's next request carries them.
fn next_request(o: &O) -> O {
    let pairs: Vec<String> = o
        .cookie_names()
        .iter()
        .filter_map(|n| o.cookie(n).map(|v| format!("{n}={v}")))
        .collect();
    let mut h = http::HeaderMap::new();
    if !pairs.is_empty() {
        h.insert(http::header::COOKIE, pairs.join("; ").parse().unwrap());
    }
    CookieOptions::from_request_headers(&h)
}

/// The scenario's start: a logged-in user (passwordless), an MFA policy on the analytics API,
/// and `get_access_token` for it refused with `mfa_required`, sealed.
struct Setup {
    emu: Emulator,
    client: Box<dyn Mfa>,
    clock: Arc<AtomicU64>,
    o: O,
    sealed: SealedMfaToken,
    mfa_token: String,
}

fn setup(make: MakeClient) -> Setup {
    let emu = Emulator::start(EmulatorConfig {
        mfa_policies: vec![MfaPolicy::for_audience(ANALYTICS_AUDIENCE)],
        ..Default::default()
    });
    let config = config(&emu);
    setup_with(make, emu, config)
}

fn setup_with(make: MakeClient, emu: Emulator, config: Config) -> Setup {
    let (clock, t) = test_clock();
    let client = make(config, clock);
    let mut o = O::new();
    client
        .start(PasswordlessStart::email("ann@example.com"), &mut o)
        .expect("code sent");
    let code = emu.passwordless_messages().pop().unwrap().code.unwrap();
    let mut o = next_request(&o);
    client
        .login(PasswordlessOtp::email("ann@example.com", code), &mut o)
        .expect("logged in");
    let mut o = next_request(&o);
    let request = AccessTokenRequest::audience(ANALYTICS_AUDIENCE);
    let err = client.token(request.clone(), &mut o).unwrap_err();
    assert_eq!(err.code(), "mfa_required", "{err}");
    let mfa_token = err
        .oauth_error()
        .and_then(|e| e.mfa_token.clone())
        .or_else(|| match &err {
            Error::AccessToken(e) => match e.as_ref() {
                auth0_server::protocol::access_token::AccessTokenError::MfaRequired {
                    mfa_token,
                    ..
                } => Some(mfa_token.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("an mfa_token")
        .expose()
        .to_owned();
    let sealed = client.seal(&err, &request).expect("sealed");
    assert!(!sealed.as_str().contains(&mfa_token));
    assert!(!format!("{sealed:?}").contains(sealed.as_str()));
    assert!(
        sealed
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "safe in a page"
    );
    Setup {
        emu,
        client,
        clock: t,
        o,
        sealed,
        mfa_token,
    }
}

fn otp_step_up_lands_in_the_session(make: MakeClient) {
    let Setup {
        emu,
        client,
        mut o,
        sealed,
        mfa_token,
        ..
    } = setup(make);
    let authenticators = client.list(&sealed, &mut o).expect("listed");
    let list = &emu.requests_to("/mfa/authenticators")[0];
    assert_eq!(
        list.header("authorization"),
        Some(format!("Bearer {mfa_token}").as_str())
    );
    let otp = authenticators
        .iter()
        .find(|a| a.authenticator_type == "otp")
        .expect("an OTP authenticator");
    let challenge = client
        .challenge(&sealed, ChallengeType::Otp, Some(otp.id.clone()), &mut o)
        .expect("challenged");
    assert_eq!(challenge.challenge_type, "otp");
    let sent = &emu.requests_to("/mfa/challenge")[0];
    assert_eq!(
        param(sent, "mfa_token").as_deref(),
        Some(mfa_token.as_str())
    );
    assert_eq!(param(sent, "challenge_type").as_deref(), Some("otp"));
    assert_eq!(param(sent, "authenticator_id"), Some(otp.id.clone()));
    assert_eq!(param(sent, "client_id").as_deref(), Some(emu.client_id()));
    let before = emu.requests_to("/oauth/token").len();
    let verified = client
        .verify(
            MfaVerify::new(sealed, MfaProof::otp(emu.mfa_otp())).persist(),
            &mut o,
        )
        .expect("verified");
    assert!(verified.persisted);
    assert!(verified.tokens.claims.is_some(), "ID token verified");
    let grant = emu.requests_to("/oauth/token").pop().unwrap();
    assert_eq!(
        param(&grant, "grant_type").as_deref(),
        Some("http://auth0.com/oauth/grant-type/mfa-otp")
    );
    assert_eq!(
        param(&grant, "mfa_token").as_deref(),
        Some(mfa_token.as_str())
    );
    assert_eq!(param(&grant, "otp"), Some(emu.mfa_otp()));
    // The analytics token is in the session now: served without another request.
    let mut o = next_request(&o);
    let token = client
        .token(AccessTokenRequest::audience(ANALYTICS_AUDIENCE), &mut o)
        .expect("the stepped-up token");
    assert_eq!(token.access_token, verified.tokens.access_token);
    assert_eq!(emu.requests_to("/oauth/token").len(), before + 1);
}

fn oob_with_binding_code(make: MakeClient) {
    let Setup {
        emu,
        client,
        mut o,
        sealed,
        ..
    } = setup(make);
    let challenge = client
        .challenge(
            &sealed,
            ChallengeType::Oob,
            Some("sms|dev_emulator_sms".into()),
            &mut o,
        )
        .expect("challenged");
    assert_eq!(challenge.binding_method.as_deref(), Some("prompt"));
    let oob_code = challenge.oob_code.expect("an oob_code");
    let binding = emu.mfa_binding_code().expect("a binding code sent");
    // A wrong binding code is refused, typed, and redacted.
    let err = client
        .verify(
            MfaVerify::new(
                sealed.clone(),
                MfaProof::oob(oob_code.expose(), Some("000000x".into())),
            ),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(err.code(), "mfa_failed", "{err}");
    assert_eq!(err.oauth_error().unwrap().error, "invalid_grant");
    let verified = client
        .verify(
            MfaVerify::new(
                sealed,
                MfaProof::oob(oob_code.expose(), Some(binding.clone())),
            ),
            &mut o,
        )
        .expect("verified");
    assert!(!verified.persisted);
    let grant = emu.requests_to("/oauth/token").pop().unwrap();
    assert_eq!(
        param(&grant, "grant_type").as_deref(),
        Some("http://auth0.com/oauth/grant-type/mfa-oob")
    );
    assert_eq!(param(&grant, "binding_code"), Some(binding));
}

fn recovery_code_is_single_use(make: MakeClient) {
    let Setup {
        emu,
        client,
        mut o,
        sealed,
        ..
    } = setup(make);
    let code = emu.mfa_recovery_code();
    let verified = client
        .verify(
            MfaVerify::new(sealed.clone(), MfaProof::recovery_code(code.clone())),
            &mut o,
        )
        .expect("verified");
    let next = verified.recovery_code.expect("a new recovery code");
    assert_eq!(next.expose(), emu.mfa_recovery_code());
    assert_ne!(next.expose(), code);
    let err = client
        .verify(
            MfaVerify::new(sealed, MfaProof::recovery_code(code.clone())),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(err.code(), "mfa_failed", "{err}");
    assert!(!format!("{err} {err:?}").contains(&code));
}

fn wrong_otp_saves_nothing(make: MakeClient) {
    let Setup {
        emu,
        client,
        mut o,
        sealed,
        mfa_token,
        ..
    } = setup(make);
    let wrong = if emu.mfa_otp() == "123456" {
        "654321"
    } else {
        "123456"
    };
    let err = client
        .verify(
            MfaVerify::new(sealed, MfaProof::otp(wrong)).persist(),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(err.code(), "mfa_failed", "{err}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(wrong) && !shown.contains(&mfa_token),
        "{shown}"
    );
    // Only an `mfa_required` error is sealed.
    let not_mfa = client
        .seal(&err, &AccessTokenRequest::audience(ANALYTICS_AUDIENCE))
        .unwrap_err();
    assert_eq!(not_mfa.code(), "invalid_parameter");
    // Still no analytics token: MFA is asked again.
    let mut o = next_request(&o);
    let err = client
        .token(AccessTokenRequest::audience(ANALYTICS_AUDIENCE), &mut o)
        .unwrap_err();
    assert_eq!(err.code(), "mfa_required");
    // Bad input is refused before anything is sent.
    let sent = emu.requests_to("/oauth/token").len();
    let sealed = client
        .seal(&err, &AccessTokenRequest::audience(ANALYTICS_AUDIENCE))
        .unwrap();
    for bad in ["12 456", "12345a", "1", ""] {
        let err = client
            .verify(MfaVerify::new(sealed.clone(), MfaProof::otp(bad)), &mut o)
            .unwrap_err();
        assert_eq!(err.code(), "invalid_parameter", "{bad:?}");
    }
    assert_eq!(emu.requests_to("/oauth/token").len(), sent);
}

fn expired_sealed_token_is_refused(make: MakeClient) {
    let Setup {
        emu,
        client,
        clock,
        mut o,
        sealed,
        ..
    } = setup(make);
    clock.fetch_add(301, Ordering::SeqCst);
    let sent = emu.requests().len();
    let err = client.list(&sealed, &mut o).unwrap_err();
    assert_eq!(err.code(), "mfa_token_expired", "{err}");
    let err = client
        .verify(MfaVerify::new(sealed, MfaProof::otp(emu.mfa_otp())), &mut o)
        .unwrap_err();
    assert_eq!(err.code(), "mfa_token_expired", "{err}");
    assert_eq!(emu.requests().len(), sent, "nothing sent");
}

/// Deleting an authenticator removes it from the list (its id percent-encoded in the path,
/// the `mfa_token` as bearer); an unknown id is Auth0's refusal, a bad one is refused before
/// sending, and an expired sealed token sends nothing.
fn delete_an_authenticator(make: MakeClient) {
    let Setup {
        emu,
        client,
        clock,
        mut o,
        sealed,
        mfa_token,
    } = setup(make);
    let before = client.list(&sealed, &mut o).expect("listed");
    assert!(before.iter().any(|a| a.id == "sms|dev_emulator_sms"));
    client
        .delete(&sealed, "sms|dev_emulator_sms", &mut o)
        .expect("deleted");
    let sent = emu.requests().pop().unwrap();
    assert_eq!(sent.method, "DELETE");
    assert_eq!(sent.path, "/mfa/authenticators/sms%7Cdev_emulator_sms");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {mfa_token}").as_str())
    );
    let after = client.list(&sealed, &mut o).expect("listed");
    assert_eq!(after.len(), before.len() - 1);
    assert!(!after.iter().any(|a| a.id == "sms|dev_emulator_sms"));
    let err = client
        .delete(&sealed, "sms|dev_emulator_sms", &mut o)
        .unwrap_err();
    assert_eq!(err.code(), "mfa_failed", "{err}");
    assert_eq!(err.oauth_error().map(|e| e.status), Some(404));
    assert!(!format!("{err} {err:?}").contains(&mfa_token));
    let sent = emu.requests().len();
    let err = client.delete(&sealed, "totp| x", &mut o).unwrap_err();
    assert_eq!(err.code(), "invalid_parameter", "{err}");
    clock.fetch_add(301, Ordering::SeqCst);
    let err = client
        .delete(&sealed, "totp|dev_emulator_otp", &mut o)
        .unwrap_err();
    assert_eq!(err.code(), "mfa_token_expired", "{err}");
    assert_eq!(emu.requests().len(), sent, "nothing sent");
}

fn auth0_expiry_of_the_mfa_token_is_typed(make: MakeClient) {
    let Setup {
        emu,
        client,
        mut o,
        sealed,
        ..
    } = setup(make);
    emu.expire_mfa_tokens();
    let err = client.list(&sealed, &mut o).unwrap_err();
    assert_eq!(err.code(), "mfa_token_expired", "{err}");
    let err = client
        .verify(MfaVerify::new(sealed, MfaProof::otp(emu.mfa_otp())), &mut o)
        .unwrap_err();
    assert_eq!(err.code(), "mfa_token_expired", "{err}");
}

fn tampered_sealed_token_is_refused(make: MakeClient) {
    let Setup {
        emu,
        client,
        mut o,
        sealed,
        ..
    } = setup(make);
    let mut bytes = sealed.as_str().as_bytes().to_vec();
    let i = bytes.len() - 50;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = SealedMfaToken::new(String::from_utf8(bytes).unwrap());
    let sent = emu.requests().len();
    for t in [
        tampered,
        SealedMfaToken::new("not-a-token"),
        SealedMfaToken::new(""),
    ] {
        let err = client
            .verify(
                MfaVerify::new(t.clone(), MfaProof::otp(emu.mfa_otp())),
                &mut o,
            )
            .unwrap_err();
        assert_eq!(err.code(), "mfa_token_invalid", "{err}");
        let err = client
            .challenge(&t, ChallengeType::Otp, None, &mut o)
            .unwrap_err();
        assert_eq!(err.code(), "mfa_token_invalid", "{err}");
    }
    assert_eq!(emu.requests().len(), sent, "nothing sent");
    // Another secret does not open it; after a rotation (new secret first, old kept) it
    // still opens.
    let with_secrets = |secrets: &[&str]| {
        let mut b = Config::builder(emu.issuer_url(), emu.client_id())
            .client_secret(emu.client_secret())
            .audience(auth0_emulator::DEFAULT_AUDIENCE);
        for s in secrets {
            b = b.secret(*s);
        }
        make(b.build().unwrap(), Clock::system())
    };
    const OTHER: &str = "another-secret-another-secret-another!";
    let err = with_secrets(&[OTHER]).list(&sealed, &mut o).unwrap_err();
    assert_eq!(err.code(), "mfa_token_invalid", "{err}");
    let rotated = with_secrets(&[OTHER, adapter_support::SECRET]);
    assert_eq!(rotated.list(&sealed, &mut o).expect("opens").len(), 3);
}

fn persist_without_a_session_creates_none(make: MakeClient) {
    let Setup {
        emu,
        client,
        sealed,
        ..
    } = setup(make);
    let sent = emu.requests_to("/oauth/token").len();
    let mut fresh = O::new();
    let err = client
        .verify(
            MfaVerify::new(sealed, MfaProof::otp(emu.mfa_otp())).persist(),
            &mut fresh,
        )
        .unwrap_err();
    assert_eq!(err.code(), "missing_session", "{err}");
    assert_eq!(emu.requests_to("/oauth/token").len(), sent, "nothing sent");
    assert!(fresh.cookie_names().is_empty(), "no session created");
}

fn enroll_otp_and_sms(make: MakeClient) {
    let Setup {
        emu,
        client,
        mut o,
        sealed,
        mfa_token,
        ..
    } = setup(make);
    let otp = client
        .enroll(&sealed, MfaFactor::Otp, &mut o)
        .expect("enrolled");
    assert_eq!(otp.authenticator_type, "otp");
    assert!(otp.secret.is_some() && otp.barcode_uri.is_some());
    assert!(!format!("{otp:?}").contains(otp.secret.as_ref().unwrap().expose()));
    let sms = client
        .enroll(&sealed, MfaFactor::Sms("+14155550100".into()), &mut o)
        .expect("enrolled");
    assert!(sms.oob_code.is_some());
    let sent = emu.requests_to("/mfa/associate");
    assert_eq!(
        sent[1].header("authorization"),
        Some(format!("Bearer {mfa_token}").as_str())
    );
    let body: serde_json::Value = serde_json::from_slice(&sent[1].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": "+14155550100"})
    );
    let err = client
        .enroll(&sealed, MfaFactor::Sms("4155550100".into()), &mut o)
        .unwrap_err();
    assert_eq!(err.code(), "invalid_parameter");
}

/// With `private_key_jwt`, the challenge and the grant carry a fresh client assertion and
/// never the secret.
fn private_key_jwt_authenticates_challenge_and_grant(make: MakeClient) {
    use auth0_server::protocol::client_assertion::{ASSERTION_TYPE, AssertionAlg, AssertionKey};
    const RSA_PEM: &str = include_str!("../data/client_keys/rsa.pem");
    let public = AssertionKey::parse(RSA_PEM, AssertionAlg::Rs256, None)
        .expect("fixture key")
        .public_jwk();
    let emu = Emulator::start(EmulatorConfig {
        client_public_key: Some(public),
        mfa_policies: vec![MfaPolicy::for_audience(ANALYTICS_AUDIENCE)],
        ..Default::default()
    });
    let config = Config::builder(emu.issuer_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .private_key_jwt(RSA_PEM, AssertionAlg::Rs256)
        .secret(adapter_support::SECRET)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .build()
        .unwrap();
    let Setup {
        emu,
        client,
        mut o,
        sealed,
        ..
    } = setup_with(make, emu, config);
    client
        .challenge(&sealed, ChallengeType::Otp, None, &mut o)
        .expect("challenged");
    client
        .verify(MfaVerify::new(sealed, MfaProof::otp(emu.mfa_otp())), &mut o)
        .expect("verified");
    let challenge = emu.requests_to("/mfa/challenge").pop().unwrap();
    let grant = emu.requests_to("/oauth/token").pop().unwrap();
    for sent in [&challenge, &grant] {
        assert_eq!(
            param(sent, "client_assertion_type").as_deref(),
            Some(ASSERTION_TYPE)
        );
        assert!(param(sent, "client_assertion").is_some());
        assert_eq!(param(sent, "client_secret"), None);
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod blocking_client {
            $( #[test] fn $name() { super::$name(super::blocking_client) } )*
        }
        mod async_client {
            $( #[test] fn $name() { super::$name(super::async_client) } )*
        }
    };
}

both!(
    otp_step_up_lands_in_the_session,
    oob_with_binding_code,
    recovery_code_is_single_use,
    wrong_otp_saves_nothing,
    expired_sealed_token_is_refused,
    auth0_expiry_of_the_mfa_token_is_typed,
    tampered_sealed_token_is_refused,
    persist_without_a_session_creates_none,
    enroll_otp_and_sms,
    private_key_jwt_authenticates_challenge_and_grant,
    delete_an_authenticator,
);
