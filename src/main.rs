//! `synapse`: the one binary: the plan tools (`plan list`, `plan validate`, `plan run`, `plan help`), the
//! server (`serve`), API keys (`token`), `config print` and shell completions.

mod node_cmd;

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc instead of glibc malloc: the server allocates and frees many small JSON values per request, and
/// glibc's malloc/free/consolidate took about a fifth of its CPU under load (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use synapse_engine::{
    help, load, validate, Diagnostics, DynamicParams, Executor, ProgressSink, RunError, RunOptions,
};

/// Writes to stdout; a closed pipe (`synapse plan help x | head`) ends the program quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        out_raw!("{}\n", format_args!($($arg)*))
    }};
}

macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = write!(stdout, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

mod client;
mod schedule_cli;
mod token;

/// Exit code when the plan ran and did not succeed.
const EXIT_PLAN_FAILED: u8 = 1;
/// Exit code for an invalid plan, bad inputs or bad usage: nothing ran.
const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(
    name = "synapse",
    version,
    about = "Synapse: plans for directory and infrastructure automation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write, check and run plans.
    #[command(subcommand, disable_help_subcommand = true)]
    Plan(PlanCommand),
    /// Run the controller (HTTP API) with an embedded node.
    Serve(ServeArgs),
    /// Run a node worker: actions sent by a controller over NATS JetStream (docs/operations.md).
    Node(node_cmd::NodeArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Show the effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script, e.g. `synapse completions bash > /etc/bash_completion.d/synapse`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Scheduled runs: preview cron expressions (docs/scheduling.md).
    #[command(subcommand)]
    Schedule(schedule_cli::ScheduleCommand),
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:20000).
    #[arg(long)]
    listen: Option<String>,
    /// Directory of plan files (default ./plans).
    #[arg(long)]
    plans: Option<PathBuf>,
    /// Directory of the store, DATA/synapse.redb (default ./data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Configuration file (default ./synapse.yaml if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve without API keys (refused unless the listen address is loopback).
    #[arg(long)]
    no_auth: bool,
}

#[derive(clap::Args, Clone)]
pub(crate) struct StoreArgs {
    /// Directory of the store (default ./data, or Data in synapse.yaml / SYNAPSE_DATA).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Configuration file (default ./synapse.yaml if present).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (file < SYNAPSE_* < flags) with secrets masked.
    Print(ServeArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Json,
    Yaml,
}

#[derive(Clone, Copy, ValueEnum)]
enum HelpOutput {
    Text,
    Json,
    Yaml,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListOutput {
    Text,
    Json,
}

/// Where plans are found and how handlers are set up: the same configuration as `synapse serve`.
#[derive(clap::Args, Clone, Default)]
struct PlansArgs {
    /// Configuration file as `synapse serve` reads it (default ./synapse.yaml if present): the plans
    /// directory and the handlers' settings (Handlers, else SYNAPSE_AD_*).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of plan files, where plan names are looked up (default: Plans of the configuration, else
    /// ./plans).
    #[arg(long)]
    plans: Option<PathBuf>,
}

#[derive(Subcommand)]
enum PlanCommand {
    /// List the plans of the plans directory (the names `plan run` and the API take), with their state.
    List {
        #[command(flatten)]
        plans: PlansArgs,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "text")]
        output: ListOutput,
    },
    /// Check plans; prints `file:line:col: error: field: message` for every problem, all at once (the
    /// handlers' own checks included). Without PLAN, every plan of the plans directory.
    Validate {
        /// Plan names (in the plans directory) or plan files.
        plans_or_files: Vec<String>,
        #[command(flatten)]
        plans: PlansArgs,
        /// Output format: text (diagnostics on stderr) or json (one report on stdout).
        #[arg(short, long, value_enum, default_value = "text")]
        output: ListOutput,
        /// Check the plans' handlers (and RunOn labels) against the live nodes of this NATS server
        /// (default: the configuration's `Nats`, SYNAPSE_NATS_URL). Without NATS, against the handlers
        /// configured here (`Handlers:` / SYNAPSE_AD_*).
        #[arg(long, value_name = "URL")]
        nats: Option<String>,
        /// Exit 2 on route warnings too (and when the routes cannot be checked).
        #[arg(long)]
        strict: bool,
    },
    /// Run a plan and print its result tree. Exit code 0 only when the plan's status is Complete.
    Run {
        /// A plan name (in the plans directory) or a plan file.
        plan: String,
        #[command(flatten)]
        plans: PlansArgs,
        /// A dynamic parameter, `name=value` (repeatable; a later value for the same name wins). A name the
        /// plan does not take is refused (exit 2), as the API refuses it (400).
        #[arg(short, long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Handlers are told not to change anything.
        #[arg(long)]
        dry_run: bool,
        /// Output format of the result tree.
        #[arg(short, long, value_enum, default_value = "json")]
        output: Output,
        /// Print progress events to stderr while the plan runs.
        #[arg(short, long)]
        verbose: bool,
        /// Who is running the plan (PlanStartInfo_RequestUser); defaults to $USER.
        #[arg(long)]
        user: Option<String>,
    },
    /// List the dynamic parameters a plan takes.
    Help {
        /// A plan name (in the plans directory) or a plan file.
        plan: String,
        #[command(flatten)]
        plans: PlansArgs,
        /// Output format.
        #[arg(short, long, value_enum, default_value = "text")]
        output: HelpOutput,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("synapse: {e:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// The log on stderr: `SYNAPSE_LOG` filters (default `warn`; `serve` also logs `info`: its start, readiness and
/// the request log); `serve` writes JSON lines when `LogFormat: json` / `SYNAPSE_LOG_FORMAT=json`.
fn init_logging(cli: &Cli) {
    use synapse_controller::config::LogFormat;
    let serve = match &cli.command {
        Command::Serve(args) => Some(serve_config(args).map_or(LogFormat::Text, |c| c.log_format)),
        _ => None,
    };
    let default = if serve.is_some() {
        "warn,synapse=info,synapse_controller=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SYNAPSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if serve == Some(LogFormat::Json) {
        fmt.json().flatten_event(true).init();
    } else {
        fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Plan(PlanCommand::List { plans, output }) => list_plans(&plans, output),
        Command::Plan(PlanCommand::Validate {
            plans_or_files,
            plans,
            output,
            nats,
            strict,
        }) => validate_plans(&plans_or_files, &plans, output, nats.as_deref(), strict),
        Command::Plan(PlanCommand::Run {
            plan,
            plans,
            params,
            dry_run,
            output,
            verbose,
            user,
        }) => {
            let file = plan_file(&plan, &plans)?;
            run_plan(&file, &plans, &params, dry_run, output, verbose, user)
        }
        Command::Plan(PlanCommand::Help {
            plan,
            plans,
            output,
        }) => plan_help(&plan_file(&plan, &plans)?, output),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "synapse", &mut out);
            out_raw!("{}", String::from_utf8_lossy(&out));
            Ok(0)
        }
        Command::Serve(args) => serve(args),
        Command::Node(args) => node_cmd::node(args),
        Command::Token(cmd) => token::run(cmd),
        Command::Schedule(cmd) => schedule_cli::run(cmd),
        Command::Config(ConfigCommand::Print(args)) => {
            let cfg = serve_config(&args)?;
            out_raw!("{}", cfg.printable_yaml()?);
            Ok(0)
        }
    }
}

/// The effective configuration for the plan commands (`--plans` wins over the file's Plans).
fn plans_config(args: &PlansArgs) -> Result<synapse_controller::config::ServeConfig> {
    serve_config(&ServeArgs {
        listen: None,
        plans: args.plans.clone(),
        data: None,
        config: args.config.clone(),
        no_auth: false,
    })
}

/// The plan files of a plans directory by name (file name without `.yaml`/`.yml`, as the API addresses
/// them), sorted by name: exactly the files the server serves (the top level and `dns/`).
fn plan_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = synapse_controller::catalog::plan_files(dir)
        .with_context(|| format!("plans directory {}", dir.display()))?;
    out.sort_by_key(|(k, _)| k.to_ascii_lowercase());
    Ok(out)
}

/// A plan argument: an existing file, something that looks like a path, or a plan name in the plans
/// directory (case-insensitive, as the API).
fn plan_file(arg: &str, args: &PlansArgs) -> Result<PathBuf> {
    let p = Path::new(arg);
    let looks_like_path =
        arg.contains(['/', '\\']) || arg.ends_with(".yaml") || arg.ends_with(".yml");
    if p.is_file() || looks_like_path {
        return Ok(p.to_path_buf());
    }
    let dir = plans_config(args)?.plans;
    plan_files(&dir)
        .with_context(|| format!("no plan named '{arg}' (and no file of that name)"))?
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(arg))
        .map(|(_, p)| p)
        .with_context(|| {
            format!(
                "no plan named '{arg}' in {} (`synapse plan list` shows them)",
                dir.display()
            )
        })
}

/// Loads and validates one plan (the handlers' static checks included), every problem of both stages at
/// once: the plan when it has no errors, and every diagnostic.
fn check_plan(file: &Path) -> (Option<load::LoadedPlan>, Diagnostics) {
    validate::check_file(file, &synapse_handlers::builtin_registry())
}

/// [`check_plan`], printing every diagnostic to stderr.
fn load_checked(file: &Path) -> Option<load::LoadedPlan> {
    let (loaded, diags) = check_plan(file);
    if !diags.0.is_empty() {
        eprintln!("{diags}");
    }
    loaded
}

fn action_count(loaded: &load::LoadedPlan) -> usize {
    let mut count = 0;
    loaded.plan.walk(|_, _| count += 1);
    count
}

/// Route warnings of loaded plans (by file): what no live node (with NATS) or no configured handler (in
/// process) can run. `Err`: the routes could not be checked, and why.
fn route_warnings(
    loaded: &[(PathBuf, Arc<synapse_engine::Plan>)],
    plans: &PlansArgs,
    nats_url: Option<&str>,
) -> std::result::Result<std::collections::HashMap<PathBuf, String>, String> {
    use synapse_controller::plan_routes::{plan_warning, Routes};
    let cfg = plans_config(plans).map_err(|e| format!("the configuration: {e:#}"))?;
    let settings = match (nats_url, cfg.nats.clone()) {
        (Some(url), Some(mut s)) => {
            s.url = url.to_string();
            Some(s)
        }
        (Some(url), None) => Some(synapse_node::NatsSettings::new(url)),
        (None, s) => s,
    };
    let name = |f: &Path| {
        f.file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default()
    };
    let check = |registry: &synapse_engine::HandlerRegistry, routes: &Routes| {
        loaded
            .iter()
            .filter_map(|(f, p)| {
                plan_warning(&name(f), p, registry, routes).map(|w| (f.clone(), w))
            })
            .collect()
    };
    match settings {
        Some(settings) => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            rt.block_on(async {
                let stop = tokio_util::sync::CancellationToken::new();
                let dir =
                    synapse_node::NodeDirectory::open(&settings, "synapse-validate", stop.clone())
                        .await
                        .map_err(|e| format!("NATS: {e}"))?;
                let out = check(&synapse_handlers::builtin_registry(), &Routes::Nodes(dir));
                stop.cancel();
                Ok(out)
            })
        }
        None => {
            let registry = synapse_handlers::registry(&cfg.handlers)
                .map_err(|e| format!("the handlers' configuration: {e}"))?;
            Ok(check(&registry, &Routes::Local))
        }
    }
}

fn validate_plans(
    args: &[String],
    plans: &PlansArgs,
    output: ListOutput,
    nats: Option<&str>,
    strict: bool,
) -> Result<u8> {
    let files: Vec<PathBuf> = if args.is_empty() {
        let dir = plans_config(plans)?.plans;
        plan_files(&dir)?.into_iter().map(|(_, p)| p).collect()
    } else {
        args.iter()
            .map(|a| plan_file(a, plans))
            .collect::<Result<_>>()?
    };
    let mut failed = 0;
    let checked: Vec<_> = files.iter().map(|f| (f, check_plan(f))).collect();
    let loaded: Vec<(PathBuf, Arc<synapse_engine::Plan>)> = checked
        .iter()
        .filter_map(|(f, (l, _))| l.as_ref().map(|l| ((*f).clone(), Arc::new(l.plan.clone()))))
        .collect();
    // Warnings never fail validation (unless --strict): nodes come and go.
    let routes = route_warnings(&loaded, plans, nats);
    let mut warned = 0;
    if let Err(why) = &routes {
        eprintln!("warning: cannot check which handlers can run the plans: {why}");
    }
    let mut report = Vec::new();
    for (f, (loaded, diags)) in &checked {
        if loaded.is_none() {
            failed += 1;
        }
        let warning = routes.as_ref().ok().and_then(|w| w.get(*f));
        if warning.is_some() {
            warned += 1;
        }
        match output {
            ListOutput::Json => report.push(serde_json::json!({
                "File": f.display().to_string(),
                "Ok": loaded.is_some(),
                "Actions": loaded.as_ref().map(action_count),
                "Diagnostics": diags.0,
                "Warnings": warning.into_iter().collect::<Vec<_>>(),
            })),
            ListOutput::Text => {
                if !diags.0.is_empty() {
                    eprintln!("{diags}");
                }
                if let Some(w) = warning {
                    eprintln!("{}: warning: {w}", f.display());
                }
                if let Some(l) = loaded {
                    out!("{}: ok ({} actions)", f.display(), action_count(l));
                }
            }
        }
    }
    if output == ListOutput::Json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    }
    if failed > 0 {
        eprintln!("{failed} of {} plan file(s) have errors", files.len());
        Ok(EXIT_INVALID)
    } else if strict && (warned > 0 || routes.is_err()) {
        eprintln!("--strict: {warned} plan(s) with route warnings");
        Ok(EXIT_INVALID)
    } else {
        Ok(0)
    }
}

fn list_plans(args: &PlansArgs, output: ListOutput) -> Result<u8> {
    let dir = plans_config(args)?.plans;
    let mut rows = Vec::new();
    for (name, file) in plan_files(&dir)? {
        let (loaded, diags) = check_plan(&file);
        let errors = diags
            .0
            .iter()
            .filter(|d| d.severity == synapse_engine::Severity::Error)
            .count();
        let description = loaded
            .as_ref()
            .and_then(|l| l.plan.description.clone())
            .unwrap_or_default();
        rows.push(serde_json::json!({
            "Name": name,
            "File": file.display().to_string(),
            "Valid": loaded.is_some(),
            "Errors": errors,
            "Description": description,
        }));
    }
    match output {
        ListOutput::Json => out!("{}", serde_json::to_string_pretty(&rows)?),
        ListOutput::Text => {
            if rows.is_empty() {
                eprintln!("no plans in {}", dir.display());
            }
            for r in &rows {
                let state = if r["Valid"] == true {
                    "ok".to_string()
                } else {
                    format!(
                        "{} error(s): synapse plan validate {}",
                        r["Errors"],
                        display(&r["Name"])
                    )
                };
                out!(
                    "{}\t{}\t{}",
                    display(&r["Name"]),
                    state,
                    display(&r["Description"])
                );
            }
        }
    }
    Ok(0)
}

fn parse_params(pairs: &[String]) -> Result<DynamicParams> {
    let mut p = DynamicParams::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--param '{pair}': expected NAME=VALUE");
        };
        if k.trim().is_empty() {
            bail!("--param '{pair}': the name is empty");
        }
        p.insert(k.trim(), v);
    }
    Ok(p)
}

fn run_plan(
    file: &Path,
    plans: &PlansArgs,
    params: &[String],
    dry_run: bool,
    output: Output,
    verbose: bool,
    user: Option<String>,
) -> Result<u8> {
    let inputs = parse_params(params)?;
    let Some(loaded) = load_checked(file) else {
        return Ok(EXIT_INVALID);
    };
    // The plan's name as the API knows it: its file name.
    let key = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let takes = help::plan_help(&loaded.plan);
    if let Some(message) = help::unknown_parameters(&key, &takes, inputs.iter().map(|(k, _)| k)) {
        eprintln!("{}: error: {message}", file.display());
        return Ok(EXIT_INVALID);
    }
    // The same configuration and builder as `synapse serve`: Handlers of synapse.yaml (or --config), each
    // absent section from its variables (SYNAPSE_AD_*).
    let cfg = plans_config(plans)?;
    let registry = synapse_handlers::registry(&cfg.handlers).context("handler settings")?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let executor = Executor::in_process(Arc::new(registry));
    let progress = if verbose {
        ProgressSink::new(|e| {
            eprintln!(
                "[{}] {} {}{}",
                e.time.format("%H:%M:%S%.3f"),
                e.status,
                e.action_name,
                if e.message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", e.message)
                }
            )
        })
    } else {
        ProgressSink::none()
    };
    let opts = RunOptions {
        inputs,
        dry_run,
        progress,
        request_user: Some(
            user.or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "cli".into()),
        ),
        ..RunOptions::default()
    };
    let cancel = opts.cancel.clone();
    let result = rt.block_on(async {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("synapse: cancelling (Ctrl-C)");
                cancel.cancel();
            }
        });
        executor.run(&loaded.plan, opts).await
    });
    let result = match result {
        Ok(r) => r,
        Err(RunError::Inputs(e)) => {
            for p in &e.problems {
                eprintln!("{}: error: {p}", file.display());
            }
            return Ok(EXIT_INVALID);
        }
        Err(e) => {
            eprintln!("{}: error: {e}", file.display());
            return Ok(EXIT_INVALID);
        }
    };
    match output {
        Output::Json => out!("{}", serde_json::to_string_pretty(&result)?),
        Output::Yaml => out_raw!("{}", serde_yaml::to_string(&result)?),
    }
    Ok(if result.succeeded() {
        0
    } else {
        EXIT_PLAN_FAILED
    })
}

fn plan_help(file: &Path, output: HelpOutput) -> Result<u8> {
    let loaded = match load::load_file(file) {
        Ok(l) => l,
        Err(d) => {
            eprintln!("{d}");
            return Ok(EXIT_INVALID);
        }
    };
    let params = help::plan_help(&loaded.plan);
    match output {
        HelpOutput::Json => out!("{}", serde_json::to_string_pretty(&params)?),
        HelpOutput::Yaml => out_raw!("{}", serde_yaml::to_string(&params)?),
        HelpOutput::Text => {
            let plan = &loaded.plan;
            out!(
                "{}",
                if plan.name.is_empty() {
                    file.display().to_string()
                } else {
                    plan.name.clone()
                }
            );
            if let Some(d) = &plan.description {
                out!("  {d}");
            }
            if params.is_empty() {
                out!("\nThis plan takes no dynamic parameters.");
            }
            for p in &params {
                let mut flags = Vec::new();
                if p.required {
                    flags.push("required".to_string());
                }
                if let Some(t) = &p.data_type {
                    flags.push(t.clone());
                }
                if let Some(d) = &p.default {
                    flags.push(format!("default: {}", display(d)));
                }
                out!(
                    "\n  {}{}",
                    p.name,
                    if flags.is_empty() {
                        String::new()
                    } else {
                        format!("  ({})", flags.join(", "))
                    }
                );
                if let Some(d) = &p.description {
                    out!("      {d}");
                }
                if !p.options.is_empty() {
                    let opts: Vec<String> = p
                        .options
                        .iter()
                        .map(|o| {
                            if o.key.is_empty() || o.key == o.value {
                                o.value.clone()
                            } else {
                                format!("{} = {}", o.key, o.value)
                            }
                        })
                        .collect();
                    let only = if p.restrict_to_options {
                        "one of"
                    } else {
                        "e.g."
                    };
                    out!("      {only}: {}", opts.join(", "));
                }
                if let Some(v) = &p.validation {
                    out!("      must match: {v}");
                }
                out!("      used by: {}", p.used_by.join(", "));
            }
        }
    }
    Ok(0)
}

fn display(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn serve_config(args: &ServeArgs) -> Result<synapse_controller::config::ServeConfig> {
    let o = synapse_controller::config::Overrides {
        config: args.config.clone(),
        listen: args.listen.clone(),
        plans: args.plans.clone(),
        data: args.data.clone(),
        no_auth: args.no_auth,
    };
    Ok(synapse_controller::config::ServeConfig::load(&o, &|k| {
        std::env::var(k).ok()
    })?)
}

fn serve(args: ServeArgs) -> Result<u8> {
    let cfg = serve_config(&args)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(synapse_controller::serve::serve(cfg))?;
    Ok(0)
}

pub(crate) fn open_store(args: &StoreArgs) -> Result<synapse_controller::store::RedbStore> {
    let cfg = serve_config(&ServeArgs {
        listen: None,
        plans: None,
        data: args.data.clone(),
        config: args.config.clone(),
        no_auth: false,
    })?;
    Ok(synapse_controller::store::RedbStore::open(
        &synapse_controller::serve::store_path(&cfg),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `synapse <any command> --help` describes every flag and argument.
    #[test]
    fn every_flag_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "synapse", &mut missing);
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }
}
