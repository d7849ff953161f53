//! `synapse token ...`: API keys, in one of two ways.
//!
//! - **Against a running server** (`--server URL --key ADMIN_KEY`, or `SYNAPSE_SERVER` / `SYNAPSE_KEY`): the CLI is
//!   a client of `/synapse/keys` (docs/api.md#api-keys). Works while `synapse serve` runs; `--own` manages the
//!   calling key's own keys (any key) instead of all keys (admin keys).
//! - **On the store** (no `--server`): opens `DATA/synapse.redb` directly, which only works while no server has it
//!   open. This is how the first admin key is made.

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;
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
            remote(cmd, &Client::new(server, key)?, target.own)
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

/// Percent-encodes a path segment.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
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
                &format!("{base}/{}", enc(&name)),
                Some(&json!({"Enabled": true})),
                200,
            )?;
            eprintln!("API key '{name}' enabled");
            Ok(0)
        }
        TokenCommand::Disable { name, .. } => {
            client.call(
                "PATCH",
                &format!("{base}/{}", enc(&name)),
                Some(&json!({"Enabled": false})),
                200,
            )?;
            eprintln!("API key '{name}' disabled");
            Ok(0)
        }
        TokenCommand::Delete { name, .. } => {
            client.call("DELETE", &format!("{base}/{}", enc(&name)), None, 204)?;
            eprintln!("API key '{name}' deleted");
            Ok(0)
        }
    }
}

/// A minimal HTTP/1.1 client for the key routes (`http://` only; one request per connection).
struct Client {
    host: String,
    prefix: String,
    key: String,
}

impl Client {
    fn new(server: &str, key: String) -> Result<Client> {
        let rest = server.strip_prefix("http://").with_context(|| {
            format!("--server {server}: only http://HOST:PORT is supported (TLS belongs to a proxy in front)")
        })?;
        let (host, prefix) = match rest.split_once('/') {
            Some((h, p)) => (h, format!("/{}", p.trim_end_matches('/'))),
            None => (rest, String::new()),
        };
        let host = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        Ok(Client {
            host,
            prefix: prefix.trim_end_matches('/').to_string(),
            key,
        })
    }

    /// One request; the JSON answer when the status is `expect`, otherwise the server's error message.
    fn call(&self, method: &str, path: &str, body: Option<&Value>, expect: u16) -> Result<Value> {
        let timeout = Duration::from_secs(30);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&self.host)
            .with_context(|| format!("resolving {}", self.host))?
            .next()
            .with_context(|| format!("{} has no address", self.host))?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("connecting to {}", self.host))?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let req = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.prefix,
            self.host,
            self.key,
            body.len()
        );
        s.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        s.take(16 << 20).read_to_end(&mut raw)?;
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("the server's answer has no end of headers")?;
        let head = String::from_utf8_lossy(&raw[..end]);
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("the server's answer has no status")?;
        let text = String::from_utf8_lossy(&raw[end + 4..]);
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != expect {
            let msg = v["Error"]["Message"]
                .as_str()
                .map_or_else(|| text.to_string(), str::to_string);
            bail!("{method} {path}: HTTP {status}: {msg}");
        }
        Ok(v)
    }
}
