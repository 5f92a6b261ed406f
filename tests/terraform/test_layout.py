"""terraform/: every file parses and both stacks follow house style (files, pins, variables, fmt).

No provider can be downloaded here, so these are static checks of the HCL (python-hcl2), plus
`terraform fmt -check` when a terraform binary is on PATH.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.hcl import STACKS, TERRAFORM, load, strip, tf_files


@pytest.mark.parametrize(
    "path", tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM))
)
def test_every_tf_file_parses(path: Path) -> None:
    assert load(path)


def test_each_stack_has_the_house_files() -> None:
    for stack in STACKS:
        names = {p.name for p in (TERRAFORM / stack).glob("*.tf")}
        assert {"versions.tf", "variables.tf", "outputs.tf", "main.tf"} <= names
        assert (TERRAFORM / stack / "examples/terraform.tfvars").is_file()


def test_providers_are_pinned_with_a_range() -> None:
    for stack in STACKS:
        (terraform,) = load(TERRAFORM / stack / "versions.tf")["terraform"]
        assert re.fullmatch(r">= [\d.]+, < [\d.]+", terraform["required_version"])
        (providers,) = terraform["required_providers"]
        for name, spec in strip(providers).items():
            assert re.fullmatch(r">= [\d.]+, < [\d.]+", spec["version"]), name


def test_main_tf_holds_only_locals() -> None:
    for stack in STACKS:
        assert set(strip(load(TERRAFORM / stack / "main.tf"))) == {"locals"}


def test_variables_are_described_typed_and_sorted(stack: tuple[str, dict]) -> None:
    name, blocks = stack
    doc = load(TERRAFORM / name / "variables.tf")
    names = [n for block in doc["variable"] for n in block]
    assert names == sorted(names), "variables.tf is not in alphabetical order"
    for var, body in blocks["variable"].items():
        assert body.get("description", "").strip(), f"{name}: variable {var}"
        assert body.get("type"), f"{name}: variable {var} has no type"


def test_outputs_are_described_and_sorted(stack: tuple[str, dict]) -> None:
    name, blocks = stack
    doc = load(TERRAFORM / name / "outputs.tf")
    names = [n for block in doc["output"] for n in block]
    assert names == sorted(names), "outputs.tf is not in alphabetical order"
    for out, body in blocks["output"].items():
        assert body.get("description", "").strip(), f"{name}: output {out}"


def test_variables_and_outputs_live_in_their_files() -> None:
    for stack in STACKS:
        for path in (TERRAFORM / stack).glob("*.tf"):
            doc = load(path)
            if path.name != "variables.tf":
                assert "variable" not in doc, path
            if path.name != "outputs.tf":
                assert "output" not in doc, path


def test_examples_set_only_declared_variables(stack: tuple[str, dict]) -> None:
    name, blocks = stack
    example = strip(load(TERRAFORM / name / "examples/terraform.tfvars"))
    assert example
    assert set(example) <= set(blocks["variable"])
    required = {v for v, body in blocks["variable"].items() if "default" not in body}
    assert required <= set(example)


def test_checkov_skips_carry_a_reason() -> None:
    for path in tf_files():
        for match in re.finditer(r"checkov:skip=([^\s:]+)(?::(.*))?", path.read_text()):
            check, reason = match.group(1), (match.group(2) or "").strip()
            assert re.fullmatch(r"CKV2?_[A-Z]+_\d+", check), path
            assert len(reason) > 20, f"{path}: skip of {check} needs a reason"


def test_terraform_fmt() -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform binary not on PATH")
    result = subprocess.run(
        [binary, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
