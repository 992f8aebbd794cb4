//! Deciding and recording in one place, for every binding: the [`Decider`] runs the guard and
//! makes the one [`Record`] of each request's outcome ([`crate::record`]); refusals a binding
//! makes itself ([`Decider::refuse`]) are recorded here too, and the answer to the sender of
//! any refusal is built from its outcome ([`Answer`]).
//!
//! An allowed request leaves as a [`Permitted`]: the guard's [`Permit`], the request it permits
//! and its pending record, in one value that forwarding consumes; the record is made when the
//! forward ends (or is abandoned).
//!
//! [`Mode::Observe`]: every request is decided and recorded as in enforce mode, but a guard
//! denial becomes a [`Permit::observed`] that carries it, so the request is forwarded and its
//! record says it would have been denied. What protects the gateway itself stays refused in
//! every mode: a binding's own refusals ([`Decider::refuse`]: malformed, oversize,
//! rate-limited, …) and an MQTT CONNECT that binds no originator ([`Decider::deny`]). A
//! resource-id target is not resolved for a sender the head stages would deny, and one that
//! cannot be resolved is forwarded as sent (the CSE resolves its own ids), recorded as a
//! would-be denial at stage `target`.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::audit::Gate;
use crate::das::Das;
use crate::guard::{Addition, Admission, Denial, Guard, Permit, Stage, Verdict};
use crate::metrics::Metrics;
use crate::primitive::{Peer, Primitive, Protocol, TopicRequest};
use crate::record::{
    About, Added, Answer, By, Event, Forward, Outcome, Pending, Record, Recorder, Refusal,
};
use crate::registration::{Completed, FollowUp, Registrar};
use crate::target::resolve::Resolver;
use crate::target::Addressing;

/// Whether denials are enforced: defined with the configuration that sets it.
pub use crate::config::Mode;

pub struct Decider {
    mode: Mode,
    guard: Arc<Guard>,
    registrar: Registrar,
    metrics: Arc<Metrics>,
    recorder: Arc<Recorder>,
    targets: Resolver,
    /// `tqf`: where clients obtain tokens, told to senders refused at the token stage.
    tqf: Option<Arc<str>>,
    /// With `[audit] on_full = "refuse"`: nothing is let through while the log cannot take it.
    audit: Option<Gate>,
    /// With `[sync]`: token ids resolved and tokens obtained at the authority.
    das: Option<Arc<Das>>,
}

/// The decider's verdict: a permitted request, or the recorded denial.
#[derive(Debug)]
pub enum Decision {
    Allow(Permitted<()>),
    Deny(Denial),
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// A request the guard allowed, with its [`Permit`] and the record that its forward completes
/// (the shape of linkerd2-proxy's `Permitted<T>`). Made only by the [`Decider`], as
/// `Permitted<()>`, and given its request with [`Permitted::with`]; forwarding takes it by
/// value. Dropped without being forwarded, it is recorded as abandoned.
#[derive(Debug)]
pub struct Permitted<T> {
    permit: Permit,
    request: T,
    record: Pending,
}

impl<T> Permitted<T> {
    /// The same permit for `request`.
    pub fn with<U>(self, request: U) -> Permitted<U> {
        Permitted {
            permit: self.permit,
            request,
            record: self.record,
        }
    }

    pub fn permit(&self) -> &Permit {
        &self.permit
    }

    /// What the binding must complete once the upstream answered
    /// ([`Decider::complete`]); taken once.
    pub fn take_follow_up(&mut self) -> Option<FollowUp> {
        self.permit.take_follow_up()
    }

    pub fn request(&self) -> &T {
        &self.request
    }

    /// What the guard adds to the request on its way out: each binding applies these to its
    /// own wire form before forwarding.
    pub fn additions(&self) -> &[Addition] {
        self.permit.additions()
    }

    /// For the forward: the request, what to add to it, and its pending record; the permit
    /// is spent.
    pub fn into_parts(self) -> (T, Vec<Addition>, Pending) {
        (self.request, self.permit.into_additions(), self.record)
    }

    /// A permitted decision with nothing to forward (a session admitted, a will's topic):
    /// recorded now.
    pub fn decided(self) {
        self.record.forwarded(Forward::Nothing);
    }
}

impl Decider {
    pub fn new(
        guard: Arc<Guard>,
        registrar: Registrar,
        metrics: Arc<Metrics>,
        recorder: Arc<Recorder>,
        targets: Resolver,
        tqf: Option<&str>,
    ) -> Self {
        Decider {
            mode: Mode::Enforce,
            guard,
            registrar,
            metrics,
            recorder,
            targets,
            tqf: tqf.map(Arc::from),
            audit: None,
            das: None,
        }
    }

    /// Resolves token ids and attaches tokens obtained on behalf of nodes through `das`.
    pub fn with_das(mut self, das: Arc<Das>) -> Self {
        self.das = Some(das);
        self
    }

    /// Refuses every request (stage `audit`, rsc 5000) while `gate` is closed.
    pub fn with_audit_gate(mut self, gate: Gate) -> Self {
        self.audit = Some(gate);
        self
    }

    /// The audit log's denial, while its gate is closed.
    fn audit_closed(&self) -> Option<Denial> {
        let closed = self.audit.as_ref().is_some_and(|gate| !gate.open());
        closed.then(Denial::audit_unavailable)
    }

    /// The same decider in `mode` (enforce by default).
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    fn observing(&self) -> bool {
        self.mode == Mode::Observe
    }

    /// Whether `denial` is only recorded (observe mode), not enforced. The gateway's own
    /// standing (stage `gateway`: deactivated by the authority, or too stale) is remote
    /// transmission control, not policy: it is enforced in observe mode too.
    fn observes(&self, denial: &Denial) -> bool {
        self.observing() && !matches!(denial.stage, Stage::Gateway | Stage::Audit)
    }

    /// Node status changes from now on, for bindings that hold long-lived exchanges (CoAP
    /// observations): see [`crate::store::Nodes::status_changes`].
    pub fn status_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.guard.status_changes()
    }

    /// The names that make a target local, for the bindings' decoders.
    pub fn addressing(&self) -> &Addressing {
        self.targets.addressing()
    }

    /// The metrics, for what is counted that is no request (datagrams that are no request,
    /// unmatched answers from the upstream).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Replaces a resource-id target with the structured name the CSE knows it by (see
    /// [`crate::target::resolve`]); other targets pass untouched. Identity and status are
    /// checked first, so that unknown senders cannot make the gateway ask the CSE. A target
    /// that cannot be resolved is a denial, recorded here.
    /// Then token ids are resolved and a token obtained on the sender's behalf is attached
    /// ([`crate::das`]), for senders the head stages pass.
    pub async fn resolve(&self, p: &mut Primitive) -> Result<(), Denial> {
        self.resolve_target(p).await?;
        let Some(das) = &self.das else {
            return Ok(());
        };
        if das.resolves(p) {
            self.precheck(p)?;
            let (now, started) = (SystemTime::now(), Instant::now());
            if let Err(denial) = das.resolve_ids(p).await {
                if !self.observing() {
                    self.denied(About::of(p), &denial, now, started);
                    return Err(denial);
                }
            }
        }
        das.attach(p).await;
        Ok(())
    }

    async fn resolve_target(&self, p: &mut Primitive) -> Result<(), Denial> {
        if self.addressing().resource_id(&p.to).is_none() {
            return Ok(());
        }
        if self.observing() && self.guard.precheck(p).is_err() {
            // Not asked of the CSE for a sender the head stages deny; the decision records it.
            return Ok(());
        }
        self.precheck(p)?;
        let now = SystemTime::now();
        let started = Instant::now();
        match self.targets.resolve(&p.to).await {
            Ok(None) => Ok(()),
            Ok(Some(name)) => {
                let sent = std::mem::replace(&mut p.to, name);
                p.to_as_sent.get_or_insert(sent);
                Ok(())
            }
            Err(unresolved) if self.observing() => {
                tracing::debug!(to = %p.to, reason = %unresolved, "target not resolved, forwarded as sent");
                Ok(())
            }
            Err(unresolved) => {
                let denial = Denial::unresolved(unresolved);
                self.denied(About::of(p), &denial, now, started);
                Err(denial)
            }
        }
    }

    /// Runs the stages that need only the request head; a denial is recorded and returned.
    /// Bindings call this before reading a body, so that unknown or blocked senders cannot
    /// make the gateway buffer theirs. In observe mode nothing is refused here: the decision
    /// runs these stages again and records what they would deny.
    pub fn precheck(&self, p: &Primitive) -> Result<(), Denial> {
        let now = SystemTime::now();
        let started = Instant::now();
        match self.guard.precheck(p) {
            Err(denial) if self.observes(&denial) => Ok(()),
            Err(denial) => {
                self.denied(About::of(p), &denial, now, started);
                Err(denial)
            }
            Ok(()) => Ok(()),
        }
    }

    /// Decides `p` now; a denial is recorded, a permit is recorded when its forward ends.
    pub fn decide(&self, p: &Primitive) -> Decision {
        self.decide_with(p, |now| self.guard.decide(p, now))
    }

    /// Decides a request of a registrant's MQTT session: only a registration passes on to
    /// the guard.
    pub fn decide_registrant(&self, p: &Primitive) -> Decision {
        self.decide_with(p, |now| self.guard.decide_registrant(p, now))
    }

    /// Decides `p`, which must come from each originator in `bound` (see
    /// [`Guard::decide_bound`]), as [`Decider::decide`].
    pub fn decide_bound(&self, p: &Primitive, bound: &[(&'static str, &str)]) -> Decision {
        self.decide_with(p, |now| self.guard.decide_bound(p, bound, now))
    }

    /// The guard's verdict on `p`, or a denial for a resource-id target that was never
    /// resolved: no rule that matches names may see one.
    fn decide_with(&self, p: &Primitive, run: impl FnOnce(SystemTime) -> Verdict) -> Decision {
        let now = SystemTime::now();
        let started = Instant::now();
        let verdict = match self.addressing().resource_id(&p.to) {
            Some(_) if self.observing() => {
                // Forwarded as sent: the first of the head stages or the target that would deny.
                let denial = self.guard.precheck(p).err();
                Verdict::Deny(denial.unwrap_or_else(Denial::unresolved_at_guard))
            }
            Some(_) => Verdict::Deny(Denial::unresolved_at_guard()),
            None => run(now),
        };
        self.decision(About::of(p), verdict, now, started)
    }

    /// Whether `originator` is active now (always, in observe mode); not a decision, so
    /// nothing is recorded.
    pub fn active(&self, originator: &str) -> bool {
        self.guard.active(originator)
            || (self.observing() && !self.guard.refused_by_gateway(originator))
    }

    /// Admits a session for `originator` (MQTT CONNECT): identity and node status; an
    /// originator the repository does not know is admitted as a registrant (see
    /// [`Admission`]). Recorded under the operation `connect`; in observe mode a denial admits
    /// too (as a node's session), recorded as a would-be denial.
    pub fn admit(&self, originator: &str, peer: &Peer) -> Result<Admission, Denial> {
        let now = SystemTime::now();
        let started = Instant::now();
        let about = About::peer(peer).fr(originator).op("connect");
        let admission = match self.audit_closed() {
            Some(denial) => Err(denial),
            None => self.guard.admit(originator, peer),
        };
        let (admitted, would_deny) = match admission {
            Err(denial) if self.observes(&denial) => (Ok(Admission::Node), Some(denial)),
            admitted => (admitted, None),
        };
        match &admitted {
            Ok(_) => {
                let allowed = Outcome::Allowed {
                    policies: Vec::new(),
                    forward: Forward::Nothing,
                };
                self.recorder.record(Record {
                    would_deny,
                    ..record(about, allowed, now, Some(started.elapsed()))
                });
            }
            Err(denial) => self.denied(about, denial, now, started),
        }
        admitted
    }

    /// Whether a session admitted earlier may go on (identity and status now); not recorded.
    /// The same admission as before, that is: a node still active, a registrant still not a
    /// node. Always, in observe mode.
    pub fn still_admitted(&self, originator: &str, peer: &Peer, admission: Admission) -> bool {
        match self.guard.admit(originator, peer) {
            Ok(admitted) => admitted == admission,
            Err(denial) => self.observes(&denial),
        }
    }

    /// Decides a publish or subscription on a topic now, as [`Decider::decide`]; for a
    /// registrant's session, only its own registration responses pass.
    pub fn decide_topic(&self, t: &TopicRequest, admission: Admission) -> Decision {
        let now = SystemTime::now();
        let started = Instant::now();
        let verdict = match admission {
            Admission::Node => self.guard.decide_topic(t, now),
            Admission::Registrant => self.guard.decide_registrant_topic(t),
        };
        let about = About::peer(&t.peer)
            .fr(&t.originator)
            .op(t.action.as_str())
            .to(&t.topic);
        self.decision(about, verdict, now, started)
    }

    /// Records a refusal the binding made itself, without the guard (a malformed, oversize or
    /// rate-limited request, a retained one, one for another receiver), and returns what the
    /// sender is told (where the binding answers at all).
    pub fn refuse(&self, about: About, refusal: Refusal) -> Answer {
        let answer = Answer::refused(&refusal);
        self.record(about, Outcome::Refused(refusal), SystemTime::now(), None);
        answer
    }

    /// Records a denial that a binding decided for a guard stage because only it can read the
    /// facts (an MQTT CONNECT whose claims bind no originator), and returns the answer.
    pub fn deny(&self, about: About, denial: Denial) -> Answer {
        let answer = self.answer(&denial);
        self.record(about, Outcome::Denied(denial), SystemTime::now(), None);
        answer
    }

    /// Completes what a permitted request left to do, now that the upstream answered `rsc`
    /// with `content`: enrols a registration the upstream accepted, removes a node whose
    /// deregistration it accepted — durably, before the binding answers. `Err` is what the
    /// registrant is told instead of the upstream's answer: the upstream accepted a
    /// registration the gateway could not record (logged with the assigned id).
    pub fn complete(
        &self,
        follow_up: &FollowUp,
        protocol: Protocol,
        rsc: Option<u16>,
        content: &[u8],
    ) -> Result<Completed, Answer> {
        match self.registrar.complete(follow_up, rsc, content) {
            Ok(Completed::Nothing) => Ok(Completed::Nothing),
            Ok(Completed::Enrolled(id)) => {
                tracing::info!(node = %id, %protocol, "registered through the gateway: enrolled");
                self.metrics.registration(protocol, "enrolled");
                self.recorder.event(Event::NodeEnrolled {
                    node: id.clone(),
                    by: By::Registration,
                });
                Ok(Completed::Enrolled(id))
            }
            Ok(Completed::Removed(id)) => {
                tracing::info!(node = %id, %protocol, "deregistered: removed from the repository");
                self.metrics.registration(protocol, "removed");
                self.recorder.event(Event::NodeRemoved {
                    node: id.clone(),
                    by: By::Registration,
                });
                Ok(Completed::Removed(id))
            }
            Err(e) => {
                tracing::error!(error = %e, %protocol, "registration accepted upstream but not recorded");
                self.metrics.registration(protocol, "failed");
                Err(Answer::internal("the registration could not be recorded"))
            }
        }
    }

    /// What the sender of a request denied by `denial` is told.
    pub fn answer(&self, denial: &Denial) -> Answer {
        Answer::denied(denial, self.tqf.as_ref())
    }

    fn decision(
        &self,
        about: About,
        verdict: Verdict,
        now: SystemTime,
        started: Instant,
    ) -> Decision {
        let verdict = match verdict {
            Verdict::Deny(denial) if self.observes(&denial) => {
                Verdict::Allow(Permit::observed(denial))
            }
            verdict => verdict,
        };
        let verdict = match (verdict, self.audit_closed()) {
            (Verdict::Allow(_), Some(denial)) => Verdict::Deny(denial),
            (verdict, _) => verdict,
        };
        match verdict {
            Verdict::Allow(permit) => {
                let allowed = Outcome::Allowed {
                    policies: permit.policy_ids().to_vec(),
                    forward: Forward::Abandoned,
                };
                let record = Record {
                    would_deny: permit.would_deny().cloned(),
                    added: permit.additions().iter().filter_map(added).collect(),
                    ..record(about, allowed, now, Some(started.elapsed()))
                };
                Decision::Allow(Permitted {
                    permit,
                    request: (),
                    record: self.recorder.pending(record),
                })
            }
            Verdict::Deny(denial) => {
                self.denied(about, &denial, now, started);
                Decision::Deny(denial)
            }
        }
    }

    fn denied(&self, about: About, denial: &Denial, now: SystemTime, started: Instant) {
        let outcome = Outcome::Denied(denial.clone());
        self.record(about, outcome, now, Some(started.elapsed()));
    }

    fn record(
        &self,
        about: About,
        outcome: Outcome,
        at: SystemTime,
        decided_in: Option<std::time::Duration>,
    ) {
        self.recorder.record(record(about, outcome, at, decided_in));
    }
}

/// A record of `outcome` with no would-be denial.
fn record(
    about: About,
    outcome: Outcome,
    at: SystemTime,
    decided_in: Option<std::time::Duration>,
) -> Record {
    Record {
        at,
        about,
        outcome,
        decided_in,
        would_deny: None,
        added: Vec::new(),
        lost: 0,
    }
}

/// What the record of a forwarded request says of an addition: its key, not its value.
fn added(addition: &Addition) -> Option<Added> {
    match addition {
        Addition::Token(_) => None,
        Addition::CheckValue(aus) => {
            crate::guard::check_value::named(aus).map(|v| Added::CheckValue {
                kid: v.key_id,
                seq: v.seq,
            })
        }
    }
}
