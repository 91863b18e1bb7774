//! The engine tier: every test that needs the real Docker Engine and a
//! real server image (and, for `ui`, headless Chromium), in one test binary
//! so the suite links once. Each module is one concern; `common` is the
//! harness (a dollyd on a reflink data folder, the oracle server, the CLI).
//! Run one concern with a filter: `cargo test -p dolly-server --test engine
//! -- corpus::`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure

#[path = "../common/mod.rs"]
mod common;

mod bigtable;
mod cli;
mod cli_archive;
mod cli_lifecycle;
mod corpus;
mod crash;
mod crash_random;
mod data_safety;
mod diff;
mod disk_limit;
mod faults;
mod http;
mod import;
mod import_bounds;
mod import_pipeline;
mod instances;
mod integrity;
mod lifecycle;
mod load;
mod masking;
mod myaas_api;
mod physical_backup;
mod pipelines;
mod pool;
mod push;
mod restart;
mod rewriter;
mod rows_files;
mod security;
mod servers;
mod sleep;
mod standby;
mod teams;
mod tls;
mod ui;
