//! Adapters from libp2p streams (`futures` I/O) to the stream traits bao-tree's decoder and encoder use.

use bytes::{Bytes, BytesMut};
use futures::{AsyncRead, AsyncReadExt};

/// Read buffer: large reads keep per-frame overhead off the hot path.
const READ_BUF: usize = 256 << 10;

/// A buffered reader that hands bao-tree exactly the bytes it asks for.
pub struct StreamReader<R> {
    inner: R,
    buf: BytesMut,
    /// Reads land here and only the bytes read are copied on, so `buf` is never resized (and zeroed) by 256 KiB
    /// for a read that brings a few KiB.
    scratch: Box<[u8]>,
}

impl<R: AsyncRead + Unpin> StreamReader<R> {
    pub fn new(inner: R) -> Self {
        StreamReader { inner, buf: BytesMut::with_capacity(READ_BUF), scratch: vec![0; READ_BUF].into_boxed_slice() }
    }

    /// Fills the buffer until it holds `len` bytes or the stream ends.
    async fn fill(&mut self, len: usize) -> std::io::Result<()> {
        while self.buf.len() < len {
            let n = self.inner.read(&mut self.scratch).await?;
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&self.scratch[..n]);
        }
        Ok(())
    }
}

impl<R: AsyncRead + Unpin> iroh_io::AsyncStreamReader for StreamReader<R> {
    async fn read_bytes(&mut self, len: usize) -> std::io::Result<Bytes> {
        self.fill(len).await?;
        let n = len.min(self.buf.len());
        Ok(self.buf.split_to(n).freeze())
    }

    async fn read<const L: usize>(&mut self) -> std::io::Result<[u8; L]> {
        self.fill(L).await?;
        if self.buf.len() < L {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut out = [0u8; L];
        out.copy_from_slice(&self.buf.split_to(L));
        Ok(out)
    }
}
