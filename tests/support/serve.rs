//! `synapse serve` as a child process for API tests: the repository's plans, a fresh data directory holding an
//! `execute` key, only the `SYNAPSE_*` variables given, on a free loopback port (another one when the port is
//! taken between the probe and the bind). Killed, and its directory removed, on drop.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::dc::random_suffix;

pub struct Serve {
    pub child: Child,
    pub port: u16,
    /// An `execute` key (Bearer).
    pub key: String,
    pub dir: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_synapse")
}

impl Serve {
    /// A fresh directory `synapse-{prefix}-{random}` under the temp dir.
    pub fn new_dir(prefix: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("synapse-{prefix}-{}", random_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// In a fresh directory (see [`new_dir`](Self::new_dir)), with these `SYNAPSE_*` variables only.
    pub async fn start(prefix: &str, env: Vec<(String, String)>) -> Serve {
        Self::start_in(Self::new_dir(prefix), env).await
    }

    /// In `dir` (its `synapse.yaml`, if any, is the configuration), with these `SYNAPSE_*` variables only.
    pub async fn start_in(dir: PathBuf, env: Vec<(String, String)>) -> Serve {
        let data = dir.join("data");
        let out = Command::new(bin())
            .args([
                "token", "create", "--name", "test", "--roles", "execute", "--data",
            ])
            .arg(&data)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = std::fs::File::create(dir.join(format!("serve-{port}.log"))).unwrap();
            let mut cmd = Command::new(bin());
            cmd.arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--plans")
                .arg(&plans)
                .arg("--data")
                .arg(&data)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            for (k, _) in std::env::vars() {
                if k.starts_with("SYNAPSE_") {
                    cmd.env_remove(k);
                }
            }
            for (k, v) in &env {
                cmd.env(k, v);
            }
            let mut s = Serve {
                child: cmd.spawn().unwrap(),
                port,
                key: key.clone(),
                dir: dir.clone(),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if s.child.try_wait().unwrap().is_some() {
                    break;
                }
                if let Ok((200, _)) = http(port, "GET", "/healthz", None, None).await {
                    return s;
                }
                assert!(Instant::now() < deadline, "synapse serve did not come up");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Port taken between the probe and the bind: try another; keep the directory.
            s.dir = PathBuf::new();
        }
        panic!(
            "synapse serve did not come up: {}",
            std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// One request with the key: (status, the body as JSON, or as a string when it is not JSON).
    pub async fn req(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, text) = http(self.port, method, path, Some(&self.key), body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// One HTTP/1.1 exchange (`Connection: close`), bounded: (status, body).
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let ex = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
        if let Some(k) = key {
            req.push_str(&format!("Authorization: Bearer {k}\r\n"));
        }
        let b = body.unwrap_or("");
        if body.is_some() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len()));
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").ok_or("no header end")?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("no status")?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        Ok::<_, String>((status, body))
    };
    tokio::time::timeout(Duration::from_secs(60), ex)
        .await
        .map_err(|_| "no answer within 60 s".to_string())?
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
