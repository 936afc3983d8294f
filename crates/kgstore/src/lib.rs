#![doc = include_str!("../../../README.md")]
#![forbid(unsafe_code)]

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
pub use progress::{Phase, Progress};
pub use registry::{Factory, Open, Registry, open, register};
pub use url::{Durability, OpenOptions, StoreUrl};
