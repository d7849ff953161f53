//! The `synapse` binary as a user runs it: exit codes, output formats, diagnostics.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn synapse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synapse"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("USER", "tester")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_plan(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("synapse-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn validate_reports_every_problem_with_position_and_fails() {
    let o = synapse(&[
        "plan",
        "validate",
        "plans/hello.yaml",
        "tests/corpus/broken/04-semantic.yaml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("plans/hello.yaml: ok"));
    let err = stderr(&o);
    assert!(err.contains("tests/corpus/broken/04-semantic.yaml:4:13: error: Actions[0].Handler.Type: unknown handler"), "{err}");
    assert!(
        err.lines().filter(|l| l.contains(": error: ")).count() >= 15,
        "{err}"
    );
}

#[test]
fn validate_succeeds_on_good_plans() {
    let o = synapse(&[
        "plan",
        "validate",
        "plans/hello.yaml",
        "plans/examples/branching.yaml",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn run_prints_the_result_tree_as_json_or_yaml() {
    let o = synapse(&["plan", "run", "plans/hello.yaml", "--param", "name=World"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["Status"], "Complete");
    assert_eq!(
        v["Actions"][0]["ExitData"]["Parameters"]["Greeting"],
        "Hello, World!"
    );
    assert_eq!(v["Actions"][0]["ExitData"]["RequestUser"], "tester");

    let o = synapse(&[
        "plan",
        "run",
        "plans/hello.yaml",
        "-p",
        "name=World",
        "--output",
        "yaml",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_yaml::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["DryRun"], true);
}

#[test]
fn run_exit_code_follows_the_plan_status() {
    let o = synapse(&[
        "plan",
        "run",
        "plans/examples/branching.yaml",
        "-p",
        "outcome=bad",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["Status"], "Failed");
}

#[test]
fn run_with_missing_or_invalid_parameters_runs_nothing() {
    let o = synapse(&["plan", "run", "plans/hello.yaml", "-p", "loud=perhaps"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(err.contains("missing required parameter 'name'"), "{err}");
    assert!(err.contains("invalid value for parameter 'loud'"), "{err}");

    let o = synapse(&[
        "plan",
        "run",
        "plans/examples/branching.yaml",
        "-p",
        "outcome=maybe",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not one of the allowed options: Complete, Failed"),
        "{}",
        stderr(&o)
    );

    let o = synapse(&["plan", "run", "plans/hello.yaml", "-p", "novalue"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected NAME=VALUE"));
}

#[test]
fn run_refuses_an_invalid_plan() {
    let p = temp_plan(
        "bad.yaml",
        "Name: x\nActions:\n- Name: a\n  Handler: {Type: Nope}\n",
    );
    let o = synapse(&["plan", "run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(":4:13: error: Actions[0].Handler.Type: unknown handler 'Nope'"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(p.parent().unwrap());
}

#[test]
fn help_lists_dynamic_parameters() {
    let o = synapse(&[
        "plan",
        "help",
        "plans/examples/branching.yaml",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["Name"], "outcome");
    assert_eq!(v[0]["Default"], "Complete");
    assert_eq!(v[0]["Options"][1]["Key"], "bad");

    let o = synapse(&["plan", "help", "plans/hello.yaml"]);
    let text = stdout(&o);
    assert!(text.contains("name  (required)"), "{text}");
    assert!(text.contains("loud  (Boolean, default: false)"), "{text}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let o = synapse(&["plan", "validate", "no/such/plan.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no/such/plan.yaml:1:1: error: cannot read the file"),
        "{}",
        stderr(&o)
    );
}
