//! NATS connection settings shared by the controller and `synapse node`, and the connection itself.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The `Nats:` section of synapse.yaml (every key optional but `Url`); `SYNAPSE_NATS_*` variables and node
/// flags override it.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NatsSettings {
    /// `nats://host:4222` (comma-separated list for a cluster; `tls://` requires TLS).
    pub url: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    /// A `.creds` file (JWT + nkey seed).
    #[serde(default)]
    pub creds_file: Option<PathBuf>,
    /// A file holding an nkey seed (`SU...`).
    #[serde(default)]
    pub nkey_file: Option<PathBuf>,
    /// CA bundle (PEM) for the server's certificate.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub require_tls: bool,
    /// How long a node may hold an action without a sign of life before JetStream redelivers it (nodes send
    /// in-progress acks at a third of this while the handler runs).
    #[serde(default = "default_ack_wait")]
    pub ack_wait_seconds: f64,
    /// Deliveries of one request before JetStream gives up on it (the controller then reports the outcome
    /// as unknown).
    #[serde(default = "default_max_deliver")]
    pub max_deliver: i64,
    /// Seconds between a node's heartbeats; a node silent for `LeaseSeconds` is shown as lost and gets no work.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_seconds: f64,
    #[serde(default = "default_lease")]
    pub lease_seconds: f64,
    /// Seconds to wait when connecting (and for JetStream API answers).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: f64,
}

fn default_ack_wait() -> f64 {
    30.0
}
fn default_max_deliver() -> i64 {
    5
}
fn default_heartbeat() -> f64 {
    2.0
}
fn default_lease() -> f64 {
    10.0
}
fn default_connect_timeout() -> f64 {
    5.0
}

impl std::fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mask = |o: &Option<String>| o.as_ref().map(|_| synapse_engine::MASK);
        f.debug_struct("NatsSettings")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &mask(&self.password))
            .field("token", &mask(&self.token))
            .field("creds_file", &self.creds_file)
            .field("nkey_file", &self.nkey_file)
            .field("tls_ca", &self.tls_ca)
            .field("require_tls", &self.require_tls)
            .field("ack_wait_seconds", &self.ack_wait_seconds)
            .field("max_deliver", &self.max_deliver)
            .finish()
    }
}

/// What can go wrong talking to NATS; every message names the server and, for settings, the field.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("Nats.{field}: {message}")]
    Setting {
        field: &'static str,
        message: String,
    },
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("NATS at {url} refused the credentials: {message}")]
    Auth { url: String, message: String },
    #[error("NATS JetStream at {url}: {message}")]
    JetStream { url: String, message: String },
}

fn secs(field: &'static str, v: f64) -> Result<Duration, NatsError> {
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(NatsError::Setting {
            field,
            message: format!("{v} is not a number of seconds between 0 and 86400"),
        })
    }
}

impl NatsSettings {
    /// Settings for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        NatsSettings {
            url: url.into(),
            user: None,
            password: None,
            token: None,
            creds_file: None,
            nkey_file: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            require_tls: false,
            ack_wait_seconds: default_ack_wait(),
            max_deliver: default_max_deliver(),
            heartbeat_seconds: default_heartbeat(),
            lease_seconds: default_lease(),
            connect_timeout_seconds: default_connect_timeout(),
        }
    }

    /// Overrides from `SYNAPSE_NATS_*` variables (`URL`, `USER`, `PASSWORD`, `TOKEN`, `CREDS_FILE`,
    /// `NKEY_FILE`, `TLS_CA`, `TLS_CERT`, `TLS_KEY`, `ACK_WAIT_SECONDS`, `MAX_DELIVER`), looked up with `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), NatsError> {
        let s = |k: &str| get(&format!("SYNAPSE_NATS_{k}")).filter(|v| !v.is_empty());
        if let Some(v) = s("URL") {
            self.url = v;
        }
        if let Some(v) = s("USER") {
            self.user = Some(v);
        }
        if let Some(v) = s("PASSWORD") {
            self.password = Some(v);
        }
        if let Some(v) = s("TOKEN") {
            self.token = Some(v);
        }
        for (k, slot) in [
            ("CREDS_FILE", &mut self.creds_file),
            ("NKEY_FILE", &mut self.nkey_file),
            ("TLS_CA", &mut self.tls_ca),
            ("TLS_CERT", &mut self.tls_cert),
            ("TLS_KEY", &mut self.tls_key),
        ] {
            if let Some(v) = s(k) {
                *slot = Some(PathBuf::from(v));
            }
        }
        if let Some(v) = s("ACK_WAIT_SECONDS") {
            self.ack_wait_seconds = v.parse().map_err(|_| NatsError::Setting {
                field: "AckWaitSeconds",
                message: format!("SYNAPSE_NATS_ACK_WAIT_SECONDS={v} is not a number"),
            })?;
        }
        if let Some(v) = s("MAX_DELIVER") {
            self.max_deliver = v.parse().map_err(|_| NatsError::Setting {
                field: "MaxDeliver",
                message: format!("SYNAPSE_NATS_MAX_DELIVER={v} is not a whole number"),
            })?;
        }
        Ok(())
    }

    /// Every value checked (durations, redelivery bound, credentials that exclude each other).
    pub fn check(&self) -> Result<(), NatsError> {
        if self.url.trim().is_empty() {
            return Err(NatsError::Setting {
                field: "Url",
                message: "is empty".into(),
            });
        }
        self.ack_wait()?;
        self.heartbeat()?;
        self.lease()?;
        self.connect_timeout()?;
        if !(1..=100).contains(&self.max_deliver) {
            return Err(NatsError::Setting {
                field: "MaxDeliver",
                message: format!("{} is not between 1 and 100", self.max_deliver),
            });
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(NatsError::Setting {
                field: "User",
                message: "User and Password go together".into(),
            });
        }
        let ways = [
            self.user.is_some(),
            self.token.is_some(),
            self.creds_file.is_some(),
            self.nkey_file.is_some(),
        ];
        if ways.iter().filter(|w| **w).count() > 1 {
            return Err(NatsError::Setting {
                field: "User",
                message: "use one of User/Password, Token, CredsFile or NkeyFile".into(),
            });
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(NatsError::Setting {
                field: "TlsCert",
                message: "TlsCert and TlsKey go together".into(),
            });
        }
        Ok(())
    }

    pub fn ack_wait(&self) -> Result<Duration, NatsError> {
        secs("AckWaitSeconds", self.ack_wait_seconds)
    }
    pub fn heartbeat(&self) -> Result<Duration, NatsError> {
        secs("HeartbeatSeconds", self.heartbeat_seconds)
    }
    pub fn lease(&self) -> Result<Duration, NatsError> {
        secs("LeaseSeconds", self.lease_seconds)
    }
    pub fn connect_timeout(&self) -> Result<Duration, NatsError> {
        secs("ConnectTimeoutSeconds", self.connect_timeout_seconds)
    }
}

/// Connects with the settings' credentials and TLS. Wrong credentials and an unreachable server are
/// distinct, clear errors. After this first connection the client reconnects by itself, forever (a NATS
/// restart needs no restart of ours).
pub async fn connect(s: &NatsSettings, name: &str) -> Result<async_nats::Client, NatsError> {
    s.check()?;
    let url = s.url.clone();
    let mut o = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(s.connect_timeout()?)
        .request_timeout(Some(s.connect_timeout()?))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100u64 << attempts.min(4)).min(2_000))
        });
    if let (Some(u), Some(p)) = (&s.user, &s.password) {
        o = o.user_and_password(u.clone(), p.clone());
    }
    if let Some(t) = &s.token {
        o = o.token(t.clone());
    }
    if let Some(f) = &s.creds_file {
        o = o
            .credentials_file(f)
            .await
            .map_err(|e| NatsError::Setting {
                field: "CredsFile",
                message: format!("{}: {e}", f.display()),
            })?;
    }
    if let Some(f) = &s.nkey_file {
        let seed = std::fs::read_to_string(f).map_err(|e| NatsError::Setting {
            field: "NkeyFile",
            message: format!("{}: {e}", f.display()),
        })?;
        o = o.nkey(seed.trim().to_string());
    }
    if let Some(ca) = &s.tls_ca {
        o = o.add_root_certificates(ca.clone());
    }
    if let (Some(c), Some(k)) = (&s.tls_cert, &s.tls_key) {
        o = o.add_client_certificate(c.clone(), k.clone());
    }
    if s.require_tls {
        o = o.require_tls(true);
    }
    let servers: Vec<&str> = url.split(',').map(str::trim).collect();
    match o.connect(servers).await {
        Ok(c) => Ok(c),
        Err(e) => {
            let message = e.to_string();
            if matches!(
                e.kind(),
                async_nats::ConnectErrorKind::AuthorizationViolation
                    | async_nats::ConnectErrorKind::Authentication
            ) {
                Err(NatsError::Auth { url, message })
            } else {
                Err(NatsError::Connect { url, message })
            }
        }
    }
}
