//! The `tributary` CLI as a process against a real control plane (and a real cell for
//! clusters and topics): sign-up, login (a 0600 config file), environments, clusters
//! until PROVISIONED, service accounts, API keys and topics through Kafka REST, tables
//! and `-o json`, and errors that print the API's detail and exit non-zero; then
//! `kafka topic produce` from stdin and `kafka topic consume` back, exactly.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cell::Cell;
use common::control_plane::{ControlPlane, Db};
use serde_json::Value;

/// What one CLI run did.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `tributary ARGS` against `url` with its config under `config_home`.
fn cli(url: &str, config_home: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env("TRIBUTARY_URL", url)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("TRIBUTARY_PASSWORD")
        .env_remove("TRIBUTARY_API_KEY")
        .env_remove("TRIBUTARY_API_SECRET")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tributary");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `tributary ARGS` with `input` on its stdin (bounded: the commands that read
/// stdin stop at its end, and consume is given --max-messages and --idle-timeout).
fn cli_stdin(url: &str, config_home: &Path, args: &[&str], input: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env("TRIBUTARY_URL", url)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("TRIBUTARY_API_KEY")
        .env_remove("TRIBUTARY_API_SECRET")
        .env_remove("TRIBUTARY_BOOTSTRAP")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tributary");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("wait for tributary");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs and expects success; returns stdout.
fn ok(url: &str, home: &Path, args: &[&str]) -> String {
    let r = cli(url, home, args);
    assert!(
        r.ok,
        "tributary {args:?} failed:\n{}\n{}",
        r.stdout, r.stderr
    );
    r.stdout
}

/// Runs with `-o json` and parses stdout.
fn json(url: &str, home: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = ok(url, home, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

/// Runs and expects failure; returns stderr.
fn fails(url: &str, home: &Path, args: &[&str]) -> String {
    let r = cli(url, home, args);
    assert!(!r.ok, "tributary {args:?} should fail:\n{}", r.stdout);
    r.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_end_to_end() {
    let cell = Cell::start_sasl(1, 1, &["--default-replication-factor", "1"], &[]);
    cell.wait_active(1).await;
    let cp = ControlPlane::start(&Db::Sqlite, &[format!("cell-test={}", cell.controllers)]).await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let url = cp.url.as_str();

    // Not logged in yet: a clear error, non-zero exit.
    let err = fails(url, h, &["environment", "list"]);
    assert!(err.contains("not logged in"), "{err}");

    let out = ok(
        url,
        h,
        &[
            "signup",
            "--email",
            "cli@example.com",
            "--password",
            "correct horse",
            "--organization",
            "CLI Inc",
        ],
    );
    assert!(out.contains("Signed up"), "{out}");
    let err = fails(
        url,
        h,
        &[
            "login",
            "--email",
            "cli@example.com",
            "--password",
            "wrong horse",
        ],
    );
    assert!(err.contains("wrong email or password"), "{err}");
    let out = ok(
        url,
        h,
        &[
            "login",
            "--email",
            "cli@example.com",
            "--password",
            "correct horse",
        ],
    );
    assert!(out.contains("Logged in as cli@example.com"), "{out}");
    let config = h.join("tributary").join("config.json");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the token file is private");
    let dir_mode = std::fs::metadata(h.join("tributary"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let saved: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(saved["logins"][url]["token"]
        .as_str()
        .unwrap()
        .starts_with("trb_"));

    // Environments: a table by default, JSON with -o json.
    let env = json(url, h, &["environment", "create", "prod"]);
    let env_id = env["id"].as_str().unwrap().to_string();
    let table = ok(url, h, &["environment", "list"]);
    assert!(table.contains("ID") && table.contains("Name"), "{table}");
    assert!(table.contains(&env_id) && table.contains("prod"), "{table}");
    let list = json(url, h, &["environment", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // A cluster, until PROVISIONED.
    let cluster = json(
        url,
        h,
        &[
            "kafka",
            "cluster",
            "create",
            "orders",
            "--environment",
            &env_id,
            "--cloud",
            "aws",
            "--region",
            "us-east-1",
            "--type",
            "basic",
        ],
    );
    let cluster_id = cluster["id"].as_str().unwrap().to_string();
    assert_eq!(cluster["spec"]["cloud"], "AWS");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = json(url, h, &["kafka", "cluster", "describe", &cluster_id]);
        if c["status"]["phase"] == "PROVISIONED" {
            break;
        }
        assert!(Instant::now() < deadline, "never PROVISIONED: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let described = ok(url, h, &["kafka", "cluster", "describe", &cluster_id]);
    assert!(described.contains("PROVISIONED"), "{described}");
    assert!(described.contains("SASL_PLAINTEXT://"), "{described}");
    let listed = ok(
        url,
        h,
        &["kafka", "cluster", "list", "--environment", &env_id],
    );
    assert!(
        listed.contains(&cluster_id) && listed.contains("Basic"),
        "{listed}"
    );

    // A service account and a cluster API key it owns.
    let sa = json(
        url,
        h,
        &[
            "service-account",
            "create",
            "orders-app",
            "--description",
            "the orders app",
        ],
    );
    let sa_id = sa["id"].as_str().unwrap().to_string();
    assert!(ok(url, h, &["service-account", "list"]).contains("orders-app"));
    let key = json(
        url,
        h,
        &[
            "api-key",
            "create",
            "--resource",
            &cluster_id,
            "--service-account",
            &sa_id,
        ],
    );
    let api_key = key["id"].as_str().unwrap().to_string();
    let secret = key["spec"]["secret"].as_str().unwrap().to_string();
    let keys = ok(url, h, &["api-key", "list", "--resource", &cluster_id]);
    assert!(keys.contains(&api_key) && keys.contains(&sa_id), "{keys}");
    assert!(!keys.contains(&secret), "secrets are never listed");

    // Topics through Kafka REST with the cluster key.
    let with_key = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(
            [
                "--cluster",
                &cluster_id,
                "--api-key",
                &api_key,
                "--api-secret",
                &secret,
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        v
    };
    let args = with_key(&[
        "kafka",
        "topic",
        "create",
        "payments",
        "--partitions",
        "2",
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=3600000,cleanup.policy=delete",
    ]);
    let out = ok(url, h, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("payments"), "{out}");
    let args = with_key(&["kafka", "topic", "list"]);
    let out = ok(url, h, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.contains("payments") && out.contains("Partitions"),
        "{out}"
    );
    let topics = json(url, h, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(topics[0]["partitions_count"], 2);
    // A topic error prints the API's detail and exits non-zero.
    let args = with_key(&[
        "kafka",
        "topic",
        "create",
        "payments",
        "--replication-factor",
        "1",
    ]);
    let err = fails(url, h, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("already exists"), "{err}");
    let args = with_key(&[
        "kafka",
        "topic",
        "create",
        "bad",
        "--config",
        "cleanup.policy=compact",
    ]);
    let err = fails(url, h, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("allowed: delete"), "{err}");
    // A wrong secret is refused.
    let err = fails(
        url,
        h,
        &[
            "kafka",
            "topic",
            "list",
            "--cluster",
            &cluster_id,
            "--api-key",
            &api_key,
            "--api-secret",
            "nope",
        ],
    );
    assert!(err.contains("401"), "{err}");
    let args = with_key(&["kafka", "topic", "delete", "payments"]);
    ok(url, h, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = with_key(&["kafka", "topic", "list", "-o", "json"]);
    let out = ok(url, h, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        Value::Array(vec![])
    );
    let err = fails(url, h, &["kafka", "topic", "produce", "payments"]);
    assert!(
        err.contains("--cluster"),
        "produce needs a cluster and key: {err}"
    );

    // Errors of the Cloud API: the envelope's detail, non-zero exit.
    let err = fails(url, h, &["environment", "delete", &env_id]);
    assert!(err.contains("delete them first"), "{err}");
    let err = fails(url, h, &["kafka", "cluster", "describe", "lkc-nothere"]);
    assert!(err.contains("cluster lkc-nothere not found"), "{err}");
    let err = fails(url, h, &["service-account", "delete", &sa_id]);
    assert!(err.contains("still owns"), "{err}");

    // Tear down in order.
    ok(url, h, &["api-key", "delete", &api_key]);
    ok(url, h, &["service-account", "delete", &sa_id]);
    ok(url, h, &["kafka", "cluster", "delete", &cluster_id]);
    ok(url, h, &["environment", "delete", &env_id]);
    assert_eq!(json(url, h, &["environment", "list"]), Value::Array(vec![]));
    ok(url, h, &["logout"]);
    let err = fails(url, h, &["environment", "list"]);
    assert!(err.contains("not logged in"), "{err}");
}

#[test]
fn help_shows_produce_and_consume() {
    for (cmd, flags) in [
        (
            "produce",
            &["--parse-key", "--delimiter", "--bootstrap"][..],
        ),
        (
            "consume",
            &[
                "--from-beginning",
                "--group",
                "--print-key",
                "--max-messages",
                "--idle-timeout",
            ][..],
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["kafka", "topic", cmd, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in flags {
            assert!(help.contains(flag), "{cmd} --help lacks {flag}: {help}");
        }
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Waits (30 s) until the cluster's brokers take a new key: a call that goes to them
/// (Kafka REST's consumer groups) stops answering 503.
async fn until_brokers_take(cp: &ControlPlane, cluster: &str, key: &str, secret: &str) {
    let path = format!("/kafka/v3/clusters/{cluster}/consumer-groups");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = cp
            .basic(reqwest::Method::GET, &path, key, secret, None)
            .await;
        if status != 503 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the brokers never took {key}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_produce_and_consume() {
    // One broker: acks=all and group commits need min.insync.replicas 1.
    let cell = Cell::start_sasl(
        1,
        1,
        &["--default-replication-factor", "1"],
        &["--min-insync-replicas", "1"],
    );
    cell.wait_active(1).await;
    let cp = ControlPlane::start(&Db::Sqlite, &[format!("cell-test={}", cell.controllers)]).await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let url = cp.url.as_str();
    let creds = [
        "--email",
        "stream@example.com",
        "--password",
        "correct horse",
    ];
    let up = json(
        url,
        h,
        &[&["signup"][..], &creds, &["--organization", "Streams"]].concat(),
    );
    let user = up["user_id"].as_str().unwrap().to_string();
    ok(url, h, &[&["login"][..], &creds].concat());
    let env = json(url, h, &["environment", "create", "prod"]);
    let env_id = env["id"].as_str().unwrap();
    let cluster = json(
        url,
        h,
        &[
            "kafka",
            "cluster",
            "create",
            "events",
            "--environment",
            env_id,
            "--cloud",
            "aws",
            "--region",
            "us-east-1",
        ],
    );
    let cluster_id = cluster["id"].as_str().unwrap().to_string();
    let (status, login) = cp
        .call(
            reqwest::Method::POST,
            "/v1/login",
            None,
            Some(serde_json::json!({"email": "stream@example.com", "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap().to_string();
    cp.wait_provisioned(&token, &cluster_id).await;
    // A key of the user (full access) and one of a service account without ACLs.
    let key = json(
        url,
        h,
        &[
            "api-key",
            "create",
            "--resource",
            &cluster_id,
            "--service-account",
            &user,
        ],
    );
    let (api_key, secret) = (
        key["id"].as_str().unwrap().to_string(),
        key["spec"]["secret"].as_str().unwrap().to_string(),
    );
    let sa = json(url, h, &["service-account", "create", "no-acls"]);
    let sa_key = json(
        url,
        h,
        &[
            "api-key",
            "create",
            "--resource",
            &cluster_id,
            "--service-account",
            sa["id"].as_str().unwrap(),
        ],
    );
    until_brokers_take(&cp, &cluster_id, &api_key, &secret).await;
    let (sa_api_key, sa_secret) = (
        sa_key["id"].as_str().unwrap().to_string(),
        sa_key["spec"]["secret"].as_str().unwrap().to_string(),
    );
    until_brokers_take(&cp, &cluster_id, &sa_api_key, &sa_secret).await;
    let with = |key: &str, secret: &str, args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        for s in [
            "--cluster",
            &cluster_id,
            "--api-key",
            key,
            "--api-secret",
            secret,
        ] {
            v.push(s.to_string());
        }
        v
    };
    let args = with(
        &api_key,
        &secret,
        &[
            "kafka",
            "topic",
            "create",
            "events",
            "--partitions",
            "1",
            "--replication-factor",
            "1",
        ],
    );
    ok(url, h, &strs(&args));

    // Produce lines (the bootstrap comes from the cluster, through the login), consume
    // them back: exactly the lines, in order.
    let lines: Vec<String> = (0..25)
        .map(|i| format!("event number {i} with spaces"))
        .collect();
    let input = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    let args = with(&api_key, &secret, &["kafka", "topic", "produce", "events"]);
    let run = cli_stdin(url, h, &strs(&args), &input);
    assert!(run.ok, "produce failed: {}", run.stderr);
    assert!(run.stderr.contains("Produced 25 records"), "{}", run.stderr);
    let args = with(
        &api_key,
        &secret,
        &[
            "kafka",
            "topic",
            "consume",
            "events",
            "--from-beginning",
            "--max-messages",
            "25",
            "--idle-timeout",
            "60",
        ],
    );
    let out = ok(url, h, &strs(&args));
    assert_eq!(out.lines().collect::<Vec<_>>(), lines);

    // Keys: --parse-key splits at the delimiter, --print-key shows them, with --bootstrap
    // given instead of looked up; as a group, what was printed is committed.
    let bootstrap = cell.sasl_bootstrap();
    let args = with(
        &api_key,
        &secret,
        &[
            "kafka",
            "topic",
            "produce",
            "events",
            "--parse-key",
            "--delimiter",
            "=",
            "--bootstrap",
            &bootstrap,
        ],
    );
    let run = cli_stdin(url, h, &strs(&args), "k1=v=1\nk2=v2\n");
    assert!(run.ok, "produce --parse-key failed: {}", run.stderr);
    let run = cli_stdin(url, h, &strs(&args), "no delimiter here\n");
    assert!(!run.ok && run.stderr.contains("no \"=\""), "{}", run.stderr);
    let args = with(
        &api_key,
        &secret,
        &[
            "kafka",
            "topic",
            "consume",
            "events",
            "-b",
            "--group",
            "readers",
            "--print-key",
            "--delimiter",
            "|",
            "--max-messages",
            "27",
            "--idle-timeout",
            "60",
        ],
    );
    let out = ok(url, h, &strs(&args));
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), 27, "{out}");
    assert_eq!(got[0], "|event number 0 with spaces");
    assert_eq!(&got[25..], &["k1|v=1", "k2|v2"]);
    let (status, summary) = cp
        .basic(
            reqwest::Method::GET,
            &format!("/kafka/v3/clusters/{cluster_id}/consumer-groups/readers/lag-summary"),
            &api_key,
            &secret,
            None,
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        summary["total_lag"], 0,
        "the group committed all it printed: {summary}"
    );

    // The service account's key has no ACLs: produce fails, saying what is missing.
    let args = with(
        &sa_api_key,
        &sa_secret,
        &["kafka", "topic", "produce", "events"],
    );
    let run = cli_stdin(url, h, &strs(&args), "denied\n");
    assert!(!run.ok, "produce without an ACL must fail");
    assert!(run.stderr.contains("ACL allowing WRITE"), "{}", run.stderr);
}
