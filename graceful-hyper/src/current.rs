//! The connection whose request is being handled on this thread: what `Watch::current`
//! reads.
//!
//! A thread-local slot holds a reference to the current connection's [`ConnShared`] while
//! graceful-hyper runs code of the application for it ([`Current::enter`], undone when the
//! `Current` is dropped or [left](Current::leave)). `Watch::current` makes its `Watch` from
//! the reference in the slot, so only a handler that asks pays for one.
//!
//! - **The connection's task** (HTTP/1 and HTTP/2 alike) enters for every poll of hyper's
//!   connection: hyper calls the service inside that poll, and for HTTP/1 it polls the
//!   response future and the response body there too. The task lends its own reference for
//!   the poll and takes it back after: a move of one word each way, no reference count
//!   touched. Per poll of the connection, not per request: the cheapest place, since one
//!   poll may serve a request whole.
//! - **An HTTP/2 stream** runs in a task of its own, so its response future and body enter
//!   around each of their polls, with a clone of the reference their unit of work holds.
//!
//! The slot is a `ManuallyDrop`, so the thread-local needs no destructor: each access is a
//! plain load and store, with no check of whether the thread is ending.
//!
//! # Invariants
//!
//! - The slot holds a reference only while a `Current` lives: whatever was there before is
//!   put back when it is left or dropped, on return or unwind. Calls nest (a server run
//!   inside a handler) and a panicking handler leaves nothing behind.
//! - A reference entered by value is given back by [`Current::leave`], or dropped with the
//!   `Current` (on unwind, or for a clone): it never stays in the slot.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use crate::shared::{ConnShared, WorkGuard};

thread_local! {
    static CURRENT: Cell<ManuallyDrop<Option<Arc<ConnShared>>>> =
        const { Cell::new(ManuallyDrop::new(None)) };
}

/// `shared` is the current connection while this lives.
pub(crate) struct Current {
    previous: ManuallyDrop<Option<Arc<ConnShared>>>,
}

impl Current {
    #[inline]
    pub(crate) fn enter(shared: Option<Arc<ConnShared>>) -> Current {
        let previous = CURRENT.with(|slot| slot.replace(ManuallyDrop::new(shared)));
        Current { previous }
    }

    /// Puts back what was current before, and returns the reference that was entered.
    #[inline]
    pub(crate) fn leave(mut self) -> Option<Arc<ConnShared>> {
        let previous = std::mem::replace(&mut self.previous, ManuallyDrop::new(None));
        std::mem::forget(self);
        ManuallyDrop::into_inner(CURRENT.with(|slot| slot.replace(previous)))
    }
}

impl Drop for Current {
    /// On unwind, or for a clone: puts back what was current before, and drops the reference
    /// that was entered.
    fn drop(&mut self) {
        let previous = std::mem::replace(&mut self.previous, ManuallyDrop::new(None));
        drop(ManuallyDrop::into_inner(
            CURRENT.with(|slot| slot.replace(previous)),
        ));
    }
}

/// For a response future or body polling the application's code: an HTTP/2 stream runs in
/// a task of its own, so it enters a clone of its unit of work's reference. HTTP/1 polls
/// them inside the connection's poll, which made the connection current already: nothing
/// to do (and nothing either once the unit of work has ended).
#[inline]
pub(crate) fn enter_stream(guard: Option<&WorkGuard>) -> Option<Current> {
    guard
        .filter(|guard| !guard.is_http1())
        .map(|guard| Current::enter(Some(guard.conn().clone())))
}

/// What `make` makes of the current connection, if there is one (a `Watch`).
pub(crate) fn with_current<T>(make: impl FnOnce(&Arc<ConnShared>) -> T) -> Option<T> {
    CURRENT.with(|slot| {
        let current = slot.replace(ManuallyDrop::new(None));
        let made = current.as_ref().map(make);
        slot.set(current);
        made
    })
}
