//! PNG charts from result files.
//!
//! Owns: `loadtest plot`: latency over time (p50/p99 per second), latency CDFs (publish and end-to-end)
//! and throughput per tenant over time, one chart each, overlaying every result given; and, for results
//! with an ack timeline, the publish timeline (acks per 100 ms above, publish p99 and max per second
//! below, `--exec-at` events as vertical lines, the longest gap shaded) that shows a failover. Text is drawn
//! with DejaVu Sans embedded from the `dejavu` crate (registered with plotters' `ab_glyph` backend), so
//! no system fonts or fontconfig are needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;

use crate::result::{RunResult, SecondSample};

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (1280, 720);
/// Legends beyond this many series are left out (the lines are still drawn).
const MAX_LEGEND: usize = 16;
/// The CDF x axis shows "nines": x = -log10(1 - q), capped at 99.999%.
const MAX_NINES: f64 = 5.0;

static FONT_INIT: Once = Once::new();

fn register_font() -> Result<()> {
    let mut res = Ok(());
    FONT_INIT.call_once(|| {
        res = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| anyhow!("embedded DejaVu Sans could not be loaded"));
    });
    res
}

/// One figure of a second's sample (a latency percentile, in ms).
type Figure = fn(&SecondSample) -> f64;

/// The points of one per-second figure of `series`. A 0 ms value means the second had no
/// samples (recorded values are >= 1 us): it is left out, leaving a gap.
fn per_second(series: &[SecondSample], f: Figure) -> Vec<(f64, f64)> {
    series
        .iter()
        .map(|x| (x.t_s, f(x)))
        .filter(|&(_, y)| y > 0.0)
        .collect()
}

/// One line per `(name, figure)` of `series`, labelled `"{label} {name}"`.
fn per_second_lines(label: &str, series: &[SecondSample], figures: &[(&str, Figure)]) -> Vec<Line> {
    figures
        .iter()
        .map(|&(name, f)| Line {
            label: format!("{label} {name}"),
            points: per_second(series, f),
        })
        .collect()
}

/// One labelled line.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
}

/// Writes the three charts into `out_dir` and returns their paths.
pub fn plot_files(inputs: &[PathBuf], out_dir: &Path) -> Result<Vec<PathBuf>> {
    register_font()?;
    let mut results = Vec::new();
    for p in inputs {
        let label = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string());
        results.push((label, RunResult::read(p)?));
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut written = Vec::new();

    let mut lat = Vec::new();
    for (label, r) in &results {
        lat.extend(per_second_lines(
            label,
            &r.total.series,
            &[
                ("publish p50", |x| x.publish_p50_ms),
                ("publish p99", |x| x.publish_p99_ms),
                ("e2e p50", |x| x.e2e_p50_ms),
                ("e2e p99", |x| x.e2e_p99_ms),
            ],
        ));
    }
    let path = out_dir.join("latency-over-time.png");
    chart(
        &path,
        &Spec {
            title: "Latency over time (all tenants)",
            x_desc: "seconds since measurement start",
            y_desc: "latency (ms, log scale)",
            x_fmt: None,
            log_y: true,
            legend: SeriesLabelPosition::UpperLeft,
        },
        &lat,
    )?;
    written.push(path);

    let mut cdf = Vec::new();
    for (label, r) in &results {
        let nines = |v: &Vec<[f64; 2]>| -> Vec<(f64, f64)> {
            v.iter()
                .map(|[q, ms]| (to_nines(*q), *ms))
                .filter(|&(_, ms)| ms > 0.0)
                .collect()
        };
        cdf.push(Line {
            label: format!("{label} publish"),
            points: nines(&r.total.publish_cdf),
        });
        cdf.push(Line {
            label: format!("{label} end-to-end"),
            points: nines(&r.total.e2e_cdf),
        });
    }
    let path = out_dir.join("latency-cdf.png");
    chart(
        &path,
        &Spec {
            title: "Latency distribution (all tenants)",
            x_desc: "percentile",
            y_desc: "latency (ms, log scale)",
            x_fmt: Some(nines_label),
            log_y: true,
            legend: SeriesLabelPosition::LowerRight,
        },
        &cdf,
    )?;
    written.push(path);

    let mut tput = Vec::new();
    for (label, r) in &results {
        for t in &r.tenants {
            tput.push(Line {
                label: format!("{label}/{} publish", t.name),
                points: t.series.iter().map(|x| (x.t_s, x.publish_mb_s)).collect(),
            });
            tput.push(Line {
                label: format!("{label}/{} consume", t.name),
                points: t.series.iter().map(|x| (x.t_s, x.consume_mb_s)).collect(),
            });
        }
    }
    let path = out_dir.join("throughput.png");
    chart(
        &path,
        &Spec {
            title: "Throughput per tenant",
            x_desc: "seconds since measurement start",
            y_desc: "MB/s (10^6 bytes)",
            x_fmt: None,
            log_y: false,
            legend: SeriesLabelPosition::UpperLeft,
        },
        &tput,
    )?;
    written.push(path);

    if results.iter().any(|(_, r)| !r.total.acks.acked.is_empty()) {
        let path = out_dir.join("publish-timeline.png");
        timeline_chart(&path, &results)?;
        written.push(path);
    }
    Ok(written)
}

/// What an event is called on a chart: the first line of its output, else its command.
pub fn event_label(e: &crate::result::RunEvent) -> String {
    let first = e.output.lines().map(str::trim).find(|l| !l.is_empty());
    let text = first.unwrap_or(e.command.trim());
    let mut label: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        label.push_str("...");
    }
    label
}

/// Two panels sharing the time axis: acknowledged msgs/s per 100 ms (top) and publish p99 and max
/// per second (bottom, log scale); events as red vertical lines, each result's longest gap shaded.
fn timeline_chart(path: &Path, results: &[(String, RunResult)]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let mut rates = Vec::new();
    let mut lats = Vec::new();
    let mut gaps = Vec::new();
    let mut events = Vec::new();
    for (label, r) in results {
        let a = &r.total.acks;
        if a.acked.is_empty() {
            continue;
        }
        rates.push(Line {
            label: format!("{label} acked msgs/s (per {} ms)", a.bucket_ms),
            points: a.rate_points(),
        });
        lats.extend(per_second_lines(
            label,
            &r.total.series,
            &[
                ("publish p99 per second", |x| x.publish_p99_ms),
                ("publish max per second", |x| x.publish_max_ms),
            ],
        ));
        if a.longest_partition_gap_ms > 0.0 {
            gaps.push((
                a.longest_partition_gap_from_s,
                a.longest_partition_gap_from_s + a.longest_partition_gap_ms / 1000.0,
                format!(
                    "{label}: longest gap of one partition ({}) {:.0} ms",
                    a.longest_partition_gap_at, a.longest_partition_gap_ms
                ),
                RGBColor(230, 140, 20),
            ));
        }
        if a.longest_gap_ms > 0.0 {
            gaps.push((
                a.longest_gap_from_s,
                a.longest_gap_from_s + a.longest_gap_ms / 1000.0,
                format!(
                    "{label}: longest gap of all partitions {:.0} ms",
                    a.longest_gap_ms
                ),
                RGBColor(200, 30, 30),
            ));
        }
        for e in &r.events {
            events.push((e.at_s, event_label(e)));
        }
    }
    let (x0, x1) = x_range(
        rates
            .iter()
            .chain(&lats)
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(events.iter().map(|e| e.0)),
    );
    let r1 = rates
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.15;
    let l1 = lats
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.5;
    let l0 = log_floor(
        lats.iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(f64::MAX, f64::min),
        l1,
    );

    let root = BitMapBackend::new(path, (SIZE.0, SIZE.1 + 280)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled("Publish timeline (all tenants)", (FONT, 28))
        .map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(((SIZE.1 + 280) / 2) as i32 - 20);
    let red = RGBColor(200, 30, 30);

    let mut c = ChartBuilder::on(&top)
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(x0..x1, 0.0..r1)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("seconds since measurement start")
        .y_desc("acknowledged msgs/s")
        .label_style((FONT, 16))
        .draw()
        .map_err(|e| err(&e))?;
    for (from, to, label, color) in &gaps {
        let color = *color;
        c.draw_series(std::iter::once(Rectangle::new(
            [(*from, 0.0), (*to, r1)],
            color.mix(0.15).filled(),
        )))
        .map_err(|e| err(&e))?
        .label(label.clone())
        .legend(move |(x, y)| {
            Rectangle::new([(x, y - 6), (x + 20, y + 6)], color.mix(0.3).filled())
        });
    }
    // Palette colour 0 is a red, kept for the events.
    draw_lines(&mut c, &rates, 1).map_err(|e| err(&e))?;
    for (at, label) in &events {
        c.draw_series(std::iter::once(PathElement::new(
            vec![(*at, 0.0), (*at, r1)],
            red.stroke_width(2),
        )))
        .map_err(|e| err(&e))?;
        c.draw_series(std::iter::once(Text::new(
            format!(" {label}"),
            (*at, r1 * 0.97),
            (FONT, 16).into_font().color(&red),
        )))
        .map_err(|e| err(&e))?;
    }
    draw_legend(&mut c, SeriesLabelPosition::LowerLeft).map_err(|e| err(&e))?;

    let mut c = ChartBuilder::on(&bottom)
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(x0..x1, (l0..l1).log_scale())
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("seconds since measurement start")
        .y_desc("publish latency (ms, log scale)")
        .label_style((FONT, 16))
        .draw()
        .map_err(|e| err(&e))?;
    draw_lines(&mut c, &lats, rates.len() + 1).map_err(|e| err(&e))?;
    for (at, _) in &events {
        c.draw_series(std::iter::once(PathElement::new(
            vec![(*at, l0), (*at, l1)],
            red.stroke_width(2),
        )))
        .map_err(|e| err(&e))?;
    }
    if !lats.is_empty() {
        draw_legend(&mut c, SeriesLabelPosition::UpperLeft).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Quantile (0..=1) to the CDF's x position.
pub fn to_nines(q: f64) -> f64 {
    if q >= 1.0 {
        MAX_NINES
    } else {
        (-(1.0 - q).log10()).clamp(0.0, MAX_NINES)
    }
}

/// CDF axis labels: x = 2 reads "99%".
fn nines_label(x: &f64) -> String {
    if *x >= MAX_NINES - 1e-9 {
        return "max".into();
    }
    let pct = 100.0 * (1.0 - 10f64.powf(-x));
    if pct < 99.0 {
        format!("{pct:.0}%")
    } else {
        let s = format!("{pct:.3}");
        format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// How one chart looks.
struct Spec {
    title: &'static str,
    x_desc: &'static str,
    y_desc: &'static str,
    x_fmt: Option<fn(&f64) -> String>,
    /// Logarithmic y axis (latencies spanning 1 ms .. 1 s stay readable).
    log_y: bool,
    /// Where the legend goes (out of the way of the lines' usual path).
    legend: SeriesLabelPosition,
}

fn chart(path: &Path, spec: &Spec, lines: &[Line]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let points = || lines.iter().flat_map(|l| l.points.iter());
    let (x0, x1) = x_range(points().map(|p| p.0));
    let (y0, y1) = points().fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.1 };
    let y0 = if spec.log_y { log_floor(y0, y1) } else { 0.0 };

    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(spec.title, (FONT, 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80);
    // The two coordinate types differ, so the drawing code is stamped out for each.
    macro_rules! draw {
        ($c:expr) => {{
            let mut c = $c.map_err(|e| err(&e))?;
            let mut mesh = c.configure_mesh();
            mesh.x_desc(spec.x_desc)
                .y_desc(spec.y_desc)
                .label_style((FONT, 16));
            if let Some(f) = spec.x_fmt.as_ref() {
                // One label per "nine": 0%, 90%, 99%, 99.9%, ...
                mesh.x_labels(MAX_NINES as usize + 1).x_label_formatter(f);
            }
            mesh.draw().map_err(|e| err(&e))?;
            draw_lines(&mut c, lines, 0).map_err(|e| err(&e))?;
            if !lines.is_empty() {
                draw_legend(&mut c, spec.legend.clone()).map_err(|e| err(&e))?;
            }
        }};
    }
    if spec.log_y {
        draw!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()));
    } else {
        draw!(builder.build_cartesian_2d(x0..x1, y0..y1));
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// The x axis over `xs`: their span, or 0..1 when there are none, at least 1 wide.
fn x_range(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if x0 > x1 {
        (0.0, 1.0)
    } else if x1 - x0 < 1e-9 {
        (x0, x0 + 1.0)
    } else {
        (x0, x1)
    }
}

/// Where a log axis topping at `max` starts: a little under the smallest value `min`, or three
/// decades down when that is not positive (log axes need a positive floor).
fn log_floor(min: f64, max: f64) -> f64 {
    if min > 0.0 && min < max {
        min * 0.8
    } else {
        max / 1000.0
    }
}

/// `lines` in palette colours from `first_color` on; the first [`MAX_LEGEND`] get a legend entry.
fn draw_lines<'a, DB, CT>(
    c: &mut ChartContext<'a, DB, CT>,
    lines: &[Line],
    first_color: usize,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
{
    for (i, l) in lines.iter().enumerate() {
        let color = Palette99::pick(first_color + i).to_rgba();
        let series = c.draw_series(LineSeries::new(
            l.points.iter().copied(),
            color.stroke_width(2),
        ))?;
        if i < MAX_LEGEND {
            series.label(l.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    Ok(())
}

/// The legend box, the same on every chart.
fn draw_legend<'a, DB, CT>(
    c: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    c.configure_series_labels()
        .position(position)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::result::{RunResult, SecondSample, TenantResult, RESULT_VERSION};
    use crate::stats::LatencyHist;
    use crate::workload::Workload;

    fn synthetic(name: &str, scale: f64) -> TenantResult {
        let mut h = LatencyHist::new();
        for i in 1..=10_000u64 {
            h.record_us((i as f64 * scale) as u64);
        }
        let series = (1..=20)
            .map(|t| SecondSample {
                t_s: t as f64,
                publish_mb_s: 50.0 * scale,
                consume_mb_s: 49.0 * scale,
                publish_p50_ms: 2.0 * scale,
                publish_p99_ms: 5.0 * scale + (t % 5) as f64,
                e2e_p50_ms: 3.0 * scale,
                e2e_p99_ms: 8.0 * scale + (t % 3) as f64,
                ..SecondSample::default()
            })
            .collect();
        TenantResult {
            name: name.into(),
            publish_cdf: h.cdf(),
            e2e_cdf: h.cdf(),
            series,
            ..TenantResult::default()
        }
    }

    #[test]
    fn writes_three_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("run-a.json");
        RunResult {
            version: RESULT_VERSION,
            workload: Workload::default(),
            started_unix_s: 0,
            measured_s: 20.0,
            tenants: vec![synthetic("quiet", 1.0), synthetic("noisy", 2.0)],
            total: synthetic("total", 1.5),
            events: Vec::new(),
        }
        .write(&input)
        .unwrap();
        let out = dir.path().join("plots");
        let files = plot_files(&[input], &out).unwrap();
        assert_eq!(files.len(), 3);
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            assert_eq!(&bytes[1..4], b"PNG", "{}", f.display());
            assert!(bytes.len() > 10_000, "{} suspiciously small", f.display());
        }
        if let Ok(keep) = std::env::var("LOADTEST_KEEP_PLOTS") {
            for f in ["latency-over-time.png", "latency-cdf.png", "throughput.png"] {
                std::fs::copy(out.join(f), std::path::Path::new(&keep).join(f)).unwrap();
            }
        }
    }

    #[test]
    fn writes_the_publish_timeline_with_events() {
        use crate::result::RunEvent;
        use crate::timeline::AckTimeline;
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("failover.json");
        let mut total = synthetic("total", 1.0);
        // 30 s at 100 ms: steady 1000 msgs/s, nothing from 10.0 s to 12.5 s.
        let acked: Vec<u32> = (0..300)
            .map(|i| if (100..125).contains(&i) { 0 } else { 100 })
            .collect();
        total.acks = AckTimeline {
            bucket_ms: 100,
            start_s: -5.0,
            acked,
            longest_gap_ms: 2500.0,
            longest_gap_from_s: 5.0,
            longest_partition_gap_ms: 4000.0,
            longest_partition_gap_from_s: 4.5,
            longest_partition_gap_at: "t/2".into(),
            partition_gaps: Vec::new(),
        };
        for s in &mut total.series {
            s.publish_max_ms = s.publish_p99_ms * 3.0;
        }
        RunResult {
            version: RESULT_VERSION,
            workload: Workload::default(),
            started_unix_s: 0,
            measured_s: 20.0,
            tenants: vec![total.clone()],
            total,
            events: vec![RunEvent {
                command: "kill -9 4242".into(),
                at_s: 5.0,
                output: "killed broker-2 (pid 4242), leader of 3 of 6 partitions\n".into(),
                ..RunEvent::default()
            }],
        }
        .write(&input)
        .unwrap();
        let out = dir.path().join("plots");
        let files = plot_files(&[input], &out).unwrap();
        assert_eq!(files.len(), 4);
        let timeline = out.join("publish-timeline.png");
        assert_eq!(files[3], timeline);
        let bytes = std::fs::read(&timeline).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 10_000, "suspiciously small");
        if let Ok(keep) = std::env::var("LOADTEST_KEEP_PLOTS") {
            std::fs::copy(&timeline, Path::new(&keep).join("publish-timeline.png")).unwrap();
        }
    }

    #[test]
    fn event_labels() {
        use crate::result::RunEvent;
        let e = RunEvent {
            command: "sh kill.sh".into(),
            output: "\nkilled broker-1\nmore".into(),
            ..RunEvent::default()
        };
        assert_eq!(event_label(&e), "killed broker-1");
        let e = RunEvent {
            command: "x".repeat(100),
            ..RunEvent::default()
        };
        assert_eq!(event_label(&e).len(), 63);
    }

    #[test]
    fn nines_axis() {
        assert_eq!(to_nines(0.0), 0.0);
        assert!((to_nines(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(to_nines(1.0), MAX_NINES);
        assert_eq!(nines_label(&1.0), "90%");
        assert_eq!(nines_label(&3.0), "99.9%");
        assert_eq!(nines_label(&MAX_NINES), "max");
    }
}
