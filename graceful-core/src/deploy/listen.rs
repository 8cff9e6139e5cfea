//! The sockets [`Server::listen`] and [`Server::listen_all`] serve: the inherited ones
//! matched to what was asked for ([`claim`](super::claim)), or the addresses bound.
//!
//! # Invariants
//!
//! - All or nothing: on an error every socket bound so far is dropped (nothing is left
//!   listening), and the inherited sockets are left where they were when the names do not
//!   match, so that a later call may try again.
//! - A socket bound here is recorded in [`OwnSockets`] (the serve loop then closes it
//!   without resetting a connection), once all are bound; an inherited one never is.
//!
//! [`Server::listen`]: crate::Server::listen
//! [`Server::listen_all`]: crate::Server::listen_all

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use super::claim::{claim, claim_one, Mismatch};
use crate::serve::OwnSockets;

/// The name a hot restart hands a socket over with when `listen` bound it.
const UNNAMED: &str = "graceful";

/// An inherited socket: its `LISTEN_FDNAMES` name, if any, and the listener.
pub(crate) type Inherited = (Option<String>, TcpListener);

/// `listen`'s socket: the one inherited, whatever its name, else `addr` bound. Takes from
/// `inherited` only on success.
pub(crate) fn one(
    inherited: &mut Vec<Inherited>,
    addr: impl ToSocketAddrs,
    own: &OwnSockets,
) -> io::Result<(String, TcpListener)> {
    match claim_one(&names(inherited)) {
        Ok(Some(_)) => match inherited.pop() {
            Some((name, listener)) => Ok((name.unwrap_or_default(), listener)),
            None => Err(io::Error::other("the inherited socket vanished")),
        },
        Ok(None) => {
            let listener = bind(addr)?;
            own.record(&listener);
            Ok((UNNAMED.to_owned(), listener))
        }
        Err(mismatch) => Err(mismatch.into_error(&names(inherited))),
    }
}

/// `listen_all`'s sockets, in the order of `wanted`: with sockets inherited, the one of
/// each name; else each address bound. Takes from `inherited` only on success.
pub(crate) fn named<A: ToSocketAddrs>(
    inherited: &mut Vec<Inherited>,
    wanted: Vec<(String, A)>,
    own: &OwnSockets,
) -> io::Result<Vec<(String, TcpListener)>> {
    if inherited.is_empty() {
        return bind_all(wanted, own);
    }
    let wanted: Vec<String> = wanted.into_iter().map(|(name, _)| name).collect();
    let asked: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let claims = claim(&asked, &names(inherited))
        .map_err(|mismatch| mismatch.into_error(&names(inherited)))?;
    let mut slots: Vec<Option<TcpListener>> = std::mem::take(inherited)
        .into_iter()
        .map(|(_, listener)| Some(listener))
        .collect();
    let mut sockets = Vec::with_capacity(claims.len());
    for (name, index) in wanted.into_iter().zip(claims) {
        let listener = slots.get_mut(index).and_then(Option::take);
        let listener =
            listener.ok_or_else(|| io::Error::other("an inherited socket claimed twice"))?;
        sockets.push((name, listener));
    }
    Ok(sockets)
}

/// Binds each address of `wanted`, in order; records them in `own` once all are bound.
pub(crate) fn bind_all<A: ToSocketAddrs>(
    wanted: Vec<(String, A)>,
    own: &OwnSockets,
) -> io::Result<Vec<(String, TcpListener)>> {
    let names: Vec<&str> = wanted.iter().map(|(name, _)| name.as_str()).collect();
    super::claim::distinct(&names).map_err(|mismatch| mismatch.into_error(&[]))?;
    if wanted.is_empty() {
        return Err(Mismatch::NoListener.into_error(&[]));
    }
    let mut bound: Vec<(String, TcpListener)> = Vec::with_capacity(wanted.len());
    for (name, addr) in wanted {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|error| io::Error::new(error.kind(), format!("{name:?}: {error}")))?
            .collect();
        match bind(&addrs[..]) {
            Ok(listener) => bound.push((name, listener)),
            Err(error) => {
                let at = addrs.iter().map(ToString::to_string).collect::<Vec<_>>();
                let holder = bound.iter().find(|(_, listener)| {
                    (listener.local_addr()).is_ok_and(|local| addrs.contains(&local))
                });
                let message = match holder {
                    Some((holder, _)) => format!(
                        "cannot bind {name:?} to {}: {error} ({holder:?} is bound there)",
                        at.join(", ")
                    ),
                    None => format!("cannot bind {name:?} to {}: {error}", at.join(", ")),
                };
                return Err(io::Error::new(error.kind(), message));
            }
        }
    }
    for (_, listener) in &bound {
        own.record(listener);
    }
    Ok(bound)
}

fn names(inherited: &[Inherited]) -> Vec<Option<&str>> {
    inherited.iter().map(|(name, _)| name.as_deref()).collect()
}

/// Binds `addr` as tokio's `TcpListener::bind` does (each resolved address in turn,
/// `SO_REUSEADDR`, a backlog of 1024, where std's is 128), non-blocking.
pub(crate) fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        let bound = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .and_then(|socket| {
                socket.set_reuse_address(true)?;
                socket.set_nonblocking(true)?;
                socket.bind(&addr.into())?;
                socket.listen(1024)?;
                Ok(socket)
            });
        match bound {
            Ok(socket) => return Ok(socket.into()),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").unwrap()
    }

    #[test]
    fn bind_listens_non_blocking_and_refuses_a_taken_port() {
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(socket2::SockRef::from(&listener).is_listener().unwrap());
        assert_eq!(
            listener.accept().map(drop).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(bind(addr).is_err(), "the port is taken");
        assert!(bind("definitely not an address").is_err());
    }

    #[test]
    fn bind_all_binds_each_or_none() {
        let own = OwnSockets::default();
        let bound = bind_all(
            vec![
                ("http".into(), "127.0.0.1:0"),
                ("admin".into(), "127.0.0.1:0"),
            ],
            &own,
        )
        .unwrap();
        let names: Vec<&str> = bound.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["http", "admin"]);

        // The same address twice: the message says which name holds it, and the first
        // socket is closed again.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|probe| probe.local_addr())
            .unwrap();
        let error =
            bind_all(vec![("http".into(), addr), ("admin".into(), addr)], &own).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot bind \"admin\" to {addr}: "))
                && error.to_string().ends_with("(\"http\" is bound there)"),
            "{error}"
        );
        assert!(bind(addr).is_ok(), "nothing is left listening on {addr}");

        let error = bind_all(vec![("a".into(), addr), ("a".into(), addr)], &own).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Server::listen_all was given the name \"a\" twice"
        );
        let none: Vec<(String, SocketAddr)> = Vec::new();
        assert!(bind_all(none, &own).is_err());
    }

    #[test]
    fn named_takes_the_inherited_sockets_by_name_or_leaves_them_all() {
        let own = OwnSockets::default();
        let (http, admin) = (listener(), listener());
        let addrs = (http.local_addr().unwrap(), admin.local_addr().unwrap());
        let mut inherited = vec![
            (Some("http".to_owned()), http),
            (Some("admin".to_owned()), admin),
        ];

        // A missing name: an error, and the sockets are still there for a later call.
        let wanted = vec![
            ("http".to_owned(), "127.0.0.1:0"),
            ("metrics".to_owned(), "127.0.0.1:0"),
        ];
        let error = named(&mut inherited, wanted, &own).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("\"metrics\""), "{error}");
        assert_eq!(inherited.len(), 2);

        // The addresses are not bound (nor even resolved) when sockets are inherited.
        let wanted = vec![
            ("admin".to_owned(), "not an address"),
            ("http".to_owned(), "x"),
        ];
        let sockets = named(&mut inherited, wanted, &own).unwrap();
        assert!(inherited.is_empty());
        let got: Vec<(&str, SocketAddr)> = sockets
            .iter()
            .map(|(name, listener)| (name.as_str(), listener.local_addr().unwrap()))
            .collect();
        assert_eq!(got, [("admin", addrs.1), ("http", addrs.0)]);
    }

    #[test]
    fn one_serves_the_only_inherited_socket_or_binds() {
        let own = OwnSockets::default();
        let inherited_socket = listener();
        let addr = inherited_socket.local_addr().unwrap();
        let mut inherited = vec![(None, inherited_socket)];
        let (name, socket) = one(&mut inherited, "not an address", &own).unwrap();
        assert_eq!((name.as_str(), socket.local_addr().unwrap()), ("", addr));

        let mut two = vec![(Some("a".to_owned()), listener()), (None, listener())];
        let error = one(&mut two, "127.0.0.1:0", &own).unwrap_err();
        assert!(
            error.to_string().contains("Server::listen serves one"),
            "{error}"
        );
        assert_eq!(two.len(), 2, "left for a later call");

        let (name, socket) = one(&mut Vec::new(), "127.0.0.1:0", &own).unwrap();
        assert_eq!(name, UNNAMED);
        assert!(socket.local_addr().unwrap().port() > 0);
    }
}
