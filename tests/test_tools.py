"""Tools: schemas from signatures and docstrings, and tool calls that report problems instead of raising."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import json
from typing import Annotated, Any, Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from or_magic.tools import RESULT_LIMIT, ToolBox, ToolRun, function_schema


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Place(BaseModel):
    city: str
    country: str = "FR"


def get_weather(place: Place, days: int = 3, unit: Unit = Unit.CELSIUS, detail: Literal["low", "high"] = "low") -> dict:
    """Get the weather forecast for a place.

    This second paragraph is for humans reading the code, not for the model.

    Args:
        place: Where to look.
        days (int): How many days ahead,
            at most 10.
        unit: Temperature unit.

    Returns:
        The forecast.
    """
    return {"city": place.city, "days": days, "unit": unit.value, "detail": detail}


def call(name: str, arguments: Any = None, call_id: str = "call_1") -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) or arguments is None else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}


def params(fn: Any) -> dict[str, Any]:
    return function_schema(fn)["function"]["parameters"]


# ------------------------------------------------------------------------------------------- function_schema


def test_a_full_example() -> None:
    assert function_schema(get_weather) == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather forecast for a place.",
            "parameters": {
                "type": "object",
                "properties": {
                    "place": {
                        "properties": {"city": {"type": "string"}, "country": {"default": "FR", "type": "string"}},
                        "required": ["city"],
                        "type": "object",
                        "description": "Where to look.",
                    },
                    "days": {"type": "integer", "description": "How many days ahead, at most 10.", "default": 3},
                    "unit": {
                        "enum": ["celsius", "fahrenheit"],
                        "type": "string",
                        "description": "Temperature unit.",
                        "default": "celsius",
                    },
                    "detail": {"enum": ["low", "high"], "type": "string", "default": "low"},
                },
                "required": ["place"],
            },
        },
    }


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (str, {"type": "string"}),
        (bool, {"type": "boolean"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list, {"type": "array", "items": {}}),
        (dict, {"type": "object", "additionalProperties": True}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (
            tuple[int, str],
            {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2, "maxItems": 2},
        ),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),  # noqa: UP045
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (Literal["a", "b"], {"enum": ["a", "b"], "type": "string"}),
        (Any, {}),
        (
            Annotated[int, Field(ge=1, description="at least one")],
            {"type": "integer", "minimum": 1, "description": "at least one"},
        ),
    ],
)
def test_types(annotation: Any, schema: dict[str, Any]) -> None:
    def tool(x):  # type: ignore[no-untyped-def]
        return x

    tool.__annotations__ = {"x": annotation}
    assert params(tool)["properties"]["x"] == schema


class Inner(BaseModel):
    title: str  # a property named "title" survives
    n: int


class Outer(BaseModel):
    inner: Inner
    items: list[Inner]


class Tree(BaseModel):
    value: int
    kids: list[Tree] = []


class Connection:
    name = "default"


def test_nested_models_are_inlined_and_titles_dropped() -> None:
    def tool(outer: Outer) -> None:
        pass

    schema = params(tool)["properties"]["outer"]
    assert "$ref" not in json.dumps(schema) and "$defs" not in json.dumps(schema)
    assert schema["properties"]["inner"]["properties"] == {"title": {"type": "string"}, "n": {"type": "integer"}}
    assert schema["properties"]["items"]["items"]["required"] == ["title", "n"]


def test_recursive_models_keep_defs_at_the_top() -> None:
    def tool(tree: Tree) -> int:
        return tree.value

    parameters = params(tool)
    assert "Tree" in parameters["$defs"]
    assert parameters["properties"]["tree"]["properties"]["kids"]["items"] == {"$ref": "#/$defs/Tree"}


def test_required_and_defaults() -> None:
    def tool(a: int, b: str = "x", c: Optional[int] = None, *, d: bool, e: Unit = Unit.FAHRENHEIT) -> None:  # noqa: UP045
        pass

    p = params(tool)
    assert p["required"] == ["a", "d"]
    assert p["properties"]["b"]["default"] == "x" and p["properties"]["c"]["default"] is None
    assert p["properties"]["e"]["default"] == "fahrenheit"


def test_unannotated_parameters_infer_from_defaults() -> None:
    def tool(a, b=3, c=2.5, d="s", e=True, f=None, g=[1]):  # type: ignore[no-untyped-def]  # noqa: B006
        pass

    p = params(tool)["properties"]
    assert p["a"] == {} and p["b"] == {"type": "integer", "default": 3} and p["c"]["type"] == "number"
    assert p["d"]["type"] == "string" and p["e"]["type"] == "boolean" and p["f"] == {"default": None}
    assert p["g"] == {"default": [1]}


def test_unresolvable_string_annotations_fall_back_to_any() -> None:
    def tool(a: NotDefinedAnywhere, b: int = 1, c: Place | None = None) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    p = params(tool)["properties"]
    assert p["a"] == {} and p["b"]["type"] == "integer"  # the others still resolve
    assert p["c"]["anyOf"][0]["properties"]["city"] == {"type": "string"}


def test_unsendable_types_are_hidden_with_a_default_and_refused_without() -> None:
    def with_default(query: str, conn: Connection = Connection()) -> None:  # noqa: B008
        pass

    assert list(params(with_default)["properties"]) == ["query"]

    def without(query: str, conn: Connection) -> None:
        pass

    with pytest.raises(
        ValueError, match=r"parameter `conn` of without\(\) has type .*Connection, which a model cannot"
    ):
        function_schema(without)


def test_description_is_the_first_paragraph_joined() -> None:
    def tool() -> None:
        """Look things up
        in the index.

        Details.
        """

    assert function_schema(tool)["function"]["description"] == "Look things up in the index."


def test_no_docstring_means_no_description() -> None:
    def tool(x: int) -> int:
        return x

    assert "description" not in function_schema(tool)["function"]


def test_a_docstring_that_starts_with_a_section() -> None:
    def tool(x: int) -> int:
        """Args:
        x: the x.
        """
        return x

    schema = function_schema(tool)["function"]
    assert "description" not in schema and schema["parameters"]["properties"]["x"]["description"] == "the x."


def test_numpy_style_docstrings() -> None:
    def tool(x: float, y: float = 1.0, *, z: int = 0) -> float:
        """Add numbers.

        Parameters
        ----------
        x : float
            The first
            number.
        y : float, optional
            The second.
        z
            Undocumented type.

        Returns
        -------
        float
            Not a parameter.
        """
        return x + y

    p = params(tool)["properties"]
    assert p["x"]["description"] == "The first number."
    assert p["y"]["description"] == "The second." and p["z"]["description"] == "Undocumented type."


def test_sphinx_style_docstrings() -> None:
    def tool(a: int, b: str = "q") -> str:
        """Join.

        :param a: the a
            continued.
        :param str b: the b
        :returns: joined
        """
        return f"{a}{b}"

    p = params(tool)["properties"]
    assert p["a"]["description"] == "the a continued." and p["b"]["description"] == "the b"


def test_google_style_with_kwargs_and_other_sections() -> None:
    def tool(a: int, **options: Any) -> None:
        """Do.

        Args:
            a: First line.

                Second paragraph of a.
            **options: Ignored by the schema.

        Raises:
            ValueError: never a parameter.
        """

    p = params(tool)
    assert p["properties"]["a"]["description"] == "First line. Second paragraph of a."
    assert list(p["properties"]) == ["a"]


def test_field_description_wins_over_docstring() -> None:
    def tool(a: Annotated[int, Field(description="from Field")]) -> None:
        """Do.

        Args:
            a: from docstring
        """

    assert params(tool)["properties"]["a"]["description"] == "from Field"


def test_methods_partials_and_callable_objects() -> None:
    class Service:
        def lookup(self, key: str) -> str:
            """Look up a key."""
            return key

        def __call__(self, n: int) -> int:
            return n

    assert list(params(Service().lookup)["properties"]) == ["key"]
    part = functools.partial(get_weather, days=5)
    schema = function_schema(part)["function"]
    assert schema["name"] == "get_weather" and schema["parameters"]["properties"]["days"]["default"] == 5
    with pytest.raises(ValueError, match="a tool needs a name"):
        function_schema(Service())


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda x: x, "a tool needs a name"),
        (len, None),
    ],
)
def test_lambdas_are_refused_builtins_need_a_signature(fn: Any, message: str | None) -> None:
    if message:
        with pytest.raises(ValueError, match=message):
            function_schema(fn)
    else:
        assert function_schema(fn)["function"]["name"] == "len"


def test_variadic_only_signatures_are_refused() -> None:
    def anything(*args: Any, **kwargs: Any) -> None:
        pass

    with pytest.raises(ValueError, match=r"anything\(\) only takes \*args/\*\*kwargs, so a model cannot know"):
        function_schema(anything)

    def nothing() -> str:
        return "ok"

    assert params(nothing) == {"type": "object", "properties": {}, "required": []}


def test_bad_names_and_non_callables() -> None:
    def tool() -> None:
        pass

    tool.__name__ = "has space"
    with pytest.raises(ValueError, match="must be 1-64 characters"):
        function_schema(tool)
    with pytest.raises(TypeError, match="a tool must be a function, not int"):
        function_schema(3)  # type: ignore[arg-type]


def test_every_schema_is_json() -> None:
    json.dumps(function_schema(get_weather))


# ------------------------------------------------------------------------------------------- ToolBox


def add(a: int, b: int = 1) -> int:
    """Add two integers."""
    return a + b


def fail(x: int) -> None:
    """Always fails."""
    raise ValueError(f"x={x} is not allowed")


def test_toolbox_schemas_names_and_lookup() -> None:
    box = ToolBox([add, get_weather])
    assert box.names == ["add", "get_weather"] and len(box) == 2 and "add" in box and "nope" not in box
    assert box.schemas == [function_schema(add), function_schema(get_weather)]


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="two tools are named 'add'"):
        ToolBox([add, add])


def test_a_successful_call() -> None:
    run = ToolBox([add]).run(call("add", {"a": 2, "b": 3}, "call_9"))
    assert isinstance(run, ToolRun) and run.ok
    assert (run.call_id, run.name, run.arguments, run.result, run.error) == (
        "call_9",
        "add",
        {"a": 2, "b": 3},
        "5",
        None,
    )
    assert run.value == 5 and run.elapsed >= 0
    assert run.message() == {"role": "tool", "tool_call_id": "call_9", "content": "5"}


def test_arguments_are_coerced_by_their_hints() -> None:
    run = ToolBox([get_weather]).run(
        call("get_weather", {"place": {"city": "Oslo"}, "days": "5", "unit": "fahrenheit"})
    )
    assert run.ok and json.loads(run.result) == {"city": "Oslo", "days": 5, "unit": "fahrenheit", "detail": "low"}
    assert run.arguments == {"place": {"city": "Oslo"}, "days": "5", "unit": "fahrenheit"}  # as the model sent them


def test_a_list_or_object_sent_as_a_json_string_is_decoded() -> None:
    def total(xs: list[int]) -> int:
        return sum(xs)

    box = ToolBox([total, get_weather])
    assert box.run(call("total", {"xs": "[1, 2, 3]"})).result == "6"
    assert json.loads(box.run(call("get_weather", {"place": '{"city": "Rome"}'})).result)["city"] == "Rome"


@pytest.mark.parametrize("raw", [None, "", "   ", "{}"])
def test_empty_arguments_mean_no_arguments(raw: Any) -> None:
    def ping() -> str:
        return "pong"

    run = ToolBox([ping]).run({"id": "c", "function": {"name": "ping", "arguments": raw}})
    assert run.result == "pong" and run.arguments == {}


def test_arguments_already_a_dict_are_accepted() -> None:
    assert ToolBox([add]).run({"id": "c", "function": {"name": "add", "arguments": {"a": 1}}}).result == "2"


@pytest.mark.parametrize(
    ("the_call", "error", "arguments"),
    [
        (call("nope", {}), "UnknownTool: there is no tool named 'nope' (available: add, fail)", {}),
        (call("add", "{not json"), "JSONDecodeError: the arguments are not valid JSON", None),
        (call("add", "[1, 2]"), "TypeError: arguments must be a JSON object, got [1, 2]", None),
        (call("add", {"b": 2}), "TypeError: missing required argument 'a'", {"b": 2}),
        (call("add", {"a": 1, "c": 2}), "TypeError: unexpected argument 'c' (parameters: a, b)", {"a": 1, "c": 2}),
        (call("add", {"a": "two"}), "ValidationError: argument `a`: Input should be a valid integer", {"a": "two"}),
        (call("fail", {"x": 7}), "ValueError: x=7 is not allowed", {"x": 7}),
        ({"id": "c"}, "UnknownTool: there is no tool named ''", None),
        ("not a call", "UnknownTool", None),
        (
            {"id": "c", "function": {"name": "add", "arguments": 5}},
            "TypeError: arguments must be a JSON object, got int",
            None,
        ),
    ],
)
def test_problems_are_reported_never_raised(the_call: Any, error: str, arguments: Any) -> None:
    run = ToolBox([add, fail]).run(the_call)
    assert not run.ok and run.error is not None and run.error.startswith(error), run.error
    assert run.result.startswith("Error: ") and error in run.result
    if arguments is not None and not error.startswith("UnknownTool"):
        assert run.arguments == arguments
    assert run.message()["content"] == run.result


def test_a_tool_exception_says_the_tool_raised_it() -> None:
    run = ToolBox([fail]).run(call("fail", {"x": 1}))
    assert run.result == "Error: the tool `fail` raised ValueError: x=1 is not allowed"
    bad = ToolBox([fail]).run(call("fail", {"x": "y"}))
    assert bad.result.startswith("Error: calling `fail` failed: ValidationError: argument `x`")


def test_nested_validation_errors_name_the_path() -> None:
    run = ToolBox([get_weather]).run(call("get_weather", {"place": {"country": "NO"}}))
    assert run.error is not None and run.error.startswith("ValidationError: argument `place.city`: Field required")


def test_base_exceptions_are_not_swallowed() -> None:
    def stop() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ToolBox([stop]).run(call("stop", {}))


def test_positional_only_parameters() -> None:
    def power(base: int, exp: int = 2, /) -> int:
        return base**exp

    box = ToolBox([power])
    assert box.run(call("power", {"base": 3})).result == "9"
    assert box.run(call("power", {"base": 2, "exp": "5"})).result == "32"


def test_kwargs_receive_extra_arguments() -> None:
    def record(kind: str, **fields: Any) -> dict[str, Any]:
        return {"kind": kind, **fields}

    run = ToolBox([record]).run(call("record", {"kind": "k", "x": 1}))
    assert json.loads(run.result) == {"kind": "k", "x": 1}


def test_hidden_parameters_keep_their_default_and_cannot_be_set() -> None:
    def query(sql: str, conn: Connection = Connection()) -> str:  # noqa: B008
        return f"{conn.name}: {sql}"

    box = ToolBox([query])
    assert box.run(call("query", {"sql": "select 1"})).result == "default: select 1"
    assert box.run(call("query", {"sql": "x", "conn": "evil"})).error == (
        "TypeError: unexpected argument 'conn' (parameters: sql)"
    )


class Point(BaseModel):
    x: int
    y: int


@dataclasses.dataclass
class Pair:
    left: int
    right: str


class NotJson:
    def __str__(self) -> str:
        return "<not json>"


class BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no str")


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ("plain text", "plain text"),
        ("", ""),
        (3, "3"),
        (2.5, "2.5"),
        (True, "true"),
        (None, "null"),
        ([1, "a"], '[1, "a"]'),
        ({"é": 1}, '{"é": 1}'),
        (Point(x=1, y=2), '{"x":1,"y":2}'),
        (Pair(1, "r"), '{"left": 1, "right": "r"}'),
        (Unit.CELSIUS, '"celsius"'),
        (NotJson(), "<not json>"),
        ({"k": NotJson()}, "{'k': <__main__.NotJson object"),
        (float("nan"), "nan"),
        (BadStr(), "<the result could not be converted to text: RuntimeError: no str>"),
    ],
)
def test_results_are_json_when_possible(value: Any, result: str) -> None:
    def produce() -> Any:
        return value

    text = ToolBox([produce]).run(call("produce")).result
    if result.startswith("{'k'"):
        assert text.startswith("{'k': <")  # str() of a dict with a non-JSON value
    else:
        assert text == result


def test_results_are_bounded() -> None:
    def big() -> str:
        return "x" * 100_000

    run = ToolBox([big]).run(call("big"))
    assert len(run.result) == RESULT_LIMIT and run.result.endswith("more characters]")
    assert "truncated: 80,0" in run.result


async def double(n: int) -> int:
    """Twice n, eventually."""
    await asyncio.sleep(0)
    return 2 * n


async def explode() -> None:
    raise RuntimeError("async boom")


def test_coroutine_tools_run_without_a_loop() -> None:
    box = ToolBox([double, explode])
    assert box.run(call("double", {"n": "4"})).result == "8"
    assert box.run(call("explode")).error == "RuntimeError: async boom"


def test_coroutine_tools_run_inside_a_running_loop() -> None:
    box = ToolBox([double, explode])

    async def main() -> tuple[ToolRun, ToolRun, ToolRun]:
        return (
            box.run(call("double", {"n": 5})),
            await box.arun(call("double", {"n": 6})),
            await box.arun(call("explode")),
        )

    sync_run, async_run, failed = asyncio.run(main())
    assert sync_run.result == "10" and async_run.result == "12"
    assert failed.error == "RuntimeError: async boom"


def test_arun_reports_the_same_problems() -> None:
    box = ToolBox([add, fail])
    for the_call in (call("nope"), call("add", "{"), call("fail", {"x": 1}), call("add", {"a": 1})):
        assert asyncio.run(box.arun(the_call)).error == box.run(the_call).error


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(max_size=10),
    arguments=st.one_of(
        st.text(max_size=30),
        st.none(),
        st.integers(),
        st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5) | st.none(), max_size=4),
    ),
)
def test_run_never_raises(name: str, arguments: Any) -> None:
    box = ToolBox([add, fail, get_weather])
    run = box.run({"id": "x", "type": "function", "function": {"name": name, "arguments": arguments}})
    assert isinstance(run.result, str) and (run.error is None) == run.ok
    assert run.message()["role"] == "tool"
