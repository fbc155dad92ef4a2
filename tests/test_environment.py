"""Dependencies: compatible ranges in pyproject.toml, the exact pins in constraints.txt, environment.yml in step,
and the package installs into a fresh virtual environment from its ranges (issue 24, part 5)."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> dict[str, Requirement]:
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in proj["dependencies"]]
    for extra in proj["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return {canonicalize_name(r.name): r for r in reqs}


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, sep, version = line.partition("==")
            assert sep and version, f"{line!r} is not an exact pin"
            out[canonicalize_name(name)] = version
    return out


def _constraints() -> dict[str, str]:
    return _pins((ROOT / "constraints.txt").read_text().splitlines())


def test_ranges_in_pyproject_pins_in_constraints_and_conda_in_step():
    declared, pins = _declared(), _constraints()
    # ranges, not pins: bi_core installs beside xcp_d, pybids or a lab's environment
    assert all(not any(s.operator == "==" for s in r.specifier) for r in declared.values())
    assert all(r.specifier and any(s.operator == "<" for s in r.specifier) for r in declared.values()), \
        "every range has an upper bound"
    assert set(pins) == set(declared), "constraints.txt pins exactly the declared dependencies"
    off = {n: (v, str(declared[n].specifier)) for n, v in pins.items() if not declared[n].specifier.contains(v)}
    assert not off, f"pins outside their declared range: {off}"
    assert pins["torch"] == "2.13.0"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip) == pins
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip   # the CPU build, as the Makefile
    assert "pip" in env["dependencies"] and any(str(d).startswith("python=3.11") for d in env["dependencies"])


def test_make_installs_the_cpu_torch_within_the_constraints():
    make = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt torch" in make and "download.pytorch.org/whl/cpu" in make
    assert '-c constraints.txt -e ".[book,dev]"' in make
    assert "$(STAMP): pyproject.toml constraints.txt" in make


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci.splitlines()[-1]


@pytest.mark.slow
def test_installs_into_a_fresh_venv_from_its_ranges(tmp_path):
    """Build the wheel offline, install it with --no-deps into a fresh venv, and check there that the
    dependencies it declares are met by the versions of this environment (no resolve: nothing downloads)."""
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    run = lambda *a, **kw: subprocess.run(a, check=True, capture_output=True, text=True, timeout=240, **kw)  # noqa: E731
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
        str(wheels), str(ROOT))
    wheel = next(wheels.glob("bi_core-*.whl"))
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    py = venv / "bin" / "python"
    # pip from this environment installs into the fresh one (--python needs pip >= 22.3)
    run(sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel))
    site = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    check = ("import importlib.metadata as md, sys\n"
             "from packaging.requirements import Requirement\n"
             "bad = []\n"
             "for r in map(Requirement, md.requires('bi_core')):\n"
             "    if r.marker and not r.marker.evaluate({'extra': 'book'}) and not r.marker.evaluate({'extra': 'dev'}):\n"
             "        continue\n"
             "    v = md.version(r.name)\n"
             "    if not r.specifier.contains(v):\n"
             "        bad.append(f'{r.name} {v} not in {r.specifier}')\n"
             "assert not bad, bad\n"
             "import bi_core, bi_core.ingest\n"
             "print(bi_core.__file__)\n")
    # the fresh venv sees its own bi_core first, then this environment's dependencies
    out = run(str(py), "-c", check, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, cwd=tmp_path).stdout
    assert str(venv) in out, f"bi_core imported from {out}, not the fresh venv"
    help_text = run(str(venv / "bin" / "bi-core"), "ingest", "bids", "--help",
                    env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, cwd=tmp_path).stdout
    assert "--drop-empty-rois" in help_text
