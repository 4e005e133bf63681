//! Session-integrity scenarios, written once over any server-side state store (memory,
//! Redis) and run through the blocking client against the emulator (rotation with reuse
//! detection on). What happens "while the refresh is in flight" is injected with
//! [`Failure::Before`]: the emulator runs it before answering the token request, so the
//! interleaving is exact, with no sleeps.

#![allow(dead_code)]

use auth0_emulator::{ANALYTICS_AUDIENCE, DEFAULT_AUDIENCE, Emulator, Failure, Hook};
use auth0_server::AccessTokenRequest;
use auth0_server::blocking::ServerClient;
use auth0_server::clock::Clock;
use auth0_server::protocol::session::{SessionUpdate, StateData, TokenSet, Updated};
use auth0_server::protocol::time::UnixTime;
use auth0_server::store::{CookieOptions, StateStore, StoreError, TransactionStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The options of a request carrying the session-id cookie `name=id`.
pub fn with_cookie(name: &str, id: &str) -> CookieOptions {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::COOKIE,
        format!("{name}={id}").parse().expect("cookie header"),
    );
    CookieOptions::from_request_headers(&h)
}

/// Stores `state` as a new session in `store`; returns the request options carrying its
/// cookie.
pub fn new_session<S: StateStore<Options = CookieOptions>>(
    store: &S,
    cookie: &str,
    state: &StateData,
) -> CookieOptions {
    let mut o = CookieOptions::new();
    store
        .set(state, &mut o, auth0_server::clock::Clock::system().now())
        .expect("session stored");
    let id = o.cookie(cookie).expect("session cookie set").to_owned();
    with_cookie(cookie, &id)
}

/// I2: the user logs out while their refresh is in flight. The refresh's save must not log
/// them back in: the call fails with `missing_session` and the store holds no session.
pub fn logout_during_refresh_stays_logged_out<S, T>(
    emu: &Emulator,
    client: Arc<ServerClient<S, T>>,
    cookie: &str,
) where
    S: StateStore<Options = CookieOptions> + 'static,
    T: TransactionStore<Options = CookieOptions> + 'static,
{
    let session = crate::adapter_support::expired_session(emu, DEFAULT_AUDIENCE);
    let opts = new_session(client.state_store(), cookie, &session);
    let (c, o) = (client.clone(), opts.clone());
    emu.fail_next(
        "/oauth/token",
        Failure::Before(Hook::new(move || {
            let mut o = o.clone();
            c.state_store()
                .delete(&mut o, auth0_server::clock::Clock::system().now())
                .expect("logout deletes");
        })),
        1,
    );
    let mut o = opts.clone();
    let e = client.get_access_token(&mut o).unwrap_err();
    assert_eq!(e.code(), "missing_session", "{e}");
    let mut o = opts.clone();
    assert!(
        client.get_session(&mut o).unwrap().is_none(),
        "the logged-out session came back"
    );
    assert_eq!(emu.token_requests().len(), 1);
    // The refresh token that refresh obtained belongs to no session: it was revoked.
    assert_eq!(
        emu.revoked_families(),
        1,
        "the orphaned refresh token is still live"
    );
}

/// I3: another request saves a token set for another audience while this refresh is in
/// flight: both token sets end up stored.
pub fn a_concurrent_save_is_not_overwritten<S, T>(
    emu: &Emulator,
    client: Arc<ServerClient<S, T>>,
    cookie: &str,
) where
    S: StateStore<Options = CookieOptions> + 'static,
    T: TransactionStore<Options = CookieOptions> + 'static,
{
    let session = crate::adapter_support::expired_session(emu, DEFAULT_AUDIENCE);
    let opts = new_session(client.state_store(), cookie, &session);
    let (c, o) = (client.clone(), opts.clone());
    emu.fail_next(
        "/oauth/token",
        Failure::Before(Hook::new(move || {
            // Another request's save, as the store sees it: the session plus its token set.
            let mut o = o.clone();
            let mut other = StateData::clone(
                &c.state_store()
                    .get(&mut o, auth0_server::clock::Clock::system().now())
                    .unwrap()
                    .expect("session"),
            );
            other.token_sets.push(TokenSet {
                audience: ANALYTICS_AUDIENCE.into(),
                access_token: "analytics-token".into(),
                scope: None,
                expires_at: crate::adapter_support::now() + 600,
                requested_scope: None,
                token_type: Default::default(),
            });
            c.state_store()
                .set(&other, &mut o, auth0_server::clock::Clock::system().now())
                .unwrap();
        })),
        1,
    );
    let mut o = opts.clone();
    let token = client.get_access_token(&mut o).expect("refreshed");
    let mut o = opts.clone();
    let stored = client.get_session(&mut o).unwrap().expect("session");
    let has = |aud: &str, at: &str| {
        stored
            .token_sets
            .iter()
            .any(|s| s.audience == aud && s.access_token.expose() == at)
    };
    assert!(has(DEFAULT_AUDIENCE, token.access_token.expose()));
    assert!(
        has(ANALYTICS_AUDIENCE, "analytics-token"),
        "the other request's token set was overwritten"
    );
}

/// A state store that fails update-only saves while `failing` is set.
pub struct FailingUpdates<S> {
    /// The store.
    pub inner: S,
    /// Whether updates fail.
    pub failing: Arc<AtomicBool>,
}

impl<S: StateStore<Options = CookieOptions>> StateStore for FailingUpdates<S> {
    type Options = CookieOptions;
    fn get(
        &self,
        o: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<Option<Arc<StateData>>, StoreError> {
        self.inner.get(o, now)
    }
    fn set(&self, s: &StateData, o: &mut CookieOptions, now: UnixTime) -> Result<(), StoreError> {
        self.inner.set(s, o, now)
    }
    fn update(
        &self,
        u: &SessionUpdate,
        o: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<Updated, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::new("injected: the store is unreachable"));
        }
        self.inner.update(u, o, now)
    }
    fn delete(&self, o: &mut CookieOptions, now: UnixTime) -> Result<(), StoreError> {
        self.inner.delete(o, now)
    }
    fn delete_by_logout_token(
        &self,
        c: &auth0_server::protocol::effect::LogoutTokenClaims,
        o: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.inner.delete_by_logout_token(c, o, now)
    }
}

/// A clock the test moves.
pub fn movable_clock() -> (Clock, Arc<AtomicU64>) {
    let t = Arc::new(AtomicU64::new(crate::adapter_support::now()));
    let read = t.clone();
    (Clock::from_fn(move || read.load(Ordering::SeqCst)), t)
}

/// I4: the save after a rotation fails. The call says so (`session_not_saved`); the next
/// call — long after the rotation grace window, with the session still holding the replaced
/// refresh token — spends the rotated one: no reuse is detected, the user stays logged in.
pub fn a_failed_save_never_loses_the_rotated_token<S, T>(
    emu: &Emulator,
    client: &ServerClient<FailingUpdates<S>, T>,
    cookie: &str,
    clock: &AtomicU64,
) where
    S: StateStore<Options = CookieOptions>,
    T: TransactionStore<Options = CookieOptions>,
{
    let session = crate::adapter_support::expired_session(emu, DEFAULT_AUDIENCE);
    let opts = new_session(&client.state_store().inner, cookie, &session);
    client.state_store().failing.store(true, Ordering::SeqCst);
    let mut o = opts.clone();
    let e = client.get_access_token(&mut o).unwrap_err();
    assert_eq!(e.code(), "session_not_saved", "{e}");
    assert!(e.to_string().contains("kept"), "{e}");
    client.state_store().failing.store(false, Ordering::SeqCst);
    // Ten minutes later: far past the grace window.
    clock.fetch_add(600, Ordering::SeqCst);
    let mut o = opts.clone();
    let token = client
        .get_access_token_with(AccessTokenRequest::default(), &mut o)
        .expect("the rotated refresh token was spent");
    assert_eq!(
        emu.reuse_detections(),
        0,
        "a replaced refresh token was sent"
    );
    assert_eq!(emu.revoked_families(), 0);
    assert_eq!(emu.token_requests().len(), 2);
    let mut o = opts.clone();
    let stored = client.get_session(&mut o).unwrap().expect("session");
    let rt = stored.refresh_token.expect("refresh token");
    assert!(
        emu.refresh_token_is_live(rt.expose()),
        "the stored refresh token is dead"
    );
    assert!(
        stored
            .token_sets
            .iter()
            .any(|s| s.access_token == token.access_token)
    );
}
