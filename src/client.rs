//! The CLI's HTTP/1.1 client for a running server (`synapse token --server`, `synapse schedule ...`):
//! `http://` only (TLS belongs to a proxy in front), one request per connection, bounded in time and size.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

/// A server and the API key to call it with.
pub struct Client {
    host: String,
    prefix: String,
    key: Option<String>,
}

/// A server's answer: its status, and its body parsed as JSON (`Null` when it is not JSON) and as text.
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub text: String,
}

impl Client {
    /// A client of `server` (`http://HOST[:PORT][/prefix]`), calling with `key` when given.
    pub fn new(server: &str, key: Option<String>) -> Result<Client> {
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

    /// One request, whatever the status.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer> {
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
        let auth = self
            .key
            .as_deref()
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\n{auth}Accept: application/json\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.prefix,
            self.host,
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
        let text = String::from_utf8_lossy(&raw[end + 4..]).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, json, text })
    }

    /// One request; the JSON answer when the status is `expect`, otherwise the server's error message.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        expect: u16,
    ) -> Result<Value> {
        let a = self.request(method, path, body)?;
        if a.status != expect {
            let msg = a.json["Error"]["Message"]
                .as_str()
                .map_or_else(|| a.text.clone(), str::to_string);
            bail!("{method} {path}: HTTP {}: {msg}", a.status);
        }
        Ok(a.json)
    }
}

/// Percent-encodes one path segment (a key or schedule name): unreserved characters stay, the rest is `%XX`.
pub fn path_segment(s: &str) -> String {
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
