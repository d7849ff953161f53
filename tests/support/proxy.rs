//! A TCP proxy in front of the DC that can stop the traffic like a frozen (SIGSTOPped) DC: everything is
//! held, both ways and on new connections, until [`PausingProxy::thaw`], then delivered in order (requests
//! that arrived while frozen are applied then, as a DC resumed after a stop would apply them).
//! [`PausingProxy::freeze_after_next_request`] forwards the next client request and freezes right after it,
//! so that request reaches the DC and is applied, but its answer is held: a write with an unknown outcome.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct PausingProxy {
    pub addr: SocketAddr,
    frozen: watch::Sender<bool>,
    armed: Arc<AtomicUsize>,
}

impl PausingProxy {
    pub async fn start(target: &str) -> PausingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (frozen, _) = watch::channel(false);
        let armed = Arc::new(AtomicUsize::new(0));
        let proxy = PausingProxy {
            addr,
            frozen: frozen.clone(),
            armed: armed.clone(),
        };
        let target = target.to_string();
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let target = target.clone();
                let frozen = frozen.clone();
                let armed = armed.clone();
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = up.set_nodelay(true);
                    let _ = down.set_nodelay(true);
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    let requests = pump(dr, uw, frozen.clone(), Some(armed));
                    let answers = pump(ur, dw, frozen, None);
                    tokio::join!(requests, answers);
                });
            }
        });
        proxy
    }

    /// The next chunk a client sends is forwarded; then everything freezes.
    pub fn freeze_after_next_request(&self) {
        self.freeze_after_requests(1);
    }

    /// The next `n` chunks clients send are forwarded (one chunk is one LDAP request on a busy-free
    /// connection); then everything freezes.
    pub fn freeze_after_requests(&self, n: usize) {
        self.armed.store(n, Ordering::SeqCst);
    }

    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.armed.store(0, Ordering::SeqCst);
        self.frozen.send_replace(false);
    }
}

/// Copies one direction, holding every chunk while frozen. `arm` (client -> server only): when set, the
/// chunk is forwarded and then the proxy freezes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: watch::Sender<bool>,
    arm: Option<Arc<AtomicUsize>>,
) {
    let mut rx = frozen.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        let trigger = n > 0
            && !*rx.borrow()
            && arm.as_ref().is_some_and(|a| {
                a.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1)) == Ok(1)
            });
        if !trigger && rx.wait_for(|f| !*f).await.is_err() {
            return;
        }
        if n == 0 {
            let _ = to.shutdown().await;
            return;
        }
        if trigger {
            // Frozen before the request goes out, so its answer is certainly held.
            frozen.send_replace(true);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
