//! Unit tests of instances over the fake engine: no Docker needed.

mod housekeeping;
