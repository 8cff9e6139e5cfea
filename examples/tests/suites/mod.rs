//! One `#[test]` per scenario of a suite, for one example, so that a failure names both:
//! `scenarios!(http, hello_tokio)` runs every scenario of `http/scenarios.rs` against
//! `hello_tokio`; `scenarios!(http, axum_tokio: s1_idle_and_in_flight, ...)` those named.
//! Each suite's module has a `run(example, scenario)` that runs one (the deploy suite's
//! take turns).

/// Instantiates the scenarios of suite `$suite` (a module of the test binary) for
/// `$example`: all of them, the `light` ones of the HTTP suite (all but the timeout and
/// the 5,000 connections, which depend on the adapter alone; what holds the drain, named
/// per request, is in both), the `tls` ones of the stalls
/// suite (all but the 2,000 idle connections of the close spread, HTTP/1 without TLS), or
/// those named.
macro_rules! scenarios {
    (http, $example:ident) => {
        $crate::suites::scenarios!(http, $example:
            s1_idle_and_in_flight,
            s2_timeout_kills,
            s3_second_signal,
            s4_keep_alive_loop_loses_nothing,
            s5_five_thousand_idle,
            s6_silent_and_half_heads,
            s7_http2,
            s8_upgrades,
            s9_named_and_killed,
            s10_http2_streams_named,
            m1_in_flight_on_every_listener,
            m2_every_listener_stops_at_once,
            m3_bad_listeners_are_refused,
        );
    };
    (http, $example:ident, light) => {
        $crate::suites::scenarios!(http, $example:
            s1_idle_and_in_flight,
            s3_second_signal,
            s4_keep_alive_loop_loses_nothing,
            s6_silent_and_half_heads,
            s7_http2,
            s8_upgrades,
            s9_named_and_killed,
            s10_http2_streams_named,
            m1_in_flight_on_every_listener,
            m2_every_listener_stops_at_once,
            m3_bad_listeners_are_refused,
        );
    };
    (https, $example:ident) => {
        $crate::suites::scenarios!(https, $example:
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
            r1_plain_http_redirects_to_https,
        );
    };
    (stalls, $example:ident) => {
        $crate::suites::scenarios!(stalls, $example:
            h2_answered_then_silent,
            h2_settings_only,
            h2_half_preface,
            non_readers_http1,
            non_readers_http2,
            steady_reader_http1,
            steady_reader_http2,
            close_spread,
        );
    };
    (stalls, $example:ident, tls) => {
        $crate::suites::scenarios!(stalls, $example:
            h2_answered_then_silent,
            h2_settings_only,
            h2_half_preface,
            non_readers_http1,
            non_readers_http2,
            steady_reader_http1,
            steady_reader_http2,
        );
    };
    (deploy, $example:ident) => {
        $crate::suites::scenarios!(deploy, $example:
            hot_restart_under_load,
            a_broken_binary_leaves_the_old_one_serving,
            socket_activation,
            notify_socket_hears_the_life,
            hot_restart_hands_mainpid_on,
            bad_inherited_sockets_are_refused,
            sockets_for_another_process_are_left_alone,
            an_unreachable_notify_socket_is_a_warning,
            the_socket_closes_with_the_drain,
            the_drain_delay_serves_on_while_not_ready,
            a_second_signal_ends_the_drain_delay,
            hot_restart_moves_every_listener,
            socket_activation_by_name,
            a_unix_listener_stays_with_its_process,
        );
    };
    ($suite:ident, $example:ident: $($scenario:ident),+ $(,)?) => {
        mod $example {
            $(
                #[test]
                fn $scenario() {
                    use super::$suite as suite;
                    suite::run(stringify!($example), suite::scenarios::$scenario);
                }
            )+
        }
    };
}
pub(crate) use scenarios;
