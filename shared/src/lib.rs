//! `lookout-shared`: what the Lookout agent and aggregator must agree on.
//!
//! - [`wire`]: the ingest batch the agent POSTs and the aggregator accepts, and
//!   the stable record id both sides derive from a file identity and a byte offset.
//! - [`parse`]: level and timestamp detection for common log formats.
//! - [`config`]: loading TOML configuration with unknown keys rejected and errors
//!   that name the file, the key and the reason; human units (`10s`, `100MB`).
//!
//! - [`process`]: logging to stderr and the shutdown signals.
//!
//! Nothing here does I/O beyond reading a config file: both binaries build their
//! pipelines on top of these types.

pub mod config;
pub mod parse;
pub mod process;
pub mod time;
pub mod tls;
pub mod wire;
