//! Resource-id targets resolved to the structured name the CSE knows them by, by asking the
//! CSE: a retrieve of the id gives its `rn`, `ty` and parent `pi`, and the walk goes up until
//! the CSEBase (ty 5). Every name learned on the way is cached, so a warm lookup costs nothing
//! and a cold one usually one retrieve (the parent is known).
//!
//! In: a canonical target that [`Addressing::resource_id`] reports as a resource id. Out: the
//! structured target with whatever followed the id (`/la`), or [`Unresolved`]. Bounds: at most
//! [`MAX_DEPTH`] levels, at most `max_lookups` retrieves in flight (a lookup waits at most
//! [`LOOKUP_WAIT`] for its turn, then is refused), each within the [`Lookup`]'s own timeout.
//!
//! What is cached: a resource's name and parent never change while it exists, and CSE-assigned
//! ids are not reused, so names live in a bounded cache for at most [`NAME_TTL`] — except those
//! of AEs and remoteCSEs (ty 2, 16), whose ids are their AE-ID or CSE-ID and come back when the
//! same registrant registers again, under another name: those are asked every time. An id the
//! CSE does not know is remembered as such for [`MISS_TTL`], so a flood of invented ids costs
//! one retrieve each at most that often.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::Semaphore;

use super::{ambiguous, Addressing};

/// Levels walked up from a resource to the CSEBase before giving up.
pub const MAX_DEPTH: usize = 32;
/// How long a learned name is trusted.
pub const NAME_TTL: Duration = Duration::from_secs(3600);
/// How long an id the CSE did not know is refused without asking again.
pub const MISS_TTL: Duration = Duration::from_secs(10);
/// How long a lookup waits for one of the `max_lookups` turns.
pub const LOOKUP_WAIT: Duration = Duration::from_secs(1);
/// The CSEBase resource type.
const CSE_BASE: u16 = 5;
/// Types whose resource id is chosen by the registrant (AE-ID, CSE-ID) and so may come back
/// under another name: never cached.
const REUSABLE_IDS: [u16; 2] = [2, 16];

/// What a retrieve of one resource tells about its place in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub ty: u16,
    pub rn: String,
    /// The parent's resource id (`pi`), CSE-relative or SP-relative; empty for the CSEBase.
    pub pi: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("the CSE knows no resource {0:?}")]
    NotFound(String),
    #[error("the CSE answered rsc {rsc} for {ri:?}")]
    Refused { ri: String, rsc: u16 },
    #[error("the CSE's answer for {0:?} is not a resource with rn, ty and pi")]
    Malformed(String),
    #[error("the CSE could not be asked: {0}")]
    Unreachable(String),
}

pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Result<Place, LookupError>> + Send + 'a>>;

/// Retrieves one resource of the local CSE by its resource id.
pub trait Lookup: Send + Sync {
    fn place<'a>(&'a self, ri: &'a str) -> LookupFuture<'a>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    #[error("resource-id targets are refused: no gateway.resolve_originator is configured")]
    Disabled,
    #[error("{0}")]
    Lookup(#[from] LookupError),
    #[error("more than {MAX_DEPTH} levels above {0:?}")]
    TooDeep(String),
    #[error("{0:?} is not under this CSE's CSEBase")]
    Elsewhere(String),
    #[error("too many resource-id lookups in flight")]
    Busy,
}

pub struct Resolver {
    addressing: Addressing,
    lookup: Option<Arc<dyn Lookup>>,
    /// Resource id → structured SP-relative target (`/id-in/cse-in/AE/cnt`).
    names: Cache<String, Arc<str>>,
    /// Ids the CSE answered "not found" for, recently.
    misses: Cache<String, ()>,
    in_flight: Semaphore,
}

impl Resolver {
    /// Without `lookup`, every resource-id target is [`Unresolved::Disabled`].
    pub fn new(
        addressing: Addressing,
        lookup: Option<Arc<dyn Lookup>>,
        cache_entries: u64,
        max_lookups: usize,
    ) -> Self {
        Resolver {
            addressing,
            lookup,
            names: Cache::builder()
                .max_capacity(cache_entries)
                .time_to_live(NAME_TTL)
                .build(),
            misses: Cache::builder()
                .max_capacity(cache_entries)
                .time_to_live(MISS_TTL)
                .build(),
            in_flight: Semaphore::new(max_lookups),
        }
    }

    pub fn addressing(&self) -> &Addressing {
        &self.addressing
    }

    /// The structured target for `to` when it is a resource id; `None` when it is not one.
    pub async fn resolve(&self, to: &str) -> Result<Option<String>, Unresolved> {
        let Some((ri, tail)) = self.addressing.resource_id(to) else {
            return Ok(None);
        };
        let name = self.name(ri).await?;
        Ok(Some(format!("{name}{tail}")))
    }

    async fn name(&self, ri: &str) -> Result<Arc<str>, Unresolved> {
        let lookup = self.lookup.as_ref().ok_or(Unresolved::Disabled)?;
        // (resource id, rn, cacheable) from the target up to the first ancestor whose name is
        // known.
        let mut chain: Vec<(String, String, bool)> = Vec::new();
        let mut current = ri.to_owned();
        let known = loop {
            if let Some(name) = self.names.get(&current) {
                break name;
            }
            if chain.len() == MAX_DEPTH {
                return Err(Unresolved::TooDeep(ri.to_owned()));
            }
            let place = self.ask(lookup.as_ref(), &current).await?;
            if ambiguous(&place.rn) {
                return Err(LookupError::Malformed(current).into());
            }
            if place.ty == CSE_BASE {
                if place.rn != self.addressing.cse_name {
                    return Err(Unresolved::Elsewhere(ri.to_owned()));
                }
                let base: Arc<str> = format!("{}/{}", self.addressing.cse_id, place.rn).into();
                self.names.insert(current, base.clone());
                break base;
            }
            let parent = self
                .parent(&place.pi)
                .ok_or_else(|| Unresolved::Elsewhere(ri.to_owned()))?;
            let cacheable = !REUSABLE_IDS.contains(&place.ty);
            chain.push((std::mem::replace(&mut current, parent), place.rn, cacheable));
        };
        let mut name = known.to_string();
        let mut last = known;
        for (id, rn, cacheable) in chain.into_iter().rev() {
            name.push('/');
            name.push_str(&rn);
            last = Arc::from(name.as_str());
            if cacheable {
                self.names.insert(id, last.clone());
            }
        }
        Ok(last)
    }

    /// One retrieve, when a turn is free within [`LOOKUP_WAIT`]; a "not found" is remembered.
    async fn ask(&self, lookup: &dyn Lookup, ri: &str) -> Result<Place, Unresolved> {
        if self.misses.contains_key(ri) {
            return Err(LookupError::NotFound(ri.to_owned()).into());
        }
        let _turn = tokio::time::timeout(LOOKUP_WAIT, self.in_flight.acquire())
            .await
            .map_err(|_| Unresolved::Busy)?
            .map_err(|_| Unresolved::Busy)?;
        let answer = lookup.place(ri).await;
        if let Err(LookupError::NotFound(_)) = &answer {
            self.misses.insert(ri.to_owned(), ());
        }
        Ok(answer?)
    }

    /// A parent id as a local resource id: `pi` is CSE-relative (`cnt1`) or SP-relative on our
    /// CSE (`/id-in/cnt1`); anything else is not ours.
    fn parent(&self, pi: &str) -> Option<String> {
        let local = match pi.strip_prefix(self.addressing.cse_id.as_str()) {
            Some(rest) => rest.strip_prefix('/')?,
            None if pi.starts_with('/') => return None,
            None => pi,
        };
        (!ambiguous(local)).then(|| local.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A CSE tree: id → place; counts the retrieves it answers.
    struct Tree {
        places: HashMap<&'static str, Place>,
        asked: AtomicUsize,
    }

    impl Lookup for Tree {
        fn place<'a>(&'a self, ri: &'a str) -> LookupFuture<'a> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            let found = self.places.get(ri).cloned();
            Box::pin(async move { found.ok_or_else(|| LookupError::NotFound(ri.to_owned())) })
        }
    }

    fn place(ty: u16, rn: &str, pi: &str) -> Place {
        Place {
            ty,
            rn: rn.into(),
            pi: pi.into(),
        }
    }

    fn tree() -> Arc<Tree> {
        Arc::new(Tree {
            places: HashMap::from([
                ("id-in", place(5, "cse-in", "")),
                ("ae1", place(2, "meter", "id-in")),
                ("cnt1", place(3, "data", "/id-in/ae1")),
                ("far", place(3, "x", "//sp2/id-x/y")),
                ("loop", place(3, "l", "loop")),
            ]),
            asked: AtomicUsize::new(0),
        })
    }

    fn resolver(tree: &Arc<Tree>) -> Resolver {
        let lookup: Arc<dyn Lookup> = tree.clone();
        Resolver::new(
            Addressing::new("/id-in", "cse-in", None),
            Some(lookup),
            100,
            4,
        )
    }

    #[tokio::test]
    async fn a_resource_id_resolves_to_its_structured_name_once() {
        let tree = tree();
        let r = resolver(&tree);
        assert_eq!(
            r.resolve("/id-in/cnt1/la").await.unwrap().as_deref(),
            Some("/id-in/cse-in/meter/data/la")
        );
        assert_eq!(tree.asked.load(Ordering::Relaxed), 3);
        assert_eq!(
            r.resolve("/id-in/ae1").await.unwrap().as_deref(),
            Some("/id-in/cse-in/meter")
        );
        assert_eq!(
            tree.asked.load(Ordering::Relaxed),
            4,
            "an AE is asked every time"
        );
        assert_eq!(
            r.resolve("/id-in/id-in").await.unwrap().as_deref(),
            Some("/id-in/cse-in")
        );
        r.resolve("/id-in/cnt1").await.unwrap();
        assert_eq!(
            tree.asked.load(Ordering::Relaxed),
            4,
            "other levels are cached"
        );
    }

    #[tokio::test]
    async fn unknown_ids_are_remembered_for_a_while() {
        let tree = tree();
        let r = resolver(&tree);
        for _ in 0..3 {
            assert!(r.resolve("/id-in/nope").await.is_err());
        }
        assert_eq!(tree.asked.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn structured_targets_need_no_resolution() {
        let tree = tree();
        assert_eq!(resolver(&tree).resolve("/id-in/cse-in/x").await, Ok(None));
        assert_eq!(tree.asked.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn unknown_foreign_and_cyclic_ids_are_unresolved() {
        let tree = tree();
        let r = resolver(&tree);
        assert!(matches!(
            r.resolve("/id-in/nope").await,
            Err(Unresolved::Lookup(LookupError::NotFound(_)))
        ));
        assert!(matches!(
            r.resolve("/id-in/far").await,
            Err(Unresolved::Elsewhere(_))
        ));
        assert!(matches!(
            r.resolve("/id-in/loop").await,
            Err(Unresolved::TooDeep(_))
        ));
        let off = Resolver::new(Addressing::new("/id-in", "cse-in", None), None, 10, 1);
        assert_eq!(off.resolve("/id-in/cnt1").await, Err(Unresolved::Disabled));
    }
}
