"""Who may do what at the gateway: WLCG bearer tokens (JWT) and a static token.

Off unless configured (a loopback deployment). When on:

* **Health probes stay open**: ``HEAD`` and ``OPTIONS`` of a collection (the
  root, ``/<store>/``, ``/<store>/<bucket>/``) need no credential. Dynafed's
  HTTP location plugin checks an endpoint with a bare HEAD on its ping URL —
  a request made from the davix context without the plugin's request
  parameters — and marks it OFFLINE on anything outside 200-399
  (indigo-dc/dynafed src/plugins/httpclient/httpavailabilitychecker.cc,
  ``HttpAvailabilityChecker::polling_task``). The plugin's other requests
  can carry ``locplugin.<id>.custom_header[]: Authorization: Bearer <static
  token>``.
* **Everything else needs a credential**: ``Authorization: Bearer <token>``,
  either the static token (full access) or a JWT signed by one of the
  configured keys, from a configured issuer, for a configured audience (or
  the WLCG "any" audience), not expired, whose ``scope`` grants the activity
  on the request's path (WLCG Common JWT Profile v1.0, §3.3 "Storage"):
  ``storage.read:<path>`` for HEAD/GET/PROPFIND and for the source of a
  push COPY; ``storage.modify:<path>`` for DELETE, MOVE and writes;
  ``storage.create:<path>`` also for a write that creates a new object
  (PUT, pull COPY) — not one that replaces an existing object. A scope path
  is a prefix of the gateway path (``/<store>/<bucket>/<key>``) on a segment
  boundary; ``/`` is everything.

Errors: no or an unusable credential is 401 with ``WWW-Authenticate``; a
valid token without the scope is 403. Token values are never logged.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dynafed_client.errors import ConfigError
from dynafed_client.gateway import errors
from dynafed_contract.bearer import bearer_matches, presented_bearer

log = logging.getLogger("dynafed_client.gateway.auth")

READ, CREATE, MODIFY = "storage.read", "storage.create", "storage.modify"
#: the audience a WLCG token carries when it is meant for any service (profile §2.2)
WLCG_ANY_AUDIENCE = "https://wlcg.cern.ch/jwt/v1/any"
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"]
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dynafed-fn-gateway"'}


@dataclasses.dataclass(frozen=True)
class Scope:
    activity: str
    path: str

    def covers(self, activity: str, path: str) -> bool:
        if activity != self.activity and not (activity == CREATE and self.activity == MODIFY):
            return False  # storage.modify includes creating (profile: "includes ... creating new files")
        base = self.path.rstrip("/")
        return not base or path == base or path.startswith(base + "/")


def parse_scopes(claim: Any) -> tuple[Scope, ...]:
    """The storage scopes of a ``scope`` claim (space-separated; others ignored)."""
    if not isinstance(claim, str):
        return ()
    out = []
    for item in claim.split():
        activity, sep, path = item.partition(":")
        if activity in (READ, CREATE, MODIFY):
            out.append(Scope(activity, path if sep and path.startswith("/") else "/"))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``scopes`` None: the static token (everything)."""

    subject: str
    scopes: tuple[Scope, ...] | None

    def may(self, activity: str, path: str) -> bool:
        return self.scopes is None or any(scope.covers(activity, path) for scope in self.scopes)


@dataclasses.dataclass(frozen=True)
class JwtSettings:
    """Keys (from a JWKS or PEM file), accepted issuers and audiences."""

    keys: tuple[Any, ...]
    issuers: tuple[str, ...]
    audiences: tuple[str, ...]
    leeway_s: float = 60.0

    @classmethod
    def from_files(cls, keys_file: str, *, issuers: Sequence[str], audiences: Sequence[str]) -> JwtSettings:
        """Read the verification keys: a JWKS document (``{"keys": [...]}``, as an
        issuer publishes at its ``jwks_uri``) or PEM public keys. ConfigError
        on anything unusable, naming the file."""
        if not issuers:
            raise ConfigError("JWT verification needs at least one accepted issuer (--jwt-issuer)")
        if not audiences:
            raise ConfigError("JWT verification needs at least one accepted audience (--jwt-audience)")
        return cls(keys=load_keys(keys_file), issuers=tuple(issuers), audiences=tuple(audiences))


def load_keys(path: str) -> tuple[Any, ...]:
    import jwt

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read JWT keys file {path}: {exc.strerror or exc}") from None
    keys: list[Any] = []
    try:
        if text.lstrip().startswith("{"):
            document = json.loads(text)
            entries = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(entries, list):
                raise ValueError("not a JWKS document")
            keys = [jwt.PyJWK(entry) for entry in entries]
        else:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            blocks = [b for b in text.split("-----END PUBLIC KEY-----") if "-----BEGIN PUBLIC KEY-----" in b]
            keys = [load_pem_public_key((b.strip() + "\n-----END PUBLIC KEY-----\n").encode()) for b in blocks]
    except (ValueError, TypeError, jwt.PyJWKError) as exc:
        raise ConfigError(f"JWT keys file {path} holds no usable public key: {type(exc).__name__}") from None
    if not keys:
        raise ConfigError(f"JWT keys file {path} holds no public key (expected a JWKS or PEM public keys)")
    return tuple(keys)


class Authenticator:
    """Checks one request's credential against the configuration."""

    def __init__(self, *, token: str | None = None, jwt_settings: JwtSettings | None = None) -> None:
        self._token = token
        self._jwt = jwt_settings

    @property
    def enabled(self) -> bool:
        return self._token is not None or self._jwt is not None

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller of a request with this ``Authorization`` value (401 otherwise)."""
        presented = presented_bearer(authorization)
        if presented is None:
            raise errors.Unauthorized("a bearer token is required", headers=_CHALLENGE)
        if self._token is not None and bearer_matches(presented, self._token):
            return Principal("static-token", None)
        if self._jwt is not None and presented.count(".") == 2:
            return self._verify_jwt(presented, self._jwt)
        raise errors.Unauthorized("invalid bearer token", headers=_CHALLENGE)

    def _verify_jwt(self, token: str, settings: JwtSettings) -> Principal:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise errors.Unauthorized("malformed bearer token", headers=_CHALLENGE) from None
        candidates = [k for k in settings.keys
                      if not isinstance(k, jwt.PyJWK) or header.get("kid") in (None, k.key_id)]
        reason = "no key verifies the token's signature"
        for key in candidates:
            try:
                claims = jwt.decode(token, key.key if isinstance(key, jwt.PyJWK) else key, algorithms=_ALGORITHMS,
                                    audience=[*settings.audiences, WLCG_ANY_AUDIENCE],
                                    issuer=list(settings.issuers), leeway=settings.leeway_s,
                                    options={"require": ["exp", "iss", "aud", "sub"]})
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                reason = _jwt_reason(exc)
                break
            return Principal(str(claims.get("sub")), parse_scopes(claims.get("scope")))
        log.info("bearer token refused: %s", reason)
        raise errors.Unauthorized(f"bearer token refused: {reason}", headers=_CHALLENGE)

    def authorize(self, principal: Principal, activity: str, path: str) -> None:
        """403 unless the principal's scopes grant ``activity`` on ``path``."""
        if not principal.may(activity, path):
            raise errors.Forbidden(f"the token does not grant {activity} on {path[:200]}")


def _jwt_reason(exc: Exception) -> str:
    import jwt

    reasons = {jwt.ExpiredSignatureError: "expired", jwt.InvalidAudienceError: "not for this audience",
               jwt.InvalidIssuerError: "from an issuer not accepted here",
               jwt.ImmatureSignatureError: "not valid yet", jwt.MissingRequiredClaimError: "lacks a required claim"}
    for kind, reason in reasons.items():
        if isinstance(exc, kind):
            return reason
    return "invalid"
