//! The `deploy` setting used directly on smol, as a library user writes it (not through
//! the examples): a tiny server, this very test binary re-run as a child, that answers each
//! connection with its pid. A test-owned `NOTIFY_SOCKET` hears its life; SIGHUP hot
//! restarts it on a socket handed over as `LISTEN_FDS`; under `systemd-socket-activate`,
//! `Server::listen_all` serves two sockets by name and a hot restart hands both over.
//! (graceful-tokio's `tests/deploy.rs` has more cases; the scenarios are graceful-harness's,
//! shared.)

use std::time::Duration;

use futures::io::AsyncWriteExt;
use graceful_harness::Launch;
use graceful_smol::{Conn, Deploy, Server};

/// Set in the child's environment: run the server.
const CHILD: &str = "GRACEFUL_SMOL_DEPLOY_CHILD";
/// Set in the child's environment to `:`-separated names: serve listeners of these names
/// (`Server::listen_all`) rather than one.
const NAMES: &str = "GRACEFUL_SMOL_DEPLOY_NAMES";
const LONG: Duration = Duration::from_secs(30);

/// The server, in three lines of deploy: plays it when re-run as a child.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    if let Ok(names) = std::env::var(NAMES) {
        std::process::exit(serve_named(&names));
    }
    let code = smol::block_on(async {
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

/// The child's server for [`NAMES`]: graceful-harness's, on smol.
fn serve_named(names: &str) -> i32 {
    smol::block_on(async {
        let deploy = Deploy::new().restart_timeout(Duration::from_secs(10));
        let server = Server::builder().deploy(deploy).build().expect("settings");
        graceful_harness::deploy::serve_named(server, names, answer_pid).await
    })
}

/// The server's handler: the pid, and close.
async fn answer_pid(mut stream: smol::net::TcpStream, conn: Conn) {
    conn.mark_active();
    let pid = format!("{}\n", std::process::id());
    let _ = stream.write_all(pid.as_bytes()).await;
    conn.mark_idle();
}

#[test]
fn sighup_hot_restarts_a_library_server() {
    let server = Launch::this_test("child").env(CHILD, "1");
    graceful_harness::deploy::sighup_hot_restarts_a_library_server(server, LONG);
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
