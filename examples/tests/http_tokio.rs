//! The HTTP examples on tokio, `hello_tokio` (on a multi-thread and a current-thread
//! runtime) and `axum_tokio`, against the behaviours every HTTP example shows (see
//! `http/mod.rs`).

mod http;

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
