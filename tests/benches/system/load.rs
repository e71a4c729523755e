//! The push load generator: requests built before the step starts and pipelined over
//! keep-alive HTTP/1.1 connections, so offering a push costs one write and reading its
//! answer one parse, and the generator is not what limits the ladder (a client library's
//! request per push cost more CPU than the relay's work for it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::push::Clock;

/// Keep-alive connections the pushes are spread over: enough concurrent requests for the
/// relay's group commit to gather many pushes in one commit, as GMS's own client pool would.
pub(crate) const CONNECTIONS: usize = 64;

/// One push to offer: its sequence number (the clock's index), where it goes (`host:port`)
/// and the request's bytes.
pub(crate) struct Push {
    seq: usize,
    address: String,
    request: Vec<u8>,
}

impl Push {
    /// Push `seq`: a POST of the JSON `body` to `url` (`http://host:port/path?query`).
    pub(crate) fn new(seq: usize, url: &str, body: &str) -> Result<Push> {
        let address = url.strip_prefix("http://").context("an http:// URL")?;
        let (address, path) = address.split_at(address.find('/').unwrap_or(address.len()));
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        Ok(Push { seq, address: address.to_owned(), request: request.into_bytes() })
    }
}

/// What came back.
#[derive(Default)]
pub(crate) struct Answers {
    /// Pushes answered 200.
    pub(crate) accepted: usize,
    /// Send → answer of each accepted push.
    pub(crate) latencies: Vec<Duration>,
    /// When the last answer came, from the step's start.
    pub(crate) elapsed: Duration,
}

/// A connection's requests: when each is due, its bytes, its sequence number.
type Lane = Vec<(Instant, Vec<u8>, usize)>;

/// Offers `pushes` in order at `rate` a second, each address's over [`CONNECTIONS`]
/// connections of its own, and waits for every answer (at most `patience` after the last
/// push is sent).
pub(crate) async fn offer(
    pushes: Vec<Push>,
    rate: u32,
    clock: &Arc<Clock>,
    patience: Duration,
) -> Result<Answers> {
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let count = u32::try_from(pushes.len())?;
    let started = Instant::now();
    let mut lanes: HashMap<(String, usize), Lane> = HashMap::new();
    for (k, push) in pushes.into_iter().enumerate() {
        let at = started + gap * u32::try_from(k)?;
        let lane = lanes.entry((push.address, k % CONNECTIONS)).or_default();
        lane.push((at, push.request, push.seq));
    }
    let deadline = started + gap * count + patience;
    let mut running = tokio::task::JoinSet::new();
    for ((address, _), requests) in lanes {
        running.spawn(drive(address, requests, clock.clone(), deadline));
    }
    let mut answers = Answers::default();
    while let Some(lane) = running.join_next().await {
        // A lane that failed (connection refused or reset) has its pushes unanswered.
        if let Ok(Ok(lane)) = lane {
            answers.accepted += lane.accepted;
            answers.latencies.extend(lane.latencies);
        }
    }
    answers.elapsed = started.elapsed();
    Ok(answers)
}

/// One lane: a writer sending its requests on schedule over a connection, and this task
/// reading the answers in order. A server that closes the connection after an answer
/// (`connection: close`; Sockudo's HTTP API does after each) dropped what was written after
/// that request: the lane reconnects and sends again from the first unanswered one.
async fn drive(
    address: String,
    requests: Lane,
    clock: Arc<Clock>,
    deadline: Instant,
) -> Result<Answers> {
    let requests = Arc::new(requests);
    let mut answers = Answers::default();
    let mut next = 0;
    let mut line = String::new();
    while next < requests.len() && Instant::now() < deadline {
        let stream = TcpStream::connect(&address).await?;
        stream.set_nodelay(true)?;
        let (read, mut write) = stream.into_split();
        // As many as the lane has left to send: it never overflows.
        let (sent, mut sent_at) = tokio::sync::mpsc::channel::<Instant>(requests.len() - next);
        let (pending, writer_clock) = (requests.clone(), clock.clone());
        let writer = tokio::spawn(async move {
            for (at, bytes, seq) in &pending[next..] {
                tokio::time::sleep_until((*at).into()).await;
                let now = Instant::now();
                writer_clock.mark_sent(*seq, now);
                if sent.try_send(now).is_err() || write.write_all(bytes).await.is_err() {
                    break;
                }
            }
            // Returned, so the write half stays open until the answers are read: a
            // server drops a connection whose peer closed its side, answered or not.
            write
        });
        let mut reader = BufReader::new(read);
        while next < requests.len() {
            let read =
                tokio::time::timeout_at(deadline.into(), answer(&mut reader, &mut line)).await;
            let Ok(Ok(Some((status, close)))) = read else { break };
            let Some(at) = sent_at.recv().await else { break };
            next += 1;
            if status == 200 {
                answers.accepted += 1;
                answers.latencies.push(at.elapsed());
            }
            if close {
                break;
            }
        }
        writer.abort();
    }
    Ok(answers)
}

/// Reads one response; answers its status and whether the server closes the connection.
async fn answer(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut String,
) -> Result<Option<(u16, bool)>> {
    line.clear();
    if reader.read_line(line).await? == 0 {
        return Ok(None);
    }
    let status: u16 = line.split(' ').nth(1).context("a status line")?.parse()?;
    let (mut length, mut close) = (0_usize, false);
    loop {
        line.clear();
        if reader.read_line(line).await? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse()?;
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.trim().eq_ignore_ascii_case("close");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Some((status, close)))
}
