//! What a gateway whose credentials the authority removed (`gateway.put` status `removed`,
//! docs/sync.md "Removal") wipes: every check-value key in the repository, and its private
//! key files (`sync.sign_key`, `sync.seal_key`, `sync.key`). Node records and token
//! revocations stay (they are no secret, and refusing more is safe); every request is refused
//! at stage `gateway` until the gateway enrols again.

use std::path::PathBuf;

use crate::store::{Batch, Repository};

/// Removes every key from `repository` and deletes `files`; idempotent (run again after a
/// restart that came between). Failures are logged: what could be wiped is.
pub fn wipe(repository: &Repository, files: &[PathBuf]) {
    let ring = repository.keys().ring();
    let batch = ring
        .records()
        .fold(Batch::new(), |batch, key| batch.remove_key(&key.id));
    if !batch.is_empty() {
        match repository.apply(&batch) {
            Ok(()) => tracing::warn!(
                keys = ring.len(),
                "credentials removed: the repository's keys are wiped"
            ),
            Err(e) => {
                tracing::error!(error = %e, "credentials removed: wiping the repository's keys failed")
            }
        }
    }
    for file in files {
        match std::fs::remove_file(file) {
            Ok(()) => {
                tracing::warn!(file = %file.display(), "credentials removed: private key file deleted")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(file = %file.display(), error = %e, "credentials removed: cannot delete the private key file")
            }
        }
    }
}
