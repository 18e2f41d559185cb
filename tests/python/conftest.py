"""Fixtures for the Tributary Python client compatibility suite.

A fresh standalone broker is started as a real OS process per test module
(tmp data dir, port 0, port file).  ``Broker.restart()`` restarts it on the same
data dir and the same port (SIGKILL or SIGTERM) so that clients can reconnect.

Environment:
  TRIBUTARY_BIN   path of the broker binary (default /work/target/debug/tributary)
"""
import os
import signal
import subprocess
import time
import uuid

import pytest

TRIBUTARY_BIN = os.environ.get("TRIBUTARY_BIN", "/work/target/debug/tributary")

_LIVE_BROKERS = []


class BrokerError(RuntimeError):
    pass


class Broker:
    def __init__(self, workdir, default_partitions=1, retention_check_ms=None,
                 fsync=None, extra_args=()):
        self.workdir = str(workdir)
        self.data_dir = os.path.join(self.workdir, "data")
        self.port_file = os.path.join(self.workdir, "port")
        self.log_path = os.path.join(self.workdir, "broker.log")
        os.makedirs(self.data_dir, exist_ok=True)
        self.default_partitions = default_partitions
        self.retention_check_ms = retention_check_ms
        self.fsync = fsync
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = 0
        self.starts = 0
        self._log = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.port

    def _args(self, port):
        args = [TRIBUTARY_BIN, "broker", "--standalone",
                "--listen", "127.0.0.1:%d" % port,
                "--data-dir", self.data_dir,
                "--port-file", self.port_file,
                "--default-partitions", str(self.default_partitions)]
        if self.retention_check_ms is not None:
            args += ["--retention-check-ms", str(self.retention_check_ms)]
        if self.fsync is not None:
            args += ["--fsync", self.fsync]
        return args + self.extra_args

    def start(self, timeout=20.0):
        if not os.path.exists(TRIBUTARY_BIN):
            raise BrokerError("broker binary not found: %s (set TRIBUTARY_BIN)" % TRIBUTARY_BIN)
        assert self.proc is None, "broker already running"
        # A restarted broker reuses its previous port; binding may briefly fail.
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            if os.path.exists(self.port_file):
                os.unlink(self.port_file)
            self._log = open(self.log_path, "ab")
            self._log.write(("\n=== start #%d (attempt %d) port=%d ===\n"
                             % (self.starts + 1, attempt, self.port)).encode())
            self._log.flush()
            env = dict(os.environ, NO_COLOR="1")
            self.proc = subprocess.Popen(self._args(self.port), stdout=self._log, env=env,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            addr = self._wait_port_file(deadline)
            if addr is not None:
                break
            # process exited before listening
            self._log.close()
            self.proc = None
            if time.monotonic() >= deadline or attempt >= 20:
                raise BrokerError("broker did not start; log tail:\n" + self.log_tail())
            time.sleep(0.25)
        host, port = addr.rsplit(":", 1)
        port = int(port)
        if self.port and port != self.port:
            raise BrokerError("broker came back on port %d, expected %d" % (port, self.port))
        self.port = port
        self.starts += 1
        return self

    def _wait_port_file(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return None
            try:
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text and ":" in text:
                    return text
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        raise BrokerError("broker did not write its port file in time; log tail:\n" + self.log_tail())

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise BrokerError("broker ignored %s for %.0fs" % (sig, timeout))
        rc = self.proc.returncode
        self.proc = None
        self._log.close()
        return rc

    def kill(self):
        return self.stop(sig=signal.SIGKILL)

    def restart(self, kill=True):
        """Restart on the same data dir and port. kill=True uses SIGKILL (crash)."""
        self.stop(sig=signal.SIGKILL if kill else signal.SIGTERM)
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- diagnostics -------------------------------------------------------
    def log_tail(self, lines=80):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return "(no broker log)"
        return "\n".join(data[-lines:])

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


def start_broker(workdir, **kw):
    b = Broker(workdir, **kw).start()
    _LIVE_BROKERS.append(b)
    return b


def stop_broker(b):
    try:
        rc = b.stop()
    finally:
        if b in _LIVE_BROKERS:
            _LIVE_BROKERS.remove(b)
    return rc


@pytest.fixture(scope="module")
def broker(tmp_path_factory, request):
    """A fresh broker per test module. Modules may set BROKER_OPTS = {...}."""
    opts = dict(getattr(request.module, "BROKER_OPTS", {}))
    opts.setdefault("default_partitions", 1)
    workdir = tmp_path_factory.mktemp("broker-" + request.module.__name__.split(".")[-1])
    b = start_broker(workdir, **opts)
    yield b
    rc = stop_broker(b)
    # A clean SIGTERM shutdown must exit 0 (or by the signal itself).
    assert rc in (0, -signal.SIGTERM), "broker exited with %r on SIGTERM; log tail:\n%s" % (rc, b.log_tail())


@pytest.fixture
def topic_name(request):
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return "t-%s-%s" % (base, uuid.uuid4().hex[:8])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _LIVE_BROKERS:
        for b in list(_LIVE_BROKERS):
            rep.sections.append(("broker log tail (%s)" % b.log_path, b.log_tail(120)))
