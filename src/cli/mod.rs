//! The user CLI, in the spirit of the `confluent` CLI: `signup`, `login`, `logout`,
//! `environment`, `kafka cluster`, `service-account`, `api-key` and `kafka topic`, all
//! through the REST API (`--url` / `TRIBUTARY_URL`, default `http://127.0.0.1:9096`, what
//! `tributary dev` serves). `login` saves a token per API URL in the config file
//! ([`config`]); `kafka topic` calls the cluster's Kafka REST v3 with a cluster API key,
//! except `produce` and `consume`, which are a Kafka client of the cluster ([`stream`]).
//! Tables by default, `-o json` for the API's JSON; a failure prints the error envelope's
//! detail and exits non-zero.

pub(crate) mod client;
mod config;
mod output;
mod stream;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use client::{Auth, Client};
use output::{fields, print, table, text, Format};
use reqwest::Method;
use serde_json::{json, Value};

/// Options every CLI command takes.
#[derive(Args, Clone)]
pub struct Common {
    /// Base URL of the Tributary REST API.
    #[arg(
        long,
        env = "TRIBUTARY_URL",
        default_value = "http://127.0.0.1:9096",
        global = true
    )]
    url: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Human, global = true)]
    output: Format,
}

#[derive(Args)]
pub struct SignupArgs {
    #[command(flatten)]
    common: Common,
    /// Your email, which is also your login.
    #[arg(long)]
    email: String,
    /// At least 8 characters (prefer TRIBUTARY_PASSWORD: flags show in the process list).
    #[arg(long, env = "TRIBUTARY_PASSWORD", hide_env_values = true)]
    password: String,
    /// The new organisation's name.
    #[arg(long)]
    organization: String,
}

#[derive(Args)]
pub struct LoginArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    email: String,
    /// Prefer TRIBUTARY_PASSWORD: flags show in the process list.
    #[arg(long, env = "TRIBUTARY_PASSWORD", hide_env_values = true)]
    password: String,
}

#[derive(Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct EnvironmentArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: EnvironmentCmd,
}

#[derive(Subcommand)]
enum EnvironmentCmd {
    /// Create an environment.
    Create {
        /// Its display name.
        name: String,
    },
    /// List your environments.
    List,
    /// Delete an environment (it must hold no clusters).
    Delete {
        /// The environment id (env-...).
        id: String,
    },
}

#[derive(Args)]
pub struct KafkaArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: KafkaCmd,
}

#[derive(Subcommand)]
enum KafkaCmd {
    /// Kafka clusters.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Topics of a cluster, through its Kafka REST API with a cluster API key; `produce`
    /// and `consume` connect to the cluster's brokers with that key.
    #[command(subcommand)]
    Topic(TopicCmd),
}

/// Cluster type, as the `confluent` CLI spells it.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ClusterType {
    Basic,
    Standard,
    Enterprise,
    Dedicated,
}

impl ClusterType {
    fn kind(self) -> &'static str {
        match self {
            ClusterType::Basic => "Basic",
            ClusterType::Standard => "Standard",
            ClusterType::Enterprise => "Enterprise",
            ClusterType::Dedicated => "Dedicated",
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Availability {
    SingleZone,
    MultiZone,
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Create a cluster (it is PROVISIONING until placed in a cell).
    Create {
        /// Its display name.
        name: String,
        /// The environment (env-...).
        #[arg(long)]
        environment: String,
        /// Cloud provider, e.g. aws.
        #[arg(long)]
        cloud: String,
        /// Region, e.g. us-east-1.
        #[arg(long)]
        region: String,
        #[arg(long = "type", value_enum, default_value = "basic")]
        kind: ClusterType,
        #[arg(long, value_enum, default_value = "single-zone")]
        availability: Availability,
        /// CKUs of a Dedicated cluster.
        #[arg(long)]
        cku: Option<u32>,
    },
    /// List the clusters of an environment.
    List {
        #[arg(long)]
        environment: String,
    },
    /// Show a cluster: its status and, once PROVISIONED, its endpoints.
    Describe {
        /// The cluster id (lkc-...).
        id: String,
    },
    /// Delete a cluster, its API keys, topics and data.
    Delete {
        /// The cluster id (lkc-...).
        id: String,
    },
}

/// A cluster and one of its API keys.
#[derive(Args)]
struct ClusterKey {
    /// The cluster (lkc-...).
    #[arg(long)]
    cluster: String,
    /// An API key of the cluster.
    #[arg(long, env = "TRIBUTARY_API_KEY")]
    api_key: String,
    /// Its secret (prefer TRIBUTARY_API_SECRET: flags show in the process list).
    #[arg(long, env = "TRIBUTARY_API_SECRET", hide_env_values = true)]
    api_secret: String,
}

impl ClusterKey {
    fn auth(&self) -> Auth<'_> {
        Auth::Basic {
            key: &self.api_key,
            secret: &self.api_secret,
        }
    }
}

#[derive(Subcommand)]
enum TopicCmd {
    /// Create a topic.
    Create {
        name: String,
        /// Partitions (default: the cell's).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replicas of each partition (default: the cell's).
        #[arg(long)]
        replication_factor: Option<i32>,
        /// Topic configs, `NAME=VALUE`, comma-separated or repeated, e.g.
        /// `--config retention.ms=86400000`.
        #[arg(long, value_delimiter = ',')]
        config: Vec<String>,
        #[command(flatten)]
        key: ClusterKey,
    },
    /// List the cluster's topics.
    List {
        #[command(flatten)]
        key: ClusterKey,
    },
    /// Delete a topic and its data.
    Delete {
        name: String,
        #[command(flatten)]
        key: ClusterKey,
    },
    /// Produce records to a topic: one per line of stdin, until end of input or Ctrl-C.
    Produce {
        name: String,
        /// Split each line into key and value at the first --delimiter.
        #[arg(long)]
        parse_key: bool,
        /// What separates key and value with --parse-key.
        #[arg(long, default_value = ":")]
        delimiter: String,
        #[command(flatten)]
        key: ClusterKey,
        #[command(flatten)]
        endpoint: Bootstrap,
    },
    /// Print a topic's records, one per line, until Ctrl-C (or --max-messages,
    /// --idle-timeout).
    Consume {
        name: String,
        /// Start at the oldest record (default: only new ones).
        #[arg(short = 'b', long)]
        from_beginning: bool,
        /// Consume as this consumer group and commit what was printed (default: every
        /// partition, no group, nothing committed).
        #[arg(long)]
        group: Option<String>,
        /// Print each record's key, then --delimiter, then its value.
        #[arg(long)]
        print_key: bool,
        /// What separates key and value with --print-key.
        #[arg(long, default_value = "\t")]
        delimiter: String,
        /// Stop after this many records.
        #[arg(long)]
        max_messages: Option<u64>,
        /// Stop after this many seconds without a record.
        #[arg(long)]
        idle_timeout: Option<u64>,
        #[command(flatten)]
        key: ClusterKey,
        #[command(flatten)]
        endpoint: Bootstrap,
    },
}

/// Where a cluster's brokers are.
#[derive(Args)]
struct Bootstrap {
    /// The cluster's Kafka bootstrap endpoint (`[SASL_SSL://|SASL_PLAINTEXT://]host:port,...`,
    /// plain `host:port` meaning SASL_PLAINTEXT); default: the cluster's
    /// `kafka_bootstrap_endpoint`, looked up with your login.
    #[arg(long, env = "TRIBUTARY_BOOTSTRAP")]
    bootstrap: Option<String>,
    /// The CA certificate (PEM) that signed the brokers' certificates, for a SASL_SSL
    /// endpoint (`tributary dev` prints where its CA is: DATA_DIR/tls/ca.pem); default: the
    /// system's trusted CAs.
    #[arg(long, env = "TRIBUTARY_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub struct ServiceAccountArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: ServiceAccountCmd,
}

#[derive(Subcommand)]
enum ServiceAccountCmd {
    /// Create a service account (names are unique in the organisation).
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List your organisation's service accounts.
    List,
    /// Delete a service account (it must own no API keys).
    Delete {
        /// The service account id (sa-...).
        id: String,
    },
}

#[derive(Args)]
pub struct ApiKeyArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: ApiKeyCmd,
}

#[derive(Subcommand)]
enum ApiKeyCmd {
    /// Create an API key; its secret is shown only now.
    Create {
        /// The cluster (lkc-...) the key is for; absent: a Cloud API key.
        #[arg(long)]
        resource: Option<String>,
        /// The owner: a service account (sa-...) or a user (u-...).
        #[arg(long)]
        service_account: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List your organisation's API keys.
    List {
        /// Only keys for this cluster.
        #[arg(long)]
        resource: Option<String>,
        /// Only keys owned by this service account or user.
        #[arg(long)]
        service_account: Option<String>,
    },
    /// Delete (revoke) an API key.
    Delete {
        /// The key.
        key: String,
    },
}

/// A client and the saved login for `common.url`.
struct Session {
    client: Client,
    token: String,
    format: Format,
}

impl Session {
    fn open(common: &Common) -> anyhow::Result<Session> {
        let client = Client::new(&common.url)?;
        let config = config::Config::load()?;
        let login = config.logins.get(&client.base).ok_or_else(|| {
            anyhow!(
                "not logged in to {}; run `tributary login --email EMAIL` first",
                client.base
            )
        })?;
        Ok(Session {
            token: login.token.clone(),
            client,
            format: common.output,
        })
    }

    fn auth(&self) -> Auth<'_> {
        Auth::Bearer(&self.token)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        self.client.call(method, path, &self.auth(), body).await
    }

    async fn list(&self, path: &str) -> anyhow::Result<Value> {
        Ok(Value::Array(
            self.client.list_all(path, &self.auth()).await?,
        ))
    }
}

/// Ends a CLI command: on failure, prints `Error: <what went wrong>` (the API's detail, no
/// backtrace) to stderr and exits with status 1.
pub fn finish(result: anyhow::Result<()>) -> anyhow::Result<()> {
    if let Err(e) = result {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

pub async fn signup(args: SignupArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.common.url)?;
    let body = json!({
        "email": args.email,
        "password": args.password,
        "organization_name": args.organization,
    });
    let done = client
        .call(Method::POST, "/v1/signup", &Auth::None, Some(&body))
        .await?;
    print(args.common.output, &done, |v| {
        format!(
            "Signed up: user {} in organisation {}. Log in with `tributary login --email {}`.\n{}",
            text(v, "/user_id"),
            text(v, "/organization_id"),
            args.email,
            fields(&[
                ("User ID", text(v, "/user_id")),
                ("Organization ID", text(v, "/organization_id")),
            ])
        )
    });
    Ok(())
}

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.common.url)?;
    let body = json!({"email": args.email, "password": args.password});
    let session = client
        .call(Method::POST, "/v1/login", &Auth::None, Some(&body))
        .await?;
    let token = session["token"]
        .as_str()
        .ok_or_else(|| anyhow!("the login answer has no token"))?;
    let mut config = config::Config::load()?;
    config.logins.insert(
        client.base.clone(),
        config::Login {
            email: args.email.clone(),
            token: token.to_string(),
            expires_at: text(&session, "/expires_at"),
        },
    );
    config.save()?;
    let shown =
        json!({"email": args.email, "url": client.base, "expires_at": session["expires_at"]});
    print(args.common.output, &shown, |v| {
        format!(
            "Logged in as {} at {} (until {}); saved in {}.",
            text(v, "/email"),
            text(v, "/url"),
            text(v, "/expires_at"),
            config::path()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    });
    Ok(())
}

pub async fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.common.url)?;
    let mut config = config::Config::load()?;
    if config.logins.remove(&client.base).is_some() {
        config.save()?;
        println!("Logged out of {}.", client.base);
    } else {
        println!("Not logged in to {}.", client.base);
    }
    Ok(())
}

fn deleted(what: &str, id: &str) {
    println!("Deleted {what} {id:?}.");
}

/// An id that goes into a URL path: letters, digits, '.', '_' and '-' only.
fn path_id<'a>(what: &str, id: &'a str) -> anyhow::Result<&'a str> {
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok && id != "." && id != ".." {
        Ok(id)
    } else {
        bail!("{what} {id:?} is not valid: use letters, digits, '.', '_' and '-'")
    }
}

fn environment_row(e: &Value) -> Vec<String> {
    vec![text(e, "/id"), text(e, "/display_name")]
}

pub async fn environment(args: EnvironmentArgs) -> anyhow::Result<()> {
    let s = Session::open(&args.common)?;
    match args.command {
        EnvironmentCmd::Create { name } => {
            let env = s
                .call(
                    Method::POST,
                    "/org/v2/environments",
                    Some(&json!({"display_name": name})),
                )
                .await?;
            print(s.format, &env, |e| {
                fields(&[("ID", text(e, "/id")), ("Name", text(e, "/display_name"))])
            });
        }
        EnvironmentCmd::List => {
            let envs = s.list("/org/v2/environments?page_size=100").await?;
            print(s.format, &envs, |v| {
                let rows: Vec<Vec<String>> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(environment_row)
                    .collect();
                table(&["ID", "Name"], &rows)
            });
        }
        EnvironmentCmd::Delete { id } => {
            let id = path_id("environment", &id)?;
            s.call(Method::DELETE, &format!("/org/v2/environments/{id}"), None)
                .await?;
            deleted("environment", id);
        }
    }
    Ok(())
}

fn cluster_fields(c: &Value) -> String {
    fields(&[
        ("ID", text(c, "/id")),
        ("Name", text(c, "/spec/display_name")),
        ("Type", text(c, "/spec/config/kind")),
        ("CKU", text(c, "/spec/config/cku")),
        ("Availability", text(c, "/spec/availability")),
        ("Cloud", text(c, "/spec/cloud")),
        ("Region", text(c, "/spec/region")),
        ("Status", text(c, "/status/phase")),
        ("Reason", text(c, "/status/reason")),
        ("Endpoint", text(c, "/spec/kafka_bootstrap_endpoint")),
        ("REST Endpoint", text(c, "/spec/http_endpoint")),
        ("Environment", text(c, "/spec/environment/id")),
    ])
}

pub async fn kafka(args: KafkaArgs) -> anyhow::Result<()> {
    match args.command {
        KafkaCmd::Cluster(cmd) => cluster(&args.common, cmd).await,
        KafkaCmd::Topic(cmd) => topic(&args.common, cmd).await,
    }
}

async fn cluster(common: &Common, cmd: ClusterCmd) -> anyhow::Result<()> {
    let s = Session::open(common)?;
    match cmd {
        ClusterCmd::Create {
            name,
            environment,
            cloud,
            region,
            kind,
            availability,
            cku,
        } => {
            let mut config = json!({"kind": kind.kind()});
            if let Some(cku) = cku {
                config["cku"] = json!(cku);
            }
            let body = json!({"spec": {
                "display_name": name,
                "availability": match availability {
                    Availability::SingleZone => "SINGLE_ZONE",
                    Availability::MultiZone => "MULTI_ZONE",
                },
                "cloud": cloud.to_uppercase(),
                "region": region,
                "config": config,
                "environment": {"id": environment},
            }});
            let c = s
                .call(Method::POST, "/cmk/v2/clusters", Some(&body))
                .await?;
            print(s.format, &c, cluster_fields);
        }
        ClusterCmd::List { environment } => {
            let env = path_id("environment", &environment)?;
            let clusters = s
                .list(&format!("/cmk/v2/clusters?environment={env}&page_size=100"))
                .await?;
            print(s.format, &clusters, |v| {
                let rows: Vec<Vec<String>> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        vec![
                            text(c, "/id"),
                            text(c, "/spec/display_name"),
                            text(c, "/spec/config/kind"),
                            text(c, "/spec/availability"),
                            text(c, "/spec/cloud"),
                            text(c, "/spec/region"),
                            text(c, "/status/phase"),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ID",
                        "Name",
                        "Type",
                        "Availability",
                        "Cloud",
                        "Region",
                        "Status",
                    ],
                    &rows,
                )
            });
        }
        ClusterCmd::Describe { id } => {
            let id = path_id("cluster", &id)?;
            let c = s
                .call(Method::GET, &format!("/cmk/v2/clusters/{id}"), None)
                .await?;
            print(s.format, &c, cluster_fields);
        }
        ClusterCmd::Delete { id } => {
            let id = path_id("cluster", &id)?;
            s.call(Method::DELETE, &format!("/cmk/v2/clusters/{id}"), None)
                .await?;
            deleted("Kafka cluster", id);
        }
    }
    Ok(())
}

fn topic_fields(t: &Value) -> String {
    fields(&[
        ("Name", text(t, "/topic_name")),
        ("Partitions", text(t, "/partitions_count")),
        ("Replication Factor", text(t, "/replication_factor")),
        ("Cluster", text(t, "/cluster_id")),
    ])
}

async fn topic(common: &Common, cmd: TopicCmd) -> anyhow::Result<()> {
    let client = Client::new(&common.url)?;
    let format = common.output;
    let topics = |cluster: &str| -> anyhow::Result<String> {
        Ok(format!(
            "/kafka/v3/clusters/{}/topics",
            path_id("cluster", cluster)?
        ))
    };
    match &cmd {
        TopicCmd::Create {
            name,
            partitions,
            replication_factor,
            config,
            key,
        } => {
            let configs = config
                .iter()
                .map(|c| {
                    let (n, v) = c.split_once('=').ok_or_else(|| {
                        anyhow!("--config {c:?} is not NAME=VALUE, e.g. retention.ms=86400000")
                    })?;
                    Ok(json!({"name": n.trim(), "value": v.trim()}))
                })
                .collect::<anyhow::Result<Vec<Value>>>()?;
            let mut body = json!({"topic_name": name, "configs": configs});
            if let Some(p) = partitions {
                body["partitions_count"] = json!(p);
            }
            if let Some(rf) = replication_factor {
                body["replication_factor"] = json!(rf);
            }
            let t = client
                .call(
                    Method::POST,
                    &topics(&key.cluster)?,
                    &key.auth(),
                    Some(&body),
                )
                .await?;
            print(format, &t, topic_fields);
        }
        TopicCmd::List { key } => {
            let list = client
                .call(Method::GET, &topics(&key.cluster)?, &key.auth(), None)
                .await?;
            let data = list
                .get("data")
                .cloned()
                .unwrap_or(Value::Array(Vec::new()));
            print(format, &data, |v| {
                let rows: Vec<Vec<String>> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        vec![
                            text(t, "/topic_name"),
                            text(t, "/partitions_count"),
                            text(t, "/replication_factor"),
                        ]
                    })
                    .collect();
                table(&["Name", "Partitions", "Replication Factor"], &rows)
            });
        }
        TopicCmd::Delete { name, key } => {
            let path = format!("{}/{}", topics(&key.cluster)?, path_id("topic", name)?);
            client
                .call(Method::DELETE, &path, &key.auth(), None)
                .await?;
            deleted("topic", name);
        }
        TopicCmd::Produce {
            name,
            parse_key,
            delimiter,
            key,
            endpoint,
        } => {
            let target = stream_target(common, key, endpoint).await?;
            let sent =
                stream::produce(&target, path_id("topic", name)?, *parse_key, delimiter).await?;
            eprintln!("Produced {sent} records to {name:?}.");
        }
        TopicCmd::Consume {
            name,
            from_beginning,
            group,
            print_key,
            delimiter,
            max_messages,
            idle_timeout,
            key,
            endpoint,
        } => {
            let target = stream_target(common, key, endpoint).await?;
            let opts = stream::ConsumeOptions {
                from_beginning: *from_beginning,
                group: group.clone(),
                print_key: *print_key,
                delimiter: delimiter.clone(),
                max_messages: *max_messages,
                idle_timeout: idle_timeout.map(std::time::Duration::from_secs),
            };
            let printed = stream::consume(&target, path_id("topic", name)?, &opts).await?;
            eprintln!("Consumed {printed} records from {name:?}.");
        }
    }
    Ok(())
}

/// The cluster's bootstrap (`--bootstrap`, else its `kafka_bootstrap_endpoint` through the
/// saved login) and the key to connect with.
async fn stream_target(
    common: &Common,
    key: &ClusterKey,
    endpoint: &Bootstrap,
) -> anyhow::Result<stream::Target> {
    let bootstrap = match &endpoint.bootstrap {
        Some(b) => b.clone(),
        None => {
            let s = Session::open(common).map_err(|e| {
                anyhow!("{e:#}; or give the cluster's endpoint with --bootstrap HOST:PORT")
            })?;
            let id = path_id("cluster", &key.cluster)?;
            let c = s
                .call(Method::GET, &format!("/cmk/v2/clusters/{id}"), None)
                .await?;
            let endpoint = text(&c, "/spec/kafka_bootstrap_endpoint");
            if endpoint.is_empty() {
                bail!(
                    "cluster {id} has no bootstrap endpoint yet (status {}); wait until it is \
                     PROVISIONED",
                    text(&c, "/status/phase")
                );
            }
            endpoint
        }
    };
    Ok(stream::Target {
        bootstrap,
        ca_file: endpoint.ca_file.clone(),
        api_key: key.api_key.clone(),
        api_secret: key.api_secret.clone(),
    })
}

pub async fn service_account(args: ServiceAccountArgs) -> anyhow::Result<()> {
    let s = Session::open(&args.common)?;
    match args.command {
        ServiceAccountCmd::Create { name, description } => {
            let mut body = json!({"display_name": name});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let sa = s
                .call(Method::POST, "/iam/v2/service-accounts", Some(&body))
                .await?;
            print(s.format, &sa, |v| {
                fields(&[
                    ("ID", text(v, "/id")),
                    ("Name", text(v, "/display_name")),
                    ("Description", text(v, "/description")),
                ])
            });
        }
        ServiceAccountCmd::List => {
            let sas = s.list("/iam/v2/service-accounts?page_size=100").await?;
            print(s.format, &sas, |v| {
                let rows: Vec<Vec<String>> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        vec![
                            text(a, "/id"),
                            text(a, "/display_name"),
                            text(a, "/description"),
                        ]
                    })
                    .collect();
                table(&["ID", "Name", "Description"], &rows)
            });
        }
        ServiceAccountCmd::Delete { id } => {
            let id = path_id("service account", &id)?;
            s.call(
                Method::DELETE,
                &format!("/iam/v2/service-accounts/{id}"),
                None,
            )
            .await?;
            deleted("service account", id);
        }
    }
    Ok(())
}

pub async fn api_key(args: ApiKeyArgs) -> anyhow::Result<()> {
    let s = Session::open(&args.common)?;
    match args.command {
        ApiKeyCmd::Create {
            resource,
            service_account,
            description,
        } => {
            let mut spec = json!({"owner": {"id": service_account}});
            if let Some(r) = resource {
                spec["resource"] = json!({"id": r});
            }
            if let Some(d) = description {
                spec["description"] = json!(d);
            }
            let key = s
                .call(
                    Method::POST,
                    "/iam/v2/api-keys",
                    Some(&json!({"spec": spec})),
                )
                .await?;
            if s.format == Format::Human {
                eprintln!("Save the API secret now: it cannot be shown again.");
            }
            print(s.format, &key, |k| {
                fields(&[
                    ("API Key", text(k, "/id")),
                    ("API Secret", text(k, "/spec/secret")),
                    ("Resource", text(k, "/spec/resource/id")),
                    ("Owner", text(k, "/spec/owner/id")),
                    ("Status", text(k, "/status/phase")),
                ])
            });
        }
        ApiKeyCmd::List {
            resource,
            service_account,
        } => {
            let mut path = "/iam/v2/api-keys?page_size=100".to_string();
            if let Some(r) = &resource {
                path.push_str(&format!("&spec.resource={}", path_id("resource", r)?));
            }
            if let Some(o) = &service_account {
                path.push_str(&format!("&spec.owner={}", path_id("owner", o)?));
            }
            let keys = s.list(&path).await?;
            print(s.format, &keys, |v| {
                let rows: Vec<Vec<String>> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| {
                        vec![
                            text(k, "/id"),
                            text(k, "/spec/description"),
                            text(k, "/spec/owner/id"),
                            text(k, "/spec/resource/id"),
                            text(k, "/status/phase"),
                        ]
                    })
                    .collect();
                table(
                    &["Key", "Description", "Owner", "Resource", "Status"],
                    &rows,
                )
            });
        }
        ApiKeyCmd::Delete { key } => {
            let key = path_id("API key", &key)?;
            s.call(Method::DELETE, &format!("/iam/v2/api-keys/{key}"), None)
                .await?;
            deleted("API key", key);
        }
    }
    Ok(())
}
