//! Per-client limits of the public endpoints: registrations per minute (each costs GMS a
//! request) and per second across every client, identity look-ups at the registrations'
//! rate, resume claims at a stricter one, WebSocket connections per minute and open at
//! once. The client is the peer's address, or what a trusted proxy put in
//! `X-Forwarded-For`; an IPv6 client is its /64, since one host commonly holds a whole /64.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use shared::proxy::RateClass;

use crate::config::{Cidr, Config};
use crate::error::AppError;

/// Resume claims per minute per client: a visitor follows a link now and then, and
/// anything faster is someone trying tokens (which cannot be guessed, but each try costs a
/// read of the store).
const RESUME_PER_MINUTE: NonZeroU32 = NonZeroU32::new(10).expect("not zero");
/// Resume claims a client may make at once before the rate applies.
const RESUME_BURST: NonZeroU32 = NonZeroU32::new(5).expect("not zero");
/// Ratings of one chat an hour: a visitor rates once, perhaps again after a lost answer;
/// more is someone filling the operator's webhook.
const RATINGS_PER_HOUR: NonZeroU32 = NonZeroU32::new(3).expect("not zero");

/// Whom a limit counts: one IPv4 address, one IPv6 /64 (its first 64 bits), or together
/// every client whose forwarded hop could not be read (nothing tells them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Client {
    V4(Ipv4Addr),
    V6Net(u64),
    Unreadable,
}

impl Client {
    fn of(address: IpAddr) -> Client {
        match address {
            IpAddr::V4(v4) => Client::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4),
                None => Client::V6Net((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

/// The limits; cheap to clone.
#[derive(Clone)]
pub(crate) struct Limits {
    trusted: Arc<[Cidr]>,
    register: Option<Arc<DefaultKeyedRateLimiter<Client>>>,
    register_global: Option<Arc<governor::DefaultDirectRateLimiter>>,
    identity: Option<Arc<DefaultKeyedRateLimiter<Client>>>,
    resume: Arc<DefaultKeyedRateLimiter<Client>>,
    connect: Option<Arc<DefaultKeyedRateLimiter<Client>>>,
    open_per_address: usize,
    open: Arc<Mutex<HashMap<Client, usize>>>,
    /// Proxy mode's per-chat rates, by the operation's class.
    proxied: Arc<HashMap<RateClass, DefaultKeyedRateLimiter<String>>>,
    /// Survey ratings, per chat.
    ratings: Arc<DefaultKeyedRateLimiter<String>>,
}

/// Holds one of a client's open WebSockets; dropping it gives the slot back.
pub(crate) struct OpenSocket {
    open: Arc<Mutex<HashMap<Client, usize>>>,
    address: Client,
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

fn per_minute(rate: u32) -> Option<Arc<DefaultKeyedRateLimiter<Client>>> {
    NonZeroU32::new(rate).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))))
}

impl Limits {
    pub(crate) fn new(config: &Config) -> Limits {
        Limits {
            trusted: config.trusted_proxies.clone().into(),
            register: per_minute(config.register_rate),
            register_global: NonZeroU32::new(config.register_global_rate)
                .map(|n| Arc::new(RateLimiter::direct(Quota::per_second(n)))),
            identity: per_minute(config.register_rate),
            resume: Arc::new(RateLimiter::keyed(
                Quota::per_minute(RESUME_PER_MINUTE).allow_burst(RESUME_BURST),
            )),
            connect: per_minute(config.ws_connect_rate),
            open_per_address: config.ws_per_address,
            open: Arc::default(),
            ratings: Arc::new(RateLimiter::keyed(Quota::per_hour(RATINGS_PER_HOUR))),
            proxied: Arc::new(
                [
                    (RateClass::Send, config.proxy.send_rate),
                    (RateClass::Typing, config.proxy.typing_rate),
                    (RateClass::Upload, config.proxy.upload_rate),
                    (RateClass::Other, config.proxy.other_rate),
                ]
                .into_iter()
                .filter_map(|(class, rate)| {
                    Some((class, RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(rate)?))))
                })
                .collect(),
            ),
        }
    }

    /// The visitor's address, for GMS's `X-Forwarded-For`: the peer, unless the peer is a
    /// trusted proxy (then what it forwarded); none when that cannot be read.
    pub(crate) fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> Option<IpAddr> {
        forwarded_address(peer.ip(), headers, &self.trusted)
    }

    /// One proxied request of `class` in `chat`, or 429: each chat has its own allowance,
    /// so one visitor cannot spend another's, and none can make GMS a flood.
    pub(crate) fn proxied(&self, chat: &str, class: RateClass) -> Result<(), AppError> {
        let Some(limiter) = self.proxied.get(&class) else { return Ok(()) };
        limiter.check_key(&chat.to_owned()).map_err(|not_until| {
            metrics::counter!("relay_rate_limited_total", "endpoint" => format!("proxy_{}", class.name()))
                .increment(1);
            AppError::TooManyRequests {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }
        })
    }

    /// The client: the peer, unless the peer is a trusted proxy.
    pub(crate) fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> Client {
        client_address(peer.ip(), headers, &self.trusted)
    }

    /// One registration from `client`, or 429: its own rate first, then every client's
    /// together, so a flood from many addresses cannot reach GMS either.
    pub(crate) fn register(&self, client: Client) -> Result<(), AppError> {
        check(self.register.as_deref(), client, "register")?;
        let Some(global) = &self.register_global else { return Ok(()) };
        global.check().map_err(|not_until| {
            metrics::counter!("relay_rate_limited_total", "endpoint" => "register_global")
                .increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::TooManyRequests { retry_after: wait }
        })
    }

    /// One identity look-up from `client`, or 429: at `--register-rate`, since a widget
    /// asks once where it would register.
    pub(crate) fn identity(&self, client: Client) -> Result<(), AppError> {
        check(self.identity.as_deref(), client, "identity")
    }

    /// One resume claim from `client`, or 429 (`RESUME_PER_MINUTE`, `RESUME_BURST`; no
    /// flag turns it off).
    pub(crate) fn resume(&self, client: Client) -> Result<(), AppError> {
        check(Some(&self.resume), client, "resume")
    }

    /// One rating of `chat` for the survey webhook, or 429.
    pub(crate) fn rating(&self, chat: &str) -> Result<(), AppError> {
        self.ratings.check_key(&chat.to_owned()).map_err(|not_until| {
            metrics::counter!("relay_rate_limited_total", "endpoint" => "survey").increment(1);
            AppError::TooManyRequests {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }
        })
    }

    /// One WebSocket from `client`: the rate, then a slot among its open sockets.
    pub(crate) fn open_socket(&self, client: Client) -> Result<OpenSocket, AppError> {
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
        let keyed = [&self.register, &self.identity, &self.connect].into_iter().flatten();
        for limiter in keyed.chain([&self.resume]) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        for limiter in self.proxied.values().chain([self.ratings.as_ref()]) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn check(
    limiter: Option<&DefaultKeyedRateLimiter<Client>>,
    client: Client,
    endpoint: &'static str,
) -> Result<(), AppError> {
    let Some(limiter) = limiter else { return Ok(()) };
    limiter.check_key(&client).map_err(|not_until| {
        metrics::counter!("relay_rate_limited_total", "endpoint" => endpoint).increment(1);
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        AppError::TooManyRequests { retry_after: wait }
    })
}

/// When the peer is a trusted proxy, the `X-Forwarded-For` hops walked from the right: the
/// first that is not a trusted proxy is the client (the hops left of it could be forged by
/// the client). A hop that cannot be read is the client too, never skipped, since skipping
/// it would hand the choice to whatever the client wrote further left. Otherwise the peer.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> Client {
    forwarded_address(peer, headers, trusted).map_or(Client::Unreadable, Client::of)
}

/// The client's address as `client_address` finds it; `None` for an unreadable hop.
fn forwarded_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let values: Vec<&str> =
        headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("")).collect();
    for hop in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        match hop_address(hop.trim()) {
            Some(ip) if is_trusted(ip) => {}
            other => return other,
        }
    }
    Some(peer)
}

/// One hop as proxies write it: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':')?.parse::<u16>().is_ok();
        return port_ok.then(|| inside.parse().ok()).flatten();
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use axum::http::{HeaderMap, HeaderValue};

    use super::{Client, client_address};
    use crate::config::Cidr;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn client(text: &str) -> Client {
        Client::of(ip(text))
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
        assert_eq!(client_address(ip("10.0.0.2"), &headers, &trusted), client("203.0.113.9"));
        assert_eq!(client_address(ip("198.51.100.1"), &headers, &trusted), client("198.51.100.1"));
        assert_eq!(client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted), client("10.0.0.2"));
        assert_eq!(client_address(ip("10.0.0.2"), &headers, &[]), client("10.0.0.2"));
    }

    #[test]
    fn every_hop_form_is_read_and_an_unreadable_hop_is_the_client() {
        let trusted = [Cidr::parse("10.0.0.0/8").expect("cidr")];
        let proxy = ip("10.0.0.2");
        for (value, expected) in [
            ("203.0.113.9:4711, 10.0.0.7:80", client("203.0.113.9")),
            ("[2001:db8::1]:443", client("2001:db8::1")),
            ("[2001:db8::1]", client("2001:db8::1")),
            ("2001:db8::1", client("2001:db8::1")),
            // The client's own text left of an unreadable hop is never reached.
            ("6.6.6.6, unknown, 10.0.0.7", Client::Unreadable),
            ("6.6.6.6, [2001:db8::1]:99999", Client::Unreadable),
            ("6.6.6.6, 1.2.3.4:", Client::Unreadable),
            ("6.6.6.6,", Client::Unreadable),
            ("junk", Client::Unreadable),
        ] {
            assert_eq!(client_address(proxy, &forwarded(value), &trusted), expected, "{value}");
        }
        // Two header lines read as one list, the last line rightmost.
        let mut two = forwarded("6.6.6.6");
        two.append("x-forwarded-for", "203.0.113.9, 10.0.0.9".parse().expect("header"));
        assert_eq!(client_address(proxy, &two, &trusted), client("203.0.113.9"));
        // Only trusted hops: the peer.
        assert_eq!(client_address(proxy, &forwarded("10.1.1.1"), &trusted), client("10.0.0.2"));
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64_and_a_mapped_v4_its_address() {
        assert_eq!(client("2001:db8:1:2::1"), client("2001:db8:1:2:ffff::9"));
        assert_ne!(client("2001:db8:1:2::1"), client("2001:db8:1:3::1"));
        assert_eq!(client("::ffff:203.0.113.9"), client("203.0.113.9"));
    }
}
