//! Bounded waits on conditions, turns for heavy scenarios, and the record of measurements.
//!
//! A test never sleeps to let things settle: it waits until what it needs holds, and fails
//! with the name of what it waited for once the bound is over. Bounds are generous (the
//! suites run on small loaded machines): they catch a hang, not a slowness.

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(5);

/// Polls `found` until it gives a value, and returns it; panics after `bound`, naming
/// `what` it waited for. `found` is looked at once more when the bound is over, so a
/// condition that holds by then passes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use graceful_harness::wait_for;
///
/// let mut tries = 0;
/// let answer = wait_for("the third try", Duration::from_secs(5), || {
///     tries += 1;
///     (tries == 3).then_some(42)
/// });
/// assert_eq!(answer, 42);
/// ```
#[track_caller]
pub fn wait_for<T>(what: &str, bound: Duration, mut found: impl FnMut() -> Option<T>) -> T {
    let mut value = None;
    let held = holds_within(bound, || {
        value = found();
        value.is_some()
    });
    match value {
        Some(value) if held => value,
        _ => panic!("timed out after {bound:?} waiting for {what}"),
    }
}

/// Polls `done` until it holds or `bound` is over; whether it held. The building block of
/// [`wait_for`], for a test that asserts something else when the condition never comes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use graceful_harness::wait::holds_within;
///
/// assert!(!holds_within(Duration::from_millis(10), || false));
/// ```
pub fn holds_within(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        let waited = start.elapsed();
        if waited >= bound {
            return false;
        }
        thread::sleep(POLL.min(bound - waited));
    }
}

/// Polls `done` until it holds; panics after `bound`, naming `what` it waited for.
/// Returns how long it took.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use graceful_harness::wait_until;
///
/// let done = Arc::new(AtomicBool::new(false));
/// let setter = done.clone();
/// std::thread::spawn(move || setter.store(true, Ordering::SeqCst));
/// wait_until("the thread to say done", Duration::from_secs(5), || done.load(Ordering::SeqCst));
/// ```
#[track_caller]
pub fn wait_until(what: &str, bound: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    wait_for(what, bound, || done().then_some(()));
    start.elapsed()
}

/// Takes this process's turn for a heavy scenario (many threads, descriptors or a load
/// generator), so that heavy scenarios do not skew the timings of one another; the turn
/// ends when the guard drops. A scenario that panicked does not block the others.
///
/// # Examples
///
/// ```
/// let _turn = graceful_harness::one_at_a_time();
/// // ... a scenario under load ...
/// ```
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Prints a measurement for the record: a `measured:` line on stderr, shown with
/// `--nocapture`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// graceful_harness::measured("hello_tokio", "1", "exit after the signal in", Duration::from_millis(12));
/// ```
pub fn measured(example: &str, scenario: &str, what: &str, value: Duration) {
    let ms = value.as_secs_f64() * 1e3;
    eprintln!("measured: {example} {scenario}: {what} {ms:.1} ms");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_that_never_holds_names_what_it_waited_for() {
        let failure = std::panic::catch_unwind(|| {
            wait_until("the impossible", Duration::from_millis(20), || false)
        })
        .expect_err("the wait fails");
        let message = failure
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(message.contains("waiting for the impossible"), "{message}");
    }

    #[test]
    fn the_condition_is_looked_at_once_more_at_the_bound() {
        let start = Instant::now();
        let bound = Duration::from_millis(30);
        wait_until("the bound to pass", bound, || start.elapsed() >= bound);
    }
}
