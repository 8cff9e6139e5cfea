//! The `deploy` setting used directly, as a library user writes it (not through the
//! examples): a tiny server, this very test binary re-run as a child, that answers each
//! connection with its pid. A test-owned `NOTIFY_SOCKET` hears its life; SIGHUP hot
//! restarts it; a socket handed over as `LISTEN_FDS` is served; a new process that never
//! says ready is given up at the restart timeout. The hot restart scenario is
//! graceful-harness's, shared with graceful-smol. Under the real `systemd-socket-activate`,
//! `Server::listen_all` serves two sockets by their `LISTEN_FDNAMES` names, a hot restart
//! hands both over, and sockets and names that do not match are refused.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use graceful_harness::deploy::pid_at;
use graceful_harness::process::hold_spawns;
use graceful_harness::Launch;
use graceful_tokio::{Conn, Deploy, Server};
use tokio::io::AsyncWriteExt;

/// Set in the child's environment: run the server.
const CHILD: &str = "GRACEFUL_TOKIO_DEPLOY_CHILD";
/// Set in the child's environment to the test's pid: a hot restart's new process (whose
/// restart parent is another) never says ready.
const HANG_WHEN_RESTARTED: &str = "GRACEFUL_TOKIO_DEPLOY_HANG";
/// Set in the child's environment to `:`-separated names: serve listeners of these names
/// (`Server::listen_all`) rather than one.
const NAMES: &str = "GRACEFUL_TOKIO_DEPLOY_NAMES";
const LONG: Duration = Duration::from_secs(30);

/// The server, in three lines of deploy: plays it when re-run as a child.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let parent = std::env::var("GRACEFUL_RESTART_PARENT").ok();
    if std::env::var(HANG_WHEN_RESTARTED).is_ok_and(|test| Some(test) != parent) {
        thread::sleep(LONG * 2); // never ready: the parent kills it at its timeout
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    if let Ok(names) = std::env::var(NAMES) {
        std::process::exit(serve_named(&names));
    }
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let code = runtime.block_on(async {
        let deploy = Deploy::new().restart_timeout(Duration::from_secs(2));
        let server = Server::builder().deploy(deploy).build().expect("settings");
        let listener = match server.listen("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("cannot listen: {error}");
                return 1;
            }
        };
        let serving = server.serve(listener, answer_pid);
        println!("listening"); // the listener is bound or adopted; serving starts now
        let report = serving.await;
        eprintln!("report: {report}");
        0
    });
    std::process::exit(code);
}

/// The child's server for [`NAMES`]: graceful-harness's, on tokio.
fn serve_named(names: &str) -> i32 {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let deploy = Deploy::new().restart_timeout(Duration::from_secs(10));
        let server = Server::builder().deploy(deploy).build().expect("settings");
        graceful_harness::deploy::serve_named(server, names, answer_pid).await
    })
}

/// The server's handler: the pid, and close.
async fn answer_pid(mut stream: tokio::net::TcpStream, conn: Conn) {
    conn.mark_active();
    let pid = format!("{}\n", std::process::id());
    let _ = stream.write_all(pid.as_bytes()).await;
    conn.mark_idle();
}

/// This binary, playing the server.
fn server() -> Launch {
    Launch::this_test("child").env(CHILD, "1")
}

/// Waits for the server's `listening` line.
fn listening(server: &mut graceful_harness::Process) {
    server.next_stdout("a `listening` line", LONG, |line| {
        line.ends_with("listening").then_some(())
    });
}

#[test]
fn sighup_hot_restarts_a_library_server() {
    graceful_harness::deploy::sighup_hot_restarts_a_library_server(server(), LONG);
}

#[test]
fn a_new_process_that_is_never_ready_is_given_up_at_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = server()
        .env("LISTEN_FDS", "1")
        .env("GRACEFUL_RESTART_PARENT", std::process::id().to_string())
        .env(HANG_WHEN_RESTARTED, std::process::id().to_string())
        .fd(3, listener)
        .spawn();
    listening(&mut server);
    let old = server.id();
    let sighup = Instant::now();
    server.hangup();
    server.wait_stderr(
        "hot restart failed: the new process was not ready within 2s",
        LONG,
    );
    let waited = sighup.elapsed();
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert_eq!(pid_at(addr, LONG), old, "the old process serves on");
    server.terminate();
    let (_, status) = server.wait_exit(LONG);
    assert_eq!(status.code(), Some(0), "{:#?}", server.stderr());
}

/// An inherited socket (systemd's, which outlives the server) is left as it was when the
/// server stops: the filter that drops new SYNs before the close goes only on a socket the
/// server bound, so the socket still completes handshakes for the next process.
#[test]
fn an_inherited_socket_still_completes_handshakes_after_the_server_stops() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = server()
        .env("LISTEN_FDS", "1")
        .env("GRACEFUL_RESTART_PARENT", std::process::id().to_string())
        .fd(3, listener.try_clone().unwrap())
        .spawn();
    listening(&mut server);
    server.terminate();
    let (_, status) = server.wait_exit(LONG);
    assert_eq!(status.code(), Some(0), "{:#?}", server.stderr());
    TcpStream::connect_timeout(&addr, graceful_harness::racing::DROPPED)
        .expect("the socket systemd holds completes a handshake");
    assert!(listener.accept().is_ok());
}

/// `LISTEN_FDS` naming a UDP socket: a clear error from `Server::listen`, no serving.
#[test]
fn a_socket_of_the_wrong_type_is_refused() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = server()
        .env("LISTEN_FDS", "1")
        .env("GRACEFUL_RESTART_PARENT", std::process::id().to_string())
        .fd(3, udp)
        .spawn();
    let (_, status) = server.wait_exit(LONG);
    assert_eq!(status.code(), Some(1));
    server.wait_stderr(
        "cannot listen: inherited descriptor 3 (LISTEN_FDS) is not a TCP",
        LONG,
    );
}

/// `Server::listen` outside a tokio runtime: an error, and nothing kept: no copy of the
/// socket left listening (the hot restart's), and a later call inside the runtime works.
#[test]
fn a_listen_the_runtime_refuses_keeps_nothing() {
    // 127.0.0.2: no other test of this binary binds or connects there. No child starts
    // meanwhile: until its `exec` it would hold a copy of every socket of this process.
    let forking = hold_spawns();
    let addr = TcpListener::bind("127.0.0.2:0")
        .and_then(|probe| probe.local_addr())
        .unwrap();
    let server = Server::builder().deploy(Deploy::new()).build().unwrap();
    server.listen(addr).expect_err("no tokio runtime: refused");
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(refused.is_err(), "nobody may listen on {addr}: {refused:?}");
    drop(forking);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(async { server.listen(addr) });
    assert_eq!(listener.unwrap().local_addr().unwrap(), addr);
}

#[test]
fn two_named_sockets_are_served_by_name_and_handed_over_together() {
    graceful_harness::deploy::named_sockets_are_served_and_handed_over_together(
        "child",
        &[(CHILD, "1")],
        NAMES,
        LONG,
    );
}

#[test]
fn sockets_and_names_that_do_not_match_are_refused() {
    graceful_harness::deploy::sockets_and_names_that_do_not_match_are_refused(
        "child",
        &[(CHILD, "1")],
        NAMES,
        LONG,
    );
}
