//! The one polling wait: look again every few milliseconds until the awaited state comes,
//! and fail naming what was awaited and what was seen last. Tests wait for an event this
//! way, never by sleeping a fixed time.

use std::fmt::Display;
use std::time::Duration;

use anyhow::Result;

/// How often `until` looks again: short, so a test waits little longer than the event.
pub const POLL: Duration = Duration::from_millis(20);

/// What one look found.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait<T, S> {
    /// The wait is over, with what it waited for.
    Done(T),
    /// Not yet, and this is what was seen (the error names the last one).
    Still(S),
}

impl<S> Wait<(), S> {
    /// Done when `done` holds, else still waiting, having seen `seen`.
    pub fn done_if(done: bool, seen: S) -> Wait<(), S> {
        if done { Wait::Done(()) } else { Wait::Still(seen) }
    }
}

/// A wait that ran out: what it awaited, for how long, and the last state it saw. A test
/// that expects the wait to run out finds it with `anyhow::Error::downcast_ref`.
#[derive(Debug, Clone)]
pub struct NotReached {
    /// What was awaited.
    pub what: String,
    /// How long.
    pub within: Duration,
    /// The last state seen.
    pub seen: String,
}

impl Display for NotReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let NotReached { what, within, seen } = self;
        write!(f, "{what}: not reached within {within:?}; last seen: {seen}")
    }
}

impl std::error::Error for NotReached {}

/// Looks with `check` every 20 ms until it answers `Wait::Done`, and answers its value;
/// fails with `NotReached` after `within`, or at once with `check`'s own error.
pub async fn until<T, S: Display>(
    what: &str,
    within: Duration,
    check: impl AsyncFnMut() -> Result<Wait<T, S>>,
) -> Result<T> {
    until_every(what, within, POLL, check).await
}

/// The same, looking every `every` (for a look that costs more, a script in a browser).
pub async fn until_every<T, S: Display>(
    what: &str,
    within: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Result<Wait<T, S>>,
) -> Result<T> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await? {
            Wait::Done(value) => return Ok(value),
            Wait::Still(seen) if tokio::time::Instant::now() > deadline => {
                let seen = seen.to_string();
                return Err(NotReached { what: what.to_owned(), within, seen }.into());
            }
            Wait::Still(_) => tokio::time::sleep(every).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn until_answers_the_value_once_the_check_is_done() -> Result<()> {
        let mut looks = 0;
        let found = until("the third look", Duration::from_secs(5), async || {
            looks += 1;
            Ok(if looks == 3 { Wait::Done(looks * 10) } else { Wait::Still(looks) })
        })
        .await?;
        assert_eq!((found, looks), (30, 3));
        Ok(())
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_names_what_it_awaited_and_the_last_state() {
        let mut looks = 0;
        let failed = until("a state never reached", Duration::from_millis(60), async || {
            looks += 1;
            Ok(Wait::<(), _>::Still(format!("{looks} looks")))
        })
        .await
        .expect_err("it never reaches it");
        let not_reached = failed.downcast_ref::<NotReached>().expect("a NotReached");
        assert_eq!(not_reached.what, "a state never reached");
        assert_eq!(not_reached.seen, format!("{looks} looks"));
        assert!(looks >= 3, "looked every 20 ms: {looks}");
        assert!(failed.to_string().starts_with("a state never reached: not reached within 60ms"));
    }

    #[tokio::test]
    async fn the_checks_own_error_ends_the_wait_at_once() {
        let failed = until("anything", Duration::from_secs(5), async || -> Result<Wait<(), u8>> {
            anyhow::bail!("the check broke")
        })
        .await
        .expect_err("the check fails");
        assert!(failed.downcast_ref::<NotReached>().is_none());
        assert_eq!(failed.to_string(), "the check broke");
    }
}
