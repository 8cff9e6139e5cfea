// The runtime of the `serve` doc examples, which take it in with
// `#[path = "doctest_runtime.rs"] mod rt;`: not a module of the crate.
//
// `Threads` serves each connection on a thread of its own, on a `ManualTimer`, without
// signals; its "HTTP" hook hands each connection's greeting (the `Http` setting) to the
// service. `Numbered` is a listener of in-memory connections: `1..=count`, then none.

use std::future::{pending, Future};
use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use graceful_core::serve::{ConnectionTask, Listener, Runtime, ServeHttp, Watcher};
use graceful_core::{Conn, ManualTimer, Shutdown};

#[derive(Clone, Debug, Default)]
pub struct Threads(pub ManualTimer);

impl Runtime for Threads {
    type Timer = ManualTimer;
    type Http = String;

    fn timer(&self) -> ManualTimer {
        self.0.clone()
    }

    fn http(&self) -> String {
        "hello".to_string()
    }

    fn spawn(&self, task: ConnectionTask) {
        std::thread::spawn(move || futures::executor::block_on(task));
    }

    fn signals(&self, _: Shutdown) -> io::Result<Watcher> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl<S: Fn(u32, &str) + Clone + Send + Sync + 'static> ServeHttp<u32, S, ()> for Threads {
    fn serve_connection(
        greeting: &String,
        id: u32,
        conn: Conn,
        service: &S,
        _: Option<Arc<AtomicBool>>,
    ) -> impl Future<Output = ()> + Send + 'static + use<S> {
        let (greeting, service) = (greeting.clone(), service.clone());
        async move {
            conn.mark_active();
            service(id, &greeting);
            conn.mark_idle();
        }
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
