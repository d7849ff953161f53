//! `synapse node`: a worker that runs actions sent by a controller over NATS JetStream (synapse-node).
//! Its handlers are configured exactly like the controller's (`Handlers:` in its synapse.yaml, or
//! `SYNAPSE_AD_*`), with its own secrets; its NATS settings come from the same file's `Nats:` section,
//! `SYNAPSE_NATS_*`, then these flags.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct NodeArgs {
    /// NATS server URL (comma-separated for a cluster); overrides `Nats.Url` and SYNAPSE_NATS_URL.
    #[arg(long)]
    nats: Option<String>,
    /// Labels actions can require with `RunOn`, e.g. `site=dc1,zone=a`.
    #[arg(long, default_value = "")]
    labels: String,
    /// The node's synapse.yaml (`Handlers:` and `Nats:`); default ./synapse.yaml when present.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Name in `GET /synapse/nodes` and in results (default: host name and process id).
    #[arg(long)]
    name: Option<String>,
    /// Actions run at once at most.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds in-flight actions may take to finish on SIGTERM before they are handed back.
    #[arg(long, default_value_t = 30.0)]
    drain_seconds: f64,
    /// NATS user (the password comes from SYNAPSE_NATS_PASSWORD or `Nats.Password`).
    #[arg(long)]
    user: Option<String>,
    /// NATS token (prefer SYNAPSE_NATS_TOKEN: flags show in process lists).
    #[arg(long)]
    token: Option<String>,
    /// NATS credentials file (JWT + nkey seed).
    #[arg(long)]
    creds: Option<PathBuf>,
    /// A file holding an nkey seed.
    #[arg(long)]
    nkey: Option<PathBuf>,
    /// CA certificate (PEM) of the NATS server.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM), with --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds JetStream waits for a sign of life before redelivering an action to another node.
    #[arg(long)]
    ack_wait_seconds: Option<f64>,
}

pub fn node(args: NodeArgs) -> Result<u8> {
    let env = |k: &str| std::env::var(k).ok();
    let o = synapse_controller::config::Overrides {
        config: args.config.clone(),
        listen: None,
        plans: None,
        data: None,
        no_auth: false,
    };
    let cfg = synapse_controller::config::ServeConfig::load(&o, &env)?;
    // File < SYNAPSE_NATS_* < flags.
    let mut nats = match cfg.nats {
        Some(s) => s,
        None => {
            let mut s = synapse_node::NatsSettings::new(String::new());
            s.apply_env(env)?;
            s
        }
    };
    if let Some(url) = &args.nats {
        nats.url = url.clone();
    }
    if nats.url.trim().is_empty() {
        bail!(
            "--nats URL is required (or Nats: {{Url: ...}} in synapse.yaml, or SYNAPSE_NATS_URL)"
        );
    }
    if let Some(u) = args.user {
        nats.user = Some(u);
    }
    if let Some(t) = args.token {
        nats.token = Some(t);
    }
    if let Some(c) = args.creds {
        nats.creds_file = Some(c);
    }
    if let Some(c) = args.nkey {
        nats.nkey_file = Some(c);
    }
    if let Some(c) = args.tls_ca {
        nats.tls_ca = Some(c);
    }
    if let (Some(c), Some(k)) = (args.tls_cert, args.tls_key) {
        nats.tls_cert = Some(c);
        nats.tls_key = Some(k);
    }
    if let Some(a) = args.ack_wait_seconds {
        nats.ack_wait_seconds = a;
    }
    nats.check()?;
    let labels = synapse_node::subjects::parse_labels(&args.labels)
        .map_err(|e| anyhow::anyhow!("--labels: {e}"))?;
    if args.concurrency == 0 || args.concurrency > 100_000 {
        bail!("--concurrency must be between 1 and 100000");
    }
    if !(args.drain_seconds.is_finite() && (0.0..=86_400.0).contains(&args.drain_seconds)) {
        bail!("--drain-seconds must be between 0 and 86400");
    }
    let name = args.name.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into());
        format!("{host}-{}", std::process::id())
    });
    if !synapse_node::subjects::valid_label_part(&name) {
        bail!("--name '{name}': 1 to 64 letters, digits, '-', '_' or '.'");
    }
    let registry = Arc::new(synapse_handlers::registry(&cfg.handlers)?);
    let handlers = synapse_node::worker::served_handlers(&registry);
    let opts = synapse_node::NodeOptions {
        name: name.clone(),
        labels,
        concurrency: args.concurrency,
        drain_timeout: Duration::from_secs_f64(args.drain_seconds),
        settings: nats.clone(),
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let client = synapse_node::connect(&nats, &format!("synapse-node {name}")).await?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            signal.cancel();
        });
        eprintln!(
            "synapse node {name}: serving {} over {}",
            handlers.join(", "),
            nats.url
        );
        let answered = synapse_node::run_node(client, registry, opts, shutdown).await?;
        eprintln!("synapse node {name}: drained and stopped after {answered} actions");
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(0)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
