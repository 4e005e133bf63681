//! Hostile scope strings: the cost of scope handling on a `scope` of 100,000 words, the kind a
//! broken or hostile token endpoint could send (issue 17). Every operation must stay linear.
//!
//! Run with `cargo bench -p auth0-server-protocol --bench scope`.
//!
//! - `merge_hostile`: merging configured defaults with a 100,000-word scope (half repeats).
//! - `same_set_hostile`: comparing the stored scope of a token set with the requested one.
//! - `count_hostile`: counting the distinct scopes.

use auth0_server_protocol::scope::{count, merge_scopes, same_set};
use divan::{Bencher, black_box};
use std::sync::LazyLock;

/// 100,000 words: 50,000 distinct ones, each written twice.
static HOSTILE: LazyLock<String> = LazyLock::new(|| {
    let half: String = (0..50_000).map(|i| format!("scope:{i} ")).collect();
    format!("{half}{half}")
});

fn main() {
    divan::main();
}

#[divan::bench]
fn merge_hostile(bencher: Bencher) {
    let hostile = HOSTILE.as_str();
    bencher.bench(|| merge_scopes(black_box(Some("openid profile")), black_box(Some(hostile))));
}

#[divan::bench]
fn same_set_hostile(bencher: Bencher) {
    let hostile = HOSTILE.as_str();
    bencher.bench(|| same_set(black_box(hostile), black_box(hostile)));
}

#[divan::bench]
fn count_hostile(bencher: Bencher) {
    let hostile = HOSTILE.as_str();
    bencher.bench(|| count(black_box(hostile)));
}
