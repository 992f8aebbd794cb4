//! Positions on the earth: great-circle distance (haversine) and regions (circle, polygon).
//!
//! In: latitude and longitude in degrees (WGS 84, as devices report them). Out: distances in
//! metres and whether a point lies inside a region. Polygons are tested in the plane of
//! (longitude, latitude) degrees, by ray casting: exact for edges that follow lines of constant
//! latitude or longitude, and for the small regions (a site, a city) plausibility rules are
//! written for; a polygon must not cross the ±180° meridian or enclose a pole.

/// Mean earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A position in degrees; constructed only through [`Point::new`], so always in range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    lat: f64,
    lon: f64,
}

impl Point {
    /// `None` unless `lat` is within ±90 and `lon` within ±180 (NaN and infinities refused).
    pub fn new(lat: f64, lon: f64) -> Option<Point> {
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
            .then_some(Point { lat, lon })
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lon(self) -> f64 {
        self.lon
    }

    /// Great-circle distance in metres (haversine formula on a sphere of [`EARTH_RADIUS_M`]).
    pub fn distance_m(self, other: Point) -> f64 {
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let dphi = phi2 - phi1;
        let dlambda = (other.lon - self.lon).to_radians();
        let a =
            (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

/// Where a node's positions must lie.
#[derive(Clone, Debug, PartialEq)]
pub enum Region {
    /// Within `radius_m` metres (great-circle) of `center`.
    Circle { center: Point, radius_m: f64 },
    /// Inside the polygon with these vertices (at least three, implicitly closed).
    Polygon(Vec<Point>),
}

impl Region {
    pub fn contains(&self, p: Point) -> bool {
        match self {
            Region::Circle { center, radius_m } => center.distance_m(p) <= *radius_m,
            Region::Polygon(vertices) => in_polygon(vertices, p),
        }
    }
}

/// Ray casting (even-odd rule) with x = longitude, y = latitude. Points exactly on an edge
/// may fall either way.
fn in_polygon(vertices: &[Point], p: Point) -> bool {
    let mut inside = false;
    let mut j = vertices.len().wrapping_sub(1);
    for (i, vi) in vertices.iter().enumerate() {
        if let Some(vj) = vertices.get(j) {
            if (vi.lat > p.lat) != (vj.lat > p.lat) {
                let x = vi.lon + (p.lat - vi.lat) * (vj.lon - vi.lon) / (vj.lat - vi.lat);
                if p.lon < x {
                    inside = !inside;
                }
            }
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pt(lat: f64, lon: f64) -> Point {
        Point::new(lat, lon).unwrap()
    }

    #[test]
    fn haversine_paris_to_london_is_about_344_km() {
        // Notre-Dame to Trafalgar Square, reference value 343.9 km (spherical).
        let d = pt(48.8530, 2.3499).distance_m(pt(51.5080, -0.1281));
        assert!((d - 343_900.0).abs() < 1_000.0, "{d}");
    }

    #[test]
    fn one_degree_of_latitude_is_about_111_km_and_distance_is_symmetric() {
        let (a, b) = (pt(10.0, 20.0), pt(11.0, 20.0));
        assert!((a.distance_m(b) - 111_195.0).abs() < 10.0);
        assert_eq!(a.distance_m(b), b.distance_m(a));
        assert_eq!(a.distance_m(a), 0.0);
    }

    #[test]
    fn out_of_range_and_non_finite_coordinates_are_refused() {
        for (lat, lon) in [
            (90.1, 0.0),
            (-91.0, 0.0),
            (0.0, 180.5),
            (0.0, -181.0),
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
        ] {
            assert_eq!(Point::new(lat, lon), None, "{lat} {lon}");
        }
        assert!(Point::new(-90.0, 180.0).is_some());
    }

    #[test]
    fn circle_contains_points_within_its_radius_only() {
        let c = Region::Circle {
            center: pt(52.52, 13.405),
            radius_m: 1_000.0,
        };
        assert!(c.contains(pt(52.52, 13.405)));
        assert!(c.contains(pt(52.5260, 13.405))); // ~667 m north
        assert!(!c.contains(pt(52.5300, 13.405))); // ~1.1 km north
    }

    #[test]
    fn concave_polygon_excludes_its_notch() {
        // A "U": the notch between the arms (lat 1..3, lon 1..2) is outside.
        let u = Region::Polygon(vec![
            pt(0.0, 0.0),
            pt(0.0, 3.0),
            pt(3.0, 3.0),
            pt(3.0, 2.0),
            pt(1.0, 2.0),
            pt(1.0, 1.0),
            pt(3.0, 1.0),
            pt(3.0, 0.0),
        ]);
        assert!(u.contains(pt(0.5, 1.5)), "base");
        assert!(u.contains(pt(2.5, 0.5)), "left arm");
        assert!(u.contains(pt(2.5, 2.5)), "right arm");
        assert!(!u.contains(pt(2.0, 1.5)), "notch");
        assert!(!u.contains(pt(4.0, 1.5)), "above");
        assert!(!u.contains(pt(-1.0, 1.5)), "below");
    }

    proptest! {
        #[test]
        fn points_inside_a_rectangle_are_inside_and_far_points_outside(
            lat0 in -80.0f64..70.0, lon0 in -170.0f64..160.0,
            h in 0.01f64..10.0, w in 0.01f64..10.0,
            fy in 0.01f64..0.99, fx in 0.01f64..0.99,
            far in 0.5f64..1.0,
        ) {
            let rect = Region::Polygon(vec![
                pt(lat0, lon0), pt(lat0, lon0 + w), pt(lat0 + h, lon0 + w), pt(lat0 + h, lon0),
            ]);
            prop_assert!(rect.contains(pt(lat0 + fy * h, lon0 + fx * w)));
            prop_assert!(!rect.contains(pt(lat0 + fy * h, lon0 + w * (1.0 + far))));
            prop_assert!(!rect.contains(pt(lat0 + fy * h, lon0 - w * far)));
            prop_assert!(!rect.contains(pt(lat0 + h * (1.0 + far), lon0 + fx * w)));
        }
    }
}
