//! `cargo xtask drill`: the shutdown drills of the hyper issue against every server.
//!
//! ```text
//! cargo xtask drill [--rounds 20] [--servers NAME,NAME...]
//! ```
//!
//! Each drill starts a fresh server, puts it in a situation with real clients on loopback,
//! sends SIGTERM (and a second one where the drill says so), and observes from the outside:
//! - in flight: 100 idle keep-alive connections and 20 `GET /sleep/1500` in flight; SIGTERM
//!   300 ms after the requests start. How many of the 20 are answered, when the idle
//!   connections are closed, whether a connection 200 ms after the signal is served, and
//!   when the process exits.
//! - timeout: `--timeout 1` with `GET /sleep/10000` in flight: exit time.
//! - second signal: `--timeout 30`, `GET /sleep/10000` in flight, a second SIGTERM 300 ms
//!   after the first: exit time after the second.
//! - keep-alive load, repeated `--rounds` times: 16 clients in a tight `GET /` loop, SIGTERM
//!   half way through a one-second run. A request is lost when it was written on a
//!   connection that had already served a response and is met by a close (or reset)
//!   without a response, or by a truncated one. A connection refused after the signal (or
//!   closed before serving anything) is not a loss.
//! - slow clients: `--timeout 3`, 50 silent connections and 50 that sent half a request
//!   head: exit time.
//!
//! # Invariants
//!
//! Every wait is bounded (the bounds are the constants below) and every server is reaped,
//! whatever happens: a server still running past a bound is reported as such and killed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::cli::Flags;
use crate::client::{Client, Error};
use crate::loadgen;
use crate::report::{median, ms, Table};
use crate::server::{self, progress, Server, Spec};

/// The servers drilled unless `--servers` says otherwise: raw hyper, hyper-util's graceful
/// shutdown, and ours
/// (the other raw builds behave as `hyper-auto` does: they exit at once).
const DEFAULT_SERVERS: &str = "hyper-http1,hyper-auto,hyper-util-graceful,hello_tokio,hello_smol";
/// How long a server may take to exit after the (last) signal before it is killed.
const EXIT_BOUND: Duration = Duration::from_secs(12);
/// How long a client waits for anything.
const CLIENT_BOUND: Duration = Duration::from_secs(15);
/// The keep-alive load: clients, signal after, run until at most.
const LOOP_CLIENTS: usize = 16;
const LOOP_SIGNAL_AFTER: Duration = Duration::from_millis(500);
const LOOP_BOUND: Duration = Duration::from_secs(5);

/// What the drills saw for one server, as table cells.
#[derive(Debug, Default)]
struct Column {
    inflight_completed: String,
    idle_closed: String,
    late_connection: String,
    exit: String,
    timeout_exit: String,
    second_signal_exit: String,
    lost: String,
    loaded_exit: String,
    slow_exit: String,
}

/// The table's rows, in the order of [`Column::cells`].
const ROWS: [&str; 9] = [
    "in-flight requests answered (20 × /sleep/1500)",
    "100 idle connections closed after the signal (max)",
    "new connection 200 ms after the signal",
    "exit after the signal (requests of 1.5 s in flight)",
    "exit after the signal, --timeout 1, 10 s request",
    "exit after a second signal (+300 ms), 10 s request",
    "lost requests, 16 clients looping",
    "exit after the signal under that load (median / max)",
    "exit, 50 silent + 50 half-head clients, --timeout 3",
];

impl Column {
    fn cells(&self) -> [&String; 9] {
        [
            &self.inflight_completed,
            &self.idle_closed,
            &self.late_connection,
            &self.exit,
            &self.timeout_exit,
            &self.second_signal_exit,
            &self.lost,
            &self.loaded_exit,
            &self.slow_exit,
        ]
    }
}

/// Runs the drills; `args` are the flags after `drill`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(result) = crate::cli::in_release("drill", args) {
        return result;
    }
    let flags = Flags::parse(args, &["--rounds", "--servers"])?;
    let rounds: usize = flags.num("--rounds", 20)?;
    if !(1..=1000).contains(&rounds) {
        return Err("--rounds must be between 1 and 1000".into());
    }
    server::raise_nofile_limit();
    let names = flags.str("--servers").unwrap_or(DEFAULT_SERVERS);
    let specs = server::build(&server::select(Some(names))?)?;
    let rt = loadgen::runtime(2)?;
    let started = Instant::now();
    let mut columns = Vec::new();
    for spec in &specs {
        columns.push((spec.name, drills(&rt, spec, rounds)?));
    }
    progress(
        "done",
        &format!("in {:.0} s", started.elapsed().as_secs_f64()),
    );

    let mut header = vec!["drill".to_string()];
    header.extend(columns.iter().map(|(name, _)| name.to_string()));
    let mut table = Table::new(header);
    for (i, label) in ROWS.iter().enumerate() {
        let mut row = vec![label.to_string()];
        row.extend(columns.iter().map(|(_, column)| column.cells()[i].clone()));
        table.row(row);
    }
    println!();
    println!("{}", crate::machine::summary());
    println!("Lost requests: over {rounds} rounds of the keep-alive drill.");
    println!();
    print!("{table}");
    Ok(())
}

fn drills(rt: &Runtime, spec: &Spec, rounds: usize) -> Result<Column, String> {
    let mut column = Column::default();
    let step = |what: &str| format!("drill {} / {what}", spec.name);

    in_flight(rt, spec, &mut column)?;
    progress(
        &step("in flight"),
        &format!(
            "answered {}, idle closed {}, late connection {}, exit {}",
            column.inflight_completed, column.idle_closed, column.late_connection, column.exit
        ),
    );

    column.timeout_exit = timeout_exit(rt, spec)?;
    progress(&step("timeout"), &format!("exit {}", column.timeout_exit));

    column.second_signal_exit = second_signal(rt, spec)?;
    progress(
        &step("second signal"),
        &format!("exit {}", column.second_signal_exit),
    );

    let mut lost_total = 0;
    let mut lossy_rounds = 0;
    let mut exits = Vec::new();
    let mut stuck = 0;
    for round in 0..rounds {
        let (lost, exit) = keep_alive_round(rt, spec)?;
        lost_total += lost;
        lossy_rounds += usize::from(lost > 0);
        match exit {
            Some(exit) => exits.push(exit.as_secs_f64()),
            None => stuck += 1,
        }
        progress(
            &step(&format!("keep-alive {}/{rounds}", round + 1)),
            &format!(
                "lost {lost}, exit {}",
                exit.map(ms).unwrap_or_else(not_exited)
            ),
        );
    }
    column.lost = if lost_total == 0 {
        format!("0 in {rounds} rounds")
    } else {
        format!("{lost_total} in {rounds} rounds ({lossy_rounds} with losses)")
    };
    let max = exits.iter().copied().fold(0.0, f64::max);
    column.loaded_exit = if exits.is_empty() {
        not_exited()
    } else {
        format!(
            "{} / {}{}",
            ms(Duration::from_secs_f64(median(&exits))),
            ms(Duration::from_secs_f64(max)),
            if stuck > 0 {
                format!(" ({stuck} did not exit)")
            } else {
                String::new()
            }
        )
    };

    column.slow_exit = slow_clients(rt, spec)?;
    progress(&step("slow clients"), &format!("exit {}", column.slow_exit));
    Ok(column)
}

fn not_exited() -> String {
    format!("not within {} s", EXIT_BOUND.as_secs())
}

/// Time from `signalled` to the process exit, as a cell.
fn exit_cell(server: &Server, signalled: Instant) -> String {
    match server.wait_exit(signalled + EXIT_BOUND) {
        Some(at) => ms(at - signalled),
        None => not_exited(),
    }
}

/// A `GET path` on a new connection, as a task.
fn spawn_request(rt: &Runtime, addr: SocketAddr, path: &'static str) -> JoinHandle<bool> {
    rt.spawn(async move {
        let attempt = async {
            let mut client = Client::connect(addr).await.ok()?;
            client.request(&Client::get_request(path)).await.ok()
        };
        matches!(
            tokio::time::timeout(CLIENT_BOUND, attempt).await,
            Ok(Some(response)) if response.status == 200
        )
    })
}

fn in_flight(rt: &Runtime, spec: &Spec, column: &mut Column) -> Result<(), String> {
    let server = Server::start(spec, 30.0)?;
    let addr = server.addr();
    let idle = loadgen::open_idle(rt, addr, 100, 100, &format!("drill {}", spec.name))?;
    let idle: Vec<JoinHandle<Option<Instant>>> = idle
        .into_iter()
        .map(|mut client| {
            rt.spawn(async move {
                tokio::time::timeout(CLIENT_BOUND, client.closed())
                    .await
                    .ok()?;
                Some(Instant::now())
            })
        })
        .collect();
    let sleepers: Vec<JoinHandle<bool>> = (0..20)
        .map(|_| spawn_request(rt, addr, "/sleep/1500"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = server.signal(Signal::TERM)?;
    std::thread::sleep(Duration::from_millis(200));
    column.late_connection = rt.block_on(async {
        let attempt = async {
            let Ok(mut client) = Client::connect(addr).await else {
                return "refused";
            };
            match client.request(&Client::get_request("/")).await {
                Ok(response) if response.status == 200 => "served",
                Ok(_) => "answered with an error",
                Err(Error::Closed | Error::WriteFailed) => "closed unanswered",
                Err(_) => "failed",
            }
        };
        tokio::time::timeout(Duration::from_secs(2), attempt)
            .await
            .unwrap_or("hung (no answer in 2 s)")
            .to_string()
    });
    column.exit = exit_cell(&server, signalled);
    drop(server);
    let (answered, closed) = rt.block_on(async {
        let mut answered = 0;
        for sleeper in sleepers {
            answered += usize::from(sleeper.await.unwrap_or(false));
        }
        let mut closed = Vec::new();
        for conn in idle {
            closed.push(conn.await.ok().flatten());
        }
        (answered, closed)
    });
    column.inflight_completed = format!("{answered}/20");
    column.idle_closed = match closed.iter().copied().collect::<Option<Vec<Instant>>>() {
        Some(all) => {
            let last = all.into_iter().max().unwrap_or(signalled);
            ms(last.saturating_duration_since(signalled))
        }
        None => format!(
            "{} still open",
            closed.iter().filter(|c| c.is_none()).count()
        ),
    };
    Ok(())
}

fn timeout_exit(rt: &Runtime, spec: &Spec) -> Result<String, String> {
    let server = Server::start(spec, 1.0)?;
    let request = spawn_request(rt, server.addr(), "/sleep/10000");
    std::thread::sleep(Duration::from_millis(300));
    let signalled = server.signal(Signal::TERM)?;
    let exit = exit_cell(&server, signalled);
    drop(server);
    request.abort();
    Ok(exit)
}

fn second_signal(rt: &Runtime, spec: &Spec) -> Result<String, String> {
    let server = Server::start(spec, 30.0)?;
    let request = spawn_request(rt, server.addr(), "/sleep/10000");
    std::thread::sleep(Duration::from_millis(300));
    let first = server.signal(Signal::TERM)?;
    if let Some(at) = server.wait_exit(first + Duration::from_millis(300)) {
        request.abort();
        return Ok(format!("exited at the first signal ({})", ms(at - first)));
    }
    let second = server.signal(Signal::TERM)?;
    let exit = exit_cell(&server, second);
    drop(server);
    request.abort();
    Ok(exit)
}

/// One keep-alive round: `(lost requests, exit time after the signal)`.
fn keep_alive_round(rt: &Runtime, spec: &Spec) -> Result<(u64, Option<Duration>), String> {
    let server = Server::start(spec, 30.0)?;
    let addr = server.addr();
    let stop_at = Instant::now() + LOOP_SIGNAL_AFTER + LOOP_BOUND;
    let clients: Vec<JoinHandle<u64>> = (0..LOOP_CLIENTS)
        .map(|_| rt.spawn(looping_client(addr, stop_at)))
        .collect();
    std::thread::sleep(LOOP_SIGNAL_AFTER);
    let signalled = server.signal(Signal::TERM)?;
    let exit = server
        .wait_exit(signalled + EXIT_BOUND)
        .map(|at| at - signalled);
    drop(server);
    let lost = rt.block_on(async {
        let mut lost = 0;
        for client in clients {
            lost += client.await.unwrap_or(0);
        }
        lost
    });
    Ok((lost, exit))
}

/// A client in a tight `GET /` loop, reconnecting after `Connection: close`, until refused
/// or `stop_at`. Returns its lost requests.
async fn looping_client(addr: SocketAddr, stop_at: Instant) -> u64 {
    let request = Client::get_request("/");
    let mut lost = 0;
    'connect: while Instant::now() < stop_at {
        let Ok(Ok(mut client)) = tokio::time::timeout(CLIENT_BOUND, Client::connect(addr)).await
        else {
            break; // refused: the server stopped accepting.
        };
        while Instant::now() < stop_at {
            match tokio::time::timeout(CLIENT_BOUND, client.request(&request)).await {
                Ok(Ok(response)) if !response.close => {}
                Ok(Ok(_)) => continue 'connect, // told to close: not a loss.
                Ok(Err(Error::Closed | Error::WriteFailed)) if client.served == 0 => {
                    // Closed before serving anything (accepted by the kernel, never served):
                    // the same as refused.
                    continue 'connect;
                }
                Ok(Err(_)) | Err(_) => {
                    lost += 1;
                    continue 'connect;
                }
            }
        }
    }
    lost
}

fn slow_clients(rt: &Runtime, spec: &Spec) -> Result<String, String> {
    let server = Server::start(spec, 3.0)?;
    let addr = server.addr();
    let holders: Vec<JoinHandle<()>> = (0..100)
        .map(|i| {
            rt.spawn(async move {
                let Ok(mut client) = Client::connect(addr).await else {
                    return;
                };
                if i % 2 == 1 {
                    let _ = client.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
                }
                let _ = tokio::time::timeout(CLIENT_BOUND, client.closed()).await;
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = server.signal(Signal::TERM)?;
    let exit = exit_cell(&server, signalled);
    drop(server);
    for holder in holders {
        holder.abort();
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";

    /// Reads one request (they are small and sent whole); `false` at the end of the stream.
    async fn read_request(stream: &mut TcpStream) -> bool {
        let mut buf = [0u8; 1024];
        matches!(stream.read(&mut buf).await, Ok(1..))
    }

    /// Serves `oks` keep-alive responses, then answers the next request with `last`
    /// (nothing: close unanswered) and closes.
    async fn connection(listener: &TcpListener, oks: usize, last: &[u8]) {
        let (mut stream, _) = listener.accept().await.unwrap();
        for _ in 0..oks {
            assert!(read_request(&mut stream).await);
            stream.write_all(OK).await.unwrap();
        }
        assert!(read_request(&mut stream).await);
        stream.write_all(last).await.unwrap();
    }

    #[tokio::test]
    async fn losses_are_requests_a_kept_alive_connection_left_unanswered() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(looping_client(
            addr,
            Instant::now() + Duration::from_secs(10),
        ));
        // Closed after two answers, with a request in flight: lost.
        connection(&listener, 2, b"").await;
        // Closed before answering anything: as good as refused, not lost.
        connection(&listener, 0, b"").await;
        // A truncated answer on a kept-alive connection: lost.
        connection(
            &listener,
            1,
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhe",
        )
        .await;
        // Told to close: not lost.
        connection(
            &listener,
            1,
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        )
        .await;
        drop(listener); // Refused from now on: the client stops.
        let lost = tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lost, 2);
    }
}
