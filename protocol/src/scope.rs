//! Scope strings: merging a call's scopes with the configured defaults (DESIGN.md §4 steps 1–2)
//! and comparing scope sets (step 3).
//!
//! A scope string is a whitespace-separated list. Merging keeps the defaults first, then the
//! call's scopes, each scope once, in first-seen order, joined by one space. Comparison treats
//! a scope string as a set: `"a b"` and `"b  a"` are the same set.

/// Merges default scopes with requested scopes: an order-preserving, de-duplicated union of
/// `defaults` then `requested`, joined by single spaces. Returns `None` when the result is
/// empty.
///
/// ```
/// use auth0_server_protocol::scope::merge_scopes;
/// assert_eq!(merge_scopes(Some("openid email"), Some("email write:admin")).as_deref(),
///            Some("openid email write:admin"));
/// assert_eq!(merge_scopes(None, Some("  ")), None);
/// ```
pub fn merge_scopes(defaults: Option<&str>, requested: Option<&str>) -> Option<String> {
    let mut out = String::new();
    let words = defaults
        .into_iter()
        .chain(requested)
        .flat_map(str::split_whitespace);
    for word in words {
        if !contains(&out, word) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether the scope string `set` contains the scope `word`.
pub fn contains(set: &str, word: &str) -> bool {
    set.split_whitespace().any(|w| w == word)
}

/// Number of distinct scopes in a scope string.
pub fn count(set: &str) -> usize {
    let mut n = 0;
    for (i, w) in set.split_whitespace().enumerate() {
        if !set.split_whitespace().take(i).any(|p| p == w) {
            n += 1;
        }
    }
    n
}

/// Whether every scope of `requested` is in `stored`.
pub fn is_superset(stored: &str, requested: &str) -> bool {
    requested.split_whitespace().all(|w| contains(stored, w))
}

/// Whether two scope strings denote the same set of scopes.
pub fn same_set(a: &str, b: &str) -> bool {
    is_superset(a, b) && is_superset(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_defaults_first_and_drops_duplicates() {
        assert_eq!(
            merge_scopes(Some("openid  profile"), Some("profile read openid")).as_deref(),
            Some("openid profile read")
        );
    }

    #[test]
    fn merge_of_nothing_is_none() {
        assert_eq!(merge_scopes(None, None), None);
        assert_eq!(merge_scopes(Some(""), Some(" \t")), None);
    }

    #[test]
    fn sets_compare_regardless_of_order_and_repeats() {
        assert!(same_set("a b c", "c b a a"));
        assert!(!same_set("a b", "a b c"));
        assert!(is_superset("a b c", "c a"));
        assert!(is_superset("a", ""));
        assert_eq!(count("a b a c"), 3);
    }
}
