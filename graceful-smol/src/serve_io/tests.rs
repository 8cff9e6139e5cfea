//! Reads through the TCP shortcut on real loopback sockets, under smol's reactor.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use smol::io::{AsyncRead, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};

use super::{Reads, ServeIo, Shortcut};

/// A served stream (through the shortcut) and its client.
async fn pair() -> (ServeIo<TcpStream>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (served, _) = listener.accept().await.unwrap();
    let io = ServeIo::new(served);
    assert!(
        matches!(io.shortcut, Some(Shortcut::Tcp(_))),
        "a smol TCP stream takes the shortcut"
    );
    (io, client)
}

/// The shortcut's reads of a TCP stream.
fn tcp(io: &ServeIo<TcpStream>) -> &Reads<std::net::TcpStream> {
    match &io.shortcut {
        Some(Shortcut::Tcp(reads)) => reads,
        _ => panic!("not the TCP shortcut"),
    }
}

/// One poll of a read into a buffer of `len` bytes: the bytes, or `None` if pending.
async fn poll_once(io: &mut ServeIo<TcpStream>, len: usize) -> Option<Vec<u8>> {
    let mut storage = vec![0; len];
    poll_fn(|cx| {
        Poll::Ready(match Pin::new(&mut *io).poll_read(cx, &mut storage) {
            Poll::Ready(read) => Some(storage[..read.unwrap()].to_vec()),
            Poll::Pending => None,
        })
    })
    .await
}

/// A read into a buffer of `len` bytes, failing after 10 s (a lost wakeup would hang).
async fn read(io: &mut ServeIo<TcpStream>, len: usize) -> Vec<u8> {
    let mut storage = vec![0; len];
    let read = poll_fn(|cx| {
        let done = Pin::new(&mut *io).poll_read(cx, &mut storage);
        done.map(|read| read.map(|n| storage[..n].to_vec()))
    });
    let bound = async {
        async_io::Timer::after(Duration::from_secs(10)).await;
        panic!("no read within 10 s");
    };
    smol::future::or(read, bound).await.unwrap()
}

#[test]
fn after_a_short_read_the_next_waits_for_the_reactor_then_reads() {
    smol::block_on(async {
        let (mut io, mut client) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert_eq!(read(&mut io, 64).await, b"GET / HTTP/1.1\r\n");
        assert!(tcp(&io).drained, "a short read drains");
        // Drained: no bytes, and the task is registered with the reactor.
        assert_eq!(poll_once(&mut io, 64).await, None);
        client.write_all(b"\r\n").await.unwrap();
        assert_eq!(read(&mut io, 64).await, b"\r\n");
        // The end of the stream comes through as an empty read.
        drop(client);
        assert_eq!(read(&mut io, 64).await, b"");
    });
}

#[test]
fn a_full_read_reads_again_at_once() {
    smol::block_on(async {
        let (mut io, mut client) = pair().await;
        client.write_all(b"12345678").await.unwrap();
        // Bounded wait for all eight bytes to be in the socket: read four, then poll.
        assert_eq!(read(&mut io, 4).await, b"1234");
        assert!(!tcp(&io).drained, "a full read does not drain");
        // Not drained: the second read is a system call, ready in the same poll.
        assert_eq!(poll_once(&mut io, 4).await.as_deref(), Some(&b"5678"[..]));
    });
}

#[test]
fn bytes_that_come_while_drained_are_not_lost() {
    smol::block_on(async {
        let (mut io, mut client) = pair().await;
        client.write_all(b"a").await.unwrap();
        assert_eq!(read(&mut io, 64).await, b"a");
        // Written before the next poll registers: level-triggered interest reports it.
        client.write_all(b"b").await.unwrap();
        assert_eq!(read(&mut io, 64).await, b"b");
    });
}

#[cfg(unix)]
#[test]
fn unix_streams_take_the_shortcut_too() {
    smol::block_on(async {
        let (served, mut client) = smol::net::unix::UnixStream::pair().unwrap();
        let mut io = ServeIo::new(served);
        assert!(matches!(io.shortcut, Some(Shortcut::Unix(_))));
        client.write_all(b"ping").await.unwrap();
        let mut storage = vec![0; 64];
        let read = poll_fn(|cx| {
            let done = Pin::new(&mut io).poll_read(cx, &mut storage);
            done.map(|read| read.map(|n| storage[..n].to_vec()))
        });
        let bound = async {
            async_io::Timer::after(Duration::from_secs(10)).await;
            panic!("no read within 10 s");
        };
        assert_eq!(smol::future::or(read, bound).await.unwrap(), b"ping");
    });
}

#[cfg(unix)]
#[test]
fn other_streams_read_through_their_own_reads() {
    // Any other stream type: an `Async` socket of async-io's own, for one.
    let (served, _client) = std::os::unix::net::UnixStream::pair().unwrap();
    let served = async_io::Async::new(served).unwrap();
    assert!(ServeIo::new(served).shortcut.is_none());
}
