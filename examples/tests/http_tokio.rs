//! The HTTP examples on tokio, `hello_tokio` (on a multi-thread and a current-thread
//! runtime) and `axum_tokio`, against the behaviours every HTTP example shows (see
//! `http/mod.rs`), and the stalled and slow peers that must not hold a drain
//! (`stalls/mod.rs`).

mod http;
mod stalls;
mod suites;

suites::scenarios!(http, hello_tokio);
suites::scenarios!(http, hello_tokio_current, light);
suites::scenarios!(http, axum_tokio:
    s1_idle_and_in_flight,
    s3_second_signal,
    s4_keep_alive_loop_loses_nothing,
    s6_silent_and_half_heads,
    s7_http2,
    s9_named_and_killed,
    s10_http2_streams_named,
    m1_in_flight_on_every_listener,
    m2_every_listener_stops_at_once,
    m3_bad_listeners_are_refused,
);

/// The stalls suite in a module of its own: `stalled::EXAMPLE::SCENARIO`.
mod stalled {
    use super::{stalls, suites};

    suites::scenarios!(stalls, hello_tokio);
    suites::scenarios!(stalls, hello_tokio_current);
    suites::scenarios!(stalls, axum_tokio);
}
