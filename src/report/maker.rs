//! Making reports: one task takes what the [`super::counter`] hands over, signs each with the
//! gateway's `sync.sign_key`, queues it durably for the authority ([`Queue`]: the outbox, kind
//! `misbehaviour.report`), and then counts it (`m2mguard_reports_made_total{rule}`), logs it
//! and records the `report.made` event (the audit log's, with `[audit]`). On shutdown it
//! queues what was handed over before it returns.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Report;
use crate::feed::SigningKey;
use crate::metrics::ReportMetrics;
use crate::record::{Event, Recorder};

/// Reports handed over and not yet queued, at most.
pub const HANDOVER: usize = 256;

/// Where signed reports wait for the authority.
pub trait Queue: Send + Sync {
    /// Queues the report `id` (its compact JWS), durably.
    fn queue(&self, id: &str, jws: &str) -> Result<(), String>;
}

pub struct Maker {
    pub key: Arc<SigningKey>,
    pub queue: Arc<dyn Queue>,
    pub recorder: Arc<Recorder>,
    pub metrics: ReportMetrics,
}

/// The counter's end of the hand-over, and the maker's.
pub fn handover() -> (mpsc::Sender<Report>, mpsc::Receiver<Report>) {
    mpsc::channel(HANDOVER)
}

/// Makes reports until `stop`, then the ones already handed over.
pub async fn run(maker: Maker, mut made: mpsc::Receiver<Report>, stop: CancellationToken) {
    let maker = Arc::new(maker);
    loop {
        let report = tokio::select! {
            () = stop.cancelled() => break,
            report = made.recv() => report,
        };
        let Some(report) = report else { return };
        make(&maker, report).await;
    }
    while let Ok(report) = made.try_recv() {
        make(&maker, report).await;
    }
}

async fn make(maker: &Arc<Maker>, report: Report) {
    let m = maker.clone();
    let (id, node, rule) = (report.id.clone(), report.node.clone(), report.rule.clone());
    let queued = tokio::task::spawn_blocking(move || {
        let jws = report.sign(&m.key);
        m.queue.queue(&report.id, &jws)
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match queued {
        Ok(()) => {
            maker.metrics.made(&rule);
            tracing::warn!(report.id = %id, node = %node, rule = %rule, "misbehaviour report made");
            maker.recorder.event(Event::ReportMade { id, node, rule });
        }
        Err(e) => {
            maker.metrics.lost("outbox");
            tracing::error!(report.id = %id, node = %node, rule = %rule, error = %e, "misbehaviour report not queued");
        }
    }
}
