"""The sandbox's structured output (``response_format`` json_schema), over real HTTP with raw httpx.

The answers are checked with the ``jsonschema`` package, never with or_magic's own validator, so the fake is
held to the schema itself rather than to the code it exists to test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from or_magic import _sandbox_models as models
from or_magic.sandbox import Sandbox, start

jsonschema = pytest.importorskip("jsonschema")

PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "age": {"type": "integer", "minimum": 18, "maximum": 130},
        "score": {"type": "number", "exclusiveMinimum": 5},
        "email": {"type": "string", "format": "email"},
        "role": {"type": "string", "enum": ["admin", "user"]},
        "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "active": {"type": "boolean"},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "minItems": 2},
        "home": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
            "required": ["city", "zip"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "score", "email", "role", "nickname", "active", "tags", "home"],
    "additionalProperties": False,
    "$defs": {
        "Tag": {
            "type": "object",
            "properties": {"label": {"type": "string"}, "weight": {"type": "number"}},
            "required": ["label", "weight"],
            "additionalProperties": False,
        }
    },
}

TREE: dict[str, Any] = {  # recursive, as pydantic writes a self-referencing model
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {
                "value": {"type": "integer"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
            "required": ["value", "children"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/Node",
}


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with start() as sandbox:
        yield sandbox


@pytest.fixture
def http(sb: Sandbox) -> Iterator[httpx.Client]:
    sb.reset()
    with httpx.Client(base_url=sb.url, timeout=10) as client:
        yield client


def request(model: str, prompt: str, schema: dict[str, Any] | None = PERSON, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}
    if schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "P", "schema": schema, "strict": True},
        }
    return body


def complete(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def stream(http: httpx.Client, body: dict[str, Any]) -> tuple[str, str, str | None]:
    """(content, reasoning, finish_reason) of a streamed answer."""
    content, reasoning, finish = [], [], None
    with http.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                content.append(choice["delta"].get("content") or "")
                reasoning.append(choice["delta"].get("reasoning") or "")
                finish = choice.get("finish_reason") or finish
    return "".join(content), "".join(reasoning), finish


def errors(value: Any, schema: dict[str, Any]) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(value)]


@pytest.mark.parametrize("model", sorted(models.STRUCTURED_MODELS))
def test_text_models_answer_json_that_fits_the_schema(http: httpx.Client, model: str) -> None:
    body = request(model, "Describe a person. rate=0 fail=0")
    message = complete(http, body)["choices"][0]["message"]
    assert errors(json.loads(message["content"]), PERSON) == []
    streamed, _, finish = stream(http, body)
    assert streamed == message["content"] and finish == "stop"


def test_the_example_honours_bounds_enums_formats_and_refs(http: httpx.Client) -> None:
    value = json.loads(complete(http, request("sandbox/echo", "hi"))["choices"][0]["message"]["content"])
    assert value["age"] == 18 and value["score"] > 5 and value["role"] == "admin"
    assert "@" in value["email"] and len(value["name"]) >= 2
    assert len(value["tags"]) == 2 and set(value["tags"][0]) == {"label", "weight"}


def test_a_recursive_schema_gets_a_finite_valid_answer(http: httpx.Client) -> None:
    content = complete(http, request("sandbox/echo", "a tree", TREE))["choices"][0]["message"]["content"]
    assert errors(json.loads(content), TREE) == []


def test_invalid_json_1_answers_json_that_violates_the_schema(http: httpx.Client) -> None:
    content = complete(http, request("sandbox/echo", "break it invalid_json=1"))["choices"][0]["message"]["content"]
    value = json.loads(content)  # still JSON
    problems = errors(value, PERSON)
    assert any("12345" in p for p in problems)  # the first property has the wrong type
    assert any("unexpected_field" in p for p in problems)  # and an extra key appeared


@pytest.mark.parametrize(
    ("schema", "bad"),
    [
        ({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}, "not a valid value"),
        ({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}, 12345),
        (
            {"type": "object", "properties": {"e": {"enum": ["a", "b"]}}, "required": ["e"]},
            "not-one-of-the-allowed-values",
        ),
        ({"type": "array", "items": {"type": "string"}}, 12345),
        ({"type": "string"}, 12345),
    ],
)
def test_invalid_json_1_breaks_every_shape(http: httpx.Client, schema: dict[str, Any], bad: Any) -> None:
    content = complete(http, request("sandbox/echo", "invalid_json=1", schema))["choices"][0]["message"]["content"]
    value = json.loads(content)
    assert errors(value, schema)
    assert bad == (next(iter(value.values())) if isinstance(value, dict) else value)


def test_invalid_json_2_answers_broken_json(http: httpx.Client) -> None:
    content = complete(http, request("sandbox/echo", "invalid_json=2"))["choices"][0]["message"]["content"]
    assert content.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


def test_json_fence_1_wraps_the_answer_in_a_fence(http: httpx.Client) -> None:
    content = complete(http, request("sandbox/echo", "json_fence=1"))["choices"][0]["message"]["content"]
    assert content.startswith("```json\n") and content.endswith("\n```")
    assert errors(json.loads(content[8:-4]), PERSON) == []


def test_reasoning_is_kept_before_the_json(http: httpx.Client) -> None:
    body = request("sandbox/reasoning", "think, then answer")
    content, reasoning, _ = stream(http, body)
    assert "step by step" in reasoning
    assert errors(json.loads(content), PERSON) == []
    message = complete(http, body)["choices"][0]["message"]
    assert message["reasoning_details"][0]["signature"] and message["content"] == content


def test_max_tokens_cuts_the_json_with_finish_reason_length(http: httpx.Client) -> None:
    body = request("sandbox/echo", "hi", max_tokens=5)
    choice = complete(http, body)["choices"][0]
    assert choice["finish_reason"] == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice["message"]["content"])


def test_usage_counts_the_json_answer(http: httpx.Client) -> None:
    result = complete(http, request("sandbox/echo", "hi"))
    assert result["usage"]["completion_tokens"] == models.count_tokens(result["choices"][0]["message"]["content"])


@pytest.mark.parametrize(
    "response_format",
    [None, {"type": "text"}, {"type": "json_object"}, {"type": "json_schema"}, "json_schema"],
)
def test_other_response_formats_leave_echo_alone(http: httpx.Client, response_format: Any) -> None:
    body = request("sandbox/echo", "plain words please", None)
    if response_format is not None:
        body["response_format"] = response_format
    content = complete(http, body)["choices"][0]["message"]["content"]
    if response_format == {"type": "json_schema"}:  # no schema given: the empty schema, any JSON fits
        json.loads(content)
    else:
        assert content == "plain words please"


def test_models_that_are_not_plain_text_keep_their_behaviour(http: httpx.Client) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    tools = complete(http, request("sandbox/tools", "hi", tools=[tool]))["choices"][0]
    assert tools["finish_reason"] == "tool_calls"
    web = complete(http, request("sandbox/web", "hi"))["choices"][0]["message"]
    assert web["annotations"] and not web["content"].startswith("{")
    error = http.post("/chat/completions", json=request("sandbox/error-429", "hi"))
    assert error.status_code == 429


def test_flaky_still_fails_first_then_answers_json(http: httpx.Client) -> None:
    body = request("sandbox/flaky", "fail=1 again")
    assert http.post("/chat/completions", json=body).status_code == 503
    assert errors(json.loads(complete(http, body)["choices"][0]["message"]["content"]), PERSON) == []


# ------------------------------------------------------------------ the example generator, for any schema

_LEAVES = st.one_of(
    st.just({"type": "string"}),
    st.builds(lambda lo: {"type": "integer", "minimum": lo}, st.integers(-50, 50)),
    st.builds(lambda hi: {"type": "integer", "exclusiveMaximum": hi}, st.integers(-50, 50)),
    st.builds(lambda lo: {"type": "number", "exclusiveMinimum": lo}, st.floats(-100, 100)),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=3, unique=True).map(lambda v: {"enum": v}),
    st.integers(1, 20).map(lambda n: {"type": "string", "minLength": n}),
    st.just({"type": "string", "format": "date-time"}),
)


def _object(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


SCHEMAS = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), inner, max_size=4).map(_object),
        st.builds(lambda s, n: {"type": "array", "items": s, "minItems": n}, inner, st.integers(0, 3)),
        st.builds(lambda s: {"anyOf": [s, {"type": "null"}]}, inner),
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCHEMAS)
def test_example_values_satisfy_their_schema(schema: dict[str, Any]) -> None:
    value = models._example(schema, "answer")
    assert errors(value, schema) == []
    json.dumps(value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), SCHEMAS, min_size=1, max_size=4).map(_object))
def test_violations_always_violate(schema: dict[str, Any]) -> None:
    value = models._violate(models._example(schema, "answer"), schema)
    assert errors(value, schema)
