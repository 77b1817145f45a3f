"""Magic-line options: validation into request params; every mistake is a one-line UsageError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from or_magic import options
from or_magic.magics import ChatMagics


def build(line: str, **defaults: object) -> options.ChatOptions:
    ns = options.parse(line, ChatMagics.chat)
    return options.build(ns, options.Defaults(**defaults))  # type: ignore[arg-type]


def test_defaults_only_model() -> None:
    opts = build("")
    assert opts.params == {"model": "openrouter/auto"}
    assert opts.memory and opts.stream and not opts.dry_run and opts.thread is None


def test_every_named_option_maps_to_the_wire_field() -> None:
    opts = build("-m a/b --models c/d,e/f -t 0.3 --top-p 0.9 --max-tokens 50 --seed 7 --stop END --stop '###' "
                 "--reasoning high --web --provider-order openai,azure --sort price --json --no-stream "
                 "--chat side --new --once -o ans --dry-run -s 'be terse'")
    assert opts.params == {
        "model": "a/b", "models": ["c/d", "e/f"], "temperature": 0.3, "top_p": 0.9, "max_tokens": 50,
        "seed": 7, "stop": ["END", "###"], "reasoning": {"effort": "high"},
        "tools": [{"type": "openrouter:web_search"}],
        "provider": {"order": ["openai", "azure"], "sort": "price"}, "response_format": {"type": "json_object"}}
    assert (opts.thread, opts.new, opts.memory, opts.out, opts.dry_run, opts.stream, opts.system) == \
        ("side", True, False, "ans", True, False, "be terse")


def test_param_json_values_merge_into_named_options() -> None:
    opts = build("""--sort price --param provider='{"allow_fallbacks": false}' --param top_k=40 """
                 """--param reasoning.exclude=true --param verbosity=low""")
    assert opts.params["provider"] == {"sort": "price", "allow_fallbacks": False}
    assert opts.params["top_k"] == 40 and opts.params["verbosity"] == "low"
    assert opts.params["reasoning"] == {"exclude": True}


def test_reasoning_tokens() -> None:
    assert build("--reasoning-tokens 2000").params["reasoning"] == {"max_tokens": 2000}


def test_defaults_apply_and_cell_options_win() -> None:
    assert build("", temperature=0.5, max_tokens=99).params["temperature"] == 0.5
    assert build("-t 1.5", temperature=0.5).params["temperature"] == 1.5


@pytest.mark.parametrize("line, fragment", [
    ("-t 3", "--temperature must be within 0..2"),
    ("--top-p 1.5", "--top-p must be within 0..1"),
    ("--max-tokens 0", "--max-tokens must be at least 1"),
    ("--reasoning high --reasoning-tokens 10", "not both"),
    ("--param nonsense", "key=value"),
    ("--param x={bad", "invalid JSON"),
    ("--param api_key=abc", "not accepted"),
    ("--param messages=[]", "not allowed"),
    ("-o 1abc", "--out needs a Python variable name"),
    ("--models ,", "comma-separated"),
    ("--stop a --stop b --stop c --stop d --stop e", "at most 4"),
])
def test_mistakes_are_one_line_usage_errors(line: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        build(line)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_argparse_errors_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        options.parse("--reasoning extreme")
    with pytest.raises(UsageError):
        options.parse("-t hot")
    with pytest.raises(UsageError, match="No closing quotation"):
        options.parse("-s 'unclosed")


def test_keys_are_refused_on_the_line() -> None:
    with pytest.raises(UsageError, match="must not be written in a cell"):
        options.refuse_secrets("-m x --param foo=sk-or-v1-abcdef0123456789")


def test_variables_expand_explicitly_and_braces_survive() -> None:
    ns = {"temp": 0.2, "prov": {"order": ["a b"]}, "name": "x y"}
    line = options.expand_variables("""-t $temp --param provider=$prov -o out --param metadata='{"k": "v"}' """, ns)
    opts = build(line)
    assert opts.params["temperature"] == 0.2
    assert opts.params["provider"] == {"order": ["a b"]}
    assert opts.params["metadata"] == {"k": "v"}
    assert options.expand_variables("cost $$5", ns) == "cost $5"
    with pytest.raises(UsageError, match=r"\$missing"):
        options.expand_variables("-t $missing", ns)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("-mt0123456789.=,{}[]\"' abcdefghijklmnopqrstuvwxyz$")), max_size=60))
def test_random_lines_give_options_or_usage_errors_only(line: str) -> None:
    try:
        line = options.expand_variables(line, {"a": 1})
        build(line)
    except UsageError:
        pass


def test_help_lists_every_option() -> None:
    doc = ChatMagics.chat.__doc__ or ""
    for flag in ("--model", "--models", "--temperature", "--top-p", "--max-tokens", "--seed", "--stop", "--system",
                 "--reasoning", "--reasoning-tokens", "--web", "--provider-order", "--sort", "--json", "--no-stream",
                 "--chat", "--new", "--once", "--out", "--dry-run", "--param", "--no-cache", "--schema", "--context",
                 "--image", "--file", "--tools", "--max-steps"):
        assert flag in doc, flag


@pytest.mark.parametrize("line, expected", [
    ("""--param provider={"order":["a","b"]}""", {"order": ["a", "b"]}),
    ("""--param provider={"order": ["a b", "c"], "allow_fallbacks": false}""",
     {"order": ["a b", "c"], "allow_fallbacks": False}),
    ("""--param provider='{"order": ["a"]}'""", {"order": ["a"]}),  # quoted forms keep working
    ("""--param provider="{\\"order\\": [\\"a\\"]}\"""", {"order": ["a"]}),
])
def test_json_on_the_line_needs_no_shell_quotes(line: str, expected: object) -> None:
    assert build(line).params["provider"] == expected


def test_tokens_keep_json_and_shell_quoting() -> None:
    from or_magic.tokens import split_line

    assert split_line("""-s "text with spaces" --stop '###' a\\ b --param stop=["x y", "]"] end""") == [
        "-s", "text with spaces", "--stop", "###", "a b", "--param", 'stop=["x y", "]"]', "end"]
    with pytest.raises(ValueError):
        split_line("-s 'unclosed")
    assert split_line("--param x={bad") == ["--param", "x={bad"]  # unbalanced: runs to the end, JSON refuses it
    assert options.split_argument("'chat 1'") == ["chat 1"]
    assert options.parse("--chat 'chat 1'").chat == "chat 1"


def test_the_panel_parser_is_the_magic_parser() -> None:
    ours = [a.option_strings or [a.dest] for a in options.chat.parser._actions]
    theirs = [a.option_strings or [a.dest] for a in ChatMagics.chat.parser._actions]
    assert ours == theirs and ["--tools"] in ours and ["--schema"] in ours
