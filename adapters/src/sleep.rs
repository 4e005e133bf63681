//! [`Sleeper`]: how a client waits when the core asks it to
//! ([`Effect::Wait`](auth0_server_protocol::effect::Effect::Wait), between CIBA polls).
//!
//! The core decides how long; the client only waits. The blocking client sleeps the thread
//! ([`Sleeper::thread`]); the async client's default ([`Sleeper::timer_thread`]) needs no
//! runtime: a short-lived thread sleeps and wakes the task. Give the async client the
//! runtime's own timer with `ServerClientBuilder::sleep_with` (e.g. `tokio::time::sleep`), and
//! tests a sleeper that records the durations and returns at once, so they never really sleep.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The future a [`Sleeper`] returns: done once the duration has passed.
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How a client waits. Cheap to clone.
#[derive(Clone)]
pub struct Sleeper(Arc<dyn Fn(Duration) -> SleepFuture + Send + Sync>);

impl std::fmt::Debug for Sleeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sleeper(..)")
    }
}

impl Sleeper {
    /// A sleeper from a function returning the future that waits.
    pub fn from_fn(sleep: impl Fn(Duration) -> SleepFuture + Send + Sync + 'static) -> Self {
        Sleeper(Arc::new(sleep))
    }

    /// A sleeper from a blocking function (it runs when the wait is polled, and the wait is
    /// then over): `std::thread::sleep`, or a test's recorder.
    pub fn blocking(sleep: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        let sleep = Arc::new(sleep);
        Sleeper::from_fn(move |d| {
            let sleep = sleep.clone();
            Box::pin(async move { sleep(d) })
        })
    }

    /// Sleeps the calling thread: the blocking client's default.
    pub fn thread() -> Self {
        Sleeper::blocking(std::thread::sleep)
    }

    /// A runtime-agnostic timer: a thread sleeps and then wakes the waiting task (the async
    /// client's default; waits are rare and seconds long, so a thread per wait is cheap).
    pub fn timer_thread() -> Self {
        Sleeper::from_fn(|d| {
            Box::pin(TimerThread {
                duration: d,
                state: None,
            })
        })
    }

    /// Waits `duration`.
    pub fn sleep(&self, duration: Duration) -> SleepFuture {
        (self.0)(duration)
    }
}

/// What the timer thread and the waiting task share.
#[derive(Default)]
struct TimerState {
    done: bool,
    waker: Option<Waker>,
}

/// The future of [`Sleeper::timer_thread`]: the thread starts on the first poll.
struct TimerThread {
    duration: Duration,
    state: Option<Arc<Mutex<TimerState>>>,
}

impl Future for TimerThread {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(state) = &self.state {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.done {
                return Poll::Ready(());
            }
            state.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let state = Arc::new(Mutex::new(TimerState {
            done: false,
            waker: Some(cx.waker().clone()),
        }));
        let shared = state.clone();
        let duration = self.duration;
        let spawned = std::thread::Builder::new()
            .name("auth0-sleeper".into())
            .spawn(move || {
                std::thread::sleep(duration);
                let waker = {
                    let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    state.done = true;
                    state.waker.take()
                };
                if let Some(waker) = waker {
                    waker.wake();
                }
            });
        if spawned.is_err() {
            // Out of threads: wait here rather than poll early.
            std::thread::sleep(duration);
            return Poll::Ready(());
        }
        self.state = Some(state);
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_thread_wakes_the_task() {
        // Parked until the timer thread wakes it: without the wake-up this never returns.
        crate::driver::block_on(Sleeper::timer_thread().sleep(Duration::from_millis(1)));
    }

    #[test]
    fn a_blocking_sleeper_runs_its_function() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let sleeper = Sleeper::blocking(move |d| s.lock().unwrap().push(d));
        crate::driver::block_on(sleeper.sleep(Duration::from_secs(5)));
        assert_eq!(*seen.lock().unwrap(), [Duration::from_secs(5)]);
    }
}
