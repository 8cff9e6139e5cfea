//! The HTTP examples on tokio, `hello_tokio` (on a multi-thread and a current-thread
//! runtime) and `axum_tokio`, against the behaviours of
//! issue 4 (see `http/mod.rs`).

mod http;

/// Plays the server when re-run as a child; does nothing otherwise.
#[test]
fn child() {
    http::run_child(&[
        ("hello_tokio", |args| examples::hello_tokio::main_with(args)),
        ("axum_tokio", |args| examples::axum_tokio::main_with(args)),
        ("hello_tokio_current", |args| {
            let flavor = tokio::runtime::Builder::new_current_thread();
            examples::hello_tokio::main_on("hello_tokio_current", args, flavor)
        }),
    ]);
}

http::http_suite!(hello_tokio:
    s1_idle_and_in_flight,
    s2_timeout_kills,
    s3_second_signal,
    s4_keep_alive_loop_loses_nothing,
    s5_five_thousand_idle,
    s6_silent_and_half_heads,
    s7_http2,
    s8_upgrades,
);

http::http_suite!(axum_tokio:
    s1_idle_and_in_flight,
    s3_second_signal,
    s4_keep_alive_loop_loses_nothing,
    s6_silent_and_half_heads,
    s7_http2,
);

http::http_suite!(hello_tokio_current:
    s1_idle_and_in_flight,
    s3_second_signal,
    s4_keep_alive_loop_loses_nothing,
    s6_silent_and_half_heads,
    s7_http2,
    s8_upgrades,
);
