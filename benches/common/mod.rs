//! What the benches share: the request they decide on, the clock, and (from tests/common, with
//! `#[path]`: criterion benches do not see the tests' fixtures otherwise) the gateway
//! configuration and key files the tests use too.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use m2mguard::primitive::{Operation, Peer, Primitive, Protocol};

#[path = "../../tests/common/config.rs"]
mod config;
#[allow(unused_imports)] // each bench uses some
pub use config::{config_text, key_file, POLICIES};

/// The target every bench request names.
pub const METER_DATA: &str = "/id-in/cse-in/meter-01/data";

/// A device on loopback, over plain HTTP, not authenticated by the transport.
pub fn peer() -> Peer {
    Peer::unauthenticated(SocketAddr::from(([127, 0, 0, 1], 40000)), Protocol::Http)
}

/// `op` on [`METER_DATA`] by `fr`, from [`peer`].
pub fn request(op: Operation, fr: &str, rqi: impl Into<String>) -> Primitive {
    Primitive::new(op, METER_DATA, fr, rqi, peer())
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
