//! Every route goes through utoipa-axum's `routes!`, so the router and its OpenAPI document cannot drift.
//! tests/api.rs probes the router around the documented paths; a route with a path segment the document
//! never mentions cannot be found that way, hence this look at the source.

/// Registrations that bypass the document. The `/myriad` alias in mod.rs is the one deliberate exception.
const BYPASSES: &[&str] = &[
    ".route(",
    ".route_service(",
    ".nest_service(",
    "axum::routing::",
];

/// Every `.rs` file under `dir`, as (path relative to `root`, text).
fn sources(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

#[test]
fn every_route_is_registered_through_routes_macro() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    let mut seen = 0;
    for (name, text) in files {
        if name == "tests.rs" {
            continue;
        }
        seen += 1;
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for bad in BYPASSES {
                assert!(
                    !code.contains(bad),
                    "routes/{name}:{}: `{bad}` registers a route outside the OpenAPI document; use \
                     OpenApiRouter::routes(routes!(handler)) with #[utoipa::path] on the handler",
                    i + 1
                );
            }
        }
        let nests = text.matches(".nest(").count();
        let allowed = if name == "mod.rs" { 5 } else { 0 };
        assert_eq!(
            nests, allowed,
            "routes/{name}: nest only the documented routers (mod.rs: execute, ad, dns, schedules, and the /myriad alias)"
        );
    }
    assert!(seen >= 6, "{seen} route files");
}
