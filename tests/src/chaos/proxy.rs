//! The TCP proxy between the visitors and the relays: what a load balancer is, plus a
//! switch that cuts connections on the suite's command.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Result;
use rand::Rng;
use rand::rngs::StdRng;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A running proxy; it stops with the token it was started with.
#[derive(Clone)]
pub struct Proxy {
    /// Where visitors connect (`http://127.0.0.1:port`).
    pub url: String,
    open: Arc<Mutex<HashMap<u64, CancellationToken>>>,
}

impl Proxy {
    /// Listens on a free port and spreads connections over `upstreams` in turn, skipping
    /// one that refuses (a relay that is down).
    pub async fn start(upstreams: Vec<SocketAddr>, stop: CancellationToken) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let open = Arc::new(Mutex::new(HashMap::new()));
        let proxy = Proxy { url, open: open.clone() };
        let next = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            let mut id = 0_u64;
            loop {
                let accepted = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                id += 1;
                let cut = stop.child_token();
                lock(&open).insert(id, cut.clone());
                let (open, upstreams, next) = (open.clone(), upstreams.clone(), next.clone());
                tokio::spawn(async move {
                    pipe(client, &upstreams, &next, cut).await;
                    lock(&open).remove(&id);
                });
            }
        });
        Ok(proxy)
    }

    /// Cuts `percent` of the open connections (chosen by `rng`); answers how many.
    pub fn cut(&self, percent: u8, rng: &mut StdRng) -> usize {
        let open = lock(&self.open);
        let mut cut = 0;
        for token in open.values() {
            if rng.random_range(0..100) < percent {
                token.cancel();
                cut += 1;
            }
        }
        cut
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn pipe(
    mut client: TcpStream,
    upstreams: &[SocketAddr],
    next: &AtomicUsize,
    cut: CancellationToken,
) {
    let first = next.fetch_add(1, Ordering::Relaxed);
    for k in 0..upstreams.len() {
        let upstream = upstreams[(first + k) % upstreams.len()];
        let Ok(mut server) = TcpStream::connect(upstream).await else { continue };
        tokio::select! {
            () = cut.cancelled() => {
                // A cut network says no goodbye: both peers see a reset.
                let _ = client.set_zero_linger();
                let _ = server.set_zero_linger();
            }
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// An echo server; answers its address.
    async fn echo() -> Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        Ok(addr)
    }

    async fn round_trip(stream: &mut TcpStream) -> Result<()> {
        stream.write_all(b"ping").await?;
        let mut answer = [0; 4];
        stream.read_exact(&mut answer).await?;
        anyhow::ensure!(&answer == b"ping");
        Ok(())
    }

    #[tokio::test]
    async fn connections_pass_skip_a_refusing_upstream_and_are_cut_on_command() -> Result<()> {
        let refusing = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
        let stop = CancellationToken::new();
        let proxy = Proxy::start(vec![refusing, echo().await?], stop.clone()).await?;
        let address = proxy.url.trim_start_matches("http://").to_owned();
        let mut first = TcpStream::connect(&address).await?;
        let mut second = TcpStream::connect(&address).await?;
        round_trip(&mut first).await?;
        round_trip(&mut second).await?;

        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(proxy.cut(100, &mut rng), 2);
        let mut rest = Vec::new();
        let read = first.read_to_end(&mut rest).await;
        assert!(read.is_err() || rest.is_empty(), "the cut connection is closed");
        let mut third = TcpStream::connect(&address).await?;
        round_trip(&mut third).await?;
        assert_eq!(proxy.cut(0, &mut rng), 0);
        round_trip(&mut third).await?;
        stop.cancel();
        Ok(())
    }
}
