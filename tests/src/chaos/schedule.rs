//! The seeded fault schedule: which fault happens when, decided before the run from the
//! seed alone, so a failing seed replays the same faults at the same times.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One fault, with how long it lasts where it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The relay is killed with SIGKILL and started again.
    RelayKill { node: usize },
    /// The relay gets SIGTERM, shuts down in order and is started again.
    RelayTerm { node: usize },
    /// The proxy between visitors and relays cuts this share of the open connections.
    SocketsCut { percent: u8 },
    /// A Chat Server restarts (a new pid): its sessions are restored elsewhere.
    ChatServerRestart { server: usize },
    /// A Chat Server is killed, and started again after `down`.
    ChatServerKill { server: usize, down: Duration },
    /// A Chat Server stops gracefully (announcing it), and starts again after `down`.
    ChatServerStop { server: usize, down: Duration },
    /// The next Chat API requests answer statusCode 1.
    GmsStatusCode1 { requests: u32 },
    /// The next Chat API requests answer HTTP 503.
    GmsHttp5xx { requests: u32 },
    /// Every Chat API request is slow for a while.
    GmsSlow { delay_ms: u64, lasting: Duration },
    /// The next push deliveries are lost.
    PushDrop { pushes: u32 },
    /// The next push deliveries arrive twice.
    PushDuplicate { pushes: u32 },
    /// Every push delivery is late for a while.
    PushDelay { delay_ms: u64, lasting: Duration },
    /// Push deliveries overtake one another for a while.
    PushShuffle { spread_ms: u64, lasting: Duration },
    /// A Chromium widget's network goes offline for a while.
    BrowserOffline { browser: usize, lasting: Duration },
    /// redis-server is killed and started again (one Redis server).
    RedisRestart,
    /// The sentinels move the primary to its replica (Redis Sentinel): by `SENTINEL
    /// FAILOVER`, or because the primary was killed (it comes back as the new replica).
    RedisFailover { kill: bool },
    /// One of the three primaries of a Redis Cluster is killed: its replica takes over, and
    /// it comes back as that one's replica.
    ClusterPrimaryKill { shard: usize },
}

impl Fault {
    /// Its kind, for the table.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::RelayKill { .. } => "relay kill -9",
            Fault::RelayTerm { .. } => "relay SIGTERM",
            Fault::SocketsCut { .. } => "connections cut",
            Fault::ChatServerRestart { .. } => "Chat Server restart",
            Fault::ChatServerKill { .. } => "Chat Server kill",
            Fault::ChatServerStop { .. } => "Chat Server graceful stop",
            Fault::GmsStatusCode1 { .. } => "GMS statusCode 1 burst",
            Fault::GmsHttp5xx { .. } => "GMS HTTP 503 burst",
            Fault::GmsSlow { .. } => "GMS slow answers",
            Fault::PushDrop { .. } => "pushes dropped",
            Fault::PushDuplicate { .. } => "pushes duplicated",
            Fault::PushDelay { .. } => "pushes delayed",
            Fault::PushShuffle { .. } => "pushes reordered",
            Fault::BrowserOffline { .. } => "browser offline",
            Fault::RedisRestart => "redis-server restart",
            Fault::RedisFailover { .. } => "Redis primary failover",
            Fault::ClusterPrimaryKill { .. } => "cluster primary killed",
        }
    }

    /// How long it lasts after it starts (zero for a moment's fault).
    pub fn lasting(&self) -> Duration {
        match *self {
            Fault::ChatServerKill { down, .. } | Fault::ChatServerStop { down, .. } => down,
            Fault::GmsSlow { lasting, .. }
            | Fault::PushDelay { lasting, .. }
            | Fault::PushShuffle { lasting, .. }
            | Fault::BrowserOffline { lasting, .. } => lasting,
            _ => Duration::ZERO,
        }
    }
}

/// Where the relays keep their records, and so which Redis faults there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Store {
    /// Each relay's data directory (one relay).
    #[default]
    #[value(skip)]
    Disk,
    /// One redis-server.
    Server,
    /// A primary, its replica and three sentinels.
    Sentinel,
    /// A Redis Cluster of three primaries and three replicas.
    Cluster,
}

impl Store {
    /// The Redis fault this store can suffer, if any.
    fn fault(self, rng: &mut StdRng) -> Option<Fault> {
        match self {
            Store::Disk => None,
            Store::Server => Some(Fault::RedisRestart),
            Store::Sentinel => Some(Fault::RedisFailover { kill: rng.random_bool(0.5) }),
            Store::Cluster => Some(Fault::ClusterPrimaryKill { shard: rng.random_range(0..3) }),
        }
    }
}

/// What the system under test has, which decides the faults that can happen to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub relays: usize,
    pub chat_servers: usize,
    pub browsers: usize,
    pub store: Store,
}

/// A fault at its time from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub at: Duration,
    pub fault: Fault,
}

/// `count` faults spread over `span` with jitter, each kind equally likely among those the
/// shape allows. At most one Chat Server is down at a time: a down time ends before the
/// next Chat Server fault starts, so GMS always has a server to restore sessions on.
pub fn plan(seed: u64, span: Duration, count: usize, shape: Shape) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let step = span / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    let mut planned: Vec<Planned> = (0..count)
        .map(|k| {
            let jitter = step.mul_f64(rng.random_range(0.0..0.9));
            let at = step * u32::try_from(k).unwrap_or(u32::MAX) + jitter;
            Planned { at, fault: pick(&mut rng, shape) }
        })
        .collect();
    let server_faults: Vec<usize> = (0..planned.len())
        .filter(|&k| {
            matches!(
                planned[k].fault,
                Fault::ChatServerRestart { .. }
                    | Fault::ChatServerKill { .. }
                    | Fault::ChatServerStop { .. }
            )
        })
        .collect();
    for pair in server_faults.windows(2) {
        let room = (planned[pair[1]].at - planned[pair[0]].at).mul_f64(0.8);
        if let Fault::ChatServerKill { down, .. } | Fault::ChatServerStop { down, .. } =
            &mut planned[pair[0]].fault
        {
            *down = (*down).min(room);
        }
    }
    planned
}

fn pick(rng: &mut StdRng, shape: Shape) -> Fault {
    let seconds = |rng: &mut StdRng, low: f64, high: f64| {
        Duration::from_millis((rng.random_range(low..high) * 1000.0) as u64)
    };
    let kinds = 13 + usize::from(shape.browsers > 0) + usize::from(shape.store != Store::Disk);
    let server = rng.random_range(0..shape.chat_servers.max(1));
    let node = rng.random_range(0..shape.relays.max(1));
    match rng.random_range(0..kinds) {
        0 => Fault::RelayKill { node },
        1 => Fault::RelayTerm { node },
        2 => Fault::SocketsCut { percent: rng.random_range(10..=100) },
        3 => Fault::ChatServerRestart { server },
        4 => Fault::ChatServerKill { server, down: seconds(rng, 0.5, 4.0) },
        5 => Fault::ChatServerStop { server, down: seconds(rng, 0.5, 4.0) },
        6 => Fault::GmsStatusCode1 { requests: rng.random_range(1..=20) },
        7 => Fault::GmsHttp5xx { requests: rng.random_range(1..=20) },
        8 => Fault::GmsSlow {
            delay_ms: rng.random_range(200..=2500),
            lasting: seconds(rng, 1.0, 5.0),
        },
        9 => Fault::PushDrop { pushes: rng.random_range(1..=20) },
        10 => Fault::PushDuplicate { pushes: rng.random_range(1..=20) },
        11 => Fault::PushDelay {
            delay_ms: rng.random_range(200..=3000),
            lasting: seconds(rng, 1.0, 5.0),
        },
        12 => Fault::PushShuffle {
            spread_ms: rng.random_range(100..=2000),
            lasting: seconds(rng, 1.0, 5.0),
        },
        13 if shape.browsers > 0 => Fault::BrowserOffline {
            browser: rng.random_range(0..shape.browsers),
            lasting: seconds(rng, 1.0, 8.0),
        },
        _ => shape.store.fault(rng).unwrap_or(Fault::RedisRestart),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const SHAPE: Shape = Shape { relays: 2, chat_servers: 2, browsers: 3, store: Store::Server };

    #[test]
    fn a_seed_gives_the_same_schedule_and_another_seed_another() {
        let span = Duration::from_secs(600);
        assert_eq!(plan(7, span, 300, SHAPE), plan(7, span, 300, SHAPE));
        assert_ne!(plan(7, span, 300, SHAPE), plan(8, span, 300, SHAPE));
    }

    #[test]
    fn faults_are_in_order_within_the_span_and_every_kind_happens() {
        let span = Duration::from_secs(600);
        let planned = plan(1, span, 400, SHAPE);
        assert_eq!(planned.len(), 400);
        assert!(planned.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(planned.iter().all(|p| p.at < span));
        let kinds: BTreeSet<&str> = planned.iter().map(|p| p.fault.kind()).collect();
        assert_eq!(kinds.len(), 15, "{kinds:?}");
        let single = Shape { relays: 1, chat_servers: 2, browsers: 0, store: Store::Disk };
        let kinds: BTreeSet<&str> =
            plan(1, span, 400, single).iter().map(|p| p.fault.kind()).collect();
        assert!(!kinds.contains("redis-server restart") && !kinds.contains("browser offline"));
        assert_eq!(kinds.len(), 13);
    }

    #[test]
    fn each_redis_topology_has_its_own_fault() {
        let span = Duration::from_secs(600);
        for (store, kind) in [
            (Store::Server, "redis-server restart"),
            (Store::Sentinel, "Redis primary failover"),
            (Store::Cluster, "cluster primary killed"),
        ] {
            let planned = plan(1, span, 400, Shape { store, ..SHAPE });
            let redis: Vec<Fault> = planned
                .iter()
                .map(|p| p.fault)
                .filter(|f| {
                    matches!(
                        f,
                        Fault::RedisRestart
                            | Fault::RedisFailover { .. }
                            | Fault::ClusterPrimaryKill { .. }
                    )
                })
                .collect();
            assert!(redis.len() > 10, "{store:?}: {}", redis.len());
            assert!(redis.iter().all(|f| f.kind() == kind), "{store:?}: {redis:?}");
        }
        let sentinel = plan(1, span, 400, Shape { store: Store::Sentinel, ..SHAPE });
        let kills: BTreeSet<bool> = sentinel
            .iter()
            .filter_map(|p| match p.fault {
                Fault::RedisFailover { kill } => Some(kill),
                _ => None,
            })
            .collect();
        assert_eq!(kills.len(), 2, "both SENTINEL FAILOVER and a killed primary");
    }

    #[test]
    fn a_chat_server_is_back_before_the_next_chat_server_fault() {
        let planned = plan(3, Duration::from_secs(60), 200, SHAPE);
        let servers: Vec<&Planned> = planned
            .iter()
            .filter(|p| {
                matches!(
                    p.fault,
                    Fault::ChatServerRestart { .. }
                        | Fault::ChatServerKill { .. }
                        | Fault::ChatServerStop { .. }
                )
            })
            .collect();
        assert!(servers.len() > 10);
        for pair in servers.windows(2) {
            assert!(pair[0].at + pair[0].fault.lasting() < pair[1].at, "{pair:?}");
        }
    }
}
