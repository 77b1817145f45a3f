"""Notebook context: bounded descriptions of variables, the context block, and ``$name`` interpolation."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from or_magic.context import UnknownVariable, context_block, describe, interpolate

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


# ------------------------------------------------------------------------------------------- describe


def test_dataframe_has_shape_columns_dtypes_and_a_head_table() -> None:
    df = pd.DataFrame({"a": range(100), "b": [0.5] * 100, "name": ["x"] * 100})
    df.loc[3, "b"] = None
    text = describe(df, "df")
    assert text.startswith("Notebook variable `df` (pandas.DataFrame, 100 rows × 3 columns):")
    assert "- `a`: int64" in text and "- `b`: float64, 1 missing" in text and "- `name`:" in text
    assert "First 5 rows:" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == "|  | a | b | name |" and len(table) == 2 + 5
    assert "| 4 | 4 | 0.5 | x |" in table


def test_a_wide_and_long_dataframe_stays_bounded() -> None:
    df = pd.DataFrame(np.arange(200 * 300).reshape(200, 300), columns=[f"column_{i}" for i in range(300)])
    text = describe(df, "wide")
    assert len(text) <= 4000
    assert "200 rows × 300 columns" in text
    assert "first 20 of 300 columns" in text or "more lines" in text


def test_dataframe_cells_are_short_single_line_and_escape_pipes() -> None:
    df = pd.DataFrame({"text": ["a | b\nsecond line " + "z" * 100], "f": [1 / 3]})
    row = [line for line in describe(df, "df").splitlines() if line.startswith("| 0")][0]
    assert "a \\| b second line" in row and "…" in row and "0.333333" in row


def test_empty_dataframe_and_named_index() -> None:
    assert "0 rows × 0 columns" in describe(pd.DataFrame(), "e") and "No rows." in describe(pd.DataFrame(), "e")
    df = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["p", "q"], name="key"))
    assert "| key | v |" in describe(df, "df")


def test_multiindex_columns_and_mixed_dtypes() -> None:
    df = pd.DataFrame({("a", "x"): [1], ("a", "y"): [pd.Timestamp("2026-01-01")], ("b", "z"): [{"k": 1}]})
    text = describe(df, "df")
    assert "1 row × 3 columns" in text and "datetime64" in text and "2026-01-01" in text


def test_series_has_name_dtype_head_and_stats() -> None:
    text = describe(pd.Series(range(50), name="count"), "s")
    assert text.startswith("Notebook variable `s` (pandas.Series, name `count`, 50 values, dtype int64, 0 missing):")
    assert "First 10 values:" in text and "min 0, max 49, mean 24.5" in text


def test_series_of_strings_has_no_stats() -> None:
    text = describe(pd.Series(["a", "b"]), "s")
    assert "2 values" in text and "mean" not in text


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (
            np.arange(12).reshape(3, 4),
            ["shape (3, 4), dtype int64", "Values: [[0, 1, 2, 3]", "min 0, max 11, mean 5.5"],
        ),
        (np.zeros((1000, 1000)), ["shape (1000, 1000)", "Sample (first items): [[0.0,", "min 0, max 0, mean 0"]),
        (np.array(2.5), ["shape ()", "Values: 2.5"]),
        (np.ones((4, 5, 6, 7), dtype=np.float32), ["shape (4, 5, 6, 7), dtype float32", "Sample (first items)"]),
        (np.array(["a", "bb"]), ["dtype <U2", "Values: ['a', 'bb']"]),
        (np.array([1 + 2j]), ["complex128"]),
        (np.array([np.nan, 1.0, 3.0]), ["min 1, max 3, mean 2"]),
        (np.array([], dtype=float), ["shape (0,)", "Values: []"]),
    ],
)
def test_ndarray_shape_dtype_sample_stats(array: Any, expected: list[str]) -> None:
    text = describe(array, "arr")
    for piece in expected:
        assert piece in text, text
    assert len(text) <= 4000


def test_all_nan_array_has_no_stats() -> None:
    assert "mean" not in describe(np.array([np.nan, np.nan]), "a")


def test_huge_ndim_array_is_sampled_not_rendered() -> None:
    text = describe(np.zeros((7,) * 8), "cube")
    assert len(text) < 1500 and "shape (7, 7, 7, 7, 7, 7, 7, 7)" in text


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"a": 1, "b": [1, 2]}, "(dict, 2 items)"),
        ([1], "(list, 1 item)"),
        ((1, 2, 3), "(tuple, 3 items)"),
        ({1, 2}, "(set, 2 items)"),
        (frozenset(), "(frozenset, 0 items)"),
        (OrderedDict(a=1), "(collections.OrderedDict, 1 item)"),
        ("hello", "(str, 5 characters)"),
        (b"\x00\x01", "(bytes, 2 bytes)"),
        (3.5, "(float):"),
        (None, "(NoneType):"),
        (len, "(builtin_function_or_method):"),
    ],
)
def test_builtins(obj: Any, expected: str) -> None:
    assert expected in describe(obj, "v")


def test_big_containers_are_elided_not_rendered() -> None:
    text = describe(list(range(10**6)), "big")
    assert "(list, 1,000,000 items)" in text and "..." in text and len(text) < 1000
    nested = describe({"k": [[list(range(100))] * 100] * 100}, "n")
    assert len(nested) < 2000


def test_long_strings_are_cut_with_a_count_and_fenced_safely() -> None:
    text = describe("```code``` " + "x" * 10_000, "s", max_chars=500)
    assert len(text) <= 500 and "more characters]" in text
    fence = text.splitlines()[1]
    assert set(fence) == {"`"} and len(fence) >= 4 and text.rstrip().endswith(fence)


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class BrokenEverything:
    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError("no attributes for you")


class BrokenLen(list):
    def __len__(self) -> int:
        raise ValueError("len failed")


def test_failing_repr_is_reported_not_raised() -> None:
    assert "repr() failed with RuntimeError: repr exploded" in describe(BrokenRepr(), "b")
    assert "repr() failed" in describe([BrokenRepr()], "b")
    assert "could not be described: ValueError: len failed" in describe(BrokenLen(), "b")
    assert describe(BrokenEverything(), "b").startswith("Notebook variable `b`")


def test_a_dataframe_like_impostor_falls_back_to_repr() -> None:
    class DataFrame:  # not from pandas: no special treatment
        columns = ["a"]
        dtypes = ["int"]

        def __repr__(self) -> str:
            return "<my frame>"

    assert "<my frame>" in describe(DataFrame(), "f")


def test_a_repr_that_is_huge_is_cut() -> None:
    class Huge:
        def __repr__(self) -> str:
            return "H" * 100_000

    text = describe(Huge(), "h")
    assert len(text) <= 4000 and " ... " in text


@settings(max_examples=150, deadline=None)
@given(
    obj=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner) | st.tuples(inner, inner),
        max_leaves=30,
    ),
    max_chars=st.integers(1, 3000),
)
def test_describe_is_always_bounded_and_never_raises(obj: Any, max_chars: int) -> None:
    assert len(describe(obj, "v", max_chars=max_chars)) <= max_chars


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(0, 30), cols=st.integers(0, 30), max_chars=st.integers(50, 3000))
def test_describe_dataframes_is_always_bounded(rows: int, cols: int, max_chars: int) -> None:
    df = pd.DataFrame(np.zeros((rows, cols)), columns=[f"c{i}" * 5 for i in range(cols)])
    assert len(describe(df, "df", max_chars=max_chars)) <= max_chars


def test_describe_imports_neither_numpy_nor_pandas() -> None:
    code = (
        "import sys, or_magic.context as c; c.describe({'a': 1}, 'x'); "
        "print('numpy' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


# ------------------------------------------------------------------------------------------- context block


def test_context_block_has_one_section_per_variable_in_order() -> None:
    ns = {"df": pd.DataFrame({"a": [1]}), "xs": [1, 2], "note": "hi"}
    block = context_block(["xs", "df", "xs"], ns)
    sections = block.split("\n\n")
    assert sections[0].startswith("Notebook variable `xs` (list, 2 items):")
    assert sections[1].startswith("Notebook variable `df` (pandas.DataFrame, 1 row × 1 column):")
    assert block.count("Notebook variable `xs`") == 1
    assert context_block([], ns) == ""


def test_context_block_unknown_variable_is_a_readable_key_error() -> None:
    with pytest.raises(UnknownVariable) as info:
        context_block(["dff"], {"df": 1, "_hidden": 2})
    err = info.value
    assert isinstance(err, KeyError) and err.name == "dff"
    assert str(err) == (
        "no variable named `dff` in the notebook (define it first, or check the spelling); did you mean `df`?"
    )
    assert "did you mean" not in str(UnknownVariable("zzz"))


def test_context_block_passes_max_chars_per_section() -> None:
    block = context_block(["a", "b"], {"a": "x" * 5000, "b": "y" * 5000}, max_chars=300)
    assert all(len(section) <= 300 for section in block.split("\n\n"))


# ------------------------------------------------------------------------------------------- interpolate

NS = {"x": 3, "df": "DATA", "name": "Bob", "i": 9, "price": 5, "_": "last", "é": "accent", "n1": "N1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Summarise $df please", "Summarise DATA please"),
        ("hi $name, $name!", "hi Bob, Bob!"),
        ("$df", "DATA"),
        ("$df.columns", "DATA.columns"),  # identifiers only: the attribute is literal text
        ("($df)", "(DATA)"),
        ("$n1 and $n", "N1 and $n"),  # n is not defined: left alone
        ("$_ and $é", "last and accent"),
        ("costs $5 or $5.00", "costs $5 or $5.00"),
        ("a lone $ sign", "a lone $ sign"),
        ("$undefined stays", "$undefined stays"),
        ("{braces} and {df} and {{x}}", "{braces} and {df} and {{x}}"),
        # math is left alone
        ("$x$", "$x$"),
        ("explain $x^2$ to me", "explain $x^2$ to me"),
        ("where $x + 1 = y$ holds", "where $x + 1 = y$ holds"),
        ("$$x^2$$", "$$x^2$$"),
        ("$$\nx + df\n$$ then $df", "$$\nx + df\n$$ then DATA"),
        ("$$ $x $$", "$$ $x $$"),
        ("$x and $price are $5 each", "3 and 5 are $5 each"),  # a $ before a digit does not close math
        ("$x and $i", "3 and 9"),  # a $ after a space does not close math
        ("$x costs\n$5", "3 costs\n$5"),
        # code is left alone
        ("run `echo $i` now, $i", "run `echo $i` now, 9"),
        ("``a `$i` b`` $i", "``a `$i` b`` 9"),
        ("```bash\nfor i in *; do echo $i; done\n```\nthen $i", "```bash\nfor i in *; do echo $i; done\n```\nthen 9"),
        ("~~~\n$df\n~~~\n$df", "~~~\n$df\n~~~\nDATA"),
        ("```\nunclosed $df", "```\nunclosed $df"),
        ("unmatched ` then $i", "unmatched ` then 9"),
        # escapes
        ("\\$df is the name", "$df is the name"),
        ("\\$5 and \\$undefined", "\\$5 and \\$undefined"),
        ("\\$x^2$", "\\$x^2$"),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    assert interpolate(text, NS) == expected


def test_interpolate_uses_str_and_reports_a_failing_str() -> None:
    class Loud:
        def __str__(self) -> str:
            return "LOUD"

    class Broken:
        def __str__(self) -> str:
            raise ValueError("nope")

    assert interpolate("$a $b", {"a": Loud(), "b": Broken()}) == "LOUD <str() failed: ValueError: nope>"
    assert interpolate("$v", {"v": pd.DataFrame({"a": [1]})}) == str(pd.DataFrame({"a": [1]}))


def test_interpolated_values_are_not_interpolated_again() -> None:
    assert interpolate("$a", {"a": "$b", "b": "no"}) == "$b"


_IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
_TEXT = st.text(alphabet=st.sampled_from(list("$\\`~{}^_ \nab01x")), max_size=60)


@settings(max_examples=500, deadline=None)
@given(text=_TEXT, names=st.lists(_IDENT, max_size=4))
def test_interpolate_changes_nothing_without_a_defined_dollar_name(text: str, names: list[str]) -> None:
    ns = {n: "VALUE" for n in names if not re.search(r"\$" + re.escape(n) + r"(?!\w)", text)}
    assert interpolate(text, ns) == text


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80))
def test_interpolate_with_an_empty_namespace_is_the_identity(text: str) -> None:
    assert interpolate(text, {}) == text


@settings(max_examples=300, deadline=None)
@given(before=st.sampled_from(["", "see ", "(", "a\n", "- "]), after=st.sampled_from(["", " now", ".", ", ok", "\n"]))
def test_a_plain_dollar_name_in_prose_is_replaced(before: str, after: str) -> None:
    assert interpolate(f"{before}$df{after}", NS) == f"{before}DATA{after}"


@settings(max_examples=300, deadline=None)
@given(text=_TEXT)
def test_only_dollar_names_change(text: str) -> None:
    """Everything outside the ``$name`` matches survives: removing the names' values gives back the text."""
    out = interpolate(text, {"ab": "\x00"})
    assert out.replace("\x00", "$ab").replace("\\$ab", "$ab") == text.replace("\\$ab", "$ab")
