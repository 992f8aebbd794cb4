//! m2mguard: a security gateway for oneM2M edge deployments.
//!
//! Bindings (`binding`) decode HTTP requests into a protocol-neutral [`primitive::Primitive`];
//! the [`guard::Guard`] decides on it against the local repository (`store`) and the Cedar
//! policies (`policy`); only a [`guard::Permit`] lets a binding forward. Every outcome is one
//! [`record::Record`], made by the [`decision::Decider`]. `security` holds key material (the key
//! ring, swapped at run time through `store::Keys`) and the one MAC. `gateway` wires the
//! parts from a validated [`config::Config`]; `admin` serves health, metrics and node
//! operations on loopback; `audit` keeps the tamper-evident log of every record.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod authority;
pub mod binding;
pub mod budget;
pub mod config;
pub mod das;
pub mod decision;
pub mod feed;
pub mod gateway;
pub mod guard;
pub mod listen;
pub mod location;
pub mod metrics;
pub mod minicse;
pub mod outbox;
pub mod policy;
pub mod primitive;
pub mod record;
pub mod registration;
pub mod report;
pub mod security;
pub mod store;
pub mod sync;
pub mod target;
pub mod tls;
