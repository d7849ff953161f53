//! `synapse schedule ...`: schedule tools (docs/scheduling.md).

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use synapse_controller::schedule::cron::{describe, CronSpec};
use synapse_engine::Clock;

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Preview a cron expression: one RFC 3339 instant (with the zone's offset) per line on stdout; DST notes
    /// (a nonexistent local time moved to the jump, a repeated one run at the first) go to stderr.
    Next {
        /// 5 fields, 6 with seconds first, or @hourly/@daily/@weekly/@monthly/@yearly.
        cron: String,
        /// IANA time zone (e.g. Europe/Berlin).
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// How many occurrences.
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// Start after this instant (RFC 3339; default now).
        #[arg(long)]
        from: Option<String>,
    },
}

pub fn run(cmd: ScheduleCommand) -> Result<u8> {
    match cmd {
        ScheduleCommand::Next {
            cron,
            tz,
            count,
            from,
        } => {
            let spec = CronSpec::parse(&cron, &tz)?;
            let from: DateTime<Utc> = match from {
                Some(f) => DateTime::parse_from_rfc3339(&f)
                    .with_context(|| format!("--from '{f}' is not an RFC 3339 instant"))?
                    .with_timezone(&Utc),
                None => synapse_engine::SystemClock.now(),
            };
            let fires = spec.upcoming(from, count.min(100_000));
            if fires.is_empty() {
                eprintln!(
                    "synapse: '{cron}' has no occurrence after {}",
                    from.to_rfc3339()
                );
                return Ok(super::EXIT_INVALID);
            }
            for f in &fires {
                let at = spec.local_rfc3339(f.at);
                out!("{at}");
                if let Some(note) = describe(&spec, f) {
                    eprintln!("# {at}: {note}");
                }
            }
            Ok(0)
        }
    }
}
