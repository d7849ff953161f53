//! EmptyHandler actions over NATS to `synapse node` workers vs in process (bench/nodes.sh runs it with 1 and
//! 3 nodes already started). Prints throughput (actions/s) and the added per-action latency (p50/p99 of
//! sequential one-action runs minus the in-process ones), with ratios against in-process measured in the same
//! run.
//!
//! Usage: nodes_bench NATS_URL NODES [ACTIONS]

use std::sync::Arc;
use std::time::{Duration, Instant};
use synapse_engine::{Executor, Plan, RunOptions};

fn plan(n: usize) -> Plan {
    let mut y = String::from("Name: bench\nActions:\n");
    for i in 0..n {
        y.push_str(&format!(
            "- Name: a{i}\n  Handler: {{Type: EmptyHandler}}\n"
        ));
    }
    match synapse_engine::load::load_str(&y, "bench.yaml") {
        Ok(l) => l.plan,
        Err(e) => {
            eprintln!("{e:?}");
            std::process::exit(2)
        }
    }
}

async fn throughput(exec: &Executor, p: &Plan) -> f64 {
    let t = Instant::now();
    let r = exec.run(p, RunOptions::default()).await;
    let secs = t.elapsed().as_secs_f64();
    match r {
        Ok(r) if r.status == synapse_engine::StatusType::Complete => {}
        other => {
            eprintln!("bench run failed: {other:?}");
            std::process::exit(1)
        }
    }
    p.actions.len() as f64 / secs
}

async fn latencies(exec: &Executor, n: usize) -> Vec<f64> {
    let p = plan(1);
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let _ = exec.run(&p, RunOptions::default()).await;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(nodes)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: nodes_bench NATS_URL NODES [ACTIONS]");
        std::process::exit(2)
    };
    let actions: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let nodes: usize = nodes.parse().unwrap_or(1);
    let reg = Arc::new(synapse_handlers::builtin_registry());
    let local = Executor::in_process(reg.clone());
    let settings = synapse_node::NatsSettings::new(url.clone());
    let client = match synapse_node::connect(&settings, "bench").await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    let d = match synapse_node::NatsDispatcher::start(client, reg.clone(), &settings).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end && d.directory().list().iter().filter(|n| !n.lost).count() < nodes {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let remote = Executor::new(reg, Arc::new(d));
    let p = plan(actions);
    // Warm up both paths.
    throughput(&local, &plan(200)).await;
    throughput(&remote, &plan(200)).await;
    let tl = throughput(&local, &p).await;
    let tr = throughput(&remote, &p).await;
    let ll = latencies(&local, 500).await;
    let lr = latencies(&remote, 500).await;
    let (l50, l99, r50, r99) = (pct(&ll, 0.5), pct(&ll, 0.99), pct(&lr, 0.5), pct(&lr, 0.99));
    println!("nodes={nodes} actions={actions}");
    println!(
        "throughput: in-process {tl:.0} actions/s, NATS {tr:.0} actions/s (ratio {:.3})",
        tr / tl
    );
    println!(
        "one-action run latency ms: in-process p50 {l50:.3} p99 {l99:.3}; NATS p50 {r50:.3} p99 {r99:.3}; added p50 {:.3} p99 {:.3}",
        r50 - l50,
        r99 - l99
    );
}
