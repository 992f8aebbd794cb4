use std::borrow::Cow;

use proptest::prelude::*;

use super::*;

fn addressing() -> Addressing {
    Addressing::acme()
}

fn of(segments: &[&str]) -> Result<Canonical, BadTarget> {
    addressing().canonical(segments.iter().map(|s| Cow::Borrowed(*s)))
}

fn to(segments: &[&str]) -> String {
    of(segments).unwrap().to
}

#[test]
fn every_local_form_becomes_the_structured_sp_relative_name() {
    let want = "/id-in/cse-in/AE/data";
    assert_eq!(to(&["cse-in", "AE", "data"]), want);
    assert_eq!(to(&["-", "AE", "data"]), want);
    assert_eq!(to(&["~", "id-in", "cse-in", "AE", "data"]), want);
    assert_eq!(to(&["~", "id-in", "-", "AE", "data"]), want);
    assert_eq!(
        to(&["_", "acme.example.com", "id-in", "cse-in", "AE", "data"]),
        want
    );
    assert_eq!(
        to(&["_", "acme.example.com", "id-in", "-", "AE", "data"]),
        want
    );
    assert_eq!(to(&["-"]), "/id-in/cse-in");
}

#[test]
fn the_sent_form_is_kept_where_it_differs() {
    assert_eq!(of(&["cse-in", "x"]).unwrap().as_sent, None);
    assert_eq!(
        of(&["-", "x"]).unwrap().as_sent.as_deref(),
        Some("/id-in/-/x")
    );
    assert_eq!(
        of(&["_", "acme.example.com", "id-in", "cse-in", "x"])
            .unwrap()
            .as_sent
            .as_deref(),
        Some("//acme.example.com/id-in/cse-in/x")
    );
}

#[test]
fn resource_ids_stay_unresolved_and_are_told_apart() {
    let a = addressing();
    for (segments, ri, tail) in [
        (&["cnt1234"][..], "cnt1234", ""),
        (&["~", "id-in", "cnt1234"][..], "cnt1234", ""),
        (&["cnt1234", "la"][..], "cnt1234", "/la"),
        (
            &["_", "acme.example.com", "id-in", "id-in"][..],
            "id-in",
            "",
        ),
    ] {
        let t = to(segments);
        assert_eq!(a.resource_id(&t), Some((ri, tail)), "{segments:?}");
    }
    for structured in [
        "/id-in/cse-in",
        "/id-in/cse-in/x",
        "/id-mn/cse-mn/x",
        "//sp2/id-x/y",
    ] {
        assert_eq!(a.resource_id(structured), None, "{structured}");
    }
}

#[test]
fn other_cses_and_sps_are_kept_as_written() {
    assert_eq!(to(&["~", "id-mn", "cse-mn", "x"]), "/id-mn/cse-mn/x");
    assert_eq!(to(&["~", "id-mn", "cnt9"]), "/id-mn/cnt9");
    assert_eq!(
        to(&["_", "other.sp", "id-x", "cse-x", "y"]),
        "//other.sp/id-x/cse-x/y"
    );
    assert_eq!(
        to(&["_", "acme.example.com", "id-mn", "cse-mn"]),
        "/id-mn/cse-mn"
    );
}

#[test]
fn unresolvable_and_ambiguous_forms_are_refused() {
    use BadTarget::*;
    for (segments, why) in [
        (&[][..], Short),
        (&["~"][..], Short),
        (&["~", "id-in"][..], Short),
        (&["_", "acme.example.com", "id-in"][..], Short),
        (&["_", "other.sp", "id-x"][..], Short),
        (&["cse-in", "a/b"][..], Ambiguous),
        (&["cse-in", ".."][..], Ambiguous),
        (&["cse-in", ""][..], Ambiguous),
        (&["cse-in", "a\u{0}"][..], Ambiguous),
        (&["cse-in", "secret#lbl"][..], Ambiguous),
        (&["cse-in", "grp", "fopt#x"][..], Ambiguous),
        (&["cse-in", "a?b"][..], Ambiguous),
        (
            &["_", "ACME.example.com", "id-in", "-", "x"][..],
            ForeignPlaceholder,
        ),
        (&["other", "x"][..], NotLocalName),
        (&["cnt1", "x", "y"][..], NotLocalName),
        (&["~", "id-mn", "-", "x"][..], ForeignPlaceholder),
        (&["_", "other.sp", "id-x", "-", "x"][..], ForeignPlaceholder),
        (&["cse-in", "grp", "fopt"][..], FanOut),
        (&["grp1", "fopt"][..], FanOut),
        (&["-", "grp", "fopt", "la"][..], FanOut),
    ] {
        assert_eq!(of(segments), Err(why), "{segments:?}");
    }
    let no_sp = Addressing::new("/id-in", "cse-in", None);
    let absolute = ["_", "acme.example.com", "id-in", "cse-in"].map(Cow::Borrowed);
    assert_eq!(no_sp.canonical(absolute), Err(BadTarget::NoSpId));
}

/// A resource that exists: its structured path under the CSEBase and its resource id.
fn resource() -> impl Strategy<Value = (Vec<String>, String)> {
    let name = "[A-Za-z0-9][A-Za-z0-9_.~-]{0,8}".prop_filter("not a reserved name", |n| {
        !VIRTUAL.contains(&n.as_str()) && n != "-" && n != "." && n != ".."
    });
    (prop::collection::vec(name, 1..5), "[a-z]{1,3}[0-9]{1,6}")
}

/// Every TS-0004 way of writing `path` (relative to the CSEBase) or its id `ri`.
fn forms(path: &[String], ri: &str) -> Vec<Vec<String>> {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut out = Vec::new();
    for base in ["cse-in", "-"] {
        let mut structured = own(&[base]);
        structured.extend(path.iter().cloned());
        out.push(structured.clone());
        out.push([own(&["~", "id-in"]), structured.clone()].concat());
        out.push([own(&["_", "acme.example.com", "id-in"]), structured].concat());
    }
    out.push(own(&[ri]));
    out.push(own(&["~", "id-in", ri]));
    out.push(own(&["_", "acme.example.com", "id-in", ri]));
    out
}

proptest! {
    /// The gateway's canonical target is the resource the CSE acts on, whatever the form:
    /// structured forms directly, resource ids once the resolver has replaced them.
    #[test]
    fn every_form_of_a_resource_names_it(resource in resource()) {
        let (path, ri) = resource;
        let a = addressing();
        let want = format!("/id-in/cse-in/{}", path.join("/"));
        for form in forms(&path, &ri) {
            let canonical = a.canonical(form.iter().map(|s| Cow::Borrowed(s.as_str()))).unwrap();
            match a.resource_id(&canonical.to) {
                Some((id, "")) => prop_assert_eq!(id, ri.as_str()),
                Some(other) => prop_assert!(false, "{:?} left {:?}", form, other),
                None => prop_assert_eq!(&canonical.to, &want, "{:?}", form),
            }
        }
    }

    /// Arbitrary segments never panic, and what is accepted names no dot segment.
    #[test]
    fn arbitrary_segments_never_panic(segments in prop::collection::vec(".{0,6}", 0..6)) {
        if let Ok(c) = addressing().canonical(segments.iter().map(|s| Cow::Borrowed(s.as_str()))) {
            prop_assert!(!c.to.split('/').skip(1).any(|s| s == "." || s == ".."));
        }
    }
}
