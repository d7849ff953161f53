//! Scheduled plan execution: cron schedules in IANA time zones with explicit misfire, overlap and DST
//! policies ([`model`], [`cron`]), the loop that fires them exactly once ([`scheduler`]), and schedule files
//! ([`files`]).
//! docs/scheduling.md describes the behaviour; the store side is `crate::store::schedules`.

pub mod cron;
pub mod files;
pub mod model;
pub mod scheduler;

pub use scheduler::{PlanSource, Scheduler};
