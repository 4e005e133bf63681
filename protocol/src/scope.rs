//! Scope strings: merging a call's scopes with the configured defaults (defaults first,
//! de-duplicated) and comparing scope sets (to pick a stored token set).
//!
//! A scope string is a whitespace-separated list. Merging keeps the defaults first, then the
//! call's scopes, each scope once, in first-seen order, joined by one space. Comparison treats
//! a scope string as a set: `"a b"` and `"b  a"` are the same set.

/// A de-duplicated list of scopes borrowed from one or more scope strings, in first-seen
/// order. Parsing once and comparing word lists keeps the cache-hit path allocation-light.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes<'a> {
    words: Vec<&'a str>,
}

impl<'a> Scopes<'a> {
    /// The scopes of the given strings, in order, each once.
    pub fn of(parts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut scopes = Scopes {
            words: Vec::with_capacity(8),
        };
        for part in parts {
            scopes.extend(part);
        }
        scopes
    }

    /// Refills with the scopes of one string (reusing the allocation).
    pub fn reset(&mut self, text: &'a str) {
        self.words.clear();
        self.extend(text);
    }

    fn extend(&mut self, text: &'a str) {
        for word in text.split_whitespace() {
            if !self.words.contains(&word) {
                self.words.push(word);
            }
        }
    }

    /// Number of distinct scopes.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether `word` is one of them.
    pub fn contains(&self, word: &str) -> bool {
        self.words.contains(&word)
    }

    /// Whether every scope of `other` is here.
    pub fn is_superset_of(&self, other: &Scopes<'_>) -> bool {
        other.words.iter().all(|w| self.words.contains(w))
    }

    /// The scopes joined by single spaces, or `None` when empty.
    pub fn joined(&self) -> Option<String> {
        (!self.words.is_empty()).then(|| self.words.join(" "))
    }
}

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
    Scopes::of(defaults.into_iter().chain(requested)).joined()
}

/// Whether the scope string `set` contains the scope `word`.
pub fn contains(set: &str, word: &str) -> bool {
    set.split_whitespace().any(|w| w == word)
}

/// Number of distinct scopes in a scope string.
pub fn count(set: &str) -> usize {
    Scopes::of([set]).len()
}

/// Whether every scope of `requested` is in `stored`.
pub fn is_superset(stored: &str, requested: &str) -> bool {
    requested.split_whitespace().all(|w| contains(stored, w))
}

/// Whether two scope strings denote the same set of scopes.
pub fn same_set(a: &str, b: &str) -> bool {
    let (a, b) = (Scopes::of([a]), Scopes::of([b]));
    a.len() == b.len() && a.is_superset_of(&b)
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
