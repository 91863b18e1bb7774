//! The fast HTTP tier: the whole app (routes, middleware, extractors)
//! served on loopback over the in-memory fake engine. No Docker, no root,
//! no image: `cargo test -p dolly-server --test fast` runs in seconds.
//! HTTP tests that do not need a real database server belong here.

mod harness;
mod isolation;
mod push;
mod redaction;
