"""The wheel: built from the source tree, installed (not editable) into a fresh virtualenv, used.

One module-scoped build + install, then checks on the wheel's contents, the installed
``site-packages`` and the installed ``suite`` command run from a directory outside the source tree.

Nothing is downloaded (a test must not hang on a slow package index): the wheel is built with this
environment's setuptools (``--no-isolation``; the test extras pin it) and installed with ``--no-deps``
into a fresh virtualenv that sees this environment's packages only as its dependencies, through a
``.pth`` line after its own ``site-packages``; ``pip check`` then proves the wheel's declared
requirements are all met by them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GENERIC_NAMES = {"cli", "search", "plugins", "suite", "templates", "static"}
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "var",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    "suite.toml",
)
ADMIN_PASSWORD = "long-enough-pass"
SERVE_TIMEOUT = 90  # seconds; generous for loaded CI machines


@dataclass
class Installed:
    src: Path  # the copy of the source tree the wheel was built from
    wheel: Path
    names: list[str]  # every path inside the wheel
    venv: Path
    python: Path
    suite: Path
    site_packages: Path
    workdir: Path  # an empty directory outside the source tree

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a shell that activated the venv (no SUITE_* from the caller)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SUITE_") and k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
        }
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env["COLUMNS"] = "200"
        env.update(extra)
        return env

    def run(self, *args: str | Path, timeout: float = 120, **extra_env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(a) for a in args],
            cwd=self.workdir,
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, (
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
        return result


def _run(cmd: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``subprocess.run`` that, on timeout, kills the command's whole process group: a child it
    started (pip under ``build``) would otherwise keep the output pipes open and the wait going."""
    with subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True,
    ) as process:  # fmt: skip
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"{' '.join(cmd)} took over {timeout} s:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return subprocess.CompletedProcess(cmd, process.returncode, stdout, stderr)


def _build_wheel(src: Path, outdir: Path) -> Path:
    cmd = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(outdir), str(src)]
    result = _run(cmd, timeout=300)
    assert result.returncode == 0, f"python -m build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    wheels = sorted(outdir.glob("concelho-*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {outdir}, found {wheels}"
    return wheels[0]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("packaging")
    # Build from a copy so the build/ and *.egg-info folders never touch the working tree.
    src = root / "src"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE, symlinks=True)
    wheel = _build_wheel(src, root / "dist")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()

    venv = root / "venv"
    result = _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    assert result.returncode == 0, result.stderr
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=60)
    site_packages = Path(purelib.stdout.strip())
    # The dependencies: this environment's packages, on the path after the venv's own site-packages
    # (a directory named in a .pth file has its own .pth files ignored: this checkout's editable
    # install stays off).
    (site_packages / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    result = _run([*pip, "install", "--quiet", "--no-compile", "--no-deps", "--no-index", str(wheel)], timeout=300)
    assert result.returncode == 0, f"pip install of the wheel failed:\n{result.stdout}\n{result.stderr}"
    check = _run([*pip, "check"], timeout=120)
    assert check.returncode == 0, f"the wheel's requirements are not met:\n{check.stdout}\n{check.stderr}"
    workdir = root / "work"
    workdir.mkdir()
    return Installed(
        src=src,
        wheel=wheel,
        names=names,
        venv=venv,
        python=python,
        suite=venv / "bin" / "suite",
        site_packages=site_packages,
        workdir=workdir,
    )


# --------------------------------------------------------------------------------------------
# The wheel's contents
# --------------------------------------------------------------------------------------------
def test_wheel_ships_templates_static_migrations_and_catalogs(installed: Installed) -> None:
    names = set(installed.names)
    for required in (
        "concelho/templates/core/base.html",
        "concelho/static/core/htmx.min.js",
        "concelho/suite/migrations/env.py",
        "concelho/suite/migrations/script.py.mako",
    ):
        assert required in names, f"{required} missing from {installed.wheel.name}"

    def under(prefix: str, suffix: str = "") -> list[str]:
        return [n for n in names if n.startswith(prefix) and n.endswith(suffix)]

    assert under("concelho/suite/migrations/versions/", ".py"), "no core migration in the wheel"
    assert under("concelho/plugins/alerts/migrations/", ".py"), "no alerts migration in the wheel"
    assert under("concelho/plugins/alerts/templates/alerts/", ".html"), "no alerts templates in the wheel"
    assert under("concelho/suite/locale/"), "no translation catalogs under concelho/suite/locale/"
    assert "concelho/suite/locale/pt/LC_MESSAGES/messages.po" in names, "the pt catalog is missing"

    # Every data file of the source tree made it in (templates, static, migrations, catalogs).
    for folder, prefix in (
        ("templates", "concelho/templates/"),
        ("static", "concelho/static/"),
        ("suite/locale", "concelho/suite/locale/"),
        ("suite/migrations", "concelho/suite/migrations/"),
        ("plugins/alerts", "concelho/plugins/alerts/"),
    ):
        for path in (installed.src / folder).rglob("*"):
            if path.is_file():
                wanted = prefix + path.relative_to(installed.src / folder).as_posix()
                assert wanted in names, f"{path.relative_to(installed.src)} is not in the wheel (as {wanted})"


def test_wheel_has_only_the_concelho_namespace(installed: Installed) -> None:
    tops = {name.split("/", 1)[0] for name in installed.names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"concelho"}, f"unexpected top-level entries in the wheel: {sorted(tops)}"
    assert not any(n.endswith((".pyc", "/")) or "__pycache__" in n for n in installed.names)
    with zipfile.ZipFile(installed.wheel) as zf:
        (info,) = dist_info
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert "suite = concelho.cli.main:main" in entry_points
    assert "[suite.plugins]" in entry_points
    assert "alerts = concelho.plugins.alerts:plugin" in entry_points


def test_site_packages_has_no_generic_top_level_names(installed: Installed) -> None:
    entries = {p.name for p in installed.site_packages.iterdir()}
    clashes = sorted(
        name
        for name in entries
        if name in GENERIC_NAMES or name.removesuffix(".py") in GENERIC_NAMES or name.split(".")[0] in GENERIC_NAMES
    )
    assert not clashes, f"generic top-level names in site-packages: {clashes}"
    assert (installed.site_packages / "concelho" / "suite" / "app.py").is_file()
    # The installed distribution's own file list stays inside concelho/ (plus its script).
    (record,) = installed.site_packages.glob("concelho-*.dist-info/RECORD")
    for line in record.read_text().splitlines():
        path = line.split(",", 1)[0]
        assert path.startswith(("concelho/", "concelho-")) or path.endswith("bin/suite"), path


# --------------------------------------------------------------------------------------------
# Using the installed wheel
# --------------------------------------------------------------------------------------------
def test_installed_suite_help_lists_the_commands(installed: Installed) -> None:
    out = installed.run(installed.suite, "--help").stdout
    for command in ("init", "serve", "check", "db", "users", "departments", "plugins", "demo", "alerts"):
        assert f" {command} " in out, f"`suite --help` does not list {command!r}:\n{out}"
    version = installed.run(installed.suite, "--version").stdout
    assert version.startswith("suite "), version


def test_installed_package_imports_from_site_packages(installed: Installed) -> None:
    code = (
        "import json; from concelho.suite.app import create_app; import concelho.suite.paths as p; "
        "print(json.dumps({k: str(getattr(p, k)) for k in "
        "('TEMPLATES_DIR', 'STATIC_DIR', 'LOCALE_DIR', 'MIGRATIONS_DIR')}))"
    )
    paths = json.loads(installed.run(installed.python, "-c", code).stdout)
    for name, value in paths.items():
        assert Path(value).is_relative_to(installed.site_packages), f"{name} = {value}"
        assert Path(value).is_dir(), f"{name} = {value} does not exist"
        assert not Path(value).is_relative_to(ROOT), f"{name} resolved into the source tree: {value}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_installed_init_check_and_serve_outside_the_source_tree(installed: Installed) -> None:
    init = installed.run(
        installed.suite, "init", "--admin-email", "a@b.pt", "--admin-password", ADMIN_PASSWORD, "--json"
    )
    assert json.loads(init.stdout)["admin_created"] == "admin"
    assert (installed.workdir / "var" / "suite.db").is_file()
    assert (installed.workdir / "var" / "secret.key").is_file()

    check = json.loads(installed.run(installed.suite, "check", "--json").stdout)
    assert check["ok"] is True, check
    assert check["checks"]["database"] == "ok", check
    installed.run(installed.suite, "check")  # the human-readable table works too

    # Serving from site-packages: templates, static files and catalogs resolve there.
    port = _free_port()
    log = (installed.workdir / "serve.log").open("w")
    server = subprocess.Popen(
        [str(installed.suite), "serve", "--port", str(port)],
        cwd=installed.workdir,
        env=installed.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while True:
            assert server.poll() is None, (installed.workdir / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (
                f"suite serve did not answer /healthz in {SERVE_TIMEOUT} s:\n"
                + (installed.workdir / "serve.log").read_text()[-3000:]
            )
            time.sleep(0.2)
        home = httpx.get(f"{base}/", headers={"accept-language": "pt-PT"}, timeout=10)
        assert home.status_code == 200
        assert '<html lang="pt-PT">' in home.text
        assert "/static/core/htmx.min.js" in home.text
        login = httpx.get(f"{base}/login", timeout=10)
        assert login.status_code == 200
        assert 'name="_csrf_token"' in login.text
        script = httpx.get(f"{base}/static/core/htmx.min.js", timeout=10)
        assert script.status_code == 200
        assert script.content == (installed.src / "static" / "core" / "htmx.min.js").read_bytes()
        assert httpx.get(f"{base}/static/alerts/alerts.css", timeout=10).status_code == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        log.close()
