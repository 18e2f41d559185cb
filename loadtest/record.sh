# Sourced by the benchmark scripts: record_section REPORT inserts the markdown section in
# REPORT at the top of BENCHMARKS.md's results (newest first), before its first "## ".
record_section() {
  python3 - "$1" <<'PY'
import sys
section = open(sys.argv[1]).read().rstrip() + "\n\n"
doc = open("BENCHMARKS.md").read()
i = doc.find("\n## ")
doc = doc[: i + 1] + section + doc[i + 1 :] if i >= 0 else doc + "\n" + section
open("BENCHMARKS.md", "w").write(doc)
PY
  echo "recorded in BENCHMARKS.md" >&2
}
