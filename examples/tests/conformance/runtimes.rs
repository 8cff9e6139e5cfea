//! The four runtime setups: tokio multi-thread, tokio current-thread, smol, async-std.

use graceful_smol::SmolTimer;
use graceful_tokio::TokioTimer;
use tokio_util::compat::TokioAsyncReadCompatExt;

use super::line_server as line;
use super::{configure, spawn_server, Harness, Running, Settings, Started};

const LOOPBACK: &str = "127.0.0.1:0";

/// graceful-tokio on a multi-thread runtime with two workers.
pub struct TokioMulti;

impl Harness for TokioMulti {
    fn start(settings: Settings) -> Running {
        spawn_server("tokio-multi", settings.probe.clone(), move |started| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("build the runtime");
            runtime.block_on(serve_tokio(settings, started));
        })
    }
}

/// graceful-tokio on a current-thread runtime: the server and every connection on one thread.
pub struct TokioCurrent;

impl Harness for TokioCurrent {
    fn start(settings: Settings) -> Running {
        spawn_server("tokio-current", settings.probe.clone(), move |started| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build the runtime");
            runtime.block_on(serve_tokio(settings, started));
        })
    }
}

async fn serve_tokio(settings: Settings, started: Started) {
    let listener = tokio::net::TcpListener::bind(LOOPBACK).await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let server = configure(graceful_tokio::Server::builder(), &settings)
        .build()
        .expect("valid settings");
    let shutdown = server.shutdown();
    let serving = server.serve(listener, |io: tokio::net::TcpStream, conn| {
        line::serve(io.compat(), conn, TokioTimer)
    });
    started.serve(settings, addr, shutdown, serving).await;
}

/// graceful-smol on smol: the serve loop under `smol::block_on`, connections on smol's
/// global executor.
pub struct Smol;

impl Harness for Smol {
    fn start(settings: Settings) -> Running {
        spawn_server("smol", settings.probe.clone(), move |started| {
            smol::block_on(async move {
                let server = configure(graceful_smol::Server::builder(), &settings);
                serve_smol(server, settings, started).await;
            });
        })
    }
}

/// graceful-smol on async-std: the serve loop under `async_std::task::block_on`,
/// connections spawned with `async_std::task::spawn`.
pub struct AsyncStd;

impl Harness for AsyncStd {
    fn start(settings: Settings) -> Running {
        spawn_server("async-std", settings.probe.clone(), move |started| {
            async_std::task::block_on(async move {
                let server = configure(graceful_smol::Server::builder(), &settings).runtime(
                    graceful_smol::Smol::spawner(|task| drop(async_std::task::spawn(task))),
                );
                serve_smol(server, settings, started).await;
            });
        })
    }
}

async fn serve_smol(builder: graceful_smol::Builder, settings: Settings, started: Started) {
    let listener = smol::net::TcpListener::bind(LOOPBACK).await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let server = builder.build().expect("valid settings");
    let shutdown = server.shutdown();
    let serving = server.serve(listener, |io, conn| line::serve(io, conn, SmolTimer));
    started.serve(settings, addr, shutdown, serving).await;
}
