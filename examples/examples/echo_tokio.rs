//! `echo_tokio`: a protocol of your own (a line protocol) on tokio, shutting down
//! gracefully.
//!
//! ```sh
//! cargo run -p examples --example echo_tokio -- --timeout 10
//! printf 'hello\nSLEEP 3000\n' | nc 127.0.0.1 3000   # then Ctrl-C the server: DONE still comes
//! ```
//!
//! `Server::serve` runs the handler in a task per connection, with the connection's
//! [`Conn`]; the handler tells graceful when the connection is busy and closes when told
//! to. SIGTERM or Ctrl-C drains: idle connections close, work in flight finishes, and a
//! second signal kills what is left. The flags and the progress line are plumbing the
//! examples share (`src/contract.rs`).

use std::io;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use contract::{Flags, StartError};
use graceful_tokio::{Conn, Describe, Server, Stamp, TokioTimer, Work};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const NAME: &str = "echo_tokio";

#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.exit(NAME),
    }
}

async fn serve() -> Result<(), StartError> {
    let flags = Flags::from_env()?;
    contract::init_tracing();

    // The settings: how long the drain may last, how long a connection must have been
    // quiet to be closed at once, how long to serve on before draining.
    let server = Server::builder()
        .timeout(flags.timeout)
        .quiet_period(flags.quiet_period())
        .drain_delay(flags.drain_delay)
        .build()
        .map_err(StartError::input)?;

    // The listener: `--addr` bound by the server, which then closes it without resetting a
    // connection that completes as it stops (on Linux).
    let addr = flags.one_tcp()?;
    let listener = server
        .listen(addr)
        .map_err(|error| StartError::listen(addr, error))?;
    let addr = listener.local_addr().map_err(StartError::system)?;

    // Serving: `echo` on every connection, with a line of progress on stderr while
    // draining. `serve` sets the signal handlers when it is called, before the line that
    // says the server listens: a signal sent as soon as it is out drains.
    tokio::spawn(contract::print_progress(
        server.shutdown(),
        TokioTimer,
        io::stderr(),
    ));
    let serving = server.serve(listener, echo);
    println!("listening on {addr}");

    // The report: what became of every connection.
    let report = serving.await;
    eprintln!("{NAME}: {report}");
    Ok(())
}

/// The handler: one request a line; `SLEEP <ms>` answers `DONE` after `ms` milliseconds of
/// work, anything else is echoed. What a protocol owes graceful: mark the connection active
/// when a request begins and idle once it is answered; close when told to drain while
/// idle; close after an answer once the server drains.
async fn echo(stream: TcpStream, conn: Conn) {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    // What the connection is doing, for a drain that asks: its progress line and its report
    // name the request a connection holds it with.
    let running = Arc::new(Running::default());
    conn.describe_with(running.clone());
    loop {
        // Idle: wait for a request, or for the order to close. A request that has begun to
        // arrive wins over the drain.
        let request = tokio::select! {
            biased;
            read = stream.fill_buf() => matches!(read, Ok(buf) if !buf.is_empty()),
            () = conn.drain_requested() => false,
        };
        if !request {
            return;
        }
        conn.mark_active();
        line.clear();
        if stream.read_line(&mut line).await.is_err() {
            return;
        }
        running.began(line.trim_end(), conn.stamp());
        let answer = match line.trim_end().strip_prefix("SLEEP ").map(str::parse) {
            Some(Ok(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "DONE\n"
            }
            _ => line.as_str(),
        };
        let written = stream.write_all(answer.as_bytes()).await;
        conn.mark_idle();
        if written.is_err() || conn.is_server_draining() {
            return;
        }
    }
}

/// The request a connection runs and when it began: what it tells a drain that asks
/// (`Conn::describe_with`). Written once a request, read only by the drain.
#[derive(Default)]
struct Running(Mutex<Option<(String, Stamp)>>);

impl Running {
    fn began(&self, request: &str, at: Stamp) {
        let mut running = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *running = Some((request.to_owned(), at));
    }
}

impl Describe for Running {
    fn describe(&self, now: Stamp, work: &mut Vec<Work>) {
        let running = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((request, began)) = &*running {
            work.push(Work::since(request.clone(), *began, now).protocol("lines"));
        }
    }
}
