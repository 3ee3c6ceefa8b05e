//! Stopping without losing a request.
//!
//! HTTP/1.1 keep-alive has a race at shutdown: a server that closes an idle connection may
//! do so just as the client writes its next request on it, and that request is lost. So the
//! server does not close connections under its clients. Once the drain is over it closes its
//! listening socket (new connections are refused, which clients see as "not accepted"), and
//! only then answers the next request on each open connection with `Connection: close`, after
//! which the connection ends: a client told to reconnect before the socket was gone could
//! land in its backlog and be reset. Only a connection still idle [`CLOSE_GRACE`] later is closed by the server.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long open connections have, after the listener closes, to send the request that ends
/// them; connections idle past it are closed.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A listener that stops accepting, and drops its socket, when told to, and counts the
/// connections still open.
pub(crate) struct Closable {
    listener: Option<TcpListener>,
    local_addr: io::Result<SocketAddr>,
    stop: watch::Receiver<bool>,
    open: Arc<watch::Sender<usize>>,
    closed: Arc<watch::Sender<bool>>,
}

impl Closable {
    /// Wraps `listener`; `stop` turning true closes it.
    pub(crate) fn new(listener: TcpListener, stop: watch::Receiver<bool>) -> Closable {
        Closable {
            local_addr: listener.local_addr(),
            listener: Some(listener),
            stop,
            open: Arc::new(watch::channel(0).0),
            closed: Arc::new(watch::channel(false).0),
        }
    }

    /// Turns true once the listening socket is gone, so new connections are refused: only
    /// then may responses tell clients to reconnect, or a client could reconnect into the
    /// socket's backlog just before it closes and have its request reset.
    pub(crate) fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Watches the number of open connections.
    pub(crate) fn open_connections(&self) -> watch::Receiver<usize> {
        self.open.subscribe()
    }
}

impl axum::serve::Listener for Closable {
    type Io = Tracked;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Tracked, SocketAddr) {
        loop {
            let Some(listener) = &self.listener else {
                return std::future::pending().await;
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = self.stop.wait_for(|stop| *stop) => {
                    self.listener = None;
                    self.closed.send_replace(true);
                    continue;
                }
            };
            match accepted {
                Ok((tcp, addr)) => {
                    // Responses are written whole; waiting for more bytes only adds latency.
                    let _ = tcp.set_nodelay(true);
                    self.open.send_modify(|n| *n += 1);
                    let open = self.open.clone();
                    return (Tracked { tcp, open }, addr);
                }
                // The peer gave up before we accepted: nothing to do.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                // Out of file descriptors and the like: wait for some to be released.
                Err(e) => {
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.local_addr {
            Ok(addr) => Ok(*addr),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// An accepted connection, counted as open until dropped.
pub(crate) struct Tracked {
    tcp: TcpStream,
    open: Arc<watch::Sender<usize>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.open.send_modify(|n| *n -= 1);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
