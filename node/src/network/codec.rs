//! A request-response codec for prost messages: a 4-byte big-endian length, then the message.
//!
//! Lengths above the codec's limit are refused before anything is allocated, so a peer cannot make
//! this node buffer more than the limit per stream.

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// Largest RPC message accepted, in bytes.
pub(crate) const MAX_RPC_BYTES: usize = 4 * 1024 * 1024;

/// Length-prefixed prost codec for request type `Req` and response type `Resp`.
#[derive(Debug)]
pub(crate) struct ProstCodec<Req, Resp> {
    max_bytes: usize,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> ProstCodec<Req, Resp> {
    /// A codec refusing messages larger than `max_bytes`.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> Clone for ProstCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.max_bytes)
    }
}

impl<Req, Resp> Default for ProstCodec<Req, Resp> {
    fn default() -> Self {
        Self::new(MAX_RPC_BYTES)
    }
}

async fn read_message<T, M>(io: &mut T, max: usize) -> io::Result<M>
where
    T: AsyncRead + Unpin + Send,
    M: prost::Message + Default,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("rpc message of {len} bytes exceeds the limit of {max} bytes"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    M::decode(buf.as_slice())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("rpc message does not decode: {e}")))
}

async fn write_message<T, M>(io: &mut T, msg: &M, max: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
    M: prost::Message,
{
    let bytes = msg.encode_to_vec();
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("rpc message of {} bytes exceeds the limit of {max} bytes", bytes.len()),
        ));
    }
    let len =
        u32::try_from(bytes.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "rpc message too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl<Req, Resp> libp2p::request_response::Codec for ProstCodec<Req, Resp>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, self.max_bytes).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, self.max_bytes).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &req, self.max_bytes).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Resp) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &res, self.max_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bzzz_protocol::wire::{ProbeAck, RpcRequest, rpc_request};
    use futures::io::Cursor;

    /// A message written by the codec reads back equal; an over-limit length prefix is refused.
    #[tokio::test]
    async fn round_trip_and_limit() {
        let req = RpcRequest {
            body: Some(rpc_request::Body::ProbeAck(ProbeAck {
                probe_id: vec![1; 16],
                received_at_ms: 5,
            })),
        };
        let mut buf = Cursor::new(Vec::new());
        write_message(&mut buf, &req, 1024).await.expect("writes");
        let mut rd = Cursor::new(buf.into_inner());
        let back: RpcRequest = read_message(&mut rd, 1024).await.expect("reads");
        assert_eq!(back, req);

        let mut huge = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let err = read_message::<_, RpcRequest>(&mut huge, 1024)
            .await
            .expect_err("over limit must fail");
        assert!(err.to_string().contains("exceeds the limit"), "got {err}");
    }
}
