//! A throwaway BIND 9 server per test (`tests/fixtures/bind9.sh`): `named` on 127.0.0.1 and a free port, a
//! forward and a reverse zone updatable and transferable with one TSIG key. Stopped by PID on drop; a detached
//! reaper stops it when the test process exits (even after a panic), and named stops itself after 30 minutes.

use crate::support::fixture;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::dc::random_suffix;

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bind9.sh")
}

/// A running named (stopped on drop).
pub struct Bind {
    pub address: String,
    pub port: u16,
    pub dir: PathBuf,
    pub zone: String,
    pub reverse_zone: String,
    pub key_name: String,
    pub secret: String,
}

fn parse(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A port nothing listens on (TCP and UDP) right now.
fn free_port() -> u16 {
    for _ in 0..50 {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

impl Bind {
    pub fn start() -> Bind {
        for _ in 0..5 {
            let dir = std::env::temp_dir().join(format!("synapse-bind.{}", random_suffix()));
            let port = free_port();
            let out = Command::new(script())
                .arg("start")
                .arg(&dir)
                .arg("127.0.0.1")
                .arg(port.to_string())
                .env("BIND_MAX_RUNTIME", "1800")
                .stderr(Stdio::inherit())
                .output()
                .expect("bind9.sh runs");
            match out.status.code() {
                Some(0) => {
                    let v = parse(&String::from_utf8_lossy(&out.stdout));
                    let _ = fixture::spawn_reaper("synapse-bind-reaper", &script(), &dir);
                    return Bind {
                        address: v["BIND_ADDRESS"].clone(),
                        port: v["BIND_PORT"].parse().unwrap(),
                        dir,
                        zone: v["BIND_ZONE"].clone(),
                        reverse_zone: v["BIND_REVERSE_ZONE"].clone(),
                        key_name: v["BIND_KEY_NAME"].clone(),
                        secret: v["BIND_KEY_SECRET"].clone(),
                    };
                }
                Some(3) => continue,
                Some(2) => panic!("named is missing: run tests/fixtures/bind9.sh install"),
                c => panic!("bind9.sh start failed ({c:?})"),
            }
        }
        panic!("no free port for named after 5 attempts");
    }

    /// `host:port` for the configuration.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }

    /// Stops it by PID now (the directory stays until drop), for tests of a server going away.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.join("pid")).unwrap();
        let _ = Command::new("kill").arg(pid.trim()).status();
        for _ in 0..100 {
            let alive = Command::new("kill")
                .args(["-0", pid.trim()])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    }

    /// `dig +norec @address -p port ARGS +short`: the answer lines, and whether the answer was authoritative
    /// (from a second, full run).
    pub fn dig(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new("dig")
            .arg("+norec")
            .arg("+short")
            .arg("+time=2")
            .arg("+tries=1")
            .arg(format!("@{}", self.address))
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("dig runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut v: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    /// The zone's SOA serial (dig).
    pub fn serial(&self, zone: &str) -> u32 {
        let soa = self.dig(&[zone, "SOA"]);
        soa.first()
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no SOA for {zone}: {soa:?}"))
    }

    /// Every record of the zone from a TSIG-signed AXFR by dig (`name type value` lines, SOA left out).
    pub fn axfr(&self, zone: &str) -> Vec<String> {
        let out = Command::new("dig")
            .arg(format!("@{}", self.address))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-y")
            .arg(format!("hmac-sha256:{}:{}", self.key_name, self.secret))
            .args([zone, "AXFR", "+time=2", "+tries=1"])
            .output()
            .expect("dig runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut v: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 5 && f[3] != "SOA" && f[3] != "TSIG")
                    .then(|| format!("{} {} {}", f[0], f[3], f[4..].join(" ")))
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        fixture::stop(&script(), &self.dir);
    }
}
