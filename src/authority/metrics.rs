//! The authority's metrics (docs/metrics.md#the-authority), made at each scrape from the state:
//! `m2mguard_authority_feed_head_seq` (the last record published),
//! `m2mguard_authority_gateways` (gateways known), and per gateway
//! `m2mguard_authority_gateway_confirmed_seq{gateway}` (what its last verified ack confirmed,
//! 0 before the first), `m2mguard_authority_gateway_lag_records{gateway}` (records published
//! after that) and `m2mguard_authority_gateway_ack_age_seconds{gateway}` (since that ack
//! arrived; -1 before the first). Labels are gateway ids the operator added, so cardinality is
//! the operator's choice.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::publish::{now_s, Feed};
use super::state::{StateError, StoredGateway};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GatewayLabel {
    gateway: String,
}

type PerGateway = Family<GatewayLabel, Gauge>;

/// OpenMetrics text of the feed's position and every gateway's confirmed position, now.
pub fn encode(feed: &Feed) -> Result<String, StateError> {
    let (head, gateways) = feed.read(|state, current| (current.seq, state.gateways()));
    let gateways = gateways?;
    Ok(render(head, &gateways, now_s()))
}

fn render(head: u64, gateways: &[StoredGateway], now: u64) -> String {
    let mut registry = Registry::with_prefix("m2mguard_authority");
    let gauge = |value: u64| {
        let g = Gauge::<i64>::default();
        g.set(signed(value));
        g
    };
    registry.register(
        "feed_head_seq",
        "Sequence number of the last record published",
        gauge(head),
    );
    registry.register(
        "gateways",
        "Gateways the authority knows",
        gauge(gateways.len() as u64),
    );
    let (confirmed, lag, age) = (
        PerGateway::default(),
        PerGateway::default(),
        PerGateway::default(),
    );
    for gw in gateways {
        let label = GatewayLabel {
            gateway: gw.id.clone(),
        };
        let seq = gw.confirmed.as_ref().map_or(0, |c| c.seq);
        let ack_age = gw
            .confirmed
            .as_ref()
            .map_or(-1, |c| signed(now.saturating_sub(c.received_at)));
        confirmed.get_or_create(&label).set(signed(seq));
        lag.get_or_create(&label)
            .set(signed(head.saturating_sub(seq)));
        age.get_or_create(&label).set(ack_age);
    }
    registry.register(
        "gateway_confirmed_seq",
        "Sequence number the gateway's last verified ack confirmed (0: none yet)",
        confirmed,
    );
    registry.register(
        "gateway_lag_records",
        "Records published after the one the gateway last confirmed",
        lag,
    );
    registry.register(
        "gateway_ack_age_seconds",
        "Seconds since the gateway's last verified ack arrived (-1: none yet)",
        age,
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// A gauge's value: seqs and seconds fit, anything larger is shown as the largest.
fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::state::Confirmed;
    use crate::feed::GatewayStatus;

    fn gateway(id: &str, confirmed: Option<(u64, u64)>) -> StoredGateway {
        StoredGateway {
            id: id.into(),
            sign: "00".repeat(32),
            seal: "00".repeat(32),
            status: GatewayStatus::Active,
            confirmed: confirmed.map(|(seq, received_at)| Confirmed {
                seq,
                hash: "h".into(),
                applied_at: received_at,
                error: None,
                received_at,
            }),
            tls: None,
            removed_at: None,
        }
    }

    #[test]
    fn lag_and_age_per_gateway() {
        let text = render(
            12,
            &[gateway("gw-a", Some((10, 995))), gateway("gw-b", None)],
            1000,
        );
        for line in [
            "m2mguard_authority_feed_head_seq 12",
            "m2mguard_authority_gateways 2",
            "m2mguard_authority_gateway_confirmed_seq{gateway=\"gw-a\"} 10",
            "m2mguard_authority_gateway_lag_records{gateway=\"gw-a\"} 2",
            "m2mguard_authority_gateway_ack_age_seconds{gateway=\"gw-a\"} 5",
            "m2mguard_authority_gateway_confirmed_seq{gateway=\"gw-b\"} 0",
            "m2mguard_authority_gateway_lag_records{gateway=\"gw-b\"} 12",
            "m2mguard_authority_gateway_ack_age_seconds{gateway=\"gw-b\"} -1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
