#![doc = include_str!("../../../README.md")]
#![forbid(unsafe_code)]

pub mod registry;
pub mod url;

pub use kgstore_core::*;
pub use registry::{Factory, Open, Registry, open, register};
pub use url::{Durability, OpenOptions, StoreUrl};
