"""The SSE decoder: OpenRouter's framing, the SSE spec's corners, and byte splits anywhere."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from or_magic.sse import SSEDecoder, aiter_sse_data, iter_sse_data

OPENROUTER_STREAM = (
    b": OPENROUTER PROCESSING\n\n"
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"id":"gen-1","choices":[{"index":0,"delta":{"role":"assistant",'
    b'"content":"h\xc3\xa9llo \xe2\x82\xac"}}]}\n\n'
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"id":"gen-1","choices":[{"index":0,"delta":{"content":" \xf0\x9f\x98\x80"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)
EXPECTED = [
    '{"id":"gen-1","choices":[{"index":0,"delta":{"role":"assistant","content":"héllo €"}}]}',
    '{"id":"gen-1","choices":[{"index":0,"delta":{"content":" 😀"},"finish_reason":"stop"}]}',
]


def decode(chunks: list[bytes]) -> list[str]:
    return list(iter_sse_data(chunks))


def split_at(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p for p in points if 0 < p < len(data)})
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def test_openrouter_stream_whole() -> None:
    assert decode([OPENROUTER_STREAM]) == EXPECTED


def test_every_single_split_point_including_inside_utf8() -> None:
    for i in range(len(OPENROUTER_STREAM) + 1):
        assert decode([OPENROUTER_STREAM[:i], OPENROUTER_STREAM[i:]]) == EXPECTED, i


def test_one_byte_at_a_time() -> None:
    assert decode([bytes([b]) for b in OPENROUTER_STREAM]) == EXPECTED


def test_comments_never_reach_the_payloads() -> None:
    stream = b": OPENROUTER PROCESSING\n: data: not data\n\ndata: 1\n\n:\n\n"
    assert decode([stream]) == ["1"]


def test_multiline_data_joined_with_newline() -> None:
    assert decode([b"data: a\ndata: b\ndata:c\n\n"]) == ["a\nb\nc"]


def test_only_one_leading_space_is_stripped() -> None:
    assert decode([b"data:  x\n\n"]) == [" x"]


def test_bare_data_field_is_an_empty_line() -> None:
    assert decode([b"data\ndata: x\n\n"]) == ["\nx"]


def test_crlf_cr_and_lf_endings_mixed() -> None:
    stream = b"data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n"
    assert decode([stream]) == ["a", "b", "c", "d"]


def test_crlf_split_between_cr_and_lf() -> None:
    assert decode([b"data: a\r", b"\n\r", b"\ndata: b\r", b"\n", b"\r\n"]) == ["a", "b"]


def test_cr_only_stream_dispatches_without_waiting_for_more_bytes() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == ["a"]


def test_bom_at_start_is_dropped_even_when_split() -> None:
    assert decode([b"\xef", b"\xbb", b"\xbfdata: x\n\n"]) == ["x"]
    assert decode([b"\xef\xbb\xbfdata: x\n\n"]) == ["x"]


def test_bom_later_in_the_stream_is_data() -> None:
    assert decode([b"data: x\n\ndata: \xef\xbb\xbfy\n\n"]) == ["x", "\ufeffy"]


def test_events_without_data_are_skipped() -> None:
    assert decode([b"event: ping\nid: 3\nretry: 10\n\ndata: x\n\n"]) == ["x"]


def test_empty_data_payload_is_skipped() -> None:
    assert decode([b"data:\n\ndata: \n\ndata: x\n\n"]) == ["x"]


def test_done_ends_the_stream_and_later_bytes_are_ignored() -> None:
    assert decode([b"data: 1\n\ndata: [DONE]\n\ndata: 2\n\n"]) == ["1"]


def test_done_is_optional_eof_ends() -> None:
    assert decode([b"data: 1\n\ndata: 2\n\n"]) == ["1", "2"]


def test_eof_flushes_an_event_without_blank_line() -> None:
    assert decode([b"data: 1\n\ndata: 2"]) == ["1", "2"]
    assert decode([b"data: 1\n\ndata: 2\n"]) == ["1", "2"]


def test_eof_on_a_partial_done_still_ends_cleanly() -> None:
    assert decode([b"data: 1\n\ndata: [DONE]"]) == ["1"]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode([b"data: \xff\n\n"]) == ["\ufffd"]


def test_stops_pulling_bytes_after_done() -> None:
    pulled = []

    def source():
        for part in (b"data: 1\n\n", b"data: [DONE]\n\n", b"data: never\n\n"):
            pulled.append(part)
            yield part

    assert list(iter_sse_data(source())) == ["1"]
    assert len(pulled) == 2


def test_async_iterator_matches_sync() -> None:
    async def source():
        for b in OPENROUTER_STREAM:
            yield bytes([b])

    async def collect():
        return [p async for p in aiter_sse_data(source())]

    assert asyncio.run(collect()) == EXPECTED


def test_async_iterator_flushes_at_eof() -> None:
    async def source():
        yield b"data: a\r\n\r\ndata: b"

    async def collect():
        return [p async for p in aiter_sse_data(source())]

    assert asyncio.run(collect()) == ["a", "b"]


# ---------------------------------------------------------------- property-based

_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
    max_size=12,
)


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A random SSE stream (comments, other fields, multi-line data, mixed line endings, optional BOM and
    final blank line) and the payloads a correct decoder must yield."""
    events = draw(st.lists(st.tuples(st.lists(_TEXT, max_size=3), st.booleans(), st.booleans()), max_size=6))
    lines: list[str] = []
    expected: list[str] = []
    done = False  # after a [DONE] payload nothing more is yielded
    for data_lines, with_comment, with_field in events:
        if with_comment:
            lines.append(": OPENROUTER PROCESSING")
        if with_field:
            lines.append("event: message")
        lines.extend("data: " + d for d in data_lines)
        lines.append("")  # blank line: dispatch
        payload = "\n".join(data_lines)
        done = done or payload == "[DONE]"
        if data_lines and payload and not done:
            expected.append(payload)
    if lines and draw(st.booleans()):
        lines.pop()  # the last event ends at EOF, without its blank line
    out = bytearray(b"\xef\xbb\xbf" if draw(st.booleans()) else b"")
    previous = ""
    for line in lines:
        choices = ["\n", "\r\n", "\r"]
        if previous == "\r" and not line:
            choices = ["\r\n", "\r"]  # CR then a bare LF would read as one CRLF, eating the blank line
        ending = draw(st.sampled_from(choices))
        out += line.encode("utf-8") + ending.encode()
        previous = ending
    return bytes(out), expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(stream=sse_streams(), data=st.data())
def test_random_streams_split_anywhere(stream: tuple[bytes, list[str]], data: st.DataObject) -> None:
    raw, expected = stream
    points = data.draw(st.lists(st.integers(0, max(len(raw), 1)), max_size=12))
    assert decode(split_at(raw, points)) == expected


@settings(max_examples=100)
@given(stream=sse_streams())
def test_random_streams_byte_by_byte(stream: tuple[bytes, list[str]]) -> None:
    raw, expected = stream
    assert decode([raw[i : i + 1] for i in range(len(raw))]) == expected


@settings(max_examples=200)
@given(text=st.text(max_size=40), data=st.data())
def test_utf8_survives_any_split(text: str, data: st.DataObject) -> None:
    text = text.replace("\r", "").replace("\n", "")
    raw = ("data: " + text + "\n\n").encode("utf-8")
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))
    expected = [text] if text and text != "[DONE]" else []
    assert decode(split_at(raw, points)) == expected
