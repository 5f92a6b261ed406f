"""functions-framework targets (ASGI: `--asgi` / `FUNCTION_USE_ASGI=true`); each name is a Terraform `entry_point`.

No logic, no I/O at import. The targets are coroutines served on functions-framework's ASGI mode
(uvicorn on uvloop and httptools); the deploys set `FUNCTION_USE_ASGI=true` rather than decorating
them with `functions_framework.aio.http`, whose import alone costs ~300 ms of every cold start.
"""

from handlers.gateway import gateway
from handlers.gemini import gemini_stream
from handlers.platform import platform_stream
from handlers.vertex import vertex_stream

__all__ = ["gateway", "gemini_stream", "platform_stream", "vertex_stream"]
