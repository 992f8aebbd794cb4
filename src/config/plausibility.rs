//! `[[plausibility]]`: rules on the position, speed, time of day and source address of
//! requests (seed 7.8), checked by the guard's plausibility stage.
//!
//! In: the raw array of rule tables. Out: validated [`Rule`]s (patterns, JSON pointers, CIDR
//! ranges, time windows and regions all parsed), or located errors. A rule must check
//! something: at least one of `sources`, `windows`, `region`, `max_speed_kmh`; `region` and
//! `max_speed_kmh` need `latitude` and `longitude`, and those are read for nothing else.

use serde::Deserialize;

use super::Validator;
use crate::guard::plausibility::{
    Action, Cidr, JsonPointer, Point, PositionSource, Region, Rule, Window,
};
use crate::guard::Pattern;
use crate::primitive::Operation;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePlausibility {
    pub name: String,
    pub path: String,
    pub action: String,
    #[serde(default)]
    pub operations: Vec<String>,
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub latitude: Option<String>,
    pub longitude: Option<String>,
    pub max_speed_kmh: Option<f64>,
    pub region: Option<FileRegion>,
    #[serde(default)]
    pub windows: Vec<String>,
    pub utc_offset: Option<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    pub recent_nodes: Option<u64>,
}

/// A circle (`lat`, `lon`, `radius_m`) or a `polygon` of `[lat, lon]` vertices.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRegion {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub radius_m: Option<f64>,
    pub polygon: Option<Vec<[f64; 2]>>,
}

/// Nodes remembered per rule for the speed check, by default.
pub const DEFAULT_RECENT_NODES: u64 = 100_000;
/// Most vertices a polygon may have (each request walks them all).
pub const MAX_POLYGON_VERTICES: usize = 1_000;
/// Half the earth's circumference: a larger circle contains everything.
const MAX_RADIUS_M: f64 = 20_037_509.0;

impl Validator {
    pub(super) fn plausibility(&mut self, raw: Vec<FilePlausibility>) -> Vec<Rule> {
        let mut seen = std::collections::HashSet::new();
        let mut rules = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let at = format!("plausibility[{i}]");
            if !is_rule_name(&r.name) {
                self.err(
                    format!("{at}.name"),
                    format!(
                        "{:?} is not a rule name (expected 1 to 64 of A-Z a-z 0-9 _ - .)",
                        r.name
                    ),
                );
            } else if !seen.insert(r.name.clone()) {
                self.err(
                    format!("{at}.name"),
                    format!(
                        "{:?} is used by an earlier rule (expected unique names)",
                        r.name
                    ),
                );
            }
            if let Some(rule) = self.rule(&at, r) {
                rules.push(rule);
            }
        }
        rules
    }

    fn rule(&mut self, at: &str, r: FilePlausibility) -> Option<Rule> {
        let before = self.errors.len();
        if !r.path.starts_with('/') && r.path != "*" {
            self.err(
                format!("{at}.path"),
                format!("{:?} is not a target pattern (expected an SP-relative path such as \"/id-in/cse-in/tracker-*\")", r.path),
            );
        }
        let action = match r.action.as_str() {
            "deny" => Action::Deny,
            "flag" => Action::Flag,
            other => {
                self.err(
                    format!("{at}.action"),
                    format!("{other:?} is not an action (expected \"deny\" or \"flag\")"),
                );
                Action::Deny
            }
        };
        let operations = self.operations(at, &r.operations);
        for (key, list) in [("nodes", &r.nodes), ("groups", &r.groups)] {
            for (j, name) in list.iter().enumerate() {
                if name.is_empty() || name.chars().any(char::is_control) {
                    self.err(format!("{at}.{key}[{j}]"), "expected a non-empty name");
                }
            }
        }
        let position = self.position(at, &r);
        let reads_position = r.latitude.is_some() || r.longitude.is_some();
        let uses_position = r.region.is_some() || r.max_speed_kmh.is_some();
        let max_speed_kmh = r.max_speed_kmh.filter(|v| {
            let ok = v.is_finite() && *v > 0.0 && *v <= 100_000.0;
            if !ok {
                self.err(
                    format!("{at}.max_speed_kmh"),
                    format!("{v} is out of range (expected more than 0, at most 100000)"),
                );
            }
            ok
        });
        let region = r
            .region
            .and_then(|g| self.region(&format!("{at}.region"), g));
        let windows = r
            .windows
            .iter()
            .enumerate()
            .filter_map(|(j, w)| {
                Window::parse(w)
                    .map_err(|e| self.err(format!("{at}.windows[{j}]"), format!("{w:?}: {e}")))
                    .ok()
            })
            .collect::<Vec<_>>();
        let utc_offset_secs = match &r.utc_offset {
            None => 0,
            Some(_) if r.windows.is_empty() => {
                self.err(
                    format!("{at}.utc_offset"),
                    "set, but the rule has no windows (expected windows, or no utc_offset)",
                );
                0
            }
            Some(text) => parse_offset(text).unwrap_or_else(|| {
                self.err(
                    format!("{at}.utc_offset"),
                    format!(
                        "{text:?} is not a UTC offset (expected \"Z\", \"+01:00\" or \"-05:30\")"
                    ),
                );
                0
            }),
        };
        let sources = r
            .sources
            .iter()
            .enumerate()
            .filter_map(|(j, s)| {
                Cidr::parse(s)
                    .map_err(|e| self.err(format!("{at}.sources[{j}]"), e))
                    .ok()
            })
            .collect::<Vec<_>>();
        match (reads_position, uses_position) {
            (false, true) => self.err(at, "region and max_speed_kmh need latitude and longitude (JSON pointers into the content)"),
            (true, false) => self.err(at, "latitude and longitude are read for nothing (expected region or max_speed_kmh)"),
            _ => {}
        }
        if !uses_position && r.windows.is_empty() && r.sources.is_empty() {
            self.err(
                at,
                "checks nothing (expected at least one of sources, windows, region, max_speed_kmh)",
            );
        }
        let recent_nodes = self.range(
            &format!("{at}.recent_nodes"),
            r.recent_nodes,
            DEFAULT_RECENT_NODES,
            16..=100_000_000,
        );
        (self.errors.len() == before).then(|| Rule {
            name: r.name,
            path: Pattern::new(r.path),
            action,
            operations,
            nodes: r.nodes,
            groups: r.groups,
            position,
            max_speed_kmh,
            region,
            windows,
            utc_offset_secs,
            sources,
            recent_nodes,
        })
    }

    fn operations(&mut self, at: &str, names: &[String]) -> Vec<Operation> {
        names
            .iter()
            .enumerate()
            .filter_map(|(j, name)| {
                let op = Operation::ALL.into_iter().find(|op| op.as_str() == name);
                if op.is_none() {
                    self.err(format!("{at}.operations[{j}]"), format!("{name:?} is not an operation (expected create, retrieve, update, delete or notify)"));
                }
                op
            })
            .collect()
    }

    fn position(&mut self, at: &str, r: &FilePlausibility) -> Option<PositionSource> {
        let mut pointer = |key: &str, text: &Option<String>| {
            let text = text.as_deref()?;
            JsonPointer::parse(text)
                .map_err(|e| self.err(format!("{at}.{key}"), e))
                .ok()
        };
        let latitude = pointer("latitude", &r.latitude);
        let longitude = pointer("longitude", &r.longitude);
        if r.latitude.is_some() != r.longitude.is_some() {
            self.err(
                at,
                "latitude and longitude go together (expected both or neither)",
            );
        }
        Some(PositionSource {
            latitude: latitude?,
            longitude: longitude?,
        })
    }

    fn region(&mut self, at: &str, g: FileRegion) -> Option<Region> {
        let expected =
            "expected either lat, lon and radius_m (a circle) or polygon = [[lat, lon], ...]";
        match (g.lat, g.lon, g.radius_m, g.polygon) {
            (Some(lat), Some(lon), Some(radius_m), None) => {
                let center = Point::new(lat, lon);
                if center.is_none() {
                    self.err(
                        at,
                        format!(
                            "center ({lat}, {lon}) is out of range (latitude ±90, longitude ±180)"
                        ),
                    );
                }
                if !(radius_m.is_finite() && radius_m > 0.0 && radius_m <= MAX_RADIUS_M) {
                    self.err(format!("{at}.radius_m"), format!("{radius_m} is out of range (expected more than 0, at most {MAX_RADIUS_M})"));
                    return None;
                }
                Some(Region::Circle {
                    center: center?,
                    radius_m,
                })
            }
            (None, None, None, Some(vertices)) => {
                if !(3..=MAX_POLYGON_VERTICES).contains(&vertices.len()) {
                    self.err(
                        format!("{at}.polygon"),
                        format!(
                            "has {} vertices (expected 3 to {MAX_POLYGON_VERTICES})",
                            vertices.len()
                        ),
                    );
                }
                let points: Vec<Option<Point>> = vertices
                    .iter()
                    .map(|[lat, lon]| Point::new(*lat, *lon))
                    .collect();
                for (j, p) in points.iter().enumerate() {
                    if p.is_none() {
                        self.err(
                            format!("{at}.polygon[{j}]"),
                            "is out of range (expected [latitude ±90, longitude ±180])",
                        );
                    }
                }
                points
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(Region::Polygon)
            }
            _ => {
                self.err(at, expected);
                None
            }
        }
    }
}

/// Rule names appear in `context.flags`, metric labels and logs: a plain alphabet.
pub fn is_rule_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `Z`, `+HH:MM` or `-HH:MM` (at most ±14:00) → seconds east of UTC.
fn parse_offset(text: &str) -> Option<i32> {
    if text == "Z" {
        return Some(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, text.get(1..)?),
        b'-' => (-1, text.get(1..)?),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && h * 60 + m <= 14 * 60).then_some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError, DEFAULT_TOML};
    use super::*;

    fn parse(rules: &str) -> Result<Config, Vec<ConfigError>> {
        Config::parse(&format!("{DEFAULT_TOML}\n{rules}"), "t.toml")
    }

    fn keys(rules: &str) -> Vec<(String, Option<usize>)> {
        let text = format!("{DEFAULT_TOML}\n{rules}");
        let base = DEFAULT_TOML.lines().count() + 2;
        Config::parse(&text, "t.toml")
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.key, e.line.map(|l| l - base)))
            .collect()
    }

    const FULL: &str = r#"
[[plausibility]]
name = "trackers"
path = "/id-in/cse-in/tracker-*"
action = "flag"
operations = ["create", "update"]
groups = ["trackers"]
latitude = "/m2m:cin/con/lat"
longitude = "/m2m:cin/con/lon"
max_speed_kmh = 250
region = { polygon = [[52.3, 13.0], [52.3, 13.8], [52.7, 13.8], [52.7, 13.0]] }
windows = ["*/5 6-21 * * 1-5", "0 12 * * 0,6"]
utc_offset = "+01:00"
sources = ["10.0.0.0/8", "fd00::/8"]
recent_nodes = 5000

[[plausibility]]
name = "site"
path = "*"
action = "deny"
sources = ["127.0.0.0/8"]
"#;

    #[test]
    fn full_rule_is_read_into_its_runtime_form() {
        let config = parse(FULL).unwrap();
        let [r, site] = config.plausibility.as_slice() else {
            panic!("two rules expected")
        };
        assert_eq!((r.name.as_str(), r.action), ("trackers", Action::Flag));
        assert_eq!(r.operations, [Operation::Create, Operation::Update]);
        assert_eq!(r.max_speed_kmh, Some(250.0));
        assert!(matches!(&r.region, Some(Region::Polygon(v)) if v.len() == 4));
        assert_eq!(
            (r.windows.len(), r.utc_offset_secs, r.sources.len()),
            (2, 3600, 2)
        );
        assert_eq!(r.recent_nodes, 5000);
        assert_eq!(
            r.position.as_ref().map(|p| p.latitude.as_str()),
            Some("/m2m:cin/con/lat")
        );
        assert_eq!(
            (site.action, site.recent_nodes),
            (Action::Deny, DEFAULT_RECENT_NODES)
        );
        assert!(Config::builtin().unwrap().plausibility.is_empty());
    }

    #[test]
    fn commented_example_in_the_shipped_config_is_valid() {
        let example: String = DEFAULT_TOML
            .lines()
            .skip_while(|l| *l != "# [[plausibility]]")
            .take_while(|l| !l.is_empty()) // the example ends at its blank line; [sync]'s follows
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        assert!(example.starts_with("[[plausibility]]\n"), "{example}");
        let config = Config::parse(&format!("{DEFAULT_TOML}{example}"), "t.toml").unwrap();
        let [rule] = config.plausibility.as_slice() else {
            panic!("one rule expected")
        };
        assert_eq!(rule.name, "trackers");
        assert!(rule.region.is_some() && rule.max_speed_kmh.is_some());
        assert_eq!((rule.windows.len(), rule.sources.len()), (1, 2));
    }

    #[test]
    fn every_bad_field_is_reported_at_its_line() {
        let bad = r#"
[[plausibility]]
name = "a b"
path = "tracker"
action = "allow"
operations = ["read"]
latitude = "lat"
longitude = "/lon"
max_speed_kmh = -1
region = { lat = 95, lon = 0, radius_m = 10 }
windows = ["* 25 * * *"]
utc_offset = "+1"
sources = ["10.0.0.1/8"]
recent_nodes = 1
"#;
        let got = keys(bad);
        let want: Vec<(String, Option<usize>)> = [
            ("plausibility[0].name", 2),
            ("plausibility[0].path", 3),
            ("plausibility[0].action", 4),
            ("plausibility[0].operations[0]", 5),
            ("plausibility[0].latitude", 6),
            ("plausibility[0].max_speed_kmh", 8),
            ("plausibility[0].region", 9),
            ("plausibility[0].windows[0]", 10),
            ("plausibility[0].utc_offset", 11),
            ("plausibility[0].sources[0]", 12),
            ("plausibility[0].recent_nodes", 13),
        ]
        .into_iter()
        .map(|(k, l)| (k.to_owned(), Some(l)))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn incomplete_or_pointless_rules_are_refused() {
        let rule = |body: &str| {
            format!("[[plausibility]]\nname = \"r\"\npath = \"*\"\naction = \"deny\"\n{body}\n")
        };
        for (body, key) in [
            ("", "plausibility[0]"),
            ("max_speed_kmh = 10", "plausibility[0]"),
            ("latitude = \"/a\"\nlongitude = \"/b\"", "plausibility[0]"),
            ("latitude = \"/a\"\nmax_speed_kmh = 10", "plausibility[0]"),
            ("sources = [\"::1\"]\nutc_offset = \"Z\"", "plausibility[0].utc_offset"),
            ("latitude = \"/a\"\nlongitude = \"/b\"\nregion = { lat = 1, lon = 1 }", "plausibility[0].region"),
            ("latitude = \"/a\"\nlongitude = \"/b\"\nregion = { polygon = [[1, 1], [2, 2]] }", "plausibility[0].region.polygon"),
            ("latitude = \"/a\"\nlongitude = \"/b\"\nregion = { polygon = [[1, 1], [2, 2], [3, 200]] }", "plausibility[0].region.polygon[2]"),
        ] {
            let got = keys(&rule(body));
            assert_eq!(got.first().map(|k| k.0.as_str()), Some(key), "{body}: {got:?}");
        }
        let twice = format!(
            "{}{}",
            rule("sources = [\"::1\"]"),
            rule("sources = [\"::1\"]")
        );
        assert_eq!(keys(&twice)[0].0, "plausibility[1].name");
        let unknown = parse(&rule("sources = [\"::1\"]\nspeed = 3")).unwrap_err();
        assert!(
            unknown[0].message.contains("unknown field `speed`"),
            "{:?}",
            unknown[0]
        );
    }

    #[test]
    fn utc_offsets() {
        assert_eq!(parse_offset("Z"), Some(0));
        assert_eq!(parse_offset("+01:00"), Some(3600));
        assert_eq!(parse_offset("-05:30"), Some(-19_800));
        assert_eq!(parse_offset("+14:00"), Some(50_400));
        for bad in [
            "", "+1:00", "+14:01", "01:00", "+01:60", "+0100", "-", "+01:0x",
        ] {
            assert_eq!(parse_offset(bad), None, "{bad:?}");
        }
    }
}
