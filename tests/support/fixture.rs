//! What the wrappers of the fixture scripts share (`samba-dc.sh`, `nats.sh`, `bind9.sh`): a reaper that runs
//! `SCRIPT stop DIR` once this test process is gone, and the same stop on drop.

use std::path::Path;
use std::process::{Command, Stdio};

/// `script stop dir`, quietly (on drop: errors have nowhere to go).
pub fn stop(script: &Path, dir: &Path) {
    let _ = Command::new(script)
        .arg("stop")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs `script stop dir` once this process is gone. The shell runs in its own session (`setsid`), so it
/// outlives Ctrl-C and the harness; its output goes nowhere, so it never holds a pipe of cargo's open. `name`
/// is the shell's process name (`synapse-dc-reaper`, ...).
pub fn spawn_reaper(name: &str, script: &Path, dir: &Path) -> std::io::Result<()> {
    Command::new("setsid")
        .arg("sh")
        .arg("-c")
        .arg(r#"while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; exec "$2" stop "$3""#)
        .arg(name)
        .arg(std::process::id().to_string())
        .arg(script)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|_| ())
}
