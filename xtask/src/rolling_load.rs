//! The POST load of `cargo xtask rolling`: keep-alive HTTP/1.1 clients in a loop through the
//! balancer, counting every request from the moment it is sent to how it ended.
//!
//! Why this and not wrk: wrk counts the responses it completed and its socket errors
//! (connect, read, write, timeout), but not the requests it sent that got no response (a
//! read error does not say whether a request was on the wire), and it tells statuses apart
//! only as "non-2xx" unless a Lua `response` callback runs for every response, which slows
//! it several times over. Here every request sent ends in exactly one count: a status, or
//! a write error, a close before the response (read), a response cut short (truncated), a
//! malformed one, or no response within [`IO_BOUND`] (timeout).
//!
//! # Invariants
//!
//! - `sent` is the sum of the other counts but `connect`: each request is counted once
//!   when it is written and once when it ends.
//! - A client stops only between requests, so stopping the load abandons none; every wait
//!   is bounded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::AddAssign;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::client::{Client, Error};

/// How long a connect or a response may take.
pub(crate) const IO_BOUND: Duration = Duration::from_secs(10);

/// The request every client sends: a form POST, which a balancer may not replay.
const REQUEST: &[u8] = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\
    Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nhello=world";

/// What the clients saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub sent: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Connections to the balancer that failed (no request was sent on them).
    pub connect: u64,
    pub write: u64,
    pub read: u64,
    pub truncated: u64,
    pub malformed: u64,
    pub timeout: u64,
}

impl Counts {
    /// Requests that did not get a 200.
    pub(crate) fn failed(&self) -> u64 {
        self.sent - self.statuses.get(&200).copied().unwrap_or(0)
    }

    /// Every request sent has exactly one outcome.
    pub(crate) fn adds_up(&self) -> bool {
        let ended: u64 = self.statuses.values().sum::<u64>()
            + self.write
            + self.read
            + self.truncated
            + self.malformed
            + self.timeout;
        ended == self.sent
    }
}

impl AddAssign<&Counts> for Counts {
    fn add_assign(&mut self, other: &Counts) {
        self.sent += other.sent;
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        self.connect += other.connect;
        self.write += other.write;
        self.read += other.read;
        self.truncated += other.truncated;
        self.malformed += other.malformed;
        self.timeout += other.timeout;
    }
}

/// A running load. [`stop`](Load::stop) ends it and sums the counts.
#[derive(Debug)]
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    clients: JoinSet<Counts>,
}

impl Load {
    /// Starts `connections` clients against `addr` on `rt`.
    pub(crate) fn start(rt: &Runtime, addr: SocketAddr, connections: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = JoinSet::new();
        for _ in 0..connections {
            clients.spawn_on(client(addr, stop.clone()), rt.handle());
        }
        Load { stop, clients }
    }

    /// Stops every client after its request in flight, and sums what they saw.
    pub(crate) fn stop(mut self, rt: &Runtime) -> Result<Counts, String> {
        self.stop.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + IO_BOUND * 2;
        rt.block_on(async {
            let mut total = Counts::default();
            while let Some(joined) = tokio::time::timeout_at(deadline, self.clients.join_next())
                .await
                .map_err(|_| "the load's clients did not stop in time".to_string())?
            {
                total += &joined.map_err(|err| format!("a load client failed: {err}"))?;
            }
            Ok(total)
        })
    }
}

/// One client: POST in a loop, reconnecting after `Connection: close` or an error.
async fn client(addr: SocketAddr, stop: Arc<AtomicBool>) -> Counts {
    let mut counts = Counts::default();
    'connect: while !stop.load(Ordering::SeqCst) {
        let mut client = match tokio::time::timeout(IO_BOUND, Client::connect(addr)).await {
            Ok(Ok(client)) => client,
            _ => {
                counts.connect += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while !stop.load(Ordering::SeqCst) {
            counts.sent += 1;
            match tokio::time::timeout(IO_BOUND, client.request(REQUEST)).await {
                Ok(Ok(response)) => {
                    *counts.statuses.entry(response.status).or_default() += 1;
                    if response.close {
                        continue 'connect;
                    }
                    continue;
                }
                Ok(Err(Error::WriteFailed)) => counts.write += 1,
                Ok(Err(Error::Closed | Error::Io(_))) => counts.read += 1,
                Ok(Err(Error::Truncated)) => counts.truncated += 1,
                Ok(Err(Error::Malformed(_))) => counts.malformed += 1,
                Err(_) => counts.timeout += 1,
            }
            continue 'connect;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_say_what_failed() {
        let mut counts = Counts {
            sent: 5,
            statuses: BTreeMap::from([(200, 3), (502, 1)]),
            read: 1,
            ..Counts::default()
        };
        assert!(counts.adds_up());
        assert_eq!(counts.failed(), 2);
        counts += &Counts {
            sent: 1,
            timeout: 1,
            connect: 4,
            ..Counts::default()
        };
        assert!(counts.adds_up());
        assert_eq!((counts.failed(), counts.connect), (3, 4));
        counts.sent += 1;
        assert!(!counts.adds_up(), "a request without an outcome");
    }
}
