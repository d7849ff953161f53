//! `synapse`: the one binary. Today: the plan tools (`plan validate`, `plan run`, `plan help`).

mod node_cmd;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
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
    Token(TokenCommand),
    /// Show the effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
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

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API key; it is printed once, only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated roles: read, execute, admin.
        #[arg(long, default_value = "execute")]
        roles: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List API keys (names and roles).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete an API key by name.
    Delete {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(clap::Args, Clone)]
struct StoreArgs {
    /// Directory of the store (default ./data, or Data in synapse.yaml / SYNAPSE_DATA).
    #[arg(long)]
    data: Option<PathBuf>,
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

#[derive(Subcommand)]
enum PlanCommand {
    /// Check plan files; prints `file:line:col: error: field: message` for every problem.
    Validate {
        /// Plan files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a plan and print its result tree. Exit code 0 only when the plan's status is Complete.
    Run {
        file: PathBuf,
        /// A dynamic parameter, `name=value` (repeatable; a later value for the same name wins).
        #[arg(short, long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Handlers are told not to change anything.
        #[arg(long)]
        dry_run: bool,
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
        file: PathBuf,
        #[arg(short, long, value_enum, default_value = "text")]
        output: HelpOutput,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SYNAPSE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("synapse: {e:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Plan(PlanCommand::Validate { files }) => Ok(validate_files(&files)),
        Command::Plan(PlanCommand::Run {
            file,
            params,
            dry_run,
            output,
            verbose,
            user,
        }) => run_plan(&file, &params, dry_run, output, verbose, user),
        Command::Plan(PlanCommand::Help { file, output }) => plan_help(&file, output),
        Command::Serve(args) => serve(args),
        Command::Node(args) => node_cmd::node(args),
        Command::Token(cmd) => token(cmd),
        Command::Config(ConfigCommand::Print(args)) => {
            let cfg = serve_config(&args)?;
            out_raw!("{}", serde_yaml::to_string(&cfg.printable())?);
            Ok(0)
        }
    }
}

/// Loads and validates one plan; prints every diagnostic to stderr.
fn load_checked(file: &Path) -> Option<load::LoadedPlan> {
    let registry = synapse_handlers::builtin_registry();
    match load::load_file(file) {
        Err(diags) => {
            eprintln!("{diags}");
            None
        }
        Ok(loaded) => {
            let diags = Diagnostics(validate::validate(&loaded, &registry));
            if !diags.0.is_empty() {
                eprintln!("{diags}");
            }
            (!diags.has_errors()).then_some(loaded)
        }
    }
}

fn validate_files(files: &[PathBuf]) -> u8 {
    let mut failed = 0;
    for f in files {
        match load_checked(f) {
            Some(l) => {
                let mut count = 0;
                l.plan.walk(|_, _| count += 1);
                out!("{}: ok ({} actions)", f.display(), count);
            }
            None => failed += 1,
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} plan file(s) have errors", files.len());
        EXIT_INVALID
    } else {
        0
    }
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
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    // The same builder as `synapse serve`, each handler's section from its variables (SYNAPSE_AD_*).
    let registry = synapse_handlers::HandlersConfig::from_env()
        .and_then(|handlers| synapse_handlers::registry(&handlers))
        .context("Active Directory settings (SYNAPSE_AD_*)")?;
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

fn open_store(args: &StoreArgs) -> Result<synapse_controller::store::RedbStore> {
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

fn token(cmd: TokenCommand) -> Result<u8> {
    use synapse_controller::store::{hash_token, new_token, KeyStore, TokenRecord};
    match cmd {
        TokenCommand::Create { name, roles, store } => {
            use synapse_controller::auth::Role;
            let mut parsed = Vec::new();
            for r in roles.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                match Role::parse(r) {
                    Some(role) => parsed.push(role.name().to_string()),
                    None => bail!("unknown role '{r}' (roles: {})", Role::names()),
                }
            }
            let roles = parsed;
            if roles.is_empty() {
                bail!("--roles needs at least one of {}", Role::names());
            }
            if name.trim().is_empty() || name.len() > 128 {
                bail!("--name must be 1 to 128 characters");
            }
            let st = open_store(&store)?;
            let secret = new_token()?;
            st.put_token(&TokenRecord {
                name: name.clone(),
                roles,
                created_at: synapse_engine::Clock::now(&synapse_engine::SystemClock),
                hash: hash_token(&secret),
            })?;
            eprintln!("API key '{name}' created. It is shown only now; store it safely:");
            out!("{secret}");
            Ok(0)
        }
        TokenCommand::List { store } => {
            let st = open_store(&store)?;
            for t in st.list_tokens()? {
                out!(
                    "{}\t{}\t{}",
                    t.name,
                    t.roles.join(","),
                    t.created_at.to_rfc3339()
                );
            }
            Ok(0)
        }
        TokenCommand::Delete { name, store } => {
            let st = open_store(&store)?;
            if st.delete_token(&name)? {
                eprintln!("API key '{name}' deleted");
                Ok(0)
            } else {
                eprintln!("no API key named '{name}'");
                Ok(EXIT_PLAN_FAILED)
            }
        }
    }
}
