//! kgstore's reliability tooling (not published):
//!
//! - [`crash`]: a crash harness by store URL. A child process
//!   (`kgstore-crash-child`) writes a seeded [`workload`] and acknowledges each
//!   commit; the harness kills it with SIGKILL at random moments, reopens the
//!   store and checks it against the memory backend replaying the same
//!   transactions: every acknowledged transaction present, none partly visible,
//!   integrity intact, the store writable again at once.
//! - [`fire`]: consumer groups under fire — separate consumer processes
//!   (`kgstore-fire-child`) share a group, nack, park and abandon leases at random,
//!   one is SIGKILLed; every event ends acked exactly once or dead-lettered.
//! - [`fuzz`]: fuzz targets as plain functions over bytes, which never panic
//!   and check properties; `tests/fuzz.rs` drives them on stable Rust and the
//!   `fuzz/` workspace at the repository root under cargo-fuzz.
//!
//! See `docs/reliability.md`.
#![forbid(unsafe_code)]

pub mod crash;
pub mod fire;
pub mod fuzz;
pub mod rng;
pub mod snapshot;
pub mod workload;
