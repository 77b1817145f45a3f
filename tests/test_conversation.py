"""Threads and turns: cell-aware replacement, stale marking, commit/release, export round trip."""

from __future__ import annotations

import json

import pytest

from or_magic.conversation import INTERRUPTED, ConversationStore, ThreadBusyError, Turn


def answer(store: ConversationStore, text: str, cell: str | None = None, thread: str | None = None,
           reply: str | None = None) -> Turn:
    pending = store.begin(thread, text, cell)
    return store.commit(pending, Turn(user=text, assistant={"role": "assistant", "content": reply or text.upper()},
                                      text=reply or text.upper(), model="m", usage={"cost": 0.5,
                                                                                       "prompt_tokens": 3,
                                                                                       "completion_tokens": 4}))


def test_context_carries_system_and_earlier_turns() -> None:
    store = ConversationStore()
    store.get().system = "be brief"
    answer(store, "one", "c1")
    pending = store.begin(None, "two", "c2")
    assert pending.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "one"}, {"role": "assistant", "content": "ONE"},
        {"role": "user", "content": "two"}]
    store.release(pending)


def test_rerun_replaces_turn_in_place_and_marks_later_stale() -> None:
    store = ConversationStore()
    answer(store, "one", "c1")
    answer(store, "two", "c2")
    answer(store, "three", "c3")
    pending = store.begin(None, "two again", "c2")
    # only the turns before the re-run cell are sent
    assert [m["content"] for m in pending.messages] == ["one", "ONE", "two again"]
    store.commit(pending, Turn(user="two again", assistant={"role": "assistant", "content": "X"}, text="X"))
    turns = store.get().turns
    assert [t.user for t in turns] == ["one", "two again", "three"]
    assert [t.stale for t in turns] == [False, False, True]
    assert turns[1].cell_id == "c2"


def test_without_cell_id_each_run_appends() -> None:
    store = ConversationStore()
    answer(store, "a")
    answer(store, "a")
    assert len(store.get().turns) == 2


def test_release_leaves_thread_untouched_and_free() -> None:
    store = ConversationStore()
    answer(store, "one", "c1")
    pending = store.begin(None, "fails", "c2")
    assert store.is_busy()
    with pytest.raises(ThreadBusyError):
        store.begin(None, "concurrent", "c3")
    store.release(pending)
    assert not store.is_busy()
    assert [t.user for t in store.get().turns] == ["one"]


def test_once_sends_no_history() -> None:
    store = ConversationStore()
    answer(store, "one", "c1")
    pending = store.begin(None, "alone", "c9", memory=False)
    assert pending.messages == [{"role": "user", "content": "alone"}]
    store.release(pending)


def test_named_threads_are_separate() -> None:
    store = ConversationStore()
    answer(store, "main")
    answer(store, "side", thread="side")
    assert len(store.get().turns) == 1 and len(store.get("side").turns) == 1
    assert sorted(store.names()) == ["default", "side"]


def test_usage_by_model_sums_tokens_and_cost() -> None:
    store = ConversationStore()
    answer(store, "a")
    answer(store, "b", thread="x")
    assert store.usage_by_model() == {"m": {"turns": 2, "prompt_tokens": 6, "cached_tokens": 0, "completion_tokens": 8,
                                            "cost": 1.0, "cache_saved": 0.0}}


def test_export_json_round_trips_and_markdown_reads(tmp_path) -> None:
    store = ConversationStore()
    store.get().system = "sys"
    answer(store, "one", "c1")
    t = answer(store, "two", "c2")
    t.status = INTERRUPTED
    path = store.export(tmp_path / "conv.json")
    other = ConversationStore()
    other.load(path)
    assert other.to_dict() == store.to_dict()
    md = store.export(tmp_path / "conv.md").read_text()
    assert "# Thread: default" in md and "(interrupted)" in md and "ONE" in md
    with pytest.raises(ValueError):
        other.load_dict(json.loads('{"format": "something else", "threads": []}'))


def test_undo_and_reset() -> None:
    store = ConversationStore()
    answer(store, "one")
    answer(store, "two")
    assert store.undo().user == "two"
    store.reset()
    assert store.get().turns == [] and store.undo() is None
