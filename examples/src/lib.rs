//! Shared code for graceful's examples and the cross-runtime conformance suite.
//!
//! Each module is one piece the examples build on; this file is only the map.

pub mod args;
pub mod axum_tokio;
pub mod hello_async_std;
pub mod hello_smol;
pub mod hello_tls;
pub mod hello_tls_smol;
pub mod hello_tokio;
pub mod http;
pub mod line;
pub mod progress;

/// The workspace README's code blocks, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
