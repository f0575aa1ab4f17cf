"""One problem+json renderer (dynafed_contract/problem.py) for the three web faces.

The functions, the gateway and the event receiver answer errors with the same
RFC 9457 document (RFC 9457 section 3.1: ``type``, ``title``, ``status``,
``detail``; ours adds ``code`` and ``retryable``), validated here against the
contract's published schema (dynafed_contract/openapi.py ``PROBLEM``).
"""
from __future__ import annotations

import inspect
import json
from typing import Any

import jsonschema
import pytest
from werkzeug.test import Client as WsgiClient

from dynafed_client.events.app import create_app
from dynafed_client.events.hub import EventHub
from dynafed_client.gateway import GatewayApp, GatewayConfig
from dynafed_client.gateway import errors as gerrors
from dynafed_client.mapping import StoreMapping
from dynafed_contract.errors import ErrorCode
from dynafed_contract.openapi import PROBLEM
from dynafed_contract.problem import MEDIA_TYPE, render
from dynafed_runtime import errors as ferrors

GATEWAY_ERRORS = [cls for _, cls in inspect.getmembers(gerrors, inspect.isclass)
                  if issubclass(cls, gerrors.GatewayError)]


@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda c: c.value)
def test_the_functions_render_through_the_contract(code: ErrorCode) -> None:
    exc = ferrors.error_for(code, "detail")
    body = ferrors.problem(exc, instance="req-1")
    assert body == render(code, "detail", status=exc.status, title=exc.title, retryable=exc.retryable,
                          instance="req-1").body
    jsonschema.validate(body, PROBLEM)


@pytest.mark.parametrize("cls", GATEWAY_ERRORS, ids=lambda c: c.__name__)
def test_each_gateway_error_is_a_problem_whose_status_is_its_own(cls: type[gerrors.GatewayError]) -> None:
    problem = cls("a reason", headers={"Allow": "GET"}).problem()
    jsonschema.validate(problem.body, PROBLEM)
    assert problem.status == problem.body["status"] == cls.status
    assert problem.body["code"] == cls.code.value and problem.body["detail"] == "a reason"
    assert ("Allow", "GET") in problem.headers


def test_the_gateway_answers_a_problem() -> None:
    stores = {"default": {"endpoint_url": "http://127.0.0.1:1", "access_key_id": "a", "secret_access_key": "b"}}
    no_functions: Any = object()  # an unknown store is refused before any function is asked
    app = GatewayApp(GatewayConfig(stores=stores, exposed=None, mapping=StoreMapping()), dispatcher=no_functions)
    answer = WsgiClient(app).open("/nosuchstore/b/k", method="PROPFIND")
    assert answer.status_code == 404 and answer.mimetype == MEDIA_TYPE
    body = json.loads(answer.data)
    jsonschema.validate(body, PROBLEM)
    assert body["code"] == "NOT_FOUND" and body["status"] == 404


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/nowhere", 404, "NOT_FOUND"), ("PUT", "/", 405, "METHOD_NOT_ALLOWED"),
    ("POST", "/", 400, "INVALID_REQUEST"),
])
def test_the_receiver_answers_a_problem(method: str, path: str, status: int, code: str) -> None:
    answer = WsgiClient(create_app(EventHub())).open(path, method=method, data=b"{}",
                                                     content_type="application/json")
    assert answer.status_code == status and answer.mimetype == MEDIA_TYPE
    body = json.loads(answer.data)
    jsonschema.validate(body, PROBLEM)
    assert body["code"] == code and body["status"] == status
