//! The [`Store`] contract, run against both [`MemoryStore`] and [`SledStore`], and the
//! [`Keys`] handle on top of it.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::security::{CheckKey, Secret};

fn node(id: &str) -> Node {
    Node {
        id: id.into(),
        kind: NodeKind::Ae,
        status: NodeStatus::Active,
        groups: vec!["devices".into()],
        status_changed_at: 1,
        registrar: None,
        registered: None,
    }
}

fn key(id: &str, node: &str, byte: u8) -> CheckKey {
    CheckKey::new(id, node, Secret::new(&[byte; 32]))
}

/// Opens the repository, waiting for a previous handle in this process to let go of it
/// (sled releases its file lock from a background thread).
fn open(dir: &Path) -> SledStore {
    for _ in 0..100 {
        if let Ok(store) = SledStore::open(dir) {
            return store;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    SledStore::open(dir).unwrap()
}

/// Runs `test` on a fresh store of each kind.
fn both(test: impl Fn(Arc<dyn Store>)) {
    test(Arc::new(MemoryStore::default()));
    let dir = tempfile::tempdir().unwrap();
    test(Arc::new(open(dir.path())));
}

#[test]
fn a_batch_applies_nodes_keys_and_cursor_together() {
    both(|store| {
        let batch = Batch::new()
            .put_node(node("Cm"))
            .put_key(key("k1", "Cm", 1))
            .put_key(key("k2", "Cm", 2))
            .remove_key("k2")
            .with_cursor(b"feed:7");
        store.apply(&batch).unwrap();
        assert_eq!(store.node("Cm").unwrap(), Some(node("Cm")));
        assert_eq!(store.keys().unwrap(), [key("k1", "Cm", 1)]);
        assert_eq!(store.cursor().unwrap().as_deref(), Some(&b"feed:7"[..]));
        // A batch without a cursor leaves it where it was.
        store.apply(&Batch::new().remove_key("k1")).unwrap();
        assert!(store.keys().unwrap().is_empty());
        assert_eq!(store.cursor().unwrap().as_deref(), Some(&b"feed:7"[..]));
    });
}

#[test]
fn a_batch_with_a_bad_record_applies_nothing() {
    both(|store| {
        let short = CheckKey::new("short", "Cm", Secret::new(&[1; 8]));
        for bad in [
            Change::PutKey(short),
            Change::PutKey(key("bad id", "Cm", 1)),
            Change::PutNode(node("")),
        ] {
            let batch = Batch::new()
                .put_node(node("Cm"))
                .put_key(key("k1", "Cm", 1))
                .with_cursor(b"feed:8");
            let batch = match bad {
                Change::PutKey(k) => batch.put_key(k),
                Change::PutNode(n) => batch.put_node(n),
                Change::RemoveKey(id) => batch.remove_key(&id),
                Change::RemoveNode(id) => batch.remove_node(&id),
                Change::RevokeToken { jti, at } => batch.revoke_token(&jti, at),
                Change::PutIssuer(i) => batch.put_issuer(i),
                Change::RemoveIssuer(iss) => batch.remove_issuer(&iss),
            };
            let batch = batch.revoke_token("t1", 5);
            let e = store.apply(&batch).unwrap_err();
            assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
            assert_eq!(store.node("Cm").unwrap(), None);
            assert!(store.keys().unwrap().is_empty());
            assert_eq!(store.cursor().unwrap(), None);
            assert!(!store.token_revoked("t1").unwrap());
        }
        store.apply(&Batch::new().revoke_token("t1", 5)).unwrap();
        assert!(store.token_revoked("t1").unwrap());
    });
}

#[test]
fn a_secret_reads_back_as_written() {
    both(|store| {
        let k = CheckKey {
            insert: true,
            origin: crate::security::KeyOrigin::Config,
            ..key("k1", "Cm", 0xa5)
        };
        store.apply(&Batch::new().put_key(k.clone())).unwrap();
        assert_eq!(store.keys().unwrap(), [k]);
    });
}

#[test]
fn an_applied_batch_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let batch = Batch::new()
            .put_node(node("Cm"))
            .put_key(key("k1", "Cm", 1))
            .with_cursor(b"feed:9");
        store.apply(&batch).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.node("Cm").unwrap(), Some(node("Cm")));
    assert_eq!(store.keys().unwrap(), [key("k1", "Cm", 1)]);
    assert_eq!(store.cursor().unwrap().as_deref(), Some(&b"feed:9"[..]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("repository"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the repository is its owner's only");
    }
}

#[test]
fn added_removed_and_rotated_keys_are_in_force_at_once() {
    both(|store| {
        let keys = Keys::load(store.clone()).unwrap();
        assert!(keys.ring().get("k1").is_none());
        keys.put(key("k1", "Cm", 1)).unwrap();
        assert_eq!(keys.ring().get("k1").unwrap().record.node, "Cm");
        // Rotation: a new key under a new id, the old one removed, in one step.
        keys.apply(&Batch::new().put_key(key("k2", "Cm", 2)).remove_key("k1"))
            .unwrap();
        let ring = keys.ring();
        assert!(ring.get("k1").is_none() && ring.get("k2").is_some());
        keys.remove("k2").unwrap();
        assert!(keys.ring().is_empty());
        // What is in force is what the repository holds.
        keys.put(key("k3", "Cm", 3)).unwrap();
        let reloaded = Keys::load(store.clone()).unwrap();
        assert!(reloaded.ring().get("k3").is_some());
    });
}

#[test]
fn a_change_that_breaks_the_ring_changes_nothing() {
    both(|store| {
        let keys = Keys::load(store.clone()).unwrap();
        let inserting = |id: &str| CheckKey {
            insert: true,
            ..key(id, "Cm", 1)
        };
        keys.put(inserting("k1")).unwrap();
        let e = keys
            .apply(&Batch::new().put_key(inserting("k2")).with_cursor(b"feed:1"))
            .unwrap_err();
        assert!(e.to_string().contains("two insert keys"), "{e}");
        assert_eq!(store.keys().unwrap(), [inserting("k1")]);
        assert_eq!(store.cursor().unwrap(), None);
        assert_eq!(keys.ring().inserting("Cm").unwrap().record.id, "k1");
    });
}

#[test]
fn seeding_follows_the_configuration_and_keeps_run_time_keys() {
    both(|store| {
        let keys = Keys::load(store.clone()).unwrap();
        keys.seed(&[key("c1", "Cm", 1), key("c2", "Cm", 2)])
            .unwrap();
        keys.put(key("r1", "Cm", 3)).unwrap();
        // The next start lists c2 with a new secret and no longer c1.
        let keys = Keys::load(store.clone()).unwrap();
        keys.seed(&[key("c2", "Cm", 4)]).unwrap();
        let ring = keys.ring();
        let mut ids: Vec<&str> = ring.records().map(|k| k.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["c2", "r1"]);
        assert_eq!(ring.get("c2").unwrap().record.secret, Secret::new(&[4; 32]));
    });
}

#[test]
fn a_repository_batch_is_seen_by_the_next_lookup_of_nodes_and_keys_or_not_at_all() {
    both(|store| {
        let nodes = Arc::new(Nodes::new(store.clone(), 100));
        let keys = Arc::new(Keys::load(store.clone()).unwrap());
        let repository = Repository::new(nodes.clone(), keys.clone());
        repository
            .apply(&Batch::new().put_node(node("Cm")))
            .unwrap();
        assert_eq!(nodes.get("Cm").unwrap().unwrap().status, NodeStatus::Active);
        let mut changes = nodes.status_changes();

        let deactivated = Node {
            status: NodeStatus::Deactivated,
            ..node("Cm")
        };
        let short = CheckKey::new("short", "Cm", Secret::new(&[1; 8]));
        let bad = Batch::new()
            .put_node(deactivated.clone())
            .put_key(short)
            .with_cursor(b"feed:2");
        assert!(repository.apply(&bad).is_err());
        assert_eq!(nodes.get("Cm").unwrap().unwrap().status, NodeStatus::Active);
        assert!(keys.ring().is_empty() && changes.try_recv().is_err());
        assert_eq!(store.cursor().unwrap(), None);

        let good = Batch::new()
            .put_node(deactivated)
            .put_key(key("k1", "Cm", 1))
            .with_cursor(b"feed:2");
        repository.apply(&good).unwrap();
        assert_eq!(
            nodes.get("Cm").unwrap().unwrap().status,
            NodeStatus::Deactivated
        );
        assert_eq!(changes.try_recv().unwrap(), "Cm");
        assert!(keys.ring().get("k1").is_some());
        assert_eq!(store.cursor().unwrap().as_deref(), Some(&b"feed:2"[..]));
        // Keys alone refuses node records: they would bypass the node cache.
        assert!(keys.apply(&Batch::new().put_node(node("Cn"))).is_err());
    });
}
