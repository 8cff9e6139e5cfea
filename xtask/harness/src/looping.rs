//! Clients in a tight request loop on kept-alive connections, for the scenario every HTTP
//! suite runs: a signal in the middle of the load loses no request.
//!
//! Each client is a thread that connects, requests until the server closes, and connects
//! again, until the server stops accepting. It tells what a graceful drain allows (a fresh
//! connection closed before its first answer: it waited in the backlog when the listener
//! closed, like a refused one) from a loss (a request on a kept-alive connection met by a
//! close without an answer, or an answer cut short).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::http1::Unanswered;
use crate::Server;

/// What one request on a connection came to.
#[derive(Debug)]
pub enum Outcome {
    /// Answered with 200.
    Answered {
        /// The answer said `Connection: close`.
        close: bool,
    },
    /// The connection closed before any byte of an answer; the text says how, for the
    /// record.
    Closed(String),
    /// The answer was cut short.
    Truncated,
}

/// What the clients saw, all together.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests answered.
    pub answered: usize,
    /// Fresh connections closed before their first answer, or that failed to connect after
    /// the signal: never served, like refused ones.
    pub unserved: usize,
    /// Each request lost, described.
    pub losses: Vec<String>,
}

/// A set of looping clients (see the [module](self) docs).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use graceful_harness::http1::Conn;
/// use graceful_harness::looping::{http1_get, Clients};
/// use graceful_harness::Server;
///
/// let server = Server::start("hello_tokio", &[]);
/// let addr = server.addr;
/// let clients = Clients::start(16, move || Conn::connect(addr, Duration::from_secs(10)), http1_get);
/// clients.wait_warm(Duration::from_secs(10));
/// clients.signaled();
/// server.terminate();
/// assert!(clients.finish().losses.is_empty());
/// ```
#[derive(Debug)]
pub struct Clients {
    signaled: Arc<AtomicBool>,
    warm: mpsc::Receiver<()>,
    threads: Vec<thread::JoinHandle<Tally>>,
}

/// How long a client loops before it gives up on the server ever stopping.
const LOOP_BOUND: Duration = Duration::from_secs(30);

impl Clients {
    /// Starts `count` clients; each connects with `connect` and requests with `request`.
    /// A client panics on any other failure than those [`Outcome`] names, or if the server
    /// still accepts after 30 s.
    pub fn start<C, Connect, Request>(count: usize, connect: Connect, request: Request) -> Clients
    where
        Connect: Fn() -> io::Result<C> + Clone + Send + 'static,
        Request: Fn(&mut C) -> Outcome + Clone + Send + 'static,
    {
        let signaled = Arc::new(AtomicBool::new(false));
        let (warmed, warm) = mpsc::channel();
        let threads = (0..count)
            .map(|_| {
                let (connect, request) = (connect.clone(), request.clone());
                let (signaled, warmed) = (signaled.clone(), warmed.clone());
                thread::spawn(move || request_loop(connect, request, &signaled, warmed))
            })
            .collect();
        Clients {
            signaled,
            warm,
            threads,
        }
    }

    /// Waits until every client has had [`WARM`] requests answered, so that a signal now
    /// lands in the middle of the load.
    #[track_caller]
    pub fn wait_warm(&self, bound: Duration) {
        let deadline = Instant::now() + bound;
        for warmed in 0..self.threads.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                self.warm.recv_timeout(left).is_ok(),
                "timed out after {bound:?} waiting for every client to be answered \
                 {WARM} times: {warmed} of {} were",
                self.threads.len()
            );
        }
    }

    /// Says the server is told to stop: from now on, a refused connection ends a client.
    pub fn signaled(&self) {
        self.signaled.store(true, Ordering::SeqCst);
    }

    /// Waits for the clients to end; what they saw.
    pub fn finish(self) -> Tally {
        let mut total = Tally::default();
        for thread in self.threads {
            let tally = thread.join().expect("a client thread panicked");
            total.answered += tally.answered;
            total.unserved += tally.unserved;
            total.losses.extend(tally.losses);
        }
        total
    }
}

/// How many answers a client must have had before it counts as warm.
pub const WARM: usize = 20;

fn request_loop<C>(
    connect: impl Fn() -> io::Result<C>,
    request: impl Fn(&mut C) -> Outcome,
    signaled: &AtomicBool,
    warmed: mpsc::Sender<()>,
) -> Tally {
    let mut tally = Tally::default();
    let mut warmed = Some(warmed);
    let deadline = Instant::now() + LOOP_BOUND;
    'connect: while Instant::now() < deadline {
        let mut conn = match connect() {
            Ok(conn) => conn,
            Err(_) if signaled.load(Ordering::SeqCst) => return tally,
            Err(err) => panic!("connect before the signal: {err}"),
        };
        let mut answered_here = 0;
        loop {
            match request(&mut conn) {
                Outcome::Answered { close } => {
                    tally.answered += 1;
                    answered_here += 1;
                    if tally.answered >= WARM {
                        if let Some(warmed) = warmed.take() {
                            let _ = warmed.send(());
                        }
                    }
                    if close {
                        continue 'connect;
                    }
                }
                Outcome::Closed(how) if answered_here > 0 => {
                    tally.losses.push(format!(
                        "closed ({how}) without an answer after {answered_here} answers \
                         (signaled: {})",
                        signaled.load(Ordering::SeqCst)
                    ));
                    continue 'connect;
                }
                Outcome::Closed(_) => {
                    tally.unserved += 1;
                    continue 'connect;
                }
                Outcome::Truncated => {
                    tally
                        .losses
                        .push(format!("truncated after {answered_here} answers"));
                    continue 'connect;
                }
            }
        }
    }
    panic!("the server was still accepting {LOOP_BOUND:?} later");
}

/// `GET /` on a raw HTTP/1.1 connection, as a looping client's request: 200 expected.
#[track_caller]
pub fn http1_get(conn: &mut crate::http1::Conn) -> Outcome {
    outcome(conn.exchange("/"))
}

/// `GET /` on an HTTPS connection, as a looping client's request: 200 expected.
#[cfg(feature = "tls")]
#[track_caller]
pub fn tls_get(conn: &mut crate::tls::TlsConn) -> Outcome {
    outcome(conn.exchange("/"))
}

#[track_caller]
fn outcome(exchanged: Result<crate::http1::Response, Unanswered>) -> Outcome {
    match exchanged {
        Ok(response) => {
            assert_eq!(response.status, 200);
            Outcome::Answered {
                close: response.close,
            }
        }
        Err(Unanswered::Ended) => Outcome::Closed("end of stream; over TLS, close_notify".into()),
        Err(Unanswered::Closed) => Outcome::Closed("reset, or no close_notify".into()),
        Err(Unanswered::Truncated) => Outcome::Truncated,
        Err(Unanswered::Io(err)) => panic!("client: {err}"),
    }
}

/// What [`drain_rounds`] saw, over all its rounds.
#[derive(Debug, Default)]
pub struct Rounds {
    /// Requests answered.
    pub answered: usize,
    /// Connections never served (see [`Tally::unserved`]).
    pub unserved: usize,
    /// The longest time from a signal to its server's exit.
    pub worst_exit: Duration,
}

/// The scenario every HTTP suite runs: `rounds` times, `start` starts a server and its
/// looping clients; once they are warm the server gets SIGTERM. Not one request may be
/// lost, and the server must exit with success within `exit_bound` of the signal, drained,
/// nothing killed.
#[track_caller]
pub fn drain_rounds(
    rounds: usize,
    exit_bound: Duration,
    mut start: impl FnMut() -> (Server, Clients),
) -> Rounds {
    const SOON: Duration = Duration::from_secs(10);
    let mut seen = Rounds::default();
    for round in 0..rounds {
        let (server, clients) = start();
        clients.wait_warm(SOON);
        clients.signaled();
        let at = server.terminate();
        let exit = server.wait_success(SOON) - at;
        let tally = clients.finish();
        seen.answered += tally.answered;
        seen.unserved += tally.unserved;
        assert!(
            tally.losses.is_empty(),
            "round {round}: requests lost: {:#?}",
            tally.losses
        );
        assert!(exit < exit_bound, "round {round}: exit {exit:?}");
        seen.worst_exit = seen.worst_exit.max(exit);
        server.drained();
    }
    seen
}
