//! A whole cell as real OS processes: controller voters (`tributary controller`) and
//! brokers (`tributary broker --controllers ...`), each of which a test can SIGKILL,
//! SIGSTOP or restart alone, plus a controller client for the cell API.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cells::client::{ClientOptions, ControllerClient};
use proto::cell::v1::{
    BrokerState, ClusterLimits, CreateLogicalClusterRequest, CredentialRecord,
    DeleteCredentialRequest, PutCredentialRequest,
};
use sha2::{Digest, Sha256};

use super::tls::TestCa;
use super::{sigterm_and_wait, BrokerProcess};

/// The logical cluster the brokers' unauthenticated PLAINTEXT listeners serve
/// (`--tenant`, passed by `BrokerProcess::start_in_cell`).
pub const TENANT: &str = "lkc-local";

/// One controller voter as an OS process.
pub struct ControllerProcess {
    pub id: u64,
    pub addr: String,
    dir: PathBuf,
    log: PathBuf,
    voters: String,
    extra: Vec<String>,
    child: Option<Child>,
}

impl ControllerProcess {
    pub fn new(
        id: u64,
        addr: String,
        root: &std::path::Path,
        voters: &str,
        extra: &[&str],
    ) -> Self {
        ControllerProcess {
            id,
            addr,
            dir: root.join(format!("controller-{id}")),
            log: root.join(format!("controller-{id}.log")),
            voters: voters.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        }
    }

    // The child is stopped or killed by the test or on drop.
    #[allow(clippy::zombie_processes)]
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("controller log");
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args([
                "controller",
                "--node-id",
                &self.id.to_string(),
                "--listen",
                &self.addr,
            ])
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--voters", &self.voters, "--cell-id", "cell-test"])
            .args(&self.extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn tributary controller");
        self.child = Some(child);
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            assert!(
                sigterm_and_wait(&mut c),
                "voter {} did not stop on SIGTERM",
                self.id
            );
        }
    }

    pub fn pause(&self, stop: bool) {
        if let Some(c) = &self.child {
            unsafe { super::libc_kill(c.id() as i32, if stop { 19 } else { 18 }) };
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- controller {} log tail ---\n{}",
                self.id,
                self.log_tail()
            );
        }
        self.kill9();
    }
}

/// A port free right now on 127.0.0.1 (voters must know each other's addresses before
/// they start, so these cannot be bound by the processes themselves).
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

pub struct Cell {
    pub voters: Vec<ControllerProcess>,
    pub brokers: Vec<BrokerProcess>,
    /// Voter addresses, comma-separated (the brokers' `--controllers`).
    pub controllers: String,
    /// The CA of the brokers' SASL_SSL certificate, for a cell started with TLS.
    pub tls: Option<TestCa>,
    _tmp: tempfile::TempDir,
}

/// Which listeners a cell's brokers serve clients on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Clients {
    /// PLAINTEXT, bound to [`TENANT`] without authentication.
    Plaintext,
    /// SASL_PLAINTEXT.
    Sasl,
    /// SASL_PLAINTEXT and SASL_SSL.
    SaslSsl,
}

impl Cell {
    /// `voters` controllers (1 or 3) and `brokers` brokers in zones a, b, c, ...
    pub fn start(
        voters: usize,
        brokers: usize,
        controller_args: &[&str],
        broker_args: &[&str],
    ) -> Cell {
        Self::start_with(
            voters,
            brokers,
            controller_args,
            broker_args,
            Clients::Plaintext,
        )
    }

    /// Like [`Cell::start`], with brokers that serve tenants on a SASL_PLAINTEXT
    /// listener and nobody unauthenticated (no `--tenant`).
    pub fn start_sasl(
        voters: usize,
        brokers: usize,
        controller_args: &[&str],
        broker_args: &[&str],
    ) -> Cell {
        Self::start_with(voters, brokers, controller_args, broker_args, Clients::Sasl)
    }

    /// Like [`Cell::start_sasl`], with a SASL_SSL listener on every broker as well, whose
    /// certificate a fresh CA ([`Cell::tls`]) signed.
    pub fn start_sasl_ssl(
        voters: usize,
        brokers: usize,
        controller_args: &[&str],
        broker_args: &[&str],
    ) -> Cell {
        Self::start_with(
            voters,
            brokers,
            controller_args,
            broker_args,
            Clients::SaslSsl,
        )
    }

    fn start_with(
        voters: usize,
        brokers: usize,
        controller_args: &[&str],
        broker_args: &[&str],
        clients: Clients,
    ) -> Cell {
        let tls = (clients == Clients::SaslSsl).then(|| TestCa::new("tributary test CA"));
        let tmp = tempfile::tempdir().expect("tempdir");
        let addrs: Vec<String> = (0..voters).map(|_| free_addr()).collect();
        let spec = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut vs: Vec<ControllerProcess> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                ControllerProcess::new(i as u64 + 1, a.clone(), tmp.path(), &spec, controller_args)
            })
            .collect();
        for v in &mut vs {
            v.spawn();
        }
        let controllers = addrs.join(",");
        let bs = (0..brokers)
            .map(|i| {
                let zone = format!("zone-{}", (b'a' + i as u8) as char);
                let id = i as i32 + 1;
                match (&tls, clients) {
                    (Some(ca), _) => BrokerProcess::start_in_cell_with_sasl_ssl(
                        id,
                        &controllers,
                        &zone,
                        broker_args,
                        &ca.cert,
                        &ca.key,
                    ),
                    (None, Clients::Plaintext) => {
                        BrokerProcess::start_in_cell(id, &controllers, &zone, broker_args)
                    }
                    (None, _) => {
                        BrokerProcess::start_in_cell_with_sasl(id, &controllers, &zone, broker_args)
                    }
                }
            })
            .collect();
        Cell {
            voters: vs,
            brokers: bs,
            controllers,
            tls,
            _tmp: tmp,
        }
    }

    pub fn client(&self) -> ControllerClient {
        let addrs: Vec<String> = self.controllers.split(',').map(str::to_string).collect();
        let options = ClientOptions {
            call_timeout: Duration::from_secs(2),
            max_attempts: 40,
            ..Default::default()
        };
        ControllerClient::new(&addrs, options).expect("controller client")
    }

    /// Every running broker's address, comma-separated (a client bootstrap list).
    pub fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .filter(|b| b.is_running())
            .map(|b| b.addr.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every running broker's SASL_PLAINTEXT address, comma-separated.
    pub fn sasl_bootstrap(&self) -> String {
        self.brokers
            .iter()
            .filter(|b| b.is_running())
            .filter_map(|b| b.sasl_addr.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every running broker's SASL_SSL address, comma-separated.
    pub fn sasl_ssl_bootstrap(&self) -> String {
        self.brokers
            .iter()
            .filter(|b| b.is_running())
            .filter_map(|b| b.sasl_ssl_addr.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The CA file SASL_SSL clients of this cell trust.
    pub fn ca(&self) -> &std::path::Path {
        &self.tls.as_ref().expect("a cell started with TLS").ca
    }

    /// Create logical cluster `id` (as the control plane would).
    pub async fn create_tenant(&self, id: &str) {
        self.create_tenant_with_limits(id, None).await
    }

    /// Create (or update) tenant `id` with its plan's `limits` (`None`: unlimited).
    pub async fn create_tenant_with_limits(&self, id: &str, limits: Option<ClusterLimits>) {
        let r = self
            .client()
            .create_logical_cluster(CreateLogicalClusterRequest {
                cluster_id: id.into(),
                organization_id: format!("org-{id}"),
                limits,
            })
            .await
            .expect("create the tenant");
        assert_eq!(r.error_code, 0, "{}", r.error_message);
    }

    /// Give `cluster` the API key `key` with `secret` (only its SHA-256 and SCRAM verifiers
    /// travel), owned by `principal` (`User:u-...` has full access, `User:sa-...` only its
    /// ACLs').
    pub async fn put_key(&self, cluster: &str, key: &str, secret: &str, principal: &str) {
        let hash: String = Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let r = self
            .client()
            .put_credential(PutCredentialRequest {
                credential: Some(CredentialRecord {
                    api_key: key.into(),
                    cluster_id: cluster.into(),
                    principal: principal.into(),
                    secret_sha256: hash,
                    owner_is_user: principal.starts_with("User:u-"),
                    scram: control_plane::scram::credentials(secret),
                }),
            })
            .await
            .expect("put credential");
        assert_eq!(r.error_code, 0, "{}", r.error_message);
    }

    pub async fn revoke_key(&self, key: &str) {
        let r = self
            .client()
            .delete_credential(DeleteCredentialRequest {
                api_key: key.into(),
            })
            .await
            .expect("delete credential");
        assert_eq!(r.error_code, 0, "{}", r.error_message);
    }

    /// Create the tenant the brokers serve and wait until `n` brokers are ACTIVE.
    pub async fn ready(&self, n: usize) {
        let c = self.client();
        let r = c
            .create_logical_cluster(CreateLogicalClusterRequest {
                cluster_id: TENANT.into(),
                organization_id: "org-test".into(),
                limits: None,
            })
            .await
            .expect("create the tenant");
        assert_eq!(r.error_code, 0, "{}", r.error_message);
        self.wait_active(n).await;
    }

    /// Wait until at least `n` brokers are ACTIVE in the controller's view.
    pub async fn wait_active(&self, n: usize) {
        let c = self.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(load) = c.get_cell_load(Default::default()).await {
                let active = load
                    .brokers
                    .iter()
                    .filter(|b| b.state == BrokerState::Active as i32)
                    .count();
                if active >= n {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{n} brokers never became active");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
