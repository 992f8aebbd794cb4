//! MQTT 3.1.1 framing over a byte stream: rumqttc's tokio-util codec (`mqttbytes::v4::Codec`,
//! a `Decoder` over `BytesMut`) behind [`Codec`], whose errors say what ends the connection.
//!
//! In: bytes from a client or the broker. Out: whole [`Packet`]s, or a [`WireError`] that ends
//! that one connection. The size limit is applied to the fixed header's remaining length, before
//! the packet's body is buffered: at most one partial packet of `max_packet_bytes` plus one read
//! is ever held.
//!
//! The codec is driven directly over [`Frames`]' buffer (as `FramedRead` does inside) rather
//! than through `FramedRead`: a session reads two streams that it also writes, and after each
//! read it decides every packet already buffered, then flushes its answers once; a `Stream` of
//! one packet per poll would hide the "nothing more buffered" moment that batching needs.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Codec as V4Codec, Packet};
use rumqttc::mqttbytes::Error as CodecError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder};

/// Bytes asked for per read.
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("packet of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("malformed packet: {0}")]
    Malformed(String),
}

impl From<CodecError> for WireError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::PayloadSizeLimitExceeded(n) => WireError::TooLarge(n),
            e => WireError::Malformed(e.to_string()),
        }
    }
}

/// MQTT 3.1.1 packets in and out; incoming ones at most `max_packet_bytes` (remaining length).
#[derive(Debug, Clone)]
pub struct Codec(V4Codec);

impl Codec {
    pub fn new(max_packet_bytes: usize) -> Self {
        Codec(V4Codec {
            max_incoming_size: max_packet_bytes,
            // What is written was read within the limit, or made here (small answers).
            max_outgoing_size: usize::MAX,
        })
    }
}

impl Decoder for Codec {
    type Item = Packet;
    type Error = WireError;

    /// `None` until a whole packet is buffered; the size limit is checked on the fixed header.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, WireError> {
        self.0.decode(src).map_err(WireError::from)
    }
}

/// By reference: the session re-encodes packets it keeps (rumqttc's `Encoder<Packet>` would
/// need a clone each time); this is what that encoder does.
impl Encoder<&Packet> for Codec {
    type Error = WireError;

    fn encode(&mut self, packet: &Packet, dst: &mut BytesMut) -> Result<(), WireError> {
        packet
            .write(dst, self.0.max_outgoing_size)
            .map(|_| ())
            .map_err(|e| WireError::Malformed(e.to_string()))
    }
}

/// A read buffer that yields whole packets.
pub struct Frames {
    buf: BytesMut,
    codec: Codec,
}

impl Frames {
    pub fn new(max_packet_bytes: usize) -> Self {
        Frames {
            buf: BytesMut::with_capacity(READ_CHUNK),
            codec: Codec::new(max_packet_bytes),
        }
    }

    /// Reads once from `stream` into the buffer (cancel-safe: nothing is lost if dropped).
    pub async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Result<(), WireError> {
        self.buf.reserve(READ_CHUNK);
        match stream.read_buf(&mut self.buf).await? {
            0 => Err(WireError::Closed),
            _ => Ok(()),
        }
    }

    /// The next whole packet in the buffer, if there is one.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, WireError> {
        self.codec.decode(&mut self.buf)
    }

    /// Reads until one whole packet is there.
    pub async fn read<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Packet, WireError> {
        loop {
            if let Some(packet) = self.next_packet()? {
                return Ok(packet);
            }
            self.fill(stream).await?;
        }
    }
}

/// Appends `packet` to `out`; a packet the codec refuses to write is malformed.
pub fn encode(packet: &Packet, out: &mut BytesMut) -> Result<(), WireError> {
    Codec::new(0).encode(packet, out)
}

/// Writes and clears `out`.
pub async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    out: &mut BytesMut,
) -> Result<(), WireError> {
    if !out.is_empty() {
        stream.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rumqttc::mqttbytes::v4::Publish;
    use rumqttc::mqttbytes::QoS;

    proptest! {
        /// Whatever a peer sends, framing yields packets or an error, never a panic, and never
        /// holds more than one packet's worth of the limit.
        #[test]
        fn framing_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut frames = Frames::new(256);
            frames.buf.extend_from_slice(&data);
            while let Ok(Some(_)) = frames.next_packet() {}
        }

        /// A packet arriving in pieces, cut anywhere, is decoded once, whole and unchanged.
        #[test]
        fn a_packet_cut_anywhere_is_decoded_whole(
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let mut publish = Publish::new("/oneM2M/req/C1/CSE/json", QoS::AtLeastOnce, payload);
            publish.pkid = 7;
            let packet = Packet::Publish(publish);
            let mut bytes = BytesMut::new();
            encode(&packet, &mut bytes).unwrap();
            let mut frames = Frames::new(1024);
            let mut rest = &bytes[..];
            let mut decoded = Vec::new();
            for cut in cuts.iter().cycle() {
                let (piece, tail) = rest.split_at((*cut).min(rest.len()));
                frames.buf.extend_from_slice(piece);
                rest = tail;
                while let Some(p) = frames.next_packet().unwrap() {
                    decoded.push(p);
                }
                if rest.is_empty() {
                    break;
                }
            }
            prop_assert_eq!(decoded, vec![packet]);
            prop_assert!(frames.buf.is_empty());
        }
    }

    #[test]
    fn oversized_packet_is_refused_on_its_header() {
        let mut frames = Frames::new(1024);
        frames.buf.extend_from_slice(&[0x30, 0x80, 0x80, 0x40]);
        assert!(matches!(frames.next_packet(), Err(WireError::TooLarge(n)) if n == 1 << 20));
    }

    #[test]
    fn a_packet_at_the_limit_passes_and_one_byte_more_is_refused() {
        let packet = |len| Packet::Publish(Publish::new("t", QoS::AtMostOnce, vec![0; len]));
        // Remaining length: 2 (topic length) + 1 (topic) + payload.
        let mut at_limit = BytesMut::new();
        encode(&packet(61), &mut at_limit).unwrap();
        assert!(matches!(Codec::new(64).decode(&mut at_limit), Ok(Some(_))));
        let mut over = BytesMut::new();
        encode(&packet(62), &mut over).unwrap();
        assert!(matches!(
            Codec::new(64).decode(&mut over),
            Err(WireError::TooLarge(65))
        ));
    }
}
