//! Unit tests of instances over the fake engine: no Docker needed.

mod create;
mod housekeeping;
mod lifecycle;
mod reap;
mod snapshots;
