"""The keywords of ``chat.send`` and ``chat.send_async``, stated once for both (and for the body's field order).

A new request field is one line here: :data:`~or_magic._body.BODY_FIELDS` follows this list's order.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel

    from ._retry import RetryConfig


def send_keywords(
    *,
    messages: Sequence[Mapping[str, Any] | BaseModel],
    model: str | None = None,
    models: list[str] | None = None,
    provider: Mapping[str, Any] | BaseModel | None = None,
    plugins: list[Mapping[str, Any]] | None = None,
    route: str | None = None,
    user: str | None = None,
    session_id: str | None = None,
    frequency_penalty: float | None = None,
    logit_bias: Mapping[str, float] | None = None,
    logprobs: bool | None = None,
    top_logprobs: int | None = None,
    max_completion_tokens: int | None = None,
    max_tokens: int | None = None,
    metadata: Mapping[str, str] | None = None,
    presence_penalty: float | None = None,
    reasoning: Mapping[str, Any] | BaseModel | None = None,
    response_format: Mapping[str, Any] | BaseModel | None = None,
    seed: int | None = None,
    stop: str | list[str] | None = None,
    stream: bool | None = False,
    stream_options: Mapping[str, Any] | None = None,
    temperature: float | None = None,
    tool_choice: Any = None,
    tools: list[Mapping[str, Any]] | None = None,
    top_p: float | None = None,
    debug: Mapping[str, Any] | None = None,
    image_config: Mapping[str, Any] | None = None,
    modalities: list[str] | None = None,
    cache_control: Mapping[str, Any] | BaseModel | None = None,
    parallel_tool_calls: bool | None = None,
    service_tier: str | None = None,
    stop_server_tools_when: Any = None,
    trace: Mapping[str, Any] | None = None,
    x_open_router_experimental_metadata: str | bool | None = None,
    top_k: int | None = None,
    repetition_penalty: float | None = None,
    min_p: float | None = None,
    top_a: float | None = None,
    verbosity: str | None = None,
    prediction: Mapping[str, Any] | None = None,
    retries: RetryConfig | int | None = None,
    server_url: str | None = None,
    timeout_ms: int | None = None,
    http_headers: Mapping[str, str] | None = None,
    http_referer: str | None = None,
    x_open_router_title: str | None = None,
    x_open_router_categories: str | None = None,
    x_open_router_metadata: str | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The keywords of ``chat.send`` and ``chat.send_async``: calling it checks a call's keywords (a
    misspelt or positional one raises TypeError) and returns all of them, defaults included."""
    return dict(locals())


def _named_check(spec: Callable[..., dict[str, Any]], qualname: str) -> Callable[..., dict[str, Any]]:
    """A copy of ``spec`` whose TypeError names the public method (``Chat.send() got an unexpected …``)."""
    code = spec.__code__.replace(co_name=qualname.rsplit(".", 1)[-1])
    if hasattr(code, "co_qualname"):  # Python 3.11+
        code = code.replace(co_qualname=qualname)
    check = types.FunctionType(code, spec.__globals__, code.co_name)
    check.__kwdefaults__ = spec.__kwdefaults__
    return check


def keywords_of(spec: Callable[..., dict[str, Any]]) -> Callable[[Callable[..., Any]], Any]:
    """Give a method ``spec``'s keyword list: its signature (``help``, ``inspect.signature``, completion)
    and its binding check. The method's body receives the checked keywords as one dict."""

    def wrap(impl: Callable[..., Any]) -> Any:
        check = _named_check(spec, impl.__qualname__)

        def method(self: Any, /, **kwargs: Any) -> Any:
            return impl(self, check(**kwargs))  # checked at the call, also for a coroutine method

        if inspect.iscoroutinefunction(impl) and hasattr(inspect, "markcoroutinefunction"):  # Python 3.12+
            inspect.markcoroutinefunction(method)
        functools.update_wrapper(method, impl)
        sig = inspect.signature(spec)
        first = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
        returns = inspect.signature(impl).return_annotation
        method.__signature__ = sig.replace(parameters=[first, *sig.parameters.values()], return_annotation=returns)
        return method

    return wrap
