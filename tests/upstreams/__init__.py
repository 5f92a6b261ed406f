"""Tests of lib/upstreams/: Vertex and the Gemini API behind the gateway (a fake Google on loopback)."""
