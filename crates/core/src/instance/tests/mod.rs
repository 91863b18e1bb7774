//! Unit tests of instances over the fake engine: no Docker needed.

mod crash;
mod create;
mod credentials;
mod disk;
mod forwarder;
mod housekeeping;
mod lifecycle;
mod pool;
mod quotas;
mod reap;
mod snapshots;
