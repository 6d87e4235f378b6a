"""Maps the top-level source folders into the ``concelho`` import namespace.

Metadata lives in pyproject.toml; this file only computes the package list, because
setuptools cannot express "every sub-folder of suite/ becomes concelho.suite.*" there.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
SOURCE_FOLDERS = ("suite", "cli", "search", "plugins", "templates", "static")
SKIP = {"__pycache__", "node_modules"}


def _packages() -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    package_data: dict[str, list[str]] = {}
    for folder in SOURCE_FOLDERS:
        base = ROOT / folder
        for path in [base, *sorted(p for p in base.rglob("*") if p.is_dir())]:
            rel = path.relative_to(ROOT)
            if SKIP & set(rel.parts):
                continue
            name = "concelho." + ".".join(rel.parts)
            packages.append(name)
            package_dir[name] = rel.as_posix()
            package_data[name] = ["*"]
    return packages, package_dir, package_data


packages, package_dir, package_data = _packages()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data=package_data,
    exclude_package_data={"": ["*.pyc"]},
)
