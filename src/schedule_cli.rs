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

/// Where the server is and the key to use.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// A running server's URL, http only (env SYNAPSE_SERVER, else http://127.0.0.1:20000), as for
    /// `synapse token`; `--url` and SYNAPSE_URL are accepted too.
    #[arg(long = "server", alias = "url", env = "SYNAPSE_SERVER")]
    url: Option<String>,
    /// The API key to call it with, admin for pause/resume/trigger (env SYNAPSE_KEY); `--token` and
    /// SYNAPSE_TOKEN are accepted too.
    #[arg(
        long = "key",
        alias = "token",
        env = "SYNAPSE_KEY",
        hide_env_values = true
    )]
    token: Option<String>,
}

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// List the schedules of a running server (GET /synapse/schedules).
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show one schedule with its last occurrences.
    Show {
        /// The schedule's name.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Pause a schedule.
    Pause {
        /// The schedule's name.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Resume a schedule.
    Resume {
        /// The schedule's name.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Fire a schedule now (under its overlap policy).
    Trigger {
        /// The schedule's name.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Check schedule files (file:line:col diagnostics on stderr); with the plans directory (default the
    /// `plans` directory beside the files' `schedules` directory, when it exists) also the plan and parameters.
    Validate {
        /// The schedule files (YAML) to check.
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
        ScheduleCommand::List { server } => call(&server, "GET", "/synapse/schedules"),
        ScheduleCommand::Show { name, server } => {
            let code = call(
                &server,
                "GET",
                &format!("/synapse/schedules/{}", crate::client::path_segment(&name)),
            )?;
            if code != 0 {
                return Ok(code);
            }
            call(
                &server,
                "GET",
                &format!(
                    "/synapse/schedules/{}/occurrences?limit=10",
                    crate::client::path_segment(&name)
                ),
            )
        }
        ScheduleCommand::Pause { name, server } => call(
            &server,
            "POST",
            &format!(
                "/synapse/schedules/{}/pause",
                crate::client::path_segment(&name)
            ),
        ),
        ScheduleCommand::Resume { name, server } => call(
            &server,
            "POST",
            &format!(
                "/synapse/schedules/{}/resume",
                crate::client::path_segment(&name)
            ),
        ),
        ScheduleCommand::Trigger { name, server } => call(
            &server,
            "POST",
            &format!(
                "/synapse/schedules/{}/trigger",
                crate::client::path_segment(&name)
            ),
        ),
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

/// One request without a body; prints the JSON answer (pretty) on stdout when 2xx, else on stderr.
/// Exit 0 on 2xx, 1 otherwise.
fn call(server: &ServerArgs, method: &str, path: &str) -> Result<u8> {
    let url = server
        .url
        .clone()
        .or_else(|| std::env::var("SYNAPSE_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:20000".into());
    let key = server
        .token
        .clone()
        .or_else(|| std::env::var("SYNAPSE_TOKEN").ok());
    let answer = crate::client::Client::new(&url, key)?
        .request(method, path, None)
        .with_context(|| format!("cannot call {url}"))?;
    let pretty = serde_json::to_string_pretty(&answer.json)
        .ok()
        .filter(|_| !answer.json.is_null())
        .unwrap_or(answer.text);
    if (200..300).contains(&answer.status) {
        out!("{pretty}");
        Ok(0)
    } else {
        eprintln!("synapse: {method} {path}: HTTP {}: {pretty}", answer.status);
        Ok(1)
    }
}
