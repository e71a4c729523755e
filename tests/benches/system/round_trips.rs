//! Round trips to Redis, measured on the wire: a TCP proxy between the relays and
//! redis-server that counts, per connection, each time the client sends after Redis has
//! answered (a pipeline is one round trip, however many commands it carries).
//!
//! Requests that several tasks send on one multiplexed connection before Redis answers
//! share a round trip, as they do on a real network: the count is what a hop to a remote
//! Redis would cost, not the number of calls in the code.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Result;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The proxy, running until dropped.
pub(crate) struct Counted {
    /// `redis://` URL of the proxy, for the relays.
    pub(crate) url: String,
    trips: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Counted {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `upstream`
    /// (`host:port`).
    pub(crate) async fn start(upstream: String) -> Result<Counted> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("redis://{}/0", listener.local_addr()?);
        let trips = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (counter, token) = (trips.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = token.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                let (upstream, counter, token) = (upstream.clone(), counter.clone(), token.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        tokio::select! {
                            () = token.cancelled() => {}
                            () = forward(client, server, counter) => {}
                        }
                    }
                });
            }
        });
        Ok(Counted { url, trips, stop })
    }

    /// Round trips counted so far, over every connection.
    pub(crate) fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Copies both ways until either side closes, counting a round trip when the client sends
/// while nothing it sent is still unanswered.
async fn forward(client: TcpStream, server: TcpStream, trips: Arc<AtomicU64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let waiting = Arc::new(AtomicBool::new(false));
    let asked = waiting.clone();
    let requests = async move {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
            if !asked.swap(true, Ordering::AcqRel) {
                trips.fetch_add(1, Ordering::Relaxed);
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    };
    let answers = async move {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(n @ 1..) = server_read.read(&mut buffer).await {
            waiting.store(false, Ordering::Release);
            if client_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = requests => {}
        () = answers => {}
    }
}
