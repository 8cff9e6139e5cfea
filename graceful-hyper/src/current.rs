//! The connection whose request is being handled on this thread: what
//! [`Watch::current`](crate::Watch::current) reads.
//!
//! The unit of work of a request ([`WorkGuard`]) owns a reference to its connection. While
//! graceful-hyper calls the service, polls the response future or polls the response body,
//! it moves that guard into a thread-local slot ([`Entered::new`]) and back out afterwards
//! (when the `Entered` drops): a move of two words, no reference count touched, no
//! allocation. `Watch::current` makes its `Watch` from the guard in the slot, so only a
//! handler that asks pays for one.
//!
//! The slot is a `ManuallyDrop`, so the thread-local needs no destructor: each access is a
//! plain load and store, with no check of whether the thread is ending.
//!
//! # Invariants
//!
//! - The slot holds a guard only while an `Entered` lives: whatever was there before is put
//!   back when it drops, on return or unwind, and the guard goes back to its owner. Calls
//!   nest (a server run inside a handler) and a panicking handler leaves nothing behind.
//! - A guard is never dropped from the slot: it belongs to the future or body that entered,
//!   which drops it (the one end of that unit of work) once it has it back.

use std::cell::Cell;
use std::mem::ManuallyDrop;

use crate::shared::WorkGuard;
use crate::watch::Watch;

thread_local! {
    static CURRENT: Cell<ManuallyDrop<Option<WorkGuard>>> =
        const { Cell::new(ManuallyDrop::new(None)) };
}

/// While it lives, the guard it took is the thread's current one.
pub(crate) struct Entered<'a> {
    /// Where the guard goes back to.
    owner: &'a mut Option<WorkGuard>,
    /// What the slot held before.
    previous: ManuallyDrop<Option<WorkGuard>>,
}

impl<'a> Entered<'a> {
    /// Moves `owner`'s guard (or `None`) into the slot until the `Entered` drops.
    #[inline]
    pub(crate) fn new(owner: &'a mut Option<WorkGuard>) -> Entered<'a> {
        let mine = ManuallyDrop::new(owner.take());
        let previous = CURRENT.with(|slot| slot.replace(mine));
        Entered { owner, previous }
    }
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        let previous = std::mem::replace(&mut self.previous, ManuallyDrop::new(None));
        let mine = CURRENT.with(|slot| slot.replace(previous));
        *self.owner = ManuallyDrop::into_inner(mine);
    }
}

/// The current connection's [`Watch`], if a request of one is being handled on this thread.
/// A guard made the current one by value, for the service call: the future the call returns
/// is then built right where the caller wants it, with no guard borrowed across the call
/// (a borrow would make the compiler build the inner future aside and copy it, some 500
/// bytes for a handler that keeps its request).
pub(crate) struct Inside {
    previous: ManuallyDrop<Option<WorkGuard>>,
}

impl Inside {
    #[inline]
    pub(crate) fn enter(guard: Option<WorkGuard>) -> Inside {
        let previous = CURRENT.with(|slot| slot.replace(ManuallyDrop::new(guard)));
        Inside { previous }
    }

    /// Puts back what was current before, and returns the guard.
    #[inline]
    pub(crate) fn leave(mut self) -> Option<WorkGuard> {
        let previous = std::mem::replace(&mut self.previous, ManuallyDrop::new(None));
        std::mem::forget(self);
        ManuallyDrop::into_inner(CURRENT.with(|slot| slot.replace(previous)))
    }
}

impl Drop for Inside {
    /// Only on unwind: the guard is dropped (its unit of work ends) and the slot restored.
    fn drop(&mut self) {
        let previous = std::mem::replace(&mut self.previous, ManuallyDrop::new(None));
        drop(ManuallyDrop::into_inner(
            CURRENT.with(|slot| slot.replace(previous)),
        ));
    }
}

pub(crate) fn watch() -> Option<Watch> {
    CURRENT.with(|slot| {
        let guard = slot.replace(ManuallyDrop::new(None));
        let watch = guard.as_ref().map(|guard| Watch::new(guard.conn()));
        slot.set(guard);
        watch
    })
}
