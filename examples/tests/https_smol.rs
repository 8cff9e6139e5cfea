//! The HTTPS example on smol, `hello_tls_smol`, against the behaviours of the HTTPS
//! suite (see `https/mod.rs`).

mod https;

https::https_suite!(hello_tls_smol:
    t1_curl_protocols,
    t2_idle_and_in_flight,
    t3_second_signal,
    t4_keep_alive_loop_loses_nothing,
    t5_h2load,
    t6_wrk,
    t7_silent_and_half_hellos,
    t8_handshake_deadline,
    t9_bad_input,
    t10_bad_certificates,
    t11_reload,
    t12_http2_in_flight,
    t13_handshake_across_the_drain,
    t14_http2_streams_counted,
);
