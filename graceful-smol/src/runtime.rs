//! `Smol`: graceful-core's [`Runtime`] on smol, or on async-std through a spawner.

use std::fmt;
use std::io;
use std::sync::Arc;

use graceful_core::serve::{ConnectionTask, Runtime, Watcher};
use graceful_core::Shutdown;

use crate::{signal, SmolTimer};

type Spawner = Arc<dyn Fn(ConnectionTask) + Send + Sync>;

/// smol's runtime (async-io's reactor, [`SmolTimer`]'s timer thread, async-signal's
/// signals), as a graceful
/// [`Server`](crate::Server) uses it. Tasks go to smol's global executor unless a
/// [`spawner`](Smol::spawner) says otherwise: async-std runs on the same reactor, so an
/// async-std program keeps its connections' tasks on its own executor with one.
///
/// # Examples
///
/// ```
/// use graceful_smol::{Server, Smol};
///
/// // smol: the default.
/// let on_smol = Server::new();
/// // async-std: its executor runs the connections' tasks.
/// let on_async_std = Server::builder()
///     .runtime(Smol::spawner(|task| drop(async_std::task::spawn(task))))
///     .build()?;
/// # drop((on_smol, on_async_std));
/// # Ok::<(), graceful_smol::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct Smol {
    spawner: Option<Spawner>,
}

impl Smol {
    /// Runs every task of the server (connections, HTTP/2 streams) with `spawn` instead of
    /// smol's global executor, for instance `|task| drop(async_std::task::spawn(task))`. Each
    /// task ends on its own; `spawn` may detach it.
    ///
    /// # Examples
    ///
    /// A smol executor of the application's own:
    ///
    /// ```
    /// use graceful_smol::{Server, Smol};
    /// use std::sync::Arc;
    ///
    /// let executor = Arc::new(smol::Executor::new());
    /// let spawner = executor.clone();
    /// let server = Server::builder()
    ///     .runtime(Smol::spawner(move |task| spawner.spawn(task).detach()))
    ///     .build()?;
    /// # drop((server, executor));
    /// # Ok::<(), graceful_smol::ConfigError>(())
    /// ```
    pub fn spawner(spawn: impl Fn(ConnectionTask) + Send + Sync + 'static) -> Smol {
        Smol {
            spawner: Some(Arc::new(spawn)),
        }
    }
}

impl fmt::Debug for Smol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smol")
            .field("spawner", &self.spawner.is_some())
            .finish()
    }
}

impl Runtime for Smol {
    type Timer = SmolTimer;

    fn timer(&self) -> SmolTimer {
        SmolTimer
    }

    fn spawn(&self, task: ConnectionTask) {
        match &self.spawner {
            Some(spawn) => spawn(task),
            None => smol::spawn(task).detach(),
        }
    }

    fn signals(&self, shutdown: Shutdown) -> io::Result<Watcher> {
        signal::watch(shutdown)
    }
}
