//! `synapse serve` settings: one YAML file (`synapse.yaml`) with every key overridable by `SYNAPSE_*`
//! environment variables, and command-line flags over both. `synapse config print` shows the result with
//! secrets masked.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use synapse_engine::model::DurationSpec;
use synapse_handlers::{HandlersConfig, LegacyDomains};

/// Default listen address (loopback: exposing the API is a decision, not a default).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:20000";
/// Default request body limit.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Default time a client has to send a request's headers (also how long an idle connection stays open).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send a request's body, from the end of its headers.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of connections served at once (below the usual 1024 open files, with room for the store,
/// the LDAP pools and the log).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The server's edges: how long a client may take to send a request, how many connections are served at
/// once, and the host names the server answers to besides its listen address (`http::origin`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeConfig {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    /// Extra `Host` values (`name` or `name:port`, lower case), e.g. the name of a reverse proxy.
    pub allowed_hosts: Vec<String>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            allowed_hosts: Vec::new(),
        }
    }
}

/// Limits on plan instances: how many run at once, how many the store keeps, and how much one `/part`
/// request may select (docs/operations.md "Limits").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceLimits {
    /// Instances running at once; a start beyond it is refused (429 with Retry-After).
    pub max_running_instances: usize,
    /// Finished instances the store keeps (the oldest beyond it are pruned; 0 = no count limit).
    pub retention_max_instances: u64,
    /// Element paths in one `/part` request.
    pub part_max_paths: usize,
    /// Bytes of one `/part` answer (the selected parts as JSON), checked before it is built.
    pub part_max_bytes: usize,
}

impl Default for InstanceLimits {
    fn default() -> Self {
        InstanceLimits {
            max_running_instances: 10_000,
            retention_max_instances: 1_000_000,
            part_max_paths: 1000,
            part_max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Most days `RetentionDays` may say (100 years; more would overflow date arithmetic).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// The file form of the settings (PascalCase keys, unknown keys rejected).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub plans: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub no_auth: Option<bool>,
    pub body_limit: Option<usize>,
    /// Days to keep finished plan instances (0 = forever).
    pub retention_days: Option<u32>,
    /// Upper bound on `timeoutSeconds` of sync calls, and the default for AD API routes.
    pub sync_timeout_seconds: Option<u64>,
    /// Instances running at once (default 10000).
    pub max_running_instances: Option<usize>,
    /// Finished instances kept in the store (default 1000000; 0 = no count limit).
    pub retention_max_instances: Option<u64>,
    /// Element paths in one `/part` request (default 1000).
    pub part_max_paths: Option<usize>,
    /// Bytes of one `/part` answer (default 16 MiB).
    pub part_max_bytes: Option<usize>,
    /// AD API route -> plan overrides, e.g. `GetUser: MyGetUser`.
    pub ad_routes: Option<BTreeMap<String, String>>,
    /// One section per handler type, e.g. `ActiveDirectory: {Domains: [...]}`. An absent section comes from
    /// its handler's variables (`SYNAPSE_AD_*`).
    pub handlers: Option<HandlersConfig>,
    /// Deprecated spelling of `Handlers: {ActiveDirectory: {Domains: [...]}}` (accepted with a warning; an
    /// error together with `Handlers.ActiveDirectory`).
    pub domains: Option<LegacyDomains>,
    /// Time to send a request's headers (and idle time of a kept-alive connection); default 10s.
    pub header_read_timeout: Option<DurationSpec>,
    /// Time to send a request's body once its headers are in; default 30s.
    pub body_read_timeout: Option<DurationSpec>,
    /// Connections served at once; default 512.
    pub max_connections: Option<usize>,
    /// Host names the server answers to besides its listen address (checked with `--no-auth`, or whenever
    /// given).
    pub allowed_hosts: Option<Vec<String>>,
    /// `Nats: {Url: nats://...}`: dispatch actions to `synapse node` workers over NATS JetStream
    /// (docs/operations.md "Node workers"); `SYNAPSE_NATS_URL` sets or overrides the URL.
    pub nats: Option<synapse_node::NatsSettings>,
    /// `text` (default) or `json`: how the server writes its log (the request log included) to stderr.
    pub log_format: Option<LogFormat>,
}

/// How the server writes its log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, message, fields).
    Json,
}

/// The effective settings.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub plans: PathBuf,
    pub data: PathBuf,
    pub no_auth: bool,
    pub body_limit: usize,
    pub retention_days: u32,
    pub sync_timeout_seconds: u64,
    /// Running and stored instances, `/part` answers.
    pub instance_limits: InstanceLimits,
    pub ad_routes: BTreeMap<String, String>,
    /// The handlers' sections (file, else deprecated keys, else `SYNAPSE_AD_*`).
    pub handlers: HandlersConfig,
    /// Timeouts, the connection limit, allowed host names.
    pub edge: EdgeConfig,
    /// `LogFormat` / `SYNAPSE_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// Dispatch over NATS to node workers when set; in process otherwise.
    pub nats: Option<synapse_node::NatsSettings>,
}

/// A configuration problem, naming the key or variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Command-line values (they win over the file and the environment).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub plans: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub no_auth: bool,
}

impl ServeConfig {
    /// File (if any) < environment < command line.
    pub fn load(
        o: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServeConfig, ConfigError> {
        let file = match &o.config {
            Some(p) => read_file(p)?,
            None => {
                let default = Path::new("synapse.yaml");
                if default.exists() {
                    read_file(default)?
                } else {
                    FileConfig::default()
                }
            }
        };
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let edge = edge_config(&file, &env)?;
        let file_limits = FileLimits {
            max_running_instances: file.max_running_instances,
            retention_max_instances: file.retention_max_instances,
            part_max_paths: file.part_max_paths,
            part_max_bytes: file.part_max_bytes,
        };
        let parse_bool = |key: &str, v: String| {
            synapse_engine::model::parse_bool(&v)
                .ok_or_else(|| err(key, format!("'{v}' is not true or false")))
        };
        let listen = o
            .listen
            .clone()
            .or_else(|| env("SYNAPSE_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen
            .parse()
            .map_err(|e| err("Listen", format!("'{listen}' is not an address:port ({e})")))?;
        let no_auth = if o.no_auth {
            true
        } else if let Some(v) = env("SYNAPSE_NO_AUTH") {
            parse_bool("SYNAPSE_NO_AUTH", v)?
        } else {
            file.no_auth.unwrap_or(false)
        };
        let num = |key: &str, v: Option<String>| -> Result<Option<u64>, ConfigError> {
            v.map(|s| {
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| err(key, format!("'{s}' is not a number")))
            })
            .transpose()
        };
        let body_limit = num("SYNAPSE_BODY_LIMIT", env("SYNAPSE_BODY_LIMIT"))?
            .map(|n| n as usize)
            .or(file.body_limit)
            .unwrap_or(DEFAULT_BODY_LIMIT);
        if !(1024..=64 * 1024 * 1024).contains(&body_limit) {
            return Err(err("BodyLimit", "must be between 1 KiB and 64 MiB"));
        }
        let retention_days = match num("SYNAPSE_RETENTION_DAYS", env("SYNAPSE_RETENTION_DAYS"))? {
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
            None => file.retention_days.unwrap_or(30),
        };
        if retention_days > MAX_RETENTION_DAYS {
            return Err(err(
                "RetentionDays",
                format!("must be at most {MAX_RETENTION_DAYS} (0 = forever)"),
            ));
        }
        let instance_limits = instance_limits(&file_limits, &num, &env)?;
        let sync_timeout_seconds = num(
            "SYNAPSE_SYNC_TIMEOUT_SECONDS",
            env("SYNAPSE_SYNC_TIMEOUT_SECONDS"),
        )?
        .or(file.sync_timeout_seconds)
        .unwrap_or(120);
        if sync_timeout_seconds == 0 || sync_timeout_seconds > 86_400 {
            return Err(err("SyncTimeoutSeconds", "must be between 1 and 86400"));
        }
        let mut handlers = file.handlers.unwrap_or_default();
        if let Some(domains) = file.domains {
            if handlers.active_directory.is_some() {
                return Err(err(
                    "Domains",
                    "is the deprecated spelling of Handlers.ActiveDirectory.Domains; give only Handlers.ActiveDirectory",
                ));
            }
            tracing::warn!(
                "synapse.yaml: the top-level Domains key is deprecated; move it to Handlers: {{ActiveDirectory: {{Domains: [...]}}}}"
            );
            handlers = handlers.with_legacy_domains(domains);
        }
        let handlers = handlers
            .with_env(&env)
            .map_err(|e| err("SYNAPSE_AD_*", e.to_string()))?;
        let log_format = match env("SYNAPSE_LOG_FORMAT") {
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(err(
                        "SYNAPSE_LOG_FORMAT",
                        format!("'{v}' is not one of text, json"),
                    ))
                }
            },
            None => file.log_format.unwrap_or_default(),
        };
        let nats = nats_settings(file.nats, &env)?;
        Ok(ServeConfig {
            listen,
            plans: o
                .plans
                .clone()
                .or_else(|| env("SYNAPSE_PLANS").map(PathBuf::from))
                .or(file.plans)
                .unwrap_or_else(|| "plans".into()),
            data: o
                .data
                .clone()
                .or_else(|| env("SYNAPSE_DATA").map(PathBuf::from))
                .or(file.data)
                .unwrap_or_else(|| "data".into()),
            no_auth,
            body_limit,
            retention_days,
            sync_timeout_seconds,
            instance_limits,
            ad_routes: file.ad_routes.unwrap_or_default(),
            handlers,
            edge,
            log_format,
            nats,
        })
    }

    /// Names and aliases of the configured AD domains, in order (the /ad routes tell
    /// `/{object}/{domain}/{identity}` from membership routes with them).
    pub fn domain_names(&self) -> Vec<String> {
        self.handlers.ad_domain_names()
    }

    /// Refuses `--no-auth` on anything but a loopback address.
    pub fn check_auth(&self) -> Result<(), ConfigError> {
        if self.no_auth && !self.listen.ip().is_loopback() {
            return Err(err(
                "NoAuth",
                format!("refusing to serve without authentication on {}: use a loopback address or API keys", self.listen),
            ));
        }
        Ok(())
    }

    /// `synapse config print`: [`ServeConfig::printable`] as YAML that `--config` reads back (the store file,
    /// derived from Data, is a comment; masked secrets read back as the mask).
    pub fn printable_yaml(&self) -> Result<String, serde_yaml::Error> {
        Ok(format!(
            "# Store: {} (Data/synapse.redb)\n{}",
            self.data.join("synapse.redb").display(),
            serde_yaml::to_string(&self.printable())?
        ))
    }

    /// The effective settings with secrets masked (for `synapse config print`).
    pub fn printable(&self) -> Printable {
        Printable {
            listen: self.listen.to_string(),
            plans: self.plans.display().to_string(),
            data: self.data.display().to_string(),
            no_auth: self.no_auth,
            body_limit: self.body_limit,
            retention_days: self.retention_days,
            sync_timeout_seconds: self.sync_timeout_seconds,
            instance_limits: self.instance_limits,
            ad_routes: self.ad_routes.clone(),
            handlers: self.handlers.printable(),
            header_read_timeout: DurationSpec(self.edge.header_read_timeout).to_string(),
            body_read_timeout: DurationSpec(self.edge.body_read_timeout).to_string(),
            max_connections: self.edge.max_connections,
            allowed_hosts: self.edge.allowed_hosts.clone(),
            log_format: self.log_format,
            nats: self
                .nats
                .as_ref()
                .map(|n| PrintableNats { url: n.url.clone() }),
        }
    }
}

/// The `EdgeConfig` keys: file < environment, each checked against its range.
fn edge_config(
    file: &FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<EdgeConfig, ConfigError> {
    let duration = |key: &str,
                    var: &str,
                    from_file: Option<DurationSpec>,
                    default: Duration,
                    max: Duration|
     -> Result<Duration, ConfigError> {
        let d = match env(var) {
            Some(v) => DurationSpec::parse(&v).map_err(|e| err(var, e))?.0,
            None => from_file.map_or(default, |d| d.0),
        };
        if d < Duration::from_millis(100) || d > max {
            return Err(err(
                key,
                format!("must be between 100ms and {}", DurationSpec(max)),
            ));
        }
        Ok(d)
    };
    let header_read_timeout = duration(
        "HeaderReadTimeout",
        "SYNAPSE_HEADER_READ_TIMEOUT",
        file.header_read_timeout,
        DEFAULT_HEADER_READ_TIMEOUT,
        Duration::from_secs(600),
    )?;
    let body_read_timeout = duration(
        "BodyReadTimeout",
        "SYNAPSE_BODY_READ_TIMEOUT",
        file.body_read_timeout,
        DEFAULT_BODY_READ_TIMEOUT,
        Duration::from_secs(3600),
    )?;
    let max_connections = match env("SYNAPSE_MAX_CONNECTIONS") {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| err("SYNAPSE_MAX_CONNECTIONS", format!("'{v}' is not a number")))?,
        None => file.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
    };
    if !(4..=1_000_000).contains(&max_connections) {
        return Err(err("MaxConnections", "must be between 4 and 1000000"));
    }
    let hosts = match env("SYNAPSE_ALLOWED_HOSTS") {
        Some(v) => v.split(',').map(str::to_string).collect(),
        None => file.allowed_hosts.clone().unwrap_or_default(),
    };
    let mut allowed_hosts = Vec::with_capacity(hosts.len());
    for h in hosts {
        let h = h.trim().to_ascii_lowercase();
        if h.is_empty() {
            continue;
        }
        if h.contains(['/', '@', ' ', '*']) {
            return Err(err(
                "AllowedHosts",
                format!("'{h}' is not a host name or host:port (no scheme, path or wildcard)"),
            ));
        }
        allowed_hosts.push(h);
    }
    Ok(EdgeConfig {
        header_read_timeout,
        body_read_timeout,
        max_connections,
        allowed_hosts,
    })
}

type NumReader<'a> = dyn Fn(&str, Option<String>) -> Result<Option<u64>, ConfigError> + 'a;

/// `MaxRunningInstances`, `RetentionMaxInstances`, `PartMaxPaths`, `PartMaxBytes` (file < `SYNAPSE_*`), each
/// checked against its range.
/// The file's values of [`InstanceLimits`].
struct FileLimits {
    max_running_instances: Option<usize>,
    retention_max_instances: Option<u64>,
    part_max_paths: Option<usize>,
    part_max_bytes: Option<usize>,
}

fn instance_limits(
    file: &FileLimits,
    num: &NumReader<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<InstanceLimits, ConfigError> {
    let d = InstanceLimits::default();
    let read = |key: &str,
                var: &str,
                file: Option<u64>,
                default: u64,
                range: std::ops::RangeInclusive<u64>| {
        let v = num(var, env(var))?.or(file).unwrap_or(default);
        if range.contains(&v) {
            Ok(v)
        } else {
            Err(err(
                key,
                format!("must be between {} and {}", range.start(), range.end()),
            ))
        }
    };
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(InstanceLimits {
        max_running_instances: size(read(
            "MaxRunningInstances",
            "SYNAPSE_MAX_RUNNING_INSTANCES",
            file.max_running_instances.map(as_u64),
            as_u64(d.max_running_instances),
            1..=10_000_000,
        )?),
        retention_max_instances: read(
            "RetentionMaxInstances",
            "SYNAPSE_RETENTION_MAX_INSTANCES",
            file.retention_max_instances,
            d.retention_max_instances,
            0..=u64::from(u32::MAX),
        )?,
        part_max_paths: size(read(
            "PartMaxPaths",
            "SYNAPSE_PART_MAX_PATHS",
            file.part_max_paths.map(as_u64),
            as_u64(d.part_max_paths),
            1..=100_000,
        )?),
        part_max_bytes: size(read(
            "PartMaxBytes",
            "SYNAPSE_PART_MAX_BYTES",
            file.part_max_bytes.map(as_u64),
            as_u64(d.part_max_bytes),
            1024..=1024 * 1024 * 1024,
        )?),
    })
}

fn read_file(p: &Path) -> Result<FileConfig, ConfigError> {
    let key = p.display().to_string();
    let text = std::fs::read_to_string(p).map_err(|e| err(&key, format!("cannot read: {e}")))?;
    serde_yaml::from_str(&text).map_err(|e| err(&key, e.to_string()))
}

/// What `synapse config print` shows.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Printable {
    pub listen: String,
    pub plans: String,
    pub data: String,
    pub no_auth: bool,
    pub body_limit: usize,
    pub retention_days: u32,
    pub sync_timeout_seconds: u64,
    #[serde(flatten)]
    pub instance_limits: InstanceLimits,
    pub ad_routes: BTreeMap<String, String>,
    /// The handlers' sections, secrets masked.
    pub handlers: serde_json::Value,
    pub header_read_timeout: String,
    pub body_read_timeout: String,
    pub max_connections: usize,
    pub allowed_hosts: Vec<String>,
    pub log_format: LogFormat,
    /// `Nats: {Url}` when actions go to node workers (credentials never shown), as synapse.yaml takes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats: Option<PrintableNats>,
}

/// The printed `Nats:` section: the URL only.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrintableNats {
    pub url: String,
}

/// The `Nats:` section with `SYNAPSE_NATS_*` over it; `SYNAPSE_NATS_URL` alone turns NATS dispatch on.
pub fn nats_settings(
    file: Option<synapse_node::NatsSettings>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<synapse_node::NatsSettings>, ConfigError> {
    let mut s = match (file, env("SYNAPSE_NATS_URL").filter(|u| !u.is_empty())) {
        (Some(s), _) => s,
        (None, Some(url)) => synapse_node::NatsSettings::new(url),
        (None, None) => return Ok(None),
    };
    let nats_err = |e: synapse_node::NatsError| ConfigError {
        key: "Nats".into(),
        message: e.to_string(),
    };
    s.apply_env(env).map_err(nats_err)?;
    s.check().map_err(nats_err)?;
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_checks() {
        let env = |k: &str| match k {
            "SYNAPSE_LISTEN" => Some("127.0.0.1:9999".to_string()),
            "SYNAPSE_RETENTION_DAYS" => Some("7".to_string()),
            _ => None,
        };
        let c = ServeConfig::load(&Overrides::default(), &env).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.retention_days, 7);
        let o = Overrides {
            listen: Some("0.0.0.0:1".into()),
            no_auth: true,
            ..Default::default()
        };
        let c = ServeConfig::load(&o, &env).unwrap();
        assert!(
            c.check_auth().is_err(),
            "no-auth on a public address is refused"
        );
        let bad = |k: &str| (k == "SYNAPSE_BODY_LIMIT").then(|| "lots".to_string());
        let e = ServeConfig::load(&Overrides::default(), &bad).unwrap_err();
        assert!(e.to_string().contains("SYNAPSE_BODY_LIMIT"), "{e}");
    }

    #[test]
    fn edge_keys_defaults_ranges_and_variables() {
        let c = ServeConfig::load(&Overrides::default(), &|_| None).unwrap();
        assert_eq!(c.edge, EdgeConfig::default());
        assert_eq!(c.edge.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.edge.body_read_timeout, Duration::from_secs(30));
        assert_eq!(c.edge.max_connections, 512);
        let env = |k: &str| match k {
            "SYNAPSE_HEADER_READ_TIMEOUT" => Some("500ms".to_string()),
            "SYNAPSE_BODY_READ_TIMEOUT" => Some("2m".to_string()),
            "SYNAPSE_MAX_CONNECTIONS" => Some("32".to_string()),
            "SYNAPSE_ALLOWED_HOSTS" => Some("Synapse.Corp, proxy:8443".to_string()),
            _ => None,
        };
        let c = ServeConfig::load(&Overrides::default(), &env).unwrap();
        assert_eq!(c.edge.header_read_timeout, Duration::from_millis(500));
        assert_eq!(c.edge.body_read_timeout, Duration::from_secs(120));
        assert_eq!(c.edge.max_connections, 32);
        assert_eq!(c.edge.allowed_hosts, vec!["synapse.corp", "proxy:8443"]);
        for (var, value, key) in [
            ("SYNAPSE_HEADER_READ_TIMEOUT", "0", "HeaderReadTimeout"),
            (
                "SYNAPSE_HEADER_READ_TIMEOUT",
                "1e20",
                "SYNAPSE_HEADER_READ_TIMEOUT",
            ),
            ("SYNAPSE_BODY_READ_TIMEOUT", "2h", "BodyReadTimeout"),
            ("SYNAPSE_MAX_CONNECTIONS", "1", "MaxConnections"),
            ("SYNAPSE_MAX_CONNECTIONS", "lots", "SYNAPSE_MAX_CONNECTIONS"),
            ("SYNAPSE_ALLOWED_HOSTS", "http://x", "AllowedHosts"),
        ] {
            let e = ServeConfig::load(&Overrides::default(), &|k: &str| {
                (k == var).then(|| value.to_string())
            })
            .unwrap_err();
            assert_eq!(e.key, key, "{var}={value}: {e}");
        }
        let c = load_yaml(
            "edge",
            "HeaderReadTimeout: 5s\nBodyReadTimeout: 10\nMaxConnections: 100\nAllowedHosts: [a.example]\n",
        )
        .unwrap();
        assert_eq!(c.edge.header_read_timeout, Duration::from_secs(5));
        assert_eq!(c.edge.body_read_timeout, Duration::from_secs(10));
        assert_eq!(c.edge.max_connections, 100);
        assert_eq!(c.edge.allowed_hosts, vec!["a.example"]);
    }

    #[test]
    fn instance_limits_and_retention_are_bounded() {
        let c = ServeConfig::load(&Overrides::default(), &|_| None).unwrap();
        assert_eq!(c.instance_limits, InstanceLimits::default());
        assert_eq!(c.instance_limits.max_running_instances, 10_000);
        let c = load_yaml(
            "limits",
            "MaxRunningInstances: 5\nRetentionMaxInstances: 7\nPartMaxPaths: 9\nPartMaxBytes: 4096\n",
        )
        .unwrap();
        assert_eq!(
            c.instance_limits,
            InstanceLimits {
                max_running_instances: 5,
                retention_max_instances: 7,
                part_max_paths: 9,
                part_max_bytes: 4096,
            }
        );
        let printed = serde_yaml::to_string(&c.printable()).unwrap();
        assert!(printed.contains("MaxRunningInstances: 5"), "{printed}");
        // Out of range: refused, naming the key (RetentionDays beyond the calendar used to panic at start).
        for (yaml, key) in [
            ("MaxRunningInstances: 0\n", "MaxRunningInstances"),
            ("PartMaxPaths: 0\n", "PartMaxPaths"),
            ("PartMaxBytes: 10\n", "PartMaxBytes"),
            ("RetentionDays: 4000000000\n", "RetentionDays"),
            ("RetentionDays: 36501\n", "RetentionDays"),
        ] {
            let e = load_yaml("bad-limit", yaml).unwrap_err();
            assert_eq!(e.key, key, "{yaml}: {e}");
        }
        for (var, value) in [
            ("SYNAPSE_RETENTION_DAYS", "4294967297"),
            ("SYNAPSE_MAX_RUNNING_INSTANCES", "-1"),
            ("SYNAPSE_RETENTION_MAX_INSTANCES", "1e9"),
        ] {
            let env = |k: &str| (k == var).then(|| value.to_string());
            assert!(
                ServeConfig::load(&Overrides::default(), &env).is_err(),
                "{var}={value}"
            );
        }
        let env = |k: &str| (k == "SYNAPSE_MAX_RUNNING_INSTANCES").then(|| "3".to_string());
        let c = ServeConfig::load(&Overrides::default(), &env).unwrap();
        assert_eq!(c.instance_limits.max_running_instances, 3);
    }

    fn load_yaml(name: &str, yaml: &str) -> Result<ServeConfig, ConfigError> {
        let dir =
            std::env::temp_dir().join(format!("synapse-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("synapse.yaml");
        std::fs::write(&path, yaml).unwrap();
        let o = Overrides {
            config: Some(path),
            ..Default::default()
        };
        let r = ServeConfig::load(&o, &|_| None);
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    /// One domain entry, indented by `pad` spaces.
    fn domain(pad: usize) -> String {
        let p = " ".repeat(pad);
        format!(
            "{p}- Name: sandbox.local\n{p}  Aliases: [SANDBOX]\n{p}  Urls: ldaps://127.0.0.5\n\
             {p}  BindDn: cn=a,dc=sandbox,dc=local\n{p}  Password: Passw0rd\n"
        )
    }

    #[test]
    fn handlers_section_and_deprecated_domains() {
        let c = load_yaml(
            "handlers",
            &format!("Handlers:\n  ActiveDirectory:\n    Domains:\n{}", domain(4)),
        )
        .unwrap();
        assert_eq!(c.domain_names(), vec!["sandbox.local", "SANDBOX"]);
        let printed = serde_yaml::to_string(&c.printable()).unwrap();
        assert!(printed.contains("Handlers:"), "{printed}");
        assert!(printed.contains("ActiveDirectory:"), "{printed}");
        assert!(!printed.contains("Passw0rd"), "{printed}");

        // The old top-level key still works, as the same section.
        let old = load_yaml("domains", &format!("Domains:\n{}", domain(0))).unwrap();
        assert_eq!(old.domain_names(), c.domain_names());
        assert_eq!(serde_yaml::to_string(&old.printable()).unwrap(), printed);

        // Both: refused.
        let e = load_yaml(
            "both",
            &format!(
                "Handlers:\n  ActiveDirectory: {{}}\nDomains:\n{}",
                domain(0)
            ),
        )
        .unwrap_err();
        assert_eq!(e.key, "Domains");

        // Unknown handler section: refused.
        let e = load_yaml("unknown", "Handlers:\n  ActiveDirectry: {}\n").unwrap_err();
        assert!(e.message.contains("ActiveDirectry"), "{e}");

        // No section, no variables: no domain.
        let none = load_yaml("none", "Handlers: {}\n").unwrap();
        assert!(none.domain_names().is_empty());
    }
}
