//! The command line of the example servers: `--addr HOST:PORT`, `--timeout SECS` and
//! `--drain-delay SECS`.

use std::error::Error;
use std::fmt;
use std::time::Duration;

/// The address the examples listen on unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:4000";

/// One line of help, for error messages.
pub const USAGE: &str = "usage: [--addr HOST:PORT] [--timeout SECS] [--drain-delay SECS]";

/// The parsed command line.
///
/// # Examples
///
/// ```
/// use examples::args::Args;
/// use std::time::Duration;
///
/// let args = Args::parse(["--addr", "0.0.0.0:8080", "--timeout", "2.5"].map(String::from))?;
/// assert_eq!(args.addr, "0.0.0.0:8080");
/// assert_eq!(args.timeout, Some(Duration::from_millis(2500)));
///
/// let err = Args::parse(["--port", "80"].map(String::from)).unwrap_err();
/// assert_eq!(err.to_string(), "unknown flag `--port`");
/// # Ok::<(), examples::args::ArgsError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// `--addr`: where to listen. Defaults to [`DEFAULT_ADDR`], or to the address given to
    /// [`parse_with_default_addr`](Args::parse_with_default_addr).
    pub addr: String,
    /// `--timeout`: how long the drain may last. `None`: the server's default.
    pub timeout: Option<Duration>,
    /// `--drain-delay`: how long to keep serving, reporting "not ready", before the drain.
    /// `None`: no delay.
    pub drain_delay: Option<Duration>,
}

impl Args {
    /// Parses the arguments after the program name, with [`DEFAULT_ADDR`] as the default
    /// address.
    ///
    /// # Errors
    ///
    /// An unknown flag, a flag without its value, or a timeout that is not a positive number
    /// of seconds.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, ArgsError> {
        Args::parse_with_default_addr(args, DEFAULT_ADDR)
    }

    /// Parses the arguments after the program name, with `default_addr` as the address when
    /// `--addr` is not given.
    ///
    /// # Errors
    ///
    /// As [`parse`](Args::parse).
    ///
    /// # Examples
    ///
    /// ```
    /// use examples::args::Args;
    ///
    /// let args = Args::parse_with_default_addr(Vec::new(), "127.0.0.1:3000")?;
    /// assert_eq!(args.addr, "127.0.0.1:3000");
    /// let given = ["--addr", "[::1]:0"].map(String::from);
    /// let args = Args::parse_with_default_addr(given, "127.0.0.1:3000")?;
    /// assert_eq!(args.addr, "[::1]:0");
    /// # Ok::<(), examples::args::ArgsError>(())
    /// ```
    pub fn parse_with_default_addr(
        args: impl IntoIterator<Item = String>,
        default_addr: &str,
    ) -> Result<Args, ArgsError> {
        let mut parsed = Args {
            addr: default_addr.to_owned(),
            timeout: None,
            drain_delay: None,
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            match flag.as_str() {
                "--addr" => parsed.addr = args.next().ok_or(ArgsError::MissingValue("--addr"))?,
                "--timeout" => {
                    let value = args.next().ok_or(ArgsError::MissingValue("--timeout"))?;
                    let timeout = value
                        .parse::<f64>()
                        .ok()
                        .filter(|secs| *secs > 0.0)
                        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                        .ok_or(ArgsError::BadTimeout(value))?;
                    parsed.timeout = Some(timeout);
                }
                "--drain-delay" => {
                    let value = args
                        .next()
                        .ok_or(ArgsError::MissingValue("--drain-delay"))?;
                    let delay = value
                        .parse::<f64>()
                        .ok()
                        .filter(|secs| *secs >= 0.0)
                        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                        .ok_or(ArgsError::BadDrainDelay(value))?;
                    parsed.drain_delay = Some(delay);
                }
                _ => return Err(ArgsError::UnknownFlag(flag)),
            }
        }
        Ok(parsed)
    }

    /// The quiet period to use: graceful's default, or half the timeout when that is
    /// shorter, so that any positive `--timeout` makes valid settings.
    pub fn quiet_period(&self) -> Duration {
        let default = graceful_core::Builder::DEFAULT_QUIET_PERIOD;
        self.timeout
            .map_or(default, |timeout| default.min(timeout / 2))
    }

    /// Parses the process's own arguments.
    ///
    /// # Errors
    ///
    /// As [`parse`](Args::parse).
    pub fn from_env() -> Result<Args, ArgsError> {
        Args::parse(std::env::args().skip(1))
    }
}

/// A command line the examples cannot run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// A flag they do not know.
    UnknownFlag(String),
    /// A flag given last, without its value.
    MissingValue(&'static str),
    /// A `--timeout` that is not a positive number of seconds.
    BadTimeout(String),
    /// A `--drain-delay` that is not a number of seconds, zero or more.
    BadDrainDelay(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::UnknownFlag(flag) => write!(f, "unknown flag `{flag}`"),
            ArgsError::MissingValue(flag) => write!(f, "`{flag}` needs a value"),
            ArgsError::BadTimeout(value) => write!(
                f,
                "bad `--timeout` value `{value}`: expected a positive number of seconds, like 2.5"
            ),
            ArgsError::BadDrainDelay(value) => write!(
                f,
                "bad `--drain-delay` value `{value}`: expected a number of seconds, like 5"
            ),
        }
    }
}

impl Error for ArgsError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, ArgsError> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        let args = parse(&[]).unwrap();
        assert_eq!((args.addr.as_str(), args.timeout), (DEFAULT_ADDR, None));
    }

    #[test]
    fn the_default_address_can_be_given() {
        let parse_3000 = |args: &[&str]| {
            Args::parse_with_default_addr(args.iter().map(|s| s.to_string()), "127.0.0.1:3000")
        };
        let args = parse_3000(&["--timeout", "2"]).unwrap();
        assert_eq!(
            (args.addr.as_str(), args.timeout),
            ("127.0.0.1:3000", Some(Duration::from_secs(2)))
        );
        let args = parse_3000(&["--addr", "0.0.0.0:8080"]).unwrap();
        assert_eq!(args.addr, "0.0.0.0:8080", "`--addr` wins over the default");
        let err = parse_3000(&["--addr"]).unwrap_err();
        assert_eq!(err, ArgsError::MissingValue("--addr"));
    }

    #[test]
    fn a_drain_delay_is_parsed() {
        assert_eq!(parse(&[]).unwrap().drain_delay, None);
        let args = parse(&["--drain-delay", "2.5"]).unwrap();
        assert_eq!(args.drain_delay, Some(Duration::from_millis(2500)));
        let args = parse(&["--drain-delay", "0"]).unwrap();
        assert_eq!(args.drain_delay, Some(Duration::ZERO));
    }

    #[test]
    fn short_timeouts_get_a_shorter_quiet_period() {
        let args = parse(&["--timeout", "0.1"]).unwrap();
        assert_eq!(args.quiet_period(), Duration::from_millis(50));
        let args = parse(&["--timeout", "30"]).unwrap();
        assert_eq!(args.quiet_period(), Duration::from_millis(250));
    }

    #[test]
    fn bad_command_lines_are_explained() {
        let cases: &[(&[&str], &str)] = &[
            (&["--addr"], "`--addr` needs a value"),
            (&["--timeout"], "`--timeout` needs a value"),
            (&["--timeout", "soon"], "bad `--timeout` value `soon`"),
            (&["--timeout", "0"], "bad `--timeout` value `0`"),
            (&["--timeout", "-1"], "bad `--timeout` value `-1`"),
            (&["--timeout", "inf"], "bad `--timeout` value `inf`"),
            (&["--timeout", "NaN"], "bad `--timeout` value `NaN`"),
            (&["--drain-delay"], "`--drain-delay` needs a value"),
            (&["--drain-delay", "-1"], "bad `--drain-delay` value `-1`"),
            (
                &["--drain-delay", "soon"],
                "bad `--drain-delay` value `soon`",
            ),
            (&["-h"], "unknown flag `-h`"),
        ];
        for (args, message) in cases {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.starts_with(message), "{args:?}: {err}");
        }
    }
}
