//! `graceful.example.Ticker`: the gRPC example's own service, a unary call and a server
//! stream, and a client for it. Written by hand with prost's derive and tonic's server and
//! client plumbing, as tonic-build would generate it from this definition (no `protoc`, no
//! build script):
//!
//! ```proto
//! package graceful.example;
//! service Ticker {
//!   rpc Tick(TickRequest) returns (Tick);           // one tick, now
//!   rpc Ticks(TickRequest) returns (stream Tick);   // a tick every interval_ms; count 0: for ever
//! }
//! message TickRequest { uint64 interval_ms = 1; uint64 count = 2; }
//! message Tick { uint64 n = 1; }
//! ```

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use http::uri::PathAndQuery;
use tonic::body::Body as GrpcBody;
use tonic::codegen::{BoxFuture, Service, StdError};
use tonic::server::{Grpc, NamedService, ServerStreamingService, UnaryService};
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

/// The request of both calls.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct TickRequest {
    /// Between two ticks of `Ticks`, in milliseconds.
    #[prost(uint64, tag = "1")]
    pub interval_ms: u64,
    /// How many ticks `Ticks` sends before it ends; 0: for ever.
    #[prost(uint64, tag = "2")]
    pub count: u64,
}

/// One tick.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Tick {
    /// Its number, from 0.
    #[prost(uint64, tag = "1")]
    pub n: u64,
}

/// The service's full name.
pub const SERVICE: &str = "graceful.example.Ticker";
const TICK: &str = "/graceful.example.Ticker/Tick";
const TICKS: &str = "/graceful.example.Ticker/Ticks";

/// The server side: add it to tonic's `Routes`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TickerServer;

impl NamedService for TickerServer {
    const NAME: &'static str = SERVICE;
}

impl<B> Service<http::Request<B>> for TickerServer
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<GrpcBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match request.uri().path() {
            TICK => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<Tick, TickRequest>::default());
                Ok(grpc.unary(TickCall, request).await)
            }),
            TICKS => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<Tick, TickRequest>::default());
                Ok(grpc.server_streaming(TicksCall, request).await)
            }),
            _ => Box::pin(async {
                Ok(Status::new(Code::Unimplemented, "no such method").into_http())
            }),
        }
    }
}

/// `Tick`: the tick number 0.
struct TickCall;

impl UnaryService<TickRequest> for TickCall {
    type Response = Tick;
    type Future = Ready<Result<Response<Tick>, Status>>;

    fn call(&mut self, _: Request<TickRequest>) -> Self::Future {
        ready(Ok(Response::new(Tick { n: 0 })))
    }
}

/// `Ticks`: a tick every `interval_ms`.
struct TicksCall;

impl ServerStreamingService<TickRequest> for TicksCall {
    type Response = Tick;
    type ResponseStream = BoxStream<'static, Result<Tick, Status>>;
    type Future = Ready<Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<TickRequest>) -> Self::Future {
        let TickRequest { interval_ms, count } = *request.get_ref();
        let interval = Duration::from_millis(interval_ms.max(1));
        let ticks = futures::stream::unfold(0, move |n| async move {
            if n > 0 {
                tokio::time::sleep(interval).await;
            }
            Some((Ok(Tick { n }), n + 1))
        });
        let ticks = match count {
            0 => ticks.boxed(),
            count => ticks.take(count as usize).boxed(),
        };
        ready(Ok(Response::new(ticks)))
    }
}

/// The client side, on any tonic transport (a `Channel`).
#[derive(Clone, Debug)]
pub struct TickerClient<T> {
    inner: tonic::client::Grpc<T>,
}

impl<T> TickerClient<T>
where
    T: tonic::client::GrpcService<GrpcBody>,
    T::Error: Into<StdError>,
    T::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<StdError> + Send,
{
    /// A client on `transport`.
    pub fn new(transport: T) -> TickerClient<T> {
        TickerClient {
            inner: tonic::client::Grpc::new(transport),
        }
    }

    /// Calls `Tick`.
    pub async fn tick(&mut self) -> Result<Tick, Status> {
        self.ready().await?;
        let codec = ProstCodec::<TickRequest, Tick>::default();
        let request = Request::new(TickRequest::default());
        let path = PathAndQuery::from_static(TICK);
        Ok(self.inner.unary(request, path, codec).await?.into_inner())
    }

    /// Calls `Ticks`.
    pub async fn ticks(&mut self, request: TickRequest) -> Result<Streaming<Tick>, Status> {
        self.ready().await?;
        let codec = ProstCodec::<TickRequest, Tick>::default();
        let path = PathAndQuery::from_static(TICKS);
        let response = self
            .inner
            .server_streaming(Request::new(request), path, codec)
            .await?;
        Ok(response.into_inner())
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.inner
            .ready()
            .await
            .map_err(|error| Status::unknown(format!("service was not ready: {}", error.into())))
    }
}
