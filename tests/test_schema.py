"""Structured output: resolving --schema objects, strict-mode schemas, parsing and validating answers."""

from __future__ import annotations

import enum
import json
import pickle
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

import or_magic.errors as errors
from or_magic.schema import StructuredOutputError, StructuredSpec, inline_refs, resolve, strict_schema, validate


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    city: str
    zip: str | None = None


class Person(BaseModel):
    """A person in the address book."""

    name: str
    age: int = Field(ge=0, description="in years")
    tags: list[str] = []
    home: Address
    work: Address | None = None
    color: Color = Color.RED
    kind: Literal["friend", "colleague"] = "friend"
    scores: dict[str, int] = {}


class Plain(BaseModel):
    name: str
    age: int


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Cat(BaseModel):
    pet: Literal["cat"]
    meows: int


class Dog(BaseModel):
    pet: Literal["dog"]
    barks: int


class Owner(BaseModel):
    animal: Cat | Dog = Field(discriminator="pet")


def walk(node: Any) -> list[dict[str, Any]]:
    """Every schema dict inside ``node`` (properties maps are containers, not schemas)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, list):
        for item in node:
            found += walk(item)
    elif isinstance(node, dict):
        found.append(node)
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    found += walk(sub)
            elif key not in ("enum", "const", "required"):
                found += walk(value)
    return found


# ------------------------------------------------------------------------------------------- resolve


def test_pydantic_model_becomes_a_strict_response_format() -> None:
    spec = resolve(Plain, "whatever")
    assert spec.name == "Plain" and spec.model is Plain and spec.strict
    assert spec.response_format() == {
        "type": "json_schema",
        "json_schema": {
            "name": "Plain",
            "schema": {
                "properties": {"name": {"title": "Name", "type": "string"}, "age": {"title": "Age", "type": "integer"}},
                "required": ["name", "age"],
                "title": "Plain",
                "type": "object",
                "additionalProperties": False,
            },
            "strict": True,
        },
    }


def test_every_object_is_closed_and_fully_required_and_refs_are_inlined() -> None:
    spec = resolve(Person, "p")
    schema = spec.schema
    assert "$defs" not in schema and "$ref" not in json.dumps(schema)
    for node in walk(schema):
        if "properties" in node:
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])
        assert "default" not in node
    assert schema["properties"]["home"]["properties"]["city"] == {"title": "City", "type": "string"}
    assert schema["properties"]["color"]["enum"] == ["red", "blue"]
    assert schema["properties"]["age"]["description"] == "in years"
    assert spec.response_format()["json_schema"]["description"] == "A person in the address book."


def test_a_free_form_mapping_turns_strict_off_rather_than_forbidding_keys() -> None:
    spec = resolve(Person, "p")
    assert spec.schema["properties"]["scores"]["additionalProperties"] == {"type": "integer"}
    assert spec.strict is False and spec.response_format()["json_schema"]["strict"] is False
    assert resolve({"type": "object"}, "x").strict is False
    assert resolve({"type": "object", "additionalProperties": False}, "x").strict is True


def test_recursive_models_keep_their_defs() -> None:
    spec = resolve(Node, "n")
    assert spec.strict
    assert spec.schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert spec.schema["$defs"]["Node"]["additionalProperties"] is False
    tree = spec.parse('{"value": 1, "children": [{"value": 2, "children": []}]}')
    assert tree == Node(value=1, children=[Node(value=2)])
    assert validate(json.loads('{"value": 1, "children": [{"value": "x", "children": []}]}'), spec.schema)


def test_discriminated_unions_become_anyof() -> None:
    schema = resolve(Owner, "o").schema
    animal = schema["properties"]["animal"]
    assert "oneOf" not in animal and "discriminator" not in animal and len(animal["anyOf"]) == 2
    assert all(option["additionalProperties"] is False for option in animal["anyOf"])
    assert resolve(Owner, "o").parse('{"animal": {"pet": "dog", "barks": 3}}').animal == Dog(pet="dog", barks=3)


def test_a_model_instance_is_taken_as_its_class() -> None:
    assert resolve(Plain(name="a", age=1), "x").model is Plain


@pytest.mark.parametrize(
    ("hint", "schema", "name"),
    [
        ("answer", {"type": "object", "properties": {}}, "answer"),
        ("", {"type": "object", "title": "My Schema!"}, "My_Schema"),
        ("", {"type": "object"}, "response"),
        ("x" * 100, {"type": "object"}, "x" * 64),
        ("über-schéma", {"type": "object"}, "ber-sch_ma"),
        ("!!!", {"type": "object"}, "response"),
    ],
)
def test_names_are_sanitised(hint: str, schema: dict[str, Any], name: str) -> None:
    assert resolve(schema, hint).name == name


def test_dict_schema_wrappers_are_unwrapped() -> None:
    inner = {"type": "object", "properties": {"a": {"type": "string"}}}
    wrapped = {"name": "Wrapped", "schema": inner, "strict": True, "description": "d"}
    spec = resolve(wrapped, "hint")
    assert spec.name == "Wrapped" and spec.description == "d" and spec.schema["required"] == ["a"]
    full = resolve({"type": "json_schema", "json_schema": wrapped}, "hint")
    assert full.response_format() == spec.response_format()
    assert spec.source == inner


def test_dict_schema_is_not_mutated() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}, "required": []}
    before = json.dumps(schema)
    resolve(schema, "s")
    assert json.dumps(schema) == before


@pytest.mark.parametrize("obj", ["Person", 42, None, [1], Person.__init__, int, BaseModel.__subclasses__])
def test_not_a_model_or_dict_is_a_type_error(obj: Any) -> None:
    with pytest.raises(TypeError, match="--schema needs a pydantic model class or a JSON-schema dict, not"):
        resolve(obj, "x")


def test_dicts_that_are_not_schemas_are_refused() -> None:
    with pytest.raises(ValueError, match="does not look like a JSON schema"):
        resolve({"name": "Bob", "age": 3}, "x")
    with pytest.raises(ValueError, match="not a valid JSON schema"):
        resolve({"type": "object", "properties": {"a": {"type": "strnig"}}}, "x")


# ------------------------------------------------------------------------------------------- strict_schema


def test_strict_schema_nullable_and_single_allof_and_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "nullable": True, "default": None},
            "b": {"allOf": [{"type": "integer"}], "description": "folded"},
            "c": {"enum": ["x", "y"], "nullable": True},
            "d": {"type": ["number", "string"], "nullable": True},
            "default": {"type": "string"},  # a property *named* default survives
        },
    }
    fixed, strict = strict_schema(schema)
    assert strict
    props = fixed["properties"]
    assert props["a"] == {"type": ["string", "null"]}
    assert props["b"] == {"type": "integer", "description": "folded"}
    assert props["c"] == {"enum": ["x", "y", None]}
    assert props["d"]["type"] == ["number", "string", "null"]
    assert fixed["required"] == ["a", "b", "c", "d", "default"]


def test_inline_refs_merges_siblings_and_drops_unused_defs() -> None:
    schema = {
        "$defs": {"A": {"type": "string", "description": "from def"}, "Unused": {"type": "integer"}},
        "definitions": {"B": {"type": "integer"}},
        "properties": {"x": {"$ref": "#/$defs/A", "description": "override"}, "y": {"$ref": "#/definitions/B"}},
    }
    out = inline_refs(schema)
    assert out == {"properties": {"x": {"type": "string", "description": "override"}, "y": {"type": "integer"}}}


def test_inline_refs_handles_mutual_recursion() -> None:
    schema = {
        "$defs": {
            "A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}},
            "B": {"type": "object", "properties": {"a": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]}}},
        },
        "$ref": "#/$defs/A",
    }
    out = inline_refs(schema)
    assert out["properties"]["b"]["properties"]["a"]["anyOf"][0] == {"$ref": "#/$defs/A"}
    assert set(out["$defs"]) == {"A"}
    assert validate({"b": {"a": {"b": {"a": None}}}}, out) == []
    assert validate({"b": {"a": {"b": {"a": 5}}}}, out)


# ------------------------------------------------------------------------------------------- parse


GOOD = '{"name": "Ada", "age": 36, "tags": [], "home": {"city": "London", "zip": null}, "work": null, "color": "blue", "kind": "friend", "scores": {}}'  # noqa: E501


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        f"  {GOOD}\n",
        f"```json\n{GOOD}\n```",
        f"```JSON\n{GOOD}\n```",
        f"```\n{GOOD}\n```",
        f"Here is the JSON you asked for:\n\n```json\n{GOOD}\n```\n\nAnything else?",
        f"Sure! {GOOD} Hope that helps.",
        "\ufeff" + GOOD,
    ],
)
def test_parse_tolerates_fences_and_prose(text: str) -> None:
    person = resolve(Person, "p").parse(text)
    assert isinstance(person, Person) and person.home.city == "London" and person.color is Color.BLUE


def test_parse_a_dict_schema_returns_the_value() -> None:
    spec = resolve({"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "integer"}}}}, "s")
    assert spec.parse('{"xs": [1, 2]}') == {"xs": [1, 2]}
    assert resolve({"type": "array", "items": {"type": "string"}}, "s").parse('```json\n["a"]\n```') == ["a"]


def test_invalid_json_is_a_structured_output_error_that_keeps_the_text() -> None:
    spec = resolve(Person, "p")
    with pytest.raises(StructuredOutputError) as info:
        spec.parse('{"name": "Ada", "age": ')
    err = info.value
    assert isinstance(err, errors.OpenRouterError)
    assert str(err).startswith("the model's answer is not valid JSON: Expecting value at line 1 column")
    assert err.raw_text == '{"name": "Ada", "age": '
    assert "err.raw_text" in err.hint and "structured_outputs" in err.hint


@pytest.mark.parametrize("text", ["", "   \n"])
def test_an_empty_answer_says_so(text: str) -> None:
    with pytest.raises(StructuredOutputError, match="the model's answer is empty"):
        resolve(Plain, "p").parse(text)


def test_pydantic_failures_name_the_field() -> None:
    spec = resolve(Person, "p")
    bad = json.loads(GOOD)
    bad["age"] = -1
    del bad["home"]["city"]
    with pytest.raises(StructuredOutputError) as info:
        spec.parse(json.dumps(bad))
    err = info.value
    assert str(err) == (
        "the answer does not match Person: field `age`: Input should be greater than or equal to 0 (got -1) "
        "(and 1 more problem)"
    )
    assert err.path == "age"
    assert err.errors == [
        "field `age`: Input should be greater than or equal to 0",
        "field `home.city`: Field required",
    ]
    assert err.raw_text == json.dumps(bad)


def test_pydantic_failure_paths_with_indexes() -> None:
    class Team(BaseModel):
        members: list[Plain]

    with pytest.raises(StructuredOutputError, match=r"field `members\[1\]\.age`: Input should be a valid integer"):
        resolve(Team, "t").parse('{"members": [{"name": "a", "age": 1}, {"name": "b", "age": "old"}]}')


@pytest.mark.parametrize("use_jsonschema", [True, False])
def test_dict_schema_failures_name_the_field(use_jsonschema: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if use_jsonschema:
        pytest.importorskip("jsonschema")
    else:
        monkeypatch.setitem(__import__("sys").modules, "jsonschema", None)  # as if it were not installed
    schema = {
        "type": "object",
        "properties": {
            "people": {"type": "array", "items": {"type": "object", "properties": {"age": {"type": "integer"}}}}
        },
    }
    spec = resolve(schema, "s")
    with pytest.raises(StructuredOutputError) as info:
        spec.parse('{"people": [{"age": 1}, {"age": "x"}]}')
    assert "field `people[1].age`" in str(info.value) and "is not of type" in str(info.value)
    assert info.value.path == "people[1].age"
    with pytest.raises(StructuredOutputError, match="field `people`"):
        spec.parse("{}")


def test_structured_output_error_is_picklable_and_renders_in_one_line() -> None:
    err = StructuredOutputError("the answer does not match X: field `a`: bad", raw_text="{...}", path="a")
    again = pickle.loads(pickle.dumps(err))
    assert again.raw_text == "{...}" and again.path == "a" and str(again) == str(err)
    (line,) = err._render_traceback_()
    assert line.startswith("StructuredOutputError: the answer does not match X") and "err.raw_text" in line
    assert err.to_dict()["raw_text"] == "{...}" and err.to_dict()["type"] == "StructuredOutputError"
    assert StructuredOutputError("m", hint="custom").hint == "custom"


def test_spec_is_a_plain_dataclass() -> None:
    spec = StructuredSpec("n", {"type": "object"})
    assert spec.parse('{"a": 1}') == {"a": 1} and spec.response_format()["json_schema"]["strict"] is True


# ------------------------------------------------------------------------------------------- validate

CASES: list[tuple[dict[str, Any], Any, bool]] = [
    ({"type": "string"}, "a", True),
    ({"type": "string"}, 1, False),
    ({"type": "integer"}, 1, True),
    ({"type": "integer"}, 1.0, True),
    ({"type": "integer"}, 1.5, False),
    ({"type": "integer"}, True, False),
    ({"type": "number"}, 1.5, True),
    ({"type": "number"}, False, False),
    ({"type": "boolean"}, False, True),
    ({"type": "boolean"}, 0, False),
    ({"type": "null"}, None, True),
    ({"type": ["string", "null"]}, None, True),
    ({"type": ["string", "null"]}, 3, False),
    ({"type": "array", "items": {"type": "integer"}}, [1, 2], True),
    ({"type": "array", "items": {"type": "integer"}}, [1, "2"], False),
    ({"type": "array", "minItems": 2}, [1], False),
    ({"type": "array", "maxItems": 1}, [1, 2], False),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, {}, False),
    ({"type": "object", "properties": {"a": {}}, "additionalProperties": False}, {"b": 1}, False),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, {"b": "x"}, False),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, {"b": 1}, True),
    ({"enum": ["a", "b"]}, "a", True),
    ({"enum": ["a", "b"]}, "c", False),
    ({"const": 3}, 3, True),
    ({"const": 3}, 4, False),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, None, True),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, 1, False),
    ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1, False),  # matches both
    ({"oneOf": [{"type": "integer"}, {"type": "string"}]}, 1, True),
    ({"allOf": [{"type": "integer"}, {"minimum": 3}]}, 2, False),
    ({"type": "string", "minLength": 2, "maxLength": 3}, "ab", True),
    ({"type": "string", "minLength": 2}, "a", False),
    ({"type": "string", "maxLength": 2}, "abc", False),
    ({"type": "string", "pattern": "^a+$"}, "aaa", True),
    ({"type": "string", "pattern": "^a+$"}, "ab", False),
    ({"type": "integer", "minimum": 1, "maximum": 3}, 3, True),
    ({"type": "integer", "minimum": 1}, 0, False),
    ({"type": "integer", "maximum": 1}, 2, False),
    ({"type": "integer", "exclusiveMinimum": 1}, 1, False),
    ({"type": "integer", "exclusiveMaximum": 1}, 1, False),
    ({"$defs": {"A": {"type": "integer"}}, "$ref": "#/$defs/A"}, 1, True),
    ({"$defs": {"A": {"type": "integer"}}, "$ref": "#/$defs/A"}, "1", False),
    ({}, {"anything": [1]}, True),
]


@pytest.mark.parametrize(("schema", "value", "ok"), CASES)
def test_builtin_validator(schema: dict[str, Any], value: Any, ok: bool) -> None:
    assert (validate(value, schema, use_jsonschema=False) == []) is ok


@pytest.mark.parametrize(("schema", "value", "ok"), CASES)
def test_builtin_validator_agrees_with_jsonschema(schema: dict[str, Any], value: Any, ok: bool) -> None:
    pytest.importorskip("jsonschema")
    assert (validate(value, schema, use_jsonschema=True) == []) is ok


def test_builtin_validator_nullable_and_booleans() -> None:
    assert validate(None, {"type": "string", "nullable": True}, use_jsonschema=False) == []
    assert validate(1, True, use_jsonschema=False) == []  # type: ignore[arg-type]
    assert validate(1, False, use_jsonschema=False)  # type: ignore[arg-type]
    assert validate("x", {"type": "string", "pattern": "("}, use_jsonschema=False) == []  # a bad regex is ignored


def test_builtin_messages() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"enum": ["x"]}},
        "required": ["a", "b", "c"],
        "additionalProperties": False,
    }
    problems = validate({"a": "1", "b": "y", "z": 0}, schema, use_jsonschema=False)
    assert problems == [
        (("c",), "is missing"),
        (("a",), '"1" is not of type integer'),
        (("b",), '"y" is not one of ["x"]'),
        (("z",), "is not an allowed property (allowed: a, b)"),
    ]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-5, 5, allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)
_SCHEMAS = st.recursive(
    st.sampled_from(
        [{"type": t} for t in ("string", "integer", "number", "boolean", "null", "array", "object")]
        + [{"enum": [1, "a", None]}, {"type": "integer", "minimum": 0}, {"type": "string", "maxLength": 2}, {}]
    ),
    lambda inner: st.one_of(
        st.builds(lambda s: {"type": "array", "items": s}, inner),
        st.builds(
            lambda props, closed: {
                "type": "object",
                "properties": props,
                "required": sorted(props)[:1],
                "additionalProperties": not closed,
            },
            st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
            st.booleans(),
        ),
        st.builds(lambda a, b: {"anyOf": [a, b]}, inner, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(schema=_SCHEMAS, value=_JSON)
def test_builtin_validator_agrees_with_jsonschema_on_random_inputs(schema: dict[str, Any], value: Any) -> None:
    pytest.importorskip("jsonschema")
    ours = validate(value, schema, use_jsonschema=False) == []
    theirs = validate(value, schema, use_jsonschema=True) == []
    assert ours == theirs


def test_enum_and_const_compare_as_json_does() -> None:
    """``true`` is not ``1`` in JSON, though Python says ``True == 1``; ``1`` and ``1.0`` are the same number."""
    from or_magic._schema_check import json_equal

    assert validate(True, {"enum": [1, "a", None]}, use_jsonschema=False) != []
    assert validate(1, {"enum": [1, "a", None]}, use_jsonschema=False) == []
    assert validate(1.0, {"const": 1}, use_jsonschema=False) == []
    assert validate(0, {"const": False}, use_jsonschema=False) != []
    assert json_equal([1, {"a": True}], [1.0, {"a": True}]) and not json_equal([1, {"a": True}], [1, {"a": 1}])
