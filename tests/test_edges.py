"""Trust at the edges, unit level: cache files provably ours, safe exports, validated loads, grouped turns,
bounded attachments, missing values in context, secrets masked in state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from or_magic import context
from or_magic.attachments import AttachmentError, file_part
from or_magic.cache import CacheError, ResponseCache
from or_magic.conversation import ConversationFileError, ConversationStore, Turn
from or_magic.redact import MASK, has_secret, redact

KEY = "sk-or-v1-" + "ab12" * 16
RESULT = {"id": "gen-1", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}


# -- cache ---------------------------------------------------------------------------------------
def test_clear_and_len_touch_only_our_entries(tmp_path: Path) -> None:
    """cache_dir = a user's project folder: their JSON files, even in two-letter folders, survive."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "records.json").write_text('{"rows": [1, 2]}')
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.json").write_text("{}")
    key = "ab" + "0" * 62
    (tmp_path / "ab").mkdir()
    foreign = tmp_path / "ab" / f"{'ab' + '1' * 62}.json"  # our name pattern, not our content
    foreign.write_text('{"user": "data"}')
    cache = ResponseCache(tmp_path)
    cache.put(key, RESULT, model="m")
    assert len(cache) == 1
    assert cache.clear() == 1
    assert len(cache) == 0
    for kept in (tmp_path / "data" / "records.json", tmp_path / "config" / "settings.json", foreign):
        assert kept.exists()
    assert cache.get(key) is None


@pytest.mark.parametrize("result", [{"choices": "not a list"}, {"usage": {"prompt_tokens": "many"}},
                                    {"choices": [{"message": 5}]}])
def test_entry_with_wrong_field_types_is_a_miss(tmp_path: Path, result: dict) -> None:
    cache = ResponseCache(tmp_path)
    key = "cd" + "2" * 62
    cache.put(key, result)
    assert cache.get(key) is None


@pytest.mark.parametrize("content", ["[1, 2]", "not json", '{"format": "or_magic.cache/2", "key": 5}', ""])
def test_damaged_or_foreign_entry_is_a_miss(tmp_path: Path, content: str) -> None:
    key = "ef" + "3" * 62
    (tmp_path / "ef").mkdir()
    (tmp_path / "ef" / f"{key}.json").write_text(content)
    assert ResponseCache(tmp_path).get(key) is None


def test_entry_round_trips_with_keys_masked(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = "12" + "4" * 62
    leaky = json.loads(json.dumps(RESULT).replace('"hi"', f'"your key {KEY}"'))
    path = cache.put(key, leaky)
    assert KEY not in path.read_text()
    assert cache.get(key)["choices"][0]["message"]["content"] == f"your key {MASK}"


def test_failed_write_is_one_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CacheError, match="cannot write the response cache") as info:
        ResponseCache(blocker).put("ab" + "5" * 62, RESULT)
    assert isinstance(info.value, OSError)
    assert blocker.read_text() == "x"


# -- redact --------------------------------------------------------------------------------------
def test_redact_masks_nested_values_and_keys_without_touching_the_original() -> None:
    secret = "my-own-secret-value"
    data = {"a": [f"x {KEY} y", {"b": (secret, 3)}], KEY: None, "n": 1.5}
    clean = redact(data, [secret])
    assert clean == {"a": [f"x {MASK} y", {"b": (MASK, 3)}], MASK: None, "n": 1.5}
    assert data["a"][0].startswith("x sk-or-")
    assert has_secret(data, [secret]) and not has_secret(clean, [secret])
    assert redact("short", ["s"]) == "short"  # too short to be a key: never masks words


# -- export / load / restore ---------------------------------------------------------------------
def store_with_turns(*texts: str) -> ConversationStore:
    store = ConversationStore()
    for n, text in enumerate(texts):
        pending = store.begin(None, text, f"c{n}")
        store.commit(pending, Turn(user=text, assistant={"role": "assistant", "content": text.upper()},
                                   text=text.upper(), model="m", usage={"cost": 0.1, "prompt_tokens": 2}))
    return store


def test_export_never_destroys(tmp_path: Path) -> None:
    store = store_with_turns("one")
    target = tmp_path / "out.json"
    target.write_text("precious")
    with pytest.raises(ConversationFileError, match="already exists: add --force"):
        store.export(target)
    assert target.read_text() == "precious"
    store.export(target, force=True)
    assert json.loads(target.read_text())["threads"][0]["turns"][0]["user"] == "one"
    notebook = tmp_path / "analysis.ipynb"
    for force in (False, True):
        with pytest.raises(ConversationFileError, match="%chat restore"):
            store.export(notebook, force=force)
    assert not notebook.exists()
    with pytest.raises(ConversationFileError, match="is a folder"):
        store.export(tmp_path)
    with pytest.raises(ConversationFileError, match="no folder"):
        store.export(tmp_path / "missing" / "x.json")


def test_export_masks_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "plain-env-key-12345")
    store = store_with_turns(f"key {KEY}", "env plain-env-key-12345", "typed typed-key-0000")
    for name in ("x.json", "x.md"):
        text = store.export(tmp_path / name, secrets=["typed-key-0000"]).read_text()
        assert KEY not in text and "plain-env-key-12345" not in text and "typed-key-0000" not in text
        assert MASK in text


@pytest.mark.parametrize("payload", [
    "[1, 2, 3]", '"text"', '{"format": "other"}',
    '{"format": "or_magic.conversation/1", "threads": [{"name": "t", "turns": [{"user": 5, "assistant": {}}]}]}',
    '{"format": "or_magic.conversation/1", "threads": [{"name": "t", "turns": '
    '[{"user": "u", "assistant": {}, "usage": {"prompt_tokens": "lots"}}]}]}',
    '{"format": "or_magic.conversation/1", "threads": "all"}',
    "[" * 100_000 + "]" * 100_000,
    "{not json",
])
def test_bad_load_is_one_error_and_changes_nothing(tmp_path: Path, payload: str) -> None:
    store = store_with_turns("one", "two")
    before = store.to_dict()
    path = tmp_path / "bad.json"
    path.write_text(payload)
    with pytest.raises(ConversationFileError) as info:
        store.load(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300
    assert store.to_dict() == before
    assert store.usage_by_model()["m"]["turns"] == 2


def test_load_round_trip_and_masks_loaded_keys(tmp_path: Path) -> None:
    store = store_with_turns("one", f"leak {KEY}")
    data = store.to_dict()
    data["threads"][0]["turns"][1]["user"] = f"leak {KEY}"  # a hand-edited file carrying a key
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    fresh = ConversationStore()
    fresh.load(path)
    assert [t.user for t in fresh.get().turns] == ["one", f"leak {MASK}"]
    assert fresh.usage_by_model()["m"]["prompt_tokens"] == 4


@pytest.mark.parametrize("notebook", [
    [], {"cells": "x"}, {"cells": [{"cell_type": "code", "outputs": [{"metadata": {"or_magic": {"turn": 3}}}]}]},
    {"cells": [{"cell_type": "code", "outputs": [{"metadata": {"or_magic": {
        "turn": {"user": "u", "assistant": {}, "usage": {"cost": "free"}}}}}]}]},
])
def test_malformed_notebook_restore_changes_nothing(notebook: object) -> None:
    store = store_with_turns("one")
    before = store.to_dict()
    with pytest.raises(ConversationFileError):
        store.restore_notebook(notebook)
    assert store.to_dict() == before


# -- several calls in one cell -------------------------------------------------------------------
def say(store: ConversationStore, text: str, cell: str, execution: int | None) -> list[str]:
    pending = store.begin(None, text, cell, execution=execution)
    sent = [m["content"] for m in pending.messages]
    store.commit(pending, Turn(user=text, assistant={"role": "assistant", "content": text.upper()}, text=text))
    return sent


def test_calls_in_one_execution_are_separate_turns_and_rerun_replaces_the_group() -> None:
    store = ConversationStore()
    say(store, "before", "c0", 1)
    assert say(store, "first", "c1", 2) == ["before", "BEFORE", "first"]
    assert say(store, "second", "c1", 2) == ["before", "BEFORE", "first", "FIRST", "second"]
    say(store, "after", "c2", 3)
    assert [t.user for t in store.get().turns] == ["before", "first", "second", "after"]
    # re-running c1 (one call this time) replaces both of its turns in place; later turns go stale
    assert say(store, "again", "c1", 4) == ["before", "BEFORE", "again"]
    turns = store.get().turns
    assert [t.user for t in turns] == ["before", "again", "after"]
    assert [t.stale for t in turns] == [False, False, True]
    assert say(store, "again 2", "c1", 4) == ["before", "BEFORE", "again", "AGAIN", "again 2"]
    assert [t.user for t in store.get().turns] == ["before", "again", "again 2", "after"]


def test_without_execution_the_old_rule_holds() -> None:
    store = ConversationStore()
    say(store, "one", "c1", None)
    say(store, "two", "c1", None)
    assert [t.user for t in store.get().turns] == ["two"]


# -- attachments ---------------------------------------------------------------------------------
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_device_is_refused_without_reading() -> None:
    with pytest.raises(AttachmentError, match="not a regular file"):
        file_part("/dev/zero")


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(AttachmentError, match="not a regular file"):
        file_part(fifo)


def test_read_is_capped_even_when_the_size_lies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "grows.txt"
    path.write_text("x" * 5000)
    real = os.fstat

    class Small:
        def __init__(self, st: os.stat_result) -> None:
            self.st_mode, self.st_size = st.st_mode, 10

    monkeypatch.setattr(os, "fstat", lambda fd: Small(real(fd)))
    with pytest.raises(AttachmentError, match="over the limit"):
        file_part(path, max_bytes=100)


# -- context -------------------------------------------------------------------------------------
def test_frame_missing_values_are_always_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    full = context.describe(pd.DataFrame({"a": [1, 2]}), "df")
    assert "No missing values." in full
    monkeypatch.setattr(context, "_STATS_LIMIT", 4)  # a frame too big for statistics still counts missing
    text = context.describe(pd.DataFrame({"a": [1.0, None, 3.0], "b": [None, None, "x"]}), "df")
    assert "`a`: float64, 1 missing" in text and "2 missing" in text


@pytest.mark.parametrize(("arg", "path", "flags"), [
    ('"with space.json"', "with space.json", set()),
    ("'with space.json' --force", "with space.json", {"--force"}),
    ("--force out.json", "out.json", {"--force"}),
    ("with space.json", "with space.json", set()),  # as $name expands: taken whole
    ("", "", set()),
])
def test_path_argument(arg: str, path: str, flags: set[str]) -> None:
    from or_magic.archive import path_argument

    assert path_argument(arg, frozenset({"--force"})) == (path, flags)


def test_entries_of_the_previous_format_are_cleared_but_never_replayed(tmp_path: Path) -> None:
    key = "77" + "6" * 62
    (tmp_path / "77").mkdir()
    old = tmp_path / "77" / f"{key}.json"
    old.write_text(json.dumps({"format": "or_magic.cache/1", "key": key, "result": RESULT}))
    cache = ResponseCache(tmp_path)
    assert cache.get(key) is None and len(cache) == 1
    assert cache.clear() == 1 and not old.exists()
