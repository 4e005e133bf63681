//! A store that keeps the session in the caller's options (like a cookie, with no encryption):
//! benchmarks measure the client, not a store. It shares the session as the in-process stores
//! do (a read hands out the `Arc` it holds, an update changes the session it takes out of the
//! options), so a copy the benchmark shows is the client's, not this store's. Also the
//! session the refresh benchmarks start from.

use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, RefreshGrant};
use auth0_server::protocol::effect::LogoutTokenClaims;
use auth0_server::protocol::session::TokenSet;
use auth0_server::protocol::session::{Merged, SessionUpdate, StateData, Updated};
use auth0_server::protocol::time::UnixTime;
use auth0_server::protocol::transaction::TransactionData;
use auth0_server::store::{StateStore, StoreError, TransactionStore};
use std::sync::Arc;

/// The session travels in the options: no shared state between iterations.
pub struct InOptions;

impl StateStore for InOptions {
    type Options = Option<Arc<StateData>>;
    fn get(
        &self,
        o: &mut Self::Options,
        _: UnixTime,
    ) -> Result<Option<Arc<StateData>>, StoreError> {
        Ok(o.clone())
    }
    fn set(&self, s: &StateData, o: &mut Self::Options, _: UnixTime) -> Result<(), StoreError> {
        *o = Some(Arc::new(s.clone()));
        Ok(())
    }
    fn update(
        &self,
        update: &SessionUpdate,
        o: &mut Self::Options,
        _: UnixTime,
    ) -> Result<Updated, StoreError> {
        let Some(current) = o.take() else {
            return Ok(Updated::Gone);
        };
        match update.apply(Arc::unwrap_or_clone(current)) {
            Merged::Updated(state) => {
                *o = Some(Arc::new(state));
                Ok(Updated::Saved)
            }
            Merged::OtherSession => Ok(Updated::Gone),
        }
    }
    fn delete(&self, o: &mut Self::Options, _: UnixTime) -> Result<(), StoreError> {
        *o = None;
        Ok(())
    }
    fn delete_by_logout_token(
        &self,
        _: &LogoutTokenClaims,
        _: &mut Self::Options,
        _: UnixTime,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

impl TransactionStore for InOptions {
    type Options = Option<Arc<StateData>>;
    fn get(
        &self,
        _: &str,
        _: &mut Self::Options,
        _: UnixTime,
    ) -> Result<Option<TransactionData>, StoreError> {
        Ok(None)
    }
    fn set(
        &self,
        _: &str,
        _: &TransactionData,
        _: &mut Self::Options,
        _: UnixTime,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    fn delete(&self, _: &str, _: &mut Self::Options, _: UnixTime) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A session of the emulator's user whose default-audience token has expired, with a live
/// refresh token: every `get_access_token` on it refreshes.
pub fn expired_session(emu: &Emulator) -> StateData {
    let mut user = emu.user_claims();
    user.insert("iss".into(), emu.issuer().into());
    StateData {
        user: Some(user),
        refresh_token: Some(emu.issue_refresh_token(RefreshGrant::default()).into()),
        token_sets: vec![TokenSet {
            audience: DEFAULT_AUDIENCE.into(),
            access_token: "expired".into(),
            scope: Some("openid profile email offline_access".into()),
            expires_at: 1,
            requested_scope: None,
            token_type: Default::default(),
        }],
        ..Default::default()
    }
}
