"""``--map`` options and the map cell's checks, without a kernel (the kernel tests cover the real path)."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from IPython.core.error import UsageError

from or_magic import options
from or_magic.conversation import ConversationStore
from or_magic.map_cell import map_job
from or_magic.prepare import Surroundings


def _opts(line: str) -> options.ChatOptions:
    return options.build(options.parse(line), options.Defaults(model="sandbox/echo"))


def test_map_options_parse_and_default():
    opts = _opts("--map df --concurrency 16 --fresh --batch -o out")
    assert (opts.map_var, opts.concurrency, opts.fresh, opts.batch, opts.out) == ("df", 16, True, True, "out")
    assert _opts("--map df").concurrency == 8 and _opts("-m x/y").map_var is None


@pytest.mark.parametrize(("line", "words"), [
    ("--concurrency 300 --map df", "within 1..256"), ("--fresh", "only applies with --map"),
    ("--map df --tools f", "cannot be combined with --tools"), ("--map 'a b'", "Python variable name")])
def test_bad_map_options_are_one_line(line, words):
    with pytest.raises(UsageError, match=words):
        _opts(line)


def _env(ns):
    return Surroundings(namespace=ns, store=ConversationStore())


def test_job_takes_the_thread_system_schema_and_context_without_creating_a_thread():
    from pydantic import BaseModel

    class Label(BaseModel):
        label: str

    df = pd.DataFrame({"text": ["a", "b"]})
    env = _env({"df": df, "Label": Label, "extra": [1, 2, 3]})
    job = map_job(_opts("--map df --schema Label --context extra -s 'Be terse.' -t 0.5"), "Rate $text", env)
    assert job.system == "Be terse." and job.schema is not None and job.params["temperature"] == 0.5
    assert job.params["response_format"]["type"] == "json_schema" and "extra" in job.preamble
    assert env.store.threads == {}


def test_missing_pandas_is_one_line(monkeypatch):
    env = _env({"rows": ["a", "b"]})
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'or_magic\[data\]'"):
        map_job(_opts("--map rows"), "Say $item", env)
