//! The wall clock as a parameter. Everything that stamps or compares wall-clock times (the executor's
//! timestamps, progress events, instance records, retention, schedules, token expiry) asks a [`Clock`], so
//! tests can drive time. `clippy.toml` disallows `chrono::Utc::now` and `SystemTime::now` everywhere else.
//!
//! Durations of work (how long an action took) use `std::time::Instant` / tokio's clock, which tests already
//! control with paused time; the `Clock` is for calendar time only.

use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::{Arc, Mutex};

/// A source of calendar time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The real wall clock as a shared handle.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that only moves when told to (tests, simulations). Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    /// Moves the clock to `t` (backwards too: wall clocks do jump).
    pub fn set(&self, t: DateTime<Utc>) {
        if let Ok(mut g) = self.0.lock() {
            *g = t;
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: chrono::Duration) {
        if let Ok(mut g) = self.0.lock() {
            *g += d;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        match self.0.lock() {
            Ok(g) => *g,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 59).unwrap();
        let c = ManualClock::new(t0);
        let shared: SharedClock = Arc::new(c.clone());
        assert_eq!(shared.now(), t0);
        c.advance(chrono::Duration::seconds(1));
        assert_eq!(shared.now(), t0 + chrono::Duration::seconds(1));
        c.set(t0);
        assert_eq!(shared.now(), t0);
    }
}
