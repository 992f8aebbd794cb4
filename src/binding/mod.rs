//! Protocol bindings: each decodes its wire form into a [`crate::primitive::Primitive`],
//! forwards only a [`crate::decision::Permitted`] request (applying the guard's additions to its
//! own wire form), and serialises the [`crate::record::Answer`] to a refusal; every outcome,
//! its own refusals included, is recorded through the [`crate::decision::Decider`].

pub mod coap;
pub mod http;
pub mod mqtt;
