//! Last stage, Cedar policy: one authorization request per primitive, decided against the
//! policy set in force. An evaluation error, or a request the engine cannot build, denies.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request,
    RestrictedExpression, Schema,
};

use super::{Denial, Stage};
use crate::policy::PolicyBundle;
use crate::primitive::{Operation, Primitive};
use crate::store::Node;

/// Entity type names and action ids, parsed once.
pub struct Names {
    node: EntityTypeName,
    group: EntityTypeName,
    resource: EntityTypeName,
    actions: HashMap<Operation, EntityUid>,
}

impl Names {
    pub fn new() -> Self {
        let name = |s: &str| EntityTypeName::from_str(s).unwrap_or_else(|_| unreachable!("{s}"));
        let action_type = name("Action");
        let actions = Operation::ALL
            .into_iter()
            .map(|op| {
                let uid = EntityUid::from_type_name_and_id(
                    action_type.clone(),
                    EntityId::new(op.as_str()),
                );
                (op, uid)
            })
            .collect();
        Names {
            node: name("Node"),
            group: name("Group"),
            resource: name("Resource"),
            actions,
        }
    }
}

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

/// Decides `p` from `node` under `bundle`; returns the ids of the permitting policies.
pub fn check(
    names: &Names,
    authorizer: &Authorizer,
    bundle: &PolicyBundle,
    p: &Primitive,
    node: &Node,
    now: SystemTime,
) -> Result<Vec<String>, Denial> {
    let (request, entities) =
        build(names, p, node, now, None).map_err(|e| Denial::new(Stage::Policy, e))?;
    let response = authorizer.is_authorized(&request, &bundle.set, &entities);
    let mut ids: Vec<String> = response
        .diagnostics()
        .reason()
        .map(ToString::to_string)
        .collect();
    ids.sort();
    if let Some(error) = response.diagnostics().errors().next() {
        return Err(Denial::new(
            Stage::Policy,
            format!("policy evaluation failed: {error}"),
        ));
    }
    match response.decision() {
        Decision::Allow => Ok(ids),
        Decision::Deny if ids.is_empty() => Err(Denial::new(
            Stage::Policy,
            format!("no policy permits {} {} by {}", p.op, p.to, p.fr),
        )),
        Decision::Deny => Err(Denial::new(
            Stage::Policy,
            format!("forbidden by {}", ids.join(", ")),
        )),
    }
}

/// The Cedar request and entities for `p`. With `schema`, both are checked against it (tests
/// do this; the request path skips it, the shapes being fixed by this function).
pub(super) fn build(
    names: &Names,
    p: &Primitive,
    node: &Node,
    now: SystemTime,
    schema: Option<&Schema>,
) -> Result<(Request, Entities), String> {
    let principal = uid(&names.node, &node.id);
    let resource = uid(&names.resource, &p.to);
    let action = names.actions[&p.op].clone();
    let groups: HashSet<EntityUid> = node.groups.iter().map(|g| uid(&names.group, g)).collect();
    let mut entities: Vec<Entity> = groups
        .iter()
        .map(|g| Entity::new_no_attrs(g.clone(), HashSet::new()))
        .collect();
    let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
    entities.push(
        Entity::new(
            principal.clone(),
            HashMap::from([("kind".to_owned(), string(node.kind.as_str()))]),
            groups,
        )
        .map_err(|e| e.to_string())?,
    );
    entities.push(
        Entity::new(
            resource.clone(),
            HashMap::from([("path".to_owned(), string(&p.to))]),
            HashSet::new(),
        )
        .map_err(|e| e.to_string())?,
    );
    let entities = Entities::from_entities(entities, schema).map_err(|e| e.to_string())?;
    let context = Context::from_pairs(context_pairs(p, now)).map_err(|e| e.to_string())?;
    let request =
        Request::new(principal, action, resource, context, schema).map_err(|e| e.to_string())?;
    Ok((request, entities))
}

fn context_pairs(p: &Primitive, now: SystemTime) -> Vec<(String, RestrictedExpression)> {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut pairs = vec![
        (
            "protocol".to_owned(),
            RestrictedExpression::new_string(p.peer.protocol.as_str().to_owned()),
        ),
        (
            "source".to_owned(),
            RestrictedExpression::new_ip(p.peer.addr.ip().to_string()),
        ),
        (
            "time".to_owned(),
            RestrictedExpression::new_long(i64::try_from(secs).unwrap_or(i64::MAX)),
        ),
        (
            "authenticated".to_owned(),
            RestrictedExpression::new_bool(p.peer.tls_identity.is_some()),
        ),
    ];
    if let Some(ty) = p.ty {
        pairs.push((
            "resource_type".to_owned(),
            RestrictedExpression::new_long(ty.into()),
        ));
    }
    pairs
}
