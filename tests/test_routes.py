"""Path normalisation: every route form maps to one canonical target; anything else is a clear 4xx."""

from __future__ import annotations

import pytest

from lib.errors import BadRequest, NotFound
from lib.routes import FAMILY_TARGETS, ROUTES, normalize_path

S = ":streamGenerateContent"


@pytest.mark.parametrize(
    ("path", "family", "publisher", "model", "endpoint"),
    [
        (
            f"/api/vertex-ai/v1/publishers/google/models/gemini-pro{S}",
            "platform",
            "google",
            "gemini-pro",
            "",
        ),
        (
            f"/api/v1/publishers/anthropic/models/claude-3{S}",
            "platform",
            "anthropic",
            "claude-3",
            "",
        ),
        (
            f"/api/vertex-ai/v1beta/publishers/google/models/g{S}",
            "platform",
            "google",
            "g",
            "",
        ),
        (
            f"/api/v1/models/anthropic/claude-3{S}",
            "platform",
            "anthropic",
            "claude-3",
            "",
        ),
        (
            f"/api/vertex-ai/v1/models/gemini-2.5-flash{S}",
            "platform",
            "google",
            "gemini-2.5-flash",
            "",
        ),
        (
            f"/v1/projects/p/locations/us-central1/publishers/google/models/m{S}",
            "vertex",
            "google",
            "m",
            "",
        ),
        (
            f"/v1beta1/projects/p/locations/global/publishers/google/models/m{S}",
            "vertex",
            "google",
            "m",
            "",
        ),
        (
            f"/v1/projects/p/locations/l/endpoints/1234567{S}",
            "vertex",
            "",
            "",
            "1234567",
        ),
        (
            f"/v1beta1/projects/p/locations/l/endpoints/1234567{S}",
            "vertex",
            "",
            "",
            "1234567",
        ),
        (
            f"/v1/publishers/google/models/gemini-2.5-flash{S}",
            "vertex",
            "google",
            "gemini-2.5-flash",
            "",
        ),
        (
            f"/v1beta1/publishers/google/models/gemini-2.5-flash{S}",
            "vertex",
            "google",
            "gemini-2.5-flash",
            "",
        ),
        (
            f"/v1beta/models/gemini-2.5-flash{S}",
            "gemini",
            "google",
            "gemini-2.5-flash",
            "",
        ),
        (f"/v1/models/gemini-2.5-flash{S}", "gemini", "google", "gemini-2.5-flash", ""),
        (
            f"/v1/models/claude-3-5-sonnet%4020240620{S}",
            "gemini",
            "google",
            "claude-3-5-sonnet@20240620",
            "",
        ),
        (
            "/v1beta/models/gemini-2.5-flash:generateContent",
            "gemini",
            "google",
            "gemini-2.5-flash",
            "",
        ),
    ],
)
def test_every_route_form_normalizes_to_one_target(
    path, family, publisher, model, endpoint
):
    target = normalize_path(path)
    assert (target.family, target.publisher, target.model, target.endpoint) == (
        family,
        publisher,
        model,
        endpoint,
    )
    assert target.stream == path.endswith(S)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (f"/v1beta/models/..{S}", BadRequest),
        (f"/v1beta/models/.{S}", BadRequest),
        (f"/v1beta/models/a%2Fb{S}", BadRequest),
        (f"/v1beta/models/a%2fb{S}", BadRequest),
        (f"/v1beta/models/a%00{S}", BadRequest),
        (f"/v1beta/models/a%{S}", BadRequest),
        (f"/v1beta/models/a b{S}", BadRequest),
        (f"/v1beta/models/{'x' * 129}{S}", BadRequest),
        (f"/v1beta//models/m{S}", BadRequest),
        (f"/v1beta/models/m{S}/", BadRequest),
        ("/v1beta/models/m:deleteEverything", NotFound),
        ("/v1beta/models/m", NotFound),
        (f"/v1beta/models/m:a{S}", BadRequest),
        (f"/v2/models/m{S}", NotFound),
        (f"/v1beta/tunedModels/m{S}", NotFound),
        (f"/api/v2/publishers/google/models/m{S}", NotFound),
        (f"/v1/projects/p/locations/l/publishers/google/models/m/extra{S}", NotFound),
        ("", NotFound),
        ("v1beta/models/m" + S, NotFound),
    ],
)
def test_bad_paths_are_a_clear_4xx(path, error):
    with pytest.raises(error) as info:
        normalize_path(path)
    assert info.value.message


def test_a_family_handler_serves_only_its_own_routes():
    path = f"/v1beta/models/m{S}"
    assert normalize_path(path, frozenset({"gemini"})).family == "gemini"
    with pytest.raises(NotFound):
        normalize_path(path, frozenset({"vertex"}))


def test_route_table_families_all_have_a_target():
    assert {r.family for r in ROUTES} == set(FAMILY_TARGETS)
    assert len({r.template for r in ROUTES}) == len(ROUTES)
