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

#[test]
fn every_route_is_registered_through_routes_macro() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".rs") || name == "tests.rs" {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).unwrap();
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
        let allowed = if name == "mod.rs" { 3 } else { 0 };
        assert_eq!(
            nests, allowed,
            "routes/{name}: nest only the documented routers (mod.rs: execute, ad, and the /myriad alias)"
        );
    }
    assert!(seen >= 4, "{seen} route files");
}
