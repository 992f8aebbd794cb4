//! The import graph has no circle through the top: only the command line (`src/main.rs`,
//! `src/cli/`) and the wiring itself (`src/gateway.rs`) may name `gateway`. Bindings, the admin
//! API and the listeners get what they need (shutdown as a `CancellationToken`, the shared
//! `admin::State`) handed down by the gateway, never by importing it. Nor is there a circle
//! among the other top-level modules (`config` → `guard` → `policy` → `config`, say).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn nothing_below_the_gateway_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let allowed = |p: &Path| {
        let rel = p.strip_prefix(&src).unwrap();
        rel == Path::new("gateway.rs") || rel == Path::new("main.rs") || rel.starts_with("cli")
    };
    let offenders: Vec<String> = files
        .iter()
        .filter(|p| !allowed(p))
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap();
            text.contains("crate::gateway") || text.contains("m2mguard::gateway")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "import gateway: {offenders:?}");
}

/// The top-level module (`src/<name>.rs` or `src/<name>/`) a source file belongs to.
fn top(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    let name = first.as_os_str().to_str().unwrap();
    name.strip_suffix(".rs").unwrap_or(name).to_owned()
}

/// The top-level modules a file names through `crate::` paths (`use` lines and paths in code,
/// tests included; not comments).
fn named(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let rest = rest.strip_prefix('{').unwrap_or(rest);
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.insert(rest[..end].to_owned());
            // `crate::{a, b::c}`: every module of the group.
            if line[at..].starts_with("crate::{") {
                let group = &rest[..rest.find('}').unwrap_or(rest.len())];
                for item in group.split(',') {
                    let item = item.trim();
                    let name = item.split("::").next().unwrap_or(item);
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn top_level_modules_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| top(&src, f)).collect();
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = top(&src, file);
        let text = fs::read_to_string(file).unwrap();
        let to: Vec<String> = named(&text)
            .into_iter()
            .filter(|m| *m != from && modules.contains(m))
            .collect();
        imports.entry(from).or_default().extend(to);
    }
    // Depth-first: a module met again while on the path closes a circle.
    fn visit(
        m: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut circle = path[at..].to_vec();
            circle.push(m.to_owned());
            return Some(circle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_owned());
        for next in imports.get(m).into_iter().flatten() {
            if let Some(circle) = visit(next, imports, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for m in imports.keys() {
        let circle = visit(m, &imports, &mut Vec::new(), &mut done);
        assert!(
            circle.is_none(),
            "import circle: {}",
            circle.unwrap().join(" -> ")
        );
    }
}
