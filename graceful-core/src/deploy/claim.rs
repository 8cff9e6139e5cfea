//! Which inherited socket each listener takes: [`Server::listen_all`]'s names against the
//! `LISTEN_FDNAMES` names, and [`Server::listen`]'s one socket whatever its name. Pure
//! functions over names, with a table test.
//!
//! # Invariants
//!
//! - Every name asked for takes exactly one inherited socket, and every inherited socket
//!   is taken: a socket the service manager passed and nobody serves would queue
//!   connections no one accepts, and a name served from a bound socket rather than the one
//!   passed would split the service in two. Anything else is a [`Mismatch`].
//! - `listen` is lenient: it serves the one inherited socket, named or not.
//!
//! [`Server::listen_all`]: crate::Server::listen_all
//! [`Server::listen`]: crate::Server::listen

use std::fmt;
use std::io;

/// Why the inherited sockets do not match the listeners asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// `listen_all` was given this name twice.
    Duplicate(String),
    /// `listen_all` was given a name `LISTEN_FDNAMES` cannot carry: empty, with a `:` (its
    /// separator) or a control character, or longer than 255 bytes (systemd's rules for
    /// `FileDescriptorName=`).
    BadName(String),
    /// `LISTEN_FDNAMES` gives this name, which is asked for, to more than one socket.
    Ambiguous(String),
    /// Names no inherited socket has, and inherited sockets (by index) no name claims.
    Unmatched {
        missing: Vec<String>,
        extra: Vec<usize>,
    },
    /// `listen` serves one socket; `LISTEN_FDS` names this many.
    TooMany(usize),
    /// `listen_all` was given no listener at all.
    NoListener,
}

/// For each of `wanted`, the index of the inherited socket it takes (`inherited`: the
/// `LISTEN_FDNAMES` names in `LISTEN_FDS` order, `None` for an unnamed socket).
pub(crate) fn claim(wanted: &[&str], inherited: &[Option<&str>]) -> Result<Vec<usize>, Mismatch> {
    if wanted.is_empty() {
        return Err(Mismatch::NoListener);
    }
    distinct(wanted)?;
    let mut claims = Vec::with_capacity(wanted.len());
    let mut missing = Vec::new();
    for name in wanted {
        let mut holders = (inherited.iter().enumerate())
            .filter(|(_, inherited)| **inherited == Some(*name))
            .map(|(index, _)| index);
        match (holders.next(), holders.next()) {
            (Some(index), None) => claims.push(index),
            (Some(_), Some(_)) => return Err(Mismatch::Ambiguous((*name).to_owned())),
            (None, _) => missing.push((*name).to_owned()),
        }
    }
    let extra: Vec<usize> = (0..inherited.len())
        .filter(|index| !claims.contains(index))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        Ok(claims)
    } else {
        Err(Mismatch::Unmatched { missing, extra })
    }
}

/// Checks that every name can be handed on in `LISTEN_FDNAMES`, and that none is given
/// twice.
pub(crate) fn distinct(wanted: &[&str]) -> Result<(), Mismatch> {
    for (i, name) in wanted.iter().enumerate() {
        let carried = !name.is_empty()
            && name.len() <= 255
            && !name.chars().any(|c| c == ':' || c.is_control());
        if !carried {
            return Err(Mismatch::BadName((*name).to_owned()));
        }
        if wanted[..i].contains(name) {
            return Err(Mismatch::Duplicate((*name).to_owned()));
        }
    }
    Ok(())
}

/// The inherited socket `listen` serves: the only one, whatever its name; none when
/// nothing is inherited.
pub(crate) fn claim_one(inherited: &[Option<&str>]) -> Result<Option<usize>, Mismatch> {
    match inherited.len() {
        0 => Ok(None),
        1 => Ok(Some(0)),
        count => Err(Mismatch::TooMany(count)),
    }
}

impl Mismatch {
    /// The error `listen` or `listen_all` returns, which says what `LISTEN_FDS` does pass.
    pub(crate) fn into_error(self, inherited: &[Option<&str>]) -> io::Error {
        let passed = Passed(inherited);
        let message = match self {
            Mismatch::Duplicate(name) => {
                format!("Server::listen_all was given the name {name:?} twice")
            }
            Mismatch::BadName(name) => format!(
                "Server::listen_all was given the name {name:?}, which LISTEN_FDNAMES cannot \
                 carry: a name is 1 to 255 characters, with no `:` (its separator) nor \
                 control character, as systemd's FileDescriptorName= is"
            ),
            Mismatch::NoListener => "Server::listen_all was given no listener".to_owned(),
            Mismatch::Ambiguous(name) => format!(
                "LISTEN_FDS passes more than one socket named {name:?}: give each its own \
                 name (systemd: FileDescriptorName=); it passes {passed}"
            ),
            Mismatch::TooMany(count) => format!(
                "LISTEN_FDS passes {count} sockets; Server::listen serves one \
                 (Server::listen_all serves several by name); it passes {passed}"
            ),
            Mismatch::Unmatched { missing, extra } => {
                let mut parts = Vec::new();
                if !missing.is_empty() {
                    let names: Vec<String> = missing.iter().map(|n| format!("{n:?}")).collect();
                    parts.push(format!(
                        "no inherited socket is named {} (systemd: FileDescriptorName=)",
                        names.join(", ")
                    ));
                }
                if !extra.is_empty() {
                    let sockets: Vec<String> = extra
                        .iter()
                        .map(|&index| socket(index, inherited))
                        .collect();
                    parts.push(format!(
                        "no listener claims inherited {}",
                        sockets.join(", ")
                    ));
                }
                format!("{}; LISTEN_FDS passes {passed}", parts.join("; "))
            }
        };
        io::Error::new(io::ErrorKind::InvalidInput, message)
    }
}

/// What `LISTEN_FDS` passes, for error messages: `fd 3 "http", fd 4 unnamed`.
struct Passed<'a>(&'a [Option<&'a str>]);

impl fmt::Display for Passed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for index in 0..self.0.len() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&socket(index, self.0))?;
        }
        Ok(())
    }
}

/// `fd 3 "http"` or `fd 4 unnamed`.
fn socket(index: usize, inherited: &[Option<&str>]) -> String {
    let fd = index.saturating_add(3);
    match inherited.get(index).copied().flatten() {
        Some(name) => format!("fd {fd} {name:?}"),
        None => format!("fd {fd} unnamed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmatched(missing: &[&str], extra: &[usize]) -> Mismatch {
        Mismatch::Unmatched {
            missing: missing.iter().map(|n| (*n).to_owned()).collect(),
            extra: extra.to_vec(),
        }
    }

    #[test]
    fn each_name_takes_its_socket_and_every_socket_is_taken() {
        type Case<'a> = (
            &'a [&'a str],
            &'a [Option<&'a str>],
            Result<Vec<usize>, Mismatch>,
        );
        let cases: &[Case<'_>] = &[
            // Exact match, in any order.
            (
                &["http", "admin"],
                &[Some("http"), Some("admin")],
                Ok(vec![0, 1]),
            ),
            (
                &["admin", "http"],
                &[Some("http"), Some("admin")],
                Ok(vec![1, 0]),
            ),
            (&["http"], &[Some("http")], Ok(vec![0])),
            // A name with no socket.
            (
                &["http", "admin"],
                &[Some("http")],
                Err(unmatched(&["admin"], &[])),
            ),
            // A socket no name claims, named or not.
            (
                &["http"],
                &[Some("http"), Some("metrics")],
                Err(unmatched(&[], &[1])),
            ),
            (
                &["http", "admin"],
                &[Some("http"), Some("admin"), None],
                Err(unmatched(&[], &[2])),
            ),
            // Both at once: all of it is told.
            (
                &["http", "admin"],
                &[Some("http"), None],
                Err(unmatched(&["admin"], &[1])),
            ),
            // Unnamed sockets are claimed by no name.
            (&["http"], &[None], Err(unmatched(&["http"], &[0]))),
            // A name given twice, or passed twice.
            (
                &["http", "http"],
                &[Some("http")],
                Err(Mismatch::Duplicate("http".into())),
            ),
            (
                &["http"],
                &[Some("http"), Some("http")],
                Err(Mismatch::Ambiguous("http".into())),
            ),
            // Nothing asked for.
            (&[], &[Some("http")], Err(Mismatch::NoListener)),
            // Names LISTEN_FDNAMES cannot carry, refused before anything is looked at.
            (
                &["127.0.0.1:80"],
                &[],
                Err(Mismatch::BadName("127.0.0.1:80".into())),
            ),
            (&[""], &[], Err(Mismatch::BadName(String::new()))),
            (&["a\nb"], &[], Err(Mismatch::BadName("a\nb".into()))),
        ];
        for (wanted, inherited, expected) in cases {
            assert_eq!(
                &claim(wanted, inherited),
                expected,
                "{wanted:?} against {inherited:?}"
            );
        }
    }

    #[test]
    fn listen_serves_the_one_socket_whatever_its_name() {
        assert_eq!(claim_one(&[]), Ok(None));
        assert_eq!(claim_one(&[Some("anything")]), Ok(Some(0)));
        assert_eq!(claim_one(&[None]), Ok(Some(0)));
        assert_eq!(claim_one(&[Some("a"), None]), Err(Mismatch::TooMany(2)));
    }

    #[test]
    fn the_error_says_what_is_missing_extra_and_passed() {
        let inherited = [Some("http"), None];
        let error = claim(&["http", "admin"], &inherited)
            .unwrap_err()
            .into_error(&inherited);
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            error.to_string(),
            "no inherited socket is named \"admin\" (systemd: FileDescriptorName=); \
             no listener claims inherited fd 4 unnamed; \
             LISTEN_FDS passes fd 3 \"http\", fd 4 unnamed"
        );
        let error = Mismatch::TooMany(2).into_error(&inherited);
        assert!(
            error
                .to_string()
                .starts_with("LISTEN_FDS passes 2 sockets; Server::listen serves one"),
            "{error}"
        );
    }
}
