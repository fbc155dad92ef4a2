"""environment.yml and pyproject.toml list the same pinned dependencies."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_conda_env_matches_pyproject():
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(proj["dependencies"])
    for extra in proj["optional-dependencies"].values():
        wanted |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip) == wanted
    assert "pip" in env["dependencies"] and any(str(d).startswith("python=3.11") for d in env["dependencies"])
    assert all("==" in d for d in wanted), "every dependency is pinned"
    assert "torch==2.13.0" in wanted


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci.splitlines()[-1]
