use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::primitive::{Peer, Protocol};
use crate::store::{NodeKind, NodeStatus};

fn node(id: &str, groups: &[&str]) -> Node {
    Node {
        id: id.into(),
        kind: NodeKind::Ae,
        status: NodeStatus::Active,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        status_changed_at: 0,
        registrar: None,
        registered: None,
    }
}

fn request(fr: &str, content: &str, peer: [u8; 4]) -> Primitive {
    let peer = Peer::unauthenticated(SocketAddr::from((peer, 5000)), Protocol::Http);
    let to = "/id-in/cse-in/tracker-01/data";
    Primitive {
        ty: Some(4),
        content: content.to_owned().into(),
        ..Primitive::new(Operation::Create, to, fr, "r", peer)
    }
}

fn at(lat: f64, lon: f64) -> String {
    format!(r#"{{"m2m:cin": {{"con": {{"lat": {lat}, "lon": {lon}}}}}}}"#)
}

fn rule(name: &str, action: Action) -> Rule {
    Rule {
        name: name.into(),
        path: Pattern::new("/id-in/cse-in/tracker-*"),
        action,
        operations: vec![Operation::Create],
        nodes: Vec::new(),
        groups: Vec::new(),
        position: Some(PositionSource {
            latitude: JsonPointer::parse("/m2m:cin/con/lat").unwrap(),
            longitude: JsonPointer::parse("/m2m:cin/con/lon").unwrap(),
        }),
        max_speed_kmh: Some(200.0),
        region: None,
        windows: Vec::new(),
        utc_offset_secs: 0,
        sources: Vec::new(),
        recent_nodes: 1000,
    }
}

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// A loopback request of `fr` reporting a fix at `(lat, lon)`, run `secs` into the test's day.
fn fix(
    stage: &Plausibility,
    fr: &str,
    (lat, lon): (f64, f64),
    secs: u64,
) -> Result<Vec<String>, Denial> {
    run(stage, &request(fr, &at(lat, lon), [127, 0, 0, 1]), t(secs))
}

fn run(stage: &Plausibility, p: &Primitive, now: SystemTime) -> Result<Vec<String>, Denial> {
    let mut findings = Findings::default();
    stage
        .run(p, &node(&p.fr, &["trackers"]), now, &mut findings)
        .map(|()| findings.flags)
}

#[test]
fn jump_of_500_km_in_a_minute_is_denied_and_does_not_move_the_last_position() {
    let stage = Plausibility::new(&[rule("speed", Action::Deny)], FlagCounter::default());
    // Berlin, then Munich (~504 km) a minute later, then 1 km from Berlin.
    assert_eq!(fix(&stage, "Ct", (52.52, 13.405), 0), Ok(vec![]));
    let denial = fix(&stage, "Ct", (48.137, 11.575), 60).unwrap_err();
    assert_eq!(denial.stage, Stage::Plausibility);
    assert!(
        matches!(&denial.reason, Reason::Implausible { rule, why: Implausibility::Speed { kmh, max_kmh, .. } } if rule == "speed" && kmh > max_kmh),
        "{denial:?}"
    );
    assert_eq!(fix(&stage, "Ct", (52.529, 13.405), 120), Ok(vec![]));
    // Another node has its own history.
    assert_eq!(fix(&stage, "Cu", (48.137, 11.575), 121), Ok(vec![]));
}

#[test]
fn same_instant_fixes_divide_by_the_minimum_interval() {
    let stage = Plausibility::new(&[rule("speed", Action::Deny)], FlagCounter::default());
    assert!(fix(&stage, "Ct", (10.0, 10.0), 0).is_ok());
    // 20 m within the same second: 72 km/h over MIN_INTERVAL, below 200.
    assert!(fix(&stage, "Ct", (10.00018, 10.0), 0).is_ok());
    // 100 m within the same second: 360 km/h.
    assert!(fix(&stage, "Ct", (10.0011, 10.0), 0).is_err());
}

#[test]
fn flag_rule_passes_with_its_name_and_still_records_the_position() {
    let flags = FlagCounter::default();
    let stage = Plausibility::new(&[rule("jumpy", Action::Flag)], flags);
    assert_eq!(fix(&stage, "Ct", (52.52, 13.405), 0), Ok(vec![]));
    assert_eq!(
        fix(&stage, "Ct", (48.137, 11.575), 60),
        Ok(vec!["jumpy".to_owned()])
    );
    // Munich is now the last position: a small move from there is not flagged.
    assert_eq!(fix(&stage, "Ct", (48.138, 11.575), 120), Ok(vec![]));
}

#[test]
fn content_that_cannot_be_evaluated_denies_even_for_a_flag_rule() {
    for action in [Action::Deny, Action::Flag] {
        let stage = Plausibility::new(&[rule("r", action)], FlagCounter::default());
        for content in [
            "",
            "not json",
            r#"{"m2m:cin": {"con": {"lat": 1}}}"#,
            r#"{"m2m:cin": {"con": {"lat": "north", "lon": 1}}}"#,
            r#"{"m2m:cin": {"con": {"lat": 95, "lon": 1}}}"#,
            r#"{"m2m:cin": {"con": "lat=1,lon=2"}}"#,
        ] {
            let denial = run(&stage, &request("Ct", content, [127, 0, 0, 1]), t(0)).unwrap_err();
            assert!(
                matches!(&denial.reason, Reason::Unevaluable { rule, .. } if rule == "r"),
                "{content:?}: {denial:?}"
            );
        }
        let con_as_text = r#"{"m2m:cin": {"con": "{\"lat\": 1.5, \"lon\": \"2.5\"}"}}"#;
        assert!(run(&stage, &request("Ct", con_as_text, [127, 0, 0, 1]), t(0)).is_ok());
    }
}

#[test]
fn region_source_and_window_conditions() {
    let mut r = rule("fence", Action::Deny);
    r.max_speed_kmh = None;
    r.region = Some(Region::Circle {
        center: Point::new(52.52, 13.405).unwrap(),
        radius_m: 5_000.0,
    });
    r.sources = vec![Cidr::parse("10.0.0.0/8").unwrap()];
    // 1_700_000_000 is 2023-11-14T22:13:20Z, a Tuesday.
    r.windows = vec![Window::parse("* 22 * * 2").unwrap()];
    let stage = Plausibility::new(&[r], FlagCounter::default());
    let inside = at(52.53, 13.41);
    assert!(run(&stage, &request("Ct", &inside, [10, 1, 2, 3]), t(0)).is_ok());
    let outside = run(
        &stage,
        &request("Ct", &at(52.7, 13.405), [10, 1, 2, 3]),
        t(0),
    )
    .unwrap_err();
    let failed = |d: &Denial| match &d.reason {
        Reason::Implausible { rule, why } if rule == "fence" => Some(why.clone()),
        _ => None,
    };
    assert_eq!(failed(&outside), Some(Implausibility::OutsideRegion));
    let wrong_source = run(&stage, &request("Ct", &inside, [127, 0, 0, 1]), t(0)).unwrap_err();
    assert_eq!(
        failed(&wrong_source),
        Some(Implausibility::Source {
            peer: [127, 0, 0, 1].into()
        })
    );
    let late = run(&stage, &request("Ct", &inside, [10, 1, 2, 3]), t(3600)).unwrap_err();
    assert_eq!(failed(&late), Some(Implausibility::OutsideWindows));
    // A failed source check does not hide unreadable content: that still "cannot be evaluated".
    let both = run(&stage, &request("Ct", "{}", [127, 0, 0, 1]), t(0)).unwrap_err();
    assert!(
        matches!(&both.reason, Reason::Unevaluable { .. }),
        "{both:?}"
    );
}

#[test]
fn rules_apply_only_to_their_path_operations_and_nodes() {
    let mut r = rule("fence", Action::Deny);
    r.sources = vec![Cidr::parse("10.0.0.0/8").unwrap()];
    r.groups = vec!["trackers".into()];
    r.nodes = vec!["Cspecial".into()];
    let stage = Plausibility::new(&[r], FlagCounter::default());
    let denied = request("Ct", &at(1.0, 1.0), [127, 0, 0, 1]);
    assert!(run(&stage, &denied, t(0)).is_err(), "group member");
    let mut other_path = denied.clone();
    other_path.to = "/id-in/cse-in/lamp-01".into();
    assert!(run(&stage, &other_path, t(0)).is_ok());
    let mut retrieve = denied.clone();
    retrieve.op = Operation::Retrieve;
    retrieve.content = Default::default();
    assert!(run(&stage, &retrieve, t(0)).is_ok());
    let mut findings = Findings::default();
    assert!(stage
        .run(&denied, &node("Cother", &["lamps"]), t(0), &mut findings)
        .is_ok());
    assert!(stage
        .run(&denied, &node("Cspecial", &[]), t(0), &mut findings)
        .is_err());
}

#[test]
fn no_rules_pass_everything_without_reading_content() {
    let stage = Plausibility::off();
    assert_eq!(
        run(&stage, &request("Ct", "not json", [127, 0, 0, 1]), t(0)),
        Ok(vec![])
    );
}
