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
use tokio::time::{Instant, Sleep};

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
    write: Watch,
    read: Watch,
}

impl<I> Timed<I> {
    pub fn new(inner: I, timeouts: Timeouts) -> Self {
        Timed {
            inner,
            write: Watch::new(timeouts.write, "read nothing"),
            read: Watch::new(timeouts.idle, "sent nothing"),
        }
    }
}

/// One direction's wait: since when it has been waiting, and a timer.
///
/// Arming a timer on every wait would cost a timer-wheel insertion and removal per
/// request (reads wait between every two requests). Instead the wait's start is only
/// noted, and one timer per connection is reset when it fires: if the wait it was set
/// for is over, it is set for the current one's end. So a busy connection touches its
/// timer about once per `limit`, not once per request.
struct Watch {
    limit: Duration,
    what: &'static str,
    since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Watch {
    fn new(limit: Duration, what: &'static str) -> Watch {
        Watch {
            limit,
            what,
            since: None,
            timer: None,
        }
    }

    /// The operation made progress: no wait is under way.
    fn progress(&mut self) {
        self.since = None;
    }

    /// The operation waits: an error once it has waited `limit`, else pending (with the
    /// task woken when the limit comes).
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let due = *self.since.get_or_insert_with(Instant::now) + self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        loop {
            match timer.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if Instant::now() >= due => {
                    return Poll::Ready(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the peer {} for {:?}", self.what, self.limit),
                    ));
                }
                // Set for an earlier wait that ended: set for this one.
                Poll::Ready(()) => timer.as_mut().reset(due),
            }
        }
    }
}

/// `result` of the inner stream, with `watch` told of progress or asked for expiry.
fn watched<T>(
    watch: &mut Watch,
    result: Poll<io::Result<T>>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<T>> {
    match result {
        Poll::Ready(r) => {
            watch.progress();
            Poll::Ready(r)
        }
        Poll::Pending => match watch.poll_expired(cx) {
            Poll::Ready(e) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        },
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Timed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        watched(&mut this.read, r, cx)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Timed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        watched(&mut this.write, r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        watched(&mut this.write, r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        watched(&mut this.write, r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        watched(&mut this.write, r, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
