//! Cron expressions in an IANA time zone, and the one DST rule.
//!
//! The expression (5 fields, or 6 with seconds first; `@hourly`-style nicknames; parsed by `croner`) is
//! matched against **local wall-clock times** of the zone, each local time once, in order. Each match then
//! becomes an instant:
//!
//! - a local time that exists once is that instant;
//! - a local time that exists twice (fall back) runs once, at the first of the two instants (the earlier
//!   offset): the repeated hour does not run again;
//! - a local time that does not exist (spring forward) runs at the next valid instant, the moment the clocks
//!   jump (02:30 in Europe/Berlin on the last Sunday of March runs at 03:00 CEST). Several matches in the
//!   gap, and a match at the gap's end, are the same instant and run once.
//!
//! Internally everything is UTC; only matching uses the zone.

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// Why an expression or zone is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    #[error("invalid cron expression '{expr}': {reason}")]
    Expression { expr: String, reason: String },
    #[error("unknown time zone '{0}' (expected an IANA name such as Europe/Berlin or UTC)")]
    Zone(String),
}

/// A parsed expression with its zone.
#[derive(Clone, Debug)]
pub struct CronSpec {
    expr: String,
    cron: Cron,
    tz: Tz,
}

/// How an occurrence relates to a DST change (for previews and occurrence records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DstNote {
    /// The local time the expression names does not exist (spring forward): it runs at the next valid instant.
    Shifted { nominal: NaiveDateTime },
    /// The local time exists twice (fall back): it runs at the first only.
    FirstOfTwo,
}

/// One occurrence: the instant it fires, and its DST note when there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fire {
    pub at: DateTime<Utc>,
    pub dst: Option<DstNote>,
}

/// Upper bound of local matches looked at per `next_after` call (a second-granularity expression inside a
/// repeated hour skips up to 3,600 matches that map before the start).
const MAX_STEPS: usize = 10_000;

/// Parses a time zone name (an exact IANA name, `UTC` by default).
pub fn parse_zone(name: &str) -> Result<Tz, CronError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| CronError::Zone(name.to_string()))
}

impl CronSpec {
    /// Parses `expr` (5 or 6 fields, or a nickname) for the zone named `zone`.
    pub fn parse(expr: &str, zone: &str) -> Result<CronSpec, CronError> {
        let tz = parse_zone(zone)?;
        let fields = expr.split_whitespace().count();
        let bad = |reason: String| CronError::Expression {
            expr: expr.to_string(),
            reason,
        };
        if !expr.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(bad(format!(
                "{fields} fields; expected 5 (minute hour day-of-month month day-of-week), 6 (seconds first) or a nickname such as @hourly"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| bad(e.to_string()))?;
        Ok(CronSpec {
            expr: expr.trim().to_string(),
            cron,
            tz,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn zone(&self) -> Tz {
        self.tz
    }

    /// The first occurrence strictly after `after`, or None when the expression never matches again (or not
    /// within croner's search limit, e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<Fire> {
        // Whole seconds (croner keeps sub-second parts of its input); strictly-after still holds.
        let mut local = after.with_timezone(&self.tz).naive_local();
        local = local.with_nanosecond(0).unwrap_or(local);
        for _ in 0..MAX_STEPS {
            // Local wall time as a "UTC" value: croner then walks local times without any zone rules.
            let next = self
                .cron
                .find_next_occurrence(&local.and_utc(), false)
                .ok()?
                .naive_utc();
            local = next;
            let fire = self.resolve(next);
            if fire.at > after {
                return Some(fire);
            }
        }
        None
    }

    /// The next `count` occurrences after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<Fire> {
        let mut out = Vec::with_capacity(count.min(1024));
        let mut t = after;
        while out.len() < count {
            let Some(f) = self.next_after(t) else { break };
            t = f.at;
            out.push(f);
        }
        out
    }

    /// A matching local time as an instant (the DST rule of the module documentation).
    fn resolve(&self, local: NaiveDateTime) -> Fire {
        match self.tz.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => Fire {
                at: t.with_timezone(&Utc),
                dst: None,
            },
            chrono::LocalResult::Ambiguous(first, _) => Fire {
                at: first.with_timezone(&Utc),
                dst: Some(DstNote::FirstOfTwo),
            },
            chrono::LocalResult::None => Fire {
                at: self.gap_end(local),
                dst: Some(DstNote::Shifted { nominal: local }),
            },
        }
    }

    /// The first instant whose local time is at or after `local` (which falls in a gap): the moment the
    /// clocks jumped. Binary search over seconds in a window wide enough for every zone's offset and gap.
    fn gap_end(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let base = local.and_utc().timestamp();
        let mut lo = base - 40 * 3600; // local(lo) < local
        let mut hi = base + 40 * 3600; // local(hi) >= local
        let at = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.local_of(at(mid)) >= local {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        at(hi)
    }

    fn local_of(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }

    /// `t` in the schedule's zone, RFC 3339 with its offset.
    pub fn local_rfc3339(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz).to_rfc3339()
    }

    /// The zone's UTC offset at `t`, in seconds.
    pub fn offset_secs(&self, t: DateTime<Utc>) -> i32 {
        self.tz
            .offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
    }
}

/// A human note for a DST occurrence (CLI preview, occurrence records).
pub fn describe(spec: &CronSpec, fire: &Fire) -> Option<String> {
    match fire.dst? {
        DstNote::Shifted { nominal } => Some(format!(
            "{} does not exist in {} (clocks spring forward): runs at the next valid instant",
            nominal.format("%Y-%m-%d %H:%M:%S"),
            spec.zone().name()
        )),
        DstNote::FirstOfTwo => Some(format!(
            "{} occurs twice in {} (clocks fall back): runs once, at the first",
            fire.at
                .with_timezone(&spec.zone())
                .naive_local()
                .format("%Y-%m-%d %H:%M:%S"),
            spec.zone().name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
        let spec = CronSpec::parse(expr, zone).unwrap();
        spec.upcoming(at(from), n)
            .iter()
            .map(|f| spec.local_rfc3339(f.at))
            .collect()
    }

    #[test]
    fn berlin_spring_forward_runs_a_missing_time_at_the_jump() {
        // 2026-03-29: 02:00 CET -> 03:00 CEST.
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00"
            ]
        );
        let spec = CronSpec::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let f = spec.next_after(at("2026-03-28T12:00:00Z")).unwrap();
        assert!(matches!(f.dst, Some(DstNote::Shifted { .. })), "{f:?}");
        assert!(describe(&spec, &f).unwrap().contains("does not exist"));
    }

    #[test]
    fn berlin_gap_matches_collapse_into_one_instant() {
        // Every 20 minutes: 02:00, 02:20, 02:40 do not exist, 03:00 is the jump: one run at 03:00.
        assert_eq!(
            next("*/20 * * * *", "Europe/Berlin", "2026-03-29T00:30:00Z", 4),
            [
                "2026-03-29T01:40:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:20:00+02:00",
                "2026-03-29T03:40:00+02:00"
            ]
        );
    }

    #[test]
    fn berlin_fall_back_runs_a_repeated_time_once_at_the_first() {
        // 2026-10-25: 03:00 CEST -> 02:00 CET; 02:30 exists twice.
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 3),
            [
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00",
                "2026-10-27T02:30:00+01:00"
            ]
        );
        // Hourly: 02:00 runs once (CEST); the repeated hour does not run again.
        assert_eq!(
            next("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 3),
            [
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T03:00:00+01:00",
                "2026-10-25T04:00:00+01:00"
            ]
        );
        // Asked from inside the second pass, nothing of the repeated hour comes back.
        assert_eq!(
            next("*/30 * * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", 1),
            ["2026-10-25T03:00:00+01:00"]
        );
    }

    #[test]
    fn new_york_spring_forward_and_fall_back() {
        // 2026-03-08: 02:00 EST -> 03:00 EDT. 2026-11-01: 02:00 EDT -> 01:00 EST.
        assert_eq!(
            next("15 2 * * *", "America/New_York", "2026-03-06T12:00:00Z", 3),
            [
                "2026-03-07T02:15:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-09T02:15:00-04:00"
            ]
        );
        assert_eq!(
            next("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
        let spec = CronSpec::parse("30 1 * * *", "America/New_York").unwrap();
        let f = spec.next_after(at("2026-10-31T12:00:00Z")).unwrap();
        assert_eq!(f.dst, Some(DstNote::FirstOfTwo));
    }

    #[test]
    fn sub_second_starts_give_whole_second_instants() {
        let spec = CronSpec::parse("* * * * *", "UTC").unwrap();
        let f = spec.next_after(at("2026-01-01T00:00:59.750Z")).unwrap();
        assert_eq!(f.at, at("2026-01-01T00:01:00Z"));
        let f = spec.next_after(at("2026-01-01T00:01:00.001Z")).unwrap();
        assert_eq!(f.at, at("2026-01-01T00:02:00Z"));
    }

    #[test]
    fn seconds_nicknames_and_utc() {
        assert_eq!(
            next("*/15 * * * * *", "UTC", "2026-01-01T00:00:00Z", 2),
            ["2026-01-01T00:00:15+00:00", "2026-01-01T00:00:30+00:00"]
        );
        assert_eq!(
            next("@hourly", "UTC", "2026-01-01T00:10:00Z", 1),
            ["2026-01-01T01:00:00+00:00"]
        );
        assert_eq!(
            next("@daily", "Europe/Berlin", "2026-01-01T00:10:00Z", 1),
            ["2026-01-01T00:00:00+01:00"].map(|_| "2026-01-02T00:00:00+01:00")
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_with_the_reason() {
        for bad in [
            "",
            "* * * *",
            "* * * * * * *",
            "61 * * * *",
            "x * * * *",
            "@sometimes",
        ] {
            let e = CronSpec::parse(bad, "UTC").unwrap_err();
            assert!(matches!(e, CronError::Expression { .. }), "{bad}: {e}");
        }
        let e = CronSpec::parse("* * * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(e, CronError::Zone("Mars/Olympus".into()));
        // Parses, but never matches.
        let spec = CronSpec::parse("0 0 30 2 *", "UTC").unwrap();
        assert_eq!(spec.next_after(at("2026-01-01T00:00:00Z")), None);
    }
}
