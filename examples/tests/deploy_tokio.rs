//! Zero-downtime deploys of `hello_tokio` (see `deploy/mod.rs`).

mod deploy;

deploy::deploy_suite!(hello_tokio:
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
);
