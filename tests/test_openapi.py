"""tools/openapi.py: the API Gateway spec covers exactly the route table, and the template is current."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lib.errors import NotFound
from lib.routes import (
    FAMILY_TARGETS,
    ROUTES,
    VERBS,
    VERTEX_ONLY_VERBS,
    Route,
    normalize_path,
)
from tools import openapi

BACKENDS = {
    family: f"https://{family}-abc123-uc.a.run.app" for family in FAMILY_TARGETS
}
SAMPLES = {
    "publisher": "google",
    "model": "gemini-2.5-flash",
    "project": "my-proj",
    "location": "us-central1",
    "endpoint": "1234567890",
}


def concrete_path(template: str, last: str) -> str:
    """A real request path for a template: variables filled in, the last one with `last`."""
    head = template.rpartition("/")[0]
    head = re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], head)
    return f"{head}/{last}"


def path_regex(spec_path: str) -> re.Pattern[str]:
    """How ESPv2 matches a spec path: each `{var}` is one segment, `[^/]+` (colons included)."""
    parts = re.split(r"(\{\w+\})", spec_path)
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(body)


def matching_paths(spec: dict, path: str) -> list[str]:
    return [p for p in spec["paths"] if path_regex(p).fullmatch(path)]


def family_of(operation: dict) -> str:
    address = operation["x-google-backend"]["address"]
    (family,) = [f for f, url in BACKENDS.items() if url == address]
    return family


@pytest.fixture(scope="module")
def spec() -> dict:
    return openapi.build_spec(BACKENDS)


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.template)
def test_every_route_and_verb_reaches_its_family(
    spec: dict, route: Route, verb: str
) -> None:
    model = SAMPLES[route.variables[-1]]
    path = concrete_path(route.template, f"{model}:{verb}")
    matches = matching_paths(spec, path)
    assert matches == [openapi.gateway_path(route)], path
    assert family_of(spec["paths"][matches[0]]["post"]) == route.family


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_spec_path_is_a_route_of_its_backend_family(
    spec: dict, verb: str
) -> None:
    for spec_path, item in spec["paths"].items():
        if verb in VERTEX_ONLY_VERBS and family_of(item["post"]) == "gemini":
            continue
        path = concrete_path(spec_path, f"some-model:{verb}")
        target = normalize_path(path)
        assert target.family == family_of(item["post"]), spec_path
        assert openapi.gateway_path(target.route) == spec_path
        assert target.verb == verb


def test_spec_and_route_table_have_the_same_size(spec: dict) -> None:
    assert len(spec["paths"]) == len(ROUTES)
    assert {openapi.gateway_path(r) for r in ROUTES} == set(spec["paths"])


def test_paths_are_whole_segment_templates_without_custom_verbs(spec: dict) -> None:
    for spec_path in spec["paths"]:
        assert ":" not in spec_path
        for segment in spec_path.strip("/").split("/"):
            assert "{" not in segment or re.fullmatch(r"\{\w+\}", segment), spec_path
        assert spec_path.endswith("_action}")


def test_no_two_paths_differ_only_in_variable_names(spec: dict) -> None:
    shapes = [re.sub(r"\{\w+\}", "{}", p) for p in spec["paths"]]
    assert len(shapes) == len(set(shapes))


def test_unknown_paths_match_nothing(spec: dict) -> None:
    for path in ("/", "/v1/models", "/v2/models/x:streamGenerateContent", "/v1beta"):
        assert matching_paths(spec, path) == []
    with pytest.raises(NotFound):
        normalize_path("/v2/models/x:streamGenerateContent")


def test_each_path_has_post_and_options_with_a_streaming_backend(spec: dict) -> None:
    for spec_path, item in spec["paths"].items():
        assert set(item) == {"post", "options"}, spec_path
        for operation in item.values():
            backend = operation["x-google-backend"]
            assert backend["path_translation"] == "APPEND_PATH_TO_ADDRESS"
            assert backend["deadline"] == 3600.0
            assert backend["jwt_audience"] == backend["address"]
            assert backend["protocol"] == "h2"
            assert "security" not in operation


def test_operation_ids_are_unique_identifiers(spec: dict) -> None:
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids)


def test_path_parameters_are_declared(spec: dict) -> None:
    for spec_path, item in spec["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", spec_path))
        for operation in item.values():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == names, spec_path


def test_no_api_gateway_security(spec: dict) -> None:
    assert "securityDefinitions" not in spec and "security" not in spec
    assert "host" not in spec  # API Gateway sets it


def test_responses_and_error_schema(spec: dict) -> None:
    post = spec["paths"][openapi.gateway_path(ROUTES[0])]["post"]
    assert "200" in post["responses"]
    for code in ("400", "401", "403", "404", "429", "default"):
        assert post["responses"][code]["schema"] == {"$ref": "#/definitions/Error"}
    assert set(post["produces"]) == {"text/event-stream", "application/json"}


def test_error_schema_accepts_the_gateway_error_shape(spec: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from lib.errors import Unauthorized

    body = json.loads(Unauthorized("API key missing").to_json())
    jsonschema.validate(body, spec["definitions"]["Error"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"error": {"code": "401"}}, spec["definitions"]["Error"])


def test_request_schema_accepts_a_generate_content_body(spec: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "$ref": "#/definitions/GenerateContentRequest",
        "definitions": spec["definitions"],
    }
    body = {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "generationConfig": {"temperature": 0.2},
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    }
    jsonschema.validate(body, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"contents": "Hello"}, schema)


def test_spec_is_valid_swagger_2(spec: dict) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(spec)
    validator.validate(openapi.build_spec())


def test_placeholders_and_missing_backends() -> None:
    spec = openapi.build_spec()
    for item in spec["paths"].values():
        backend = item["post"]["x-google-backend"]
        assert re.fullmatch(r"\$\{backend_[a-z]+\}", backend["address"])
    with pytest.raises(ValueError, match="gemini"):
        openapi.build_spec({"platform": "https://p", "vertex": "https://v"})


def test_template_is_current() -> None:
    assert openapi.TEMPLATE.read_text() == openapi.render_template(), (
        "terraform/gcp/openapi.yaml.tftpl is stale: run `python -m tools.openapi`"
    )


def test_template_renders_like_terraform_templatefile() -> None:
    text = openapi.TEMPLATE.read_text()
    interpolations = set(re.findall(r"[$%]\{[^}]*\}", text))
    assert interpolations == {openapi.placeholder(f) for f in FAMILY_TARGETS}
    rendered = text
    for family, url in BACKENDS.items():
        rendered = rendered.replace(openapi.placeholder(family), url)
    body = "".join(
        line for line in rendered.splitlines(True) if not line.startswith("#")
    )
    assert json.loads(body) == openapi.build_spec(BACKENDS)


def test_cli_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    template = tmp_path / "openapi.yaml.tftpl"
    assert openapi.main(["--check"], template=template) == 1
    assert "stale" in capsys.readouterr().err
    assert openapi.main([], template=template) == 0
    assert openapi.main(["--check"], template=template) == 0
    template.write_text(template.read_text().replace("3600.0", "15.0"))
    assert openapi.main(["--check"], template=template) == 1
