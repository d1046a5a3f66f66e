//! Length-prefixed SCALE frames over any async byte stream.

use ferry_primitives::{decode_bounded, DecodeError};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use parity_scale_codec::{Decode, Encode};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the peer closed the stream")]
    Closed,
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("frame does not decode: {0}")]
    Malformed(DecodeError),
    #[error("stream I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes one frame and flushes it.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Encode>(io: &mut W, msg: &T) -> std::io::Result<()> {
    let body = msg.encode();
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&body);
    io.write_all(&buf).await?;
    io.flush().await
}

/// Reads one frame of at most `max` bytes. The length is checked before anything is buffered.
pub async fn read_frame<R: AsyncRead + Unpin, T: Decode>(io: &mut R, max: usize) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    match io.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    decode_bounded(&body, max).map_err(FrameError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p2p::protocol::{ChunkRequest, ReceiptReply, MAX_CONTROL_FRAME};
    use proptest::prelude::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn frame_round_trips() {
        let req = ChunkRequest { claim: [9; 16], blob: [8; 32], size: 77, start_group: 1 };
        let mut buf = Vec::new();
        block_on(write_frame(&mut buf, &req)).unwrap();
        let back: ChunkRequest = block_on(read_frame(&mut buf.as_slice(), MAX_CONTROL_FRAME)).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn oversized_length_is_refused_before_reading() {
        let mut buf = (u32::MAX).to_le_bytes().to_vec();
        buf.extend_from_slice(&[0; 8]);
        let err = block_on(read_frame::<_, ChunkRequest>(&mut buf.as_slice(), MAX_CONTROL_FRAME)).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn truncated_frame_is_an_error() {
        let req = ChunkRequest { claim: [9; 16], blob: [8; 32], size: 77, start_group: 1 };
        let mut buf = Vec::new();
        block_on(write_frame(&mut buf, &req)).unwrap();
        buf.truncate(buf.len() - 3);
        assert!(block_on(read_frame::<_, ChunkRequest>(&mut buf.as_slice(), MAX_CONTROL_FRAME)).is_err());
        assert!(matches!(
            block_on(read_frame::<_, ChunkRequest>(&mut &[][..], MAX_CONTROL_FRAME)),
            Err(FrameError::Closed)
        ));
    }

    proptest! {
        /// Any bytes at all decode to a value or an error, never a panic.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = block_on(read_frame::<_, ChunkRequest>(&mut bytes.as_slice(), MAX_CONTROL_FRAME));
            let _ = block_on(read_frame::<_, ReceiptReply>(&mut bytes.as_slice(), MAX_CONTROL_FRAME));
            let _ = block_on(read_frame::<_, crate::p2p::protocol::SessionMessage>(&mut bytes.as_slice(), MAX_CONTROL_FRAME));
        }

        /// A valid frame with its length field changed is refused or misread, never a panic.
        #[test]
        fn length_field_lies(len in any::<u32>()) {
            let req = ChunkRequest { claim: [1; 16], blob: [2; 32], size: 3, start_group: 4 };
            let mut buf = Vec::new();
            block_on(write_frame(&mut buf, &req)).unwrap();
            buf[..4].copy_from_slice(&len.to_le_bytes());
            let r = block_on(read_frame::<_, ChunkRequest>(&mut buf.as_slice(), MAX_CONTROL_FRAME));
            if len as usize != buf.len() - 4 { prop_assert!(r.is_err()); }
        }
    }
}
