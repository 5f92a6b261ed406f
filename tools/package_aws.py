"""`make package-aws`: build build/streamgate-aws.zip for the Lambda python3.12 runtime (runtime deps + app, no boto3)."""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_FILES = ("main.py", "run.sh")
APP_PACKAGES = ("lib", "handlers")
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
# The Lambda runtime provides these; bundling them only adds megabytes (and version skew).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")
# Zip entries carry this fixed time so the same inputs give the same bytes.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def install_dependencies(target: Path, arch: str, python_version: str) -> None:
    """pip-install requirements.txt as wheels for the Lambda platform into `target`."""
    shutil.rmtree(target, ignore_errors=True)
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
        "-r", str(ROOT / "requirements.txt"), "--target", str(target),
        "--platform", PLATFORMS[arch], "--only-binary=:all:",
        "--python-version", python_version, "--implementation", "cp",
    ]  # fmt: skip
    subprocess.run(command, check=True)
    # Console scripts carry this machine's interpreter in their shebang; run.sh uses `python3 -m`.
    shutil.rmtree(target / "bin", ignore_errors=True)


def _is_runtime_provided(relative: Path) -> bool:
    top = relative.parts[0].split("-")[0].removesuffix(".py")
    return top in RUNTIME_PROVIDED


def _walk(base: Path) -> Iterator[Path]:
    for path in base.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def package_files(deps: Path | None) -> dict[str, Path]:
    """Zip entry name -> source file: the dependencies tree, then the app (which must not collide)."""
    files: dict[str, Path] = {}
    if deps is not None:
        for path in _walk(deps):
            relative = path.relative_to(deps)
            if not _is_runtime_provided(relative):
                files[relative.as_posix()] = path
    app = [ROOT / name for name in APP_FILES]
    for package in APP_PACKAGES:
        app += [p for p in _walk(ROOT / package) if p.suffix == ".py"]
    for path in app:
        name = path.relative_to(ROOT).as_posix()
        if name in files:
            raise SystemExit(f"a dependency also ships {name}")
        files[name] = path
    return files


def write_zip(files: dict[str, Path], output: Path) -> None:
    """A deterministic zip: sorted entries, fixed times, 0755 for executables (run.sh), else 0644."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(files):
            source = files[name]
            executable = source.stat().st_mode & stat.S_IXUSR
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.create_system = 3  # Unix, so extractors honour the mode bits below
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())


def _size(paths: Iterable[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "build/streamgate-aws.zip"
    )
    parser.add_argument("--deps-dir", type=Path, default=ROOT / "build/aws-package")
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument(
        "--reuse-deps", action="store_true", help="zip an existing --deps-dir"
    )
    args = parser.parse_args(argv)
    if not (ROOT / "run.sh").stat().st_mode & stat.S_IXUSR:
        raise SystemExit("run.sh must be executable (chmod 755 run.sh)")
    if not args.reuse_deps:
        install_dependencies(args.deps_dir, args.arch, args.python_version)
    files = package_files(args.deps_dir)
    write_zip(files, args.output)
    size = args.output.stat().st_size
    print(
        f"{os.path.relpath(args.output)}: {size / 1e6:.1f} MB zipped, "
        f"{_size(files.values()) / 1e6:.1f} MB unzipped, {len(files)} files "
        f"(python{args.python_version}, {args.arch}; Lambda limits 50 MB / 250 MB)"
    )


if __name__ == "__main__":
    main()
