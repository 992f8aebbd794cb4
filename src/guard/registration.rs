//! The guard's path for registrations ([`crate::registration`]): the registrant's
//! certificate may not be bound to an enrolled node already; then the message checks, as
//! for any request; then Cedar's action `register`, whose context carries what the
//! registrant asks for (`api`, `rn`) and its certificate identity. The permit carries the
//! [`Registration`] to enrol once the upstream accepted. Also: which permitted delete is a
//! node's deregistration.

use std::time::SystemTime;

use super::{identity, Denial, Guard, Permit, Principal, Reason, Stage, Verdict};
use crate::primitive::{Operation, Primitive, TopicAction, TopicRequest};
use crate::registration::{Asked, FollowUp, Registration};
use crate::store::{NodeKind, NodeStatus};

/// How an MQTT session was admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// As a node: its requests and topics are decided as any.
    Node,
    /// As a registrant that is not a node yet: it may publish registrations on `reg_req`
    /// and subscribe to its own `reg_resp` topic, nothing else.
    Registrant,
}

impl Guard {
    /// A topic request of a registrant's session: only a subscription to its own
    /// registration responses (`/oneM2M/reg_resp/<its id>/…`) passes.
    pub fn decide_registrant_topic(&self, t: &TopicRequest) -> Verdict {
        let own = t.onem2m.as_ref().is_some_and(|m| {
            m.kind == "reg_resp" && m.originator.as_deref() == Some(t.originator.as_str())
        });
        if t.action == TopicAction::Subscribe && own {
            return Verdict::Allow(Permit::new(Vec::new(), Vec::new()));
        }
        Verdict::Deny(Denial::new(
            Stage::Status,
            Reason::RegistrantOnly {
                fr: t.originator.clone(),
                what: format!("{} {}", t.action.as_str(), t.topic),
            },
        ))
    }

    /// A oneM2M request of a registrant's session: only a registration passes on to the
    /// guard.
    pub fn decide_registrant(&self, p: &Primitive, now: SystemTime) -> Verdict {
        if crate::registration::kind(p).is_none() {
            return Verdict::Deny(Denial::new(
                Stage::Status,
                Reason::RegistrantOnly {
                    fr: p.fr.clone(),
                    what: format!("{} {}", p.op, p.to),
                },
            ));
        }
        self.decide(p, now)
    }

    /// Decides the registration of a node of `kind` by `p`'s unenrolled originator.
    pub(super) fn register(
        &self,
        p: &Primitive,
        kind: NodeKind,
        now: SystemTime,
    ) -> Result<Permit, Denial> {
        identity::check_registrant(&p.fr, &p.peer, &self.nodes)?;
        let principal = Principal::unenrolled(&p.fr, kind);
        let findings = self.checks.run(p, &principal.node, now)?;
        let asked = Asked::read(kind, &p.content);
        let bundle = self.policies.current();
        let (allowed, groups) = self
            .evaluator
            .check_registration(&bundle, p, &principal, &findings, &asked, now)?;
        let ids = allowed.ids;
        let mut all_groups = self.registration_groups.clone();
        for g in groups {
            if !all_groups.contains(&g) {
                all_groups.push(g);
            }
        }
        let registration = Registration {
            kind,
            requested: p.fr.clone(),
            parent: p.to.clone(),
            peer: p.peer.clone(),
            groups: all_groups,
            policies: ids.clone(),
            registrar: self.registrar_of(p),
        };
        let permit = Permit::new(ids, Vec::new()).observing(allowed.would_deny);
        Ok(permit.with_follow_up(Some(FollowUp::Register(registration))))
    }

    /// The enrolled, active CSE whose certificate carried a registration, if any: the
    /// registered AE's registrar (transit).
    fn registrar_of(&self, p: &Primitive) -> Option<String> {
        let identity = p.peer.tls_identity.as_deref()?;
        let node = self.nodes.get(identity).ok()??;
        (node.kind == NodeKind::Cse && node.status == NodeStatus::Active)
            .then(|| identity.to_owned())
    }
}

/// A delete of its own registered resource by a node that registered through the gateway.
pub(super) fn deregistration(p: &Primitive, principal: &Principal) -> Option<FollowUp> {
    let registered = principal.node.registered.as_ref()?;
    (p.op == Operation::Delete && principal.enrolled && p.to == registered.resource)
        .then(|| FollowUp::Deregister(principal.node.id.clone()))
}
