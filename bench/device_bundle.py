"""The device bundle: adamtune's control plane as a site folder for a GPU machine without a package index.

    bash bench/device_bundle.sh                      # .bundle/adamtune-site-cp312.tar.xz (the GPU image's Python)
    bash bench/device_bundle.sh --python native      # for this interpreter (no download; what the test runs)
    python3 bench/device_bundle.py check /tmp/site   # there: do the bundle and the image meet each other's needs?

The GPU machine's image (bench/gpu_image_packages.txt) has torch, Triton, numpy, pandas and many more, but
not Ray, Optuna, MLflow, SQLAlchemy, pydantic and their needs, and it can fetch nothing. `build` walks
adamtune's requirements (pyproject.toml, no extras) through the distributions installed in this
interpreter (the project's .venv), keeps those the image lacks, and copies their files (each
distribution's RECORD) into one folder with the project (tuner, workers, search_spaces and an
``adamtune`` dist-info carrying the workload entry points), then packs it as one ``tar.xz``. On the
machine: ``tar xJf BUNDLE -C /tmp/site`` and ``PYTHONPATH=/tmp/site``.

A distribution with compiled code built for another Python than the target (the venv is CPython 3.11,
the image 3.12) comes from its wheel of the same version for the target, fetched once with
``pip download`` into the cache folder; pure-Python ones and abi3 builds are copied from the venv.
Left out: bytecode caches, Ray's Java jar, its dashboard's web client, RLlib, Serve and Ray LLM (Ray
Tune imports ``ray.train`` and ``ray.data``, so those stay), MLflow's web UI, and the PostgreSQL driver
(the GPU check's stores are SQLite files).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
IMAGE_PACKAGES = ROOT / "bench" / "gpu_image_packages.txt"
PROJECT_PACKAGES = ("tuner", "workers", "search_spaces")
MANIFEST = "adamtune-bundle.json"
EXAMPLES = "adamtune-examples"  # not an importable name: harmless on sys.path
MIB = 1 << 20

#: Paths (prefixes, relative to the site) left out, and why.
PRUNED = {
    "ray/jars/": "Ray's Java jar (32 MB): Java workers only",
    "ray/dashboard/client/": "the dashboard's web client: adamtune starts Ray with include_dashboard=False",
    "ray/rllib/": "RLlib: not imported by Ray Tune",
    "ray/serve/": "Ray Serve: not imported by Ray Tune",
    "ray/llm/": "Ray LLM: not imported by Ray Tune",
    "mlflow/server/js/": "MLflow's web UI (`tuner ui` is not run on the GPU machine)",
}
#: Distributions left out although adamtune requires them, and why.
EXCLUDED = {
    "psycopg": "PostgreSQL driver: the GPU check's stores are SQLite files",
    "psycopg-binary": "PostgreSQL driver: the GPU check's stores are SQLite files",
}
#: Never bundled, whatever the image list says: the image's own CUDA stack.
NEVER = ("torch", "triton", "nvidia-")
#: Platforms ``pip download`` may pick for a wheel (the GPU machine is x86-64 glibc 2.39).
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "linux_x86_64",
)


class BundleError(Exception):
    """The bundle cannot be built as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """The Python the bundle is for: ``(3, 12)`` is CPython 3.12 (its ABI tag ``cp312``)."""

    major: int
    minor: int

    @property
    def tag(self) -> str:
        return f"cp{self.major}{self.minor}"

    @property
    def native(self) -> bool:
        return sys.version_info[:2] == (self.major, self.minor)

    @classmethod
    def parse(cls, text: str) -> Target:
        if text == "native":
            return cls(*sys.version_info[:2])
        try:
            major, minor = (int(part) for part in text.split("."))
        except ValueError:
            raise BundleError(f"--python takes X.Y or native, got {text!r}") from None
        return cls(major, minor)

    def accepts(self, tag: str) -> bool:
        """Whether a wheel tag (``cp311-abi3-manylinux_2_34_x86_64``) runs on this Python."""
        interpreter, abi, platform = tag.split("-")
        if abi == "none" and platform == "any":
            return True
        if abi == "abi3":
            return any(i.startswith("cp3") and int(i[3:]) <= self.minor for i in interpreter.split("."))
        return abi == self.tag and self.tag in interpreter.split(".")


def image_packages(path: Path = IMAGE_PACKAGES) -> set[str]:
    """The image's distributions, canonical names."""
    names = (line.partition("#")[0].strip() for line in path.read_text().splitlines())
    return {canonicalize_name(name) for name in names if name}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def closure(target: Target, image: set[str]) -> tuple[list[metadata.Distribution], list[str]]:
    """adamtune's requirements, transitively, as installed here: (those to bundle, those left to the image)."""
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    env = default_environment() | {
        "python_version": f"{target.major}.{target.minor}",
        "python_full_version": f"{target.major}.{target.minor}.0",
    }
    bundle: dict[str, metadata.Distribution] = {}
    left: set[str] = set()
    extras_seen: dict[str, set[str]] = {}
    todo = [Requirement(r) for r in project()["dependencies"]]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate(env | {"extra": ""}):
            continue
        if name in image or name.startswith(NEVER):
            left.add(name)
            continue
        if name in EXCLUDED:
            continue
        new_extras = set(req.extras) - extras_seen.get(name, set())
        if name in bundle and not new_extras:
            continue
        extras_seen.setdefault(name, set()).update(req.extras)
        dist = installed.get(name)
        if dist is None:
            raise BundleError(f"{req.name} (required) is not installed in {sys.prefix}: run make install first")
        bundle[name] = dist
        active = [{"extra": e} for e in ("", *sorted(extras_seen[name]))]
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate(env | a) for a in active):
                sub.marker = None
                todo.append(sub)
    return sorted(bundle.values(), key=lambda d: canonicalize_name(d.metadata["Name"])), sorted(left)


def wheel_tags(dist: metadata.Distribution) -> list[str]:
    """The tags of the wheel ``dist`` was installed from ([] where it has no WHEEL file)."""
    text = dist.read_text("WHEEL") or ""
    tags = []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Tag":
            interpreters, abi, platforms = value.strip().split("-")
            tags += [f"{i}-{abi}-{p}" for i in interpreters.split(".") for p in platforms.split(".")]
    return tags


def runs_on(dist: metadata.Distribution, target: Target) -> bool:
    """Whether ``dist``'s installed files run on ``target`` (pure Python, abi3, or built for it)."""
    if target.native:
        return True
    tags = wheel_tags(dist)
    if tags:
        return any(target.accepts(t) for t in tags)
    return not any(str(f).endswith((".so", ".pyd")) for f in dist.files or [])


def skipped(relpath: str) -> bool:
    parts = PurePosixPath(relpath).parts
    if not parts or parts[0] == ".." or "__pycache__" in parts or relpath.endswith(".pyc"):
        return True
    return relpath.startswith(tuple(PRUNED))


def copy_installed(dist: metadata.Distribution, site: Path) -> int:
    """Copy ``dist``'s files (its RECORD) into ``site``; the bytes copied."""
    copied = 0
    for file in dist.files or []:
        rel = PurePosixPath(file).as_posix()
        if skipped(rel):
            continue
        src = Path(dist.locate_file(file))
        if not src.is_file():
            continue  # RECORD lists a file pip did not write (rare: a removed .pyc)
        dst = site / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        copied += src.stat().st_size
    return copied


def fetch_wheel(name: str, version: str, target: Target, cache: Path, *, offline: bool) -> Path:
    """The target's wheel of ``name==version`` from ``cache``, downloaded there first if missing."""
    key = canonicalize_name(name)

    def cached() -> Path | None:
        for whl in sorted(cache.glob("*.whl")):
            wname, wversion, _, tags = parse_wheel_filename(whl.name)
            if wname == key and wversion == Version(version) and any(target.accepts(str(t)) for t in tags):
                return whl
        return None

    found = cached()
    if found is not None:
        return found
    if offline:
        raise BundleError(
            f"{name}=={version} is built for another Python than {target.tag} here, and its {target.tag} wheel is not "
            f"in {cache}: put it there (pip download --no-deps --only-binary=:all: --python-version "
            f"{target.major}.{target.minor} {name}=={version}), or drop --offline"
        )
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", f"{target.major}.{target.minor}", "--implementation", "cp", "--abi", target.tag]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    command += ["-d", str(cache), f"{name}=={version}"]
    print(f"  fetching {name}=={version} for {target.tag}: pip download", flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = cached()
    if done.returncode != 0 or found is None:
        raise BundleError(f"pip could not fetch {name}=={version} for {target.tag}: {done.stderr.strip()[-800:]}")
    return found


def unpack_wheel(wheel: Path, site: Path) -> int:
    """Install ``wheel``'s library files into ``site`` as pip would (no scripts, headers or data); the bytes."""
    copied = 0
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            rel = info.filename
            first, _, rest = rel.partition("/")
            if first.endswith(".data"):
                kind, _, rest = rest.partition("/")
                if kind not in ("purelib", "platlib"):
                    continue
                rel = rest
            if info.is_dir() or skipped(rel):
                continue
            dst = site / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(dst, "wb") as out:
                shutil.copyfileobj(src, out)
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(dst, mode or 0o644)  # raylet and gcs_server must stay executable
            copied += info.file_size
    return copied


def add_project(site: Path) -> None:
    """tuner, workers, search_spaces, an adamtune dist-info (its workload entry points) and the example specs."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PROJECT_PACKAGES:
        shutil.copytree(ROOT / package, site / package, ignore=ignore)
    meta = project()
    info = site / f"{meta['name']}-{meta['version']}.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {meta['name']}", f"Version: {meta['version']}"]
    lines += [f"Requires-Dist: {r}" for r in meta["dependencies"]]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    groups = {"console_scripts": meta.get("scripts", {}), **meta.get("entry-points", {})}
    text = "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n" for g, eps in groups.items())
    (info / "entry_points.txt").write_text(text)
    (info / "top_level.txt").write_text("\n".join(PROJECT_PACKAGES) + "\n")
    (info / "INSTALLER").write_text("adamtune-device-bundle\n")
    (site / EXAMPLES).mkdir()
    for spec in sorted((ROOT / "examples").glob("*.yaml")):
        shutil.copy2(spec, site / EXAMPLES / spec.name)


def git_commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def pack(site: Path, out: Path, level: str) -> None:
    """``site``'s contents as ``out`` (tar, xz), members in name order, owned by root."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    tar = ["tar", "-C", str(site), "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-cf", "-", "."]
    with open(partial, "wb") as sink:
        producer = subprocess.Popen(tar, stdout=subprocess.PIPE)
        xz = subprocess.run(["xz", f"-{level}", "-T2", "-c"], stdin=producer.stdout, stdout=sink, check=False)
        producer.stdout.close()
        if producer.wait() != 0 or xz.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BundleError(f"tar | xz failed (tar exit {producer.returncode}, xz exit {xz.returncode})")
    partial.replace(out)


def build(args: argparse.Namespace) -> int:
    target = Target.parse(args.python)
    out = Path(args.out or ROOT / ".bundle" / f"adamtune-site-{target.tag}.tar.xz")
    image = image_packages(Path(args.image_packages))
    image -= {canonicalize_name(n) for n in args.include}
    dists, left = closure(target, image)
    print(f"device bundle for CPython {target.major}.{target.minor} ({target.tag}) -> {out}")
    manifest: dict = {
        "python": f"{target.major}.{target.minor}",
        "built": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "project": {"name": project()["name"], "version": project()["version"], "commit": git_commit()},
        "distributions": [],
        "left_to_image": left,
        "excluded": EXCLUDED,
        "pruned": PRUNED,
    }
    total = 0
    with tempfile.TemporaryDirectory(prefix="adamtune-bundle-", dir=args.work) as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        for dist in dists:
            name, version = dist.metadata["Name"], dist.version
            if runs_on(dist, target):
                size, source = copy_installed(dist, site), "venv"
            else:
                wheel = fetch_wheel(name, version, target, Path(args.cache), offline=args.offline)
                size, source = unpack_wheel(wheel, site), wheel.name
            total += size
            manifest["distributions"].append({"name": name, "version": version, "source": source})
            print(f"  {name:34} {version:14} {size / MIB:7.1f} MiB  {source}")
        add_project(site)
        (site / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        print(
            f"  {len(dists)} distributions + adamtune, {total / MIB:.0f} MiB unpacked; left to the image: {len(left)}"
        )
        pack(site, out, args.level)
    size = out.stat().st_size
    verdict = "ok" if size <= args.max_mib * MIB else "OVER THE LIMIT"
    print(f"bundle: {out} {size / MIB:.1f} MiB ({size} bytes; limit {args.max_mib} MiB: {verdict})")
    return 0 if size <= args.max_mib * MIB else 1


def check(args: argparse.Namespace) -> int:
    """Every requirement of the bundle's distributions met by this interpreter's sys.path (the bundle
    first on PYTHONPATH, then the image): one line per unmet one; exit 1 if any."""
    site = Path(args.site).resolve()
    env = default_environment()
    problems = []
    for info in sorted(site.glob("*.dist-info")):
        dist = metadata.Distribution.at(info)
        if canonicalize_name(dist.metadata["Name"]) == "adamtune":
            continue
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(env | {"extra": ""}):
                continue
            if canonicalize_name(req.name) in EXCLUDED:
                continue
            try:
                have = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                problems.append(f"{dist.metadata['Name']} needs {req}: not installed")
                continue
            if req.specifier and not req.specifier.contains(have, prereleases=True):
                problems.append(f"{dist.metadata['Name']} needs {req}: found {req.name} {have}")
    for line in problems:
        print(f"device_bundle check: {line}")
    print(f"device_bundle check: {len(problems)} unmet requirement(s) of the bundle in {site}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    verbs = parser.add_subparsers(dest="verb")
    b = verbs.add_parser("build", help="build the bundle (the default)")
    b.add_argument("--python", default="3.12", help="target CPython X.Y, or native (this interpreter); default 3.12")
    b.add_argument("--out", help="the tar.xz to write (default .bundle/adamtune-site-cpXY.tar.xz)")
    b.add_argument("--cache", default=str(ROOT / ".bundle-build" / "wheels"), help="where fetched wheels are kept")
    b.add_argument("--work", default=None, help="folder for the unpacked staging copy (default: the temp folder)")
    b.add_argument("--image-packages", default=str(IMAGE_PACKAGES), help="the image's distributions, one a line")
    b.add_argument("--include", action="append", default=[], help="bundle this one although the image has it")
    b.add_argument("--offline", action="store_true", help="fetch no wheel; fail where one is needed")
    b.add_argument("--level", default="9", help="xz preset (default 9)")
    b.add_argument("--max-mib", type=float, default=50.0, help="fail above this size (default 50)")
    c = verbs.add_parser("check", help="check the unpacked bundle's requirements against this interpreter's path")
    c.add_argument("site", help="the folder the bundle was unpacked into")
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("build", "check", "-h", "--help"):
        argv = ["build", *argv]
    args = parser.parse_args(argv)
    try:
        return build(args) if args.verb == "build" else check(args)
    except BundleError as e:
        print(f"device_bundle: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
