//! File names derived from keys: the encoding lives in `kgstore_core::names`, shared
//! with the git backend (which keeps the same files under `.kgstore/`); it is
//! re-exported here so this crate's paths stay as they were.

pub use kgstore_core::names::*;
