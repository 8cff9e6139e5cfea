//! The library author's path: one app, written once against graceful-core and graceful-hyper
//! and bounded on its runtime alone, served on tokio, on smol, and on a runtime built here by
//! hand from async-executor and async-io (its whole graceful glue is the `Hand` section
//! below). A real client over loopback TCP: a stop while a request sleeps on the server's
//! clock lets the request complete, closes the idle connection, and the report adds up.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use graceful_core::serve::Listener;
use graceful_core::{Outcome, Server, Shutdown, ShutdownReport, Timer};
use graceful_hyper::{Http, HttpRuntime};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};

/// The app: `GET /sleep/{ms}` answers `slept` after sleeping on the server's clock. Generic
/// over the runtime (no service type, no marker in its bounds); the service is a closure.
async fn serve_app<R, L>(server: Server<R>, listener: L) -> ShutdownReport
where
    R: HttpRuntime<L::Io>,
    L: Listener<R>,
{
    let timer = server.runtime().timer();
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let path = request.uri().path();
        let ms = path.trim_start_matches("/sleep/").parse().unwrap_or(0);
        let sleep = timer.sleep_until(timer.now() + Duration::from_millis(ms));
        async move {
            sleep.await;
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("slept"))))
        }
    });
    let http = Http::new(server.runtime());
    server.serve(listener, http.service(service)).await
}

// ---- Hand: a runtime built by hand from async-executor and async-io. ----

mod hand {
    use std::sync::Arc;
    use std::time::Instant;

    use async_io::Async;
    use graceful_core::serve::{ConnectionTask, Listener, Runtime, Watcher};
    use graceful_core::{Shutdown, Sleep, Timer};
    use graceful_hyper::{HttpRuntime, HyperIo};

    /// The runtime: tasks on an async-executor, sockets and sleeps on async-io's reactor.
    #[derive(Clone, Debug, Default)]
    pub struct Hand(pub Arc<async_executor::Executor<'static>>);

    #[derive(Clone, Copy, Debug)]
    pub struct Clock;

    impl Timer for Clock {
        fn now(&self) -> Instant {
            Instant::now()
        }
        fn sleep_until(&self, deadline: Instant) -> Sleep {
            Box::pin(async move {
                async_io::Timer::at(deadline).await;
            })
        }
    }

    impl Runtime for Hand {
        type Timer = Clock;
        fn timer(&self) -> Clock {
            Clock
        }
        fn spawn(&self, task: ConnectionTask) {
            self.0.spawn(task).detach();
        }
        fn signals(&self, _: Shutdown) -> std::io::Result<Watcher> {
            Err(std::io::ErrorKind::Unsupported.into()) // stopped through `Shutdown` only
        }
    }

    impl Listener<Hand> for Async<std::net::TcpListener> {
        type Io = Async<std::net::TcpStream>;
        async fn accept(&mut self) -> std::io::Result<Self::Io> {
            Async::<std::net::TcpListener>::accept(self)
                .await
                .map(|(stream, _)| stream)
        }
    }

    impl<Io> HttpRuntime<Io> for Hand
    where
        Io: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
    {
        fn hyper_io(io: Io) -> impl hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static {
            HyperIo::new(io)
        }
    }
}

// ---- The scenario, the same on every runtime. ----

const LONG: Duration = Duration::from_secs(30);

/// A connection of a blocking client.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(LONG)).unwrap();
    stream
}

/// Reads one response (the body is `slept`, the last bytes); returns it whole.
fn response(stream: &mut TcpStream) -> String {
    let mut read = Vec::new();
    let mut buf = [0; 1024];
    while !read.ends_with(b"slept") {
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&read)
        );
        read.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(read).unwrap().to_ascii_lowercase()
}

/// Polls `done` every millisecond; fails after [`LONG`].
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < LONG, "not within {LONG:?}: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// One connection answered and left idle, one request sleeping on the server's clock when
/// the server is stopped: the request completes (with `Connection: close`), the idle
/// connection closes, and the report says so. `report` waits for the app's report.
fn stop_mid_request(addr: SocketAddr, shutdown: Shutdown, report: impl FnOnce() -> ShutdownReport) {
    let mut idle = connect(addr);
    idle.write_all(b"GET /sleep/0 HTTP/1.1\r\nhost: app\r\n\r\n")
        .unwrap();
    assert!(response(&mut idle).starts_with("http/1.1 200"));

    let mut busy = connect(addr);
    busy.write_all(b"GET /sleep/300 HTTP/1.1\r\nhost: app\r\n\r\n")
        .unwrap();
    wait_for("the request in flight", || shutdown.counts().active == 1);
    shutdown.stop();

    let answer = response(&mut busy);
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert_eq!(
        idle.read(&mut [0; 16]).unwrap(),
        0,
        "the idle connection closed"
    );

    let report = report();
    assert_eq!(report.outcome, Outcome::Drained, "{report}");
    assert_eq!(
        (report.completed, report.idle_closed, report.killed),
        (1, 1, 0),
        "{report}"
    );
    assert_eq!(report.total(), 2, "{report}");
}

#[test]
fn the_app_on_tokio() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = Server::<graceful_tokio::Tokio>::builder()
        .signals(false)
        .build()
        .unwrap();
    let shutdown = server.shutdown();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = runtime.spawn(serve_app(server, listener));
    stop_mid_request(addr, shutdown, || runtime.block_on(serving).unwrap());
}

#[test]
fn the_app_on_smol() {
    let server = Server::<graceful_smol::Smol>::builder()
        .signals(false)
        .build()
        .unwrap();
    let shutdown = server.shutdown();
    let listener = smol::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = smol::spawn(serve_app(server, listener));
    stop_mid_request(addr, shutdown, || smol::block_on(serving));
}

#[test]
fn the_app_on_a_runtime_built_by_hand() {
    let runtime = hand::Hand::default();
    let server = Server::builder()
        .runtime(runtime.clone())
        .signals(false)
        .build()
        .unwrap();
    let shutdown = server.shutdown();
    let listener = async_io::Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    // The executor runs on one thread of its own, for as long as the app serves.
    let serving = thread::spawn(move || {
        let executor = runtime.0.clone();
        async_io::block_on(executor.run(serve_app(server, listener)))
    });
    stop_mid_request(addr, shutdown, || serving.join().unwrap());
}
