//! Output of the CLI: human-readable tables (the default) or JSON (`-o json`), to stdout.

use serde_json::Value;

/// `-o`/`--output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables.
    #[default]
    Human,
    /// The API's JSON.
    Json,
}

/// A table: a header and rows of cells, printed with aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}", padded.join(" | ").trim_end())
    };
    let mut out = vec![line(header.to_vec())];
    out.push(format!(
        "  {}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    ));
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// A single resource as a two-column table of fields.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|(k, v)| vec![k.to_string(), v.clone()])
        .collect();
    table(&["Field", "Value"], &rows)
}

/// `v` at a `/`-separated path as text: strings as they are, numbers and booleans
/// printed, absent or null as "".
pub fn text(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Prints `value` as JSON, or the human form `human` gives.
pub fn print(format: Format, value: &Value, human: impl FnOnce(&Value) -> String) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        ),
        Format::Human => println!("{}", human(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["ID", "Name"],
            &[
                vec!["env-1".into(), "prod".into()],
                vec!["env-22".into(), "x".into()],
            ],
        );
        assert_eq!(
            t,
            "  ID     | Name\n  -------+-----\n  env-1  | prod\n  env-22 | x"
        );
        let v: Value = serde_json::json!({"a": {"b": 3, "c": null}});
        assert_eq!(text(&v, "/a/b"), "3");
        assert_eq!(text(&v, "/a/c"), "");
        assert_eq!(text(&v, "/z"), "");
    }
}
