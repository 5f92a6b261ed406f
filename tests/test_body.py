"""Request bodies: GenerateContentRequest passes through untouched; the legacy body is translated."""

from __future__ import annotations

import json

import pytest

from lib.body import build_request
from lib.errors import BadRequest, UnsupportedMediaType
from lib.routes import normalize_path

TARGET = normalize_path(
    "/api/vertex-ai/v1/publishers/google/models/gemini-pro:streamGenerateContent"
)
USER = {"role": "user", "parts": [{"text": "hi"}]}


def build(body, content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return build_request(raw, content_type, TARGET)


def test_generate_content_request_passes_through_untouched():
    body = {
        "contents": [USER, {"role": "model", "parts": [{"text": "yo"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"temperature": 0.2},
        "safetySettings": [
            {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}
        ],
        "tools": [{"functionDeclarations": [{"name": "now"}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "labels": {"team": "a"},
        "cachedContent": "projects/p/locations/l/cachedContents/c",
    }
    assert build(body) == body


@pytest.mark.parametrize(
    ("legacy", "contents"),
    [
        ({"instances": ["hello"]}, [{"role": "user", "parts": [{"text": "hello"}]}]),
        (
            {"instances": [{"prompt": "p"}]},
            [{"role": "user", "parts": [{"text": "p"}]}],
        ),
        (
            {"instances": [{"content": "c"}]},
            [{"role": "user", "parts": [{"text": "c"}]}],
        ),
        (
            {
                "instances": [
                    {
                        "messages": [
                            {"author": "user", "content": "a"},
                            {"author": "bot", "content": "b"},
                        ]
                    }
                ]
            },
            [
                {"role": "user", "parts": [{"text": "a"}]},
                {"role": "model", "parts": [{"text": "b"}]},
            ],
        ),
        (
            {"instances": [{"messages": [{"role": "assistant", "content": "x"}]}]},
            [{"role": "model", "parts": [{"text": "x"}]}],
        ),
    ],
)
def test_legacy_instances_become_contents(legacy, contents):
    out = build({"model": "gemini-pro", **legacy})
    assert out == {"contents": contents}


def test_seed_body_parameters_become_generation_config():
    out = build(
        {
            "model": "gemini-pro",
            "contents": [USER],
            "parameters": {
                "temperature": 0.7,
                "maxOutputTokens": 256,
                "top_k": 3,
                "stopSequences": ["x"],
            },
        }
    )
    assert out == {
        "contents": [USER],
        "generationConfig": {
            "temperature": 0.7,
            "maxOutputTokens": 256,
            "topK": 3,
            "stopSequences": ["x"],
        },
    }


def test_explicit_generation_config_wins_and_voice_maps_to_speech_config():
    out = build(
        {
            "instances": ["hi"],
            "parameters": {"temperature": 0.7, "seed": 1},
            "generationConfig": {"temperature": 0.1},
            "voice": {"name": "Kore"},
        }
    )
    assert out["generationConfig"] == {
        "temperature": 0.1,
        "seed": 1,
        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
    }
    assert build({"instances": ["x"], "voice": "Puck"})["generationConfig"][
        "speechConfig"
    ] == {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}}
    voice = build({"instances": ["x"], "voice": {"voiceName": "Aoede"}})[
        "generationConfig"
    ]
    assert (
        voice["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"]
        == "Aoede"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"contents": NaN}', "not valid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"contents": [' + b"9" * 5000 + b"]}", "number too large"),
        ({}, "'contents'"),
        ({"contents": []}, "'contents'"),
        ({"contents": "hi"}, "'contents'"),
        ({"contents": [{"role": "user"}]}, "'contents[0].parts'"),
        ({"contents": [{"role": "user", "parts": []}]}, "'contents[0].parts'"),
        (
            {"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
            "'contents[0].role'",
        ),
        ({"contents": [USER], "generationConfig": []}, "'generationConfig'"),
        ({"contents": [USER], "labels": {"a": 1}}, "'labels'"),
        ({"contents": [USER], "instances": ["x"]}, "'contents' or 'instances'"),
        ({"model": "other-model", "contents": [USER]}, "'model'"),
        ({"model": 7, "contents": [USER]}, "'model'"),
        ({"instances": []}, "'instances'"),
        ({"instances": [3]}, "'instances[0]'"),
        (
            {"instances": [{"messages": [{"author": "wizard", "content": "x"}]}]},
            "author",
        ),
        (
            {"instances": ["x"], "parameters": {"temperature": "hot"}},
            "'parameters.temperature'",
        ),
        (
            {"instances": ["x"], "parameters": {"maxOutputTokens": True}},
            "'parameters.maxOutputTokens'",
        ),
        (
            {"instances": ["x"], "parameters": {"warpFactor": 9}},
            "parameters.warpFactor",
        ),
        ({"instances": ["x"], "parameters": []}, "'parameters'"),
        ({"instances": ["x"], "voice": 5}, "'voice'"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(body, field):
    with pytest.raises(BadRequest) as info:
        build(body)
    assert info.value.status_code == 400
    assert field in info.value.message


def test_non_json_body_with_a_non_json_content_type_is_415():
    with pytest.raises(UnsupportedMediaType):
        build(b"<xml/>", "application/xml")
    assert build(
        b'{"contents": [{"parts": [{"text": "x"}]}]}',
        "application/x-www-form-urlencoded",
    )


def test_nesting_beyond_the_limit_is_refused_without_recursion():
    from lib.body import MAX_DEPTH

    def nested(depth):  # `depth` levels in all, counting the body object
        return (
            b'{"contents": [{"parts": [{"text": "x", "v": '
            + b"[" * (depth - 5)
            + b"1"
            + b"]" * (depth - 5)
            + b"}]}]}"
        )

    assert build(nested(MAX_DEPTH))
    with pytest.raises(BadRequest) as info:
        build(nested(MAX_DEPTH + 1))
    assert "nested too deeply" in info.value.message
