//! What the kernel's TCP table (`/proc/net/tcp`) says of a server on loopback: whether it
//! listens, how many connections it holds, and whether it has accepted a client's
//! connection and read all the client sent.
//!
//! These are the conditions a test waits on instead of sleeping: "the server has the
//! requests in flight" is "it accepted the connections and read every byte of them", seen
//! from outside the server process, whatever the runtime. IPv4 only, like the suites.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use crate::wait_until;

/// `TCP_ESTABLISHED`, as `/proc/net/tcp` writes it.
const ESTABLISHED: u8 = 0x01;
/// `TCP_LISTEN`.
const LISTEN: u8 = 0x0A;

/// One socket of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Socket {
    local: SocketAddrV4,
    remote: SocketAddrV4,
    state: u8,
    /// Bytes received and not yet read by the owner; for a listening socket, the
    /// connections waiting to be accepted.
    unread: u64,
}

/// The IPv4 TCP sockets of this network namespace.
fn table() -> Vec<Socket> {
    let text = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    text.lines().skip(1).filter_map(parse_row).collect()
}

/// `sl local_address rem_address st tx_queue:rx_queue ...`, addresses as `HEX_IP:HEX_PORT`
/// with the IP in the kernel's byte order.
fn parse_row(row: &str) -> Option<Socket> {
    let mut fields = row.split_whitespace().skip(1);
    let local = parse_address(fields.next()?)?;
    let remote = parse_address(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    let (_, rx) = fields.next()?.split_once(':')?;
    let unread = u64::from_str_radix(rx, 16).ok()?;
    Some(Socket {
        local,
        remote,
        state,
        unread,
    })
}

fn parse_address(field: &str) -> Option<SocketAddrV4> {
    let (ip, port) = field.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port))
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(addr) => addr,
        SocketAddr::V6(addr) => panic!("the TCP table is read for IPv4 only, not {addr}"),
    }
}

/// Whether a socket listens on `server` (a server that stopped accepting has closed it, and
/// new connections are refused).
///
/// # Examples
///
/// ```
/// use graceful_harness::tcp;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// assert!(tcp::is_listening(addr));
/// drop(listener);
/// assert!(!tcp::is_listening(addr));
/// ```
pub fn is_listening(server: SocketAddr) -> bool {
    let server = v4(server);
    table()
        .iter()
        .any(|socket| socket.state == LISTEN && socket.local == server)
}

/// How many established connections the server side of `server` holds (accepted or
/// waiting to be), whoever their clients are: a load generator's, for instance.
///
/// # Examples
///
/// ```
/// use std::net::{TcpListener, TcpStream};
/// use graceful_harness::tcp;
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let _client = TcpStream::connect(addr).unwrap();
/// assert_eq!(tcp::connections_to(addr), 1);
/// ```
pub fn connections_to(server: SocketAddr) -> usize {
    let server = v4(server);
    table()
        .iter()
        .filter(|socket| socket.state == ESTABLISHED && socket.local == server)
        .count()
}

/// Whether the server listening on `server` has accepted the connection of each client
/// (given by the client's own address) and read every byte sent on it; no connection waits
/// in its accept queue. A request sent on such a connection is in the server's hands.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
/// use graceful_harness::tcp;
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let mut client = TcpStream::connect(addr).unwrap();
/// client.write_all(b"ping").unwrap();
/// let me = [client.local_addr().unwrap()];
/// assert!(!tcp::taken(addr, &me), "waiting in the accept queue");
/// let (mut accepted, _) = listener.accept().unwrap();
/// let mut ping = [0; 4];
/// accepted.read_exact(&mut ping).unwrap();
/// assert!(tcp::taken(addr, &me));
/// ```
pub fn taken(server: SocketAddr, clients: &[SocketAddr]) -> bool {
    let server = v4(server);
    let table = table();
    let queue_empty = table
        .iter()
        .filter(|socket| socket.state == LISTEN && socket.local == server)
        .all(|listener| listener.unread == 0);
    queue_empty
        && clients.iter().all(|&client| {
            let client = v4(client);
            table.iter().any(|socket| {
                socket.local == server && socket.remote == client && socket.unread == 0
            })
        })
}

/// Whether the server listening on `server` has read every byte sent on each of its
/// connections, whoever their clients are, and none waits in its accept queue. (For
/// clients the test does not hold, a load generator's or curl's, whose addresses it does
/// not know; with its own, [`taken`] says more.)
pub fn quiet(server: SocketAddr) -> bool {
    let server = v4(server);
    table()
        .iter()
        .filter(|socket| socket.local == server && matches!(socket.state, ESTABLISHED | LISTEN))
        .all(|socket| socket.unread == 0)
}

/// The bytes that arrived on the connection of `client` (the client's own address) to
/// `server` and that the client has not read yet; `None` if there is no such connection.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use std::net::{TcpListener, TcpStream};
/// use graceful_harness::tcp;
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let client = TcpStream::connect(addr).unwrap();
/// let (mut accepted, _) = listener.accept().unwrap();
/// accepted.write_all(b"hello").unwrap();
/// let me = client.local_addr().unwrap();
/// graceful_harness::wait_until("the bytes", std::time::Duration::from_secs(5), || {
///     tcp::unread(me, addr) == Some(5)
/// });
/// ```
pub fn unread(client: SocketAddr, server: SocketAddr) -> Option<u64> {
    let (client, server) = (v4(client), v4(server));
    table()
        .iter()
        .find(|socket| socket.local == client && socket.remote == server)
        .map(|socket| socket.unread)
}

/// Waits until the server on `server` has [`taken`] every one of `clients`: requests sent
/// on them are in its hands.
#[track_caller]
pub fn wait_taken(server: SocketAddr, clients: &[SocketAddr], bound: Duration) {
    let what = format!(
        "the server on {server} to accept and read the {} connections",
        clients.len()
    );
    wait_until(&what, bound, || taken(server, clients));
}

/// Waits until nothing listens on `server` any more: a server that began to drain has
/// closed its listener.
#[track_caller]
pub fn wait_not_listening(server: SocketAddr, bound: Duration) {
    let what = format!("the listener on {server} to close");
    wait_until(&what, bound, || !is_listening(server));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_in_the_kernels_byte_order() {
        let row = "   1: 0100007F:1F90 0100007F:D431 01 00000000:0000000C 00:00000000 00000000  \
                   1000        0 1234 1 0000000000000000 20 4 30 10 -1";
        let socket = parse_row(row).expect("a row");
        let loopback = Ipv4Addr::LOCALHOST;
        assert_eq!(socket.local, SocketAddrV4::new(loopback, 8080));
        assert_eq!(socket.remote, SocketAddrV4::new(loopback, 54321));
        assert_eq!((socket.state, socket.unread), (ESTABLISHED, 12));
    }
}
