//! The warm path of the Redis session stores: the session each id last decoded to, with the
//! exact encrypted value it came from.
//!
//! A read still fetches the session's value from Redis (so a write or delete by any instance
//! is seen at once), but when that value is byte for byte the one this store decoded before,
//! the decoded session is reused instead of decrypting and parsing it again (tens of
//! microseconds for a realistic session). The caller re-checks the session's expiry on every
//! hit. At most `capacity` entries, the oldest inserted evicted first; `0` caches nothing.

use auth0_server_protocol::session::StateData;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// A bounded map from session ids to the value and session they last decoded to.
pub(crate) struct DecodedSessions {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Box<str>, Arc<Entry>>,
    /// Ids in insertion order (may hold ids already replaced or removed).
    order: VecDeque<Box<str>>,
}

/// The exact encrypted value a session id last held, and the session it decoded to.
struct Entry {
    value: Box<str>,
    state: Arc<StateData>,
}

impl DecodedSessions {
    pub(crate) fn new(capacity: usize) -> Self {
        DecodedSessions {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No invariant a panic could break: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session `value` decoded to under `id`, if this exact value was decoded before.
    pub(crate) fn get(&self, id: &str, value: &str) -> Option<Arc<StateData>> {
        if self.capacity == 0 {
            return None;
        }
        let entry = self.lock().map.get(id).cloned()?;
        (*entry.value == *value).then(|| Arc::clone(&entry.state))
    }

    /// Remembers that `value`, stored under `id`, decodes to `state`.
    pub(crate) fn insert(&self, id: &str, value: String, state: Arc<StateData>) {
        if self.capacity == 0 {
            return;
        }
        let entry = Arc::new(Entry {
            value: value.into_boxed_str(),
            state,
        });
        let mut inner = self.lock();
        if let Some(slot) = inner.map.get_mut(id) {
            *slot = entry;
            return;
        }
        while inner.map.len() >= self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.map.remove(&old);
                }
                None => break,
            }
        }
        let id: Box<str> = id.into();
        inner.map.insert(id.clone(), entry);
        inner.order.push_back(id);
        if inner.order.len() > 2 * self.capacity {
            let Inner { map, order } = &mut *inner;
            order.retain(|k| map.contains_key(k));
        }
    }

    /// Forgets session `id`.
    pub(crate) fn remove(&self, id: &str) {
        if self.capacity > 0 {
            self.lock().map.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(sid: &str) -> StateData {
        let mut s = StateData::default();
        s.internal.sid = sid.into();
        s
    }

    #[test]
    fn a_hit_needs_the_same_id_and_the_exact_value() {
        let c = DecodedSessions::new(4);
        c.insert("id1", "h..iv.ct.tag".into(), state("a").into());
        assert_eq!(c.get("id1", "h..iv.ct.tag").unwrap().internal.sid, "a");
        assert!(c.get("id1", "h..iv.cX.tag").is_none(), "another value");
        assert!(c.get("id2", "h..iv.ct.tag").is_none(), "another id");
        c.insert("id1", "v2".into(), state("b").into());
        assert!(c.get("id1", "h..iv.ct.tag").is_none(), "replaced");
        c.remove("id1");
        assert!(c.get("id1", "v2").is_none(), "removed");
    }

    #[test]
    fn bounded_with_the_oldest_evicted_first() {
        let c = DecodedSessions::new(3);
        for i in 0..100 {
            c.insert(&format!("id{i}"), format!("v{i}"), state("s").into());
            c.remove(&format!("id{}", i / 2));
            assert!(c.lock().map.len() <= 3);
            assert!(c.lock().order.len() <= 6);
        }
        assert!(c.get("id99", "v99").is_some());
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let c = DecodedSessions::new(0);
        c.insert("id", "v".into(), state("s").into());
        assert!(c.get("id", "v").is_none());
    }
}
