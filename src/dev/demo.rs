//! `tributary dev --demo`: a demo tenant made the way a new user makes one, through the
//! control plane's REST API (sign up, log in, environment, Basic cluster, wait for
//! PROVISIONED, a cluster API key), then kcat commands that work as printed.
//!
//! The credentials are kept in `DATA_DIR/demo.json` (mode 0600) and reused when the stack
//! restarts, so the demo survives like every other piece of data. Talks only to the REST
//! API (`crate::cli::client`); never to the cell or brokers directly.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::client::{Auth, Client};

const EMAIL: &str = "demo@tributary.local";
/// How long the demo cluster may take to be PROVISIONED.
const PROVISION_TIMEOUT: Duration = Duration::from_secs(60);

/// The demo tenant, as saved in `demo.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Demo {
    pub email: String,
    pub password: String,
    pub cluster: String,
    /// `HOST:PORT,...` of the cluster's bootstrap listeners.
    pub bootstrap: String,
    /// Their protocol: `SASL_SSL` (with the stack's CA) or `SASL_PLAINTEXT` (a `demo.json`
    /// written before the dev stack had TLS listeners).
    #[serde(default = "sasl_plaintext")]
    pub security_protocol: String,
    pub api_key: String,
    pub api_secret: String,
}

fn sasl_plaintext() -> String {
    "SASL_PLAINTEXT".to_string()
}

fn demo_path(data_dir: &Path) -> PathBuf {
    data_dir.join("demo.json")
}

/// The saved demo tenant, or a new one made through the REST API at `rest`.
pub async fn ensure(rest: &str, data_dir: &Path) -> anyhow::Result<Demo> {
    let path = demo_path(data_dir);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not a demo tenant; remove it", path.display()));
    }
    let api = Client::new(rest)?;
    let password = uuid::Uuid::new_v4().simple().to_string();
    let signup = json!({"email": EMAIL, "password": password, "organization_name": "Demo"});
    let user = api
        .call(Method::POST, "/v1/signup", &Auth::None, Some(&signup))
        .await
        .with_context(|| {
            format!(
                "signing up {EMAIL} (if it exists from an earlier run whose {} is gone, \
                 start with a fresh --data-dir)",
                path.display()
            )
        })?;
    let user_id = str_at(&user, "/user_id")?;
    let login = json!({"email": EMAIL, "password": password});
    let token = api
        .call(Method::POST, "/v1/login", &Auth::None, Some(&login))
        .await?;
    let token = str_at(&token, "/token")?;
    let auth = Auth::Bearer(&token);
    let env = api
        .call(
            Method::POST,
            "/org/v2/environments",
            &auth,
            Some(&json!({"display_name": "demo"})),
        )
        .await?;
    let spec = json!({"spec": {
        "display_name": "demo",
        "availability": "SINGLE_ZONE",
        "cloud": "LOCAL",
        "region": "local",
        "config": {"kind": "Basic"},
        "environment": {"id": str_at(&env, "/id")?},
    }});
    let cluster = api
        .call(Method::POST, "/cmk/v2/clusters", &auth, Some(&spec))
        .await?;
    let cluster_id = str_at(&cluster, "/id")?;
    let (security_protocol, bootstrap) = wait_provisioned(&api, &auth, &cluster_id).await?;
    let key = json!({"spec": {
        "display_name": "demo",
        "owner": {"id": user_id},
        "resource": {"id": cluster_id},
    }});
    let key = api
        .call(Method::POST, "/iam/v2/api-keys", &auth, Some(&key))
        .await?;
    let demo = Demo {
        email: EMAIL.to_string(),
        password,
        cluster: cluster_id,
        bootstrap,
        security_protocol,
        api_key: str_at(&key, "/id")?,
        api_secret: str_at(&key, "/spec/secret")?,
    };
    save(&path, &demo)?;
    Ok(demo)
}

/// Poll the cluster until it is PROVISIONED; answers its bootstrap's protocol and hosts.
async fn wait_provisioned(
    api: &Client,
    auth: &Auth<'_>,
    id: &str,
) -> anyhow::Result<(String, String)> {
    let deadline = Instant::now() + PROVISION_TIMEOUT;
    loop {
        let c = api
            .call(Method::GET, &format!("/cmk/v2/clusters/{id}"), auth, None)
            .await?;
        match c.pointer("/status/phase").and_then(Value::as_str) {
            Some("PROVISIONED") => {
                let endpoint = str_at(&c, "/spec/kafka_bootstrap_endpoint")?;
                let (protocol, hosts) = endpoint
                    .split_once("://")
                    .unwrap_or(("SASL_PLAINTEXT", &endpoint));
                return Ok((protocol.to_string(), hosts.to_string()));
            }
            Some("FAILED") => bail!("the demo cluster {id} failed to provision: {c}"),
            _ if Instant::now() > deadline => {
                bail!("the demo cluster {id} was not PROVISIONED within {PROVISION_TIMEOUT:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn str_at(v: &Value, pointer: &str) -> anyhow::Result<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("the API's answer has no {pointer}: {v}"))
}

fn save(path: &Path, demo: &Demo) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(serde_json::to_string_pretty(demo)?.as_bytes())?;
    Ok(())
}

/// The kcat flags that authenticate as the demo tenant (over TLS: trusting the stack's CA,
/// `DATA_DIR/tls/ca.pem`).
pub fn kcat_auth(demo: &Demo, data_dir: &Path) -> String {
    let tls = if demo.security_protocol == "SASL_SSL" {
        format!(
            " -X ssl.ca.location={}",
            super::tls::ca_path(data_dir).display()
        )
    } else {
        String::new()
    };
    format!(
        "-b {} -X security.protocol={}{tls} -X sasl.mechanisms=PLAIN \
         -X sasl.username={} -X sasl.password={}",
        demo.bootstrap, demo.security_protocol, demo.api_key, demo.api_secret
    )
}

/// Lines for the banner: the demo tenant and kcat commands that work as printed.
pub fn banner(demo: &Demo, data_dir: &Path) -> Vec<String> {
    let auth = kcat_auth(demo, data_dir);
    vec![
        format!(
            "Demo tenant: {} (cluster {}, API key {}; password and secret in {})",
            demo.email,
            demo.cluster,
            demo.api_key,
            demo_path(data_dir).display()
        ),
        format!("  echo 'hello, tributary' | kcat -P {auth} -t demo"),
        format!("  kcat -C {auth} -t demo -o beginning -e"),
    ]
}
