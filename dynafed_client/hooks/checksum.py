"""``dynafed-fn-checksum-hook get|put``: the UVic ``dynafed-storage checksums`` interface.

::

    dynafed-fn-checksum-hook get -u URL -t adler32 [-e ENDPOINT...] [--cache use|write|none|refresh]
    dynafed-fn-checksum-hook put -u URL -t adler32 --checksum 0a1b2c3d [-e ENDPOINT...] [-f]

``get`` prints the value (lowercase hex; adler32 8 digits): the stored one
(``x-amz-meta-<type>``) when there is one, else computed by the checksum
function (``--cache write`` also stores it). ``put`` stores the given value
as ``x-amz-meta-<type>`` only when the object has none for that type, and
replaces one only with ``-f``/``--force`` (UVic's ``put_object_checksum``,
hep-gc/dynafed_storagestats ``dynafed_storagestats/s3/base.py``); it needs
the stores file (it writes the object's metadata). The URL is mapped to
store/bucket/key by the mapping file; failing that, ``-e`` names the store(s)
and the URL path is ``/<bucket>/<key>`` (a path-style S3 URL, as UVic's tool
takes). ``-e`` takes several endpoint ids, as UVic's ``get`` does
(``nargs='+'``; ``-e a b`` or ``-e a -e b``): they are tried in order and
the first that holds the object answers (``put`` writes there). UVic's
logging and config options (``-c``, ``-v``, ``--log*``, ``--stdout``) are
accepted and ignored.

``--cache none`` computes and checks the stored value: one that disagrees
with the bytes is reported (exit 3); ``--cache refresh`` recomputes and
replaces it.

Exit statuses: 0 ok, 1 failed, 2 usage/configuration, 3 the stored value
disagrees with the content, 4 no such object (``get`` then prints ``None``,
as UVic's tool does).
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from dynafed_client import Client, statefile
from dynafed_client import errors as ce
from dynafed_client.errors import ConfigError
from dynafed_client.hooks import exitcodes
from dynafed_client.hooks.metadata import canonical_value, read_stored, store_checksum
from dynafed_client.hooks.settings import HookSettings, client_config
from dynafed_client.mapping import collapse_slashes
from dynafed_client.storefile import read_stores_file, s3_client
from dynafed_contract.algorithms import normalize_algorithm, normalize_hex
from dynafed_contract.checksum import ObjectRef
from dynafed_net.trust import TrustError, TrustSettings


def build_parser(prog: str = "dynafed-fn-checksum-hook") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Get or put an object's checksum (UVic semantics).")
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("get", "put"):
        p = sub.add_parser(action)
        p.add_argument("-u", "--url", required=True, help="URL of the object (SE or federation URL)")
        p.add_argument("-t", "--hash_type", "--type", dest="hash_type", required=True,
                       help="checksum type (adler32, md5, …)")
        p.add_argument("-e", "--endpoint", nargs="+", action="extend", default=[],
                       help="store name(s), tried in order, when the mapping does not cover the URL")
        p.add_argument("-c", "--config", nargs="*", help=argparse.SUPPRESS)
        p.add_argument("-f", "--force", action="store_true",
                       help="put: replace a stored value (default: write only when there is none)"
                       if action == "put" else argparse.SUPPRESS)
        p.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
        p.add_argument("--logfile", help=argparse.SUPPRESS)
        p.add_argument("--logid", help=argparse.SUPPRESS)
        p.add_argument("--loglevel", help=argparse.SUPPRESS)
        p.add_argument("--stdout", action="store_true", help=argparse.SUPPRESS)
        if action == "get":
            p.add_argument("--cache", choices=("use", "write", "none", "refresh"), default="use",
                           help="use stored values (default), also store computed ones, or always compute")
        else:
            p.add_argument("--checksum", required=True, help="the value to store (hex)")
    return parser


def resolve_url(url: str, endpoints: Sequence[str], env: Mapping[str, str]) -> list[ObjectRef]:
    """Where the object may be: the mapping file's answer; else one ref per
    ``-e`` store with a path-style ``/<bucket>/<key>``, in the order given."""
    try:
        ref = HookSettings.from_env(env).mapping.resolve(url)
    except ConfigError:
        if not endpoints:
            raise
        ref = None
    if ref is not None:
        return [ref]
    path = collapse_slashes(unquote(urlsplit(url).path if "://" in url else url.split("?", 1)[0])).lstrip("/")
    bucket, _, key = path.partition("/")
    if endpoints and bucket and key:
        return [ObjectRef(endpoint, bucket, key) for endpoint in dict.fromkeys(endpoints)]
    raise ConfigError(f"URL is not in a mapped store: {url.split('?', 1)[0][:300]}")


def _stores(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    path = env.get("DYNAFED_FN_STORES_FILE")
    if not path:
        state = statefile.load(env.get(statefile.STATE_DIR_ENV) or statefile.default_state_dir())
        path = state.stores_file if state is not None else None
    if not path:
        raise ConfigError("put needs the stores file: set DYNAFED_FN_STORES_FILE")
    return read_stores_file(path)


def run(args: argparse.Namespace, *, env: Mapping[str, str] | None = None, client: Any = None,
        out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    env = os.environ if env is None else env
    out, err = out or sys.stdout, err or sys.stderr
    algorithm = normalize_algorithm(args.hash_type)
    if algorithm is None:
        err.write(f"checksum-hook: unknown checksum type {args.hash_type[:40]!r}\n")
        return exitcodes.USAGE
    try:
        refs = resolve_url(args.url, args.endpoint, env)
        if args.action == "get":
            return _first_found(refs, lambda ref: _get(ref, algorithm, args.cache, client, env, out))
        return _first_found(refs, lambda ref: _put(ref, algorithm, args.checksum, env, force=args.force, err=err))
    except ce.NotFoundError as exc:
        if args.action == "get":
            out.write("None\n")
        err.write(f"checksum-hook: {exc.message}\n")
        return exitcodes.NOT_FOUND
    except ce.ClientError as exc:
        err.write(f"checksum-hook: {exc.message}\n")
        return exitcodes.for_error(exc)
    except ValueError as exc:
        err.write(f"checksum-hook: {exc}\n")
        return exitcodes.USAGE


def _first_found(refs: Sequence[ObjectRef], action: Callable[[ObjectRef], int]) -> int:
    """``action`` on the first ref whose object exists (NotFoundError: the next one)."""
    for index, ref in enumerate(refs):
        try:
            return action(ref)
        except ce.NotFoundError:
            if index == len(refs) - 1:
                raise
    raise ce.ConfigError("no store to look in")


def _get(ref: ObjectRef, algorithm: str, cache: str, client: Any, env: Mapping[str, str], out: IO[str]) -> int:
    if client is None:
        client = Client(client_config(env))
    value = client.checksum(ref, [algorithm], cache=cache).checksums.get(algorithm)
    if value is None:
        out.write("None\n")
        return exitcodes.FAILED
    out.write(normalize_hex(algorithm, value) + "\n")
    return exitcodes.OK


def _put(ref: ObjectRef, algorithm: str, value: str, env: Mapping[str, str], *, force: bool,
         err: IO[str]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError  # boto only when a value is stored

    canonical_value(algorithm, value)  # ValueError -> usage, before touching the store
    stores = _stores(env)
    if ref.store not in stores:
        raise ce.ConfigError(f"no store named {ref.store!r} in the stores file")
    try:
        verify = TrustSettings.from_env(env).verify()  # site/grid CAs of an https S3 endpoint
    except TrustError as exc:
        raise ce.ConfigError(str(exc)) from None
    s3 = s3_client(stores[ref.store], verify=verify)
    try:
        if not force:
            stored = read_stored(s3, ref.bucket, ref.key, algorithm)
            if stored is not None:
                err.write(f"checksum-hook: {algorithm} already stored ({stored}); not replaced (-f replaces it)\n")
                return exitcodes.OK
        store_checksum(s3, ref.bucket, ref.key, algorithm, value)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in ("NoSuchKey", "NoSuchBucket", "404") or status == 404:
            raise ce.NotFoundError(code="NO_SUCH_OBJECT", status=404, detail="no such object") from None
        raise ce.ServerError(code="UPSTREAM_ERROR", status=502, detail=f"store refused: {code or status}") from None
    except BotoCoreError as exc:
        raise ce.ServerError(code="UPSTREAM_UNAVAILABLE", status=503, detail=type(exc).__name__) from None
    return exitcodes.OK


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``dynafed-fn-checksum-hook``."""
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
