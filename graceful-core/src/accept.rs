//! The accept side: the listen limit and the order to stop accepting.
//!
//! # Deadlock safety
//!
//! A task waiting in [`Acceptor::reserve`] for a free slot is woken by a closing connection
//! *and* by the stop, so a shutdown never hangs on a full server (Go's `LimitListener` does).
//!
//! # Invariants
//!
//! - Once accepting has stopped, a slot is handed out only to a serve loop that still holds
//!   its listener (`reserve_queued`), for a connection the kernel queued before the stop,
//!   and under the listen limit as any other.
//! - A serve loop holds a [`ListenerHeld`] from before the manager's first poll until it
//!   has dropped its listener; the manager tells connections to drain only once every one
//!   is dropped (or the timeout passed, or the shutdown was forced), and ends the drain only
//!   then.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::conn::Conn;
use crate::shared::{ListenerIndex, Permit, Shared, TaskOpen};

/// The accept side of a server: hands out slots under the listen limit and says when to stop
/// accepting. Cheap to clone.
///
/// An accept loop reserves a slot *before* it accepts, so that with limit N the N+1th
/// connection waits in the kernel's backlog, and stops (dropping its listener, so that new
/// connections are refused) once [`reserve`](Acceptor::reserve) returns `None` or
/// [`stopped`](Acceptor::stopped) resolves.
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer};
///
/// # futures::executor::block_on(async {
/// let graceful = Graceful::builder().listen_limit(1).build(ManualTimer::new()).unwrap();
/// let acceptor = graceful.acceptor();
///
/// let slot = acceptor.reserve().await.unwrap();
/// // let stream = listener.accept().await?;
/// let conn = slot.register();
/// assert!(acceptor.try_reserve().is_err(), "the limit is reached");
/// drop(conn);
/// assert!(acceptor.try_reserve().is_ok(), "a closed connection frees its slot");
/// # });
/// ```
#[derive(Clone)]
pub struct Acceptor {
    shared: Arc<Shared>,
}

impl Acceptor {
    pub(crate) fn new(shared: Arc<Shared>) -> Acceptor {
        Acceptor { shared }
    }

    /// Waits for a free slot under the listen limit. Returns `None` once accepting must stop:
    /// drop the listener then.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::FutureExt;
    ///
    /// # futures::executor::block_on(async {
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let acceptor = graceful.acceptor();
    /// let conn = acceptor.reserve().await.expect("serving").register();
    /// graceful.shutdown().stop();
    /// let mut run = graceful.run();
    /// assert!((&mut run).now_or_never().is_none(), "draining");
    /// assert!(acceptor.reserve().await.is_none(), "stopped: drop the listener");
    /// # drop(conn);
    /// # });
    /// ```
    pub async fn reserve(&self) -> Option<Slot> {
        loop {
            let listener = match self.try_reserve() {
                Ok(slot) => return Some(slot),
                Err(TryReserveError::Stopped) => return None,
                Err(TryReserveError::Full) => self.shared.accept_event.listen(),
            };
            // Check again: a slot may have been freed, or the stop sent, before we listened.
            match self.try_reserve() {
                Ok(slot) => return Some(slot),
                Err(TryReserveError::Stopped) => return None,
                Err(TryReserveError::Full) => listener.await,
            }
        }
    }

    /// Takes a free slot if there is one, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryReserveError::Stopped`] once accepting must stop, [`TryReserveError::Full`] when
    /// the listen limit is reached.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer, TryReserveError};
    ///
    /// let graceful = Graceful::builder().listen_limit(1).build(ManualTimer::new()).unwrap();
    /// let acceptor = graceful.acceptor();
    /// let slot = acceptor.try_reserve().unwrap();
    /// assert_eq!(acceptor.try_reserve().unwrap_err(), TryReserveError::Full);
    /// drop(slot); // unused: its room is given back
    /// assert!(acceptor.try_reserve().is_ok());
    /// graceful.shutdown().force();
    /// futures::executor::block_on(graceful.run());
    /// assert_eq!(acceptor.try_reserve().unwrap_err(), TryReserveError::Stopped);
    /// ```
    pub fn try_reserve(&self) -> Result<Slot, TryReserveError> {
        if self.is_stopped() {
            return Err(TryReserveError::Stopped);
        }
        self.reserve_under_limit()
    }

    /// A slot under the listen limit even though accepting has stopped: for a connection
    /// the kernel queued before the stop, which a serve loop still holding its listener
    /// ([`hold_listener`](Acceptor::hold_listener)) takes rather than let it be reset.
    pub(crate) fn reserve_queued(&self) -> Option<Slot> {
        self.reserve_under_limit().ok()
    }

    /// Adds a listener named `name` to the report: connections registered with
    /// [`Slot::register_from`] its index are counted on its line.
    pub(crate) fn add_listener(&self, name: String) -> ListenerIndex {
        self.shared.add_listener(name)
    }

    /// Counts a connection task as open until the guard is dropped (the task's future's
    /// last field): the manager waits for the killed ones to end before its report.
    pub(crate) fn task_open(&self) -> TaskOpen {
        TaskOpen::new(&self.shared)
    }

    /// Marks a serve loop as holding its listener until the guard is dropped: the drain
    /// neither begins nor ends before then.
    pub(crate) fn hold_listener(&self) -> ListenerHeld {
        self.shared.listeners_held.fetch_add(1, Ordering::AcqRel);
        ListenerHeld(self.shared.clone())
    }

    /// The registry, for the serve loop's tests.
    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn reserve_under_limit(&self) -> Result<Slot, TryReserveError> {
        let Some(limit) = self.shared.settings.listen_limit else {
            return Ok(Slot {
                shared: self.shared.clone(),
                permit: None,
            });
        };
        match Permit::try_take(&self.shared, limit) {
            Some(permit) => Ok(Slot {
                shared: self.shared.clone(),
                permit: Some(permit),
            }),
            None => Err(TryReserveError::Full),
        }
    }

    /// Whether accepting must stop.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let acceptor = graceful.acceptor();
    /// assert!(!acceptor.is_stopped());
    /// graceful.shutdown().stop();
    /// futures::executor::block_on(graceful.run());
    /// assert!(acceptor.is_stopped());
    /// ```
    pub fn is_stopped(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    /// Resolves once accepting must stop. Race it against the listener's `accept`.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{Graceful, ManualTimer};
    /// use futures::future::{select, Either};
    ///
    /// # futures::executor::block_on(async {
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let acceptor = graceful.acceptor();
    /// let accept = futures::future::pending::<std::io::Result<()>>(); // listener.accept()
    /// graceful.shutdown().stop();
    /// let stopped = Box::pin(acceptor.stopped());
    /// let (_, raced) = futures::join!(graceful.run(), select(Box::pin(accept), stopped));
    /// assert!(matches!(raced, Either::Right(_)), "the stop wins: drop the listener");
    /// # });
    /// ```
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                if shared.stopping.load(Ordering::Acquire) {
                    return;
                }
                let listener = shared.accept_event.listen();
                if shared.stopping.load(Ordering::Acquire) {
                    return;
                }
                listener.await;
            }
        }
    }
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("listen_limit", &self.shared.settings.listen_limit)
            .field("in_use", &self.shared.in_use.load(Ordering::Relaxed))
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// Room for one connection under the listen limit. [`register`](Slot::register) it once the
/// connection is accepted; dropping it unused gives the room back.
#[must_use = "a slot holds room under the listen limit until it is registered or dropped"]
pub struct Slot {
    shared: Arc<Shared>,
    permit: Option<Permit>,
}

impl Slot {
    /// Registers the accepted connection: it starts `New` and is tracked until the returned
    /// handle is dropped. A connection registered after the drain began is drained too.
    ///
    /// # Examples
    ///
    /// ```
    /// use graceful_core::{ConnState, Graceful, ManualTimer};
    ///
    /// let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    /// let slot = graceful.acceptor().try_reserve().unwrap();
    /// // let (stream, peer) = listener.accept().await?;
    /// let conn = slot.register();
    /// assert_eq!(conn.state(), ConnState::New);
    /// assert_eq!(graceful.shutdown().counts().new, 1);
    /// ```
    pub fn register(self) -> Conn {
        Conn::register(self.shared, self.permit, None)
    }

    /// [`register`](Slot::register), for a connection a serve loop accepted from the
    /// listener `listener`: the report counts it on that listener's line too.
    pub(crate) fn register_from(self, listener: ListenerIndex) -> Conn {
        Conn::register(self.shared, self.permit, Some(listener))
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("limited", &self.permit.is_some())
            .finish()
    }
}

/// A serve loop's listener, not dropped yet ([`Acceptor::hold_listener`]). Dropping it
/// wakes the manager, which may then begin or end the drain.
pub(crate) struct ListenerHeld(Arc<Shared>);

impl Drop for ListenerHeld {
    fn drop(&mut self) {
        self.0.listeners_held.fetch_sub(1, Ordering::AcqRel);
        self.0.manager_event.notify(usize::MAX);
    }
}

impl fmt::Debug for ListenerHeld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ListenerHeld")
    }
}

/// Why [`Acceptor::try_reserve`] gave no slot.
///
/// # Examples
///
/// ```
/// use graceful_core::{Graceful, ManualTimer, TryReserveError};
///
/// let graceful = Graceful::builder().listen_limit(1).build(ManualTimer::new()).unwrap();
/// let _slot = graceful.acceptor().try_reserve().unwrap();
/// let err = graceful.acceptor().try_reserve().unwrap_err();
/// assert_eq!(err, TryReserveError::Full);
/// assert_eq!(err.to_string(), "the listen limit is reached");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryReserveError {
    /// Accepting must stop: the server is shutting down.
    Stopped,
    /// The listen limit is reached.
    Full,
}

impl fmt::Display for TryReserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryReserveError::Stopped => "the server stopped accepting connections",
            TryReserveError::Full => "the listen limit is reached",
        })
    }
}

impl Error for TryReserveError {}
