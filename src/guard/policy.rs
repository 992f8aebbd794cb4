//! Last stage, Cedar policy: one authorization request per primitive, decided against the
//! policy set in force. An evaluation error, or a request the engine cannot build, denies.
//!
//! What does not change between requests is built once and cached: a node's entities
//! (principal and groups, rebuilt when the repository hands out a new record), the Cedar
//! value of a source address, whose construction re-parses the extension name every time, and
//! decisions themselves. A Cedar decision is a pure function of its inputs, so a cached one is
//! reused only when every input is the same: the same policy bundle and node record (by
//! pointer: a reload or a node change makes new ones), operation, target, `ty`, source address,
//! protocol, authentication, and — when any policy reads `context.time` — the same second.
//!
//! `@observe` policies: the enforced set decides; when the bundle has `@observe` policies
//! (all `forbid`, see [`crate::policy`]) and the enforced set allows, they are decided on
//! their own: one that matches (or fails to evaluate) is the request's would-be denial
//! ([`Allowed::would_deny`]), cached with the rest of the outcome. Without `@observe` policies
//! nothing more is evaluated.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema,
};
use moka::sync::Cache;

use super::{Denial, Findings, Principal, Reason, Stage};
use crate::policy::PolicyBundle;
use crate::primitive::{Operation, Primitive, Protocol, TopicAction, TopicRequest};
use crate::registration::Asked;
use crate::store::{Node, Standing};

/// Builds and decides Cedar requests.
pub struct Evaluator {
    node_type: EntityTypeName,
    group_type: EntityTypeName,
    resource_type: EntityTypeName,
    topic_type: EntityTypeName,
    actions: HashMap<Operation, EntityUid>,
    topic_actions: HashMap<TopicAction, EntityUid>,
    register_action: EntityUid,
    authorizer: Authorizer,
    /// Per node id: the record the entities were built from, and the entities.
    principals: Cache<String, (Arc<Node>, Entities)>,
    sources: Cache<IpAddr, RestrictedExpression>,
    decisions: Cache<DecisionKey, CachedDecision>,
    /// Topic decisions: a session publishes to the same few topics again and again.
    topic_decisions: Cache<TopicKey, CachedDecision>,
    doorkeeper: Doorkeeper,
    /// The gateway's own standing, for `context.repository`.
    standing: Arc<Standing>,
}

/// Everything a topic decision depends on besides the bundle and the node record (the
/// oneM2M parts of a topic follow from its name).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TopicKey {
    node: String,
    action: TopicAction,
    topic: String,
    source: IpAddr,
    authenticated: bool,
    second: Option<u64>,
}

/// One Cedar question about a request: who asks, as which action (its uid and name), with
/// what the message checks found, extra context entries, and when.
struct Ask<'a> {
    p: &'a Primitive,
    principal: &'a Principal,
    action: (&'a EntityUid, &'static str),
    findings: &'a Findings,
    extra: Vec<(String, RestrictedExpression)>,
    now: SystemTime,
}

/// Everything a decision depends on besides the bundle and the node record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct DecisionKey {
    node: String,
    op: Operation,
    to: String,
    ty: Option<u16>,
    source: IpAddr,
    protocol: Protocol,
    authenticated: bool,
    /// The decision's second, when a policy reads the time.
    second: Option<u64>,
    findings: Findings,
}

#[derive(Clone)]
struct CachedDecision {
    bundle: Arc<PolicyBundle>,
    node: Arc<Node>,
    outcome: Result<Allowed, Denial>,
}

/// What the policies allowed: the permitting policy ids, and the denial the `@observe`
/// policies would add (they forbid what the enforced ones allow).
#[derive(Clone, Debug, PartialEq)]
pub struct Allowed {
    pub ids: Vec<String>,
    pub would_deny: Option<Denial>,
}

/// Decisions remembered at most.
const DECISION_CACHE_ENTRIES: u64 = 100_000;
/// Recent first sightings the doorkeeper remembers.
const DOORKEEPER_SLOTS: usize = 1 << 16;

/// A one-hit filter in front of the decision cache: a request is cached the second time it is
/// seen, so a stream of one-off requests never pays for cache inserts (measured: an insert
/// costs about as much as the Cedar evaluation it would save). Slots are overwritten freely;
/// a collision only costs a cache entry, never a wrong decision.
struct Doorkeeper {
    slots: Box<[AtomicU64]>,
    hasher: RandomState,
}

impl Doorkeeper {
    fn new(slots: usize) -> Self {
        Doorkeeper {
            slots: (0..slots.max(1)).map(|_| AtomicU64::new(0)).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Whether `key` was seen recently; remembers it either way.
    fn seen_before(&self, key: &DecisionKey) -> bool {
        let hash = self.hasher.hash_one(key);
        let slot = &self.slots[(hash % self.slots.len() as u64) as usize];
        slot.swap(hash, Relaxed) == hash
    }
}

impl Evaluator {
    pub fn new(node_cache_capacity: u64, standing: Arc<Standing>) -> Self {
        let name = |s: &str| EntityTypeName::from_str(s).unwrap_or_else(|_| unreachable!("{s}"));
        let action_type = name("Action");
        let actions = Operation::ALL
            .into_iter()
            .map(|op| (op, uid(&action_type, op.as_str())))
            .collect();
        let topic_actions = [TopicAction::Publish, TopicAction::Subscribe]
            .into_iter()
            .map(|a| (a, uid(&action_type, a.as_str())))
            .collect();
        Evaluator {
            node_type: name("Node"),
            group_type: name("Group"),
            resource_type: name("Resource"),
            topic_type: name("Topic"),
            actions,
            topic_actions,
            register_action: uid(&action_type, "register"),
            standing,
            authorizer: Authorizer::new(),
            principals: Cache::new(node_cache_capacity),
            sources: Cache::new(10_000),
            decisions: Cache::new(DECISION_CACHE_ENTRIES),
            topic_decisions: Cache::new(DECISION_CACHE_ENTRIES),
            doorkeeper: Doorkeeper::new(DOORKEEPER_SLOTS),
        }
    }

    /// Decides `p` from `principal` under `bundle`; returns the ids of the permitting
    /// policies and what `@observe` policies would deny. Decisions on unenrolled principals
    /// are not cached (their record is made for the request).
    pub fn check(
        &self,
        bundle: &Arc<PolicyBundle>,
        p: &Primitive,
        principal: &Principal,
        findings: &Findings,
        now: SystemTime,
    ) -> Result<Allowed, Denial> {
        let node = &principal.node;
        if !principal.enrolled {
            return self.evaluate(bundle, &self.ask(p, principal, findings, now));
        }
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let key = DecisionKey {
            node: node.id.clone(),
            op: p.op,
            to: p.to.clone(),
            ty: p.ty,
            source: p.peer.addr.ip(),
            protocol: p.peer.protocol,
            authenticated: p.peer.authenticated(),
            second: bundle.uses_time.then_some(secs),
            findings: findings.clone(),
        };
        if let Some(hit) = cached(&self.decisions, &key, bundle, node) {
            return hit;
        }
        let outcome = self.evaluate(bundle, &self.ask(p, principal, findings, now));
        if self.doorkeeper.seen_before(&key) {
            remember(&self.decisions, key, bundle, node, &outcome);
        }
        outcome
    }

    /// Decides a topic request from `node` under `bundle`, like [`Evaluator::check`].
    pub fn check_topic(
        &self,
        bundle: &Arc<PolicyBundle>,
        t: &TopicRequest,
        principal: &Principal,
        now: SystemTime,
    ) -> Result<Allowed, Denial> {
        let node = &principal.node;
        if !principal.enrolled {
            let built = self.build_topic(t, principal, now, None);
            return self.decide_topic_request(bundle, t, built);
        }
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let key = TopicKey {
            node: node.id.clone(),
            action: t.action,
            topic: t.topic.clone(),
            source: t.peer.addr.ip(),
            authenticated: t.peer.authenticated(),
            second: bundle.uses_time.then_some(secs),
        };
        if let Some(hit) = cached(&self.topic_decisions, &key, bundle, node) {
            return hit;
        }
        let built = self.build_topic(t, principal, now, None);
        let outcome = self.decide_topic_request(bundle, t, built);
        remember(&self.topic_decisions, key, bundle, node, &outcome);
        outcome
    }

    fn decide_topic_request(
        &self,
        bundle: &PolicyBundle,
        t: &TopicRequest,
        built: Result<(Request, Entities), String>,
    ) -> Result<Allowed, Denial> {
        let what = || Reason::NoPolicyPermits {
            action: t.action.as_str(),
            resource: format!("{:?}", t.topic),
            principal: t.originator.clone(),
        };
        built
            .map_err(|e| Denial::new(Stage::Policy, Reason::PolicyRequest(e)))
            .and_then(|(request, entities)| self.decide(bundle, &request, &entities, what))
    }

    /// The Cedar request and entities for a topic request (`schema` as in [`Evaluator::build`]).
    pub(super) fn build_topic(
        &self,
        t: &TopicRequest,
        principal: &Principal,
        now: SystemTime,
        schema: Option<&Schema>,
    ) -> Result<(Request, Entities), String> {
        let node = &principal.node;
        let resource = uid(&self.topic_type, &t.topic);
        let mut attrs = HashMap::from([(
            "name".to_owned(),
            RestrictedExpression::new_string(t.topic.clone()),
        )]);
        if let Some(m) = &t.onem2m {
            attrs.insert(
                "onem2m".to_owned(),
                RestrictedExpression::new_string(m.kind.to_owned()),
            );
            for (field, id) in [("originator", &m.originator), ("receiver", &m.receiver)] {
                if let Some(id) = id {
                    attrs.insert(
                        field.to_owned(),
                        RestrictedExpression::new_entity_uid(uid(&self.node_type, id)),
                    );
                }
            }
        }
        let topic =
            Entity::new(resource.clone(), attrs, HashSet::new()).map_err(|e| e.to_string())?;
        let entities = self
            .principal(node, principal.enrolled, schema)?
            .add_entities([topic], schema)
            .map_err(|e| e.to_string())?;
        let context =
            Context::from_pairs(self.base_context(&t.peer, now)).map_err(|e| e.to_string())?;
        let principal = uid(&self.node_type, &node.id);
        let action = self.topic_actions[&t.action].clone();
        let request = Request::new(principal, action, resource, context, schema)
            .map_err(|e| e.to_string())?;
        Ok((request, entities))
    }

    /// Decides the registration `p` by the unenrolled `principal`, which asks for `asked`:
    /// the permitting policy ids (and what `@observe` policies would deny), and the groups
    /// their `@groups("a b")` annotations give the new node. Not cached: registrations are rare.
    pub fn check_registration(
        &self,
        bundle: &PolicyBundle,
        p: &Primitive,
        principal: &Principal,
        findings: &Findings,
        asked: &Asked,
        now: SystemTime,
    ) -> Result<(Allowed, Vec<String>), Denial> {
        let ask = Ask {
            action: (&self.register_action, "register"),
            extra: registration_context(p, asked),
            ..self.ask(p, principal, findings, now)
        };
        let allowed = self.evaluate(bundle, &ask)?;
        let ids = &allowed.ids;
        let mut groups = Vec::new();
        for id in ids {
            let annotation = bundle
                .set
                .policy(&PolicyId::new(id))
                .and_then(|policy| policy.annotation("groups"));
            for g in annotation.unwrap_or_default().split_whitespace() {
                if !groups.iter().any(|have| have == g) {
                    groups.push(g.to_owned());
                }
            }
        }
        Ok((allowed, groups))
    }

    /// The question `p` asks as its own operation.
    fn ask<'a>(
        &'a self,
        p: &'a Primitive,
        principal: &'a Principal,
        findings: &'a Findings,
        now: SystemTime,
    ) -> Ask<'a> {
        Ask {
            p,
            principal,
            action: (&self.actions[&p.op], p.op.as_str()),
            findings,
            extra: Vec::new(),
            now,
        }
    }

    fn evaluate(&self, bundle: &PolicyBundle, ask: &Ask) -> Result<Allowed, Denial> {
        let (request, entities) = self
            .build_as(ask, None)
            .map_err(|e| Denial::new(Stage::Policy, Reason::PolicyRequest(e)))?;
        let what = || Reason::NoPolicyPermits {
            action: ask.action.1,
            resource: ask.p.to.clone(),
            principal: ask.p.fr.clone(),
        };
        self.decide(bundle, &request, &entities, what)
    }

    /// The enforced set's decision and, when it allows and the bundle has `@observe` policies,
    /// what they would deny.
    fn decide(
        &self,
        bundle: &PolicyBundle,
        request: &Request,
        entities: &Entities,
        no_permit: impl FnOnce() -> Reason,
    ) -> Result<Allowed, Denial> {
        let ids = self.authorize(&bundle.set, request, entities, no_permit)?;
        let would_deny =
            (bundle.observed.as_ref()).and_then(|set| self.observe(set, request, entities));
        Ok(Allowed { ids, would_deny })
    }

    /// The denial the observed forbids add to an allowed request: those that match, or the
    /// first evaluation error (which would deny, as in [`Evaluator::authorize`]).
    fn observe(&self, set: &PolicySet, request: &Request, entities: &Entities) -> Option<Denial> {
        let response = self.authorizer.is_authorized(request, set, entities);
        if let Some(error) = response.diagnostics().errors().next() {
            let reason = Reason::PolicyEvaluation(error.to_string());
            return Some(Denial::new(Stage::Policy, reason));
        }
        let mut policies: Vec<String> = (response.diagnostics().reason())
            .map(ToString::to_string)
            .collect();
        policies.sort();
        (!policies.is_empty()).then(|| Denial::new(Stage::Policy, Reason::Forbidden { policies }))
    }

    /// One Cedar decision: the permitting policy ids, or the denial (`no_permit` is the reason
    /// when no policy permits).
    fn authorize(
        &self,
        set: &PolicySet,
        request: &Request,
        entities: &Entities,
        no_permit: impl FnOnce() -> Reason,
    ) -> Result<Vec<String>, Denial> {
        let response = self.authorizer.is_authorized(request, set, entities);
        let mut ids: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        ids.sort();
        if let Some(error) = response.diagnostics().errors().next() {
            return Err(Denial::new(
                Stage::Policy,
                Reason::PolicyEvaluation(error.to_string()),
            ));
        }
        match response.decision() {
            Decision::Allow => Ok(ids),
            Decision::Deny if ids.is_empty() => Err(Denial::new(Stage::Policy, no_permit())),
            Decision::Deny => Err(Denial::new(
                Stage::Policy,
                Reason::Forbidden { policies: ids },
            )),
        }
    }

    /// The Cedar request and entities for `p` from an enrolled `node`. With `schema`, both
    /// are checked against it (tests do this; the request path skips it, the shapes being
    /// fixed here).
    #[cfg(test)]
    pub(super) fn build(
        &self,
        p: &Primitive,
        node: &Arc<Node>,
        findings: &Findings,
        now: SystemTime,
        schema: Option<&Schema>,
    ) -> Result<(Request, Entities), String> {
        let principal = Principal {
            node: node.clone(),
            enrolled: true,
        };
        self.build_as(&self.ask(p, &principal, findings, now), schema)
    }

    /// The Cedar request and entities of `ask`.
    fn build_as(&self, ask: &Ask, schema: Option<&Schema>) -> Result<(Request, Entities), String> {
        let Ask {
            p,
            principal,
            findings,
            now,
            ..
        } = *ask;
        let node = &principal.node;
        let resource = uid(&self.resource_type, &p.to);
        let path = HashMap::from([(
            "path".to_owned(),
            RestrictedExpression::new_string(p.to.clone()),
        )]);
        let resource_entity =
            Entity::new(resource.clone(), path, HashSet::new()).map_err(|e| e.to_string())?;
        let entities = self
            .principal(node, principal.enrolled, schema)?
            .add_entities([resource_entity], schema)
            .map_err(|e| e.to_string())?;
        let mut pairs = self.context(p, findings, now)?;
        pairs.extend_from_slice(&ask.extra);
        let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
        let principal = uid(&self.node_type, &node.id);
        let action = ask.action.0.clone();
        let request = Request::new(principal, action, resource, context, schema)
            .map_err(|e| e.to_string())?;
        Ok((request, entities))
    }

    /// The node and its groups as entities, from the cache while the record is the same
    /// (only enrolled nodes are cached: an unenrolled one's record is made per request).
    fn principal(
        &self,
        node: &Arc<Node>,
        enrolled: bool,
        schema: Option<&Schema>,
    ) -> Result<Entities, String> {
        if schema.is_none() && enrolled {
            if let Some((built_from, entities)) = self.principals.get(&node.id) {
                if Arc::ptr_eq(&built_from, node) {
                    return Ok(entities);
                }
            }
        }
        let groups: HashSet<EntityUid> = node
            .groups
            .iter()
            .map(|g| uid(&self.group_type, g))
            .collect();
        let mut list: Vec<Entity> = groups
            .iter()
            .map(|g| Entity::new_no_attrs(g.clone(), HashSet::new()))
            .collect();
        let mut attrs = HashMap::from([
            (
                "kind".to_owned(),
                RestrictedExpression::new_string(node.kind.as_str().to_owned()),
            ),
            (
                "enrolled".to_owned(),
                RestrictedExpression::new_bool(enrolled),
            ),
        ]);
        if let Some(registered) = &node.registered {
            attrs.insert(
                "registered".to_owned(),
                RestrictedExpression::new_string(registered.resource.clone()),
            );
        }
        list.push(
            Entity::new(uid(&self.node_type, &node.id), attrs, groups)
                .map_err(|e| e.to_string())?,
        );
        let entities = Entities::from_entities(list, schema).map_err(|e| e.to_string())?;
        if enrolled {
            self.principals
                .insert(node.id.clone(), (node.clone(), entities.clone()));
        }
        Ok(entities)
    }

    fn context(
        &self,
        p: &Primitive,
        findings: &Findings,
        now: SystemTime,
    ) -> Result<Vec<(String, RestrictedExpression)>, String> {
        let mut pairs = self.base_context(&p.peer, now);
        if let Some(ty) = p.ty {
            pairs.push((
                "resource_type".to_owned(),
                RestrictedExpression::new_long(ty.into()),
            ));
        }
        pairs.extend(findings_context(findings)?);
        Ok(pairs)
    }

    /// The context entries every request has: protocol, source, time, authenticated.
    fn base_context(
        &self,
        peer: &crate::primitive::Peer,
        now: SystemTime,
    ) -> Vec<(String, RestrictedExpression)> {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let ip = peer.addr.ip();
        let source = self
            .sources
            .get_with(ip, || RestrictedExpression::new_ip(ip.to_string()));
        vec![
            (
                "protocol".to_owned(),
                RestrictedExpression::new_string(peer.protocol.as_str().to_owned()),
            ),
            ("source".to_owned(), source),
            (
                "time".to_owned(),
                RestrictedExpression::new_long(i64::try_from(secs).unwrap_or(i64::MAX)),
            ),
            (
                "authenticated".to_owned(),
                RestrictedExpression::new_bool(peer.authenticated()),
            ),
            ("repository".to_owned(), self.repository(secs)),
        ]
    }

    /// `context.repository`: whether the repository follows the IN feed, and how many
    /// seconds old its view is (0 when it does not follow or has verified no head yet).
    fn repository(&self, now_s: u64) -> RestrictedExpression {
        let age = self.standing.age_s(now_s).unwrap_or(0);
        RestrictedExpression::new_record([
            (
                "synced".to_owned(),
                RestrictedExpression::new_bool(self.standing.synced()),
            ),
            (
                "age_s".to_owned(),
                RestrictedExpression::new_long(i64::try_from(age).unwrap_or(i64::MAX)),
            ),
        ])
        .unwrap_or_else(|_| unreachable!("two distinct attribute names"))
    }
}

/// `checks`, `flags` and, with a token, `token`: see the schema.
fn findings_context(f: &Findings) -> Result<Vec<(String, RestrictedExpression)>, String> {
    let checks = RestrictedExpression::new_record([
        (
            "check_value".to_owned(),
            RestrictedExpression::new_bool(f.check_value),
        ),
        (
            "timestamp".to_owned(),
            RestrictedExpression::new_bool(f.timestamp),
        ),
        (
            "token".to_owned(),
            RestrictedExpression::new_bool(f.token.is_some()),
        ),
    ])
    .map_err(|e| e.to_string())?;
    let mut pairs = vec![
        ("checks".to_owned(), checks),
        ("flags".to_owned(), strings(&f.flags)),
    ];
    if let Some(token) = &f.token {
        let record = RestrictedExpression::new_record([
            (
                "issuer".to_owned(),
                RestrictedExpression::new_string(token.issuer.clone()),
            ),
            (
                "id".to_owned(),
                RestrictedExpression::new_string(token.id.clone()),
            ),
            ("resources".to_owned(), strings(&token.resources)),
            ("operations".to_owned(), strings(&token.operations)),
        ])
        .map_err(|e| e.to_string())?;
        pairs.push(("token".to_owned(), record));
    }
    Ok(pairs)
}

/// A cached decision for `key`, if it was made under this very bundle and node record.
fn cached<K>(
    cache: &Cache<K, CachedDecision>,
    key: &K,
    bundle: &Arc<PolicyBundle>,
    node: &Arc<Node>,
) -> Option<Result<Allowed, Denial>>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    let hit = cache.get(key)?;
    (Arc::ptr_eq(&hit.bundle, bundle) && Arc::ptr_eq(&hit.node, node)).then_some(hit.outcome)
}

/// Remembers `outcome` for `key`, with the bundle and node record it was made under.
fn remember<K>(
    cache: &Cache<K, CachedDecision>,
    key: K,
    bundle: &Arc<PolicyBundle>,
    node: &Arc<Node>,
    outcome: &Result<Allowed, Denial>,
) where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    let entry = CachedDecision {
        bundle: bundle.clone(),
        node: node.clone(),
        outcome: outcome.clone(),
    };
    cache.insert(key, entry);
}

/// What a registration adds to the context: the registrant's certificate identity and what
/// it asks for (see the schema's `RegistrationContext`).
fn registration_context(p: &Primitive, asked: &Asked) -> Vec<(String, RestrictedExpression)> {
    let present = [
        ("identity", p.peer.tls_identity.as_ref()),
        ("api", asked.api.as_ref()),
        ("rn", asked.rn.as_ref()),
    ];
    present
        .into_iter()
        .filter_map(|(name, value)| {
            Some((
                name.to_owned(),
                RestrictedExpression::new_string(value?.clone()),
            ))
        })
        .collect()
}

fn strings(items: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(items.iter().cloned().map(RestrictedExpression::new_string))
}

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}
