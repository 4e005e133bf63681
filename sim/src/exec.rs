//! A tiny single-threaded executor whose scheduling the simulation chooses.
//!
//! Tasks are boxed futures. A task is *ready* when it was just spawned or its waker was
//! called; the simulation picks which ready task to poll next with its seeded PRNG (so one
//! seed gives one interleaving), and may drop any task's future at any of its await points
//! (cancellation). No threads, no timers: wakers only mark tasks ready.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// A task's future.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What a task is, for the scheduler's choices and the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// An application request (may be cancelled).
    Request {
        /// The request's number in the workload.
        id: usize,
    },
    /// A flight handed to the runtime through the client's spawn hook (never cancelled: the
    /// runtime owns it).
    Detached,
}

struct Task {
    kind: TaskKind,
    future: BoxFuture,
}

/// Tasks marked ready by their wakers, and tasks spawned from inside a poll (the client's
/// spawn hook), shared with every waker and with the hook.
#[derive(Clone, Default)]
pub struct Queues {
    ready: Arc<Mutex<BTreeSet<u64>>>,
    spawned: Arc<Mutex<Vec<(TaskKind, BoxFuture)>>>,
}

impl Queues {
    /// Queues a future to become a task at the next step (what the spawn hook calls).
    pub fn spawn(&self, kind: TaskKind, future: BoxFuture) {
        self.spawned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((kind, future));
    }
}

struct TaskWaker {
    id: u64,
    ready: Arc<Mutex<BTreeSet<u64>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(self.id);
    }
}

/// The executor.
#[derive(Default)]
pub struct Executor {
    tasks: BTreeMap<u64, Task>,
    queues: Queues,
    next_id: u64,
}

impl Executor {
    /// The queues (for the spawn hook).
    pub fn queues(&self) -> Queues {
        self.queues.clone()
    }

    /// Adds a task; it is ready at once.
    pub fn spawn(&mut self, kind: TaskKind, future: BoxFuture) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.tasks.insert(id, Task { kind, future });
        self.lock_ready().insert(id);
        id
    }

    fn lock_ready(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.queues
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Turns futures spawned by the hook during the last poll into tasks.
    pub fn adopt_spawned(&mut self) {
        let spawned = std::mem::take(
            &mut *self
                .queues
                .spawned
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (kind, future) in spawned {
            self.spawn(kind, future);
        }
    }

    /// The ready tasks, in id order.
    pub fn ready(&self) -> Vec<u64> {
        let ready = self.lock_ready();
        ready
            .iter()
            .copied()
            .filter(|id| self.tasks.contains_key(id))
            .collect()
    }

    /// Live request tasks (cancellable), in id order.
    pub fn requests(&self) -> Vec<(u64, usize)> {
        self.tasks
            .iter()
            .filter_map(|(&t, task)| match task.kind {
                TaskKind::Request { id } => Some((t, id)),
                TaskKind::Detached => None,
            })
            .collect()
    }

    /// How many tasks are alive.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is alive.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The kind of a live task.
    pub fn kind(&self, id: u64) -> Option<&TaskKind> {
        self.tasks.get(&id).map(|t| &t.kind)
    }

    /// Polls one task once; returns whether it finished.
    pub fn poll(&mut self, id: u64) -> bool {
        self.lock_ready().remove(&id);
        let Some(task) = self.tasks.get_mut(&id) else {
            return true;
        };
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            ready: self.queues.ready.clone(),
        }));
        let done = task
            .future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        if done {
            self.tasks.remove(&id);
        }
        self.adopt_spawned();
        done
    }

    /// Drops a task's future where it stands (cancellation at its current await point).
    pub fn cancel(&mut self, id: u64) {
        self.lock_ready().remove(&id);
        // Dropping may run destructors that wake or spawn others.
        drop(self.tasks.remove(&id));
        self.adopt_spawned();
    }
}

/// A future that is pending once (waking itself at once), then ready: an await point where
/// the scheduler may run someone else, or cancel the task.
pub struct YieldNow(bool);

impl YieldNow {
    /// A fresh yield point.
    pub fn new() -> Self {
        YieldNow(false)
    }
}

impl Default for YieldNow {
    fn default() -> Self {
        Self::new()
    }
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
