//! The `hello_async_std` example: hyper on async-std through graceful-hyper and
//! graceful-smol, whose connection tasks run on async-std's executor (its `spawner`).

use crate::hello_smol::{serve_on, AsyncIo};

/// Runs the `hello_async_std` server with these command-line arguments (the program name
/// left out) until it has shut down; returns the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = String>) -> u8 {
    serve_on(
        "hello_async_std",
        args,
        AsyncIo::AsyncStd,
        |builder| builder.spawner(|task| drop(async_std::task::spawn(task))),
        async_std::task::block_on,
    )
}
