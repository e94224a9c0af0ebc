//! Bus framing: each frame is a `u32` big-endian payload length followed by a bincode payload.
//!
//! A length above the maximum is rejected as soon as the header is read, before anything is
//! allocated for the payload; a payload within the limit is read as it arrives rather than
//! allocated in full up front, so a lying header costs nothing until the bytes exist.

use std::io;

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 4;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection cleanly, between frames.
    #[error("connection closed")]
    Closed,
    /// The frame's payload is larger than the limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The payload's length (as announced, or as encoded).
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The socket failed (reset, EOF inside a frame, ...).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The message could not be encoded.
    #[error("cannot encode frame: {0}")]
    Encode(bincode::Error),
    /// The payload is not a valid message.
    #[error("malformed frame: {0}")]
    Decode(bincode::Error),
}

/// The bincode configuration of the bus: fixed-width integers, little endian, at most `max`
/// bytes, no trailing bytes after a message.
fn options(max: usize) -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_limit(max as u64)
}

/// Encodes `msg` as a whole frame (header and payload), refusing payloads above `max` bytes.
pub fn encode_frame<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let max = max.min(u32::MAX as usize);
    let mut buf = vec![0u8; HEADER_LEN];
    // The size limit makes bincode stop as soon as the payload outgrows `max`, so an oversized
    // message is never fully materialised.
    options(max).serialize_into(&mut buf, msg).map_err(|e| match *e {
        bincode::ErrorKind::SizeLimit => {
            FrameError::TooLarge { len: options(usize::MAX).serialized_size(msg).unwrap_or(u64::MAX), max }
        }
        _ => FrameError::Encode(e),
    })?;
    let len = buf.len() - HEADER_LEN;
    if len > max {
        return Err(FrameError::TooLarge { len: len as u64, max });
    }
    buf[..HEADER_LEN].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Decodes a frame's payload (without its header).
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8], max: usize) -> Result<T, FrameError> {
    options(max).deserialize(payload).map_err(FrameError::Decode)
}

/// Writes `msg` as one frame.
pub async fn write_frame<W, T>(w: &mut W, msg: &T, max: usize) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let frame = encode_frame(msg, max)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame and decodes it. A clean end of stream before the first header byte is
/// [`FrameError::Closed`]; an end of stream anywhere inside a frame is an I/O error.
///
/// Not cancel-safe: a caller that drops this future part-way must drop the stream too.
pub async fn read_frame<R, T>(r: &mut R, max: usize) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        let n = r.read(&mut header[filled..]).await?;
        if n == 0 {
            if filled == 0 {
                return Err(FrameError::Closed);
            }
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        filled += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len: len as u64, max });
    }
    // Grow with the bytes actually received (`read_to_end` doubles as needed), instead of
    // trusting the header with a `len`-byte allocation.
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    let got = r.take(len as u64).read_to_end(&mut payload).await?;
    if got < len {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    decode_payload(&payload, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::message::{Envelope, Refusal, Reply, RpcRequest, RpcResponse};
    use openraft::raft::{AppendEntriesRequest, VoteRequest};
    use openraft::{CommittedLeaderId, LogId, Vote};

    const MAX: usize = 1024 * 1024;

    fn envelope(id: u64) -> Envelope {
        Envelope {
            id,
            from: 1,
            to: 2,
            cluster: "test".into(),
            addrs: vec![(1, "127.0.0.1:7001".into(), 5)],
            body: RpcRequest::Vote(VoteRequest::new(
                Vote::new(3, 1),
                Some(LogId::new(CommittedLeaderId::new(2, 1), 7)),
            )),
        }
    }

    #[test]
    fn header_is_big_endian_payload_length() {
        let frame = encode_frame(&envelope(1), MAX).unwrap();
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - HEADER_LEN);
    }

    #[tokio::test]
    async fn round_trip_over_a_stream() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for id in 0..3 {
                write_frame(&mut a, &envelope(id), MAX).await.unwrap();
            }
            let reply = Reply { id: 9, addrs: vec![], body: RpcResponse::Refused(Refusal::UnknownSender(5)) };
            write_frame(&mut a, &reply, MAX).await.unwrap();
        });
        for id in 0..3 {
            let env: Envelope = read_frame(&mut b, MAX).await.unwrap();
            assert_eq!(env.id, id);
            assert_eq!((env.from, env.to, env.cluster.as_str()), (1, 2, "test"));
            let RpcRequest::Vote(v) = env.body else { panic!("wrong body {:?}", env.body) };
            assert_eq!(v.vote, Vote::new(3, 1));
        }
        let reply: Reply = read_frame(&mut b, MAX).await.unwrap();
        assert_eq!(reply.id, 9);
        assert!(matches!(reply.body, RpcResponse::Refused(Refusal::UnknownSender(5))));
        writer.await.unwrap();
        // The writer is gone: a clean end between frames.
        assert!(matches!(read_frame::<_, Reply>(&mut b, MAX).await, Err(FrameError::Closed)));
    }

    #[tokio::test]
    async fn oversize_header_is_rejected_before_the_payload() {
        // Only the header exists: a reader that tried to read or allocate the payload first
        // would wait forever or allocate 4 GiB.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let err = read_frame::<_, Envelope>(&mut b, MAX).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len, max } if len == u32::MAX as u64 && max == MAX), "{err:?}");
    }

    #[test]
    fn oversize_message_is_not_encoded() {
        let env = Envelope {
            body: RpcRequest::AppendEntries(AppendEntriesRequest {
                vote: Vote::new(1, 1),
                prev_log_id: None,
                entries: vec![],
                leader_commit: None,
            }),
            cluster: "x".repeat(2048),
            ..envelope(1)
        };
        let err = encode_frame(&env, 1024).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len, max: 1024 } if len > 2048), "{err:?}");
    }

    #[tokio::test]
    async fn truncated_and_garbage_frames_are_errors() {
        // EOF inside the payload.
        let frame = encode_frame(&envelope(1), MAX).unwrap();
        let mut short = &frame[..frame.len() - 1];
        assert!(matches!(
            read_frame::<_, Envelope>(&mut short, MAX).await,
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof
        ));
        // EOF inside the header.
        let mut half = &frame[..2];
        assert!(matches!(read_frame::<_, Envelope>(&mut half, MAX).await, Err(FrameError::Io(_))));
        // A well-framed payload that is not an envelope.
        let mut garbage = vec![0, 0, 0, 3];
        garbage.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert!(matches!(read_frame::<_, Envelope>(&mut garbage.as_slice(), MAX).await, Err(FrameError::Decode(_))));
    }
}
