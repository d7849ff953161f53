//! The DnsHandler's section of `synapse.yaml`: standard DNS servers updated over RFC 2136 (BIND and the like).
//! Zones not listed here stay AD-integrated (the ActiveDirectory section's domains, no configuration).
//!
//! ```yaml
//! Handlers:
//!   Dns:
//!     Servers:
//!     - Name: bind1
//!       Address: 127.0.0.1:53           # host:port (an IP literal or a host name)
//!       Zones: [example.test, 2.1.10.in-addr.arpa]
//!       TsigKeyName: synapse-key
//!       TsigAlgorithm: hmac-sha256      # the default; hmac-sha384 and hmac-sha512 too
//!       TsigSecretFile: /run/secrets/synapse-tsig   # or TsigSecret: <base64>
//!       Timeout: 5s                     # per exchange (default 5 s)
//! ```
//!
//! Without the section: one server from `SYNAPSE_DNS_ADDRESS`, `SYNAPSE_DNS_ZONES`, `SYNAPSE_DNS_TSIG_KEY_NAME`,
//! `SYNAPSE_DNS_TSIG_SECRET` or `SYNAPSE_DNS_TSIG_SECRET_FILE`, optional `SYNAPSE_DNS_NAME`,
//! `SYNAPSE_DNS_TSIG_ALGORITHM`, `SYNAPSE_DNS_TIMEOUT`.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::values::{parse_duration, resolve_secret, DurationValue, OneOrMany, Secret};
use crate::dns::name;
use crate::error::Error;

/// Default time for one exchange with a server (connect, send, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `Handlers.Dns` section.
#[derive(Clone, Debug, Default)]
pub struct DnsSection {
    pub servers: Vec<ServerSettings>,
}

/// One RFC 2136 server, checked: every field valid, the secret decoded.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub name: String,
    /// `host:port` as configured (resolved at each connect).
    pub address: String,
    /// Lower case, no trailing dot.
    pub zones: Vec<String>,
    pub key_name: String,
    /// `hmac-sha256`, `hmac-sha384` or `hmac-sha512`.
    pub algorithm: String,
    /// The decoded key bytes (masked in Debug).
    pub secret: Secret,
    pub timeout: Duration,
}

/// The algorithms the backend signs with.
pub const ALGORITHMS: [&str; 3] = ["hmac-sha256", "hmac-sha384", "hmac-sha512"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawSection {
    #[serde(default)]
    servers: Vec<RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawServer {
    #[serde(default)]
    name: Option<String>,
    address: String,
    zones: OneOrMany,
    tsig_key_name: String,
    #[serde(default)]
    tsig_algorithm: Option<String>,
    #[serde(default)]
    tsig_secret: Option<Secret>,
    #[serde(default)]
    tsig_secret_file: Option<PathBuf>,
    #[serde(default)]
    timeout: Option<DurationValue>,
}

impl<'de> Deserialize<'de> for DnsSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawSection::deserialize(d)?;
        let mut servers = Vec::with_capacity(raw.servers.len());
        for (i, s) in raw.servers.into_iter().enumerate() {
            let secret = resolve_secret(
                s.tsig_secret,
                s.tsig_secret_file,
                "TsigSecret",
                "TsigSecretFile",
            )
            .map_err(serde::de::Error::custom)?;
            let timeout = match s.timeout {
                Some(t) => t.resolve("Timeout").map_err(serde::de::Error::custom)?,
                None => DEFAULT_TIMEOUT,
            };
            let server = ServerSettings::build(
                s.name.unwrap_or_else(|| format!("dns{}", i + 1)),
                s.address,
                s.zones.into_list(),
                s.tsig_key_name,
                s.tsig_algorithm,
                secret,
                timeout,
            )
            .map_err(serde::de::Error::custom)?;
            servers.push(server);
        }
        let section = DnsSection { servers };
        section.validate().map_err(serde::de::Error::custom)?;
        Ok(section)
    }
}

/// `host:port` with a port: an IP literal (`[v6]:port` for IPv6) or a host name.
fn check_address(a: &str) -> Result<String, String> {
    let a = a.trim();
    if let Ok(sa) = a.parse::<std::net::SocketAddr>() {
        if sa.port() == 0 {
            return Err(format!("'{a}' has port 0"));
        }
        return Ok(a.to_string());
    }
    let Some((host, port)) = a.rsplit_once(':') else {
        return Err(format!("'{a}' is not host:port"));
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return Err(format!("'{a}': '{port}' is not a port")),
    }
    if host.contains(':') || host.is_empty() {
        return Err(format!(
            "'{a}' is not host:port (write IPv6 as [addr]:port)"
        ));
    }
    name::check_name("Address", host).map_err(|e| format!("'{a}': {e}"))?;
    Ok(a.to_string())
}

impl ServerSettings {
    /// A server from its parts; errors name the field.
    pub fn build(
        name: String,
        address: String,
        zones: Vec<String>,
        key_name: String,
        algorithm: Option<String>,
        secret: Secret,
        timeout: Duration,
    ) -> Result<ServerSettings, Error> {
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(Error::config("Name", "is empty"));
        }
        let address = check_address(&address).map_err(|m| Error::config("Address", m))?;
        if zones.is_empty() {
            return Err(Error::config("Zones", "lists no zone"));
        }
        let mut checked = Vec::with_capacity(zones.len());
        for z in zones {
            let z = name::check_name("Zones", &z).map_err(|m| Error::config("Zones", m))?;
            if checked.contains(&z) {
                return Err(Error::config("Zones", format!("{z} is listed twice")));
            }
            checked.push(z);
        }
        let key_name = name::check_name("TsigKeyName", &key_name)
            .map_err(|m| Error::config("TsigKeyName", m))?;
        let algorithm = algorithm
            .map(|a| a.trim().to_ascii_lowercase())
            .unwrap_or_else(|| ALGORITHMS[0].to_string());
        if !ALGORITHMS.contains(&algorithm.as_str()) {
            return Err(Error::config(
                "TsigAlgorithm",
                format!("'{algorithm}' is not supported (use one of {ALGORITHMS:?})"),
            ));
        }
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.expose().trim())
            .map_err(|e| Error::config("TsigSecret", format!("is not base64: {e}")))?;
        if key.is_empty() {
            return Err(Error::config("TsigSecret", "is empty"));
        }
        Ok(ServerSettings {
            name,
            address,
            zones: checked,
            key_name,
            algorithm,
            secret: Secret::new(base64::engine::general_purpose::STANDARD.encode(key)),
            timeout,
        })
    }

    /// The key bytes.
    pub fn key(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(self.secret.expose())
            .unwrap_or_default()
    }

    /// As `synapse config print` shows it (the secret masked).
    pub fn printable(&self) -> Map<String, Value> {
        let v = json!({
            "Name": self.name, "Address": self.address, "Zones": self.zones,
            "TsigKeyName": self.key_name, "TsigAlgorithm": self.algorithm,
            "TsigSecret": synapse_engine::MASK, "Timeout": format!("{}ms", self.timeout.as_millis()),
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

impl DnsSection {
    /// Server names unique, every zone served by one server.
    pub fn validate(&self) -> Result<(), Error> {
        let mut names = std::collections::HashSet::new();
        let mut zones = std::collections::HashMap::new();
        for s in &self.servers {
            if !names.insert(s.name.to_ascii_lowercase()) {
                return Err(Error::config(
                    "Servers",
                    format!("two servers are named {}", s.name),
                ));
            }
            for z in &s.zones {
                if let Some(other) = zones.insert(z.clone(), s.name.clone()) {
                    return Err(Error::config(
                        "Zones",
                        format!("zone {z} is listed by servers {other} and {}", s.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The section from `SYNAPSE_DNS_*` read through `lookup`; `None` when `SYNAPSE_DNS_ADDRESS` is unset.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let Some(address) = get("SYNAPSE_DNS_ADDRESS") else {
            return Ok(None);
        };
        let need = |k: &str| get(k).ok_or_else(|| Error::config(k, "is not set"));
        let secret = resolve_secret(
            get("SYNAPSE_DNS_TSIG_SECRET").map(Secret::from),
            get("SYNAPSE_DNS_TSIG_SECRET_FILE").map(PathBuf::from),
            "SYNAPSE_DNS_TSIG_SECRET",
            "SYNAPSE_DNS_TSIG_SECRET_FILE",
        )?;
        let timeout = match get("SYNAPSE_DNS_TIMEOUT") {
            Some(t) => parse_duration(&t).map_err(|m| Error::config("SYNAPSE_DNS_TIMEOUT", m))?,
            None => DEFAULT_TIMEOUT,
        };
        let server = ServerSettings::build(
            get("SYNAPSE_DNS_NAME").unwrap_or_else(|| "dns1".into()),
            address,
            crate::config::values::split_list(&need("SYNAPSE_DNS_ZONES")?),
            need("SYNAPSE_DNS_TSIG_KEY_NAME")?,
            get("SYNAPSE_DNS_TSIG_ALGORITHM"),
            secret,
            timeout,
        )
        .map_err(|e| match e {
            Error::Config { field, message } => Error::config(
                format!(
                    "SYNAPSE_DNS_{}",
                    match field.as_str() {
                        "TsigKeyName" => "TSIG_KEY_NAME",
                        "TsigAlgorithm" => "TSIG_ALGORITHM",
                        "TsigSecret" => "TSIG_SECRET",
                        "Zones" => "ZONES",
                        "Address" => "ADDRESS",
                        _ => "NAME",
                    }
                ),
                message,
            ),
            other => other,
        })?;
        Ok(Some(DnsSection {
            servers: vec![server],
        }))
    }

    /// As `synapse config print` shows it.
    pub fn printable(&self) -> Value {
        json!({"Servers": self.servers.iter().map(|s| Value::Object(s.printable())).collect::<Vec<_>>()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";

    #[test]
    fn yaml_shape_and_errors() {
        let s: DnsSection = serde_yaml::from_str(&format!(
            "Servers:\n- Name: b1\n  Address: 127.0.0.1:5353\n  Zones: [Example.Test., 1.10.in-addr.arpa]\n  \
             TsigKeyName: k1\n  TsigSecret: {SECRET}\n  Timeout: 2s\n"
        ))
        .unwrap();
        let b = &s.servers[0];
        assert_eq!(b.zones, vec!["example.test", "1.10.in-addr.arpa"]);
        assert_eq!(b.algorithm, "hmac-sha256");
        assert_eq!(b.timeout, Duration::from_secs(2));
        assert_eq!(b.key(), b"secret-secret-secret-secret-1234");
        let printed = s.printable().to_string();
        assert!(!printed.contains(SECRET), "{printed}");
        assert!(!format!("{s:?}").contains(SECRET));

        let bad = |yaml: String, field: &str| {
            let e = serde_yaml::from_str::<DnsSection>(&yaml)
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{field}: {e}");
        };
        let base = |extra: &str, addr: &str, secret: &str| {
            format!(
                "Servers:\n- Address: \"{addr}\"\n  Zones: a.test\n  TsigKeyName: k\n  TsigSecret: \"{secret}\"\n{extra}"
            )
        };
        bad(base("  Tsig: x\n", "127.0.0.1:53", SECRET), "Tsig");
        bad(base("", "127.0.0.1", SECRET), "Address");
        bad(base("", "127.0.0.1:0", SECRET), "Address");
        bad(base("", "h:x", SECRET), "Address");
        bad(base("", "127.0.0.1:53", "not base64!"), "TsigSecret");
        bad(
            base("  TsigAlgorithm: hmac-md5\n", "127.0.0.1:53", SECRET),
            "TsigAlgorithm",
        );
        bad(
            "Servers:\n- Address: h:53\n  Zones: '*.x'\n  TsigKeyName: k\n  TsigSecret: a2V5\n"
                .into(),
            "Zones",
        );
        assert!(serde_yaml::from_str::<DnsSection>(&base("", "[::1]:53", SECRET)).is_ok());
        assert!(serde_yaml::from_str::<DnsSection>(&base("", "ns1.example:53", SECRET)).is_ok());
    }

    #[test]
    fn env() {
        let vars = |k: &str| match k {
            "SYNAPSE_DNS_ADDRESS" => Some("127.0.0.1:53".to_string()),
            "SYNAPSE_DNS_ZONES" => Some("a.test, b.test".to_string()),
            "SYNAPSE_DNS_TSIG_KEY_NAME" => Some("k".to_string()),
            "SYNAPSE_DNS_TSIG_SECRET" => Some(SECRET.to_string()),
            _ => None,
        };
        let s = DnsSection::from_lookup(&vars).unwrap().unwrap();
        assert_eq!(s.servers[0].zones, vec!["a.test", "b.test"]);
        assert!(DnsSection::from_lookup(&|_: &str| None).unwrap().is_none());
        let e =
            DnsSection::from_lookup(&|k: &str| (k == "SYNAPSE_DNS_ADDRESS").then(|| "h:1".into()))
                .unwrap_err()
                .to_string();
        assert!(e.contains("SYNAPSE_DNS_TSIG_SECRET"), "{e}");
    }
}
