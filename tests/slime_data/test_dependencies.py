"""Every runtime dependency in pyproject.toml is imported by the package code (tests and benchmarks
have their own extras), and the package code imports nothing that is not a dependency or, for an
optional feature (serving, Ray), a dependency of that feature's extra."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as pip vendors it
    from pip._vendor import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
IMPORT_NAMES = {"pillow": "PIL", "pyyaml": "yaml"}  # distribution -> module, where they differ
# Needed without an import of ours: transformers' HfDeepSpeedConfig (ZeRO-3 loading) comes from accelerate.
INDIRECT = {"accelerate"}
OPTIONAL = {"wandb"}  # imported only for `--report-to wandb`, which asks the user to install it
# Installed apart with --no-deps (its requirements would replace the CPU torch): see the lmms-eval extra.
INSTALLED_APART = {"lmms_eval"}


def distribution_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def package_imports() -> set[str]:
    modules = set()
    for package in ("slime_data", "slime_model"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"slime_data", "slime_model"} - OPTIONAL


def test_runtime_dependencies_are_exactly_what_the_package_imports():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = distribution_names(project["dependencies"])
    imported = {IMPORT_NAMES.get(name, name) for name in runtime - INDIRECT}
    assert imported - package_imports() == set(), "runtime dependencies the package never imports"
    groups = project["optional-dependencies"]
    features = {
        name
        for group, requirements in groups.items()
        if group not in ("dev", "bench")
        for name in distribution_names(requirements)
    }
    optional = {IMPORT_NAMES.get(name, name) for name in features}
    missing = package_imports() - imported - optional - INSTALLED_APART
    assert missing == set(), "imports that are no runtime or feature dependency"
