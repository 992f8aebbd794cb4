use std::fs;
use std::path::Path;

use super::*;

const SCHEMA: &str = include_str!("../../policies/m2mguard.cedarschema");

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(SCHEMA_FILE), SCHEMA).unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn shipped_policies_validate_against_the_shipped_schema() {
    let bundle = load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))).unwrap();
    assert!(bundle.count >= 4);
}

#[test]
fn syntax_error_is_located_at_its_line() {
    let dir = dir_with(&[(
        "a.cedar",
        "permit(principal, action, resource);\n\nforbid(principal action, resource);\n",
    )]);
    let errors = load_dir(dir.path()).err().unwrap();
    assert_eq!(errors[0].file, dir.path().join("a.cedar"));
    assert_eq!(errors[0].line, Some(3), "{errors:?}");
}

#[test]
fn type_error_against_the_schema_is_located_in_its_file() {
    let dir = dir_with(&[
        ("a.cedar", "permit(principal, action, resource);\n"),
        ("b.cedar", "// comment\npermit(principal, action, resource)\nwhen { principal.colour == \"red\" };\n"),
    ]);
    let errors = load_dir(dir.path()).err().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].file, dir.path().join("b.cedar"));
    assert_eq!(errors[0].line, Some(3), "{errors:?}");
    assert!(
        errors[0].message.contains("colour"),
        "{}",
        errors[0].message
    );
}

#[test]
fn duplicate_annotated_ids_are_refused() {
    let dir = dir_with(&[
        (
            "a.cedar",
            "@id(\"x\")\npermit(principal, action, resource);\n",
        ),
        (
            "b.cedar",
            "@id(\"x\")\nforbid(principal, action, resource);\n",
        ),
    ]);
    let errors = load_dir(dir.path()).err().unwrap();
    assert_eq!(errors[0].file, dir.path().join("b.cedar"));
    assert_eq!(errors[0].line, Some(1));
}

#[test]
fn unannotated_policies_are_named_by_file_and_position() {
    let dir = dir_with(&[("p.cedar", "permit(principal, action, resource);\nforbid(principal, action == Action::\"delete\", resource);\n")]);
    let bundle = load_dir(dir.path()).unwrap();
    let mut ids: Vec<String> = bundle.set.policies().map(|p| p.id().to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["p.cedar#0", "p.cedar#1"]);
}

#[test]
fn failed_reload_keeps_the_set_in_force() {
    let dir = dir_with(&[("a.cedar", "permit(principal, action, resource);\n")]);
    let policies = Policies::load(dir.path()).unwrap();
    fs::write(
        dir.path().join("a.cedar"),
        "permit(principal, action, resource\n",
    )
    .unwrap();
    assert!(policies.reload().is_err());
    assert_eq!(policies.current().count, 1);
    fs::write(
        dir.path().join("b.cedar"),
        "forbid(principal, action, resource);\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("a.cedar"),
        "permit(principal, action, resource);\n",
    )
    .unwrap();
    assert_eq!(policies.reload().unwrap(), 2);
}

#[test]
fn missing_schema_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let errors = load_dir(dir.path()).err().unwrap();
    assert_eq!(errors[0].file, dir.path().join(SCHEMA_FILE));
}

#[test]
fn time_dependence_is_detected() {
    let shipped = load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))).unwrap();
    assert!(!shipped.uses_time);
    let dir = dir_with(&[(
        "t.cedar",
        "forbid (principal, action, resource) when { context.time > 5 };\n",
    )]);
    assert!(load_dir(dir.path()).unwrap().uses_time);
}

#[test]
fn templates_are_refused_rather_than_dropped() {
    let dir = dir_with(&[(
        "t.cedar",
        "permit (principal == ?principal, action, resource);\n",
    )]);
    let errors = load_dir(dir.path()).err().unwrap();
    assert!(errors[0].message.contains("templates"), "{errors:?}");
}

#[test]
fn observe_forbids_are_split_off_the_enforced_set() {
    let dir = dir_with(&[(
        "a.cedar",
        "@id(\"all\")\npermit(principal, action, resource);\n\
         @id(\"new-rule\")\n@observe\nforbid(principal, action == Action::\"delete\", resource);\n\
         @id(\"old-rule\")\nforbid(principal, action == Action::\"notify\", resource);\n",
    )]);
    let bundle = load_dir(dir.path()).unwrap();
    assert_eq!(bundle.count, 3);
    assert_eq!(bundle.observing, ["new-rule"]);
    let ids = |set: &PolicySet| {
        let mut ids: Vec<String> = set.policies().map(|p| p.id().to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&bundle.set), ["all", "old-rule"], "enforced");
    assert_eq!(
        ids(bundle.observed.as_ref().expect("an observed set")),
        ["new-rule"]
    );
}

#[test]
fn without_observe_policies_there_is_no_second_set() {
    let dir = dir_with(&[("a.cedar", "permit(principal, action, resource);\n")]);
    let bundle = load_dir(dir.path()).unwrap();
    assert!(bundle.observed.is_none() && bundle.observing.is_empty());
    assert_eq!(bundle.set.policies().count(), 1);
}

#[test]
fn an_observe_permit_is_refused_at_its_id() {
    let dir = dir_with(&[(
        "a.cedar",
        "permit(principal, action, resource);\n\n@id(\"maybe\")\n@observe\npermit(principal, action, resource);\n",
    )]);
    let errors = load_dir(dir.path()).err().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, Some(3), "{errors:?}");
    assert!(
        errors[0].message.contains("@observe is for forbid"),
        "{errors:?}"
    );
}
