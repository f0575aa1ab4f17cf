"""A real XRootD server as a WLCG peer for the interop tests (reusable fixture module).

What it gives a test (see :func:`xrootd_peer` for the one-call version):

* :class:`ThrowawayCA` — a CA made for the test run with ``openssl``: a
  server certificate for ``localhost``/``127.0.0.1``, a client certificate
  (the identity that may mint macaroons), the CA as a PEM bundle
  (:attr:`ThrowawayCA.bundle`) and as a hashed ``X509_CERT_DIR``-style
  directory (:attr:`ThrowawayCA.cert_dir`, ``<subject hash>.0``).
* :class:`NetNamespace` — a private network namespace with only loopback up
  (``unshare --net`` as root). XRootD binds the wildcard address and has no
  bind-address directive (PROTOCOLS.md §7), so it runs in there; so must
  everything that talks to it. :meth:`NetNamespace.entered` moves the
  *calling thread* into the namespace (``setns(2)`` is per thread): sockets
  it opens, threads it starts and subprocesses it spawns (the local stack,
  the gateway, ``gfal-*``) live in the namespace until the block ends.
  :meth:`NetNamespace.command` prefixes an argv with ``nsenter`` for
  processes started from elsewhere.
* :class:`XRootD` — ``xrootd`` run as the ``xrootd`` user (it refuses root)
  with XrdHttp on TLS, the HTTP-TPC handler (``libXrdHttpTPC``, loaded only
  with TLS), macaroons (``libXrdMacaroons``) and ``adler32 md5 crc32c``
  checksums. Its namespace (export ``/data``):

  - ``/data/public/…``    anyone reads and writes;
  - ``/data/protected/…`` nothing without a token: a macaroon minted by
    :meth:`XRootD.mint_macaroon` (``Authorization: Bearer <macaroon>``)
    grants what its ``activity:`` caveat says.

  :meth:`XRootD.url`, :meth:`XRootD.write` / :meth:`XRootD.read` (straight
  into/out of its data directory, to seed and check without HTTP).
* :func:`gfal_env` / :func:`run_gfal` — the ``gfal-*`` commands with
  ``GFAL_PYTHONBIN=/usr/bin/python3`` and the CA directory as
  ``X509_CERT_DIR``; :func:`xrootd_missing` says which part is absent
  (feed it to :func:`tests.interop.helpers.require`).

Typical use (module-scoped, everything inside the namespace)::

    @pytest.fixture(scope="module")
    def peer(tmp_path_factory):
        require(xrootd_missing())
        with xrootd_peer(tmp_path_factory.mktemp("xrd")) as peer:
            yield peer           # the main thread is inside peer.netns here

Configuration facts are from XRootD 5.5.3 as packaged by Debian
(``xrootd-server``, ``xrootd-server-plugins``): XrdHttp
(``src/XrdHttp/XrdHttpProtocol.cc``: ``http.exthandler``, ``http.gridmap``,
``http.header2cgi``), XrdHttpTpc (``src/XrdHttpTpc/XrdHttpTpc.cc``) and
XrdMacaroons (``src/XrdMacaroons/XrdMacaroonsHandler.cc``: a
``POST`` with ``Content-Type: application/macaroon-request`` mints).
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

XROOTD_USER = "xrootd"
DEBIAN_PYTHON = "/usr/bin/python3"
XROOTD_PACKAGES = ("xrootd-server xrootd-server-plugins xrootd-client gfal2-util-scripts python3-gfal2-util "
                   "gfal2-plugin-file")
_CLONE_NEWNET = 0x40000000


# --- what is missing ------------------------------------------------------------

def xrootd_missing() -> str | None:
    """Why a real XRootD peer cannot run here, or None."""
    for tool, package in (("xrootd", "xrootd-server"), ("xrdadler32", "xrootd-client"),
                          ("gfal-copy", "gfal2-util-scripts"), ("openssl", "openssl"),
                          ("unshare", "util-linux"), ("nsenter", "util-linux"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            return f"{tool} not on PATH (apt-get install {package}; all of: {XROOTD_PACKAGES})"
    libs = ("libXrdHttp-5.so", "libXrdHttpTPC-5.so", "libXrdMacaroons-5.so")
    for lib in libs:
        if not any(Path(d, lib).exists() for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib",
                                                   "/usr/lib/aarch64-linux-gnu")):
            return f"{lib} not found (apt-get install xrootd-server-plugins)"
    if os.geteuid() != 0:
        return "not root: a private network namespace (unshare --net) needs root"
    try:
        pwd.getpwnam(XROOTD_USER)
    except KeyError:
        return f"no '{XROOTD_USER}' user (created by the xrootd-server package)"
    return None


# --- certificates -----------------------------------------------------------------

def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {done.stderr[-1500:]}")


def _subject_hash(cert: Path) -> str:
    done = subprocess.run(["openssl", "x509", "-noout", "-subject_hash", "-in", str(cert)],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@dataclasses.dataclass(frozen=True)
class ThrowawayCA:
    """A CA and two certificates it signed, made for one test run."""

    directory: Path
    #: the CA certificate (PEM) — a CA bundle of one
    bundle: Path
    #: a hashed CA directory (``<subject hash>.0``), as ``X509_CERT_DIR`` expects
    cert_dir: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_dn: str

    @classmethod
    def create(cls, directory: Path, *, client_cn: str = "dynafed-fn minter") -> ThrowawayCA:
        d = directory
        d.mkdir(parents=True, exist_ok=True)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                 "-days", "2", "-subj", "/DC=test/CN=dynafed-fn throwaway CA",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 cwd=d)
        (d / "server.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                                      "extendedKeyUsage=serverAuth,clientAuth\n"
                                      "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        (d / "client.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                                      "extendedKeyUsage=clientAuth\n")
        for name, subject in (("server", "/DC=test/CN=localhost"), ("client", f"/DC=test/CN={client_cn}")):
            _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                     "-subj", subject, cwd=d)
            _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                     "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=d)
        cert_dir = d / "certificates"
        cert_dir.mkdir(exist_ok=True)
        shutil.copy(d / "ca.pem", cert_dir / f"{_subject_hash(d / 'ca.pem')}.0")
        return cls(directory=d, bundle=d / "ca.pem", cert_dir=cert_dir, server_cert=d / "server.pem",
                   server_key=d / "server.key", client_cert=d / "client.pem", client_key=d / "client.key",
                   client_dn=f"/DC=test/CN={client_cn}")


# --- network namespace -------------------------------------------------------------

class NetNamespace:
    """A private network namespace with loopback up, held by a small process
    (``unshare --net``) that exits when its stdin closes — so it cannot
    outlive the test run even if pytest is killed. Root only."""

    def __init__(self) -> None:
        self._holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && echo up && exec cat >/dev/null"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline()
        if line.strip() != b"up":
            err = self._holder.stderr.read() if self._holder.stderr else b""
            self.close()
            raise RuntimeError(f"cannot make a network namespace: {err.decode(errors='replace')[-500:]}")
        self.path = f"/proc/{self._holder.pid}/ns/net"

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace (for a process started outside it)."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Move the calling thread into the namespace for the block, then back.
        Only what this thread does (and threads/processes it starts) is inside."""
        libc = ctypes.CDLL(None, use_errno=True)
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(self.path, os.O_RDONLY)
        try:
            if libc.setns(target, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the test network namespace failed")
            try:
                yield
            finally:
                if libc.setns(home, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back to the host network namespace failed")
        finally:
            os.close(home)
            os.close(target)

    def close(self) -> None:
        if self._holder.stdin:
            self._holder.stdin.close()
        try:
            self._holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._holder.kill()
            self._holder.wait()

    def __enter__(self) -> NetNamespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    """A free TCP port on the loopback of the namespace the calling thread is in."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server ----------------------------------------------------------------------

_CONFIG = """\
# written by tests/interop/xrootd.py
all.export /data
all.sitename dynafedfn-test
all.adminpath {admin}
all.pidpath {admin}
oss.localroot {root}
xrd.port {root_port}
xrd.protocol XrdHttp:{http_port} libXrdHttp.so
xrd.tls {cert} {key}
xrd.tlsca certdir {certdir}
http.cadir {certdir}
http.cert {cert}
http.key {key}
http.gridmap {gridmap}
http.exthandler xrdtpc libXrdHttpTPC.so
http.exthandler xrdmacaroons libXrdMacaroons.so
# 5.5.3: without it the Authorization header never reaches the macaroon plugin
http.header2cgi Authorization authz
macaroons.secretkey {secret}
ofs.authorize 1
ofs.authlib libXrdMacaroons.so
acc.authdb {authdb}
acc.audit deny
xrootd.chksum max 4 adler32 md5 crc32c
"""

#: anyone may read and write /data/public; the minter (client certificate,
#: mapped by the gridmap) may do anything (and so mint any token); nobody
#: else gets /data/protected without a macaroon
_AUTHDB = """\
u minter / a
u * /data/public a
"""


class XRootD:
    """A running ``xrootd`` (see the module docstring). Start it with the
    calling thread inside ``netns``."""

    def __init__(self, workdir: Path, ca: ThrowawayCA, netns: NetNamespace) -> None:
        self.workdir = workdir
        self.ca = ca
        self.netns = netns
        self.root = workdir / "root"
        self.data = self.root / "data"
        self.http_port = free_port()
        self.root_port = free_port()
        self.log_path = workdir / "xrootd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle
    def start(self) -> XRootD:
        user = pwd.getpwnam(XROOTD_USER)
        etc = self.workdir / "etc"
        admin = self.workdir / "admin"
        for d in (etc, admin, self.data / "public", self.data / "protected"):
            d.mkdir(parents=True, exist_ok=True)
        # xrootd reads its TLS key as its own user: private copies it owns
        cert, key = etc / "server.pem", etc / "server.key"
        shutil.copy(self.ca.server_cert, cert)
        shutil.copy(self.ca.server_key, key)
        os.chmod(key, 0o600)
        secret = etc / "macaroon-secret"
        secret.write_text(subprocess.run(["openssl", "rand", "-base64", "64"], capture_output=True, text=True,
                                         check=True).stdout)
        os.chmod(secret, 0o600)
        (etc / "gridmap").write_text(f'"{self.ca.client_dn}" minter\n')
        (etc / "authdb").write_text(_AUTHDB)
        config = etc / "xrootd.cfg"
        config.write_text(_CONFIG.format(admin=admin, root=self.root, root_port=self.root_port,
                                         http_port=self.http_port, cert=cert, key=key, certdir=self.ca.cert_dir,
                                         gridmap=etc / "gridmap", secret=secret, authdb=etc / "authdb"))
        for path in [self.workdir, *self.workdir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        # the CA directory (xrd.tlsca) is read by the xrootd user; keys stay private
        for path in [self.ca.directory, *self.ca.directory.rglob("*")]:
            if path.suffix != ".key":
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
                 "xrootd", "-c", str(config), "-n", "dynafedfn"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"xrootd exited {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"xrootd does not listen on {self.http_port}:\n{self.log_tail()}") from None
                time.sleep(0.2)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    # -- addressing and data
    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.http_port}"

    def url(self, path: str, scheme: str = "https") -> str:
        """``https://localhost:<port>/data/<path>`` (``davs``/``http`` on request)."""
        return f"{scheme}://localhost:{self.http_port}/data/{path.lstrip('/')}"

    def write(self, path: str, data: bytes) -> str:
        """Place ``data`` at ``/data/<path>`` (owned by xrootd); returns its https URL."""
        user = pwd.getpwnam(XROOTD_USER)
        target = self.data / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        for d in [target.parent, *target.parent.parents]:
            if d == self.data.parent:
                break
            os.chown(d, user.pw_uid, user.pw_gid)
        target.write_bytes(data)
        os.chown(target, user.pw_uid, user.pw_gid)
        return self.url(path)

    def read(self, path: str) -> bytes:
        return (self.data / path.lstrip("/")).read_bytes()

    def exists(self, path: str) -> bool:
        return (self.data / path.lstrip("/")).exists()

    def mint_macaroon(self, path: str, activities: Sequence[str] = ("DOWNLOAD", "READ_METADATA", "LIST"),
                      validity: str = "PT1H") -> str:
        """A macaroon for ``/data/<path>`` (a directory or file) granting
        ``activities`` (add ``UPLOAD``, ``MANAGE``, ``DELETE`` for writes),
        minted with the client certificate. Call from inside the namespace."""
        import requests

        response = requests.post(self.url(path), data=json.dumps({"caveats": [f"activity:{','.join(activities)}"],
                                                                  "validity": validity}),
                                 headers={"Content-Type": "application/macaroon-request"},
                                 cert=(str(self.ca.client_cert), str(self.ca.client_key)),
                                 verify=str(self.ca.bundle), timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"minting a macaroon failed: {response.status_code} {response.text[:500]}")
        return str(response.json()["macaroon"])


# --- gfal-* -------------------------------------------------------------------------

def gfal_env(ca: ThrowawayCA | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the ``gfal-*`` scripts: Debian's python, the CA directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "BEARER_TOKEN",
                                                                     "X509_"))}
    env["GFAL_PYTHONBIN"] = DEBIAN_PYTHON
    env["PATH"] = "/usr/bin:/bin:/usr/sbin:/sbin"
    if ca is not None:
        env["X509_CERT_DIR"] = str(ca.cert_dir)
    env.update(extra or {})
    return env


def run_gfal(argv: Sequence[str], ca: ThrowawayCA | None, *, env: Mapping[str, str] | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a ``gfal-*`` command (from the calling thread's namespace); never raises on exit status."""
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=gfal_env(ca, env))


def xrdadler32(path: Path) -> str:
    """``xrdadler32 <file>``'s answer (8 hex digits)."""
    done = subprocess.run(["xrdadler32", str(path)], capture_output=True, text=True, check=True)
    return done.stdout.split()[0]


# --- all of it -------------------------------------------------------------------------

@dataclasses.dataclass
class XRootDPeer:
    """What :func:`xrootd_peer` yields."""

    ca: ThrowawayCA
    netns: NetNamespace
    server: XRootD

    def gfal(self, *argv: str, env: Mapping[str, str] | None = None, timeout: float = 600) -> Any:
        return run_gfal(argv, self.ca, env=env, timeout=timeout)


@contextlib.contextmanager
def xrootd_peer(scratch: Path | None = None) -> Iterator[XRootDPeer]:
    """CA + namespace + running XRootD; the calling thread stays inside the
    namespace for the whole block (start the stack/gateway from within it).

    ``scratch`` is ignored for the server's own files: they live in a fresh
    ``/tmp`` directory readable by the ``xrootd`` user (pytest's tmp dirs are
    mode 700 under root's name), removed at the end."""
    del scratch
    workdir = Path(tempfile.mkdtemp(prefix="dynafedfn-xrootd-"))
    os.chmod(workdir, 0o755)
    try:
        ca = ThrowawayCA.create(workdir / "ca")
        with NetNamespace() as netns, netns.entered():
            server = XRootD(workdir / "server", ca, netns)
            try:
                server.start()
                yield XRootDPeer(ca=ca, netns=netns, server=server)
            finally:
                server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- the local stack beside it --------------------------------------------------------

def stack_trusting(peer: XRootDPeer, state: Path, extra_env: Mapping[str, str]) -> Any:
    """The local stack (no gateway, no events of its own) in ``state``, started
    inside the namespace, its copy function trusting the throwaway CA by
    ``X509_CERT_DIR`` (the stack passes the environment on). StackError as
    :meth:`Stack.up` raises it."""
    from dynafed_client.stack import Stack

    os.environ["X509_CERT_DIR"] = str(peer.ca.cert_dir)
    try:
        return Stack.up(state, with_events=False, with_gateway=False, extra_env=dict(extra_env))
    finally:
        os.environ.pop("X509_CERT_DIR", None)


def gateway_trusting(peer: XRootDPeer, state: Path, *args: str,
                     env: Mapping[str, str]) -> contextlib.AbstractContextManager[str]:
    """A gateway process for the stack in ``state`` (``gateway_process``),
    trusting the throwaway CA by ``DYNAFED_FN_CA_BUNDLE``; yields its URL."""
    from tests.interop.helpers import gateway_process

    return gateway_process(state, *args, env={**env, "DYNAFED_FN_CA_BUNDLE": str(peer.ca.bundle)})
