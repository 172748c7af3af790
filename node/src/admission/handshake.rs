//! The `/bzzz/admit/1` connection upgrade: after noise has authenticated the remote peer id and
//! before yamux multiplexes the connection, both sides exchange certificates and verdicts.
//!
//! ```text
//!   dialer                         listener
//!   AdmitHello  ───────────────►   (both send at once)
//!               ◄───────────────   AdmitHello
//!   AdmitVerdict ──────────────►   (both send at once)
//!               ◄───────────────   AdmitVerdict
//!   yamux (only if both admitted)
//! ```
//!
//! Negotiating `/bzzz/admit/1` takes the place the multiplexer's negotiation had (the protocol
//! implies yamux after it), and both sides send each message without waiting for the other's, so
//! admission adds one round trip to a connection. A peer that refuses, or does not finish within
//! the bound, never gets a multiplexed connection: the swarm never sees it.

use std::io;
use std::sync::Arc;

use bzzz_protocol::wire::{AdmitHello, AdmitVerdict};
use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::PeerId;
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use prost::Message;

use super::metrics::{Outcome, Reason};
use super::{Admission, Admitted};

/// Largest handshake message accepted, in bytes (a chain is at most three 4 KiB certificates).
pub(crate) const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Longest refusal message logged from a peer, in characters.
const MAX_LOGGED_MESSAGE: usize = 200;

/// The upgrade for one connection to `peer` (authenticated by noise).
#[derive(Debug, Clone)]
pub(crate) struct AdmitUpgrade {
    admission: Arc<Admission>,
    peer: PeerId,
}

impl AdmitUpgrade {
    pub(crate) fn new(admission: Arc<Admission>, peer: PeerId) -> Self {
        AdmitUpgrade { admission, peer }
    }

    pub(super) async fn run<C>(self, mut socket: C, dialer: bool) -> io::Result<libp2p::yamux::Muxer<C>>
    where
        C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let admission = self.admission.clone();
        let peer = self.peer;
        // A node without a certificate that holds a join token only ever joins.
        if let Some(ended) = super::join::maybe_join(&admission, peer, &mut socket).await {
            return Err(ended);
        }
        match tokio::time::timeout(admission.timeout(), exchange(&admission, peer, &mut socket)).await {
            Ok(Ok(Exchanged::Admitted(admitted))) => admission.admit(peer, *admitted),
            Ok(Ok(Exchanged::Joiner)) => {
                super::join::serve(&admission, peer, &mut socket).await;
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "served a join: the node connects again with its certificate",
                ));
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                admission.metrics().count(Outcome::Failed, Reason::Timeout);
                tracing::debug!(%peer, "admission handshake timed out");
                return Err(io::Error::new(io::ErrorKind::TimedOut, "admission handshake timed out"));
            }
        }
        let yamux = libp2p::yamux::Config::default();
        if dialer {
            yamux.upgrade_outbound(socket, "/yamux/1.0.0").await
        } else {
            yamux.upgrade_inbound(socket, "/yamux/1.0.0").await
        }
    }
}

/// How the certificate exchange ended, when it did not refuse the connection.
enum Exchanged {
    /// Both sides admitted each other: the connection proceeds to yamux.
    Admitted(Box<Admitted>),
    /// The peer has no certificate and a join token, and this node offered to serve the join.
    Joiner,
}

/// Sends this node's hello and verdict, reads the peer's, and says whether both admitted.
/// Every way it ends other than admission is counted once.
async fn exchange<C>(admission: &Admission, peer: PeerId, socket: &mut C) -> io::Result<Exchanged>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let failed = |e: io::Error| {
        admission.metrics().count(Outcome::Failed, Reason::Protocol);
        tracing::debug!(%peer, error = %e, "admission handshake failed");
        e
    };
    write_frame(socket, &admission.hello()).await.map_err(failed)?;
    let theirs: AdmitHello = read_frame(socket).await.map_err(failed)?;
    if theirs.wants_join && theirs.chain.is_none() && admission.enabled() {
        return offer_join(admission, peer, &theirs, socket).await;
    }
    let judged = admission.judge(&peer, &theirs);
    let verdict = match &judged {
        Ok(_) => AdmitVerdict {
            admitted: true,
            ..AdmitVerdict::default()
        },
        Err(refusal) => AdmitVerdict {
            admitted: false,
            reason: crate::metrics::LabelValue::as_str(refusal.reason).to_owned(),
            message: refusal.message.clone(),
            join_offered: false,
        },
    };
    // A refused peer still gets the verdict, so its operator sees why; write errors then do not
    // matter (the connection is dropped either way).
    let sent = write_frame(socket, &verdict).await;
    let admitted = match judged {
        Err(refusal) => {
            admission.metrics().count(Outcome::Refused, refusal.reason);
            tracing::info!(%peer, reason = crate::metrics::LabelValue::as_str(refusal.reason), message = %refusal.message, "refused a peer at admission");
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, refusal.message));
        }
        Ok(admitted) => admitted,
    };
    sent.map_err(failed)?;
    let their_verdict: AdmitVerdict = read_frame(socket).await.map_err(failed)?;
    if !their_verdict.admitted {
        let reason = Reason::parse(&their_verdict.reason);
        admission.metrics().count(Outcome::RefusedByPeer, reason);
        let message: String = their_verdict.message.chars().take(MAX_LOGGED_MESSAGE).collect();
        tracing::warn!(%peer, reason = crate::metrics::LabelValue::as_str(reason), %message, "a peer refused this node's certificate");
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("peer refused admission: {message}"),
        ));
    }
    Ok(Exchanged::Admitted(Box::new(admitted)))
}

/// A node without a certificate asked to join: offer it if this node can serve joins, else
/// refuse with the reason (counted as `refused`, `join_unavailable`).
async fn offer_join<C>(admission: &Admission, peer: PeerId, hello: &AdmitHello, socket: &mut C) -> io::Result<Exchanged>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    match admission.join_unavailable(hello) {
        None => {
            let offer = AdmitVerdict {
                admitted: false,
                reason: "join".into(),
                message: "present the join token".into(),
                join_offered: true,
            };
            write_frame(socket, &offer).await?;
            Ok(Exchanged::Joiner)
        }
        Some(message) => {
            admission.metrics().count(Outcome::Refused, Reason::JoinUnavailable);
            tracing::info!(%peer, %message, "refused a joining node");
            let refusal = AdmitVerdict {
                admitted: false,
                reason: crate::metrics::LabelValue::as_str(Reason::JoinUnavailable).to_owned(),
                message: message.clone(),
                join_offered: false,
            };
            let _ = write_frame(socket, &refusal).await;
            Err(io::Error::new(io::ErrorKind::PermissionDenied, message))
        }
    }
}

pub(crate) async fn write_frame<C, M>(socket: &mut C, msg: &M) -> io::Result<()>
where
    C: AsyncWrite + Unpin,
    M: Message,
{
    let body = msg.encode_to_vec();
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_FRAME_BYTES)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "admission message too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    socket.write_all(&frame).await?;
    socket.flush().await
}

pub(crate) async fn read_frame<C, M>(socket: &mut C) -> io::Result<M>
where
    C: AsyncRead + Unpin,
    M: Message + Default,
{
    let mut len = [0u8; 4];
    socket.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("admission message of {len} bytes is above the {MAX_FRAME_BYTES}-byte limit"),
        ));
    }
    let mut body = vec![0u8; len];
    socket.read_exact(&mut body).await?;
    M::decode(body.as_slice())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "admission message does not decode"))
}

impl UpgradeInfo for AdmitUpgrade {
    type Info = &'static str;
    type InfoIter = std::iter::Once<&'static str>;

    fn protocol_info(&self) -> Self::InfoIter {
        std::iter::once(bzzz_protocol::protocols::ADMIT)
    }
}

impl<C> InboundConnectionUpgrade<C> for AdmitUpgrade
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = libp2p::yamux::Muxer<C>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<Self::Output>>;

    fn upgrade_inbound(self, socket: C, _: Self::Info) -> Self::Future {
        Box::pin(self.run(socket, false))
    }
}

impl<C> OutboundConnectionUpgrade<C> for AdmitUpgrade
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = libp2p::yamux::Muxer<C>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<Self::Output>>;

    fn upgrade_outbound(self, socket: C, _: Self::Info) -> Self::Future {
        Box::pin(self.run(socket, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame announcing more than the limit is refused before anything is allocated for it;
    /// bytes that are not a hello are refused; a well-formed hello round-trips.
    #[test]
    fn frames_are_bounded_and_checked() {
        futures::executor::block_on(async {
            let mut huge = futures::io::Cursor::new(u32::MAX.to_be_bytes().to_vec());
            let err = read_frame::<_, AdmitHello>(&mut huge).await.expect_err("too large");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("limit"), "{err}");

            let mut garbage = 4u32.to_be_bytes().to_vec();
            garbage.extend_from_slice(&[0xff; 4]);
            let err = read_frame::<_, AdmitHello>(&mut futures::io::Cursor::new(garbage))
                .await
                .expect_err("garbage");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);

            let mut short = futures::io::Cursor::new(vec![0, 0, 0, 9, 1]);
            assert!(read_frame::<_, AdmitHello>(&mut short).await.is_err(), "a cut frame");

            let hello = AdmitHello {
                protocol: bzzz_protocol::protocols::ADMIT.into(),
                ..AdmitHello::default()
            };
            let mut buf = futures::io::Cursor::new(Vec::new());
            write_frame(&mut buf, &hello).await.expect("write");
            buf.set_position(0);
            assert_eq!(read_frame::<_, AdmitHello>(&mut buf).await.expect("read"), hello);
        });
    }
}
