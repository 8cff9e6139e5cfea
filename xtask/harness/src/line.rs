//! A blocking client of the line protocol the conformance suite serves: one request per
//! line (`PING`, `SLEEP <ms>`, `PANIC`, anything else echoed), one answer line each. Read
//! timeouts bound every wait, so one client serves every runtime.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a client waits for an answer unless told otherwise.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client read.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A line, without its newline.
    Line(String),
    /// The server closed the connection (end of stream, or reset).
    Closed,
    /// Nothing within the read timeout.
    TimedOut,
}

/// A blocking line-protocol client.
///
/// # Examples
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use graceful_harness::line::{Client, Read};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut client = Client::connect(listener.local_addr().unwrap());
/// let (socket, _) = listener.accept().unwrap();
/// std::thread::spawn(move || {
///     let mut reader = BufReader::new(socket);
///     let mut line = String::new();
///     reader.read_line(&mut line).unwrap();
///     reader.get_mut().write_all(b"PONG\n").unwrap();
/// });
/// assert_eq!(client.request("PING"), "PONG");
/// client.expect_closed();
/// ```
#[derive(Debug)]
pub struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    /// Connects; panics if the server cannot be reached.
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).expect("connect to the server")
    }

    /// Connects, with reads bounded by [`READ_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// The connection failed (refused, for one).
    pub fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(Client {
            stream: BufReader::new(stream),
        })
    }

    /// Bounds the next reads by `timeout`.
    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream
            .get_ref()
            .set_read_timeout(Some(timeout))
            .expect("set the read timeout");
    }

    /// Sends one request line. Errors (a server that closed) are left to the next read.
    pub fn send(&mut self, line: &str) {
        let _ = self
            .stream
            .get_mut()
            .write_all(format!("{line}\n").as_bytes());
    }

    /// Reads one answer line, or what came instead.
    pub fn read(&mut self) -> Read {
        let mut line = String::new();
        match self.stream.read_line(&mut line) {
            Ok(0) => Read::Closed,
            Ok(_) => Read::Line(line.trim_end().to_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Read::TimedOut
            }
            Err(_) => Read::Closed,
        }
    }

    /// Sends a request and returns its answer line; panics if none comes.
    #[track_caller]
    pub fn request(&mut self, line: &str) -> String {
        self.send(line);
        match self.read() {
            Read::Line(answer) => answer,
            other => panic!("no answer to {line:?}: {other:?}"),
        }
    }

    /// Asserts the server closes the connection, with nothing more to read.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        assert_eq!(self.read(), Read::Closed, "the server should close");
    }

    /// Closes the connection from the client's side.
    pub fn hang_up(self) {
        let _ = self.stream.get_ref().shutdown(std::net::Shutdown::Both);
    }
}
