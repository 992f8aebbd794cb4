//! The import graph has no circle through the top: only the command line (`src/main.rs`,
//! `src/cli/`) and the wiring itself (`src/gateway.rs`) may name `gateway`. Bindings, the admin
//! API and the listeners get what they need (shutdown as a `CancellationToken`, the shared
//! `admin::State`) handed down by the gateway, never by importing it.

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
