//! `tributary control-plane` as a real process on SQLite: sign up, log in, create an
//! environment, stop it with SIGTERM, start it again on the same data dir, and find the user
//! and the environment still there.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

// The child is handed to the caller, which stops and waits for it (`stop`).
#[allow(clippy::zombie_processes)]
fn start(data_dir: &Path, port_file: &Path) -> (Child, String) {
    let _ = std::fs::remove_file(port_file);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "control-plane",
            "--listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--port-file")
        .arg(port_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tributary control-plane");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(addr) = std::fs::read_to_string(port_file) {
            if !addr.is_empty() {
                return (child, addr.trim().to_string());
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("control plane did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(mut child: Child) {
    assert!(
        common::sigterm_and_wait(&mut child),
        "control plane did not stop on SIGTERM"
    );
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, JSON body or Null).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status: u16 = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    let payload = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

#[test]
fn sign_up_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, port) = (tmp.path().join("cp"), tmp.path().join("port"));
    let (child, addr) = start(&data, &port);
    let (status, signup) = http(
        &addr,
        "POST",
        "/v1/signup",
        None,
        Some(
            r#"{"email":"ada@example.com","password":"correct horse","organization_name":"Analytical"}"#,
        ),
    );
    assert_eq!(status, 201, "{signup}");
    let login = r#"{"email":"ada@example.com","password":"correct horse"}"#;
    let (status, session) = http(&addr, "POST", "/v1/login", None, Some(login));
    assert_eq!(status, 200);
    let token = session["token"].as_str().unwrap().to_string();
    let (status, env) = http(
        &addr,
        "POST",
        "/org/v2/environments",
        Some(&token),
        Some(r#"{"display_name":"prod"}"#),
    );
    assert_eq!(status, 201, "{env}");
    let env_id = env["id"].as_str().unwrap().to_string();
    let (status, err) = http(
        &addr,
        "GET",
        "/org/v2/environments",
        Some("not-a-token"),
        None,
    );
    assert_eq!(status, 401);
    assert_eq!(err["errors"][0]["status"], "401");
    stop(child);

    let (child, addr) = start(&data, &port);
    let (status, session) = http(&addr, "POST", "/v1/login", None, Some(login));
    assert_eq!(status, 200, "the user survived the restart");
    let token = session["token"].as_str().unwrap();
    let (status, list) = http(&addr, "GET", "/org/v2/environments", Some(token), None);
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![env_id.as_str()]);
    assert_eq!(
        signup["organization_id"],
        list["data"][0]["metadata"]["resource_name"]
            .as_str()
            .unwrap()
            .split(['=', '/'])
            .nth(4)
            .unwrap()
    );
    stop(child);
}
