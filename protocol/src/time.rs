//! Time, the core's shared vocabulary. Every decision that depends on time takes `now` as an
//! argument: a [`UnixTime`], read from a clock by the driver, never here.
//! Lengths of time (leeway, lifetimes, tolerances, TTLs) are [`Duration`]s.
//!
//! ```
//! use auth0_server_protocol::time::{UnixTime, is_expired};
//! use std::time::Duration;
//! let now = UnixTime::from_secs(1_700_000_000);
//! let expires_at = now + Duration::from_secs(20);
//! assert!(is_expired(expires_at, now, Duration::from_secs(30)), "within the leeway");
//! assert!(!is_expired(expires_at, now, Duration::ZERO));
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time: whole seconds since the Unix epoch (1970-01-01T00:00:00Z), the unit of
/// the JWT time claims and of the session's stored times.
///
/// Arithmetic with a [`Duration`] saturates (sub-second parts are dropped): a time never wraps
/// around, whatever a token or a clock claims. Serialized as the bare number of seconds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The Unix epoch, second 0.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// The time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> UnixTime {
        UnixTime(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// `self + duration`, or the largest time when that overflows.
    pub const fn saturating_add(self, duration: Duration) -> UnixTime {
        UnixTime(self.0.saturating_add(duration.as_secs()))
    }

    /// `self - duration`, or the epoch when that would precede it.
    pub const fn saturating_sub(self, duration: Duration) -> UnixTime {
        UnixTime(self.0.saturating_sub(duration.as_secs()))
    }

    /// How long after `earlier` this time is; zero when `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: UnixTime) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }

    /// How long after `earlier` this time is; `None` when `earlier` is later (a clock that
    /// went backwards).
    pub const fn checked_duration_since(self, earlier: UnixTime) -> Option<Duration> {
        match self.0.checked_sub(earlier.0) {
            Some(secs) => Some(Duration::from_secs(secs)),
            None => None,
        }
    }
}

impl From<u64> for UnixTime {
    /// Unix seconds.
    fn from(secs: u64) -> Self {
        UnixTime(secs)
    }
}

impl Add<Duration> for UnixTime {
    type Output = UnixTime;
    /// Saturating: see [`UnixTime::saturating_add`].
    fn add(self, duration: Duration) -> UnixTime {
        self.saturating_add(duration)
    }
}

impl Sub<Duration> for UnixTime {
    type Output = UnixTime;
    /// Saturating: see [`UnixTime::saturating_sub`].
    fn sub(self, duration: Duration) -> UnixTime {
        self.saturating_sub(duration)
    }
}

impl fmt::Display for UnixTime {
    /// The number of seconds since the epoch.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Default clock tolerance for ID-token and logout-token time claims: how far
/// the tenant's clock and ours may disagree.
pub const DEFAULT_CLOCK_TOLERANCE: Duration = Duration::from_secs(60);

/// Whether a token expiring at `expires_at` must be treated as expired at `now`: it is, when
/// it expires within `leeway`.
pub fn is_expired(expires_at: UnixTime, now: UnixTime, leeway: Duration) -> bool {
    expires_at <= now.saturating_add(leeway)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let end = UnixTime::from_secs(u64::MAX);
        assert_eq!(end + Duration::from_secs(1), end);
        assert_eq!(UnixTime::EPOCH - Duration::from_secs(1), UnixTime::EPOCH);
        let t = UnixTime::from_secs(100);
        assert_eq!(
            t.saturating_duration_since(UnixTime::from_secs(160)),
            Duration::ZERO
        );
        assert_eq!(t.checked_duration_since(UnixTime::from_secs(160)), None);
        assert_eq!(
            t.checked_duration_since(UnixTime::from_secs(40)),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn serializes_as_bare_seconds() {
        let t = UnixTime::from_secs(1_700_000_000);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000");
        assert_eq!(serde_json::from_str::<UnixTime>("1700000000").unwrap(), t);
    }
}
