"""Raw HTTP/1.1 over a socket: requests as the exact bytes written, so no client normalises the path."""

from __future__ import annotations

import http.client
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class RawResponse:
    """One HTTP response read off a socket; header names lower-case."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def from_gateway(self) -> bool:
        """False for answers gunicorn gives itself to malformed HTTP (no request id)."""
        return "x-request-id" in self.headers


def http_request(
    method: str,
    target: bytes,
    headers: Sequence[tuple[str, str | bytes]] = (),
    body: bytes = b"",
    *,
    content_length: int | None = None,
) -> bytes:
    """A raw HTTP/1.1 request; `content_length=-1` leaves the header out (e.g. for chunked)."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    for name, value in headers:
        lines.append(
            name.encode()
            + b": "
            + (value if isinstance(value, bytes) else value.encode())
        )
    length = len(body) if content_length is None else content_length
    if length >= 0:
        lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def read_response(sock: socket.socket) -> RawResponse:
    """Read one response (Content-Length, chunked or until close) from a connected socket."""
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    body = resp.read()
    return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)


def send_raw(port: int, data: bytes, timeout_s: float = 15.0) -> RawResponse:
    """Send `data` to 127.0.0.1:`port` and read the answer; a hang raises `TimeoutError`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        return read_response(sock)


def valid_http_target(target: bytes) -> bool:
    """True if HTTP/1.1 allows these request-target bytes (visible ASCII only)."""
    return all(0x21 <= b <= 0x7E for b in target)


_ENCODED_LINE_BREAK = re.compile(rb"%0[aAdD]")


def unroutable_target(target: bytes) -> bool:
    """True for targets functions-framework's ASGI router cannot match (its `{path:path}` pattern
    stops at a line break, encoded or not): it answers them itself, a plain `404 Not Found`."""
    return bool(_ENCODED_LINE_BREAK.search(target)) or b"\n" in target
