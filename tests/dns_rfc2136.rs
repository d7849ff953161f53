//! The DnsHandler's RFC 2136 backend through the `/dns` API of a real `synapse serve`, against a real BIND 9
//! (`tests/support/bind.rs`, one `named` per test). Every change is checked independently: `dig +norec` against
//! the server (plain queries, and a TSIG-signed AXFR by dig for whole zones), never through our own client.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::dns::{codes, records};
use crate::support::bind::Bind;
use crate::support::dc::{dc, random_suffix};
use crate::support::serve::{http, Serve};

/// `synapse serve` for these tests, with their JSON helpers.
struct Server(Serve);

/// The `SYNAPSE_DNS_*` variables for `bind` (with `secret` instead of the right one when given).
fn dns_env(bind: &Bind, secret: Option<&str>) -> Vec<(String, String)> {
    vec![
        ("SYNAPSE_DNS_NAME".into(), "bind1".into()),
        ("SYNAPSE_DNS_ADDRESS".into(), bind.addr()),
        (
            "SYNAPSE_DNS_ZONES".into(),
            format!("{},{}", bind.zone, bind.reverse_zone),
        ),
        ("SYNAPSE_DNS_TSIG_KEY_NAME".into(), bind.key_name.clone()),
        (
            "SYNAPSE_DNS_TSIG_SECRET".into(),
            secret.unwrap_or(&bind.secret).to_string(),
        ),
        ("SYNAPSE_DNS_TIMEOUT".into(), "2s".into()),
    ]
}

impl Server {
    /// `synapse serve` with these `SYNAPSE_*` variables only (and the plans of the repository).
    async fn start(env: Vec<(String, String)>) -> Server {
        Server(Serve::start("rfc2136", env).await)
    }

    fn new_dir() -> PathBuf {
        Serve::new_dir("rfc2136")
    }

    /// In `dir` (its `synapse.yaml`, if any, is the configuration).
    async fn start_in(dir: PathBuf, env: Vec<(String, String)>) -> Server {
        Server(Serve::start_in(dir, env).await)
    }

    fn port(&self) -> u16 {
        self.0.port
    }

    async fn req(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        self.0.req(method, path, body.as_deref()).await
    }

    async fn create(&self, zone: &str, body: Value) -> (u16, Value) {
        self.req("POST", &format!("/dns/zones/{zone}/records"), Some(body))
            .await
    }
}

async fn setup() -> (Bind, Server) {
    let bind = Bind::start();
    let s = Server::start(dns_env(&bind, None)).await;
    (bind, s)
}

#[tokio::test]
async fn rfc2136_every_record_operation_checked_with_dig() {
    let (b, s) = setup().await;
    let z = b.zone.clone();
    let serial0 = b.serial(&z);

    // A with its PTR (the reverse zone is on the same server).
    let (st, env) = s
        .create(
            &z,
            json!({"Name": "web", "Type": "A", "Value": "10.77.1.5", "Ttl": 1200}),
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert_eq!(codes(&env), vec![1, 1], "{env:#}");
    assert_eq!(b.dig(&[&format!("web.{z}"), "A"]), vec!["10.77.1.5"]);
    assert_eq!(b.dig(&["-x", "10.77.1.5"]), vec![format!("web.{z}.")]);
    let ttl = b.dig(&[&format!("web.{z}"), "A", "+noshort", "+noall", "+answer"]);
    assert!(ttl[0].contains("1200"), "{ttl:?}");
    assert!(b.serial(&z) > serial0, "the server bumped the serial");

    // Every other type.
    let cases = [
        ("v6", "AAAA", "fd00::15", "fd00::15"),
        ("alias", "CNAME", "web.example.net", "web.example.net."),
        ("@", "MX", "5 mail.example.net", "5 mail.example.net."),
        ("note", "TXT", "hello world", "\"hello world\""),
        (
            "_ldap._tcp",
            "SRV",
            "0 100 389 dc.example.net",
            "0 100 389 dc.example.net.",
        ),
    ];
    for (name, t, v, shown) in cases {
        let (st, env) = s
            .create(
                &z,
                json!({"Name": name, "Type": t, "Value": v, "CreatePtr": false}),
            )
            .await;
        assert_eq!(st, 200, "{t}: {env:#}");
        let fq = if name == "@" {
            z.clone()
        } else {
            format!("{name}.{z}")
        };
        assert_eq!(b.dig(&[&fq, t]), vec![shown.to_string()], "{t}");
    }
    // A PTR on its own in the reverse zone.
    let rz = b.reverse_zone.clone();
    let (st, env) = s
        .create(
            &rz,
            json!({"Name": "9.9", "Type": "PTR", "Value": "printer.example.net"}),
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert_eq!(b.dig(&["-x", "10.77.9.9"]), vec!["printer.example.net."]);

    // Reads: by name and type, by IP, in all zones, the whole zone (AXFR) against dig's own AXFR.
    let (st, env) = s
        .req(
            "GET",
            &format!("/dns/zones/{z}/records?type=A&name=web"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert_eq!(
        records(&env),
        vec![(format!("web.{z}"), "A".into(), "10.77.1.5".into())]
    );
    let (st, env) = s.req("GET", "/dns/records?type=A&ip=10.77.1.5", None).await;
    assert_eq!((st, records(&env).len()), (200, 1), "{env:#}");
    let (st, env) = s
        .req("GET", &format!("/dns/zones/{z}/records/alias/CNAME"), None)
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert_eq!(env["Results"][0]["Records"][0]["Value"], "web.example.net");
    let (st, env) = s.req("GET", &format!("/dns/zones/{z}/records"), None).await;
    assert_eq!(st, 200, "{env:#}");
    let ours: std::collections::BTreeSet<(String, String)> =
        records(&env).into_iter().map(|(n, t, _)| (n, t)).collect();
    let theirs: std::collections::BTreeSet<(String, String)> = b
        .axfr(&z)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].trim_end_matches('.').to_string(), f[1].to_string())
        })
        .collect();
    assert_eq!(ours, theirs, "the API's listing is the zone transfer");
    assert!(ours.contains(&(format!("_ldap._tcp.{z}"), "SRV".into())));

    // A second A value, then delete one value, then all of the type; the PTR goes with its A.
    let (st, _) = s
        .create(
            &z,
            json!({"Name": "web", "Type": "A", "Value": "10.77.1.6"}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        b.dig(&[&format!("web.{z}"), "A"]),
        vec!["10.77.1.5", "10.77.1.6"]
    );
    let before = b.serial(&z);
    let (st, env) = s
        .req(
            "DELETE",
            &format!("/dns/zones/{z}/records/web/A?value=10.77.1.5"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert_eq!(b.dig(&[&format!("web.{z}"), "A"]), vec!["10.77.1.6"]);
    assert!(b.dig(&["-x", "10.77.1.5"]).is_empty(), "PTR gone");
    assert_eq!(b.dig(&["-x", "10.77.1.6"]), vec![format!("web.{z}.")]);
    assert!(b.serial(&z) > before);
    let (st, env) = s
        .req("DELETE", &format!("/dns/zones/{z}/records/web/A"), None)
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert!(b.dig(&[&format!("web.{z}"), "A"]).is_empty());
    assert!(b.dig(&["-x", "10.77.1.6"]).is_empty());
    let (st, _) = s
        .req("DELETE", &format!("/dns/zones/{z}/records/web/A"), None)
        .await;
    assert_eq!(st, 404);
    // Dry run changes nothing.
    let (st, _) = s
        .req(
            "DELETE",
            &format!("/dns/zones/{z}/records/v6/AAAA?dryRun=true"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(b.dig(&[&format!("v6.{z}"), "AAAA"]), vec!["fd00::15"]);
    let (st, _) = s
        .req("DELETE", &format!("/dns/zones/{z}/records/v6/AAAA"), None)
        .await;
    assert_eq!(st, 200);
    assert!(b.dig(&[&format!("v6.{z}"), "AAAA"]).is_empty());

    // An upstream-style DnsActions item (A + PTR by host name only: the zone is found by suffix).
    let actions = json!([{"Action": "add", "RecordType": "AType", "Hostname": format!("up.{z}"),
        "IpAddress": "10.77.3.3", "DnsZone": "", "RequestOwner": "jdoe", "Note": "n"}]);
    let body = json!({"dnsactions": actions.to_string()});
    let (st, res) = s
        .req("POST", "/synapse/execute/DnsActions/start/sync", Some(body))
        .await;
    assert_eq!(st, 200, "{res:#}");
    assert_eq!(b.dig(&[&format!("up.{z}"), "A"]), vec!["10.77.3.3"]);
    assert_eq!(b.dig(&["-x", "10.77.3.3"]), vec![format!("up.{z}.")]);
}

#[tokio::test]
async fn rfc2136_cname_conflicts_and_existing_values_change_nothing() {
    let (b, s) = setup().await;
    let z = b.zone.clone();
    let (st, _) = s
        .create(
            &z,
            json!({"Name": "h1", "Type": "A", "Value": "10.1.1.1", "CreatePtr": false}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .create(
            &z,
            json!({"Name": "c1", "Type": "CNAME", "Value": "h1.example.net"}),
        )
        .await;
    assert_eq!(st, 200);
    let before = b.axfr(&z);
    let serial = b.serial(&z);

    // The same value again: 409, nothing changed.
    let (st, env) = s
        .create(
            &z,
            json!({"Name": "h1", "Type": "A", "Value": "10.1.1.1", "CreatePtr": false}),
        )
        .await;
    assert_eq!((st, codes(&env)), (409, vec![3]), "{env:#}");
    // A CNAME beside data, data beside a CNAME, a second CNAME: 403.
    for body in [
        json!({"Name": "h1", "Type": "CNAME", "Value": "x.example.net"}),
        json!({"Name": "c1", "Type": "A", "Value": "10.1.1.2", "CreatePtr": false}),
        json!({"Name": "c1", "Type": "TXT", "Value": "t"}),
        json!({"Name": "c1", "Type": "CNAME", "Value": "y.example.net"}),
    ] {
        let (st, env) = s.create(&z, body.clone()).await;
        assert_eq!((st, codes(&env)), (403, vec![8]), "{body}: {env:#}");
        let msg = env["Results"][0]["Statuses"][0]["Message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(msg.contains("CNAME"), "{msg}");
    }
    assert_eq!(b.axfr(&z), before);
    assert_eq!(b.serial(&z), serial, "nothing was written");
    assert_eq!(
        b.dig(&[&format!("c1.{z}"), "CNAME"]),
        vec!["h1.example.net."]
    );
}

#[tokio::test]
async fn rfc2136_hostile_names_change_nothing() {
    let (b, s) = setup().await;
    let z = b.zone.clone();
    let before = b.axfr(&z);
    let serial = b.serial(&z);
    let long = "a".repeat(300);
    for name in [
        "*",
        "*.x",
        "a..b",
        long.as_str(),
        "x)(objectClass=*",
        "a,DC=evil",
        "a b",
        "a\\00b",
        "-lead",
        ".",
    ] {
        let (st, env) = s
            .create(&z, json!({"Name": name, "Type": "A", "Value": "10.77.0.1"}))
            .await;
        assert_eq!(st, 400, "{name:?}: {env:#}");
        let (st, _) = s
            .create(&z, json!({"Name": "ok", "Type": "CNAME", "Value": name}))
            .await;
        assert_eq!(st, 400, "value {name:?}");
    }
    for (t, v) in [("A", "10.1.1"), ("AAAA", "fd00:::1"), ("MX", "x y z")] {
        let (st, _) = s
            .create(&z, json!({"Name": "ok", "Type": t, "Value": v}))
            .await;
        assert_eq!(st, 400, "{t} {v}");
    }
    let (st, _) = s
        .create(
            &z,
            json!({"Name": "ok", "Type": "A", "Value": "10.77.0.1", "Ttl": -5}),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(b.axfr(&z), before);
    assert_eq!(b.serial(&z), serial);
}

#[tokio::test]
async fn rfc2136_zones_listed_with_their_backend_and_zone_writes_not_supported() {
    let b = Bind::start();
    // With the fixture DC too: both backends' zones in one list.
    let d = dc();
    let mut env = dns_env(&b, None);
    env.extend([
        ("SYNAPSE_AD_URL".to_string(), d.url.clone()),
        ("SYNAPSE_AD_BIND_DN".to_string(), d.bind_dn.clone()),
        ("SYNAPSE_AD_PASSWORD".to_string(), d.password.clone()),
        ("SYNAPSE_AD_TLS_INSECURE".to_string(), "true".to_string()),
    ]);
    let s = Server::start(env).await;
    let (st, env) = s.req("GET", "/dns/zones", None).await;
    assert_eq!(st, 200, "{env:#}");
    let zones = env["Results"][0]["Zones"].as_array().unwrap().clone();
    let of = |name: &str| zones.iter().find(|z| z["Name"] == name).cloned();
    let rz = of(&b.zone).unwrap_or_else(|| panic!("{zones:#?}"));
    assert_eq!(
        (rz["Backend"].clone(), rz["Server"].clone()),
        (json!("Rfc2136"), json!("bind1"))
    );
    let rev = of(&b.reverse_zone).unwrap();
    assert_eq!(rev["IsReverse"], true);
    let ad = of("sandbox.local").unwrap_or_else(|| panic!("{zones:#?}"));
    assert_eq!(ad["Backend"], "AdIntegrated");

    // One zone: its SOA as the server has it.
    let (st, env) = s.req("GET", &format!("/dns/zones/{}", b.zone), None).await;
    assert_eq!(st, 200, "{env:#}");
    assert_eq!(
        env["Results"][0]["Zone"]["Soa"]["Serial"],
        json!(b.serial(&b.zone))
    );
    let (st, env) = s
        .req("GET", &format!("/dns/zones/{}/exists", b.zone), None)
        .await;
    assert_eq!(
        (st, env["Results"][0]["Exists"].clone()),
        (200, json!(true))
    );

    // Zone create/delete on the RFC 2136 server: 501, nothing changed.
    let before = b.axfr(&b.zone);
    for (method, path, body) in [
        (
            "POST",
            "/dns/zones".to_string(),
            Some(json!({"Name": b.zone})),
        ),
        (
            "POST",
            "/dns/reversezones".to_string(),
            Some(json!({"Network": "10.77.0.0/16"})),
        ),
        ("DELETE", format!("/dns/zones/{}", b.zone), None),
        (
            "DELETE",
            format!("/dns/zones/{}?dryRun=true", b.reverse_zone),
            None,
        ),
    ] {
        let (st, env) = s.req(method, &path, body).await;
        assert_eq!(
            (st, codes(&env)),
            (501, vec![7]),
            "{method} {path}: {env:#}"
        );
        let msg = env["Results"][0]["Statuses"][0]["Message"]
            .as_str()
            .unwrap();
        assert!(msg.contains("RFC 2136") && msg.contains("bind1"), "{msg}");
    }
    assert_eq!(b.axfr(&b.zone), before);
    assert_eq!(b.dig(&[&b.zone, "SOA"]).len(), 1);

    // The seam: an A on BIND paired with its PTR in an AD-integrated reverse zone (created over the API), and
    // unpaired on delete; checked with dig against each server.
    let n = u32::from_str_radix(&random_suffix()[..4], 16).unwrap();
    let (x, y) = ((n >> 8) & 0xff, n & 0xff);
    let (st, env) = s
        .req(
            "POST",
            "/dns/reversezones",
            Some(json!({"Network": format!("10.{x}.{y}.0/24")})),
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    let ip = format!("10.{x}.{y}.21");
    let (st, env) = s
        .create(&b.zone, json!({"Name": "mixed", "Type": "A", "Value": ip}))
        .await;
    assert_eq!((st, codes(&env)), (200, vec![1, 1]), "{env:#}");
    let dig_dc = |args: &[&str]| {
        let out = Command::new("dig")
            .args(["+norec", "+short", "+time=3", "+tries=2"])
            .arg(format!("@{}", d.ip))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        b.dig(&[&format!("mixed.{}", b.zone), "A"]),
        vec![ip.clone()]
    );
    assert_eq!(dig_dc(&["-x", &ip]), format!("mixed.{}.", b.zone));
    let (st, env) = s
        .req(
            "DELETE",
            &format!("/dns/zones/{}/records/mixed/A", b.zone),
            None,
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert!(b.dig(&[&format!("mixed.{}", b.zone), "A"]).is_empty());
    assert_eq!(dig_dc(&["-x", &ip]), "");
    let (st, _) = s
        .req(
            "DELETE",
            &format!("/dns/reversezones/{y}.{x}.10.in-addr.arpa"),
            None,
        )
        .await;
    assert_eq!(st, 200);

    // /readyz reports the server.
    let (st, text) = http(s.port(), "GET", "/readyz", None, None).await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let t = v["Targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["Handler"] == "DnsHandler" && t["Target"] == "bind1")
        .cloned()
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!((st, t["Ready"].clone()), (200, json!(true)), "{v:#}");
}

#[tokio::test]
async fn rfc2136_wrong_tsig_secret_is_a_clear_error_and_changes_nothing() {
    let b = Bind::start();
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let s = Server::start(dns_env(&b, Some(wrong))).await;
    let z = b.zone.clone();
    let before = b.axfr(&z);
    let (st, env) = s
        .create(&z, json!({"Name": "h", "Type": "A", "Value": "10.77.0.9"}))
        .await;
    assert_eq!((st, codes(&env)), (503, vec![10]), "{env:#}");
    let msg = env["Results"][0]["Statuses"][0]["Message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("TSIG") && msg.contains(&b.key_name) && !msg.contains(wrong),
        "{msg}"
    );
    let (st, _) = s.req("GET", &format!("/dns/zones/{z}/records"), None).await;
    assert_eq!(st, 503);
    assert_eq!(b.axfr(&z), before);
    assert!(b.dig(&[&format!("h.{z}"), "A"]).is_empty());
    let (st, text) = http(s.port(), "GET", "/readyz", None, None).await.unwrap();
    assert_eq!(st, 503, "{text}");
    assert!(text.contains("TSIG") && !text.contains(wrong), "{text}");
}

#[tokio::test]
async fn rfc2136_50_concurrent_creates_lose_nothing() {
    let (b, s) = setup().await;
    let z = b.zone.clone();
    let serial0 = b.serial(&z);
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        let z = z.clone();
        tasks.push(tokio::spawn(async move {
            s.create(
                &z,
                json!({"Name": format!("c{i}"), "Type": "A", "Value": format!("10.2.0.{i}"),
                    "CreatePtr": false}),
            )
            .await
        }));
    }
    for t in tasks {
        let (st, env) = t.await.unwrap();
        assert_eq!(st, 200, "{env:#}");
    }
    let all = b.axfr(&z);
    for i in 0..50 {
        assert!(
            all.contains(&format!("c{i}.{z}. A 10.2.0.{i}")),
            "c{i} missing: {all:?}"
        );
    }
    let serial = b.serial(&z);
    assert!(
        serial >= serial0 + 50,
        "one serial per update: {serial0} -> {serial}"
    );
}

#[tokio::test]
async fn rfc2136_server_down_is_a_connection_error_without_hanging() {
    let (b, s) = setup().await;
    let z = b.zone.clone();
    b.kill();
    let t0 = Instant::now();
    let (st, env) = s
        .create(&z, json!({"Name": "h", "Type": "A", "Value": "10.77.0.9"}))
        .await;
    assert_eq!((st, codes(&env)), (503, vec![10]), "{env:#}");
    let msg = env["Results"][0]["Statuses"][0]["Message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("bind1") && msg.contains(&b.addr()), "{msg}");
    let (st, _) = s.req("GET", &format!("/dns/zones/{z}/records"), None).await;
    assert_eq!(st, 503);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "bounded: {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn rfc2136_configured_in_synapse_yaml_with_a_zone_the_server_lacks() {
    let b = Bind::start();
    let dir = Server::new_dir();
    std::fs::write(dir.join("tsig.secret"), format!("{}\n", b.secret)).unwrap();
    let yaml = |extra: &str| {
        format!(
            "Handlers:\n  Dns:\n    Servers:\n    - Name: bind-yaml\n      Address: \"{}\"\n      \
             Zones: [{}, absent.test]\n      TsigKeyName: {}\n      TsigSecretFile: {}\n      Timeout: 2s\n{extra}",
            b.addr(),
            b.zone,
            b.key_name,
            dir.join("tsig.secret").display()
        )
    };
    // An unknown key is refused with its name.
    std::fs::write(dir.join("bad.yaml"), yaml("      TsigSecrt: x\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_synapse"))
        .args(["config", "print", "--config"])
        .arg(dir.join("bad.yaml"))
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("TsigSecrt"), "{err}");
    // config print masks the secret.
    std::fs::write(dir.join("synapse.yaml"), yaml("")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_synapse"))
        .args(["config", "print"])
        .current_dir(&dir)
        .env_remove("SYNAPSE_DNS_ADDRESS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("bind-yaml") && text.contains("absent.test") && !text.contains(&b.secret),
        "{text}"
    );

    let s = Server::start_in(dir, Vec::new()).await;
    let z = b.zone.clone();
    let (st, env) = s
        .create(
            &z,
            json!({"Name": "y1", "Type": "TXT", "Value": "from yaml"}),
        )
        .await;
    assert_eq!(st, 200, "{env:#}");
    assert_eq!(b.dig(&[&format!("y1.{z}"), "TXT"]), vec!["\"from yaml\""]);

    // The zone the server does not serve: 404, Exists false, writes refused by the server (403, rcode named).
    let (st, env) = s.req("GET", "/dns/zones/absent.test", None).await;
    assert_eq!(st, 404, "{env:#}");
    let (st, env) = s.req("GET", "/dns/zones/absent.test/exists", None).await;
    assert_eq!(
        (st, env["Results"][0]["Exists"].clone()),
        (200, json!(false))
    );
    let (st, env) = s
        .create(
            "absent.test",
            json!({"Name": "h", "Type": "A", "Value": "10.9.9.9"}),
        )
        .await;
    assert_eq!((st, codes(&env)), (403, vec![8]), "{env:#}");
    let msg = env["Results"][0]["Statuses"][0]["Message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("REFUSED") || msg.contains("NOTAUTH"), "{msg}");
    let (st, text) = http(s.port(), "GET", "/readyz", None, None).await.unwrap();
    assert_eq!(st, 503, "{text}");
    assert!(
        text.contains("absent.test") && text.contains("bind-yaml"),
        "{text}"
    );
}

#[tokio::test]
async fn rfc2136_a_frozen_server_is_bounded_and_a_lost_update_answer_is_not_repeated() {
    let b = Bind::start();
    let proxy = crate::support::proxy::PausingProxy::start(&b.addr()).await;
    let mut env = dns_env(&b, None);
    for (k, v) in env.iter_mut() {
        if k == "SYNAPSE_DNS_ADDRESS" {
            *v = proxy.addr.to_string();
        }
    }
    let s = Server::start(env).await;
    let z = b.zone.clone();
    let (st, _) = s
        .create(
            &z,
            json!({"Name": "warm", "Type": "A", "Value": "10.3.0.1", "CreatePtr": false}),
        )
        .await;
    assert_eq!(st, 200);

    // Everything held: reads give up after the Timeout (2 s, asked twice), no hang.
    proxy.freeze();
    let t0 = Instant::now();
    let (st, env) = s
        .req("GET", &format!("/dns/zones/{z}/records/warm/A"), None)
        .await;
    assert_eq!((st, codes(&env)), (503, vec![10]), "{env:#}");
    let msg = env["Results"][0]["Statuses"][0]["Message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("no answer within"), "{msg}");
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    proxy.thaw();

    // The create's read passes, its UPDATE reaches the server, the answer is held: 503 saying the outcome is
    // unknown, sent once (not repeated); the server applied it.
    let serial = b.serial(&z);
    proxy.freeze_after_requests(2);
    let (st, env) = s
        .create(
            &z,
            json!({"Name": "lost", "Type": "A", "Value": "10.3.0.2", "CreatePtr": false}),
        )
        .await;
    assert_eq!((st, codes(&env)), (503, vec![10]), "{env:#}");
    let msg = env["Results"][0]["Statuses"][0]["Message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("may or may not have been applied"), "{msg}");
    proxy.thaw();
    assert_eq!(b.dig(&[&format!("lost.{z}"), "A"]), vec!["10.3.0.2"]);
    assert_eq!(b.serial(&z), serial + 1, "one update applied, not repeated");
    // Asked again: it is there (409, nothing changed).
    let (st, _) = s
        .create(
            &z,
            json!({"Name": "lost", "Type": "A", "Value": "10.3.0.2", "CreatePtr": false}),
        )
        .await;
    assert_eq!(st, 409);
}
