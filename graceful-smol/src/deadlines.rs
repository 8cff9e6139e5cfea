//! The timer thread behind `SmolTimer`: one per process, started on the
//! first sleep, waiting on a condition variable until the earliest deadline.
//!
//! Why not async-io's timers: async-io's reactor splits its timer map
//! (`BTreeMap::split_off`, which allocates a node and walks the pending half) on every
//! wakeup of the reactor while any timer is armed, and a server always has some armed
//! (graceful-core's clock tick, each connection's header read timeout). Under load the
//! reactor wakes about once per request: hello_smol paid ~365 instructions per request for
//! it (callgrind, 20,000 keep-alive requests), where raw hyper on smol, with no timer at
//! all, paid nothing. Here async-io's map stays empty. A deadline costs a lock and a map
//! insert when first polled and a removal when it fires or is dropped; the thread is
//! woken only for a deadline earlier than the one it already waits for.
//!
//! # Invariants
//!
//! - A key is in the map while its [`Deadline`] is registered and has not fired; the thread
//!   takes out the keys that are due, then wakes their wakers with the lock released (a
//!   waker may re-arm at once, or run a task inline).
//! - [`State::sleeping`] says what the thread waits for. A new earlier deadline notifies the
//!   thread once and marks it [`Sleeping::Busy`]; the thread recomputes its wait from the
//!   map after every wakeup, so an insert while it is busy needs no notification.
//! - A deadline is past only by the clock (`Instant::now() >= at`), never because the
//!   thread removed it: a poll that finds the deadline not yet past re-registers if its key
//!   is gone, so a stray wakeup cannot lose a sleep.
//! - A poisoned lock is used as it is: the state is consistent between every statement
//!   that holds it (no user code runs under it).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// A deadline's place in the map: its instant, then a sequence number (deadlines may tie).
type Key = (Instant, u64);

/// The deadlines and the thread that fires them.
pub(crate) struct Queue {
    state: Mutex<State>,
    wake: Condvar,
}

/// What the timer thread is doing, as far as a new deadline cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sleeping {
    /// Awake, or about to look at the map again: nothing to tell it.
    Busy,
    /// Waiting until this instant.
    Until(Instant),
    /// Waiting with no deadline at all.
    Forever,
}

/// The map of armed deadlines.
pub(crate) struct State {
    map: BTreeMap<Key, Waker>,
    next_id: u64,
    sleeping: Sleeping,
}

impl State {
    pub(crate) fn new() -> State {
        State {
            map: BTreeMap::new(),
            next_id: 0,
            sleeping: Sleeping::Busy,
        }
    }

    /// Arms a deadline at `at`; true if the thread must be notified (it waits for later).
    pub(crate) fn insert(&mut self, at: Instant, waker: Waker) -> (Key, bool) {
        let key = (at, self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.map.insert(key, waker);
        let notify = match self.sleeping {
            Sleeping::Busy => false,
            Sleeping::Forever => true,
            Sleeping::Until(until) => at < until,
        };
        if notify {
            self.sleeping = Sleeping::Busy;
        }
        (key, notify)
    }

    /// Disarms `key`; false if it was not armed (it fired).
    pub(crate) fn remove(&mut self, key: Key) -> bool {
        self.map.remove(&key).is_some()
    }

    /// Replaces the waker of `key`; false if it was not armed (it fired).
    pub(crate) fn set_waker(&mut self, key: Key, waker: &Waker) -> bool {
        match self.map.get_mut(&key) {
            Some(armed) => {
                armed.clone_from(waker);
                true
            }
            None => false,
        }
    }

    /// Takes out every deadline at or before `now`, their wakers into `due`.
    pub(crate) fn expire(&mut self, now: Instant, due: &mut Vec<Waker>) {
        while let Some(entry) = self.map.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.map.keys().next().map(|&(at, _)| at)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub(crate) fn sleeping(&self) -> Sleeping {
        self.sleeping
    }

    #[cfg(test)]
    pub(crate) fn set_sleeping(&mut self, sleeping: Sleeping) {
        self.sleeping = sleeping;
    }
}

impl Queue {
    /// The process's queue, its thread started on first use; `None` if the thread could
    /// not be started (then sleeps fall back to async-io's timers).
    pub(crate) fn global() -> Option<&'static Queue> {
        static GLOBAL: OnceLock<Option<&'static Queue>> = OnceLock::new();
        *GLOBAL.get_or_init(Queue::start)
    }

    /// A new queue with its own thread.
    pub(crate) fn start() -> Option<&'static Queue> {
        let queue: &'static Queue = Box::leak(Box::new(Queue {
            state: Mutex::new(State::new()),
            wake: Condvar::new(),
        }));
        match std::thread::Builder::new()
            .name("graceful-timer".into())
            .spawn(move || queue.run())
        {
            Ok(_) => Some(queue),
            Err(error) => {
                tracing::warn!(%error, "cannot start the timer thread; using async-io's timers");
                None
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The timer thread: fires what is due, then waits for the next deadline.
    fn run(&self) {
        let mut due = Vec::new();
        let mut state = self.lock();
        loop {
            state.expire(Instant::now(), &mut due);
            if !due.is_empty() {
                state.sleeping = Sleeping::Busy;
                drop(state);
                due.drain(..).for_each(Waker::wake);
                state = self.lock();
                continue;
            }
            state = match state.next() {
                Some(at) => {
                    state.sleeping = Sleeping::Until(at);
                    let wait = at.saturating_duration_since(Instant::now());
                    match self.wake.wait_timeout(state, wait) {
                        Ok((state, _)) => state,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
                }
                None => {
                    state.sleeping = Sleeping::Forever;
                    self.wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner)
                }
            };
            state.sleeping = Sleeping::Busy;
        }
    }

    fn insert(&self, at: Instant, waker: &Waker) -> Key {
        let (key, notify) = self.lock().insert(at, waker.clone());
        if notify {
            self.wake.notify_one();
        }
        key
    }

    fn remove(&self, key: Key) {
        self.lock().remove(key);
    }

    #[cfg(test)]
    pub(crate) fn armed(&self) -> usize {
        self.lock().len()
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

/// One sleep on a [`Queue`]: registered when first polled, disarmed when dropped.
pub(crate) struct Deadline {
    queue: &'static Queue,
    at: Instant,
    /// The armed key and the waker it holds, once polled.
    armed: Option<(Key, Waker)>,
}

impl Deadline {
    pub(crate) fn new(queue: &'static Queue, at: Instant) -> Deadline {
        Deadline {
            queue,
            at,
            armed: None,
        }
    }

    /// Ready once the deadline has passed; until then armed with the task's waker.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            self.disarm();
            return Poll::Ready(());
        }
        match &mut self.armed {
            Some((_, waker)) if waker.will_wake(cx.waker()) => {}
            Some((key, waker)) => {
                if !self.queue.lock().set_waker(*key, cx.waker()) {
                    *key = self.queue.insert(self.at, cx.waker());
                }
                waker.clone_from(cx.waker());
            }
            None => {
                let key = self.queue.insert(self.at, cx.waker());
                self.armed = Some((key, cx.waker().clone()));
            }
        }
        Poll::Pending
    }

    fn disarm(&mut self) {
        if let Some((key, _)) = self.armed.take() {
            self.queue.remove(key);
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("at", &self.at)
            .field("armed", &self.armed.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests;
