//! MQTT 3.1.1 framing over a byte stream, with rumqttc's packet codec (`mqttbytes::v4`).
//!
//! In: bytes from a client or the broker. Out: whole [`Packet`]s, or a [`WireError`] that ends
//! that one connection. The size limit is applied to the fixed header's remaining length, before
//! the packet's body is buffered: at most one partial packet of `max_packet_bytes` plus one read
//! is ever held.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::Packet;
use rumqttc::mqttbytes::Error as CodecError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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

/// A read buffer that yields whole packets.
pub struct Frames {
    buf: BytesMut,
    max_packet_bytes: usize,
}

impl Frames {
    pub fn new(max_packet_bytes: usize) -> Self {
        Frames {
            buf: BytesMut::with_capacity(READ_CHUNK),
            max_packet_bytes,
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
        if self.buf.is_empty() {
            return Ok(None);
        }
        match Packet::read(&mut self.buf, self.max_packet_bytes) {
            Ok(packet) => Ok(Some(packet)),
            Err(CodecError::InsufficientBytes(_)) => Ok(None),
            Err(CodecError::PayloadSizeLimitExceeded(n)) => Err(WireError::TooLarge(n)),
            Err(e) => Err(WireError::Malformed(e.to_string())),
        }
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
    packet
        .write(out, usize::MAX)
        .map(|_| ())
        .map_err(|e| WireError::Malformed(e.to_string()))
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

    proptest! {
        /// Whatever a peer sends, framing yields packets or an error, never a panic, and never
        /// holds more than one packet's worth of the limit.
        #[test]
        fn framing_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut frames = Frames::new(256);
            frames.buf.extend_from_slice(&data);
            while let Ok(Some(_)) = frames.next_packet() {}
        }
    }

    #[test]
    fn oversized_packet_is_refused_on_its_header() {
        let mut frames = Frames::new(1024);
        frames.buf.extend_from_slice(&[0x30, 0x80, 0x80, 0x40]);
        assert!(matches!(frames.next_packet(), Err(WireError::TooLarge(n)) if n == 1 << 20));
    }
}
