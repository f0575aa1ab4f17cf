"""``Overwrite: F`` at the gateway door under concurrency (issue 13, class 4):
two HTTP-TPC pulls of different sources to one new destination, through the
gateway, the copy function and real SeaweedFS. Each source (tests/interop
helpers' ``HttpSource``) holds its body before the last byte until *both*
pulls are waiting there, so both have passed the destination check; then
both are released and the store decides (``If-None-Match: *``,
functions/copy/create_only.py): exactly one body ends ``success: Created``,
the other ``failure: ...`` naming the existing destination, and the object is
the winner's, whole.
"""
from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import requests

from dynafed_client.stack import processes
from tests.interop.helpers import Gate, HttpSource, gateway_process, stack_allowing

MiB = 1024 * 1024
GUARD_S = 120.0  # failure guard only


def last_line(body: str) -> str:
    lines = [line for line in body.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_two_pulls_to_one_new_destination_exactly_one_wins(tmp_path: Path) -> None:
    size = 2 * MiB
    data = {name: os.urandom(size) for name in ("a", "b")}
    gates = {name: Gate([size - 1], timeout=GUARD_S) for name in data}
    with HttpSource() as source, stack_allowing(tmp_path / "stack", source, with_gateway=False) as st:
        urls = {name: source.add(f"{name}.bin", data[name], gate=gates[name]) for name in data}
        with gateway_process(st.state_dir) as gw:
            dest_key = f"races/{uuid.uuid4().hex}.bin"
            bodies: dict[str, str] = {}

            def pull(name: str) -> None:
                with requests.request("COPY", f"{gw}/default/demo-copy/{dest_key}", timeout=GUARD_S * 2,
                                      headers={"Source": urls[name], "Overwrite": "F"}) as resp:
                    bodies[name] = f"{resp.status_code}\n{resp.text}"

            threads = [threading.Thread(target=pull, args=(name,)) for name in data]
            for thread in threads:
                thread.start()
            try:
                # the barrier: both sources are holding their last byte
                processes.wait_until(lambda: True if all(g.waiting_at is not None for g in gates.values()) else None,
                                     what="both pulls to reach the last byte", timeout=GUARD_S)
            finally:
                for gate in gates.values():
                    gate.release_all()
                for thread in threads:
                    thread.join(GUARD_S * 2)
            finals = {name: last_line(body) for name, body in bodies.items()}
            winners = [name for name, final in finals.items() if final == "success: Created"]
            assert len(winners) == 1, bodies
            loser = next(name for name in data if name not in winners)
            assert finals[loser].startswith("failure: "), bodies[loser][-500:]
            assert "DESTINATION_EXISTS" in finals[loser] or "exists" in finals[loser], finals[loser]
            stored = st.s3_client("default").get_object(Bucket="demo-copy", Key=dest_key)["Body"].read()
            assert stored == data[winners[0]]
