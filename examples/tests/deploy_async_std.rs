//! Zero-downtime deploys of `hello_async_std`: graceful-smol's `deploy` setting with
//! async-std's executor as the spawner (see `deploy/mod.rs`).

mod deploy;
mod suites;

suites::scenarios!(deploy, hello_async_std:
    hot_restart_under_load,
    socket_activation,
    notify_socket_hears_the_life,
    hot_restart_hands_mainpid_on,
    the_socket_closes_with_the_drain,
    hot_restart_moves_every_listener,
);
