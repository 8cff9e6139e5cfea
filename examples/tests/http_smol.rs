//! The HTTP examples on async-io runtimes, `hello_smol` and `hello_async_std`, against the
//! behaviours of issue 4 (see `http/mod.rs`).

mod http;

/// Plays the server when re-run as a child; does nothing otherwise.
#[test]
fn child() {
    http::run_child(&[
        ("hello_smol", |args| examples::hello_smol::main_with(args)),
        ("hello_async_std", |args| {
            examples::hello_async_std::main_with(args)
        }),
    ]);
}

http::http_suite!(hello_smol:
    s1_idle_and_in_flight,
    s2_timeout_kills,
    s3_second_signal,
    s4_keep_alive_loop_loses_nothing,
    s5_five_thousand_idle,
    s6_silent_and_half_heads,
    s7_http2,
    s8_upgrades,
);

http::http_suite!(hello_async_std:
    s1_idle_and_in_flight,
    s3_second_signal,
    s4_keep_alive_loop_loses_nothing,
    s6_silent_and_half_heads,
    s7_http2,
    s8_upgrades,
);
