"""The platform's legacy body (`model`, `instances`, `parameters`, `voice`) as a GenerateContentRequest."""

from __future__ import annotations

from typing import Any

from lib.errors import BadRequest
from lib.routes import Target

# Legacy parameter name (camelCase or snake_case) -> GenerationConfig field, with its JSON type.
_NUMBER = (int, float)
_PARAMETERS: dict[str, tuple[str, tuple[type, ...]]] = {
    "temperature": ("temperature", _NUMBER),
    "maxOutputTokens": ("maxOutputTokens", (int,)),
    "topP": ("topP", _NUMBER),
    "topK": ("topK", _NUMBER),
    "candidateCount": ("candidateCount", (int,)),
    "stopSequences": ("stopSequences", (list,)),
    "presencePenalty": ("presencePenalty", _NUMBER),
    "frequencyPenalty": ("frequencyPenalty", _NUMBER),
    "seed": ("seed", (int,)),
    "responseMimeType": ("responseMimeType", (str,)),
    "responseSchema": ("responseSchema", (dict,)),
    "responseJsonSchema": ("responseJsonSchema", (dict,)),
    "responseLogprobs": ("responseLogprobs", (bool,)),
    "logprobs": ("logprobs", (int,)),
    "responseModalities": ("responseModalities", (list,)),
    "thinkingConfig": ("thinkingConfig", (dict,)),
    "mediaResolution": ("mediaResolution", (str,)),
    "speechConfig": ("speechConfig", (dict,)),
}
_SNAKE_PARAMETERS = {
    "max_output_tokens": "maxOutputTokens",
    "top_p": "topP",
    "top_k": "topK",
    "candidate_count": "candidateCount",
    "stop_sequences": "stopSequences",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "response_mime_type": "responseMimeType",
    "response_schema": "responseSchema",
    "response_logprobs": "responseLogprobs",
    "response_modalities": "responseModalities",
    "thinking_config": "thinkingConfig",
    "media_resolution": "mediaResolution",
    "speech_config": "speechConfig",
    "maxDecodeSteps": "maxOutputTokens",
}
_ROLES = {"user": "user", "model": "model", "bot": "model", "assistant": "model"}


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def _message(where: str, message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise BadRequest(
            f"'{where}' must be an object with 'author' (or 'role') and 'content'."
        )
    role = _ROLES.get(str(message.get("author", message.get("role", "user"))).lower())
    content = message.get("content")
    if role is None:
        raise BadRequest(f"'{where}.author' must be user, model, bot or assistant.")
    if not isinstance(content, str):
        raise BadRequest(f"'{where}.content' must be a string.")
    return {"role": role, "parts": [{"text": content}]}


def _instance_contents(i: int, instance: Any) -> list[dict[str, Any]]:
    where = f"instances[{i}]"
    if isinstance(instance, str):
        return [_user(instance)]
    if not isinstance(instance, dict):
        raise BadRequest(f"'{where}' must be a string or an object.")
    for field in ("prompt", "content"):
        if field in instance:
            if not isinstance(instance[field], str):
                raise BadRequest(f"'{where}.{field}' must be a string.")
            return [_user(instance[field])]
    messages = instance.get("messages")
    if isinstance(messages, list) and messages:
        return [_message(f"{where}.messages[{j}]", m) for j, m in enumerate(messages)]
    raise BadRequest(
        f"'{where}' needs 'prompt', 'content' or a non-empty 'messages' array."
    )


def _generation_config(parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, dict):
        raise BadRequest("'parameters' must be an object.")
    config: dict[str, Any] = {}
    for name, value in parameters.items():
        field, types = _PARAMETERS.get(_SNAKE_PARAMETERS.get(name, name), ("", ()))
        if not field:
            raise BadRequest(f"Unknown parameter 'parameters.{name[:64]}'.")
        if (
            isinstance(value, bool)
            and bool not in types
            or not isinstance(value, types)
        ):
            raise BadRequest(f"'parameters.{name}' has the wrong type.")
        config[field] = value
    return config


def _voice_name(voice: Any) -> str:
    if isinstance(voice, dict):
        voice = voice.get("name", voice.get("voiceName"))
    if not isinstance(voice, str) or not voice:
        raise BadRequest(
            '\'voice\' must be a voice name, {"name": ...} or {"voiceName": ...}.'
        )
    return voice


def _check_model(model: Any, target: Target) -> None:
    if not isinstance(model, str):
        raise BadRequest("'model' must be a string.")
    name = model.rsplit("/", 1)[-1]
    if name != target.model_name.rsplit("/", 1)[-1]:
        raise BadRequest("'model' in the body does not match the model in the path.")


def translate_legacy(body: dict[str, Any], target: Target) -> dict[str, Any]:
    """A copy of `body` with the legacy fields turned into GenerateContentRequest fields."""
    out = {
        k: v
        for k, v in body.items()
        if k not in ("model", "instances", "parameters", "voice")
    }
    if "model" in body:
        _check_model(body["model"], target)
    if "instances" in body:
        if "contents" in body:
            raise BadRequest("Give 'contents' or 'instances', not both.")
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise BadRequest("'instances' must be a non-empty array.")
        out["contents"] = [
            c for i, x in enumerate(instances) for c in _instance_contents(i, x)
        ]
    config = _generation_config(body["parameters"]) if "parameters" in body else {}
    if "voice" in body:
        voice = {
            "voiceConfig": {
                "prebuiltVoiceConfig": {"voiceName": _voice_name(body["voice"])}
            }
        }
        config["speechConfig"] = voice
    explicit = out.get("generationConfig", out.get("generation_config", {}))
    if not isinstance(explicit, dict):
        raise BadRequest("'generationConfig' must be an object.")
    if config:
        key = "generation_config" if "generation_config" in out else "generationConfig"
        out[key] = {**config, **explicit}
    return out
