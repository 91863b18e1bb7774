//! The fast HTTP tier: the whole app (routes, middleware, extractors)
//! served on loopback over the in-memory fake engine. No Docker, no root,
//! no image: `cargo test -p dolly-server --test fast` runs in seconds.
//! HTTP, UI and CLI tests that do not need a real database server belong
//! here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure

mod architecture;
#[path = "../common/cli.rs"]
#[allow(dead_code)]
mod cli;
mod deploy;
mod harness;
mod isolation;
mod push;
mod redaction;
mod surface;
