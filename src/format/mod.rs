//! The bytes sitevault persists (formats/): pure codecs. Nothing here does I/O; the layers
//! above read and write what these functions encode and decode.

pub mod chunker;
pub(crate) mod codec;
pub mod config;
pub mod crypto;
pub mod id;
pub mod index;
pub mod pack;
pub mod snapshot;
pub mod tree;
