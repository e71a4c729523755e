//! The demo's load balancer: a TCP proxy that hands each connection to the next relay that
//! accepts one, so killing a relay moves its browsers to the others (as a real load
//! balancer with health checks would). Plain threads: it is a development tool.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

/// Listens on `listen` and forwards to `backends` in turn, skipping those that refuse.
pub(crate) fn start(listen: SocketAddr, backends: Vec<SocketAddr>) -> Result<()> {
    let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    let backends = Arc::new(backends);
    let next = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (backends, next) = (backends.clone(), next.clone());
            std::thread::spawn(move || {
                let first = next.fetch_add(1, Ordering::Relaxed);
                let upstream = (0..backends.len()).find_map(|k| {
                    let backend = backends[(first + k) % backends.len()];
                    TcpStream::connect_timeout(&backend, Duration::from_millis(500)).ok()
                });
                if let Some(upstream) = upstream {
                    pipe(client, upstream);
                }
            });
        }
    });
    Ok(())
}

/// Copies both ways until either side closes.
fn pipe(client: TcpStream, upstream: TcpStream) {
    let (Ok(mut client_read), Ok(mut upstream_read)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let (mut client_write, mut upstream_write) = (client, upstream);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream_read, &mut client_write);
    let _ = client_write.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}
