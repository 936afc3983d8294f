#![doc = include_str!("../../../README.md")]
#![forbid(unsafe_code)]

#[cfg(feature = "tokio")]
mod async_documents;
#[cfg(feature = "tokio")]
mod async_store;
pub mod backup;
pub mod formats;
pub mod progress;
pub mod registry;
pub mod url;

#[cfg(feature = "tokio")]
pub use async_store::AsyncStore;
pub use kgstore_core::*;
/// The JSON-files backend, for options beyond what a URL carries.
#[cfg(feature = "git")]
pub use kgstore_git as git;
#[cfg(feature = "json")]
pub use kgstore_jsonfs as jsonfs;
/// The SQLite backend, for options beyond what a URL carries.
#[cfg(feature = "sqlite")]
pub use kgstore_sqlite as sqlite;
pub use progress::{Phase, Progress};
pub use registry::{Factory, Open, Registry, open, register};
pub use url::{Durability, OpenOptions, StoreUrl};
