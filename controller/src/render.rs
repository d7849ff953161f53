//! Response rendering: JSON (default), YAML or XML, chosen by `?outputtype=` (the AD API's flag) or the
//! `Accept` header; `?prettyprint=true` indents JSON.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// How to render a response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Yaml,
    Xml,
}

impl Format {
    /// From `outputtype` (case-insensitive), else the Accept header, else JSON.
    pub fn choose(outputtype: Option<&str>, headers: &HeaderMap) -> Result<Format, String> {
        if let Some(t) = outputtype.map(str::trim).filter(|t| !t.is_empty()) {
            return match t.to_ascii_lowercase().as_str() {
                "json" => Ok(Format::Json),
                "yaml" => Ok(Format::Yaml),
                "xml" => Ok(Format::Xml),
                other => Err(format!(
                    "outputtype '{other}' is not one of json, yaml, xml"
                )),
            };
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Ok(if accept.contains("yaml") {
            Format::Yaml
        } else if accept.contains("xml") && !accept.contains("json") {
            Format::Xml
        } else {
            Format::Json
        })
    }
}

/// Renders `value` with `status` in `format`.
pub fn render(status: StatusCode, value: &Value, format: Format, pretty: bool) -> Response {
    let (body, ctype) = match format {
        Format::Json => {
            let text = if pretty {
                serde_json::to_string_pretty(value)
            } else {
                serde_json::to_string(value)
            };
            (text.unwrap_or_default(), "application/json")
        }
        Format::Yaml => (
            serde_yaml::to_string(value).unwrap_or_default(),
            "application/yaml",
        ),
        Format::Xml => (
            synapse_handlers::format::xml::to_xml("Response", value, pretty),
            "application/xml",
        ),
    };
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp
}
