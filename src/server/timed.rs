//! A connection that gives up on a peer that stops reading or goes quiet.
//!
//! hyper bounds how long a client may take to send its headers, but not how long a
//! response may wait for a client that never reads it, nor how long an idle kept-alive
//! connection is held. [`Timed`] adds both, below hyper: a write that cannot proceed for
//! `write` fails the connection, and so does a read that waits for `idle`. A connection
//! therefore costs its memory and its slot for a bounded time, whatever the peer does.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep, Sleep};

/// How long a connection may wait on its peer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A response's bytes not taken by the peer for this long end the connection.
    pub write: Duration,
    /// No byte from the peer for this long while the server waits to read ends it.
    pub idle: Duration,
}

pub struct Timed<I> {
    inner: I,
    timeouts: Timeouts,
    /// Armed while a write waits.
    write_wait: Option<Pin<Box<Sleep>>>,
    /// Armed while a read waits.
    read_wait: Option<Pin<Box<Sleep>>>,
}

impl<I> Timed<I> {
    pub fn new(inner: I, timeouts: Timeouts) -> Self {
        Timed {
            inner,
            timeouts,
            write_wait: None,
            read_wait: None,
        }
    }
}

/// Polls `timer` (armed now for `limit` if it is not yet): an error once it has run out.
fn expired(
    timer: &mut Option<Pin<Box<Sleep>>>,
    limit: Duration,
    cx: &mut Context<'_>,
    what: &str,
) -> Poll<io::Result<()>> {
    let t = timer.get_or_insert_with(|| Box::pin(sleep(limit)));
    match t.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the peer {what} for {limit:?}"),
        ))),
        Poll::Pending => Poll::Pending,
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Timed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.read_wait = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let idle = this.timeouts.idle;
                match expired(&mut this.read_wait, idle, cx, "sent nothing") {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                }
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Timed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.write_wait = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = this.timeouts.write;
                match expired(&mut this.write_wait, limit, cx, "read nothing") {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                }
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.write_wait = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = this.timeouts.write;
                match expired(&mut this.write_wait, limit, cx, "read nothing") {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Pending,
                }
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => {
                this.write_wait = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = this.timeouts.write;
                expired(&mut this.write_wait, limit, cx, "read nothing")
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Pending => {
                let limit = this.timeouts.write;
                expired(&mut this.write_wait, limit, cx, "read nothing")
            }
            ready => ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_reads_is_cut_after_the_write_timeout() {
        let (server, _client) = tokio::io::duplex(1024);
        let t = Timeouts {
            write: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        };
        let mut s = Timed::new(server, t);
        let start = Instant::now();
        let big = vec![0u8; 64 * 1024];
        let e = s.write_all(&big).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_peer_is_cut_after_the_idle_timeout_and_a_talking_one_is_not() {
        let (server, mut client) = tokio::io::duplex(1024);
        let t = Timeouts {
            write: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        };
        let mut s = Timed::new(server, t);
        let talker = tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(50)).await;
                client.write_all(b"x").await.unwrap();
            }
            client
        });
        let mut buf = [0u8; 1];
        for _ in 0..5 {
            s.read_exact(&mut buf).await.unwrap();
        }
        let _client = talker.await.unwrap();
        let start = Instant::now();
        let e = s.read_exact(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(Instant::now() - start, Duration::from_secs(60));
    }
}
