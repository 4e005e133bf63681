//! Time, the core's shared vocabulary: every decision that depends on time takes `now` as an
//! argument (DESIGN.md §2.1); nothing here reads a clock.

/// Default clock tolerance for ID-token and logout-token time claims, in seconds (DESIGN.md
/// §5): how far the tenant's clock and ours may disagree.
pub const DEFAULT_CLOCK_TOLERANCE: u64 = 60;

/// Whether a token expiring at `expires_at` must be treated as expired at `now`: it is, when
/// it expires within `leeway` seconds.
pub fn is_expired(expires_at: u64, now: u64, leeway: u64) -> bool {
    expires_at <= now.saturating_add(leeway)
}
