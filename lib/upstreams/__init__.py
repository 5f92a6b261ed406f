"""Upstreams: the contract every upstream keeps, the embedded echo, and Google's (Vertex AI, Gemini API)."""
