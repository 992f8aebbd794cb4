//! The authority: the IN-side service that publishes the signed status feed (docs/feed.md)
//! that gateways follow — `m2mguard authority serve` — and the reference implementation of
//! that feed for operators with no IN of their own.
//!
//! In: operator calls (nodes, keys, token revocations, gateways) and gateways' requests for
//! heads, records, snapshots and their acks, over HTTPS ([`server`]). Out: records signed with
//! the feed key, each committed with the state change it publishes in one durable step
//! ([`publish`], [`state`]) before anyone is told, heads signed after every publish and on a
//! heartbeat, and (optionally) the same on MQTT ([`mqtt`]). [`ops`] decides what an operation
//! publishes, [`snapshot`] what a gateway starting empty gets, [`config`] reads
//! `authority.toml`, [`material`] makes the keys and certificates, [`client`] is the HTTPS
//! client of the operator commands and tests.
//!
//! Invariant: a record that was answered, published on MQTT or handed to a long-poll is on
//! disk; records are never rewritten; secrets leave only sealed to a gateway (or, once, to the
//! operator who added or rotated the key).

pub mod anchors;
pub mod client;
pub mod config;
pub mod das;
pub mod material;
pub mod metrics;
pub mod mqtt;
pub mod ops;
pub mod publish;
pub mod report_rules;
pub mod reports;
pub mod server;
pub mod service;
pub mod snapshot;
pub mod state;
#[cfg(test)]
mod tests;

pub use config::AuthorityConfig;
pub use publish::Feed;
pub use service::{start, Running, StartError};
