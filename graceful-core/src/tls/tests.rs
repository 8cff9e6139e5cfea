//! The TLS state machine on in-memory pipes and the manual clock: a rustls client pumped by
//! hand, the server's stream polled with a no-op waker. Nothing sleeps; every loop is bounded.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::serve::Listener;
use crate::tls::{
    load_pem, server_config, CertResolver, TlsListener, TlsRuntime, TlsStream, ALPN_H2_HTTP1,
    DEFAULT_HANDSHAKE_TIMEOUT,
};
use crate::{ManualTimer, Timer};

/// One direction of a pipe.
#[derive(Default)]
struct Half {
    data: VecDeque<u8>,
    closed: bool,
    reader: Option<Waker>,
    /// How many bytes may wait unread, if bounded: a socket's send buffer.
    room: Option<usize>,
}

/// One end of an in-memory pipe: futures-io for the server, plain calls for the client.
#[derive(Clone)]
struct End {
    read: Arc<Mutex<Half>>,
    write: Arc<Mutex<Half>>,
}

fn pipe() -> (End, End) {
    let (a, b): (Arc<Mutex<Half>>, Arc<Mutex<Half>>) = (Arc::default(), Arc::default());
    (
        End {
            read: a.clone(),
            write: b.clone(),
        },
        End { read: b, write: a },
    )
}

impl End {
    fn push(&self, bytes: &[u8]) {
        let mut half = self.write.lock().unwrap();
        half.data.extend(bytes);
        if let Some(waker) = half.reader.take() {
            waker.wake();
        }
    }

    fn take(&self) -> Vec<u8> {
        self.read.lock().unwrap().data.drain(..).collect()
    }

    fn close(&self) {
        self.write.lock().unwrap().closed = true;
    }

    fn is_closed_by_peer(&self) -> bool {
        self.read.lock().unwrap().closed
    }
}

impl AsyncRead for End {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut half = self.read.lock().unwrap();
        if half.data.is_empty() {
            if half.closed {
                return Poll::Ready(Ok(0));
            }
            half.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = half.data.len().min(buf.len());
        for (slot, byte) in buf.iter_mut().zip(half.data.drain(..n)) {
            *slot = byte;
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for End {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let free = {
            let half = self.write.lock().unwrap();
            half.room
                .map_or(buf.len(), |room| room.saturating_sub(half.data.len()))
        };
        if free == 0 {
            // The tests poll again by hand: no waker to keep.
            return Poll::Pending;
        }
        let n = free.min(buf.len());
        self.push(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close();
        Poll::Ready(Ok(()))
    }
}

struct Setup {
    listener: TlsListener<()>,
    certs: Arc<CertResolver>,
    timer: ManualTimer,
    roots: Vec<CertificateDer<'static>>,
}

fn made() -> (rustls::sign::CertifiedKey, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = load_pem(
        made.cert.pem().as_bytes(),
        made.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    (key, made.cert.der().clone())
}

fn setup() -> Setup {
    let (key, der) = made();
    let certs = Arc::new(CertResolver::new(key));
    let config = server_config(certs.clone(), ALPN_H2_HTTP1).unwrap();
    Setup {
        listener: TlsListener::new((), config),
        certs,
        timer: ManualTimer::new(),
        roots: vec![der],
    }
}

/// A client: rustls pumped by hand over its end of the pipe.
struct Client {
    tls: ClientConnection,
    end: End,
}

impl Client {
    fn new(roots: &[CertificateDer<'static>], end: End) -> Client {
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root.clone()).unwrap();
        }
        let mut config = ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(store)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let name = ServerName::try_from("localhost").unwrap();
        let tls = ClientConnection::new(Arc::new(config), name).unwrap();
        Client { tls, end }
    }

    /// Sends what rustls has to say; takes in what the server sent.
    fn pump(&mut self) {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut out).unwrap();
        }
        self.end.push(&out);
        let input = self.end.take();
        let mut input = &input[..];
        while !input.is_empty() {
            self.tls.read_tls(&mut input).unwrap();
            self.tls.process_new_packets().unwrap();
        }
    }

    /// The plaintext received so far, and whether close_notify came.
    fn received(&mut self) -> (Vec<u8>, bool) {
        let mut data = Vec::new();
        let closed = match self.tls.reader().read_to_end(&mut data) {
            Ok(_) => true,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => false,
            Err(error) => panic!("client read: {error}"),
        };
        (data, closed)
    }
}

fn poll<T>(future: impl Future<Output = T>) -> Poll<T> {
    pin!(future).poll(&mut Context::from_waker(Waker::noop()))
}

fn poll_handshake(stream: &mut TlsStream<End>) -> Poll<io::Result<()>> {
    poll(std::future::poll_fn(|cx| stream.poll_handshake(cx)))
}

/// Runs client and server until the server's handshake ends (at most 20 rounds).
fn handshake(stream: &mut TlsStream<End>, client: &mut Client) -> io::Result<()> {
    for _ in 0..20 {
        client.pump();
        if let Poll::Ready(done) = poll_handshake(stream) {
            client.pump();
            return done;
        }
    }
    panic!("the handshake did not end in 20 rounds");
}

fn connected(setup: &Setup) -> (TlsStream<End>, Client) {
    let (server, client) = pipe();
    let mut stream = setup.listener.start(server, &setup.timer);
    let mut client = Client::new(&setup.roots, client);
    handshake(&mut stream, &mut client).unwrap();
    (stream, client)
}

/// The first half of a ClientHello.
fn half_hello(roots: &[CertificateDer<'static>]) -> Vec<u8> {
    let (_, end) = pipe();
    let mut client = Client::new(roots, end);
    let mut hello = Vec::new();
    client.tls.write_tls(&mut hello).unwrap();
    hello.truncate(hello.len() / 2);
    hello
}

#[test]
fn a_handshake_negotiates_alpn_is_counted_and_frees_its_state() {
    let setup = setup();
    let (server, client_end) = pipe();
    let mut stream = setup.listener.start(server, &setup.timer);
    let flag = stream.mid_handshake();
    let mut client = Client::new(&setup.roots, client_end);

    assert!(
        poll_handshake(&mut stream).is_pending(),
        "nothing from the client yet"
    );
    assert!(!flag.is_under_way(), "silence is not a handshake under way");
    client.pump(); // the ClientHello
    assert!(
        poll_handshake(&mut stream).is_pending(),
        "waiting for the client's Finished"
    );
    assert!(flag.is_under_way(), "raised once the client spoke");

    handshake(&mut stream, &mut client).unwrap();
    assert!(!flag.is_under_way(), "lowered at the end");
    assert!(!stream.is_handshaking());
    let alpn = stream.connection().and_then(|tls| tls.alpn_protocol());
    assert_eq!(alpn, Some(&b"h2"[..]));
    assert!(!client.tls.is_handshaking());
    let counters = setup.listener.counters();
    assert_eq!((counters.completed(), counters.failed()), (1, 0));
    assert_eq!(setup.timer.next_deadline(), None, "the deadline is dropped");
}

#[test]
fn a_stalled_handshake_ends_at_its_deadline_and_stays_failed() {
    for timeout in [DEFAULT_HANDSHAKE_TIMEOUT, Duration::from_secs(2)] {
        let mut setup = setup();
        setup.listener = setup.listener.handshake_timeout(timeout);
        let (server, client) = pipe();
        let mut stream = setup.listener.start(server, &setup.timer);
        client.push(&half_hello(&setup.roots));
        assert!(poll_handshake(&mut stream).is_pending());
        assert!(stream.mid_handshake().is_under_way(), "the client spoke");

        setup.timer.advance(timeout - Duration::from_millis(1));
        assert!(poll_handshake(&mut stream).is_pending(), "not yet");
        setup.timer.advance(Duration::from_millis(1));
        let Poll::Ready(Err(error)) = poll_handshake(&mut stream) else {
            panic!("the deadline passed");
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(!stream.mid_handshake().is_under_way(), "lowered");
        let counters = setup.listener.counters();
        assert_eq!((counters.timed_out(), counters.failed()), (1, 0));
        // Failed for good: the rest of the hello changes nothing.
        client.push(&[0; 64]);
        let mut buf = [0; 8];
        let read = poll(futures_util::io::AsyncReadExt::read(&mut stream, &mut buf));
        assert!(matches!(read, Poll::Ready(Err(_))));
        assert!(!stream.is_handshaking());
    }
}

#[test]
fn the_deadline_does_not_touch_an_established_connection() {
    let setup = setup();
    let (mut stream, mut client) = connected(&setup);
    setup.timer.advance(DEFAULT_HANDSHAKE_TIMEOUT * 2);
    client.tls.writer().write_all(b"ping").unwrap();
    client.pump();
    let mut buf = [0; 8];
    let read = poll(futures_util::io::AsyncReadExt::read(&mut stream, &mut buf));
    assert!(matches!(read, Poll::Ready(Ok(4))), "{read:?}");
    assert_eq!(&buf[..4], b"ping");
    assert_eq!(setup.listener.counters().timed_out(), 0);
}

#[test]
fn bad_input_fails_the_handshake_and_is_counted() {
    let setup = setup();
    // A plain-HTTP client on the TLS port.
    let (server, client) = pipe();
    let mut stream = setup.listener.start(server, &setup.timer);
    client.push(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    let Poll::Ready(Err(error)) = poll_handshake(&mut stream) else {
        panic!("not TLS");
    };
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    assert!(!client.take().is_empty(), "rustls' alert went out");
    // A client that leaves half way through its hello.
    let (server, client) = pipe();
    let mut stream = setup.listener.start(server, &setup.timer);
    client.push(&half_hello(&setup.roots));
    client.close();
    let Poll::Ready(Err(error)) = poll_handshake(&mut stream) else {
        panic!("the client left");
    };
    assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    let counters = setup.listener.counters();
    assert_eq!((counters.failed(), counters.completed()), (2, 0));
    assert!(!stream.mid_handshake().is_under_way());
}

#[test]
fn close_sends_what_was_written_then_close_notify() {
    let setup = setup();
    let (mut stream, mut client) = connected(&setup);
    let written = poll(std::future::poll_fn(|cx| {
        stream.poll_write_vectored(cx, &[IoSlice::new(b"he"), IoSlice::new(b"llo")])
    }));
    assert!(matches!(written, Poll::Ready(Ok(5))));
    assert!(poll(std::future::poll_fn(|cx| stream.poll_close(cx))).is_ready());
    assert!(client.end.is_closed_by_peer(), "the socket closed after");
    // A write after the close ends at once, whatever rustls makes of it.
    let late = poll(std::future::poll_fn(|cx| {
        stream.poll_write_vectored(cx, &[IoSlice::new(b"late")])
    }));
    assert!(late.is_ready());
    client.pump();
    assert_eq!(client.received(), (b"hello".to_vec(), true));

    // Dropped instead: the data arrives, but no close_notify (the client can tell a cut).
    let (mut stream, mut client) = connected(&setup);
    let written = poll(futures_util::io::AsyncWriteExt::write_all(
        &mut stream,
        b"hi",
    ));
    assert!(matches!(written, Poll::Ready(Ok(()))));
    drop(stream);
    client.pump();
    assert_eq!(client.received(), (b"hi".to_vec(), false));
}

#[test]
fn close_before_the_handshake_writes_nothing() {
    let setup = setup();
    let (server, client) = pipe();
    let mut stream = setup.listener.start(server, &setup.timer);
    assert!(poll(std::future::poll_fn(|cx| stream.poll_close(cx))).is_ready());
    assert!(client.take().is_empty());
    assert!(
        !client.is_closed_by_peer(),
        "the socket closes when dropped"
    );
    assert_eq!(setup.listener.counters().completed(), 0);
}

#[test]
fn a_reload_serves_new_handshakes_only() {
    let mut setup = setup();
    let (new_key, new) = made();
    setup.roots.push(new.clone());
    let (mut before, mut before_client) = connected(&setup);
    setup.certs.set(new_key);
    let (_after, after_client) = connected(&setup);
    let peer = |client: &Client| client.tls.peer_certificates().unwrap()[0].clone();
    assert_eq!(peer(&before_client), setup.roots[0]);
    assert_eq!(peer(&after_client), new);
    // The connection from before still works.
    before_client.tls.writer().write_all(b"ping").unwrap();
    before_client.pump();
    let mut buf = [0; 4];
    let read = poll(futures_util::io::AsyncReadExt::read_exact(
        &mut before,
        &mut buf,
    ));
    assert!(matches!(read, Poll::Ready(Ok(()))));
    assert_eq!(&buf, b"ping");
}

/// A runtime for the listener test: pipes as sockets, the test's clock.
struct Pipes;

thread_local! {
    static CLOCK: ManualTimer = ManualTimer::new();
}

impl TlsRuntime<End> for Pipes {
    type Io = End;
    type Stream = TlsStream<End>;

    fn timer() -> impl Timer {
        CLOCK.with(ManualTimer::clone)
    }
}

/// Hands out the pipes it is given.
struct Queue(VecDeque<End>);

impl Listener<Pipes> for Queue {
    type Io = End;

    async fn accept(&mut self) -> io::Result<End> {
        self.0.pop_front().ok_or(io::ErrorKind::NotConnected.into())
    }

    fn try_accept(&mut self) -> io::Result<Option<End>> {
        Ok(self.0.pop_front())
    }
}

#[test]
fn what_is_queued_at_the_stop_is_taken_through_tls() {
    let setup = setup();
    let ends: VecDeque<End> = (0..2).map(|_| pipe().0).collect();
    let mut listener = TlsListener::new(Queue(ends), setup.listener.config().clone());
    for _ in 0..2 {
        let stream = Listener::<Pipes>::try_accept(&mut listener).unwrap();
        assert!(
            stream.expect("queued").is_handshaking(),
            "its handshake begun"
        );
    }
    assert!(Listener::<Pipes>::try_accept(&mut listener)
        .unwrap()
        .is_none());
}

#[test]
fn accepting_never_waits_for_a_handshake() {
    let setup = setup();
    let ends: VecDeque<End> = (0..3).map(|_| pipe().0).collect();
    let mut listener = TlsListener::new(Queue(ends), setup.listener.config().clone());
    let mut streams = Vec::new();
    for _ in 0..3 {
        // Silent clients, each accepted at once.
        let Poll::Ready(Ok(stream)) = poll(Listener::<Pipes>::accept(&mut listener)) else {
            panic!("accept waited");
        };
        assert!(stream.is_handshaking());
        let flag = <TlsListener<Queue> as Listener<Pipes>>::handshake(&stream);
        assert!(!flag.unwrap().is_under_way());
        streams.push(stream);
    }
    assert_eq!(listener.counters().completed(), 0);
    // The deadline runs on the runtime's clock, from the accept.
    let clock = CLOCK.with(ManualTimer::clone);
    clock.advance(DEFAULT_HANDSHAKE_TIMEOUT);
    for stream in &mut streams {
        let polled = poll_handshake(stream);
        assert!(matches!(polled, Poll::Ready(Err(ref e)) if e.kind() == io::ErrorKind::TimedOut));
    }
    assert_eq!(listener.counters().timed_out(), 3);
}

#[test]
fn the_stream_is_a_few_words_beside_its_socket() {
    // Every future that takes the stream by value holds it: rustls' state (over a
    // kilobyte) must not be inline, nor anything only the handshake needs.
    let words = size_of::<TlsStream<End>>() - size_of::<End>();
    assert!(
        words <= 4 * size_of::<usize>(),
        "{words} bytes beside the socket"
    );
    assert!(size_of::<rustls::ServerConnection>() > 512, "the premise");
}

#[test]
fn a_write_reports_what_the_socket_takes_not_what_rustls_could_buffer() {
    const ROOM: usize = 4096;
    let setup = setup();
    let (mut stream, mut client) = connected(&setup);
    // A peer that reads nothing: the server's socket holds 4 KiB, then takes no more.
    client.end.read.lock().unwrap().room = Some(ROOM);
    let chunk = [7; 16 * 1024];
    let write = |stream: &mut TlsStream<End>| {
        poll(std::future::poll_fn(|cx| {
            stream.poll_write_vectored(cx, &[IoSlice::new(&chunk)])
        }))
    };
    // The socket had room: the whole chunk goes into rustls, and partly out.
    assert!(matches!(write(&mut stream), Poll::Ready(Ok(n)) if n == chunk.len()));
    let mut taken = chunk.len();
    // Its record waits for the socket: rustls takes no more, however often it is asked
    // (before, it took a record's worth each time, up to its 64 KiB).
    for _ in 0..8 {
        assert!(write(&mut stream).is_pending());
    }
    // The peer reads 4 KiB at a time. A whole chunk leaves ciphertext waiting, so the write
    // after it takes no more than the socket has just taken; once that went out whole, the
    // next takes a whole chunk again.
    let mut backed_up = true;
    let mut received = Vec::new();
    for _ in 0..32 {
        client.pump();
        received.extend(client.received().0);
        match write(&mut stream) {
            Poll::Ready(Ok(n)) if backed_up => {
                assert!(0 < n && n <= ROOM, "{n} bytes taken for {ROOM} read");
                backed_up = false;
                taken += n;
            }
            Poll::Ready(Ok(n)) => {
                assert_eq!(n, chunk.len());
                backed_up = true;
                taken += n;
            }
            Poll::Pending => assert!(backed_up, "pending with nothing waiting"),
            Poll::Ready(Err(error)) => panic!("write: {error}"),
        }
    }
    assert!(taken > 2 * chunk.len(), "the peer read: writes went on");
    // Every byte taken arrives, in order.
    client.end.read.lock().unwrap().room = None;
    assert!(poll(std::future::poll_fn(|cx| stream.poll_flush(cx))).is_ready());
    client.pump();
    received.extend(client.received().0);
    assert_eq!(received.len(), taken);
    assert!(received.iter().all(|&byte| byte == 7));
}
