"""kcat (librdkafka 2.0.x from Debian): metadata, keyed produce, formatted consume, group consume."""
import json
import re
import shutil
import subprocess
import time

from helpers import create_topic, wait_until, watermarks

KCAT = shutil.which("kcat") or "kcat"
BROKER_OPTS = {"default_partitions": 2}


def kcat(broker, *args, input=None, timeout=30):
    cmd = [KCAT, "-b", broker.bootstrap, "-X", "socket.timeout.ms=10000", *args]
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    assert r.returncode == 0, "%s exited %d\nstdout: %s\nstderr: %s" % (
        " ".join(cmd), r.returncode, r.stdout.decode(errors="replace")[-2000:],
        r.stderr.decode(errors="replace")[-2000:])
    return r.stdout.decode()


def test_kcat_metadata(broker):
    create_topic(broker.bootstrap, "kcat-meta", 3)
    out = kcat(broker, "-L")
    assert re.search(r"^\s*1 brokers:\s*$", out, re.M), out
    assert re.search(r"^\s*broker 1 at 127\.0\.0\.1:%d" % broker.port, out, re.M), out
    assert re.search(r'^\s*topic "kcat-meta" with 3 partitions:', out, re.M), out
    for p in range(3):
        assert re.search(r"partition %d, leader 1, replicas: 1, isrs: 1" % p, out), out
    j = json.loads(kcat(broker, "-L", "-J", "-t", "kcat-meta"))
    assert [b["id"] for b in j["brokers"]] == [1]
    assert j["brokers"][0]["name"] == "127.0.0.1:%d" % broker.port
    (t,) = j["topics"]
    assert t["topic"] == "kcat-meta" and len(t["partitions"]) == 3


def test_kcat_keyed_produce_and_formatted_consume(broker):
    topic = create_topic(broker.bootstrap, "kcat-keys", 1)
    lines = ["key%d:value %d" % (i, i) for i in range(50)] + [":no key", "k-empty:"]
    kcat(broker, "-P", "-t", topic, "-p", "0", "-K:", "-H", "src=kcat", "-H", "src=again",
         input=("\n".join(lines) + "\n").encode())
    assert watermarks(broker.bootstrap, topic, 0) == (0, 52)
    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%p|%o|%k|%K|%s|%S|%h\n")
    rows = out.splitlines()
    assert len(rows) == 52, out
    for i in range(50):
        assert rows[i] == "0|%d|key%d|%d|value %d|%d|src=kcat,src=again" % (
            i, i, len("key%d" % i), i, len("value %d" % i)), rows[i]
    # empty key and empty value are empty (length 0), not NULL (-1)
    assert rows[50] == "0|50||0|no key|6|src=kcat,src=again", rows[50]
    assert rows[51] == "0|51|k-empty|7||0|src=kcat,src=again", rows[51]

    # offsets: -o -2 reads the last two, -c limits the count
    out = kcat(broker, "-C", "-t", topic, "-o", "-2", "-e", "-q", "-f", "%o:%s\n")
    assert out.splitlines() == ["50:no key", "51:"]
    out = kcat(broker, "-C", "-t", topic, "-o", "10", "-c", "3", "-q", "-f", "%o:%k\n")
    assert out.splitlines() == ["10:key10", "11:key11", "12:key12"]


def test_kcat_group_consume(broker):
    topic = create_topic(broker.bootstrap, "kcat-group", 2)
    for p in range(2):
        kcat(broker, "-P", "-t", topic, "-p", str(p), "-K:",
             input="".join("k%d-%d:p%d-v%d\n" % (p, i, p, i) for i in range(20)).encode())
    out = kcat(broker, "-G", "kcat-grp", topic, "-o", "beginning", "-e", "-q",
               "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=100",
               "-f", "%p %o %k %s\n", timeout=60)
    rows = sorted(tuple(r.split(" ")) for r in out.splitlines())
    want = sorted((str(p), str(i), "k%d-%d" % (p, i), "p%d-v%d" % (p, i)) for p in range(2) for i in range(20))
    assert rows == want, out
    # kcat committed on close: the same group now reads only new records
    kcat(broker, "-P", "-t", topic, "-p", "1", "-K:", input=b"new:fresh\n")
    out = kcat(broker, "-G", "kcat-grp", topic, "-e", "-q", "-f", "%p %o %k %s\n", timeout=60)
    assert out.splitlines() == ["1 20 new fresh"], out
