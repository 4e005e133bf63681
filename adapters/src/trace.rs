//! Tracing (feature `tracing`, on by default): what the SDK tells an operator.
//!
//! One span per SDK operation (`auth0.operation`: its name, the audience when it has one, and
//! its outcome), child spans for HTTP requests (`auth0.http`: method, endpoint path, status,
//! duration, whether the answer was shared) and store calls (`auth0.store`: operation,
//! duration), and events for single-flight waits, remembered answers, rotations followed,
//! back-channel logouts and errors. No field ever carries a token, secret, authorization code,
//! cookie value or URL query: endpoints are logged as their path, errors by their code and
//! their `Display` text, which is safe by construction.
//!
//! Without the feature these macros expand to nothing and `tracing` is not compiled.

/// An event (`tracing::event!`), or nothing without the feature.
#[cfg(feature = "tracing")]
macro_rules! trace_event {
    ($($t:tt)*) => { ::tracing::event!($($t)*) };
}

/// An event (`tracing::event!`), or nothing without the feature.
#[cfg(not(feature = "tracing"))]
macro_rules! trace_event {
    ($($t:tt)*) => {};
}

pub(crate) use trace_event;

/// Runs `future` inside a span (`tracing::Instrument`), or as is without the feature.
#[cfg(feature = "tracing")]
macro_rules! in_span {
    ($future:expr, $($span:tt)*) => {
        ::tracing::Instrument::instrument($future, ::tracing::info_span!($($span)*))
    };
}

/// Runs `future` inside a span (`tracing::Instrument`), or as is without the feature.
#[cfg(not(feature = "tracing"))]
macro_rules! in_span {
    ($future:expr, $($span:tt)*) => {
        $future
    };
}

pub(crate) use in_span;

/// Records a value on the current span (`Span::current().record`), or nothing without the
/// feature.
#[cfg(feature = "tracing")]
macro_rules! record {
    ($field:literal, $value:expr) => {
        ::tracing::Span::current().record($field, $value)
    };
}

/// Records a value on the current span, or nothing without the feature.
#[cfg(not(feature = "tracing"))]
macro_rules! record {
    ($field:literal, $value:expr) => {};
}

pub(crate) use record;
