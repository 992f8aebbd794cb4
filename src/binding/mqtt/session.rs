//! One client session: CONNECT admission, then the relay between the client and its own
//! broker connection, packet by packet, decoded and re-encoded.
//!
//! In: an accepted client stream and its [`Peer`]. Out: packets to the broker that the guard
//! allowed, the broker's packets to the client, and the gateway's own answers (CONNACK refusals,
//! oneM2M denial responses, SUBACK failures, acknowledgements of dropped publishes).
//! Packet ids are relayed one-to-one: each client has its own broker connection; the
//! gateway's own PUBLISHes (denial answers) are QoS 0 and carry none.
//! A session ends when either side closes, a packet is malformed or over the size limit, the
//! keep-alive (1.5 × the client's) passes in silence, the node stops being active, or the
//! gateway shuts down.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{
    ConnectReturnCode, Packet, PubAck, PubComp, PubRec, Publish, SubAck, Subscribe,
    SubscribeReasonCode,
};
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::admission::{admit, connack, open_broker};
use super::registrant::{self, InFlight};
use super::reply::{self, Echo};
use super::wire::{encode, flush, Frames, WireError};
use super::{decode, forward, topic, MqttBinding};
use crate::decision::Decision;
use crate::guard::Admission;
use crate::primitive::{Peer, TopicAction, TopicRequest};
use crate::record::{About, Answer, Refusal};
use crate::registration::Completed;
use crate::store::EVERY_NODE;

/// A client packet that ends its session as a refusal of the binding's (recorded): one that
/// cannot be read, or one over the size limit.
fn refusal(e: &WireError) -> Option<Refusal> {
    match e {
        WireError::Malformed(why) => Some(Refusal::Malformed(format!("malformed packet: {why}"))),
        WireError::TooLarge(n) => Some(Refusal::PacketTooLarge(*n)),
        WireError::Closed | WireError::Io(_) => None,
    }
}

/// Subscriptions one session may hold; more are refused (SUBACK failure).
const MAX_FILTERS: usize = 1024;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum End {
    #[error("client disconnected")]
    Disconnected,
    #[error("client {0}")]
    Client(WireError),
    #[error("broker {0}")]
    Broker(WireError),
    #[error("CONNECT refused: {0}")]
    Refused(String),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("keep-alive expired")]
    KeepAlive,
    #[error("node is no longer active")]
    Deactivated,
    #[error("node deregistered")]
    Deregistered,
    #[error("gateway shutting down")]
    Shutdown,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

/// Runs one client connection to its end.
pub async fn run<S>(b: &MqttBinding, mut client: S, peer: Peer, stop: CancellationToken) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Subscribed before admission: a deactivation after the check is never missed.
    let changes = b.nodes.status_changes();
    let mut from_client = Frames::new(b.config.max_packet_bytes);
    let first = timeout(b.config.connect_timeout, from_client.read(&mut client)).await;
    let connect = match first {
        Err(_) => return End::Timeout("CONNECT"),
        Ok(Err(e)) => {
            if let Some(refusal) = refusal(&e) {
                b.decider.refuse(About::peer(&peer), refusal);
            }
            return End::Client(e);
        }
        Ok(Ok(Packet::Connect(c))) => c,
        Ok(Ok(_)) => {
            let why = "first packet is not CONNECT";
            b.decider
                .refuse(About::peer(&peer), Refusal::Malformed(why.into()));
            return End::Protocol(why);
        }
    };
    let (originator, admission) = match admit(b, &connect, &peer) {
        Ok(admitted) => admitted,
        Err((code, why)) => {
            let _ = connack(&mut client, code).await;
            return End::Refused(why);
        }
    };
    let (broker, from_broker, ack) = match open_broker(b, &connect).await {
        Ok(opened) => opened,
        Err(e) => {
            tracing::warn!(node.id = %originator, proto = "mqtt", error = %e, "broker unavailable");
            let _ = connack(&mut client, ConnectReturnCode::ServiceUnavailable).await;
            return e;
        }
    };
    let keep_alive = (connect.keep_alive > 0)
        .then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));
    let mut session = Session {
        b,
        peer,
        deregistered: false,
        originator,
        admission,
        in_flight: InFlight::default(),
        granted: HashSet::new(),
        pending_subs: HashMap::new(),
        local_qos2: HashSet::new(),
        to_client: BytesMut::new(),
        to_broker: BytesMut::new(),
    };
    let accepted = ack.code == ConnectReturnCode::Success;
    if let Err(e) = session.send_client(&Packet::ConnAck(ack)) {
        return e;
    }
    if !accepted {
        let _ = flush(&mut client, &mut session.to_client).await;
        return End::Refused("by the broker".into());
    }
    session
        .relay(
            client,
            broker,
            from_client,
            from_broker,
            changes,
            stop,
            keep_alive,
        )
        .await
}

/// Ends a session whose answers are flushed: it lingers half a second (what the client sends
/// meanwhile is read and dropped), so that the client has read the last answer before the end
/// of the stream — some clients drop what they read together with it — then sends FIN and
/// reads on for at most a second, so that closing does not reset the connection.
async fn end_gracefully<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    mut from_client: Frames,
) -> End {
    use tokio::io::AsyncWriteExt;
    drain(&mut client, &mut from_client, LINGER).await;
    let _ = client.shutdown().await;
    drain(&mut client, &mut from_client, Duration::from_secs(1)).await;
    End::Deregistered
}

/// Reads and drops what the client sends, until it closes or `within` passed.
async fn drain<S: AsyncRead + Unpin>(client: &mut S, frames: &mut Frames, within: Duration) {
    let read = async {
        while frames.fill(client).await.is_ok() {
            loop {
                match frames.next_packet() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    // Malformed or over the size limit: stop reading (the buffer stays bounded).
                    Err(_) => return,
                }
            }
        }
    };
    let _ = timeout(within, read).await;
}

/// How long a session whose node deregistered stays open after the answer.
const LINGER: Duration = Duration::from_millis(500);

/// What to do after a client packet.
enum Flow {
    Continue,
    Disconnect,
}

struct Session<'a> {
    b: &'a MqttBinding,
    peer: Peer,
    originator: String,
    /// A registrant's session becomes a node's when its registration completes (and a
    /// registrant's again when it deregisters).
    admission: Admission,
    /// Set when the session's node deregistered: the session ends after the answer.
    deregistered: bool,
    in_flight: InFlight,
    /// Filters the broker granted: the gateway's answers reach the client only through these.
    granted: HashSet<String>,
    /// Forwarded SUBSCRIBEs by packet id: each original filter, `None` where refused here.
    pending_subs: HashMap<u16, Vec<Option<String>>>,
    /// QoS 2 publishes refused and acknowledged here, awaiting the client's PUBREL.
    local_qos2: HashSet<u16>,
    to_client: BytesMut,
    to_broker: BytesMut,
}

impl Session<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut client: S,
        mut broker: TcpStream,
        mut from_client: Frames,
        mut from_broker: Frames,
        mut changes: tokio::sync::broadcast::Receiver<String>,
        stop: CancellationToken,
        keep_alive: Option<Duration>,
    ) -> End {
        // The broker's CONNACK, and anything either side sent right after CONNECT/CONNACK.
        let pending = match self.broker_packets(&mut from_broker) {
            Ok(()) => self.client_packets(&mut from_client).await,
            Err(end) => Err(end),
        };
        match pending {
            Ok(Flow::Continue) => {}
            Ok(Flow::Disconnect) => {
                let _ = flush(&mut broker, &mut self.to_broker).await;
                let _ = flush(&mut client, &mut self.to_client).await;
                return End::Disconnected;
            }
            Err(e) => return e,
        }
        if let Err(e) = flush(&mut broker, &mut self.to_broker).await {
            return End::Broker(e);
        }
        if let Err(e) = flush(&mut client, &mut self.to_client).await {
            return End::Client(e);
        }
        // One timer for the session, re-armed only when it fires: cheaper than a new timer per
        // read. When it fires, the client has been silent for the keep-alive unless it was
        // heard since the timer was armed.
        let keep_alive = keep_alive.unwrap_or(Duration::from_secs(86_400 * 365));
        let mut last_heard = Instant::now();
        let silence = sleep_until(last_heard + keep_alive);
        tokio::pin!(silence);
        let stopped = stop.cancelled();
        tokio::pin!(stopped);
        loop {
            let flow = tokio::select! {
                read = from_client.fill(&mut client) => {
                    if let Err(e) = read {
                        return match e { WireError::Closed => End::Disconnected, e => End::Client(e) };
                    }
                    last_heard = Instant::now();
                    self.client_packets(&mut from_client).await
                }
                read = from_broker.fill(&mut broker) => match read {
                    Ok(()) => self.broker_packets(&mut from_broker).map(|()| Flow::Continue),
                    Err(e) => return End::Broker(e),
                },
                change = changes.recv() => match change {
                    Ok(id) if id != self.originator && id != EVERY_NODE => Ok(Flow::Continue),
                    Ok(_) | Err(RecvError::Lagged(_)) if self.b.decider.still_admitted(&self.originator, &self.peer, self.admission) => Ok(Flow::Continue),
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        // No will: a node that is no longer active publishes nothing more.
                        let _ = encode(&Packet::Disconnect, &mut self.to_broker);
                        let _ = flush(&mut broker, &mut self.to_broker).await;
                        tracing::info!(node.id = %self.originator, proto = "mqtt", "session closed: node no longer active");
                        return End::Deactivated;
                    }
                    Err(RecvError::Closed) => return End::Shutdown,
                },
                () = &mut stopped => return End::Shutdown,
                () = &mut silence => {
                    if last_heard.elapsed() >= keep_alive {
                        return End::KeepAlive;
                    }
                    silence.as_mut().reset(last_heard + keep_alive);
                    Ok(Flow::Continue)
                }
            };
            let flow = match flow {
                Ok(flow) => flow,
                Err(end) => {
                    // Answers already made (e.g. acknowledgements) still go out.
                    let _ = flush(&mut client, &mut self.to_client).await;
                    return end;
                }
            };
            if let Err(e) = flush(&mut broker, &mut self.to_broker).await {
                return End::Broker(e);
            }
            if let Err(e) = flush(&mut client, &mut self.to_client).await {
                return End::Client(e);
            }
            if let Flow::Disconnect = flow {
                return End::Disconnected;
            }
            if self.deregistered {
                return end_gracefully(client, from_client).await;
            }
        }
    }

    async fn client_packets(&mut self, frames: &mut Frames) -> Result<Flow, End> {
        loop {
            let packet = match frames.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(e) => {
                    if let Some(refusal) = refusal(&e) {
                        self.b.decider.refuse(self.about(""), refusal);
                    }
                    return Err(End::Client(e));
                }
            };
            if let Flow::Disconnect = self.client_packet(packet).await? {
                return Ok(Flow::Disconnect);
            }
        }
        Ok(Flow::Continue)
    }

    async fn client_packet(&mut self, packet: Packet) -> Result<Flow, End> {
        match packet {
            Packet::Publish(p) => self.publish(p).await?,
            Packet::Subscribe(s) => self.subscribe(s)?,
            Packet::Unsubscribe(u) => {
                for t in &u.topics {
                    self.granted.remove(t);
                }
                self.send_broker(&Packet::Unsubscribe(u))?;
            }
            Packet::PubRel(r) if self.local_qos2.remove(&r.pkid) => {
                self.send_client(&Packet::PubComp(PubComp::new(r.pkid)))?;
            }
            p @ (Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::PingReq) => {
                self.send_broker(&p)?;
            }
            Packet::Disconnect => {
                self.send_broker(&Packet::Disconnect)?;
                return Ok(Flow::Disconnect);
            }
            _ => {
                return Err(
                    self.violation("client sent a packet only a server sends, or a second CONNECT")
                )
            }
        }
        Ok(Flow::Continue)
    }

    fn broker_packets(&mut self, frames: &mut Frames) -> Result<(), End> {
        while let Some(packet) = frames.next_packet().map_err(End::Broker)? {
            match packet {
                Packet::SubAck(ack) => self.suback(ack)?,
                Packet::Publish(mut p) => {
                    self.answered(&mut p);
                    self.send_client(&Packet::Publish(p))?;
                }
                p @ (Packet::ConnAck(_)
                | Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubRel(_)
                | Packet::PubComp(_)
                | Packet::UnsubAck(_)
                | Packet::PingResp) => self.send_client(&p)?,
                _ => return Err(End::Protocol("broker sent a packet only a client sends")),
            }
        }
        Ok(())
    }

    async fn publish(&mut self, p: Publish) -> Result<(), End> {
        if p.topic.is_empty() || p.topic.contains(['+', '#', '\0']) {
            // MQTT 3.1.1 §3.3.2.1 / §4.7.3: a broker closes the connection for this.
            return Err(self.violation("PUBLISH topic is empty or has a wildcard or NUL"));
        }
        if topic::is_request(&p.topic) {
            return self.request(p).await;
        }
        // Only the CSE answers as the CSE (and the gateway reads those answers to enrol).
        if topic::onem2m(&p.topic).is_some_and(|parts| registrant::impersonates_cse(self.b, &parts))
        {
            let about = self.about(&p.topic).op(TopicAction::Publish.as_str());
            self.b.decider.refuse(about, Refusal::AnswersAsCse);
            return self.drop_publish(&p);
        }
        let request = self.topic_request(TopicAction::Publish, &p.topic);
        match self.b.decider.decide_topic(&request, self.admission) {
            Decision::Allow(permitted) => {
                forward::publish(permitted.with(p), &mut self.to_broker).map_err(End::Client)
            }
            Decision::Deny(_) => self.drop_publish(&p),
        }
    }

    /// A oneM2M request (`req`, or `reg_req`: registrations are requests like any other): the
    /// topic's originator, `fr` and the bound identity must agree, then the guard decides; a
    /// refusal is answered on the session's own response topic and never forwarded.
    async fn request(&mut self, p: Publish) -> Result<(), End> {
        let Some(t) = topic::request(&p.topic) else {
            let refusal = Refusal::Malformed("malformed oneM2M request topic".into());
            self.b.decider.refuse(self.about(&p.topic), refusal);
            return self.drop_publish(&p);
        };
        let object = decode::parse(&p.payload, t.format);
        let echo = object.as_ref().map(Echo::of).unwrap_or_default();
        let op = object
            .as_ref()
            .ok()
            .and_then(decode::operation)
            .map_or("unknown", |op| op.as_str());
        // A retained request would be delivered to the CSE again at every (re)subscription,
        // after the guard decided it once; a request for another receiver would bypass the
        // CSE this gateway protects. Both are refused, never forwarded.
        let about = || {
            self.about(&p.topic)
                .op(op)
                .rqi(echo.rqi.as_deref().unwrap_or(""))
        };
        let refusal = if p.retain {
            Some(Refusal::Retained)
        } else if t.receiver_raw != self.b.cse_id.trim_start_matches('/') {
            Some(Refusal::WrongReceiver {
                receiver: t.receiver_raw.clone(),
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            let answer = self.b.decider.refuse(about(), refusal);
            return self.answer(&p, &t, &echo, &answer);
        }
        let decoded = object
            .and_then(|o| decode::primitive(&o, self.peer.clone(), self.b.decider.addressing()));
        let mut primitive = match decoded {
            Ok(primitive) => primitive,
            Err(e) => {
                let answer = self
                    .b
                    .decider
                    .refuse(about(), Refusal::Malformed(e.to_string()));
                return self.answer(&p, &t, &echo, &answer);
            }
        };
        if let Err(d) = self.b.decider.resolve(&mut primitive).await {
            let answer = self.b.decider.answer(&d);
            return self.answer(&p, &t, &echo, &answer);
        }
        let bound = [
            ("session's originator", self.originator.as_str()),
            ("request topic's originator", t.originator.as_str()),
        ];
        // A registrant may register with `fr` absent (its topics name it) or as its own name;
        // anything else it sends is refused (`decide_registrant`).
        let registrant_only = self.admission == Admission::Registrant
            && (crate::registration::kind(&primitive).is_none()
                || (primitive.fr.is_empty() && t.originator == self.originator));
        let decision = if registrant_only {
            self.b.decider.decide_registrant(&primitive)
        } else {
            self.b.decider.decide_bound(&primitive, &bound)
        };
        match decision {
            Decision::Allow(mut permitted) => {
                if let Some(follow_up) = permitted.take_follow_up() {
                    if !self
                        .in_flight
                        .insert(&primitive.rqi, &t.originator, follow_up)
                    {
                        drop(permitted);
                        let about = self.about(&p.topic).op(op).rqi(&primitive.rqi);
                        let refusal = Refusal::TooManyInFlight(registrant::MAX_IN_FLIGHT);
                        let answer = self.b.decider.refuse(about, refusal);
                        return self.answer(&p, &t, &echo, &answer);
                    }
                }
                forward::publish(permitted.with(p), &mut self.to_broker).map_err(End::Client)
            }
            Decision::Deny(d) => {
                let answer = self.b.decider.answer(&d);
                self.answer(&p, &t, &echo, &answer)
            }
        }
    }

    /// A publish from the broker to the client: if it answers a registration or
    /// deregistration of this session, that is completed first; a registrant whose
    /// registration completed is the node it registered as from now on.
    fn answered(&mut self, p: &mut Publish) {
        match self.in_flight.answered(self.b, p) {
            Some(Completed::Enrolled(id))
                if self.admission == Admission::Registrant
                    || !self.b.decider.active(&self.originator) =>
            {
                tracing::info!(node.id = %id, registrant = %self.originator, proto = "mqtt", "session now bound to its registered id");
                self.originator = id;
                self.admission = Admission::Node;
            }
            // Its own deregistration: the session ends once the answer is out (what it was
            // granted as the node must not outlive the node).
            Some(Completed::Removed(id)) if id == self.originator => {
                tracing::info!(node.id = %id, proto = "mqtt", "deregistered: session ends");
                self.deregistered = true;
            }
            _ => {}
        }
    }

    /// Answers a refused request on the session's own response topic (to this client only, if
    /// it subscribed to it; never through the broker, never on another originator's topic)
    /// and acknowledges the publish without forwarding it.
    fn answer(
        &mut self,
        p: &Publish,
        t: &topic::RequestTopic,
        echo: &Echo,
        answer: &Answer,
    ) -> Result<(), End> {
        let answer_topic = t.answer_topic(&self.originator);
        if self
            .granted
            .iter()
            .any(|f| topic::matches(f, &answer_topic))
        {
            let payload = reply::response(echo, answer, &self.b.cse_id, t.format);
            let answer = Publish::from_bytes(answer_topic, QoS::AtMostOnce, payload);
            self.send_client(&Packet::Publish(answer))?;
        }
        self.drop_publish(p)
    }

    /// A protocol violation that ends the session, recorded as a malformed request.
    fn violation(&self, what: &'static str) -> End {
        self.b
            .decider
            .refuse(self.about(""), Refusal::Malformed(what.into()));
        End::Protocol(what)
    }

    /// A request of this session on `topic`, for its record.
    fn about(&self, topic: &str) -> About {
        About::peer(&self.peer).fr(&self.originator).to(topic)
    }

    /// A refused publish is not forwarded, but acknowledged as the protocol asks, so that the
    /// client does not resend it forever.
    fn drop_publish(&mut self, p: &Publish) -> Result<(), End> {
        match p.qos {
            QoS::AtMostOnce => Ok(()),
            QoS::AtLeastOnce => self.send_client(&Packet::PubAck(PubAck::new(p.pkid))),
            QoS::ExactlyOnce => {
                self.local_qos2.insert(p.pkid);
                self.send_client(&Packet::PubRec(PubRec::new(p.pkid)))
            }
        }
    }

    fn subscribe(&mut self, s: Subscribe) -> Result<(), End> {
        let mut allowed = Vec::new();
        let mut order = Vec::with_capacity(s.filters.len());
        for filter in s.filters {
            // Bounded memory per session: beyond MAX_FILTERS new filters are refused.
            let full = self.granted.len() + allowed.len() >= MAX_FILTERS
                && !self.granted.contains(&filter.path);
            if full {
                let about = self.about(&filter.path).op(TopicAction::Subscribe.as_str());
                self.b
                    .decider
                    .refuse(about, Refusal::TooManySubscriptions(MAX_FILTERS));
                order.push(None);
                continue;
            }
            let request = self.topic_request(TopicAction::Subscribe, &filter.path);
            match self.b.decider.decide_topic(&request, self.admission) {
                Decision::Allow(permitted) => {
                    order.push(Some(filter.path.clone()));
                    allowed.push(permitted.with(filter));
                }
                Decision::Deny(_) => order.push(None),
            }
        }
        if allowed.is_empty() {
            let codes = vec![SubscribeReasonCode::Failure; order.len()];
            return self.send_client(&Packet::SubAck(SubAck::new(s.pkid, codes)));
        }
        self.pending_subs.insert(s.pkid, order);
        forward::subscribe(s.pkid, allowed, &mut self.to_broker).map_err(End::Client)
    }

    /// The broker's SUBACK, with the filters refused here put back in place as failures.
    fn suback(&mut self, ack: SubAck) -> Result<(), End> {
        let Some(order) = self.pending_subs.remove(&ack.pkid) else {
            return self.send_client(&Packet::SubAck(ack));
        };
        let mut codes = ack.return_codes.into_iter();
        let mut merged = Vec::with_capacity(order.len());
        for filter in order {
            let code = match filter {
                None => SubscribeReasonCode::Failure,
                Some(filter) => {
                    let code = codes
                        .next()
                        .ok_or(End::Protocol("SUBACK has too few codes"))?;
                    if matches!(code, SubscribeReasonCode::Success(_)) {
                        self.granted.insert(filter);
                    }
                    code
                }
            };
            merged.push(code);
        }
        self.send_client(&Packet::SubAck(SubAck::new(ack.pkid, merged)))
    }

    fn topic_request(&self, action: TopicAction, name: &str) -> TopicRequest {
        TopicRequest {
            action,
            originator: self.originator.clone(),
            topic: name.to_owned(),
            onem2m: topic::onem2m(name),
            peer: self.peer.clone(),
        }
    }

    fn send_client(&mut self, p: &Packet) -> Result<(), End> {
        encode(p, &mut self.to_client).map_err(End::Broker)
    }

    fn send_broker(&mut self, p: &Packet) -> Result<(), End> {
        encode(p, &mut self.to_broker).map_err(End::Client)
    }
}
