//! Requests from foreign origins and hosts are refused (403) when the server runs without keys
//! (`--no-auth`) or `AllowedHosts` is given (docs/decisions.md "Same-origin check").
//!
//! - `Host` must name the server: its listen address, `localhost` / `127.0.0.1` / `[::1]` with its port when
//!   it listens on a loopback (or every) address, or an `AllowedHosts` entry (`name` matches any port,
//!   `name:port` that port). A page whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own name.
//! - `Origin`, when a browser sends one, must be `http(s)://` one of those hosts (`null` is foreign): a
//!   cross-site page's form or `text/plain` POST carries its own origin.
//!
//! Requests without `Host` or `Origin` (curl, scripts, HTTP/1.0) are not browsers and pass.

use crate::http::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The hosts a server answers to, and whether it checks them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SameOrigin {
    /// Off with API keys and no `AllowedHosts`.
    enabled: bool,
    /// `host:port` (lower case) of the listen address and the loopback names.
    exact: Vec<String>,
    /// `AllowedHosts` entries: `name` (any port) or `name:port`.
    allowed: Vec<String>,
}

fn authority(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The host part of `host[:port]` (`[v6]` keeps its brackets).
fn host_part(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(i) => &authority[..=i],
            None => authority,
        };
    }
    authority.split(':').next().unwrap_or(authority)
}

impl SameOrigin {
    pub fn new(listen: SocketAddr, no_auth: bool, allowed_hosts: &[String]) -> SameOrigin {
        let port = listen.port();
        let mut names = vec![authority(listen.ip(), port)];
        if listen.ip().is_loopback() || listen.ip().is_unspecified() {
            names.push(format!("localhost:{port}"));
            names.push(authority(Ipv4Addr::LOCALHOST.into(), port));
            names.push(authority(Ipv6Addr::LOCALHOST.into(), port));
        }
        if port == 80 {
            let bare: Vec<String> = names.iter().map(|a| host_part(a).to_string()).collect();
            names.extend(bare);
        }
        let mut exact: Vec<String> = Vec::with_capacity(names.len());
        for n in names {
            if !exact.contains(&n) {
                exact.push(n);
            }
        }
        SameOrigin {
            enabled: no_auth || !allowed_hosts.is_empty(),
            exact,
            allowed: allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether `host[:port]` (as in `Host` or an origin) names this server.
    pub fn is_own(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if self.exact.contains(&host) {
            return true;
        }
        self.allowed
            .iter()
            .any(|a| *a == host || (host_part(a) == a.as_str() && host_part(&host) == a.as_str()))
    }

    /// The hosts this server answers to, for messages.
    fn names(&self) -> String {
        self.exact
            .iter()
            .chain(self.allowed.iter())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `Ok` for a request from this server's own origin (or one that names none); the refusal otherwise.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        if let Some(host) = headers.get(header::HOST) {
            let text = host.to_str().unwrap_or("");
            if !self.is_own(text) {
                return Err(ApiError::ForeignOrigin(format!(
                    "refused: the Host '{}' is not a name this server answers to ({}); add it to AllowedHosts \
                     if it is this server's name",
                    String::from_utf8_lossy(host.as_bytes()),
                    self.names()
                )));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let text = origin.to_str().unwrap_or("");
            let own = text
                .strip_prefix("http://")
                .or_else(|| text.strip_prefix("https://"))
                .is_some_and(|a| !a.contains('/') && self.is_own(a));
            if !own {
                return Err(ApiError::ForeignOrigin(format!(
                    "refused: the Origin '{}' is not this server's own: requests from other sites' pages are \
                     refused (allowed: http(s)://{})",
                    String::from_utf8_lossy(origin.as_bytes()),
                    self.names()
                )));
            }
        }
        Ok(())
    }
}

/// The layer: refuses foreign `Origin`/`Host` before authentication and before the body is read.
pub async fn same_origin(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match state.origins.check(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => crate::http::edges::shape_for(&state, req.uri().path()).respond(e, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn loopback_names_with_the_port_and_allowed_hosts() {
        let o = SameOrigin::new("127.0.0.1:20000".parse().unwrap(), true, &[]);
        for own in [
            "127.0.0.1:20000",
            "localhost:20000",
            "LOCALHOST:20000",
            "[::1]:20000",
        ] {
            assert!(o.is_own(own), "{own}");
        }
        for foreign in [
            "evil.example:20000",
            "127.0.0.1:20001",
            "localhost",
            "127.0.0.1",
            "evil.example",
        ] {
            assert!(!o.is_own(foreign), "{foreign}");
        }
        let o = SameOrigin::new(
            "127.0.0.1:20000".parse().unwrap(),
            false,
            &["synapse.corp".into(), "proxy.corp:8443".into()],
        );
        assert!(o.is_own("synapse.corp") && o.is_own("synapse.corp:443"));
        assert!(
            o.is_own("proxy.corp:8443") && !o.is_own("proxy.corp:8444") && !o.is_own("proxy.corp")
        );
        assert!(!o.is_own("synapse.corp.evil.example"));
    }

    #[test]
    fn foreign_origin_and_host_are_refused_only_when_checking() {
        let o = SameOrigin::new("127.0.0.1:20000".parse().unwrap(), true, &[]);
        let evil = headers(&[
            (header::HOST, "evil.example:20000"),
            (header::ORIGIN, "http://evil.example"),
        ]);
        let e = o.check(&evil).unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(e.to_string().contains("'evil.example:20000'"), "{e}");
        let e = o
            .check(&headers(&[
                (header::HOST, "127.0.0.1:20000"),
                (header::ORIGIN, "http://evil.example"),
            ]))
            .unwrap_err();
        assert!(
            e.to_string().contains("Origin 'http://evil.example'"),
            "{e}"
        );
        for origin in ["null", "http://127.0.0.1:20000/x", "ftp://127.0.0.1:20000"] {
            let h = headers(&[(header::HOST, "127.0.0.1:20000"), (header::ORIGIN, origin)]);
            assert!(o.check(&h).is_err(), "{origin}");
        }
        for ok in [
            headers(&[
                (header::HOST, "127.0.0.1:20000"),
                (header::ORIGIN, "http://127.0.0.1:20000"),
            ]),
            headers(&[
                (header::HOST, "localhost:20000"),
                (header::ORIGIN, "http://localhost:20000"),
            ]),
            headers(&[(header::HOST, "127.0.0.1:20000")]),
            HeaderMap::new(),
        ] {
            o.check(&ok).unwrap();
        }
        // With API keys and no AllowedHosts nothing is checked.
        let keys = SameOrigin::new("127.0.0.1:20000".parse().unwrap(), false, &[]);
        keys.check(&evil).unwrap();
    }
}
