//! The optional `[coap]` table: a UDP listener relaying CoAP (TS-0008) to one upstream.
//!
//! In: [`FileCoap`] as written. Out: [`CoapConfig`], every limit in range, or errors located
//! at their keys. No `[coap]` table means no CoAP listener. [`CoapConfig::warnings`] names
//! what a valid but exposed choice (`echo = "off"`) gives away, for `check` and the start log.

use std::net::SocketAddr;
use std::time::Duration;

use super::file::FileCoap;
use super::Validator;
use crate::guard::plausibility::Cidr;

/// Address validation of the CoAP listener (`[coap] echo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoMode {
    /// Sources not in `trusted_sources` must return an Echo challenge before anything else.
    Require,
    /// No address validation: every source is treated as validated.
    Off,
}

#[derive(Debug, Clone)]
pub struct CoapConfig {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    /// The numbering OM2M and Mobius use: fr 256, rqi 257, rsc 265.
    pub legacy_options: bool,
    /// Pass the token queries (`tkns=`, `tids=`) the gateway verified on to the upstream, for
    /// an upstream that checks tokens itself; by default they are consumed here.
    pub forward_tokens: bool,
    /// How long message ids are remembered for deduplication and matching (RFC 7252 §4.8.2).
    pub exchange_lifetime: Duration,
    /// Larger datagrams from clients are dropped unread.
    pub max_datagram_bytes: usize,
    /// Bound of each exchange table (deduplication, upstream tokens, upstream message ids).
    pub max_exchanges: u64,
    pub max_observations: u64,
    /// An observation with no notification for this long is forgotten.
    pub observe_idle: Duration,
    /// Token bucket per source address: sustained datagrams per second, and burst.
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    /// Bound of the per-source tables (rate buckets, validated addresses).
    pub max_sources: u64,
    /// An unvalidated source never gets an answer larger than this many times its request.
    pub amplification_factor: usize,
    /// How long a source address stays validated after an Echo round trip (RFC 9175 §2.4).
    pub echo_validity: Duration,
    pub echo: EchoMode,
    /// Sources treated as validated without an Echo round trip: ranges the operator knows
    /// cannot be spoofed from where attackers are (the device segment behind the gateway).
    pub trusted_sources: Vec<Cidr>,
    /// An upstream that neither answers nor acknowledges within this gets 4.04 / 5103 sent to
    /// the client in its place.
    pub upstream_timeout: Duration,
}

impl Validator {
    pub(super) fn coap(&mut self, c: FileCoap) -> CoapConfig {
        let listen = self.addr("coap.listen", &c.listen);
        let upstream = c.upstream.parse::<SocketAddr>().ok();
        if upstream.is_none() {
            self.err(
                "coap.upstream",
                format!("{:?} is not a socket address (expected ip:port of the upstream CoAP server, e.g. 127.0.0.1:5683)", c.upstream),
            );
        }
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        CoapConfig {
            listen: listen.unwrap_or(any),
            upstream: upstream.unwrap_or(any),
            legacy_options: c.legacy_options,
            forward_tokens: c.forward_tokens,
            exchange_lifetime: Duration::from_secs(self.range(
                "coap.exchange_lifetime_secs",
                c.exchange_lifetime_secs,
                247,
                1..=3600,
            )),
            max_datagram_bytes: self.range(
                "coap.max_datagram_bytes",
                c.max_datagram_bytes,
                1152,
                64..=65_507,
            ) as usize,
            max_exchanges: self.range(
                "coap.max_exchanges",
                c.max_exchanges,
                100_000,
                16..=10_000_000,
            ),
            max_observations: self.range(
                "coap.max_observations",
                c.max_observations,
                10_000,
                1..=1_000_000,
            ),
            observe_idle: Duration::from_secs(self.range(
                "coap.observe_idle_secs",
                c.observe_idle_secs,
                3600,
                1..=86_400,
            )),
            rate_per_sec: self.range("coap.rate_per_sec", c.rate_per_sec, 1000, 1..=1_000_000)
                as u32,
            rate_burst: self.range("coap.rate_burst", c.rate_burst, 2000, 1..=1_000_000) as u32,
            max_sources: self.range("coap.max_sources", c.max_sources, 100_000, 16..=10_000_000),
            amplification_factor: self.range(
                "coap.amplification_factor",
                c.amplification_factor,
                3,
                1..=10,
            ) as usize,
            echo_validity: Duration::from_secs(self.range(
                "coap.echo_validity_secs",
                c.echo_validity_secs,
                300,
                1..=86_400,
            )),
            echo: self.echo_mode(c.echo.as_deref()),
            trusted_sources: c
                .trusted_sources
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    Cidr::parse(s)
                        .map_err(|e| self.err(format!("coap.trusted_sources[{i}]"), e))
                        .ok()
                })
                .collect(),
            upstream_timeout: self.millis("coap.upstream_timeout_ms", c.upstream_timeout_ms, 5000),
        }
    }

    fn echo_mode(&mut self, text: Option<&str>) -> EchoMode {
        match text {
            None | Some("require") => EchoMode::Require,
            Some("off") => EchoMode::Off,
            Some(other) => {
                self.err(
                    "coap.echo",
                    format!("{other:?} is not an address validation mode (expected \"require\" or \"off\")"),
                );
                EchoMode::Require
            }
        }
    }
}

impl CoapConfig {
    /// What this valid configuration exposes, one line each (empty when nothing).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.echo == EchoMode::Off {
            warnings.push(format!(
                "warning: coap.echo = \"off\": no address validation on {}: any source, \
                 spoofed ones included, gets full answers (amplification: a whole upstream \
                 answer, up to 64 KiB, for a request of a few dozen bytes, sent to whoever the \
                 source claims to be), its requests reach the upstream under an address no \
                 one proved (plausibility sources rules prove nothing for CoAP); only the \
                 rate limit per source remains",
                self.listen
            ));
        }
        if self.echo == EchoMode::Require && self.trusted_sources.iter().any(Cidr::is_everything) {
            warnings.push(
                "warning: coap.trusted_sources contains a range of every address: Echo is off in effect \
                 (see coap.echo = \"off\")"
                    .to_string(),
            );
        }
        warnings
    }
}
