"""functions-framework targets; each name is a Terraform `entry_point`. No logic, no I/O at import."""

from handlers.gateway import gateway
from handlers.gemini import gemini_stream
from handlers.platform import platform_stream
from handlers.vertex import vertex_stream

__all__ = ["gateway", "gemini_stream", "platform_stream", "vertex_stream"]
