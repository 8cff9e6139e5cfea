//! The `deploy` setting used directly, as a library user writes it (not through the
//! examples): a tiny server, this very test binary re-run as a child, that answers each
//! connection with its pid. A test-owned `NOTIFY_SOCKET` hears its life; SIGHUP hot
//! restarts it; a socket handed over as `LISTEN_FDS` is served; a new process that never
//! says ready is given up at the restart timeout. The hot restart scenario is
//! graceful-harness's, shared with graceful-smol. Under the real `systemd-socket-activate`,
//! `Server::listen_all` serves two sockets by their `LISTEN_FDNAMES` names, a hot restart
//! hands both over, and sockets and names that do not match are refused.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use graceful_harness::deploy::{pid_at, NotifySocket};
use graceful_harness::process::{hold_spawns, stop_pid};
use graceful_harness::{Launch, Process};
use graceful_tokio::{graceful_core, Conn, Deploy, Server};
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

/// The child's server for [`NAMES`]: `Server::listen_all`, each listener added to the one
/// server and answering with the pid. Prints what the adoption left in the environment and what a second adoption takes.
fn serve_named(names: &str) -> i32 {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let deploy = Deploy::new().restart_timeout(Duration::from_secs(10));
        let server = Server::builder().deploy(deploy).build().expect("settings");
        let wanted = names.split(':').map(|name| (name, "127.0.0.1:0"));
        let listeners = match server.listen_all(wanted) {
            Ok(listeners) => listeners,
            Err(error) => {
                eprintln!("cannot listen: {error}");
                return 1;
            }
        };
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        println!(
            "environment: LISTEN_FDS={} LISTEN_PID={} LISTEN_FDNAMES={} pid={}",
            var("LISTEN_FDS"),
            var("LISTEN_PID"),
            var("LISTEN_FDNAMES"),
            std::process::id()
        );
        let again = graceful_core::deploy::adopt_tcp_listeners().map(|a| a.listeners.len());
        println!("adopted again: {again:?}");
        let mut server = server;
        for (name, listener) in names.split(':').zip(listeners) {
            server = server.add(name, listener, answer_pid);
        }
        let serving = server.run();
        println!("listening");
        let report = serving.await;
        eprintln!("report: {report}");
        0
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

/// A free address on 127.0.0.3, where no other test of this binary binds or connects.
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.3:0")
        .and_then(|probe| probe.local_addr())
        .unwrap()
}

/// This binary as the server of `names`, under `systemd-socket-activate` listening on
/// `addrs` with `--fdname=fdnames`; returns once it listens (the server itself starts at
/// the first connection, as the tool's default).
fn socket_activated(
    addrs: &[SocketAddr],
    fdnames: &str,
    names: &str,
    notify: &NotifySocket,
) -> Process {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut launch = Launch::program("systemd-socket-activate");
    for addr in addrs {
        launch = launch.arg("-l").arg(addr.to_string());
    }
    // The tool passes on none of its environment but what `--setenv` says.
    let server = launch
        .arg(format!("--fdname={fdnames}"))
        .arg(format!("--setenv={CHILD}=1"))
        .arg(format!("--setenv={NAMES}={names}"))
        .arg(format!(
            "--setenv=NOTIFY_SOCKET={}",
            notify.path().display()
        ))
        .arg(exe)
        .args(["child", "--exact", "--nocapture", "--test-threads", "1"])
        .spawn();
    let last = addrs.len() + 2;
    server.wait_stderr(
        &format!("Listening on {} as {last}", addrs[addrs.len() - 1]),
        LONG,
    );
    server
}

/// Two sockets named `http` and `admin` by the service manager: `Server::listen_all` serves
/// each by its name, edits no environment variable, and a second adoption takes nothing;
/// a hot restart hands both over with their names, and the new process finds them.
#[test]
fn two_named_sockets_are_served_by_name_and_handed_over_together() {
    let (http, admin) = (free_address(), free_address());
    // The names in another order than the sockets: each takes its own.
    let notify = NotifySocket::bind("named");
    let mut server = socket_activated(&[http, admin], "http:admin", "admin:http", &notify);
    let old = server.id(); // the tool `exec`s the server: one pid
    assert_eq!(
        pid_at(http, LONG),
        old,
        "the first connection starts the server"
    );
    assert_eq!(pid_at(admin, LONG), old);
    let environment =
        format!("environment: LISTEN_FDS=2 LISTEN_PID={old} LISTEN_FDNAMES=http:admin pid={old}");
    server.next_stdout("the environment, untouched", LONG, |line| {
        line.ends_with(&environment).then_some(())
    });
    server.next_stdout("a second adoption", LONG, |line| {
        (line == "adopted again: Ok(0)").then_some(())
    });
    // The service manager hears what the server listens on, then that it is ready.
    let status = format!("STATUS=serving admin on {admin}, http on {http}");
    let at = notify.wait_line(&status, LONG, |line| line == status);
    let ready = notify.wait_line("READY=1", LONG, |line| line == "READY=1");
    assert_eq!(ready, at + 1, "{:#?}", notify.lines());

    server.hangup();
    let (_, status) = server.wait_exit(LONG);
    assert_eq!(status.code(), Some(0), "{:#?}", server.stderr());
    server.wait_stderr("hot restart: process", LONG);
    // One server, one drain: its report counts each listener.
    let report = server.wait_stderr("report: ", LONG);
    assert!(report.contains("; by listener: admin: "), "{report}");
    assert!(report.contains(", http: "), "{report}");
    let new = pid_at(http, LONG);
    server.owns(new);
    assert_ne!(new, old);
    assert_eq!(pid_at(admin, LONG), new, "admin was handed over too");
    // The new process prints to the same pipes: it found both by name, and its LISTEN_PID
    // is its own.
    let environment =
        format!("environment: LISTEN_FDS=2 LISTEN_PID={new} LISTEN_FDNAMES=admin:http pid={new}");
    server.next_stdout("the new process's environment", LONG, |line| {
        line.ends_with(&environment).then_some(())
    });
    stop_pid(new, LONG);
    for addr in [http, admin] {
        assert!(
            TcpStream::connect(addr).is_err(),
            "{addr} closed with its last server"
        );
    }
}

/// Inherited sockets and names that do not match (an unnamed socket no name claims, a
/// name no socket has): the server says what is wrong, exits 1, and leaves nothing
/// listening.
#[test]
fn sockets_and_names_that_do_not_match_are_refused() {
    let cases = [
        (
            3,
            "http:admin",
            "http:admin",
            "no listener claims inherited fd 5 unnamed; LISTEN_FDS passes fd 3 \"http\", \
             fd 4 \"admin\", fd 5 unnamed",
        ),
        (
            1,
            "http",
            "http:admin",
            "no inherited socket is named \"admin\"",
        ),
    ];
    for (sockets, fdnames, names, message) in cases {
        let addrs: Vec<SocketAddr> = (0..sockets).map(|_| free_address()).collect();
        let notify = NotifySocket::bind("unmatched");
        let server = socket_activated(&addrs, fdnames, names, &notify);
        let starts = TcpStream::connect(addrs[0]).expect("the tool listens");
        let (_, status) = server.wait_exit(LONG);
        assert_eq!(status.code(), Some(1), "{names}: {:#?}", server.stderr());
        server.wait_stderr(&format!("cannot listen: {message}"), LONG);
        drop(starts);
        assert_eq!(notify.count("READY=1"), 0, "never ready");
        for addr in &addrs {
            assert!(
                TcpStream::connect(addr).is_err(),
                "{names}: nothing may listen on {addr}"
            );
        }
    }
}
