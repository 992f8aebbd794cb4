//! Inserting check values (seed 7.5, "insert"): for a legacy device behind the gateway that
//! cannot compute check values, the gateway signs the device's allowed requests with the
//! device's enrolled key (`insert = true` in `[[checks.keys]]`, or set so in the repository)
//! before forwarding them.
//!
//! In: an allowed primitive without `aus`. Out: the `aus` to add, or nothing; each binding
//! puts it on its own wire form ([`super::Addition::CheckValue`]). Only requests whose
//! originator the transport authenticated ([`Peer::authenticated_as`]: a verified client
//! certificate naming `fr`, on whatever binding) are signed: a MAC over a merely claimed `fr`
//! would turn a spoofable header into something the upstream trusts. Sequence numbers per key
//! come from a counter whose bound is persisted with a
//! lease before numbers beyond it are issued (the sender rule of RFC 8613 §B.1.1): after a
//! restart or a crash the counter resumes above the bound, so no number is ever issued twice.
//! The counter is stored as `out:<key id>`, apart from the key's inbound window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::check_value::sign_with;
use super::{Denial, Reason, Stage};
#[cfg(doc)]
use crate::primitive::Peer;
use crate::primitive::Primitive;
use crate::security::KeyRing;
use crate::store::Store;

pub struct Inserter {
    lease: u64,
    store: Option<Arc<dyn Store>>,
    counters: Mutex<HashMap<String, Counter>>,
}

/// Next number to issue; every issued number is at or below `bound`, which is on disk.
struct Counter {
    next: u64,
    bound: u64,
}

impl Inserter {
    pub fn new(lease: u64, store: Option<Arc<dyn Store>>) -> Self {
        Inserter {
            lease,
            store,
            counters: Mutex::default(),
        }
    }

    /// The `aus` for `p`, when its originator has an insert key in `ring` and `p` carries
    /// none.
    pub fn aus(&self, p: &Primitive, ring: &KeyRing) -> Result<Option<String>, Denial> {
        let Some(key) = ring.inserting(&p.fr) else {
            return Ok(None);
        };
        if p.security.aus.is_some() || !p.peer.authenticated_as(&p.fr) {
            return Ok(None);
        }
        let id = &key.record.id;
        let seq = self.next(id)?;
        Ok(Some(sign_with(p, id, &key.mac, seq)))
    }

    fn next(&self, key_id: &str) -> Result<u64, Denial> {
        let fail = |error: String| {
            Denial::new(
                Stage::CheckValue,
                Reason::SequenceUnavailable {
                    key_id: key_id.to_owned(),
                    error,
                },
            )
        };
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| fail("no repository".into()))?;
        let name = format!("out:{key_id}");
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if !counters.contains_key(key_id) {
            let bound = store
                .sequence_mark(&name)
                .map_err(|e| fail(e.to_string()))?
                .unwrap_or(0);
            counters.insert(
                key_id.to_owned(),
                Counter {
                    next: bound + 1,
                    bound,
                },
            );
        }
        let counter = counters.get_mut(key_id).unwrap_or_else(|| unreachable!());
        if counter.next > counter.bound {
            let bound = counter.next.saturating_add(self.lease);
            store
                .put_sequence_mark(&name, bound)
                .map_err(|e| fail(e.to_string()))?;
            counter.bound = bound;
        }
        let seq = counter.next;
        counter.next += 1;
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::check_value::verify;
    use crate::primitive::{Operation, Peer, Protocol};
    use crate::security::{CheckKey, Secret};
    use crate::store::SledStore;

    fn request(fr: &str, rqi: &str) -> Primitive {
        let peer = Peer {
            tls_identity: Some(fr.into()),
            ..Peer::unauthenticated(([127, 0, 0, 1], 1).into(), Protocol::Https)
        };
        Primitive {
            rvi: None,
            ty: Some(4),
            content: bytes::Bytes::from_static(b"{}"),
            ..Primitive::new(Operation::Create, "/id-in/cse-in/x", fr, rqi, peer)
        }
    }

    #[test]
    fn inserted_values_verify_and_numbers_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let key = CheckKey {
            insert: true,
            ..CheckKey::new("legacy-k1", "Clegacy", Secret::new(&[3; 32]))
        };
        let ring = KeyRing::new([&key]).unwrap();
        let mut issued = Vec::new();
        for round in 0..2 {
            // sled's flusher thread may hold the previous round's lock for a moment.
            let reopened = (0..100).find_map(|_| {
                SledStore::open(dir.path()).ok().or_else(|| {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    None
                })
            });
            let store: Arc<dyn Store> = Arc::new(reopened.expect("the repository reopens"));
            let inserter = Inserter::new(10, Some(store));
            for i in 0..3 {
                let mut p = request("Clegacy", &format!("r{round}{i}"));
                p.security.aus = inserter.aus(&p, &ring).unwrap();
                let verified = verify(&ring, &p).unwrap().unwrap();
                issued.push(verified.seq);
            }
            // A request that already carries a check value, or from another node: untouched.
            let mut signed = request("Clegacy", "own");
            signed.security.aus = Some("k.1.x".into());
            assert_eq!(inserter.aus(&signed, &ring).unwrap(), None);
            assert_eq!(inserter.aus(&request("Cother", "r"), &ring).unwrap(), None);
            // A claimed but unproven originator is not signed for.
            let mut claimed = request("Clegacy", "claimed");
            claimed.peer.tls_identity = None;
            assert_eq!(inserter.aus(&claimed, &ring).unwrap(), None);
        }
        assert_eq!(issued, [1, 2, 3, 12, 13, 14]);
    }
}
