//! One benchmark run from start to result.
//!
//! Owns: the order of things (validate, create topics, start consumers and wait for their group
//! assignment, start paced producers, report every second, drain, stop), the phase of each one-second
//! window (warm-up / measure / drain), the live progress line on stderr, and assembling the [`RunResult`].
//! Every thread is bounded by a deadline computed up front, so a run always ends on its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};

use crate::collector::{Aggregator, Phase, Recorder, Window};
use crate::consumer::{self, ConsumerJob};
use crate::producer::{self, ProducerJob};
use crate::result::{RunEvent, RunResult, SecondSample, RESULT_VERSION};
use crate::timeline::{AckTimeline, BUCKET_MS};
use crate::workload::Workload;

/// Longest wait for every consumer to get its group assignment before producers start.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between group assignment and the first send when consumers start from "latest".
const OFFSET_SETTLE: Duration = Duration::from_secs(1);
/// Per-tenant progress lines are printed for at most this many tenants.
const MAX_TENANT_LINES: usize = 4;
const TICK: Duration = Duration::from_secs(1);

type Handle = JoinHandle<Result<()>>;
/// Start of the pacer schedule after the producers' epoch.
const START_DELAY: Duration = Duration::from_millis(10);
/// Output kept from an `--exec-at` command.
const MAX_EVENT_OUTPUT: usize = 4096;

/// How a run is done, beyond the workload itself.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Progress lines on stderr.
    pub progress: bool,
    /// Commands to run with `sh -c` at a number of seconds into the measured phase.
    pub exec_at: Vec<(f64, String)>,
    /// Number every record and read everything back after the run (see [`crate::verify`]).
    pub verify: bool,
}

/// Parses `SECS:CMD` (`--exec-at`).
pub fn parse_exec_at(s: &str) -> Result<(f64, String)> {
    let (secs, cmd) = s
        .split_once(':')
        .with_context(|| format!("--exec-at {s:?}: expected SECS:COMMAND"))?;
    let secs: f64 = secs
        .trim()
        .parse()
        .with_context(|| format!("--exec-at {s:?}: bad seconds {secs:?}"))?;
    if !(0.0..=crate::workload::MAX_DURATION_S as f64).contains(&secs) || cmd.trim().is_empty() {
        bail!(
            "--exec-at {s:?}: seconds must be 0..={} and the command non-empty",
            crate::workload::MAX_DURATION_S
        );
    }
    Ok((secs, cmd.to_string()))
}

/// Runs the workload; progress lines go to stderr when `progress` is set.
pub fn run(workload: Workload, progress: bool) -> Result<RunResult> {
    run_with(
        workload,
        &RunOptions {
            progress,
            ..RunOptions::default()
        },
    )
}

/// Runs the workload with `opts`.
pub fn run_with(workload: Workload, opts: &RunOptions) -> Result<RunResult> {
    let progress = opts.progress;
    workload.validate()?;
    if opts.verify {
        anyhow::ensure!(
            workload.record_size >= crate::verify::MIN_VERIFY_RECORD_SIZE,
            "--verify needs record_size >= {} (bytes 8..16 carry the record id)",
            crate::verify::MIN_VERIFY_RECORD_SIZE
        );
    }
    let w = Arc::new(workload);
    let tenants = w.effective_tenants();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the admin runtime")?;
    let fresh = if w.create_topics {
        rt.block_on(crate::clients::ensure_topics(&w))?
    } else {
        vec![false; tenants.len()]
    };

    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    // Room for the whole load, flush and drain in the ack timeline.
    let buckets = ((w.warmup_s + w.duration_s + 2 * w.drain_s + 20) * 1000 / BUCKET_MS) as usize;
    let origin_us = START_DELAY.as_micros() as u64;
    let measure_us = (START_DELAY + w.warmup()).as_micros() as u64;
    let recs: Vec<Arc<Recorder>> = tenants
        .iter()
        .map(|_| Arc::new(Recorder::new(origin_us, buckets, measure_us, opts.verify)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let hard_deadline = Instant::now()
        + JOIN_TIMEOUT
        + w.warmup()
        + w.duration()
        + Duration::from_secs(w.drain_s + 10);

    // Consumers first, so nothing measured is published before the group listens.
    let mut consumers: Vec<(Arc<AtomicBool>, Handle)> = Vec::new();
    for (ti, t) in tenants.iter().enumerate() {
        let group = format!("{}-{}-{run_id}", w.topic_prefix, t.name);
        for i in 0..w.consumers {
            let assigned = Arc::new(AtomicBool::new(false));
            let job = ConsumerJob {
                workload: w.clone(),
                tenant: t.clone(),
                group: group.clone(),
                index: i,
                rec: recs[ti].clone(),
                assigned: assigned.clone(),
                stop: stop.clone(),
                deadline: hard_deadline,
                offset_reset: if fresh[ti] { "earliest" } else { "latest" },
            };
            let h = std::thread::Builder::new()
                .name(format!("lt-c-{}-{i}", t.name))
                .spawn(move || consumer::run(job))
                .context("spawning consumer thread")?;
            consumers.push((assigned, h));
        }
    }
    if let Err(e) = wait_assigned(&consumers) {
        stop.store(true, Ordering::Release);
        let _ = join_all(consumers.into_iter().map(|(_, h)| h).collect());
        return Err(e);
    }

    // With "latest", a consumer looks up its start offsets just after assignment; give that lookup time
    // to finish so early messages are not skipped (they would show up as a permanent backlog).
    if fresh.iter().any(|f| !f) && w.consumers > 0 {
        std::thread::sleep(OFFSET_SETTLE);
    }

    // Producers: the pacer schedule starts now; measuring starts after warm-up.
    let epoch = Instant::now();
    let start = epoch + START_DELAY;
    let load_end = start + w.warmup() + w.duration();
    let measure_start = start + w.warmup();
    let started = unix_secs() + w.warmup_s;
    let mut producers: Vec<Handle> = Vec::new();
    for (ti, t) in tenants.iter().enumerate() {
        for i in 0..w.producers {
            let job = ProducerJob {
                workload: w.clone(),
                tenant: t.clone(),
                index: i,
                rec: recs[ti].clone(),
                epoch,
                start,
                stop: load_end,
                rate: w.producer_rate(t),
                verify: opts.verify,
            };
            let h = std::thread::Builder::new()
                .name(format!("lt-p-{}-{i}", t.name))
                .spawn(move || producer::run(job))
                .context("spawning producer thread")?;
            producers.push(h);
        }
    }

    let events: Vec<JoinHandle<Option<RunEvent>>> = opts
        .exec_at
        .iter()
        .map(|(secs, cmd)| {
            let at = measure_start + Duration::from_secs_f64(*secs);
            let cmd = cmd.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("lt-exec".into())
                .spawn(move || exec_at(cmd, at, measure_start, hard_deadline, &stop))
                .context("spawning the --exec-at thread")
        })
        .collect::<Result<_>>()?;

    let mut aggs: Vec<Aggregator> = tenants
        .iter()
        .map(|t| Aggregator::new(&t.name, w.tenant_rate(t)))
        .collect();
    let mut total = Aggregator::new("total", aggs.iter().map(|a| a.target_rate).sum());
    let mut spare: Window = Window::default();
    let mut sum = Window::default();
    let drain_end = load_end + Duration::from_secs(w.drain_s);
    let mut k: u32 = 1;
    // Windows are as long as they really were (a late tick makes a longer window, not a wrong rate).
    let mut last_take = start;
    loop {
        let tick = start + TICK * k;
        let now = Instant::now();
        if tick > now {
            std::thread::sleep(tick - now);
        }
        k += 1;
        let phase = if tick <= measure_start {
            Phase::Warmup
        } else if tick <= load_end {
            Phase::Measure
        } else {
            Phase::Drain
        };
        let t_s = tick.saturating_duration_since(measure_start).as_secs_f64()
            - measure_start.saturating_duration_since(tick).as_secs_f64();
        let taken_at = Instant::now();
        let secs = taken_at.saturating_duration_since(last_take).as_secs_f64();
        last_take = taken_at;
        sum.reset();
        let mut per_tenant = Vec::with_capacity(aggs.len());
        for (agg, rec) in aggs.iter_mut().zip(&recs) {
            spare.reset();
            rec.take_into(&mut spare);
            per_tenant.push(agg.ingest(&spare, phase, t_s, secs));
            sum.merge(&spare);
        }
        let s = total.ingest(&sum, phase, t_s, secs);
        if progress {
            eprintln!("{}", progress_line(&s, phase, &total));
            // A line per tenant too, while that stays readable.
            if (2..=MAX_TENANT_LINES).contains(&aggs.len()) {
                for (ts, agg) in per_tenant.iter().zip(&aggs) {
                    eprintln!("    {:>12}: {}", agg.name, tenant_line(ts));
                }
            }
        }
        // A producer only returns before the end of the load phase when it failed (e.g. a client
        // property librdkafka rejects): stop now rather than run the full duration.
        if Instant::now() + TICK < load_end && producers.iter().any(|h| h.is_finished()) {
            break;
        }
        let producers_done = producers.iter().all(|h| h.is_finished());
        // With no consumers there is nothing to drain; otherwise stop once every acked message was read.
        let caught_up = w.consumers == 0 || total.backlog() == 0;
        if phase == Phase::Drain && ((producers_done && caught_up) || tick >= drain_end) {
            break;
        }
        if tick >= hard_deadline {
            break;
        }
    }
    stop.store(true, Ordering::Release);
    let total_measured_s = total.measured_s();
    let mut errors = join_all(producers);
    errors.extend(join_all(consumers.into_iter().map(|(_, h)| h).collect()));
    let events: Vec<RunEvent> = events
        .into_iter()
        .filter_map(|h| h.join().ok().flatten())
        .collect();
    for e in &events {
        if progress {
            eprintln!(
                "exec at {:.2}s (exit {:?}): {}\n{}",
                e.at_s,
                e.exit_code,
                e.command,
                e.output.trim_end()
            );
        }
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e.context("a client thread failed"));
    }

    let us = |t: Instant| t.saturating_duration_since(epoch).as_micros() as u64;
    let mut tenant_results: Vec<_> = aggs
        .iter()
        .zip(&recs)
        .map(|(a, r)| {
            let mut t = a.finish(r.skipped.load(Ordering::Relaxed));
            t.acks = r.timeline(us(load_end), us(measure_start));
            t
        })
        .collect();
    if opts.verify {
        for ((t, tr), rec) in tenants.iter().zip(tenant_results.iter_mut()).zip(&recs) {
            if progress {
                eprintln!("reading back tenant {}'s records...", t.name);
            }
            tr.verify = Some(crate::verify::read_back(&w, t, &rec.acked_ids(), run_id)?);
        }
    }
    let skipped_total = tenant_results.iter().map(|t| t.rate_slots_skipped).sum();
    let mut total = total.finish(skipped_total);
    total.acks = AckTimeline::merge(&tenant_results.iter().map(|t| &t.acks).collect::<Vec<_>>());
    if opts.verify {
        let vs: Vec<_> = tenant_results
            .iter()
            .filter_map(|t| t.verify.as_ref())
            .collect();
        total.verify = Some(crate::verify::Verification {
            acked: vs.iter().map(|v| v.acked).sum(),
            read_back: vs.iter().map(|v| v.read_back).sum(),
            missing: vs.iter().map(|v| v.missing).sum(),
            duplicates: vs.iter().map(|v| v.duplicates).sum(),
            unacked_present: vs.iter().map(|v| v.unacked_present).sum(),
            complete: vs.iter().all(|v| v.complete),
        });
    }
    Ok(RunResult {
        version: RESULT_VERSION,
        workload: w.redacted(),
        started_unix_s: started,
        measured_s: total_measured_s,
        total,
        tenants: tenant_results,
        events,
    })
}

/// Runs `cmd` with `sh -c` at `at` (stdout and stderr kept, bounded); gives up on it at
/// `deadline`. Not run at all (None) if the run stops first.
fn exec_at(
    cmd: String,
    at: Instant,
    measure_start: Instant,
    deadline: Instant,
    stop: &AtomicBool,
) -> Option<RunEvent> {
    use std::io::Read;
    loop {
        if stop.load(Ordering::Acquire) {
            return None;
        }
        let now = Instant::now();
        if now >= at {
            break;
        }
        std::thread::sleep((at - now).min(Duration::from_millis(50)));
    }
    let began = Instant::now();
    let mut ev = RunEvent {
        command: cmd.clone(),
        at_s: began.saturating_duration_since(measure_start).as_secs_f64()
            - measure_start.saturating_duration_since(began).as_secs_f64(),
        at_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        ..RunEvent::default()
    };
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1; {cmd}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            ev.output = format!("could not start sh: {e}");
            return Some(ev);
        }
    };
    let out = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    if let Some(mut pipe) = child.stdout.take() {
        let out = out.clone();
        // Not joined: a command that leaves a background process holding the pipe must not hang us.
        let _ = std::thread::Builder::new()
            .name("lt-exec-out".into())
            .spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                    let room = MAX_EVENT_OUTPUT.saturating_sub(o.len());
                    o.extend_from_slice(&buf[..n.min(room)]);
                }
            });
    }
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                ev.exit_code = status.code();
                break;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    ev.took_ms = began.elapsed().as_secs_f64() * 1000.0;
    // Let the reader pick up the last bytes.
    std::thread::sleep(Duration::from_millis(50));
    ev.output =
        String::from_utf8_lossy(&out.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    Some(ev)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn wait_assigned(consumers: &[(Arc<AtomicBool>, Handle)]) -> Result<()> {
    let until = Instant::now() + JOIN_TIMEOUT;
    loop {
        if consumers.iter().all(|(a, _)| a.load(Ordering::Acquire)) {
            return Ok(());
        }
        if consumers.iter().any(|(_, h)| h.is_finished()) {
            bail!("a consumer stopped before joining its group (see the log above)");
        }
        if Instant::now() >= until {
            bail!(
                "consumers did not get a group assignment within {}s: is the broker reachable and does it support consumer groups?",
                JOIN_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn join_all(handles: Vec<Handle>) -> Vec<anyhow::Error> {
    let mut errs = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errs.push(e),
            Err(_) => errs.push(anyhow!("client thread panicked")),
        }
    }
    errs
}

/// The short per-tenant progress line.
pub fn tenant_line(s: &SecondSample) -> String {
    format!(
        "pub {:>8.0} msg/s {:>7.2} MB/s | cons {:>8.0} msg/s | backlog {:>8} | p99 pub {:>7.2} ms e2e {:>7.2} ms | err {} | throttle {}/{} ms",
        s.publish_msgs_s,
        s.publish_mb_s,
        s.consume_msgs_s,
        s.backlog,
        s.publish_p99_ms,
        s.e2e_p99_ms,
        s.errors,
        s.produce_throttle_ms,
        s.fetch_throttle_ms
    )
}

/// One line per second: this second's rates and p99s, the run's p99 so far, backlog and errors.
pub fn progress_line(s: &SecondSample, phase: Phase, total: &Aggregator) -> String {
    let tag = match phase {
        Phase::Warmup => "warm-up",
        Phase::Measure => "measure",
        Phase::Drain => "drain",
    };
    let (pub99, e2e99) = total.p99_so_far();
    format!(
        "[{:>6.0}s {tag:>7}] pub {:>8.0} msg/s {:>7.2} MB/s | cons {:>8.0} msg/s {:>7.2} MB/s | backlog {:>8} | p99 pub {:>7.2} ms e2e {:>7.2} ms (run {:.2}/{:.2}) | err {} | throttle {}/{} ms",
        s.t_s,
        s.publish_msgs_s,
        s.publish_mb_s,
        s.consume_msgs_s,
        s.consume_mb_s,
        s.backlog,
        s.publish_p99_ms,
        s.e2e_p99_ms,
        pub99,
        e2e99,
        s.errors,
        s.produce_throttle_ms,
        s.fetch_throttle_ms
    )
}
