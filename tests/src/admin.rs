//! The test and admin hooks: what a test (or the quickstart) does to the emulator directly
//! rather than over HTTP — inject failures, mint tokens and refresh-token grants, rotate the
//! signing key, change the user, make `/authorize` fail, end sessions (with back-channel
//! logout delivery), change the back-channel logout URI and the multi-factor policies.

use serde_json::{Map, Value};

use crate::server::backchannel::{self, BackchannelDelivery, LogoutTrigger};
use crate::server::{self, mint};
use crate::{Emulator, Failure, MfaPolicy, RefreshEntry, jwt};

/// What one poll of a backchannel authentication (CIBA) is answered with; see
/// [`Emulator::script_ciba`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CibaStep {
    /// `authorization_pending` (HTTP 400): the user has not answered yet.
    Pending,
    /// `slow_down` (HTTP 400): the client polls too fast.
    SlowDown,
    /// The user approved: tokens and an ID token for the user.
    Approve,
    /// The user approved, but the ID token is for another audience (a client must refuse it).
    ApproveWithIdTokenAudience(String),
    /// `access_denied` (HTTP 400): the user denied.
    Deny,
    /// `expired_token` (HTTP 400): the request expired.
    Expire,
}

/// A refresh-token grant minted directly with [`Emulator::issue_refresh_token`].
#[derive(Clone, Debug)]
pub struct RefreshGrant {
    /// Subject; `None` means the configured user's `sub`.
    pub sub: Option<String>,
    /// Granted scope (default `openid profile email offline_access`).
    pub scope: String,
    /// Audience of the original login; `None` means the default audience.
    pub audience: Option<String>,
    /// The Auth0 session (`sid`) the grant belongs to (its ID tokens carry it, and ending
    /// it sends a logout token with it); `None` means a new random session.
    pub sid: Option<String>,
}

impl Default for RefreshGrant {
    fn default() -> Self {
        RefreshGrant {
            sub: None,
            scope: "openid profile email offline_access".into(),
            audience: None,
            sid: None,
        }
    }
}

/// Which bundled key signs a token minted with [`Emulator::mint_id_token`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyChoice {
    /// The current signing key (published in the JWKS).
    #[default]
    Current,
    /// The previous key (published after a rotation; the current key before any rotation).
    Previous,
    /// A bundled key that the JWKS does not publish right now.
    Unpublished,
    /// Bundled key number `n` (0..3, wraps).
    Bundled(usize),
}

/// The algorithm (or forgery) used by [`Emulator::mint_id_token`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignAlg {
    /// A genuine RS256 signature.
    #[default]
    Rs256,
    /// `alg: none` with an empty signature.
    None,
    /// HS256 keyed with the client secret (the classic key-confusion attack).
    Hs256,
    /// RS256 header and kid, but a corrupted signature.
    BadSignature,
}

/// Options for minting test tokens, for negative tests.
#[derive(Clone, Debug, Default)]
pub struct SignOptions {
    /// Which key signs.
    pub key: KeyChoice,
    /// Which algorithm (or forgery).
    pub alg: SignAlg,
    /// Header overrides applied last (`Value::Null` removes the parameter), e.g. `kid`.
    pub header: Map<String, Value>,
}

impl Emulator {
    /// The `jti` of every `private_key_jwt` client assertion the emulator accepted, in order
    /// (a refused one — bad signature, wrong claims, a replay — is not listed).
    pub fn accepted_client_assertions(&self) -> Vec<String> {
        self.shared.lock().accepted_assertions.clone()
    }

    /// Every passwordless message `/passwordless/start` "sent", in order (with its code or
    /// magic link).
    pub fn passwordless_messages(&self) -> Vec<crate::PasswordlessMessage> {
        self.shared.lock().passwordless_messages.clone()
    }

    /// MFA: the one-time password the user's authenticator app shows now (the `mfa-otp`
    /// grant accepts it).
    pub fn mfa_otp(&self) -> String {
        self.shared.lock().mfa.otp.clone()
    }

    /// MFA: the binding code "sent" by the last OOB challenge or enrollment.
    pub fn mfa_binding_code(&self) -> Option<String> {
        self.shared.lock().mfa.last_binding_code.clone()
    }

    /// MFA: the user's current (single-use) recovery code.
    pub fn mfa_recovery_code(&self) -> String {
        self.shared.lock().mfa.recovery_code.clone()
    }

    /// MFA: expires every `mfa_token` issued so far (Auth0 answers `expired_token`).
    pub fn expire_mfa_tokens(&self) {
        for entry in self.shared.lock().mfa.tokens.values_mut() {
            entry.expires_at = 0;
        }
    }

    /// Expires every live passkey challenge (`auth_session`) now.
    pub fn expire_passkey_sessions(&self) {
        self.shared.lock().passkey.expire();
    }

    /// The ids of the passkey credentials registered by signups.
    pub fn passkey_credential_ids(&self) -> Vec<String> {
        self.shared.lock().passkey.credential_ids()
    }

    /// Every account (un)linking request `/authorize` accepted, in order.
    pub fn account_link_requests(&self) -> Vec<crate::AccountLinkRequest> {
        self.shared.lock().account_links.clone()
    }

    /// Makes the token endpoint and PAR require a DPoP nonce (RFC 9449 §8): a proof without
    /// the current one is answered `400 use_dpop_nonce` with a `DPoP-Nonce` header. Turning
    /// it on forgets any nonce issued before, so the next proof is challenged.
    pub fn require_dpop_nonce(&self, yes: bool) {
        let mut state = self.shared.lock();
        state.dpop.require_nonce = yes;
        state.dpop.nonce = None;
    }

    /// Makes `/api/dpop` require a DPoP nonce (RFC 9449 §9): a proof without the current one
    /// is answered `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a
    /// `DPoP-Nonce` header.
    pub fn require_resource_dpop_nonce(&self, yes: bool) {
        let mut state = self.shared.lock();
        state.dpop.require_resource_nonce = yes;
        state.dpop.resource_nonce = None;
    }

    /// Makes the token endpoint answer DPoP requests with unbound `token_type: Bearer`
    /// tokens, as a server that ignores DPoP would (a negative test's misbehaving server).
    pub fn answer_bearer_to_dpop(&self, yes: bool) {
        self.shared.lock().dpop.answer_bearer = yes;
    }

    /// How many DPoP nonce challenges the emulator answered (token endpoint, PAR and
    /// `/api/dpop`).
    pub fn dpop_nonce_challenges(&self) -> usize {
        self.shared.lock().dpop.challenges
    }

    /// The claims of every DPoP proof the emulator accepted, in order (a refused one — bad
    /// signature, wrong `htm`/`htu`/`ath`, a replay, a missing nonce — is not listed).
    pub fn accepted_dpop_proofs(&self) -> Vec<Map<String, Value>> {
        self.shared.lock().dpop.accepted.clone()
    }

    /// Makes the next `times` requests to `path` (any method) fail with `failure`.
    /// Injections for the same path queue up in call order.
    pub fn fail_next(&self, path: &str, failure: Failure, times: usize) {
        if times > 0 {
            self.shared
                .lock()
                .failures
                .push((path.to_string(), failure, times));
        }
    }

    /// Mints a live refresh token as if a login had happened (a new token family, in a new
    /// Auth0 session unless [`RefreshGrant::sid`] names one).
    pub fn issue_refresh_token(&self, grant: RefreshGrant) -> String {
        let mut state = self.shared.lock();
        let sub = grant.sub.unwrap_or_else(|| server::user_sub(&state.user));
        let family = state.next_family;
        state.next_family += 1;
        let token = server::random_token();
        let sid = grant.sid.unwrap_or_else(server::random_token);
        state.sessions.insert(sid.clone(), sub.clone());
        state.refresh_tokens.insert(
            token.clone(),
            RefreshEntry {
                family,
                sub,
                scope: grant.scope,
                audience: grant
                    .audience
                    .or_else(|| self.shared.config.default_audience.clone()),
                sid,
                org: None,
                rotated: false,
            },
        );
        token
    }

    /// Whether `refresh_token` would currently be accepted (known, not rotated away, family
    /// not revoked).
    pub fn refresh_token_is_live(&self, refresh_token: &str) -> bool {
        let state = self.shared.lock();
        state
            .refresh_tokens
            .get(refresh_token)
            .is_some_and(|e| !e.rotated && !state.revoked_families.contains(&e.family))
    }

    /// Mints an RS256 access token (current key) for `audience` (an empty audience means the
    /// `/userinfo` audience only).
    pub fn mint_access_token(
        &self,
        sub: &str,
        audience: &str,
        scope: &str,
        lifetime_secs: u64,
    ) -> String {
        let aud = (!audience.is_empty()).then_some(audience);
        mint::access_token(&self.shared, sub, aud, scope, lifetime_secs)
    }

    /// Mints an ID token. It starts from valid claims (`iss`, `aud` = client id, `iat`, `exp`,
    /// `sid` and the user's claims), then applies `claims` as overrides (`Value::Null` removes a
    /// claim), and is signed as `opts` says (key choice, `alg` forgeries, header overrides).
    pub fn mint_id_token(&self, claims: Map<String, Value>, opts: SignOptions) -> String {
        let user = self.shared.lock().user.clone();
        let mut payload =
            mint::id_token_claims(&self.shared, &user, None, &server::random_token(), None);
        jwt::apply_overrides(&mut payload, &claims);
        self.sign_with(&payload, &opts)
    }

    /// Mints a valid back-channel logout token (`iss`, `aud`, `iat`, `exp`, `jti`, `events`,
    /// and `sub` / `sid` when given), then applies `extra` as overrides (`Value::Null`
    /// removes a claim). Signed with the current key.
    pub fn mint_logout_token(
        &self,
        sub: Option<&str>,
        sid: Option<&str>,
        extra: Map<String, Value>,
    ) -> String {
        let mut payload = mint::logout_token_claims(&self.shared, sub, sid);
        jwt::apply_overrides(&mut payload, &extra);
        self.sign_with(&payload, &SignOptions::default())
    }

    /// [`Emulator::mint_logout_token`], signed as the provider signs: with the current key in
    /// the shape's algorithm (PS256 for [`ProviderShape::generic`](crate::ProviderShape)).
    pub fn mint_provider_logout_token(
        &self,
        sub: Option<&str>,
        sid: Option<&str>,
        extra: Map<String, Value>,
    ) -> String {
        let mut payload = mint::logout_token_claims(&self.shared, sub, sid);
        jwt::apply_overrides(&mut payload, &extra);
        mint::sign_current(&self.shared, &payload)
    }

    /// [`Emulator::mint_id_token`], signed as the provider signs (the shape's algorithm).
    pub fn mint_provider_id_token(&self, claims: Map<String, Value>) -> String {
        let user = self.shared.lock().user.clone();
        let mut payload =
            mint::id_token_claims(&self.shared, &user, None, &server::random_token(), None);
        jwt::apply_overrides(&mut payload, &claims);
        mint::sign_current(&self.shared, &payload)
    }

    /// Signs an arbitrary payload as `opts` says.
    pub fn sign_claims(&self, payload: &Map<String, Value>, opts: &SignOptions) -> String {
        self.sign_with(payload, opts)
    }

    fn sign_with(&self, payload: &Map<String, Value>, opts: &SignOptions) -> String {
        let keys = jwt::keys();
        let (current, previous) = {
            let s = self.shared.lock();
            (s.current_key, s.previous_key)
        };
        let index = match opts.key {
            KeyChoice::Current => current,
            KeyChoice::Previous => previous.unwrap_or(current),
            KeyChoice::Unpublished => (0..keys.len())
                .find(|i| *i != current && Some(*i) != previous)
                .unwrap_or((current + 1) % keys.len()),
            KeyChoice::Bundled(n) => n % keys.len(),
        };
        let key = &keys[index];
        match opts.alg {
            SignAlg::Rs256 => jwt::sign_rs256(key, payload, &opts.header),
            SignAlg::BadSignature => {
                let token = jwt::sign_rs256(key, payload, &opts.header);
                let (input, sig) = token.rsplit_once('.').unwrap_or((&token, ""));
                let mut sig = jwt::b64_decode(sig).unwrap_or_default();
                if let Some(b) = sig.last_mut() {
                    *b ^= 0x01;
                }
                format!("{input}.{}", jwt::b64(&sig))
            }
            SignAlg::None | SignAlg::Hs256 => {
                let mut header = Map::new();
                let alg = if opts.alg == SignAlg::None {
                    "none"
                } else {
                    "HS256"
                };
                header.insert("alg".into(), alg.into());
                header.insert("typ".into(), "JWT".into());
                header.insert("kid".into(), key.kid.clone().into());
                jwt::apply_overrides(&mut header, &opts.header);
                let input = jwt::signing_input(&header, payload);
                if opts.alg == SignAlg::None {
                    format!("{input}.")
                } else {
                    let mac = jwt::hmac_sha256(self.client_secret().as_bytes(), input.as_bytes());
                    format!("{input}.{}", jwt::b64(&mac))
                }
            }
        }
    }

    /// Rotates the signing key: new tokens are signed with the next bundled key; the JWKS
    /// publishes the new key and the one before it.
    pub fn rotate_signing_key(&self) {
        let mut s = self.shared.lock();
        s.previous_key = Some(s.current_key);
        s.current_key = (s.current_key + 1) % jwt::keys().len();
    }

    /// The script every backchannel authentication started from now on follows, one step per
    /// poll; once it is used up, polls answer `authorization_pending` (until the request's
    /// expiry, then `expired_token`). Default: `[Approve]`.
    pub fn script_ciba(&self, steps: Vec<CibaStep>) {
        self.shared.lock().ciba_script = steps;
    }

    /// The `kid` of the current signing key.
    pub fn current_kid(&self) -> String {
        jwt::keys()[self.shared.lock().current_key].kid.clone()
    }

    /// How many refresh-token families have been revoked (reuse detection or `/oauth/revoke`).
    pub fn revoked_families(&self) -> usize {
        self.shared.lock().revoked_families.len()
    }

    /// How many times refresh-token reuse was detected.
    pub fn reuse_detections(&self) -> usize {
        self.shared.lock().reuse_detections
    }

    /// Replaces the test user's claims for the next logins and refreshes (`sub` is kept from
    /// the previous claims when absent).
    pub fn set_user_claims(&self, claims: Map<String, Value>) {
        let mut s = self.shared.lock();
        let mut claims = claims;
        if !claims.contains_key("sub") {
            let sub = server::user_sub(&s.user);
            claims.insert("sub".into(), sub.into());
        }
        s.user = claims;
    }

    /// The test user's current claims.
    pub fn user_claims(&self) -> Map<String, Value> {
        self.shared.lock().user.clone()
    }

    /// When `Some((error, description))`, `/authorize` redirects back with that error
    /// instead of a code, until cleared with `None`.
    pub fn set_authorize_error(&self, error: Option<(String, String)>) {
        self.shared.lock().authorize_error = error;
    }

    /// Sets (or, with `None`, removes) the client's back-channel logout URI; see
    /// [`EmulatorConfig::backchannel_logout_uri`](crate::EmulatorConfig::backchannel_logout_uri).
    /// An application usually learns its own address only after the emulator started.
    pub fn set_backchannel_logout_uri(&self, uri: Option<&str>) {
        self.shared.lock().backchannel_logout_uri = uri.map(str::to_owned);
    }

    /// Every back-channel logout delivery so far, in order, with the application's answer.
    pub fn backchannel_deliveries(&self) -> Vec<BackchannelDelivery> {
        self.shared.lock().deliveries.clone()
    }

    /// Ends Auth0 session `sid`, as the Management API's "delete session" does: the session is
    /// forgotten and, when a back-channel logout URI is set, a logout token carrying `sid`
    /// (and the session's `sub`, when the emulator knows the session) is delivered before
    /// this returns. Returns the delivery (`None` without a URI).
    pub fn end_session(&self, sid: &str) -> Option<BackchannelDelivery> {
        backchannel::end_session(&self.shared, LogoutTrigger::EndSession, Some(sid), None)
    }

    /// Ends every session the emulator knows for user `sub` (logins at `/authorize` and
    /// minted grants), one logout token each, as the Management API's "delete a user's
    /// sessions" does. Returns the deliveries.
    pub fn end_user_sessions(&self, sub: &str) -> Vec<BackchannelDelivery> {
        backchannel::end_user_sessions(&self.shared, sub)
    }

    /// The `sid`s of the Auth0 sessions currently open (sorted).
    pub fn session_ids(&self) -> Vec<String> {
        let mut sids: Vec<String> = self.shared.lock().sessions.keys().cloned().collect();
        sids.sort();
        sids
    }

    /// Replaces the multi-factor policies of the refresh-token grant; see
    /// [`EmulatorConfig::mfa_policies`](crate::EmulatorConfig::mfa_policies).
    pub fn set_mfa_policies(&self, policies: Vec<MfaPolicy>) {
        self.shared.lock().mfa_policies = policies;
    }
}
