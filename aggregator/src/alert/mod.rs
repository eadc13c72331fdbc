//! Alerting: rules evaluated over the stores, alert state kept in SQLite,
//! notifications by email and webhook through a durable outbox.
//!
//! Data flows one way: [`eval`] reads the log index and the metric store and
//! says which instances breach; [`state`] turns that into pending / firing /
//! resolved and queues notifications in the same transaction, as
//! [`policy`] decides (the lifecycle, grouping and silences, pure);
//! [`engine`] schedules both and delivers the outbox through [`notify`].
//!
//! - [`rules`]: the rules file (TOML) and the built-in default rules.
//! - [`ruleset`]: the rules in force: the configured ones and those made in
//!   the app, followed by the engine as they change.
//! - [`template`]: annotation templates.
//! - [`model`]: alerts and notifications, as notifiers see them.

pub mod engine;
pub mod eval;
pub mod model;
pub mod notify;
pub mod policy;
pub mod rules;
pub mod ruleset;
pub mod state;
pub mod template;
