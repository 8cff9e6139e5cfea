//! The deadline map as a pure structure (instants given, no thread), then the thread itself,
//! each test on a queue of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::{Deadline, Queue, Sleeping, State};

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count::default());
    (count.clone(), Waker::from(count))
}

fn woken(count: &Count) -> usize {
    count.0.load(Ordering::SeqCst)
}

#[test]
fn expire_takes_what_is_due_and_nothing_else() {
    let t0 = Instant::now();
    let mut state = State::new();
    let (early, early_waker) = counter();
    let (tie, tie_waker) = counter();
    let (late, late_waker) = counter();
    state.insert(t0 + Duration::from_secs(1), early_waker);
    state.insert(t0 + Duration::from_secs(1), tie_waker);
    state.insert(t0 + Duration::from_secs(5), late_waker);
    assert_eq!(state.next(), Some(t0 + Duration::from_secs(1)));

    let mut due = Vec::new();
    state.expire(t0 + Duration::from_millis(999), &mut due);
    assert!(due.is_empty());
    // A deadline exactly at `now` is due.
    state.expire(t0 + Duration::from_secs(1), &mut due);
    assert_eq!(due.len(), 2);
    due.drain(..).for_each(Waker::wake);
    assert_eq!((woken(&early), woken(&tie), woken(&late)), (1, 1, 0));
    assert_eq!(state.next(), Some(t0 + Duration::from_secs(5)));
    assert_eq!(state.len(), 1);
}

#[test]
fn a_removed_deadline_never_fires() {
    let t0 = Instant::now();
    let mut state = State::new();
    let (count, waker) = counter();
    let (key, _) = state.insert(t0 + Duration::from_secs(1), waker);
    assert!(state.remove(key));
    assert!(!state.remove(key), "removed twice");
    let mut due = Vec::new();
    state.expire(t0 + Duration::from_secs(10), &mut due);
    assert!(due.is_empty());
    assert_eq!(woken(&count), 0);
    assert_eq!(state.next(), None);
}

#[test]
fn the_last_waker_set_is_the_one_woken() {
    let t0 = Instant::now();
    let mut state = State::new();
    let (first, first_waker) = counter();
    let (second, second_waker) = counter();
    let (key, _) = state.insert(t0, first_waker);
    assert!(state.set_waker(key, &second_waker));
    let mut due = Vec::new();
    state.expire(t0, &mut due);
    due.drain(..).for_each(Waker::wake);
    assert_eq!((woken(&first), woken(&second)), (0, 1));
    // Fired: there is nothing left to set.
    assert!(!state.set_waker(key, &second_waker));
}

#[test]
fn only_an_earlier_deadline_notifies_the_thread() {
    let t0 = Instant::now();
    let noop = Waker::noop();
    let mut state = State::new();
    // Busy: it looks at the map again before it waits.
    assert!(!state.insert(t0, noop.clone()).1);

    state.set_sleeping(Sleeping::Forever);
    assert!(state.insert(t0 + Duration::from_secs(9), noop.clone()).1);
    // Told once: until it waits again, it is busy.
    assert_eq!(state.sleeping(), Sleeping::Busy);
    assert!(!state.insert(t0, noop.clone()).1);

    state.set_sleeping(Sleeping::Until(t0 + Duration::from_secs(2)));
    assert!(!state.insert(t0 + Duration::from_secs(2), noop.clone()).1);
    assert!(!state.insert(t0 + Duration::from_secs(3), noop.clone()).1);
    assert_eq!(
        state.sleeping(),
        Sleeping::Until(t0 + Duration::from_secs(2))
    );
    assert!(state.insert(t0 + Duration::from_secs(1), noop.clone()).1);
    assert_eq!(state.sleeping(), Sleeping::Busy);
}

/// Polls `future` once with `waker`.
fn poll_with(future: &mut Deadline, waker: &Waker) -> Poll<()> {
    future.poll(&mut Context::from_waker(waker))
}

/// A deadline as a future, for `block_on`.
struct Sleep(Deadline);

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll(cx)
    }
}

/// Runs `future`, failing if it takes more than `bound` (a lost wakeup would hang).
fn within(bound: Duration, future: impl Future<Output = ()>) {
    let finished = smol::block_on(smol::future::or(
        async {
            future.await;
            true
        },
        async {
            async_io::Timer::after(bound).await;
            false
        },
    ));
    assert!(finished, "not done within {bound:?}");
}

#[test]
fn the_thread_fires_a_deadline_on_time() {
    let queue = Queue::start().expect("a timer thread");
    let deadline = Instant::now() + Duration::from_millis(20);
    within(
        Duration::from_secs(10),
        Sleep(Deadline::new(queue, deadline)),
    );
    assert!(Instant::now() >= deadline);
    assert_eq!(queue.armed(), 0, "fired deadlines leave the map");
}

#[test]
fn a_deadline_is_armed_when_polled_and_disarmed_when_dropped() {
    let queue = Queue::start().expect("a timer thread");
    let mut sleep = Deadline::new(queue, Instant::now() + Duration::from_secs(3600));
    assert_eq!(queue.armed(), 0, "not armed before its first poll");
    let (count, waker) = counter();
    assert!(poll_with(&mut sleep, &waker).is_pending());
    assert!(poll_with(&mut sleep, &waker).is_pending());
    assert_eq!(queue.armed(), 1, "one key however often it is polled");
    drop(sleep);
    assert_eq!(queue.armed(), 0);
    assert_eq!(woken(&count), 0);
}

#[test]
fn a_past_deadline_is_ready_without_the_thread() {
    let queue = Queue::start().expect("a timer thread");
    let mut sleep = Deadline::new(queue, Instant::now());
    assert!(poll_with(&mut sleep, Waker::noop()).is_ready());
    assert_eq!(queue.armed(), 0);
}

#[test]
fn many_sleeps_each_fire_once() {
    let queue = Queue::start().expect("a timer thread");
    let start = Instant::now();
    let sleeps = (0..50u64).map(|i| {
        // Out of order, with ties.
        let at = start + Duration::from_millis((i * 7) % 25);
        async move {
            Sleep(Deadline::new(queue, at)).await;
            assert!(Instant::now() >= at);
        }
    });
    let all = futures::future::join_all(sleeps);
    within(Duration::from_secs(10), async {
        all.await;
    });
    assert_eq!(queue.armed(), 0);
}
