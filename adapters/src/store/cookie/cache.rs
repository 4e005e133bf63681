//! The warm path of [`CookieStateStore`](super::CookieStateStore): decoded sessions keyed by
//! the exact cookie value that carried them.
//!
//! A browser sends the same session cookie on every request until the session changes, and
//! decrypting and parsing it costs tens of microseconds. The cache maps a cookie value to the
//! [`StateData`] it decoded to, so the same value is decrypted once per store instance.
//!
//! * The lookup key is the value's JWE authentication tag (its last 43 characters: an HMAC
//!   over the whole token, cheap to hash), and a hit also compares the complete value, so a
//!   value that differs anywhere — even one with a copied tag — is a miss and goes through
//!   decryption (where it fails).
//! * Only values that decrypted and parsed are inserted; the caller re-checks the session's
//!   expiry on every hit.
//! * It is bounded: at most `capacity` entries, the oldest inserted evicted first. Each entry
//!   holds one cookie value (at most 38 000 bytes) and its decoded session.
//! * A hit shares the decoded session (`Arc`): nothing is copied, and the lock is held only
//!   for the lookup and the comparison.
//! * It belongs to one store: a store built with other secrets starts empty.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use auth0_server_protocol::session::{StateData, revocation};

/// A bounded map from cookie values to decoded sessions.
pub(crate) struct SessionCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Box<[u8]>, Entry>,
    /// Keys in insertion order (may hold keys already removed from `map`).
    order: VecDeque<Box<[u8]>>,
}

struct Entry {
    value: Box<[u8]>,
    decoded: Decoded,
}

/// A cookie value's decoded session and what is derived from it once: the keys the session
/// is looked up by in the revocation list.
#[derive(Clone)]
pub(crate) struct Decoded {
    pub(crate) state: Arc<StateData>,
    pub(crate) revocation_keys: Arc<[String]>,
}

impl Decoded {
    pub(crate) fn new(state: StateData) -> Self {
        Decoded {
            revocation_keys: revocation::session_keys(&state).into(),
            state: Arc::new(state),
        }
    }
}

fn key_of(value: &[u8]) -> &[u8] {
    value.rsplit(|&b| b == b'.').next().unwrap_or(value)
}

/// [`key_of`] for a value given in pieces: what follows the last `.` (at most 64 bytes).
/// Borrowed when the last piece holds it whole (the usual case: a JWE's tag is 43
/// characters at the end of the last chunk).
fn key_of_parts<'a>(parts: &[&'a [u8]]) -> Cow<'a, [u8]> {
    if let Some(last) = parts.last() {
        if let Some(dot) = memchr::memrchr(b'.', last) {
            return Cow::Borrowed(&last[dot + 1..]);
        }
    }
    let mut tail: Vec<&[u8]> = Vec::new();
    let mut len = 0;
    for part in parts.iter().rev() {
        match memchr::memrchr(b'.', part) {
            Some(dot) => {
                tail.push(&part[dot + 1..]);
                break;
            }
            None => {
                len += part.len();
                if len > 64 {
                    break;
                }
                tail.push(part);
            }
        }
    }
    Cow::Owned(tail.iter().rev().copied().flatten().copied().collect())
}

/// Whether the pieces, concatenated, equal `value` (without concatenating them).
fn equals_parts(value: &[u8], parts: &[&[u8]]) -> bool {
    let mut rest = value;
    for part in parts {
        match rest.strip_prefix(*part) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

impl SessionCache {
    pub(crate) fn new(capacity: usize) -> Self {
        SessionCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The cache holds no invariant a panic could break: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session the value given as its chunks (in order) decoded to, if cached.
    pub(crate) fn get_parts(&self, parts: &[&[u8]]) -> Option<Decoded> {
        if self.capacity == 0 {
            return None;
        }
        let key = key_of_parts(parts);
        let inner = self.lock();
        let entry = inner.map.get(&*key)?;
        equals_parts(&entry.value, parts).then(|| entry.decoded.clone())
    }

    /// Remembers that `value` decodes to `state`.
    pub(crate) fn insert(&self, value: String, decoded: Decoded) {
        if self.capacity == 0 {
            return;
        }
        let key: Box<[u8]> = key_of(value.as_bytes()).into();
        let mut inner = self.lock();
        let entry = Entry {
            value: value.into_bytes().into_boxed_slice(),
            decoded,
        };
        if let Some(slot) = inner.map.get_mut(&key) {
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
        inner.map.insert(key.clone(), entry);
        inner.order.push_back(key);
        if inner.order.len() > 2 * self.capacity {
            let Inner { map, order } = &mut *inner;
            order.retain(|k| map.contains_key(k));
        }
    }

    /// Forgets `value`.
    pub(crate) fn remove(&self, value: &[u8]) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if inner
            .map
            .get(key_of(value))
            .is_some_and(|e| *e.value == *value)
        {
            inner.map.remove(key_of(value));
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lookup a request makes, its chunks given as text.
    fn get(c: &SessionCache, parts: &[&str]) -> Option<Decoded> {
        c.get_parts(&parts.iter().map(|p| p.as_bytes()).collect::<Vec<_>>())
    }

    fn state(sid: &str) -> StateData {
        let mut s = StateData::default();
        s.internal.sid = sid.into();
        s
    }

    #[test]
    fn hit_requires_the_exact_value() {
        let c = SessionCache::new(4);
        c.insert("h..iv.ct.TAG".into(), Decoded::new(state("a")));
        assert_eq!(get(&c, &["h..iv.ct.TAG"]).unwrap().state.internal.sid, "a");
        assert!(
            get(&c, &["h..iv.cX.TAG"]).is_none(),
            "same tag, other ciphertext"
        );
        assert!(get(&c, &["h..iv.ct.TAX"]).is_none());
    }

    #[test]
    fn hit_by_parts_requires_the_exact_value_wherever_it_is_split() {
        let c = SessionCache::new(4);
        let value = "hdr..iv.ciphertext.TAG43";
        c.insert(value.into(), Decoded::new(state("a")));
        for cut in 0..=value.len() {
            let (a, b) = value.split_at(cut);
            assert!(get(&c, &[a, b]).is_some(), "split at {cut}");
        }
        assert!(get(&c, &["hdr..iv.ciphertext.TAG4"]).is_none());
        assert!(get(&c, &["hdr..iv.ciphertext.TAG43", "x"]).is_none());
        assert!(get(&c, &["hdr..iv.cipherXext.", "TAG43"]).is_none());
        assert!(get(&c, &[]).is_none());
    }

    #[test]
    fn bounded_with_oldest_evicted_first() {
        let c = SessionCache::new(3);
        for i in 0..10 {
            c.insert(format!("x.{i}"), Decoded::new(state(&i.to_string())));
            assert!(c.len() <= 3);
        }
        assert!(get(&c, &["x.6"]).is_none());
        assert!(get(&c, &["x.7"]).is_some() && get(&c, &["x.9"]).is_some());
    }

    #[test]
    fn remove_and_reinsert_stay_bounded() {
        let c = SessionCache::new(2);
        for i in 0..100 {
            c.insert(format!("x.{i}"), Decoded::new(state("s")));
            c.remove(format!("x.{i}").as_bytes());
            c.insert(format!("x.{i}"), Decoded::new(state("s")));
        }
        assert!(c.len() <= 2);
        assert!(c.lock().order.len() <= 4);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let c = SessionCache::new(0);
        c.insert("a.b".into(), Decoded::new(state("s")));
        assert!(get(&c, &["a.b"]).is_none());
    }
}
