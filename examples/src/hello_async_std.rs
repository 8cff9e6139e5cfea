//! The `hello_async_std` example: hyper on async-std through graceful-smol, whose tasks run
//! on async-std's executor (a [`Smol`] runtime with async-std's spawner).

use graceful_smol::Smol;

use crate::hello_smol::serve_on;

/// Runs the `hello_async_std` server with these command-line arguments (the program name
/// left out) until it has shut down; returns the process's exit code.
pub fn main_with(args: impl IntoIterator<Item = String>) -> u8 {
    let runtime = Smol::spawner(|task| drop(async_std::task::spawn(task)));
    serve_on("hello_async_std", args, runtime, async_std::task::block_on)
}
