"""The pieces of the notebook-as-context engine that need no kernel: printed text, SPEC, tracebacks, code blocks."""

from __future__ import annotations

import json
import threading

import pytest

from or_magic.celloutput import PrintedText
from or_magic.cellsblock import SpecPart, parse_spec
from or_magic.celltrace import cell_error
from or_magic.codecells import answer_code, python_blocks


def test_carriage_returns_redraw_the_line_across_chunks() -> None:
    text = PrintedText(1000)
    for chunk in ("start\n", "\r 10%", "|#  |", "\r 50%|##", " |\r100%|###|", "\n", "end\r\n"):
        text.write(chunk)
    assert text.text() == "start\n100%|###|\nend"


def test_long_output_keeps_first_and_last_lines_within_the_limit() -> None:
    text = PrintedText(2000)
    for i in range(10_000):
        text.write(f"row {i}\n")
    kept = text.text()
    assert len(kept) < 2100 and kept.startswith("row 0\n") and kept.endswith("row 9999")
    assert "lines not kept" in kept
    text.write("x" * 50_000)  # one huge line without a newline stays bounded too
    assert len(text.text()) < 3200


def test_clear_and_ansi_codes() -> None:
    text = PrintedText(500)
    text.write("\x1b[31mred\x1b[0m\n")
    assert text.text() == "red"
    text.clear()
    assert not text and text.text() == ""


def test_threads_writing_at_once_lose_no_line() -> None:
    text = PrintedText(100_000)

    def write(tag: str) -> None:
        for i in range(200):
            text.write(f"{tag}{i}\n")

    threads = [threading.Thread(target=write, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(text.text().splitlines()) == sorted(f"{t}{i}" for t in "ab" for i in range(200))


def test_spec_forms() -> None:
    assert parse_spec("all") == [SpecPart("all")]
    assert parse_spec(" 3 , 5-7,-2 ") == [SpecPart("range", 3, 3), SpecPart("range", 5, 7), SpecPart("last", last=2)]
    assert parse_spec("ALL") == [SpecPart("all")]


@pytest.mark.parametrize("bad", ["", "  ", "a", "3-", "-", "1,,2", "7-3", "0", "-0", "1.5", "1 2"])
def test_spec_mistakes_are_one_readable_line(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_spec(bad)
    assert str(info.value).startswith("--cells") and "\n" not in str(info.value)


def test_traceback_keeps_user_frames_and_drops_library_ones() -> None:
    def load(text: str) -> object:
        return json.loads(text)

    try:
        load("{broken")
    except ValueError as exc:
        error = cell_error(exc, 4)
    assert error.type_name == "JSONDecodeError" and "Expecting property name" in error.message
    assert "in load" in error.traceback and "return json.loads(text)" in error.traceback
    assert "json/decoder.py" not in error.traceback and "inside IPython or libraries not shown" in error.traceback
    assert error.traceback.endswith(f"JSONDecodeError: {error.message}")


def test_syntax_error_shows_the_line_and_caret() -> None:
    try:
        compile("x = (1,\ny = 2 +\n", "cell", "exec")
    except SyntaxError as exc:
        exc.__traceback__ = None
        error = cell_error(exc, 9)
    assert error.type_name == "SyntaxError" and error.line is not None and "Cell In[9], line" in error.traceback


def test_deep_recursion_is_summarised() -> None:
    def down(n: int) -> int:
        return down(n + 1)

    try:
        down(0)
    except RecursionError as exc:
        error = cell_error(exc, 1)
    assert "repeated" in error.traceback and len(error.traceback) < 4100


def test_python_blocks_by_info_word() -> None:
    answer = ("Text\n\n```python\na = 1\n```\n\n```bash\nls\n```\n\n```\nb = 2\n```\n\n"
              "- item\n\n  ```py\n  c = 3\n  ```\n\n~~~ipython\n%timeit a\n~~~\n\n```python\n```\n")
    assert python_blocks(answer) == ["a = 1", "b = 2", "c = 3", "%timeit a"]
    assert answer_code(answer) == "a = 1\n\nb = 2\n\nc = 3\n\n%timeit a"
    assert answer_code("No code here, only `inline` code.") is None
    assert answer_code("```json\n{}\n```") is None
