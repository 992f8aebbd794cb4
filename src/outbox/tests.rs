use super::*;

const REPORT: Kind = Kind {
    name: "test.report",
    path: "/v1/test",
    content_type: "application/json",
    keep: Keep::All,
};

fn open(dir: &Path) -> Outbox {
    Outbox::open(dir, OutboxMetrics::default()).unwrap()
}

fn ids(outbox: &Outbox) -> Vec<String> {
    let mut out = Vec::new();
    while let Some((position, entry)) = outbox.first().unwrap() {
        out.push(format!("{}:{}", entry.kind, entry.id));
        outbox.remove(position).unwrap();
    }
    out
}

#[test]
fn a_newer_checkpoint_replaces_the_undelivered_ones_and_reports_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(dir.path());
    assert!(outbox.push(REPORT, "r1", "{}").unwrap());
    assert!(outbox.push(CHECKPOINT, "10", "a").unwrap());
    assert!(outbox.push(REPORT, "r2", "{}").unwrap());
    assert!(outbox.push(CHECKPOINT, "20", "b").unwrap());
    assert!(
        !outbox.push(CHECKPOINT, "20", "b").unwrap(),
        "same id twice"
    );
    assert!(!outbox.push(REPORT, "r1", "{}").unwrap(), "same id twice");
    assert_eq!(
        ids(&outbox),
        ["test.report:r1", "test.report:r2", "audit.checkpoint:20"]
    );
}

#[test]
fn entries_survive_a_reopen_in_order_and_the_bound_holds() {
    let dir = tempfile::tempdir().unwrap();
    {
        let outbox = open(dir.path());
        for i in 0..MAX_ENTRIES {
            outbox.push(REPORT, &i.to_string(), "{}").unwrap();
        }
        let full = outbox.push(REPORT, "one more", "{}").unwrap_err();
        assert!(matches!(full, OutboxError::Full(..)), "{full}");
    }
    let outbox = open(dir.path());
    assert_eq!(outbox.len(), MAX_ENTRIES);
    let (position, first) = outbox.first().unwrap().unwrap();
    assert_eq!(first.id, "0");
    outbox.remove(position).unwrap();
    outbox.push(CHECKPOINT, "5", "jws").unwrap();
    let all = ids(&outbox);
    assert_eq!(all.len(), MAX_ENTRIES);
    assert_eq!(all[0], "test.report:1");
    assert_eq!(all[MAX_ENTRIES - 1], "audit.checkpoint:5");
}
