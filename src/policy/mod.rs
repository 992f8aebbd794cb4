//! Cedar policies: loading, validation against the schema, and atomic reload.
//!
//! In: a directory with `m2mguard.cedarschema` and `*.cedar` files. Out: a validated
//! [`PolicyBundle`] (schema + policy set) behind a [`Policies`] handle whose readers never
//! block. Invariant: only a bundle that parsed and validated in full is ever installed; a
//! failed reload keeps the previous bundle and returns every error, located by file and line.
//!
//! A policy annotated `@observe` is loaded (and validated) but not enforced:
//! [`PolicyBundle::set`] holds the enforced policies, [`PolicyBundle::observed`] the `@observe`
//! ones, so that the guard can record what they would deny. Only `forbid` policies may be
//! `@observe` (refused at load otherwise). So the full set allows exactly when the enforced set
//! allows and no observed forbid matches (or fails to evaluate, which denies): deciding the
//! observed forbids on their own gives the full set's answer at the cost of those policies.

mod load;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use cedar_policy::{PolicySet, Schema};

pub use load::load_dir;

/// The schema file inside the policy directory.
pub const SCHEMA_FILE: &str = "m2mguard.cedarschema";

/// A schema and the policies that validated against it.
pub struct PolicyBundle {
    pub schema: Schema,
    /// The enforced policies: all but the `@observe` ones.
    pub set: PolicySet,
    /// The `@observe` policies (all `forbid`); `None` when there are none (then nothing more
    /// is evaluated).
    pub observed: Option<PolicySet>,
    /// The ids of the `@observe` policies, sorted.
    pub observing: Vec<String>,
    /// Number of policies and templates, for status lines.
    pub count: usize,
    /// Whether any policy reads `context.time`. When none does, a decision does not depend on
    /// the clock, and the guard may reuse it for identical requests.
    pub uses_time: bool,
}

/// One problem in a policy or schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(line), Some(col)) = (self.line, self.col) {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The live policy set, swapped whole on reload.
pub struct Policies {
    dir: PathBuf,
    current: ArcSwap<PolicyBundle>,
}

impl Policies {
    /// Loads and validates `dir`; fails with every error found.
    pub fn load(dir: &Path) -> Result<Self, Vec<PolicyError>> {
        let bundle = load_dir(dir)?;
        Ok(Policies {
            dir: dir.to_owned(),
            current: ArcSwap::from_pointee(bundle),
        })
    }

    /// The bundle in force now.
    pub fn current(&self) -> Arc<PolicyBundle> {
        self.current.load_full()
    }

    /// Re-reads the directory; installs the new set only if all of it is valid.
    pub fn reload(&self) -> Result<usize, Vec<PolicyError>> {
        let bundle = load_dir(&self.dir)?;
        let count = bundle.count;
        self.current.store(Arc::new(bundle));
        Ok(count)
    }
}

#[cfg(test)]
mod tests;
