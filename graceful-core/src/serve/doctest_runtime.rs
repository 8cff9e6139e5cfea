// The runtime of the `serve` doc examples, which take it in with
// `#[path = "doctest_runtime.rs"] mod rt;`: not a module of the crate.
//
// `Threads` serves each connection on a thread of its own, on a `ManualTimer`, without
// signals. `Numbered` is a listener of in-memory connections: `1..=count`, then none.

use std::future::pending;
use std::io;

use graceful_core::serve::{ConnectionTask, Listener, Runtime, Watcher};
use graceful_core::{ManualTimer, Shutdown};

#[derive(Clone, Debug, Default)]
pub struct Threads(pub ManualTimer);

impl Runtime for Threads {
    type Timer = ManualTimer;

    fn timer(&self) -> ManualTimer {
        self.0.clone()
    }

    fn spawn(&self, task: ConnectionTask) {
        std::thread::spawn(move || futures::executor::block_on(task));
    }

    fn signals(&self, _: Shutdown) -> io::Result<Watcher> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

pub struct Numbered {
    next: u32,
    count: u32,
}

impl Numbered {
    pub fn new(count: u32) -> Numbered {
        Numbered { next: 0, count }
    }
}

impl Listener<Threads> for Numbered {
    type Io = u32;

    async fn accept(&mut self) -> io::Result<u32> {
        if self.next == self.count {
            pending::<()>().await;
        }
        self.next += 1;
        Ok(self.next)
    }
}
