//! `synapse token ...`: API keys, in one of two ways.
//!
//! - **Against a running server** (`--server URL --key ADMIN_KEY`, or `SYNAPSE_SERVER` / `SYNAPSE_KEY`): the CLI is
//!   a client of `/synapse/keys` (docs/api.md#api-keys). Works while `synapse serve` runs; `--own` manages the
//!   calling key's own keys (any key) instead of all keys (admin keys).
//! - **On the store** (no `--server`): opens `DATA/synapse.redb` directly, which only works while no server has it
//!   open. This is how the first admin key is made.

use crate::client::Client;
use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};
use synapse_controller::auth::Role;
use synapse_controller::store::{hash_token, new_token, KeyStore, StoreError, TokenRecord};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API key; it is printed once, only its hash is stored.
    Create {
        /// The key's name (unique; not `own`).
        #[arg(long)]
        name: String,
        /// Comma-separated roles: read, execute, admin.
        #[arg(long, default_value = "execute")]
        roles: String,
        /// What the key is for.
        #[arg(long)]
        description: Option<String>,
        /// Days until the key stops working (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        target: Target,
    },
    /// List API keys (name, roles, enabled, expiry, last use, description).
    List {
        /// `text` (tab-separated) or `json`.
        #[arg(short, long, value_enum, default_value = "text")]
        output: ListOutput,
        #[command(flatten)]
        target: Target,
    },
    /// Enable a disabled API key.
    Enable {
        /// The key's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Disable an API key: it is refused (401) until enabled again.
    Disable {
        /// The key's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Delete an API key by name.
    Delete {
        /// The key's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ListOutput {
    Text,
    Json,
}

/// Where the keys are: a running server (`--server`), or the store.
#[derive(clap::Args, Clone)]
pub struct Target {
    /// A running server's URL (http://HOST:PORT): manage keys through its API (env SYNAPSE_SERVER).
    #[arg(long, env = "SYNAPSE_SERVER")]
    server: Option<String>,
    /// The API key to call the server with (an admin key; any key with --own) (env SYNAPSE_KEY).
    #[arg(long, env = "SYNAPSE_KEY", hide_env_values = true)]
    key: Option<String>,
    /// With --server: only the calling key and the keys it created (`/synapse/keys/own`).
    #[arg(long)]
    own: bool,
    #[command(flatten)]
    store: crate::StoreArgs,
}

pub fn run(cmd: TokenCommand) -> Result<u8> {
    let target = match &cmd {
        TokenCommand::Create { target, .. }
        | TokenCommand::List { target, .. }
        | TokenCommand::Enable { target, .. }
        | TokenCommand::Disable { target, .. }
        | TokenCommand::Delete { target, .. } => target.clone(),
    };
    match &target.server {
        Some(server) => {
            let key = target.key.clone().context(
                "--server needs --key (or SYNAPSE_KEY): an admin key, or any key with --own",
            )?;
            remote(cmd, &Client::new(server, Some(key))?, target.own)
        }
        None => {
            if target.own {
                bail!("--own needs --server (the calling key is known only to a server)");
            }
            local(cmd)
        }
    }
}

fn parse_roles(roles: &str) -> Result<Vec<String>> {
    let mut parsed = Vec::new();
    for r in roles.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match Role::parse(r) {
            Some(role) => parsed.push(role.name().to_string()),
            None => bail!("--roles: unknown role '{r}' (roles: {})", Role::names()),
        }
    }
    if parsed.is_empty() {
        bail!("--roles needs at least one of {}", Role::names());
    }
    Ok(parsed)
}

/// A key as `list` prints it (the API's `KeyInfo` shape).
fn print_keys(keys: &[Value], output: ListOutput) -> Result<()> {
    match output {
        ListOutput::Json => out!("{}", serde_json::to_string_pretty(keys)?),
        ListOutput::Text => {
            for k in keys {
                let s = |f: &str| k[f].as_str().unwrap_or("-").to_string();
                let roles: Vec<&str> = k["Roles"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let state = match (k["Enabled"].as_bool(), k["Expired"].as_bool()) {
                    (_, Some(true)) => "expired",
                    (Some(false), _) => "disabled",
                    _ => "enabled",
                };
                out!(
                    "{}\t{}\t{state}\tcreated {}\texpires {}\tlast used {}\t{}",
                    s("Name"),
                    roles.join(","),
                    s("CreatedAt"),
                    s("ExpiresAt"),
                    s("LastUsedAt"),
                    s("Description"),
                );
            }
        }
    }
    Ok(())
}

fn info(t: &TokenRecord, now: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "Name": t.name, "Roles": t.roles, "Enabled": t.enabled,
        "Expired": t.expires_at.is_some_and(|at| at <= now),
        "CreatedAt": t.created_at, "ExpiresAt": t.expires_at, "LastUsedAt": t.last_used_at,
        "Description": t.description, "Owner": t.owner,
    })
}

fn open_store(store: &crate::StoreArgs) -> Result<synapse_controller::store::RedbStore> {
    crate::open_store(store).map_err(|e| match e.downcast_ref::<StoreError>() {
        Some(StoreError::InUse { .. }) => e.context(
            "a server has the store open: manage keys through it with --server http://HOST:PORT --key <admin key>",
        ),
        _ => e,
    })
}

fn set_enabled(store: &crate::StoreArgs, name: &str, enabled: bool) -> Result<u8> {
    let st = open_store(store)?;
    match st.modify_token(name, &mut |t| t.enabled = enabled)? {
        Some(_) => {
            eprintln!(
                "API key '{name}' {}",
                if enabled { "enabled" } else { "disabled" }
            );
            Ok(0)
        }
        None => {
            eprintln!("no API key named '{name}'");
            Ok(crate::EXIT_PLAN_FAILED)
        }
    }
}

fn local(cmd: TokenCommand) -> Result<u8> {
    let now = synapse_engine::Clock::now(&synapse_engine::SystemClock);
    match cmd {
        TokenCommand::Create {
            name,
            roles,
            description,
            expires_in_days,
            target,
        } => {
            let roles = parse_roles(&roles)?;
            if name.trim().is_empty() || name.chars().count() > 128 || name.contains('/') {
                bail!("--name must be 1 to 128 characters, without '/'");
            }
            if name.eq_ignore_ascii_case("own") {
                bail!("--name: 'own' is reserved");
            }
            let expires_at = match expires_in_days {
                Some(d) if !(1..=3650).contains(&d) => bail!("--expires-in-days: 1 to 3650"),
                Some(d) => Some(now + chrono::TimeDelta::days(i64::from(d))),
                None => None,
            };
            let st = open_store(&target.store)?;
            let secret = new_token()?;
            st.put_token(&TokenRecord {
                name: name.clone(),
                roles,
                created_at: now,
                hash: hash_token(&secret),
                expires_at,
                description,
                ..TokenRecord::default()
            })?;
            eprintln!("API key '{name}' created. It is shown only now; store it safely:");
            out!("{secret}");
            Ok(0)
        }
        TokenCommand::List { output, target } => {
            let st = open_store(&target.store)?;
            let keys: Vec<Value> = st.list_tokens()?.iter().map(|t| info(t, now)).collect();
            print_keys(&keys, output)?;
            Ok(0)
        }
        TokenCommand::Enable { name, target } => set_enabled(&target.store, &name, true),
        TokenCommand::Disable { name, target } => set_enabled(&target.store, &name, false),
        TokenCommand::Delete { name, target } => {
            let st = open_store(&target.store)?;
            if st.delete_token(&name)? {
                eprintln!("API key '{name}' deleted");
                Ok(0)
            } else {
                eprintln!("no API key named '{name}'");
                Ok(crate::EXIT_PLAN_FAILED)
            }
        }
    }
}

fn remote(cmd: TokenCommand, client: &Client, own: bool) -> Result<u8> {
    let base = if own {
        "/synapse/keys/own"
    } else {
        "/synapse/keys"
    };
    match cmd {
        TokenCommand::Create {
            name,
            roles,
            description,
            expires_in_days,
            ..
        } => {
            let mut body = json!({"Name": name, "Roles": parse_roles(&roles)?});
            if let Some(d) = description {
                body["Description"] = json!(d);
            }
            if let Some(d) = expires_in_days {
                body["ExpiresInDays"] = json!(d);
            }
            let v = client.call("POST", base, Some(&body), 201)?;
            let secret = v["Secret"].as_str().context("the answer has no Secret")?;
            eprintln!("API key '{name}' created. It is shown only now; store it safely:");
            out!("{secret}");
            Ok(0)
        }
        TokenCommand::List { output, .. } => {
            let v = client.call("GET", base, None, 200)?;
            print_keys(v.as_array().map(Vec::as_slice).unwrap_or_default(), output)?;
            Ok(0)
        }
        TokenCommand::Enable { name, .. } => {
            client.call(
                "PATCH",
                &format!("{base}/{}", crate::client::path_segment(&name)),
                Some(&json!({"Enabled": true})),
                200,
            )?;
            eprintln!("API key '{name}' enabled");
            Ok(0)
        }
        TokenCommand::Disable { name, .. } => {
            client.call(
                "PATCH",
                &format!("{base}/{}", crate::client::path_segment(&name)),
                Some(&json!({"Enabled": false})),
                200,
            )?;
            eprintln!("API key '{name}' disabled");
            Ok(0)
        }
        TokenCommand::Delete { name, .. } => {
            client.call(
                "DELETE",
                &format!("{base}/{}", crate::client::path_segment(&name)),
                None,
                204,
            )?;
            eprintln!("API key '{name}' deleted");
            Ok(0)
        }
    }
}
