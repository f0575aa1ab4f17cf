"""Slow clients and admission under real gunicorn (issue 13, classes 2 and 3),
every function as its container CMD runs it, against real SeaweedFS.

* Class 2: connections that send ``Content-Length: 100`` and one byte hold
  neither a thread nor a work slot (dynafed_runtime/worker.py buffers each
  request in the event loop): a real request and ``/healthz`` are answered
  while they wait, and a request that does not arrive within
  ``DYNAFED_FN_REQUEST_READ_TIMEOUT`` is answered ``408 REQUEST_TIMEOUT``.
* Class 3: without ``THREADS`` the app admits exactly what gunicorn has
  work threads for (``config.Concurrency``, handed to the worker through
  gunicorn's ``raw_env``): the (limit+1)th request gets 429 at once and
  ``/healthz`` is answered while every slot works.

Everything is driven by events (connections counted in /proc, requests parked
in a FaultProxy until released); the timeouts are failure guards only.
gthread's behaviour that made this necessary: gunicorn 27
``gunicorn/workers/gthread.py`` ``ThreadWorker.handle`` (a thread per
connection from its first byte, blocking reads of head and body).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
import requests

from dynafed_client.stack import processes
from tests.faults.copying import via, write_stores
from tests.faults.processes import FunctionProcess
from tests.faults.proxy import FaultProxy, Hold, Rule

#: more slow clients than the worker has threads (THREADS=2 + 2 spare)
SLOW_CLIENTS = 8
GUARD_S = 60.0  # failure guard only: a passing run never waits for it


def slow_client(port: int, *, expect_continue: bool = False) -> socket.socket:
    """A POST that announces 100 bytes and sends one."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
    head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100\r\n{'Expect: 100-continue' + chr(13) + chr(10) if expect_continue else ''}\r\n")
    sock.sendall(head.encode())
    if expect_continue:
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
    sock.sendall(b"{")
    return sock


def accepted(pid: int, server_port: int, clients: list[socket.socket]) -> bool:
    """Every one of ``clients`` is an open descriptor of process ``pid`` (it was accept()ed):
    /proc/net/tcp gives each connection's socket inode, /proc/<pid>/fd the process's."""
    wanted = {sock.getsockname()[1] for sock in clients}
    inodes = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:  # noqa: SIM115
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if local_port == server_port and remote_port in wanted:
            inodes.add(fields[9])
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(target[8:-1])
    return len(inodes) == len(wanted) and inodes <= held


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The whole answer on ``sock`` (the server closes the connection after it)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def request_for(function: str, seaweed) -> dict:
    """A request each function completes with 200 against the stack's store."""
    s3 = seaweed.s3_client()
    key = f"slow/{uuid.uuid4().hex[:10]}"
    s3.put_object(Bucket="demo", Key=key, Body=b"slow clients" * 100)
    if function == "checksum":
        return {"bucket": "demo", "key": key, "algorithms": ["adler32"]}
    if function == "copy":
        return {"source": {"store": "default", "bucket": "demo", "key": key},
                "destination": {"store": "default", "bucket": "demo-copy", "key": key}}
    return {"bucket": "demo", "prefix": key, "algorithms": ["adler32"]}


@pytest.mark.parametrize("function", ["checksum", "copy", "scrub"])
def test_slow_bodies_hold_no_thread_and_no_work_slot(seaweed, tmp_path, opened, function):
    env = {"THREADS": "2", "DYNAFED_FN_REQUEST_READ_TIMEOUT": "600"}  # the deadline is not what is tested here
    with FunctionProcess(function, seaweed.stores_file, tmp_path, env=env) as fn:
        (worker,) = fn.wait_workers(1)
        opened.extend(slow_client(fn.port) for _ in range(SLOW_CLIENTS))
        # the event: the worker has accepted every slow connection
        processes.wait_until(lambda: True if accepted(worker, fn.port, opened) else None,
                             what="the worker to accept the slow connections", timeout=GUARD_S)
        response = requests.post(fn.url, json=request_for(function, seaweed), timeout=GUARD_S)
        assert response.status_code == 200, response.text
        assert requests.get(f"{fn.url}/healthz", timeout=GUARD_S).status_code == 200
        assert requests.get(f"{fn.url}/readyz", timeout=GUARD_S).status_code == 200


@pytest.mark.parametrize("expect_continue", [False, True], ids=["buffered-by-the-loop", "read-by-the-thread"])
def test_a_request_that_does_not_arrive_in_time_is_408(seaweed, tmp_path, opened, expect_continue):
    """Buffered in the event loop, or (after ``Expect: 100-continue``) read by a
    thread under the same deadline: either way a 408 problem+json, then close."""
    env = {"THREADS": "1", "DYNAFED_FN_REQUEST_READ_TIMEOUT": "1"}
    with FunctionProcess("checksum", seaweed.stores_file, tmp_path, env=env) as fn:
        sock = slow_client(fn.port, expect_continue=expect_continue)
        opened.append(sock)
        status, headers, body = read_answer(sock)  # blocks until the worker answers and closes
        assert status == 408 and headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["code"] == "REQUEST_TIMEOUT" and problem["retryable"] is True
        assert "Traceback" not in body.decode()
        # the only work slot is free again
        assert requests.post(fn.url, json=request_for("checksum", seaweed), timeout=GUARD_S).status_code == 200


@pytest.fixture(scope="module")
def proxied_stores(seaweed, tmp_path_factory) -> Iterator[tuple[FaultProxy, object]]:
    with FaultProxy(seaweed.endpoint_url) as proxy:
        stores = {**seaweed.stores, "default": via(seaweed.stores["default"], proxy.url)}
        yield proxy, write_stores(tmp_path_factory.mktemp("admission") / "stores.json", stores)


@pytest.mark.parametrize(("function", "slots"), [("checksum", 8), ("copy", 4), ("scrub", 4)])
def test_without_threads_the_limit_plus_one_request_is_429(seaweed, proxied_stores, tmp_path, function, slots):
    """No THREADS in the environment (a bare container CMD, the local stack):
    ``slots`` requests work (each parked in the proxy on its source's GetObject),
    the next gets 429 with Retry-After, and the probes are answered."""
    proxy, stores_file = proxied_stores
    hold = Hold(timeout=120)
    key = f"admission/{uuid.uuid4().hex[:10]}"
    seaweed.s3_client().put_object(Bucket="demo", Key=key, Body=b"x" * 1000)
    if function == "scrub":  # a scrub lists its prefix first: park the listing
        marker = key.rsplit("/", 1)[1]
        proxy.add(Rule(action=hold, where=lambda r: r.operation.startswith("ListObjects") and marker in r.target))
    else:
        proxy.add(Rule(op="GetObject", path=f"/demo/{key}$", action=hold))
    body = request_for(function, seaweed)
    if function == "checksum":
        body["key"] = key
    elif function == "scrub":
        body["prefix"] = key
    else:
        body["source"]["key"] = key
        body["destination"] = {"store": "archive", "bucket": "archive", "key": key}  # streamed: reads the source
    answers: list[int] = []
    with FunctionProcess(function, stores_file, tmp_path) as fn:
        assert "THREADS" not in fn.env
        def one(i: int) -> None:
            mine = dict(body)
            if function == "copy":  # each copy to its own destination
                mine["destination"] = {**body["destination"], "key": f"{key}-{i}"}
            answers.append(requests.post(fn.url, json=mine, timeout=GUARD_S * 2).status_code)

        workers = [threading.Thread(target=one, args=(i,)) for i in range(slots)]
        for thread in workers:
            thread.start()
        try:
            assert hold.wait_for(slots, timeout=GUARD_S), "the requests did not all reach the store"
            extra = requests.post(fn.url, json=body, timeout=GUARD_S)
            assert extra.status_code == 429, extra.text
            assert extra.json()["code"] == "TOO_MANY_REQUESTS" and extra.headers["Retry-After"] == "1"
            assert requests.get(f"{fn.url}/healthz", timeout=GUARD_S).status_code == 200
        finally:
            hold.release()
            for thread in workers:
                thread.join(GUARD_S * 2)
    proxy.clear()
    assert answers == [200] * slots
