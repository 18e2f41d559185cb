//! The CLI's HTTP client for the REST API: bearer-token calls to the Cloud API, HTTP
//! Basic calls to a cluster's Kafka REST, lists followed page by page, and errors turned
//! into the envelope's detail.

use anyhow::{anyhow, bail, Context};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Most pages a list follows (100 items each): beyond that the answer is cut and says so.
const MAX_PAGES: usize = 100;

/// How a request authenticates.
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic { key: &'a str, secret: &'a str },
}

pub struct Client {
    http: reqwest::Client,
    /// The API's base URL, without a trailing '/'.
    pub base: String,
}

impl Client {
    pub fn new(base: &str) -> anyhow::Result<Client> {
        let base = base.trim_end_matches('/').to_string();
        // Built without TLS (the dev stack and tests are plain HTTP).
        if !base.starts_with("http://") {
            bail!("--url {base:?} is not an http:// URL, e.g. http://127.0.0.1:9096 (https is not supported yet)");
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client { http, base })
    }

    fn request(&self, method: Method, url: &str, auth: &Auth<'_>) -> RequestBuilder {
        let req = self.http.request(method, url);
        match auth {
            Auth::None => req,
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::Basic { key, secret } => req.basic_auth(key, Some(secret)),
        }
    }

    /// Sends one request to `path` (or a full URL); answers the JSON body (`Null` for an
    /// empty one), or the error envelope's detail.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &Auth<'_>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = if path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self.request(method.clone(), &url, auth);
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the API at {}: {e}; is the control plane running (tributary dev), \
                 and is --url / TRIBUTARY_URL right?",
                self.base
            )
        })?;
        let status = res.status();
        let text = res.text().await.context("reading the answer")?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).with_context(|| {
                format!("{method} {url} answered {status} with a body that is not JSON")
            });
        }
        Err(anyhow!(error_detail(status, &text)))
    }

    /// Every item of a paginated list (`data[]`, following `metadata.next`).
    pub async fn list_all(&self, path: &str, auth: &Auth<'_>) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return Ok(items);
            };
            let page = self.call(Method::GET, &url, auth, None).await?;
            if let Some(data) = page["data"].as_array() {
                items.extend(data.iter().cloned());
            }
            next = page["metadata"]["next"].as_str().map(str::to_string);
        }
        if next.is_some() {
            eprintln!("(showing the first {MAX_PAGES} pages only)");
        }
        Ok(items)
    }
}

/// What to tell the user about a failed call: the envelope's detail, or the status.
fn error_detail(status: StatusCode, body: &str) -> String {
    let detail = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let e = &v["errors"][0];
        e["detail"].as_str().map(|d| match e["code"].as_str() {
            Some(code) => format!("{d} ({} {code})", status.as_u16()),
            None => d.to_string(),
        })
    });
    detail.unwrap_or_else(|| {
        let body = body.trim();
        if body.is_empty() {
            format!("the API answered {status}")
        } else {
            format!(
                "the API answered {status}: {}",
                body.chars().take(300).collect::<String>()
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_show_the_envelope_detail() {
        let body = r#"{"errors":[{"status":"404","code":"not_found","detail":"environment env-x not found"}]}"#;
        assert_eq!(
            error_detail(StatusCode::NOT_FOUND, body),
            "environment env-x not found (404 not_found)"
        );
        assert_eq!(
            error_detail(StatusCode::BAD_GATEWAY, ""),
            "the API answered 502 Bad Gateway"
        );
    }
}
