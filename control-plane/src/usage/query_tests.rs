use super::*;
use serde_json::json;

const T: i64 = 1_795_341_600_000; // 2026-11-22T10:00:00Z

fn req(v: serde_json::Value) -> QueryRequest {
    serde_json::from_value(v).expect("a request")
}

fn base() -> serde_json::Value {
    json!({
        "aggregations": [{"metric": "io.confluent.kafka.server/received_bytes"}],
        "filter": {"field": "resource.kafka.id", "op": "EQ", "value": "lkc-a"},
        "granularity": "PT1M",
        "intervals": ["2026-11-22T10:00:00Z/PT1H"],
    })
}

fn with(key: &str, v: serde_json::Value) -> QueryRequest {
    let mut b = base();
    b[key] = v;
    req(b)
}

fn err(r: &QueryRequest) -> String {
    match plan(r, T) {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[test]
fn plans_the_confluent_shapes() {
    let p = plan(&req(base()), T).unwrap();
    assert_eq!(p.metric, Metric::ReceivedBytes);
    assert_eq!(p.clusters, vec!["lkc-a"]);
    assert_eq!(p.intervals, vec![(T, T + HOUR)]);
    assert_eq!(p.granularity, Some(MINUTE));
    assert!(!p.by_cluster && !p.by_topic);

    let or = with(
        "filter",
        json!({"op": "AND", "filters": [
            {"op": "OR", "filters": [
                {"field": "resource.kafka.id", "op": "EQ", "value": "lkc-b"},
                {"field": "resource.kafka.id", "op": "EQ", "value": "lkc-a"}]},
            {"field": "metric.topic", "op": "EQ", "value": "orders"}]}),
    );
    let p = plan(&or, T).unwrap();
    assert_eq!(p.clusters, vec!["lkc-a", "lkc-b"]);
    assert_eq!(p.topic.as_deref(), Some("orders"));

    let grouped = with("group_by", json!(["metric.topic", "resource.kafka.id"]));
    let p = plan(&grouped, T).unwrap();
    assert!(p.by_cluster && p.by_topic);
}

#[test]
fn says_what_to_fix() {
    let mut no_filter = base();
    no_filter.as_object_mut().unwrap().remove("filter");
    assert!(err(&req(no_filter)).contains("filter"));
    let unknown = with(
        "aggregations",
        json!([{"metric": "io.confluent.kafka.server/nope"}]),
    );
    assert!(err(&unknown).contains("descriptors"));
    assert!(err(&with("granularity", json!("PT2M"))).contains("PT1M"));
    assert!(err(&with("intervals", json!(["yesterday"]))).contains("ISO-8601"));
    assert!(err(&with("intervals", json!(["2026-11-22T10:00:00Z/PT7H"]))).contains("coarser"));
    assert!(err(&with("intervals", json!([]))).contains("intervals"));
    let topic_only = with(
        "filter",
        json!({"field": "metric.topic", "op": "EQ", "value": "orders"}),
    );
    assert!(err(&topic_only).contains("resource.kafka.id"));
    let mut requests = base();
    requests["aggregations"] = json!([{"metric": "io.confluent.kafka.server/request_count"}]);
    requests["group_by"] = json!(["metric.topic"]);
    assert!(err(&req(requests)).contains("per cluster"));
    assert!(err(&with("limit", json!(0))).contains("limit"));
    assert!(err(&with("filter", json!({"op": "NOT"}))).contains("EQ, OR or AND"));
    let deep = json!({"op": "AND", "filters": [{"op": "AND", "filters": [{"op": "AND",
        "filters": [{"op": "OR", "filters": [{"field": "resource.kafka.id", "op": "EQ", "value": "x"}]}]}]}]});
    assert!(err(&with("filter", deep)).contains("nest"));
    let many: Vec<_> = (0..=MAX_CLUSTERS)
        .map(|i| json!({"field": "resource.kafka.id", "op": "EQ", "value": format!("lkc-{i}")}))
        .collect();
    assert!(err(&with("filter", json!({"op": "OR", "filters": many}))).contains("at most"));
}

fn row(cluster: &str, topic: &str, minute: i64, value: i64) -> Row {
    Row {
        cluster_id: cluster.into(),
        topic: topic.into(),
        minute: T + minute * MINUTE,
        value,
    }
}

#[test]
fn counters_sum_and_gauges_keep_the_last_sample() {
    let rows = vec![
        row("", "", 0, 10),
        row("", "", 1, 20),
        row("", "", 5, 7),
        row("", "", 61, 1000), // outside the hour
    ];
    let mut p = plan(&with("granularity", json!("PT5M")), T).unwrap();
    let a = aggregate(&p, &rows).unwrap();
    let got: Vec<(String, f64)> = a
        .points
        .iter()
        .map(|p| (p.timestamp.clone(), p.value))
        .collect();
    assert_eq!(
        got,
        vec![
            ("2026-11-22T10:00:00Z".to_string(), 30.0),
            ("2026-11-22T10:05:00Z".to_string(), 7.0)
        ]
    );
    p.metric = Metric::RetainedBytes;
    let a = aggregate(&p, &rows).unwrap();
    assert_eq!(a.points[0].value, 20.0);
    p.granularity = None; // ALL
    let a = aggregate(&p, &rows).unwrap();
    assert_eq!(a.points.len(), 1);
    assert_eq!(a.points[0].timestamp, "2026-11-22T10:00:00Z");
    assert_eq!(a.points[0].value, 7.0);
    p.metric = Metric::ReceivedBytes;
    assert_eq!(aggregate(&p, &rows).unwrap().points[0].value, 37.0);
}

#[test]
fn groups_page_and_bound_points() {
    let mut p = plan(&with("group_by", json!(["metric.topic"])), T).unwrap();
    p.limit = 1;
    let rows = vec![row("", "a", 0, 1), row("", "b", 0, 2), row("", "b", 1, 3)];
    let first = aggregate(&p, &rows).unwrap();
    assert_eq!(first.total_groups, 2);
    assert_eq!(first.next_offset, Some(1));
    assert_eq!(first.points.len(), 1);
    assert_eq!(first.points[0].topic.as_deref(), Some("a"));
    assert_eq!(first.points[0].cluster_id, None);
    p.offset = 1;
    let second = aggregate(&p, &rows).unwrap();
    assert_eq!(second.next_offset, None);
    assert_eq!(second.points.len(), 2);

    let many: Vec<Row> = (0..=MAX_POINTS as i64)
        .map(|i| row("", &format!("t{i}"), 0, 1))
        .collect();
    p.offset = 0;
    p.limit = MAX_LIMIT;
    p.granularity = Some(MINUTE);
    assert!(
        aggregate(&p, &many).is_ok(),
        "limit bounds the groups first"
    );
    p.intervals = vec![(T, T + 6 * HOUR)];
    let long: Vec<Row> = (0..360)
        .flat_map(|m| (0..40).map(move |t| row("", &format!("t{t}"), m, 1)))
        .collect();
    assert!(matches!(aggregate(&p, &long), Err(Error::InvalidArgument(m)) if m.contains("points")));
}
