//! What the authority holds for this gateway (`m2mguard audit verify --authority`): the
//! checkpoints it anchored, fetched with the gateway's `[sync]` client certificate and
//! checked again here with the log's own key, for [`crate::audit::verify::verify`]'s `held`.

use serde::Deserialize;

use crate::audit::Checkpoint;
use crate::authority::anchors::Held;
use crate::config::SyncConfig;
use crate::feed::VerifyingKey;
use crate::sync::client::Client;

/// The authority's answer to `GET /v1/audit/checkpoints`.
#[derive(Deserialize)]
struct Answer {
    gateway: String,
    checkpoints: Vec<Held>,
}

/// The held checkpoints that verify under `key` as checkpoints of `log`, and a line for
/// each one that does not (the authority holds it: someone signed it).
pub async fn fetch(
    config: &SyncConfig,
    key: &VerifyingKey,
    log: &str,
) -> Result<(Vec<Checkpoint>, Vec<String>), String> {
    let text = Client::new(config)
        .checkpoints()
        .await
        .map_err(|e| e.to_string())?;
    let answer: Answer = serde_json::from_str(&text)
        .map_err(|e| format!("the authority's list of checkpoints is not as documented: {e}"))?;
    if answer.gateway != config.gateway_id {
        return Err(format!(
            "the authority answered for gateway {:?}, not {:?}",
            answer.gateway, config.gateway_id
        ));
    }
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for held in answer.checkpoints {
        match Checkpoint::verify(&held.jws, key) {
            Ok(c) if c.log == log && c.count == held.count && c.head == held.head => good.push(c),
            Ok(c) => bad.push(format!(
                "the authority holds a checkpoint over {} lines for log {:?} that does not match its own fields",
                c.count, c.log
            )),
            Err(e) => bad.push(format!(
                "the authority holds a checkpoint over {} lines that does not verify with this log's key: {e}",
                held.count
            )),
        }
    }
    Ok((good, bad))
}
