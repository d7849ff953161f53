//! Executor benchmarks (issue goals: 1-action plan < 20 µs, 100-action tree < 2 ms, ForEach over 1,000 values
//! < 10 ms). A no-op handler isolates the engine's own cost: resolve, dispatch, roll-up, result tree.

#![allow(clippy::unwrap_used)] // a benchmark, not library code: setup failures should abort loudly
use async_trait::async_trait;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::Value;
use std::hint::black_box;
use std::sync::Arc;
use synapse_engine::{
    load, ActionContext, BasicDescriptor, DynamicParams, ExecuteResult, Executor, Handler,
    HandlerDescriptor, HandlerRegistry, RunOptions, StatusType,
};

struct Noop;

#[async_trait]
impl Handler for Noop {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        Arc::new(BasicDescriptor {
            name: "NoopHandler",
            aliases: &[],
        })
    }
    async fn execute(&self, _: &ActionContext, _: Value, _: Value) -> ExecuteResult {
        ExecuteResult::new(StatusType::Complete)
    }
}

fn executor() -> Executor {
    let mut r = HandlerRegistry::new();
    r.register(Arc::new(Noop));
    Executor::in_process(Arc::new(r))
}

fn one_action() -> String {
    r#"
Name: one
Actions:
- Name: get
  Handler: {Type: Noop}
  Parameters:
    Values: {Filter: '(sAMAccountName=~~user~~)', ReturnObjects: true}
    Dynamic: [{Source: ou, Target: Ou, Default: {Value: Synapse}}]
"#
    .to_string()
}

/// 100 actions: 10 roots, each with 9 children.
fn hundred_actions() -> String {
    let mut s = String::from("Name: tree\nActions:\n");
    for i in 0..10 {
        s.push_str(&format!(
            "- Name: root{i}\n  Handler: {{Type: Noop}}\n  Parameters: {{Values: {{N: {i}}}}}\n  Actions:\n"
        ));
        for j in 0..9 {
            s.push_str(&format!(
                "  - Name: child{i}-{j}\n    ExecuteCase: Complete\n    Handler: {{Type: Noop}}\n    Parameters: {{Values: {{N: {j}}}}}\n"
            ));
        }
    }
    s
}

fn for_each_1000() -> String {
    let values: Vec<String> = (0..1000).map(|i| format!("host{i}")).collect();
    format!(
        "Name: fan\nActions:\n- Name: per-host\n  Handler: {{Type: Noop}}\n  Parameters:\n    Values: {{Host: null}}\n    ForEach: [{{Target: Host, Values: [{}]}}]\n",
        values.join(", ")
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let exec = executor();
    let inputs: DynamicParams = [("user", "mfox")].into_iter().collect();

    for (name, yaml) in [
        ("run/1-action", one_action()),
        ("run/100-action-tree", hundred_actions()),
        ("run/foreach-1000", for_each_1000()),
    ] {
        let plan = load::load_str(&yaml, "bench.yaml").unwrap().plan;
        c.bench_function(name, |b| {
            b.iter(|| {
                let opts = RunOptions {
                    inputs: inputs.clone(),
                    ..Default::default()
                };
                let r = rt.block_on(exec.run(&plan, opts)).unwrap();
                black_box(r)
            })
        });
    }

    let yaml = hundred_actions();
    c.bench_function("load/100-action-plan", |b| {
        b.iter(|| black_box(load::load_str(black_box(&yaml), "bench.yaml").unwrap()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
