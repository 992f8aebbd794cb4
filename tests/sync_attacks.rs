//! A man in the middle between the gateway and the authority (tests/common/mitm.rs): flipped
//! bytes, replayed, reordered and dropped records, withheld heads, a feed re-signed by another
//! key. Each is refused — counted under its reason, nothing of it applied — and once the man in
//! the middle lets the authority's answers through, the same change arrives and takes effect.

mod common;

use std::sync::Arc;

use common::mitm::{Attack, Mitm};
use common::sync::{eventually, Synced};
use m2mguard::authority::client::Client;
use m2mguard::feed::SigningKey;
use m2mguard::tls::KeyPair;

/// A gateway following the authority through a man in the middle, with Cmeter enrolled and
/// passing.
async fn through_mitm() -> (Synced, Mitm) {
    let mut s = Synced::unstarted(&[("Cmeter", "devices"), ("CAdmin", "operators")], "").await;
    let identity =
        KeyPair::load(&s.kit.dir.join("client.crt"), &s.kit.dir.join("client.key")).unwrap();
    let as_gateway = Client::new(&s.setup.url(), &s.setup.ca(), Some(&identity), None).unwrap();
    let mitm = Mitm::start(as_gateway).await;
    s.sync = format!(
        "[sync]\nauthority = \"https://{}\"\nfeed = \"feed-t\"\ngateway_id = \"gw-a\"\nfeed_key = \"{dir}/feed.pub\"\nsign_key = \"{dir}/sign.key\"\nseal_key = \"{dir}/seal.key\"\nca = \"{ca}\"\ncert = \"{dir}/client.crt\"\nkey = \"{dir}/client.key\"\n",
        mitm.addr,
        dir = s.kit.dir.display(),
        ca = mitm.pki.path("ca.pem").display(),
    );
    s.start_gateway().await;
    eventually("Cmeter passes through the man in the middle", || async {
        s.rsc("Cmeter").await == "pass"
    })
    .await;
    (s, mitm)
}

/// Under `attack`, `publish` at the authority is refused at the gateway as `reason` and not
/// applied; once the attack stops it is.
async fn refused(attack: Attack, reason: &str, publish: &[&[&str]]) {
    let (s, mitm) = through_mitm().await;
    mitm.set(attack);
    for args in publish {
        s.setup.ok(args).await;
    }

    eventually(&format!("a refusal counted as {reason}"), || async {
        s.refused(reason).await >= 1
    })
    .await;
    assert_eq!(
        s.rsc("Cmeter").await,
        "pass",
        "nothing of the tampered feed applied"
    );
    mitm.set(Attack::Pass);
    eventually(
        "the deactivation arrives once the feed is intact",
        || async { s.rsc("Cmeter").await == "4103" },
    )
    .await;
}

const DEACTIVATE: &[&str] = &["node", "deactivate", "Cmeter"];
const ENROL_OTHER: &[&str] = &["node", "enrol", "Cother", "--group", "devices"];

#[tokio::test]
async fn a_flipped_byte_is_refused() {
    refused(Attack::FlipByte, "signature", &[DEACTIVATE]).await;
}

#[tokio::test]
async fn replayed_records_are_refused() {
    refused(Attack::Replay, "chain", &[DEACTIVATE]).await;
}

#[tokio::test]
async fn reordered_records_are_refused() {
    refused(Attack::Reorder, "chain", &[DEACTIVATE, ENROL_OTHER]).await;
}

#[tokio::test]
async fn a_dropped_record_is_refused() {
    refused(Attack::Drop, "chain", &[DEACTIVATE, ENROL_OTHER]).await;
}

#[tokio::test]
async fn a_feed_signed_by_another_key_is_refused() {
    let forger = Arc::new(SigningKey::from_seed(&[0x99; 32]));
    refused(Attack::Forge(forger), "signature", &[DEACTIVATE]).await;
}

#[tokio::test]
async fn withheld_records_are_noticed_from_the_head() {
    refused(Attack::Withhold, "head", &[DEACTIVATE]).await;
}

#[tokio::test]
async fn a_head_frozen_before_a_change_expires_and_the_view_goes_stale() {
    let (s, mitm) = through_mitm().await;
    mitm.set(Attack::Withhold);
    // A round or two under the attack: the head it serves from now on is one the gateway has.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    s.setup.ok(DEACTIVATE).await;
    eventually("the frozen head is refused once it expires", || async {
        s.refused("head").await >= 1
    })
    .await;
    assert_eq!(
        s.rsc("Cmeter").await,
        "pass",
        "the withheld change is not known"
    );
    let (_, ready) = s.ready().await;
    let age: u64 = ready
        .split("head age ")
        .nth(1)
        .and_then(|a| a.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{ready}"));
    assert!(age >= 4, "the age shows how stale the view is: {ready}");
    mitm.set(Attack::Pass);
    eventually("the deactivation arrives once heads flow again", || async {
        s.rsc("Cmeter").await == "4103"
    })
    .await;
}
