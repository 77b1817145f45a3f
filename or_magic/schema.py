"""Structured output for ``--schema NAME``: a pydantic model or JSON-schema dict → ``response_format`` → parsed.

``resolve(obj, name_hint)`` gives a :class:`StructuredSpec`. Its ``schema`` is adjusted for OpenAI-style strict
mode, which OpenRouter passes through (OPENROUTER.md §2.6): ``$ref``s into ``$defs`` are inlined (recursive ones
are kept, with the ``$defs`` they need), every object with ``properties`` gets ``additionalProperties: false``
and lists all its properties as ``required``, ``oneOf`` becomes ``anyOf``, OpenAPI's ``nullable`` becomes a
``"null"`` type, and ``default`` (not permitted in strict mode) is dropped. A free-form mapping
(``dict[str, X]``, i.e. ``additionalProperties`` given as a schema) cannot be expressed in strict mode; such a
spec is sent with ``strict: false`` rather than silently forbidding every key.

``spec.parse(text)`` accepts the answer as bare JSON, inside a ```` ```json ```` fence, or with a little prose
around one JSON object, and returns a model instance (pydantic) or the validated value (dict schema). Dict
schemas are checked with ``jsonschema`` when it is installed, else with the small validator below (type,
properties, required, enum, const, items, additionalProperties, nullable, anyOf/allOf/oneOf, local ``$ref``,
bounds). A failure raises :class:`StructuredOutputError` naming the failing field and keeping the raw text.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._schema_check import validate
from .errors import StructuredOutputError

__all__ = ["StructuredOutputError", "StructuredSpec", "resolve", "strict_schema", "inline_refs", "validate"]

_NAME_OK = re.compile(r"[^A-Za-z0-9_-]+")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)\n?[ \t]*```", re.S)
# --------------------------------------------------------------------------------------------- resolve


@dataclass
class StructuredSpec:
    """A schema ready to send as ``response_format``, and the way back from the answer to a value."""

    name: str
    schema: dict[str, Any]
    model: Any = None  # the pydantic model class, when there is one
    strict: bool = True
    description: str | None = None
    source: dict[str, Any] = field(default_factory=dict, repr=False)  # the schema as given / generated

    def response_format(self) -> dict[str, Any]:
        """``{"type": "json_schema", "json_schema": {name, schema, strict}}`` for the request."""
        inner: dict[str, Any] = {"name": self.name, "schema": self.schema, "strict": self.strict}
        if self.description:
            inner["description"] = self.description
        return {"type": "json_schema", "json_schema": inner}

    def parse(self, text: str) -> Any:
        """The answer as a model instance or validated value; :class:`StructuredOutputError` otherwise."""
        data = _load_json(text)
        if self.model is not None:
            return _validate_model(self.model, data, text)
        problems = validate(data, self.schema)
        if problems:
            path, message = problems[0]
            more = (
                f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
                if len(problems) > 1
                else ""
            )
            raise StructuredOutputError(
                f"the answer does not match the schema {self.name!r}: {_where(path)}{message}{more}",
                raw_text=text,
                path=_path_text(path),
                errors=[f"{_where(p)}{m}" for p, m in problems[:20]],
            )
        return data


def resolve(obj: Any, name_hint: str) -> StructuredSpec:
    """A :class:`StructuredSpec` from a pydantic model (class or instance) or a JSON-schema dict."""
    model = _pydantic_model(obj)
    if model is not None:
        source = model.model_json_schema()
        schema, strict = strict_schema(source)
        doc = source.get("description")
        return StructuredSpec(_name(model.__name__, name_hint), schema, model, strict, doc, source)
    if isinstance(obj, dict):
        source, name, description = _unwrap(obj)
        _check_schema(source)
        schema, strict = strict_schema(source)
        name = _name(name or name_hint or source.get("title") or "", "response")
        return StructuredSpec(name, schema, None, strict, description, source)
    raise TypeError(
        f"--schema needs a pydantic model class or a JSON-schema dict, not {type(obj).__module__}."
        f"{type(obj).__qualname__} (define e.g. `class Answer(BaseModel): ...` and pass --schema Answer)"
    )


def _pydantic_model(obj: Any) -> Any:
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return None
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        return obj
    if isinstance(obj, BaseModel):
        return type(obj)
    return None


def _name(preferred: str, fallback: str) -> str:
    """≤64 characters of [A-Za-z0-9_-], as ``json_schema.name`` requires."""
    for candidate in (preferred, fallback, "response"):
        cleaned = _NAME_OK.sub("_", str(candidate or "")).strip("_")[:64]
        if cleaned:
            return cleaned
    return "response"  # pragma: no cover


def _unwrap(obj: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """Accept a bare schema, the ``json_schema`` object ({name, schema, strict}) or a whole response_format."""
    if obj.get("type") == "json_schema" and isinstance(obj.get("json_schema"), dict):
        obj = obj["json_schema"]
    if isinstance(obj.get("schema"), dict) and "properties" not in obj and "name" in obj:
        return obj["schema"], obj.get("name"), obj.get("description")
    return obj, None, None


_SCHEMA_KEYS = {"type", "properties", "items", "anyOf", "oneOf", "allOf", "enum", "const", "$ref", "$defs"}


def _check_schema(schema: dict[str, Any]) -> None:
    if not _SCHEMA_KEYS & schema.keys():
        raise ValueError(
            "this dict does not look like a JSON schema (no type/properties/items/anyOf/enum/$ref): "
            f"{json.dumps(schema, default=str)[:120]}"
        )
    try:
        import jsonschema
    except ImportError:
        return
    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"not a valid JSON schema: {exc.message}") from None


# ------------------------------------------------------------------------------------- strict adjustment


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with local ``$ref``s replaced by their definitions; recursive ones kept.

    Definitions still referenced (recursion) stay under ``$defs``; unused ones are dropped.
    """
    root = copy.deepcopy(schema)
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        for name, value in (root.pop(key, None) or {}).items():
            defs[f"#/{key}/{name}"] = value
    kept: dict[str, Any] = {}

    def walk(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in defs:
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if ref in stack:  # recursion: keep the reference, and the definition it needs
                name = ref.rsplit("/", 1)[1]
                if name not in kept:
                    kept[name] = None  # placeholder against infinite expansion
                    kept[name] = walk(defs[ref], (ref,))  # a fresh stack: inline what it can
                return {"$ref": f"#/$defs/{name}", **{k: walk(v, stack) for k, v in siblings.items()}}
            target = walk(defs[ref], (*stack, ref))
            merged = dict(target) if isinstance(target, dict) else {"allOf": [target]}
            merged.update({k: walk(v, stack) for k, v in siblings.items()})
            return merged
        return {
            key: (walk(value, stack) if key not in ("enum", "const", "default", "examples") else value)
            for key, value in node.items()
        }

    result = walk(root, ())
    if kept:
        result["$defs"] = kept
    return result


def strict_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema adjusted for strict mode, and whether strict mode can honour it (see module docstring)."""
    free_form: list[bool] = []  # one entry per node strict mode cannot express

    def fix(node: Any) -> Any:
        if isinstance(node, list):
            return [fix(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = _strict_keywords(_strict_children(node, fix))
        if not _close_object(out):
            free_form.append(True)
        return out

    fixed = fix(inline_refs(schema))
    return fixed, not free_form


def _strict_children(node: dict[str, Any], fix: Callable[[Any], Any]) -> dict[str, Any]:
    """The node with its sub-schemas fixed; defaults dropped, literal lists (enum, required…) kept."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "default":
            continue
        if key in ("properties", "$defs", "patternProperties", "dependentSchemas"):
            out[key] = {name: fix(sub) for name, sub in value.items()} if isinstance(value, dict) else value
        elif key in ("enum", "const", "examples", "required"):
            out[key] = value
        else:
            out[key] = fix(value)
    return out


def _strict_keywords(out: dict[str, Any]) -> dict[str, Any]:
    """Keywords strict mode rejects, rewritten: oneOf -> anyOf, no discriminator, a lone allOf folded in,
    ``nullable`` as a ``null`` type (and ``None`` in an enum)."""
    if "oneOf" in out and "anyOf" not in out:
        out["anyOf"] = out.pop("oneOf")
    out.pop("discriminator", None)
    # a single-element allOf (old pydantic's "$ref plus description") folds into its parent
    if isinstance(out.get("allOf"), list) and len(out["allOf"]) == 1 and isinstance(out["allOf"][0], dict):
        only = out.pop("allOf")[0]
        out = {**only, **out}
    if out.pop("nullable", False) is True:
        kind = out.get("type")
        if isinstance(kind, str) and kind != "null":
            out["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            out["type"] = [*kind, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _close_object(out: dict[str, Any]) -> bool:
    """Every property required and no others allowed; False for a mapping with arbitrary keys, which strict
    mode cannot express."""
    is_object = out.get("type") == "object" or (isinstance(out.get("type"), list) and "object" in out["type"])
    if "properties" in out and isinstance(out["properties"], dict):
        out["required"] = list(out["properties"])
        if isinstance(out.get("additionalProperties"), dict) and out["additionalProperties"]:
            return False
        out["additionalProperties"] = False
    elif is_object:
        extra = out.get("additionalProperties")
        if (isinstance(extra, dict) and extra) or extra is True or "additionalProperties" not in out:
            return False
    return True


# --------------------------------------------------------------------------------------------- parsing


def _load_json(text: str) -> Any:
    if not isinstance(text, str) or not text.strip():
        raise StructuredOutputError(
            "the model's answer is empty, so there is nothing to parse (it may have refused)",
            raw_text=text if isinstance(text, str) else "",
        )
    first_error: json.JSONDecodeError | None = None
    for candidate in _candidates(text):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise StructuredOutputError(
        f"the model's answer is not valid JSON: {first_error.msg} at line {first_error.lineno} "
        f"column {first_error.colno}",
        raw_text=text,
    )


def _candidates(text: str) -> Iterator[str]:
    """The answer as is, then inside a code fence, then from its first ``{``/``[`` to the matching last one."""
    stripped = text.strip().lstrip("\ufeff")
    yield stripped
    for match in _FENCE.finditer(text):
        if match.group(1).lower() in ("", "json", "json5", "jsonc", "javascript", "js"):
            yield match.group(2).strip()
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = stripped.find(opener), stripped.rfind(closer)
        if 0 <= start < end:
            yield stripped[start : end + 1]


def _validate_model(model: Any, data: Any, text: str) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        first = problems[0]
        path = _path_text(first.get("loc", ()))
        more = len(problems) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise StructuredOutputError(
            f"the answer does not match {model.__name__}: {_where(first.get('loc', ()))}{first.get('msg', '')}"
            f"{_got(first)}{tail}",
            raw_text=text,
            path=path,
            errors=[f"{_where(p.get('loc', ()))}{p.get('msg', '')}" for p in problems[:20]],
        ) from None


def _got(problem: dict[str, Any]) -> str:
    if problem.get("type") == "missing" or "input" not in problem:
        return ""
    shown = json.dumps(problem["input"], default=str, ensure_ascii=False)
    return f" (got {shown[:60] + '…' if len(shown) > 60 else shown})"


def _path_text(path: Any) -> str:
    """``items[0].name`` from a location tuple; ``""`` for the root."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _where(path: Any) -> str:
    text = _path_text(path)
    return f"field `{text}`: " if text else ""
