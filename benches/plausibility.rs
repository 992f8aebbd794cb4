//! The plausibility stage alone, for one rule with every condition (source CIDR, time window,
//! region, speed against the node's last position): a passing request (position read from
//! `con`, region tested, speed computed against the remembered fix, fix recorded), the same
//! with `con` carrying its JSON as text (parsed twice), the same with a 64-vertex polygon
//! region, and a request denied for its region. `off` (no rules) is the floor;
//! `pass_sources_windows_only` (the rule without its position conditions) shows, by difference,
//! what reading the content, the region and the speed check cost. This is what a rule adds to
//! the guard's decision (see `benches/guard.rs`); run with `cargo bench --bench plausibility`.

use std::net::SocketAddr;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion};
use m2mguard::guard::plausibility::{
    Action, Cidr, JsonPointer, Point, PositionSource, Region, Rule, Window,
};
use m2mguard::guard::{Findings, Pattern, Plausibility};
use m2mguard::metrics::FlagCounter;
use m2mguard::primitive::{Operation, Peer, Primitive, Protocol};
use m2mguard::store::{Node, NodeKind, NodeStatus};

fn primitive(content: &str) -> Primitive {
    let peer = Peer::unauthenticated(SocketAddr::from(([10, 1, 2, 3], 40000)), Protocol::Http);
    let to = "/id-in/cse-in/tracker-01/data";
    let mut p = Primitive::new(Operation::Create, to, "Ctracker-01", "bench", peer);
    p.ty = Some(4);
    p.content = content.to_owned().into();
    p
}

fn rule(region: Region) -> Rule {
    Rule {
        name: "trackers".into(),
        path: Pattern::new("/id-in/cse-in/tracker-*"),
        action: Action::Deny,
        operations: vec![Operation::Create],
        nodes: Vec::new(),
        groups: vec!["trackers".into()],
        position: Some(PositionSource {
            latitude: JsonPointer::parse("/m2m:cin/con/lat").unwrap(),
            longitude: JsonPointer::parse("/m2m:cin/con/lon").unwrap(),
        }),
        max_speed_kmh: Some(250.0),
        region: Some(region),
        windows: vec![Window::parse("* * * * *").unwrap()],
        utc_offset_secs: 3600,
        sources: vec![
            Cidr::parse("192.168.0.0/16").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap(),
        ],
        recent_nodes: 100_000,
    }
}

fn circle() -> Region {
    Region::Circle {
        center: Point::new(52.52, 13.405).unwrap(),
        radius_m: 50_000.0,
    }
}

/// A regular 64-gon of radius 0.3° around Berlin.
fn polygon() -> Region {
    let vertices = (0..64)
        .map(|i| {
            let a = f64::from(i) / 64.0 * std::f64::consts::TAU;
            Point::new(52.52 + 0.3 * a.sin(), 13.405 + 0.3 * a.cos()).unwrap()
        })
        .collect();
    Region::Polygon(vertices)
}

fn stage(c: &mut Criterion) {
    let node = Node {
        id: "Ctracker-01".into(),
        kind: NodeKind::Ae,
        status: NodeStatus::Active,
        groups: vec!["devices".into(), "trackers".into()],
        status_changed_at: 0,
        registrar: None,
        registered: None,
    };
    let inside = r#"{"m2m:cin":{"cnf":"application/json","con":{"lat":52.52,"lon":13.405}}}"#;
    let as_text =
        r#"{"m2m:cin":{"cnf":"application/json","con":"{\"lat\":52.52,\"lon\":13.405}"}}"#;
    let outside = r#"{"m2m:cin":{"cnf":"application/json","con":{"lat":48.137,"lon":11.575}}}"#;
    let cases = [
        ("off", Plausibility::off(), inside, true),
        ("pass_circle", one(circle()), inside, true),
        ("pass_circle_con_as_text", one(circle()), as_text, true),
        ("pass_polygon_64", one(polygon()), inside, true),
        ("deny_region", one(circle()), outside, false),
        ("pass_sources_windows_only", no_position(), inside, true),
    ];
    let mut group = c.benchmark_group("plausibility");
    for (name, stage, content, passes) in &cases {
        let p = primitive(content);
        let check = |p: &Primitive| {
            let mut findings = Findings::default();
            stage.run(p, &node, SystemTime::now(), &mut findings)
        };
        assert_eq!(check(&p).is_ok(), *passes, "{name}");
        group.bench_function(*name, |b| b.iter(|| check(std::hint::black_box(&p))));
    }
    group.finish();
}

/// The same rule without position, region or speed: what the content adds, by difference.
fn no_position() -> Plausibility {
    let mut r = rule(circle());
    (r.position, r.region, r.max_speed_kmh) = (None, None, None);
    Plausibility::new(&[r], FlagCounter::default())
}

fn one(region: Region) -> Plausibility {
    Plausibility::new(&[rule(region)], FlagCounter::default())
}

criterion_group!(benches, stage);
criterion_main!(benches);
