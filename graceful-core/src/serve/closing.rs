//! Closing a listener without resetting a connection.
//!
//! Closing a listening socket resets every connection the kernel queued on it, and the
//! kernel completes handshakes on its own, up to the moment of the close. A client whose
//! handshake completed just before it (after the serve loop's last look at the queue) has
//! sent its request by the time the reset comes, and a balancer may not replay a request it
//! sent: nginx does not retry a POST once it is sent (`proxy_next_upstream`). Caught with
//! a packet capture behind nginx in rolling restarts: the balancer connected 27 µs before
//! the old process closed its listener, its POST arrived, and the close reset it (about one
//! restart in a few hundred, with nginx opening connections to the backends all the time).
//!
//! So on Linux, before its last look at the queue, the serve loop has the kernel drop new
//! SYNs on the listener: a classic BPF socket filter that drops a segment with SYN set and
//! ACK clear (a listener's filter sees the SYNs it would answer, and the ACKs that complete
//! a handshake; `tcp_filter` in the kernel's `tcp_v4_rcv` and `tcp_v6_rcv`). No handshake
//! starts after it; the handshakes already under way complete as before, within a round
//! trip, and the loop takes them for [`HANDSHAKE_LINGER`] before it closes the listener. A
//! client whose SYN was dropped sends it again a second later (the initial retransmission
//! timeout, RFC 6298), finds the port closed (or a new process on it), and is refused
//! before it sent anything, which every balancer retries elsewhere.
//!
//! Only on a socket the server bound itself ([`OwnSockets`]): a filter stays on the socket
//! when the process exits, and a socket that outlives it (one systemd, systemfd or a
//! previous process passed in) would then never complete a handshake again.
//!
//! # Invariants
//!
//! - The filter goes only on a listening socket [`OwnSockets`] recorded, that is one
//!   `Server::listen` bound, never one it inherited or handed over.
//! - Once the filter is on, the loop takes what is queued, lingers, takes it again, and
//!   closes; it never accepts past the listen limit.

use std::time::Duration;

/// How long a stopping loop, once the listener drops new SYNs, keeps taking the
/// connections whose handshakes were under way: a round trip between a server and a
/// balancer in the same data centre is well under a millisecond.
pub(crate) const HANDSHAKE_LINGER: Duration = Duration::from_millis(5);

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::os::fd::{AsFd, BorrowedFd};
    use std::sync::{Mutex, PoisonError};

    use socket2::{SockFilter, SockRef};

    // Classic BPF opcodes (linux/filter.h).
    const LD_B_ABS: u16 = 0x30;
    const ALU_AND_K: u16 = 0x54;
    const JMP_JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    /// The TCP header's flags byte: a TCP socket's filter sees the segment from its TCP
    /// header on.
    const FLAGS: u32 = 13;
    const SYN: u32 = 0x02;
    const ACK: u32 = 0x10;

    /// Drops a segment with SYN set and ACK clear (a new connection); keeps the rest.
    const DROP_SYN: [SockFilter; 5] = [
        SockFilter::new(LD_B_ABS, 0, 0, FLAGS),
        SockFilter::new(ALU_AND_K, 0, 0, SYN | ACK),
        // SYN alone: to the drop, else on to the keep.
        SockFilter::new(JMP_JEQ_K, 1, 0, SYN),
        SockFilter::new(RET_K, 0, 0, u32::MAX),
        SockFilter::new(RET_K, 0, 0, 0),
    ];

    /// The listening sockets a server bound itself, by their kernel cookie (`SO_COOKIE`,
    /// unique for the system's uptime).
    #[derive(Debug, Default)]
    pub(crate) struct OwnSockets(Mutex<Vec<u64>>);

    impl OwnSockets {
        /// Records `socket`, just bound by the server. A socket without a cookie (a kernel
        /// older than 4.12) is left out, and closes as any other.
        #[cfg_attr(not(feature = "deploy"), allow(dead_code))]
        pub(crate) fn record(&self, socket: &impl AsFd) {
            if let Ok(cookie) = SockRef::from(socket).cookie() {
                self.0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(cookie);
            }
        }

        /// Has the kernel drop new SYNs on `socket` if this server bound it. Returns whether
        /// it does.
        pub(crate) fn refuse_handshakes(&self, socket: BorrowedFd<'_>) -> bool {
            let socket = SockRef::from(&socket);
            let Ok(cookie) = socket.cookie() else {
                return false;
            };
            let bound = (self.0.lock())
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&cookie);
            if !bound {
                return false;
            }
            match socket.attach_filter(&DROP_SYN) {
                Ok(()) => true,
                Err(error) => {
                    tracing::debug!(%error, "could not have new connections dropped before the listener closes");
                    false
                }
            }
        }
    }

    /// Attaches the filter to `socket`, whoever bound it: for the tests.
    #[cfg(test)]
    pub(crate) fn attach(socket: &impl AsFd) -> std::io::Result<()> {
        SockRef::from(socket).attach_filter(&DROP_SYN)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    /// Elsewhere than on Linux, no socket is recorded: listeners close as they always did.
    #[derive(Debug, Default)]
    pub(crate) struct OwnSockets;

    impl OwnSockets {
        #[cfg(unix)]
        #[cfg_attr(not(feature = "deploy"), allow(dead_code))]
        pub(crate) fn record(&self, _: &impl std::os::fd::AsFd) {}

        #[cfg(unix)]
        pub(crate) fn refuse_handshakes(&self, _: std::os::fd::BorrowedFd<'_>) -> bool {
            false
        }
    }
}

pub(crate) use imp::OwnSockets;

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::time::Duration;

    use super::*;

    /// A connect that the kernel does not complete within this long was dropped: on
    /// loopback a handshake takes microseconds.
    const DROPPED: Duration = Duration::from_millis(300);

    #[test]
    fn new_connections_are_dropped_and_those_queued_before_are_kept() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut before = TcpStream::connect(addr).unwrap();
        before.write_all(b"ping").unwrap();

        imp::attach(&listener).unwrap();
        let error = TcpStream::connect_timeout(&addr, DROPPED).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");

        let (mut accepted, _) = listener.accept().unwrap();
        let mut ping = [0; 4];
        accepted.read_exact(&mut ping).unwrap();
        assert_eq!(
            &ping, b"ping",
            "the connection queued before the filter works"
        );
        accepted.write_all(b"pong").unwrap();
        before.read_exact(&mut ping).unwrap();
        assert_eq!(&ping, b"pong");
    }

    #[test]
    fn only_the_sockets_the_server_bound_get_the_filter() {
        let own = OwnSockets::default();
        let bound = TcpListener::bind("127.0.0.1:0").unwrap();
        let inherited = TcpListener::bind("127.0.0.1:0").unwrap();
        own.record(&bound);

        assert!(!own.refuse_handshakes(inherited.as_fd()));
        let addr = inherited.local_addr().unwrap();
        TcpStream::connect_timeout(&addr, DROPPED).expect("no filter on a socket not bound");

        assert!(own.refuse_handshakes(bound.as_fd()));
        let addr = bound.local_addr().unwrap();
        assert!(TcpStream::connect_timeout(&addr, DROPPED).is_err());
    }
}
