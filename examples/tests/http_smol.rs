//! The HTTP examples on async-io runtimes, `hello_smol` and `hello_async_std`, against the
//! behaviours every HTTP example shows (see `http/mod.rs`).

mod http;

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
