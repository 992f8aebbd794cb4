//! Protocol bindings: each decodes its wire form into a [`crate::primitive::Primitive`],
//! forwards only with a [`crate::guard::Permit`], and maps a denial to its own oneM2M error.

pub mod coap;
pub mod http;
pub mod mqtt;
