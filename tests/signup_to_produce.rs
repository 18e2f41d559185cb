//! The front door, end to end, as a new user would walk it against real processes (a
//! cell controller, three brokers with SASL listeners, the control plane): sign up, log
//! in, create an environment and a cluster, wait for PROVISIONED, create a service
//! account and a cluster API key, then produce and consume with librdkafka over
//! SASL/PLAIN at the bootstrap the cluster reports. Also measures how soon after its
//! creation the key works, and that deleting it shuts its clients out.

mod common;

use std::time::{Duration, Instant};

use common::cell::Cell;
use common::clients::sasl_config;
use common::control_plane::{ControlPlane, Db};
use common::wire::WireClient;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

async fn post(http: &reqwest::Client, url: &str, token: &str, body: Value) -> Value {
    let res = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = res.status();
    let body: Value = res.json().await.expect("JSON body");
    assert!(status.is_success(), "POST {url}: {status} {body}");
    body
}

/// An ALLOW binding on a LITERAL resource for any host.
fn acl(resource_type: i8, name: &str, principal: &str, operation: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_resource_pattern_type(3)
        .with_principal(StrBytes::from_string(principal.to_string()))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(operation)
        .with_permission_type(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_signs_up_and_produces_with_a_fresh_api_key() {
    let cell = Cell::start_sasl(1, 3, &[], &[]);
    cell.wait_active(3).await;
    let cp = ControlPlane::start(&Db::Sqlite, &[format!("cell-test={}", cell.controllers)]).await;
    let http = cp.http.clone();
    let u = |path: &str| format!("{}{path}", cp.url);

    let res = http
        .post(u("/v1/signup"))
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery", "organization_name": "Analytical Engines"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let signed_up: Value = res.json().await.unwrap();
    let user_id = signed_up["user_id"].as_str().expect("user_id").to_string();
    let login: Value = http
        .post(u("/v1/login"))
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().expect("token").to_string();

    let env = post(
        &http,
        &u("/org/v2/environments"),
        &token,
        json!({"display_name": "prod"}),
    )
    .await;
    let cluster = post(
        &http,
        &u("/cmk/v2/clusters"),
        &token,
        json!({"spec": {
            "display_name": "orders",
            "availability": "SINGLE_ZONE",
            "cloud": "AWS",
            "region": "us-east-1",
            "config": {"kind": "Basic"},
            "environment": {"id": env["id"]},
        }}),
    )
    .await;
    let cluster_id = cluster["id"].as_str().unwrap().to_string();
    let created = Instant::now();
    let bootstrap = loop {
        let c: Value = http
            .get(u(&format!("/cmk/v2/clusters/{cluster_id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match c["status"]["phase"].as_str() {
            Some("PROVISIONED") => {
                break c["spec"]["kafka_bootstrap_endpoint"]
                    .as_str()
                    .expect("bootstrap")
                    .to_string()
            }
            Some("FAILED") => panic!("provisioning failed: {c}"),
            _ => {}
        }
        assert!(
            created.elapsed() < Duration::from_secs(60),
            "never PROVISIONED: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "PROVISIONED {} ms after create",
        created.elapsed().as_millis()
    );
    let servers = bootstrap
        .strip_prefix("SASL_PLAINTEXT://")
        .unwrap_or_else(|| panic!("bootstrap {bootstrap} is SASL_PLAINTEXT"))
        .to_string();
    let sasl_addrs: Vec<String> = cell
        .brokers
        .iter()
        .filter_map(|b| b.sasl_addr.clone())
        .collect();
    for s in servers.split(',') {
        assert!(
            sasl_addrs.contains(&s.to_string()),
            "{s} is a broker's SASL listener"
        );
    }

    let sa = post(
        &http,
        &u("/iam/v2/service-accounts"),
        &token,
        json!({"display_name": "orders-app", "description": "writes orders"}),
    )
    .await;
    // The user's own cluster key (full access) grants the service account what it needs:
    // everything on topic `orders`, and READ on its consumer groups.
    let user_key = post(
        &http,
        &u("/iam/v2/api-keys"),
        &token,
        json!({"spec": {"display_name": "admin", "owner": {"id": user_id}, "resource": {"id": cluster_id}}}),
    )
    .await;
    let sa_principal = format!("User:{}", sa["id"].as_str().unwrap());
    let mut admin = WireClient::sasl_plain(
        &sasl_addrs[0],
        user_key["id"].as_str().unwrap(),
        user_key["spec"]["secret"].as_str().unwrap(),
    )
    .await
    .expect("the user's key authenticates");
    let grant = CreateAclsRequest::default().with_creations(vec![
        acl(2, "orders", &sa_principal, 2),
        acl(3, "*", &sa_principal, 3),
    ]);
    let r = admin
        .call(ApiKey::CreateAcls, 2, grant.into())
        .await
        .unwrap();
    let ResponseKind::CreateAcls(r) = r else {
        panic!("{r:?}")
    };
    assert!(r.results.iter().all(|r| r.error_code == 0), "{r:?}");

    let key = post(
        &http,
        &u("/iam/v2/api-keys"),
        &token,
        json!({"spec": {"display_name": "orders-app key", "owner": {"id": sa["id"]}, "resource": {"id": cluster_id}}}),
    )
    .await;
    let key_created = Instant::now();
    let api_key = key["id"].as_str().unwrap().to_string();
    let secret = key["spec"]["secret"].as_str().unwrap().to_string();

    // The key works at once: the first produce is acknowledged through it.
    let producer: FutureProducer = sasl_config(&servers, &api_key, &secret)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::<(), _>::to("orders").payload("first"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("first produce: {e}"));
    let first_ack = key_created.elapsed();
    for i in 0..99 {
        producer
            .send(
                FutureRecord::<(), _>::to("orders").payload(&format!("order-{i}")),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    }
    let consumer: BaseConsumer = sasl_config(&servers, &api_key, &secret)
        .set("group.id", "orders-readers")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("orders", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 100 && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("consume");
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
        }
    }
    assert_eq!(got.len(), 100, "all records read back");
    assert_eq!(got[0], "first");
    println!(
        "API KEY: first acknowledged produce {} ms after the key was created",
        first_ack.as_millis()
    );

    drop(consumer);

    // The same key works with SCRAM-SHA-512 (the control plane made its verifiers when it
    // created the key), through kcat's librdkafka 2.0.2.
    let username = format!("sasl.username={api_key}");
    let password = format!("sasl.password={secret}");
    let read = common::clients::kcat(
        &[
            "-b",
            &servers,
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanisms=SCRAM-SHA-512",
            "-X",
            &username,
            "-X",
            &password,
            "-C",
            "-t",
            "orders",
            "-o",
            "beginning",
            "-c",
            "1",
            "-e",
        ],
        None,
    );
    assert_eq!(read.trim(), "first", "SCRAM-SHA-512 read {read:?}");

    // Deleting the key shuts its clients out: new connections are refused once the
    // revocation reaches the brokers (measured), and the producer's open ones close.
    let res = http
        .delete(u(&format!("/iam/v2/api-keys/{api_key}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let deleted = Instant::now();
    let mut attempts = 0;
    let refused_after = loop {
        attempts += 1;
        match WireClient::sasl_plain(&sasl_addrs[0], &api_key, &secret).await {
            // Less the delay every failed authentication is answered after.
            Err((58, _)) => break deleted.elapsed().saturating_sub(Duration::from_millis(500)),
            Err(other) => panic!("unexpected refusal {other:?}"),
            Ok(_) => {}
        }
        assert!(
            deleted.elapsed() < Duration::from_secs(10),
            "a deleted key still authenticates after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "REVOCATION: deleted key refused {} ms after DELETE returned (attempt {attempts})",
        refused_after.as_millis()
    );
    let refused = producer
        .send(
            FutureRecord::<(), _>::to("orders").payload("after revocation"),
            Duration::from_secs(3),
        )
        .await;
    assert!(
        refused.is_err(),
        "a deleted key's producer must not produce"
    );
}
