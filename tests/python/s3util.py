"""A real S3 server for tests, and a fault-injecting HTTP proxy to put in front of it.

* MotoS3: moto's S3 server (moto.server, from PyPI) in a child process on 127.0.0.1 and a free
  port; `upload_tree` puts a local mirror into a bucket under the same keys.
* FaultProxy: a small HTTP/1.1 proxy (test-only) that forwards to the server and, for requests
  matching a rule, answers 500/503/403, stalls past the client's timeout, cuts the body short
  or resets the connection instead. Every request is logged so tests can check that the faults
  were really hit.
"""

import http.client
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Test credentials: the secret is grepped for in every output of qlake.
ACCESS_KEY = "AKIAQLAKETESTKEY0001"
SECRET_KEY = "qlake-test-secret-Zx81vQ3pLm"
BUCKET = "flatfiles"


STOCK_PREFIX = {"stocks_daily": "us_stocks_sip/day_aggs_v1",
                "stocks_minute": "us_stocks_sip/minute_aggs_v1"}


def key_for(dataset: str, day: str) -> str:
    """The bucket key of a stocks flat file (flatfiles.md): prefix/YYYY/MM/YYYY-MM-DD.csv.gz."""
    return f"{STOCK_PREFIX[dataset]}/{day[:4]}/{day[5:7]}/{day}.csv.gz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class MotoS3:
    """moto's server mode in a child process; stop() ends it."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(self.port)
        except Exception:
            self.stop()
            raise
        self.client = self.make_client()

    def make_client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )

    def create_bucket(self, bucket: str = BUCKET):
        self.client.create_bucket(Bucket=bucket)

    def put(self, key: str, body: bytes, bucket: str = BUCKET):
        self.client.put_object(Bucket=bucket, Key=key, Body=body)

    def delete(self, key: str, bucket: str = BUCKET):
        self.client.delete_object(Bucket=bucket, Key=key)

    def head(self, key: str, bucket: str = BUCKET) -> dict:
        return self.client.head_object(Bucket=bucket, Key=key)

    def upload_tree(self, root: Path, bucket: str = BUCKET, skip_prefix: str = "_") -> list:
        """Uploads every file below root under its relative path; returns the keys."""
        keys = []
        for p in sorted(Path(root).rglob("*")):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and not rel.startswith(skip_prefix):
                self.put(rel, p.read_bytes(), bucket)
                keys.append(rel)
        return keys

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _error_xml(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>qlake-fault-proxy</RequestId></Error>"
    ).encode()


_STATUS_ERRORS = {
    500: ("InternalError", "injected internal error"),
    503: ("SlowDown", "injected slow down"),
    403: ("AccessDenied", "injected access denied"),
    404: ("NoSuchKey", "injected no such key"),
}


class FaultProxy:
    """Forwards HTTP requests to `upstream_port`; injects faults by rule.

    add_rule(match, actions, method=None, repeat_last=False): requests whose path contains
    `match` (and whose method is `method`, if given) take the next action of the list:
      "pass"        forward unchanged
      500/503/403/404  answer that status with an S3 error body
      "stall"       accept, send nothing for stall_seconds, then drop the connection
      "stall_body"  send the headers and half the body, then stall and drop
      "cut"         send the headers with the full Content-Length, then a third of the
                    body, then close (a truncated body)
      "reset"       reset the connection without answering
    When the list is used up the request passes, or with repeat_last the last action repeats
    forever (a permanent fault).
    """

    def __init__(self, upstream_port: int, stall_seconds: float = 3.0):
        self.upstream_port = upstream_port
        self.stall_seconds = stall_seconds
        self.rules = []
        self.log = []  # (method, path, action)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = proxy._next_action(self.command, self.path)
                with proxy.lock:
                    proxy.log.append((self.command, self.path, action))
                if action in _STATUS_ERRORS:
                    code, msg = _STATUS_ERRORS[action]
                    payload = _error_xml(code, msg) if self.command != "HEAD" else b""
                    self.send_response(action)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(_error_xml(code, msg))))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if action == "stall":
                    time.sleep(proxy.stall_seconds)
                    self.close_connection = True
                    return
                if action == "reset":
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                # Forward.
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in ("transfer-encoding", "connection", "content-length"):
                        continue
                    self.send_header(k, v)
                full_len = len(data)
                if self.command == "HEAD":
                    full_len = int(resp.getheader("Content-Length") or 0)
                self.send_header("Content-Length", str(full_len))
                if action in ("cut", "stall_body") and self.command != "HEAD" and data:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    part = len(data) // 3 if action == "cut" else len(data) // 2
                    self.wfile.write(data[: max(1, part)])
                    self.wfile.flush()
                    if action == "stall_body":
                        time.sleep(proxy.stall_seconds)
                    self.close_connection = True
                    return
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _safe(self):
                try:
                    self._handle()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _safe

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_rule(self, match, actions, method=None, repeat_last=False):
        with self.lock:
            self.rules.append(
                {"match": match, "method": method, "actions": list(actions),
                 "repeat_last": repeat_last}
            )

    def clear(self):
        with self.lock:
            self.rules.clear()
            self.log.clear()

    def _next_action(self, method, path):
        with self.lock:
            for r in self.rules:
                if r["match"] in path and (r["method"] is None or r["method"] == method):
                    if r["actions"]:
                        if len(r["actions"]) == 1 and r["repeat_last"]:
                            return r["actions"][0]
                        return r["actions"].pop(0)
            return "pass"

    def hits(self, action=None, match=None):
        with self.lock:
            return [
                e for e in self.log
                if (action is None or e[2] == action) and (match is None or match in e[1])
            ]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def qlake_s3_env(endpoint: str, **extra) -> dict:
    """Environment for qlake against a test server: endpoint and the test credentials."""
    env = {
        "QLAKE_S3_ENDPOINT": endpoint,
        "QLAKE_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "QLAKE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "QLAKE_S3__CONNECT_TIMEOUT": "2",
        "QLAKE_S3__REQUEST_TIMEOUT": "1",
        "QLAKE_FETCH__BACKOFF_MS": "20",
        "QLAKE_FETCH__BACKOFF_MAX_MS": "200",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env
