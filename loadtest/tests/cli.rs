//! The binary end to end: `loadtest run --mock-cluster --out` writes a result whose summary is printed,
//! and `loadtest plot` turns it into the three PNGs. Also: bad flags fail before anything starts.

use std::process::Command;

fn loadtest() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_loadtest"));
    c.env("RUST_BACKTRACE", "0");
    c
}

#[test]
fn run_then_plot() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("run.json");
    let out = loadtest()
        .args([
            "run",
            "--mock-cluster",
            "--quiet",
            "--duration",
            "2",
            "--warmup",
            "1",
        ])
        .args([
            "--rate",
            "500",
            "--acks",
            "-1",
            "--compression",
            "zstd",
            "--record-size",
            "100",
        ])
        .args(["--tenant", "a", "--tenant", "b:user:pass:200"])
        .arg("--out")
        .arg(&result)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("% [total]"), "{stdout}");
    assert!(stdout.contains("messages produced"), "{stdout}");

    let r = loadtest::result::RunResult::read(&result).unwrap();
    assert_eq!(r.workload.acks, -1);
    assert_eq!(r.tenants[0].target_rate, 500);
    assert_eq!(r.tenants[1].target_rate, 200);
    assert!(r.total.counters.acked > 0);

    let plots = dir.path().join("plots");
    let out = loadtest()
        .arg("plot")
        .arg(&result)
        .arg("--out-dir")
        .arg(&plots)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["latency-over-time.png", "latency-cdf.png", "throughput.png"] {
        assert!(plots.join(f).is_file(), "missing {f}");
    }
}

#[test]
fn invalid_workload_fails_fast() {
    for args in [
        &["run", "--acks", "2"][..],
        &["run", "--record-size", "4"],
        &["run", "--compression", "brotli"],
        &["run", "--tenant", "a:only-user"],
        &["run", "-X", "no-equals-sign"],
    ] {
        let out = loadtest().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
    }
}
