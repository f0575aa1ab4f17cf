"""HTTP to the functions: one ``requests.Session``, retries, error translation.

The only module that touches ``requests``. Each call names a function;
its endpoint (URL, Host override), the bearer token, timeouts and the retry
policy come from :class:`~dynafed_client.config.ClientConfig`.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from dynafed_client import errors
from dynafed_client.config import ClientConfig
from dynafed_client.retry import RetryState, parse_retry_after

log = logging.getLogger("dynafed_client")

NDJSON = "application/x-ndjson"


class Response:
    """A successful answer, body read (``json``) or open for streaming (``lines``)."""

    def __init__(self, raw: requests.Response, retries: int) -> None:
        self.raw = raw
        self.status = raw.status_code
        self.headers = raw.headers
        self.retries = retries

    @property
    def streamed(self) -> bool:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower() == NDJSON

    def json(self) -> Any:
        try:
            return self.raw.json()
        except ValueError:
            raise errors.ProtocolError(f"answer is not JSON (HTTP {self.status})", status=self.status) from None
        except requests.RequestException as exc:
            raise errors.from_requests_exception(exc, self.raw.url) from None

    def lines(self) -> Iterator[dict[str, Any]]:
        """The JSON objects of an ndjson body, as they arrive."""
        try:
            # chunk_size=None yields bytes as they arrive; the default (512) would hold
            # progress lines back until 512 bytes had accumulated
            for line in self.raw.iter_lines(chunk_size=None):  # type: ignore[call-overload]
                if not line or not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    raise errors.ProtocolError("malformed ndjson line in the answer") from None
                if not isinstance(item, dict):
                    raise errors.ProtocolError("ndjson line is not a JSON object")
                yield item
        except requests.RequestException as exc:
            raise errors.from_requests_exception(exc, self.raw.url) from None
        finally:
            self.raw.close()

    def close(self) -> None:
        self.raw.close()


class HttpTransport:
    """Sends requests to functions with retries; thread-safe (one pooled session)."""

    def __init__(self, config: ClientConfig, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self._own_session = session is None
        self.session = session or self._new_session(config)
        self._lock = threading.Lock()
        self.retries = 0  # total retries performed (observability, tests)

    @staticmethod
    def _new_session(config: ClientConfig) -> requests.Session:
        session = requests.Session()
        # urllib3 discards connections beyond maxsize: keep one per concurrent request
        size = max(10, config.concurrency + 2)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.trust_env = config.trust_env
        session.verify = config.trust.verify()  # certifi, or + DYNAFED_FN_CA_BUNDLE / X509_CERT_DIR
        return session

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def request(self, function: str, method: str, path: str = "/", *, body: Any = None,
                headers: Mapping[str, str] | None = None, stream: bool = False,
                read_timeout: float | None = None) -> Response:
        """Send with retries; return the 2xx answer or raise a ClientError."""
        endpoint = self.config.endpoint(function)
        url = endpoint.url + path
        hdrs = {"User-Agent": self.config.user_agent, "Accept": "application/json",
                "X-Request-Id": uuid.uuid4().hex}
        if endpoint.host:
            hdrs["Host"] = endpoint.host
        if self.config.token:
            hdrs["Authorization"] = f"Bearer {self.config.token}"
        hdrs.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        timeout = (self.config.connect_timeout, read_timeout or self.config.read_timeout)
        state = RetryState(self.config.retry, sleep=self._sleep)
        while True:
            try:
                return self._once(method, url, hdrs, data, timeout, stream, state.retries)
            except errors.ClientError as exc:
                wait = state.should_retry(exc)
                if wait is None:
                    raise
                log.info("retrying %s %s in %.2fs after %s (attempt %d)", method, url, wait, exc.message,
                         state.attempt + 2)
                with self._lock:
                    self.retries += 1
                state.wait(wait)

    def _once(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
              timeout: tuple[float, float], stream: bool, retries: int) -> Response:
        try:
            raw = self.session.request(method, url, data=data, headers=headers, timeout=timeout,
                                       stream=True, allow_redirects=False)
        except requests.RequestException as exc:
            raise errors.from_requests_exception(exc, url) from None
        if raw.status_code >= 400 or raw.status_code < 200:
            try:
                body = raw.content[:65536]
            except requests.RequestException:
                body = b""
            finally:
                raw.close()
            raise errors.from_response(raw.status_code, raw.headers, body,
                                       retry_after=parse_retry_after(raw.headers))
        if raw.status_code >= 300:
            raw.close()
            raise errors.ProtocolError(f"unexpected redirect (HTTP {raw.status_code}) from {url}",
                                       status=raw.status_code)
        response = Response(raw, retries)
        if not stream:
            try:
                _ = raw.content  # read the body now, inside the retry scope of this call
            except requests.RequestException as exc:
                raise errors.from_requests_exception(exc, url) from None
        return response
