//! Reads a policy directory into a [`PolicyBundle`], collecting every error with its location.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{Effect, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;

use super::{PolicyBundle, PolicyError, SCHEMA_FILE};
use crate::location::line_col;

/// Loads `dir/m2mguard.cedarschema` and every `dir/*.cedar` (in name order) and validates the
/// policies against the schema in strict mode. Policy ids are the `@id("…")` annotation when
/// present, else `<file>#<n>`; they must be unique across files. `@observe` policies (forbid
/// only) are split off the enforced set (see [`super`]).
pub fn load_dir(dir: &Path) -> Result<PolicyBundle, Vec<PolicyError>> {
    let schema_path = dir.join(SCHEMA_FILE);
    let schema_text = read(&schema_path).map_err(|e| vec![e])?;
    let schema = Schema::from_cedarschema_str(&schema_text)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| located(&schema_path, &schema_text, &e))?;

    let mut errors = Vec::new();
    let mut set = PolicySet::new();
    let mut sources = Vec::new();
    let mut origin = HashMap::new();
    for path in policy_files(dir).map_err(|e| vec![e])? {
        match read(&path) {
            Ok(text) => {
                for id in add_file(&mut set, &path, &text, &mut errors) {
                    origin.insert(id, sources.len());
                }
                sources.push((path, text));
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    validate(&schema, &set, |id| origin.get(id).map(|&i| &sources[i]))?;
    let count = set.policies().count();
    let uses_time = set.policies().any(|p| {
        // Conservative: any attribute, key or string "time" or "repository" (its age changes
        // with time) counts, and so does a policy that cannot be shown as JSON.
        p.to_json().map_or(true, |json| {
            let json = json.to_string();
            json.contains("\"time\"") || json.contains("\"repository\"")
        })
    });
    let (set, observed, observing) = split(set);
    Ok(PolicyBundle {
        schema,
        set,
        observed,
        observing,
        count,
        uses_time,
    })
}

/// The enforced policies, the `@observe` ones (`None` when there are none), and the ids of
/// the `@observe` ones.
fn split(all: PolicySet) -> (PolicySet, Option<PolicySet>, Vec<String>) {
    let mut observing: Vec<String> = all
        .policies()
        .filter(|p| p.annotation(OBSERVE).is_some())
        .map(|p| p.id().to_string())
        .collect();
    if observing.is_empty() {
        return (all, None, observing);
    }
    observing.sort();
    let (mut enforced, mut observed) = (PolicySet::new(), PolicySet::new());
    for policy in all.policies() {
        let into = match policy.annotation(OBSERVE) {
            Some(_) => &mut observed,
            None => &mut enforced,
        };
        // Ids are unique in `all`, so adding to a part of it cannot fail.
        let _ = into.add(policy.clone());
    }
    (enforced, Some(observed), observing)
}

/// The annotation of a policy that is decided and recorded, not enforced.
const OBSERVE: &str = "observe";

fn read(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|e| PolicyError {
        file: path.to_owned(),
        line: None,
        col: None,
        message: format!("cannot read: {e}"),
    })
}

fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PolicyError {
        file: dir.to_owned(),
        line: None,
        col: None,
        message: format!("cannot list policy directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "cedar"))
        .collect();
    files.sort();
    Ok(files)
}

/// Parses one file and adds its policies to `set` under stable ids; returns the ids added.
fn add_file(
    set: &mut PolicySet,
    path: &Path,
    text: &str,
    errors: &mut Vec<PolicyError>,
) -> Vec<PolicyId> {
    let parsed = match PolicySet::from_str(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            errors.extend(e.iter().flat_map(|d| located(path, text, d)));
            return Vec::new();
        }
    };
    if parsed.templates().next().is_some() {
        errors.push(PolicyError {
            file: path.to_owned(),
            line: None,
            col: None,
            message:
                "policy templates (?principal, ?resource) are not supported: write static policies"
                    .into(),
        });
        return Vec::new();
    }
    let mut added = Vec::new();
    let file = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut policies: Vec<_> = parsed.policies().collect();
    // `PolicySet` does not keep source order; the parser's ids ("policy0", …) do.
    policies.sort_by_key(|p| policy_index(p.id()));
    for (n, policy) in policies.into_iter().enumerate() {
        let id = policy
            .annotation("id")
            .map_or_else(|| format!("{file}#{n}"), str::to_owned);
        let loc = text.find(&format!("@id(\"{id}\")"));
        let (line, col) = loc.map(|o| line_col(text, o)).unzip();
        if policy.annotation(OBSERVE).is_some() && policy.effect() == Effect::Permit {
            errors.push(PolicyError {
                file: path.to_owned(),
                line,
                col,
                message: format!("policy id \"{id}\": @observe is for forbid policies only (an observed permit could only allow what is denied; write it as a permit once it may)"),
            });
            continue;
        }
        let id = PolicyId::new(&id);
        if let Err(e) = set.add(policy.new_id(id.clone())) {
            errors.push(PolicyError {
                file: path.to_owned(),
                line,
                col,
                message: format!("policy id \"{id}\": {e}"),
            });
        } else {
            added.push(id);
        }
    }
    added
}

fn policy_index(id: &PolicyId) -> usize {
    id.to_string()
        .strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

fn validate<'a>(
    schema: &Schema,
    set: &PolicySet,
    source_of: impl Fn(&PolicyId) -> Option<&'a (PathBuf, String)>,
) -> Result<(), Vec<PolicyError>> {
    let result = Validator::new(schema.clone()).validate(set, ValidationMode::Strict);
    if result.validation_passed() {
        return Ok(());
    }
    let errors = result
        .validation_errors()
        .flat_map(|error| match source_of(error.policy_id()) {
            Some((path, text)) => located(path, text, error),
            None => located(Path::new("<policies>"), "", error),
        })
        .collect();
    Err(errors)
}

/// Turns a Cedar diagnostic into located errors, one per related diagnostic.
fn located(path: &Path, text: &str, d: &dyn Diagnostic) -> Vec<PolicyError> {
    let offset = d
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset());
    let (line, col) = offset.map(|o| line_col(text, o)).unzip();
    let mut message = d.to_string();
    if let Some(help) = d.help() {
        message.push_str(&format!(" ({help})"));
    }
    let mut errors = vec![PolicyError {
        file: path.to_owned(),
        line,
        col,
        message,
    }];
    if let Some(related) = d.related() {
        errors.extend(related.flat_map(|r| located(path, text, r)));
    }
    errors
}
