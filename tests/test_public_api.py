"""The public surface: names users import, the error classes DESIGN.md promises, a light import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import or_magic

STATUS_CLASSES = {
    400: "BadRequestResponseError", 401: "UnauthorizedResponseError", 402: "PaymentRequiredResponseError",
    403: "ForbiddenResponseError", 404: "NotFoundResponseError", 408: "RequestTimeoutResponseError",
    413: "PayloadTooLargeResponseError", 422: "UnprocessableEntityResponseError",
    429: "TooManyRequestsResponseError", 500: "InternalServerResponseError", 502: "BadGatewayResponseError",
    503: "ServiceUnavailableResponseError", 524: "EdgeNetworkTimeoutResponseError",
    529: "ProviderOverloadedResponseError",
}


def test_exported_members() -> None:
    assert sorted(or_magic.__all__) == sorted(
        ["OpenRouter", "ChatPanel", "errors", "map_prompt", "load_ipython_extension", "unload_ipython_extension"])
    for name in or_magic.__all__:
        assert getattr(or_magic, name) is not None
    with pytest.raises(AttributeError):
        or_magic.NoSuchThing  # noqa: B018


def test_from_or_magic_import_errors_and_classes() -> None:
    from or_magic import errors

    for status, name in STATUS_CLASSES.items():
        cls = getattr(errors, name)
        assert issubclass(cls, errors.ChatError) and issubclass(cls, errors.OpenRouterError)
        err = errors.make_status_error(status, b'{"error": {"code": %d, "message": "m"}}' % status, {})
        assert type(err) is cls and err.status_code == status
    assert type(errors.make_status_error(418, b"{}", {})) is errors.OpenRouterDefaultError
    assert issubclass(errors.StreamError, errors.ChatError)
    assert issubclass(errors.APITimeoutError, errors.APIConnectionError)


def test_import_and_extension_module_stay_light() -> None:
    code = ("import sys, or_magic, or_magic.magics; "
            "print(sorted(m for m in ('httpx', 'pydantic', 'markdown_it', 'or_magic.client', 'or_magic.render') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_load_ext_stays_light() -> None:
    """``%load_ext or_magic`` creates no session: the client, pydantic and the renderer load on first use."""
    code = ("import sys\n"
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "ip.run_line_magic('load_ext', 'or_magic')\n"
            "assert 'chat' in ip.magics_manager.magics['cell']\n"
            "print(sorted(m for m in ('httpx', 'pydantic', 'markdown_it', 'or_magic.client', 'or_magic.session', "
            "'or_magic.render') if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME",)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         env=env)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
