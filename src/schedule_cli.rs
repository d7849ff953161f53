//! `synapse schedule ...`: schedule tools (docs/scheduling.md).

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use std::path::PathBuf;
use std::sync::Arc;
use synapse_controller::catalog::Catalog;
use synapse_controller::schedule::cron::{describe, CronSpec};
use synapse_controller::schedule::files;
use synapse_engine::Clock;

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Check schedule files (file:line:col diagnostics on stderr); with the plans directory (default the
    /// `plans` directory beside the files' `schedules` directory, when it exists) also the plan and parameters.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The plans directory to check plans and parameters against.
        #[arg(long)]
        plans: Option<PathBuf>,
    },
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
        ScheduleCommand::Validate { files, plans } => validate(&files, plans),
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

fn validate(paths: &[PathBuf], plans: Option<PathBuf>) -> Result<u8> {
    let plans = plans.or_else(|| {
        let guess = paths
            .first()?
            .parent()?
            .parent()
            .map_or_else(|| PathBuf::from("plans"), |p| p.join("plans"));
        guess.is_dir().then_some(guess)
    });
    let registry = synapse_handlers::builtin_registry();
    let catalog = match &plans {
        Some(dir) => Some(Catalog::load(dir, &registry)?),
        None => None,
    };
    let executor = synapse_engine::Executor::in_process(Arc::new(registry));
    let mut failed = 0;
    for f in paths {
        let check = catalog.as_ref().map(|c| {
            (
                c as &dyn synapse_controller::schedule::PlanSource,
                &executor,
            )
        });
        match files::load_file(f, check) {
            Ok(spec) => out!(
                "{}: ok ({} at \"{}\" in {})",
                f.display(),
                spec.plan,
                spec.cron,
                spec.time_zone
            ),
            Err(d) => {
                eprintln!("{d}");
                failed += 1;
            }
        }
    }
    if plans.is_none() {
        eprintln!("note: no plans directory: plans and parameters were not checked (--plans DIR)");
    }
    if failed > 0 {
        eprintln!("{failed} of {} schedule file(s) have errors", paths.len());
        Ok(super::EXIT_INVALID)
    } else {
        Ok(0)
    }
}
