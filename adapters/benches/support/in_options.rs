//! A store that keeps the session in the caller's options (like a cookie, with no encryption):
//! benchmarks measure the client, not a store.

use auth0_server::protocol::effect::LogoutTokenClaims;
use auth0_server::protocol::session::StateData;
use auth0_server::protocol::time::UnixTime;
use auth0_server::protocol::transaction::TransactionData;
use auth0_server::store::{StateStore, StoreError, TransactionStore};
use std::sync::Arc;

/// The session travels in the options: no shared state between iterations.
pub struct InOptions;

impl StateStore for InOptions {
    type Options = Option<StateData>;
    fn get(
        &self,
        o: &mut Self::Options,
        _: UnixTime,
    ) -> Result<Option<Arc<StateData>>, StoreError> {
        Ok(o.clone().map(Arc::new))
    }
    fn set(&self, s: &StateData, o: &mut Self::Options, _: UnixTime) -> Result<(), StoreError> {
        *o = Some(s.clone());
        Ok(())
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
    type Options = Option<StateData>;
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
