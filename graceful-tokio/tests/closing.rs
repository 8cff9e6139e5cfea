//! A listener the server bound itself closes without resetting a connection: one whose
//! handshake completes at the very moment the stopping loop last looks at the kernel's
//! queue (a balancer connecting as the server stops) is never reset after its request.

#![cfg(target_os = "linux")]

use graceful_harness::racing::{Racer, Racing};
use graceful_tokio::{Conn, Outcome, Server};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Answers one line with `pong`.
async fn pong(stream: TcpStream, conn: Conn) {
    let mut stream = BufReader::new(stream);
    if stream
        .read_line(&mut String::new())
        .await
        .is_ok_and(|n| n > 0)
    {
        conn.mark_active();
        let _ = stream.get_mut().write_all(b"pong\n").await;
        conn.mark_idle();
    }
}

#[test]
fn a_connection_completed_as_the_listener_closes_is_never_reset_after_its_request() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = Server::builder().signals(false).build().unwrap();
    let racer = Racer::default();
    let report = rt.block_on(async {
        let listener = server.listen("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Stopped before it serves: the loop's first look at the queue is its last.
        server.shutdown().stop();
        let racing = Racing::new(listener, addr, racer.clone());
        server.serve(racing, pong).await
    });
    assert_eq!(report.outcome, Outcome::Drained);
    racer.assert_not_reset();
}
