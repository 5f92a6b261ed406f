"""Framing: decoders find every chunk however the bytes are split; encoders match Google's bytes."""

from __future__ import annotations

import json

import pytest

from lib.errors import UpstreamError
from lib.framing import (
    ARRAY,
    SSE,
    choose_framing,
    decode_stream,
    encode_chunk,
    encode_end,
)
from tests.support.paths import FIXTURES

A = b'{"candidates": [{"content": {"parts": [{"text": "a}\\"{"}]}}]}'
B = b'{\n  "candidates": [\n    {"index": 0}\n  ]\n}'


def split_every(data: bytes, n: int) -> list[bytes]:
    return [data[i : i + n] for i in range(0, len(data), n)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 100_000])
def test_array_decoder_yields_each_element_whatever_the_split(size):
    body = b"[" + A + b"\n,\r\n" + B + b"\n]"
    assert list(decode_stream(ARRAY, split_every(body, size))) == [A, B]


@pytest.mark.parametrize("size", [1, 2, 5, 64, 100_000])
@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.sse")))
def test_sse_decoder_finds_every_recorded_event(fixture, size):
    raw = (FIXTURES / fixture).read_bytes()
    events = list(decode_stream(SSE, split_every(raw, size)))
    assert events == list(decode_stream(SSE, [raw]))
    assert all(json.loads(e) for e in events)
    assert len(events) == raw.count(b"data: ") + raw.count(b'\n{\n  "error"')


def test_truncated_array_is_an_upstream_error():
    with pytest.raises(UpstreamError):
        list(decode_stream(ARRAY, [b"[" + A + b"\n,\r\n{"]))
    with pytest.raises(UpstreamError):
        list(decode_stream(ARRAY, [b"[" + A]))


def test_encoders_match_google_framing():
    assert encode_chunk(SSE, A, True) == b"data: " + A + b"\r\n\r\n"
    assert (
        encode_chunk(SSE, B, False)
        == b"data: "
        + json.dumps(json.loads(B), separators=(",", ": ")).encode()
        + b"\r\n\r\n"
    )
    body = (
        encode_chunk(ARRAY, A, True)
        + encode_chunk(ARRAY, B, False)
        + encode_end(ARRAY, False)
    )
    assert body == b"[" + A + b"\n,\r\n" + B + b"\n]"
    assert json.loads(body) == [json.loads(A), json.loads(B)]
    assert json.loads(encode_end(ARRAY, True)) == []


@pytest.mark.parametrize(
    ("alt", "dollar_alt", "framing"),
    [
        ("sse", None, SSE),
        (None, None, ARRAY),
        (None, "json;enum-encoding=int", ARRAY),
        ("json", None, ARRAY),
    ],
)
def test_choose_framing(alt, dollar_alt, framing):
    assert choose_framing(alt, dollar_alt, True) == framing


U = '{"candidates": [{"content": {"parts": [{"text": "héron, 鷺"}]}}]}'.encode()


@pytest.mark.parametrize(
    "pieces, chunks",
    [
        # Whole elements, one or several per piece (the one-pass path) ...
        ([b"[" + A, b"\n,\r\n" + B, b"\n]"], [A, B]),
        ([b"[" + A + b"\n,\r\n" + B + b"\n]"], [A, B]),
        # ... a part of one (the scanner takes over), non-ASCII text (the scanner reads it).
        ([b"[" + A + b"\n,\r\n" + B[:9], B[9:] + b"\n]"], [A, B]),
        ([b"[" + U, b"\n,\r\n" + A + b"\n]"], [U, A]),
    ],
    ids=["one per piece", "all in one piece", "a part", "non-ASCII"],
)
def test_array_pieces_as_upstreams_send_them(pieces, chunks):
    assert list(decode_stream(ARRAY, pieces)) == chunks


@pytest.mark.parametrize(
    "pieces, chunks",
    [
        ([b"data: " + A + b"\r\n\r\n"], [A]),
        ([b"data: " + A + b"\r\n\r\ndata: " + A + b"\r\n\r\n"], [A, A]),
        ([b"data: " + A + b"\n\n"], [A]),
        # Anything else goes to the line parser: other fields, multi-line data, a part.
        ([b"event: x\r\ndata: " + A + b"\r\n\r\n"], [A]),
        ([b"data: {\r\ndata: }\r\n\r\n"], [b"{\n}"]),
        ([b"data: " + A[:5], A[5:] + b"\r\n\r\n"], [A]),
    ],
    ids=["one", "two in one piece", "LF only", "event line", "multi-line", "a part"],
)
def test_sse_pieces_as_upstreams_send_them(pieces, chunks):
    assert list(decode_stream(SSE, pieces)) == chunks
