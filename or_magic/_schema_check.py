"""Checking an answer against a JSON schema: ``jsonschema`` when installed, else a small built-in checker."""

from __future__ import annotations

import json
import re
from typing import Any


def validate(instance: Any, schema: dict[str, Any], *, use_jsonschema: bool | None = None) -> list[tuple[tuple, str]]:
    """Problems as ``(path, message)`` pairs, best first; empty when ``instance`` matches ``schema``.

    Uses ``jsonschema`` when installed (``use_jsonschema=None``), else the built-in validator.
    """
    if use_jsonschema is not False:
        try:
            import jsonschema
        except ImportError:
            if use_jsonschema:
                raise
        else:
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            errors = list(cls(schema).iter_errors(instance))
            if not errors:
                return []
            best = jsonschema.exceptions.best_match(errors)
            ordered = [best, *(e for e in errors if e is not best)]
            return [_jsonschema_problem(e) for e in ordered]
    problems: list[tuple[tuple, str]] = []
    _Validator(schema, problems).check(instance, schema, ())
    return problems


def _jsonschema_problem(error: Any) -> tuple[tuple, str]:
    """(path, message) from a jsonschema error, pointing at the missing or unexpected key itself."""
    path = tuple(error.absolute_path)
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in instance]
        if missing:
            return (*path, missing[0]), "is missing"
    if error.validator == "additionalProperties" and error.validator_value is False:
        allowed = list((error.schema or {}).get("properties") or {})
        extra = [k for k in instance if k not in allowed]
        if extra:
            return (*path, extra[0]), f"is not an allowed property (allowed: {', '.join(allowed) or 'none'})"
    return path, error.message


_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


class _Validator:
    """The small built-in validator: enough of JSON Schema for structured-output answers."""

    def __init__(self, root: dict[str, Any], problems: list[tuple[tuple, str]]) -> None:
        self.root = root
        self.problems = problems

    def fail(self, path: tuple, message: str) -> None:
        self.problems.append((path, message))

    def resolve(self, ref: str) -> Any:
        node: Any = self.root
        for part in ref.lstrip("#").strip("/").split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, dict) else None
        return node

    def matches(self, value: Any, schema: Any) -> bool:
        trial: list[tuple[tuple, str]] = []
        _Validator(self.root, trial).check(value, schema, ())
        return not trial

    def check(self, value: Any, schema: Any, path: tuple) -> None:
        if schema is True or schema is None:
            return
        if schema is False:
            self.fail(path, "no value is allowed here")
            return
        if not isinstance(schema, dict):
            return
        if isinstance(schema.get("$ref"), str):
            target = self.resolve(schema["$ref"])
            if target is not None:
                self.check(value, target, path)
        if value is None and schema.get("nullable") is True:
            return
        kind = schema.get("type")
        if kind is not None:
            kinds = kind if isinstance(kind, list) else [kind]
            if not any(_TYPES.get(k, lambda v: True)(value) for k in kinds):
                self.fail(path, f"{_short(value)} is not of type {' or '.join(map(str, kinds))}")
                return
        if "enum" in schema and not any(json_equal(value, option) for option in schema["enum"]):
            self.fail(path, f"{_short(value)} is not one of {_short(schema['enum'])}")
        if "const" in schema and not json_equal(value, schema["const"]):
            self.fail(path, f"{_short(value)} should be {_short(schema['const'])}")
        self.check_combinators(value, schema, path)
        if isinstance(value, dict):
            self.check_object(value, schema, path)
        elif isinstance(value, list):
            self.check_array(value, schema, path)
        elif isinstance(value, str):
            self.check_string(value, schema, path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self.check_number(value, schema, path)

    def check_combinators(self, value: Any, schema: dict[str, Any], path: tuple) -> None:
        """``anyOf`` (at least one shape), ``oneOf`` (exactly one), ``allOf`` (every one)."""
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                hits = sum(self.matches(value, option) for option in options)
                if hits == 0 or (key == "oneOf" and hits > 1):
                    self.fail(
                        path, f"{_short(value)} matches {'none' if hits == 0 else 'several'} of the allowed shapes"
                    )
        for option in schema.get("allOf") or []:
            self.check(value, option, path)

    def check_object(self, value: dict[str, Any], schema: dict[str, Any], path: tuple) -> None:
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                self.fail((*path, name), "is missing")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                self.check(item, props[name], (*path, name))
            elif extra is False:
                allowed = ", ".join(props) or "none"
                self.fail((*path, name), f"is not an allowed property (allowed: {allowed})")
            elif isinstance(extra, dict):
                self.check(item, extra, (*path, name))

    def check_array(self, value: list[Any], schema: dict[str, Any], path: tuple) -> None:
        items = schema.get("items")
        if isinstance(items, (dict, bool)):
            for i, item in enumerate(value):
                self.check(item, items, (*path, i))
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.fail(path, f"has {len(value)} items, fewer than {schema['minItems']}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.fail(path, f"has {len(value)} items, more than {schema['maxItems']}")

    def check_string(self, value: str, schema: dict[str, Any], path: tuple) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.fail(path, f"{_short(value)} is shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.fail(path, f"{_short(value)} is longer than {schema['maxLength']} characters")
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                if re.search(pattern, value) is None:
                    self.fail(path, f"{_short(value)} does not match {pattern!r}")
            except re.error:
                pass

    def check_number(self, value: float, schema: dict[str, Any], path: tuple) -> None:
        bounds = (
            ("minimum", lambda v, b: v >= b, "less than"),
            ("maximum", lambda v, b: v <= b, "greater than"),
            ("exclusiveMinimum", lambda v, b: v > b, "not greater than"),
            ("exclusiveMaximum", lambda v, b: v < b, "not less than"),
        )
        for key, ok, words in bounds:
            bound = schema.get(key)
            if isinstance(bound, (int, float)) and not isinstance(bound, bool) and not ok(value, bound):
                self.fail(path, f"{_short(value)} is {words} {bound}")


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON means it: ``true`` is not ``1`` (Python says ``True == 1``), ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
    return (numbers or type(a) is type(b)) and a == b
