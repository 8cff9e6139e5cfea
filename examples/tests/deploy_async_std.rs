//! Zero-downtime deploys of `hello_async_std`: graceful-smol's `deploy` setting with
//! async-std's executor as the spawner (issue 12; see `deploy/mod.rs`).

mod deploy;

/// Plays the server when re-run as a child; does nothing otherwise.
#[test]
fn child() {
    deploy::run_child(&[("hello_async_std", |args| {
        examples::hello_async_std::main_with(args)
    })]);
}

deploy_suite!(hello_async_std:
    hot_restart_under_load,
    socket_activation,
    notify_socket_hears_the_life,
    hot_restart_hands_mainpid_on,
    the_socket_closes_with_the_drain,
);
