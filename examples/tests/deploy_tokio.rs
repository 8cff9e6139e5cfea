//! Zero-downtime deploys of `hello_tokio`, and of `hello_tokio_current` for several listeners
//! (see `deploy/mod.rs`).

mod deploy;
mod suites;

suites::scenarios!(deploy, hello_tokio);
// On tokio's current-thread runtime: the listeners handed over together, and found by name.
suites::scenarios!(deploy, hello_tokio_current:
    hot_restart_under_load,
    hot_restart_moves_every_listener,
    socket_activation_by_name,
);
