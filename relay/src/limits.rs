//! Per-client-address limits of the public endpoints: registrations per minute (each costs
//! GMS a request), WebSocket connections per minute and open at once. The client address
//! is the peer's, or what a trusted proxy put in `X-Forwarded-For`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{Cidr, Config};
use crate::error::AppError;

/// The limits; cheap to clone.
#[derive(Clone)]
pub(crate) struct Limits {
    trusted: Arc<[Cidr]>,
    register: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    connect: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    open_per_address: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds one of an address's open WebSockets; dropping it gives the slot back.
pub(crate) struct OpenSocket {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    address: IpAddr,
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

fn per_minute(rate: u32) -> Option<Arc<DefaultKeyedRateLimiter<IpAddr>>> {
    NonZeroU32::new(rate).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))))
}

impl Limits {
    pub(crate) fn new(config: &Config) -> Limits {
        Limits {
            trusted: config.trusted_proxies.clone().into(),
            register: per_minute(config.register_rate),
            connect: per_minute(config.ws_connect_rate),
            open_per_address: config.ws_per_address,
            open: Arc::default(),
        }
    }

    /// The client's address: the peer, unless the peer is a trusted proxy.
    pub(crate) fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        client_address(peer.ip(), headers, &self.trusted)
    }

    /// One registration from `client`, or 429.
    pub(crate) fn register(&self, client: IpAddr) -> Result<(), AppError> {
        check(self.register.as_deref(), client, "register")
    }

    /// One WebSocket from `client`: the rate, then a slot among its open sockets.
    pub(crate) fn open_socket(&self, client: IpAddr) -> Result<OpenSocket, AppError> {
        check(self.connect.as_deref(), client, "ws")?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(client).or_default();
        if self.open_per_address > 0 && *count >= self.open_per_address {
            metrics::counter!("relay_rate_limited_total", "endpoint" => "ws_open").increment(1);
            return Err(AppError::TooManyRequests { retry_after: Duration::from_secs(30) });
        }
        *count += 1;
        Ok(OpenSocket { open: self.open.clone(), address: client })
    }

    /// Forgets addresses whose limits are back to full, so memory stays bounded.
    pub(crate) fn forget_idle(&self) {
        for limiter in [&self.register, &self.connect].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn check(
    limiter: Option<&DefaultKeyedRateLimiter<IpAddr>>,
    client: IpAddr,
    endpoint: &'static str,
) -> Result<(), AppError> {
    let Some(limiter) = limiter else { return Ok(()) };
    limiter.check_key(&client).map_err(|not_until| {
        metrics::counter!("relay_rate_limited_total", "endpoint" => endpoint).increment(1);
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        AppError::TooManyRequests { retry_after: wait }
    })
}

/// The rightmost `X-Forwarded-For` address that is not a trusted proxy, when the peer is
/// one (the entries left of it could be forged by the client); otherwise the peer.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    hops.iter().rev().copied().find(|ip| !is_trusted(*ip)).unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use axum::http::{HeaderMap, HeaderValue};

    use super::client_address;
    use crate::config::Cidr;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted = [Cidr::parse("10.0.0.0/8").expect("cidr")];
        let headers = forwarded("6.6.6.6, 203.0.113.9, 10.0.0.7");
        assert_eq!(client_address(ip("10.0.0.2"), &headers, &trusted), ip("203.0.113.9"));
        assert_eq!(client_address(ip("198.51.100.1"), &headers, &trusted), ip("198.51.100.1"));
        assert_eq!(client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted), ip("10.0.0.2"));
        assert_eq!(client_address(ip("10.0.0.2"), &forwarded("junk"), &trusted), ip("10.0.0.2"));
        assert_eq!(client_address(ip("10.0.0.2"), &headers, &[]), ip("10.0.0.2"));
    }
}
