//! Scope strings: merging a call's scopes with the configured defaults (defaults first,
//! de-duplicated) and comparing scope sets (to pick a stored token set).
//!
//! A scope string is a list separated by ASCII whitespace (RFC 6749 §3.3 separates scope
//! tokens by spaces, and a scope token is ASCII: other characters are part of a word). Merging keeps the defaults first, then the
//! call's scopes, each scope once, in first-seen order, joined by one space. Comparison treats
//! a scope string as a set: `"a b"` and `"b  a"` are the same set.
//!
//! Every function here is linear in the length of its inputs. A `scope` comes from the token
//! endpoint and is stored with the session, so a hostile or broken server could hand us
//! 100,000 words: de-duplicating those by searching a list would cost seconds per call.
//! Short lists (the usual handful of scopes) are still searched in place, which is faster
//! than hashing; past `INDEX_THRESHOLD` words a hash set answers membership.

use std::collections::HashSet;

/// Number of distinct scopes up to which membership is a search of the list; beyond it a hash
/// set is built. Searching a few words beats hashing them; searching thousands does not.
const INDEX_THRESHOLD: usize = 16;

/// A de-duplicated list of scopes borrowed from one or more scope strings, in first-seen
/// order. Parsing once and comparing word lists keeps the cache-hit path allocation-light.
///
/// Membership is O(1): a search of a short list, or a hash set once the list is long. The
/// hash set's per-process random seed only changes where words sit in memory, never an
/// answer, so every result stays a function of the input strings.
#[derive(Clone, Debug, Default)]
pub struct Scopes<'a> {
    words: Vec<&'a str>,
    /// Every word of `words`, once there are more than [`INDEX_THRESHOLD`] of them.
    index: Option<HashSet<&'a str>>,
}

impl PartialEq for Scopes<'_> {
    fn eq(&self, other: &Self) -> bool {
        // `index` is a function of `words`.
        self.words == other.words
    }
}

impl Eq for Scopes<'_> {}

impl<'a> Scopes<'a> {
    /// The scopes of the given strings, in order, each once.
    pub fn of(parts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut scopes = Scopes {
            words: Vec::with_capacity(8),
            index: None,
        };
        for part in parts {
            scopes.extend(part);
        }
        scopes
    }

    /// Refills with the scopes of one string (reusing the allocation).
    pub fn reset(&mut self, text: &'a str) {
        self.words.clear();
        if let Some(index) = &mut self.index {
            index.clear();
        }
        self.extend(text);
    }

    fn extend(&mut self, text: &'a str) {
        for word in text.split_ascii_whitespace() {
            self.insert(word);
        }
    }

    /// Adds `word` unless it is already there, keeping first-occurrence order.
    fn insert(&mut self, word: &'a str) {
        match &mut self.index {
            // A hash set with entries answers for every word; an emptied one (after `reset`)
            // is refilled once the list grows past the threshold again.
            Some(index) if !index.is_empty() => {
                if index.insert(word) {
                    self.words.push(word);
                }
            }
            _ => {
                if self.words.contains(&word) {
                    return;
                }
                self.words.push(word);
                if self.words.len() > INDEX_THRESHOLD {
                    let index = self.index.get_or_insert_with(HashSet::new);
                    index.reserve(self.words.len() * 2);
                    index.extend(self.words.iter().copied());
                }
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
        match &self.index {
            Some(index) if !index.is_empty() => index.contains(word),
            _ => self.words.contains(&word),
        }
    }

    /// Whether every scope of `other` is here.
    pub fn is_superset_of(&self, other: &Scopes<'_>) -> bool {
        other.words.iter().all(|w| self.contains(w))
    }

    /// Compares the scope string `stored` with these scopes in one pass that allocates
    /// nothing, when one pass can tell: the cache-hit path asks this of every stored token set
    /// of the audience, and the usual answer is [`QuickComparison::Same`].
    pub fn compare_quickly(&self, stored: &str) -> QuickComparison {
        if self.spelled_by(stored) {
            return QuickComparison::Same;
        }
        let tracked = self.words.len();
        if tracked > INDEX_THRESHOLD {
            return QuickComparison::Undecided;
        }
        // Bit i: the stored string has `self.words[i]`.
        let mut seen: u32 = 0;
        for word in stored.split_ascii_whitespace() {
            match self.words.iter().position(|w| *w == word) {
                Some(i) => seen |= 1 << i,
                // A scope beyond these: a superset, or not, and how large, takes a set.
                None => return QuickComparison::Undecided,
            }
        }
        if seen == (1u32 << tracked) - 1 {
            QuickComparison::Same
        } else {
            QuickComparison::Lacks
        }
    }

    /// Whether `stored` is exactly these scopes, in order, joined by single spaces (what
    /// [`Scopes::joined`] makes, and so what the SDK stores as a token set's requested
    /// scope): then it is the same set, found with one walk of the string and no lookups.
    fn spelled_by(&self, stored: &str) -> bool {
        let mut rest = stored;
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                let Some(after) = rest.strip_prefix(' ') else {
                    return false;
                };
                rest = after;
            }
            let Some(after) = rest.strip_prefix(word) else {
                return false;
            };
            rest = after;
        }
        rest.is_empty()
    }

    /// The scopes joined by single spaces, or `None` when empty.
    pub fn joined(&self) -> Option<String> {
        (!self.words.is_empty()).then(|| self.words.join(" "))
    }
}

/// What [`Scopes::compare_quickly`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuickComparison {
    /// The stored string denotes exactly these scopes.
    Same,
    /// The stored string lacks at least one of these scopes (it has no others).
    Lacks,
    /// The stored string has scopes beyond these, or these are too many to track in one
    /// pass: compare with [`Scopes::is_superset_of`].
    Undecided,
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
    set.split_ascii_whitespace().any(|w| w == word)
}

/// Number of distinct scopes in a scope string.
pub fn count(set: &str) -> usize {
    Scopes::of([set]).len()
}

/// Whether every scope of `requested` is in `stored`.
pub fn is_superset(stored: &str, requested: &str) -> bool {
    let stored = Scopes::of([stored]);
    requested
        .split_ascii_whitespace()
        .all(|w| stored.contains(w))
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

    /// The quadratic algorithm this module used before: the oracle for the linear one.
    mod oracle {
        pub fn words<'a>(parts: &[&'a str]) -> Vec<&'a str> {
            let mut words: Vec<&str> = Vec::new();
            for part in parts {
                for word in part.split_ascii_whitespace() {
                    if !words.contains(&word) {
                        words.push(word);
                    }
                }
            }
            words
        }

        pub fn merge(defaults: Option<&str>, requested: Option<&str>) -> Option<String> {
            let parts: Vec<&str> = defaults.into_iter().chain(requested).collect();
            let words = words(&parts);
            (!words.is_empty()).then(|| words.join(" "))
        }

        pub fn is_superset(stored: &str, requested: &str) -> bool {
            requested
                .split_ascii_whitespace()
                .all(|w| stored.split_ascii_whitespace().any(|s| s == w))
        }

        pub fn same_set(a: &str, b: &str) -> bool {
            let (a, b) = (words(&[a]), words(&[b]));
            a.len() == b.len() && b.iter().all(|w| a.contains(w))
        }
    }

    use proptest::prelude::*;

    /// Scope strings from a small vocabulary (so words repeat) with mixed whitespace, long
    /// enough to cross the hash-set threshold both ways.
    fn scope_string() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                prop::sample::select(vec![" ", "  ", "\t", "\n", " \t "]),
                "[a-e]{1,2}|read:[a-z]{1,2}|[a-z:]{0,6}",
            ),
            0..80,
        )
        .prop_map(|parts| {
            parts
                .into_iter()
                .map(|(sep, w)| format!("{sep}{w}"))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn merge_matches_the_quadratic_oracle(
            defaults in prop::option::of(scope_string()),
            requested in prop::option::of(scope_string()),
        ) {
            prop_assert_eq!(
                merge_scopes(defaults.as_deref(), requested.as_deref()),
                oracle::merge(defaults.as_deref(), requested.as_deref())
            );
        }

        #[test]
        fn comparisons_match_the_quadratic_oracle(a in scope_string(), b in scope_string()) {
            prop_assert_eq!(is_superset(&a, &b), oracle::is_superset(&a, &b));
            prop_assert_eq!(same_set(&a, &b), oracle::same_set(&a, &b));
            prop_assert_eq!(count(&a), oracle::words(&[&a]).len());
            let parsed = Scopes::of([a.as_str()]);
            for word in b.split_ascii_whitespace() {
                prop_assert_eq!(parsed.contains(word), oracle::words(&[&a]).contains(&word));
            }
        }

        #[test]
        fn quick_comparison_agrees_with_the_oracle(
            requested in scope_string(),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
            extra in prop::option::of(scope_string()),
        ) {
            // Stored: words drawn from the requested ones (repeats and gaps included), then
            // perhaps others.
            let wanted = oracle::words(&[&requested]);
            let mut stored: Vec<&str> = if wanted.is_empty() {
                Vec::new()
            } else {
                picks.iter().map(|i| wanted[i.index(wanted.len())]).collect()
            };
            stored.extend(extra.iter().flat_map(|e| e.split_ascii_whitespace()));
            let stored = stored.join(" ");
            let only_wanted = stored.split_ascii_whitespace().all(|w| wanted.contains(&w));
            let scopes = Scopes::of([requested.as_str()]);
            // The SDK's own spelling of a scope set is always the same set.
            let spelled = scopes.joined().unwrap_or_default();
            prop_assert_eq!(scopes.compare_quickly(&spelled), QuickComparison::Same);
            match scopes.compare_quickly(&stored) {
                QuickComparison::Same => prop_assert!(oracle::same_set(&stored, &requested)),
                QuickComparison::Lacks => {
                    prop_assert!(only_wanted);
                    prop_assert!(!oracle::is_superset(&stored, &requested));
                }
                QuickComparison::Undecided => {
                    prop_assert!(wanted.len() > INDEX_THRESHOLD || !only_wanted);
                }
            }
        }

        #[test]
        fn reset_forgets_the_previous_words(a in scope_string(), b in scope_string()) {
            let mut scopes = Scopes::of([a.as_str()]);
            scopes.reset(&b);
            prop_assert_eq!(&scopes, &Scopes::of([b.as_str()]));
            prop_assert_eq!(scopes.joined(), oracle::merge(Some(&b), None));
            for word in a.split_ascii_whitespace() {
                prop_assert_eq!(scopes.contains(word), oracle::words(&[&b]).contains(&word));
            }
        }
    }

    #[test]
    fn a_hundred_thousand_distinct_words_are_handled_in_linear_time() {
        let text: String = (0..100_000).map(|i| format!("w{i} ")).collect();
        let doubled = format!("{text}{text}");
        assert_eq!(count(&doubled), 100_000);
        assert!(same_set(&text, &doubled));
        assert!(is_superset(&text, &doubled));
    }
}
