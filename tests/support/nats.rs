//! A throwaway NATS server with JetStream per test (`tests/fixtures/nats.sh`), and `synapse node` child
//! processes. Each test starts its own server (about 50 ms), so node counts and consumers never mix between
//! tests. A detached reaper stops the server when the test process exits, even after a panic or Ctrl-C; the
//! server also stops itself after 30 minutes.

use crate::support::fixture;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nats.sh")
}

/// A running nats-server (stopped on drop).
pub struct Nats {
    pub url: String,
    pub ip: String,
    pub port: u16,
    pub dir: PathBuf,
}

fn parse(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Nats {
    pub fn start() -> Nats {
        Self::start_with(&[])
    }

    /// With `--user U --password P` and the like.
    pub fn start_with(args: &[&str]) -> Nats {
        for _ in 0..5 {
            let out = Command::new(script())
                .arg("start")
                .args(args)
                .env("NATS_MAX_RUNTIME", "1800")
                .stderr(Stdio::inherit())
                .output()
                .expect("nats.sh runs");
            match out.status.code() {
                Some(0) => {
                    let v = parse(&String::from_utf8_lossy(&out.stdout));
                    let dir = PathBuf::from(&v["NATS_DIR"]);
                    let _ = fixture::spawn_reaper("synapse-nats-reaper", &script(), &dir);
                    return Nats {
                        url: v["NATS_URL"].clone(),
                        ip: v["NATS_IP"].clone(),
                        port: v["NATS_PORT"].parse().unwrap(),
                        dir,
                    };
                }
                Some(3) => continue,
                Some(2) => panic!("nats-server is missing: run tests/fixtures/nats.sh install"),
                c => panic!("nats.sh start failed ({c:?})"),
            }
        }
        panic!("no free loopback address for nats-server after 5 attempts");
    }

    /// Stops it by PID (the store stays), for tests of NATS going away.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.join("pid")).unwrap();
        let _ = Command::new("kill").arg(pid.trim()).status();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end
            && Command::new("kill")
                .args(["-0", pid.trim()])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same address with the same store.
    pub fn restart(&self) {
        let st = Command::new(script())
            .arg("restart")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "nats.sh restart failed");
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        fixture::stop(&script(), &self.dir);
    }
}

/// A `synapse node` child process (killed with SIGKILL on drop unless stopped).
pub struct NodeProc {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl NodeProc {
    /// `synapse node --nats URL --name NAME --labels LABELS` plus `args`, with `env` (the log goes to a file
    /// in `dir`). Waits (at most 10 s) until its heartbeat line is printed.
    pub fn spawn(
        url: &str,
        name: &str,
        labels: &str,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
    ) -> NodeProc {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_synapse"));
        cmd.args(["node", "--nats", url, "--name", name, "--labels", labels])
            .args(args)
            .current_dir(dir)
            .env("SYNAPSE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for k in [
            "SYNAPSE_NATS_URL",
            "SYNAPSE_NATS_USER",
            "SYNAPSE_NATS_PASSWORD",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("synapse node starts");
        let p = NodeProc {
            name: name.to_string(),
            child: Some(child),
            log,
        };
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if p.output().contains("serving") {
                return p;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("node {name} did not start: {}", p.output());
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, wait (at most 30 s) and return how many actions it answered (its exit line).
    pub fn stop(&mut self) -> u64 {
        let Some(mut c) = self.child.take() else {
            return 0;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        let out = self.output();
        out.lines()
            .find_map(|l| {
                l.split_once("drained and stopped after ")
                    .and_then(|(_, r)| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or_else(|| panic!("node {} printed no exit line: {out}", self.name))
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}
