"""docker/: parser-based checks of every Dockerfile (dockerfile-parse), hadolint and checkov, and the
real sshd and caddy programs loading the SSH hardening and the TLS sidecar configuration.
No image is built here (no Docker engine); CI on the repository host builds them (deploy.yml).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.domain.catalog import IDE_PORT, SSH_PORT
from shared.templates import catalog
from tests.infra.tooling import ROOT, checkov, missing, probe, run, unpacked, venv_tool

DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*/Dockerfile"))
CATALOG = catalog()
LANGUAGE_IMAGES = tuple(CATALOG.names)
VERSION = re.compile(r"^v?\d+(\.\d+)+$")


@pytest.fixture(scope="module")
def parsed() -> dict[Path, Any]:
    return probe("docker", *DOCKERFILES)


def instructions(dockerfile: dict[str, Any], name: str) -> list[str]:
    return [item["value"] for item in dockerfile["structure"] if item["instruction"] == name]


def arg_defaults(dockerfile: dict[str, Any]) -> dict[str, str]:
    defaults = {}
    for value in instructions(dockerfile, "ARG"):
        name, _, default = value.partition("=")
        defaults[name.strip()] = default.strip()
    return defaults


def test_every_image_the_catalog_offers_has_a_dockerfile() -> None:
    names = {path.parent.name for path in DOCKERFILES}
    assert names == {"base", "tls", *LANGUAGE_IMAGES}, names  # and no image the catalog does not offer
    for template in CATALOG.templates:
        assert template.image == f"dev8-{template.name}"
        assert (DOCKER / template.name / "Dockerfile").is_file()
    script = (DOCKER / "build.sh").read_text()
    assert '"$here"/*/Dockerfile' in script  # the children are found by their directories
    assert "base/Dockerfile" in script and "tls/Dockerfile" in script


def test_each_image_installs_the_extensions_its_catalog_entry_names(parsed: dict[Path, Any]) -> None:
    for template in CATALOG.templates:
        runs = " ".join(instructions(parsed[DOCKER / template.name / "Dockerfile"], "RUN"))
        installing = (
            runs.split("install-extensions.sh", 1)[1].split("&&", 1)[0]
            if "install-extensions" in runs
            else ""
        )
        installed = [word for word in installing.replace("\\", " ").split() if "." in word]
        assert installed == list(template.extensions), f"{template.name}: installs {installed}"


def test_base_images_are_pinned(parsed: dict[Path, Any]) -> None:
    for path, dockerfile in parsed.items():
        (source,) = instructions(dockerfile, "FROM")  # one stage each
        defaults = arg_defaults(dockerfile)
        if path.parent.name in LANGUAGE_IMAGES:
            # FROM our own base, at a tag CI passes (the commit); the default is never "latest".
            assert source == "${BASE_IMAGE}:${BASE_TAG}", path
            assert defaults["BASE_IMAGE"] == "dev8-base"
            assert defaults["BASE_TAG"] not in ("", "latest")
        else:
            image, _, tag = source.partition(":")
            assert "$" not in source and "@" not in image, source
            assert tag and tag != "latest" and re.match(r"\d", tag), f"{path}: {source} needs a version tag"


def test_images_run_as_a_non_root_user(parsed: dict[Path, Any]) -> None:
    for path, dockerfile in parsed.items():
        if path == DOCKER / "tls" / "Dockerfile":
            continue  # the TLS sidecar: below
        users = instructions(dockerfile, "USER")
        assert users, f"{path}: no USER"
        final_user = users[-1].split(":")[0]
        assert final_user not in ("root", "0"), f"{path}: runs as {users[-1]}"
    base = parsed[DOCKER / "base" / "Dockerfile"]
    assert instructions(base, "USER")[-1] == "1000:1000"
    useradd = [v for v in instructions(base, "RUN") if "useradd" in v]
    assert useradd and "--uid 1000" in useradd[0] and " dev8" in useradd[0]


def test_nothing_is_fetched_by_add_or_piped_into_a_shell(parsed: dict[Path, Any]) -> None:
    for path, dockerfile in parsed.items():
        assert not instructions(dockerfile, "ADD"), f"{path}: use COPY (and RUN curl with checks for URLs)"
        for command in instructions(dockerfile, "RUN"):
            assert not re.search(r"\|\s*(sudo\s+)?(ba|z)?sh\b", command), (
                f"{path}: pipes a download into a shell"
            )
    for script in (DOCKER / "lib").glob("*.sh"):
        text = script.read_text()
        assert not re.search(r"\|\s*(ba)?sh\b", text), script
        if "curl" in text:
            assert "sha256sum --check" in text, f"{script.name}: downloads must be checksum-verified"


def test_healthcheck_and_ports(parsed: dict[Path, Any]) -> None:
    for path, dockerfile in parsed.items():
        assert instructions(dockerfile, "HEALTHCHECK"), f"{path}: no HEALTHCHECK"
        assert instructions(dockerfile, "EXPOSE"), f"{path}: no EXPOSE"
    base = parsed[DOCKER / "base" / "Dockerfile"]
    assert instructions(base, "EXPOSE") == [f"{IDE_PORT} {SSH_PORT}"]
    assert "/healthz" in instructions(base, "HEALTHCHECK")[0]
    for template in CATALOG.templates:
        name = template.name
        exposed = {
            int(p) for v in instructions(parsed[DOCKER / name / "Dockerfile"], "EXPOSE") for p in v.split()
        }
        assert exposed == set(template.ports), (
            f"{name}: EXPOSE {exposed} but the catalog says {template.ports}"
        )
    tls = parsed[DOCKER / "tls" / "Dockerfile"]
    assert instructions(tls, "EXPOSE") == ["80 443"]


def test_the_tls_sidecar_binds_80_and_443_as_root_without_file_capabilities(parsed: dict[Path, Any]) -> None:
    """Like the official Caddy image: root inside its own container (no user code or secret there),
    never a setcap that ACI may not honour."""
    tls = parsed[DOCKER / "tls" / "Dockerfile"]
    assert instructions(tls, "USER") in ([], ["root"], ["0"])
    assert not any("setcap" in run for run in instructions(tls, "RUN"))


def test_base_entrypoint_runs_under_tini(parsed: dict[Path, Any]) -> None:
    base = parsed[DOCKER / "base" / "Dockerfile"]
    (entrypoint,) = instructions(base, "ENTRYPOINT")
    assert json.loads(entrypoint) == ["/usr/bin/tini", "-g", "--", "/usr/local/bin/dev8-entrypoint"]
    runs = " ".join(instructions(base, "RUN"))
    assert "rm -f /etc/ssh/ssh_host_*" in runs, "host keys baked into the image would be shared by all"
    assert "CODE_SERVER_VERSION" in arg_defaults(base) and VERSION.match(
        arg_defaults(base)["CODE_SERVER_VERSION"]
    )
    for tool in ("openssh-server", "git", "curl", "vim", "tini", "gh"):
        assert re.search(rf"\s{re.escape(tool)}\s", runs), tool
    for command in instructions(base, "RUN"):
        if "apt-get install" in command:
            assert "--no-install-recommends" in command and "rm -rf /var/lib/apt/lists/*" in command


def test_copy_sources_exist_in_the_build_context(parsed: dict[Path, Any]) -> None:
    for path, dockerfile in parsed.items():
        for value in instructions(dockerfile, "COPY"):
            parts = [p for p in value.split() if not p.startswith("--")]
            for source in parts[:-1]:
                if "*" in source:
                    continue  # optional files (the activity agent)
                assert (DOCKER / source).exists(), f"{path}: COPY {source} is not in docker/"
    agent_copy = [
        v for v in instructions(parsed[DOCKER / "base" / "Dockerfile"], "COPY") if "activity-agent" in v
    ]
    assert agent_copy == [v for v in agent_copy if "base/dev8-activity-agent*" in v] and agent_copy


def test_tool_versions_are_pinned_and_agree_across_images(parsed: dict[Path, Any]) -> None:
    versions: dict[str, set[str]] = {}
    for dockerfile in parsed.values():
        for name, default in arg_defaults(dockerfile).items():
            if name.endswith("_VERSION"):
                assert VERSION.match(default), f"{name}={default!r} is not a pinned version"
                versions.setdefault(name, set()).add(default)
    disagreements = {name: values for name, values in versions.items() if len(values) > 1}
    assert not disagreements, disagreements
    fullstack = arg_defaults(parsed[DOCKER / "fullstack" / "Dockerfile"])
    for language in ("node", "python", "go"):
        for name in arg_defaults(parsed[DOCKER / language / "Dockerfile"]):
            if name.endswith("_VERSION"):
                assert name in fullstack, f"fullstack lacks {name} of the {language} image"


def test_no_secret_is_baked_into_an_image(parsed: dict[Path, Any]) -> None:
    secretish = re.compile(r"(TOKEN|PASSWORD|SECRET|_KEY)\b", re.IGNORECASE)
    for path, dockerfile in parsed.items():
        for kind in ("ENV", "ARG", "LABEL"):
            for value in instructions(dockerfile, kind):
                assert not secretish.search(value), f"{path}: {kind} {value}"


def test_hadolint_has_no_finding() -> None:
    hadolint = venv_tool("hadolint")
    result = run([hadolint, "--failure-threshold", "info", "--no-color", *DOCKERFILES])
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_dockerfile_scan_has_no_failed_check() -> None:
    report = checkov("docker", "dockerfile")
    assert report["summary"]["resource_count"] >= len(DOCKERFILES), report["summary"]
    failed = [f"{c['check_id']} {c['file_path']}" for c in report["results"]["failed_checks"]]
    assert not failed, failed


# --- SSH hardening, checked by OpenSSH's own parser ------------------------------------------------


@contextlib.contextmanager
def sshd_sandbox(config_text: str) -> Iterator[list[str]]:
    """`sshd -f CONFIG -h KEY` ready to run, as an unprivileged user when the tests run as root:
    sshd insists on its privilege-separation user when started by root (the image runs it as dev8).
    """
    sshd, env = unpacked("usr/sbin/sshd")
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        missing("ssh-keygen")
    directory = Path(tempfile.mkdtemp(prefix="dev8-sshd-"))
    try:
        directory.chmod(0o755)
        config = directory / "sshd_config"
        config.write_text(config_text)
        config.chmod(0o644)
        key = directory / "ssh_host_ed25519_key"
        assert run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", key]).returncode == 0
        prefix: list[str] = []
        if os.geteuid() == 0:
            for path in (key, key.with_suffix(".pub")):
                shutil.chown(path, "nobody")
            runuser = shutil.which("runuser")
            assert runuser, "runuser is needed to run sshd unprivileged"
            prefix = [
                runuser,
                "-u",
                "nobody",
                "--",
                "env",
                f"LD_LIBRARY_PATH={env.get('LD_LIBRARY_PATH', '')}",
            ]
        yield [*prefix, str(sshd), "-f", str(config), "-h", str(key)]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def sshd_effective() -> dict[str, list[str]]:
    with sshd_sandbox((DOCKER / "base" / "sshd_config").read_text()) as sshd:
        _, env = unpacked("usr/sbin/sshd")
        test = run([*sshd, "-t"], env=env)
        assert test.returncode == 0, f"sshd -t rejects docker/base/sshd_config:\n{test.stderr}"
        dump = run([*sshd, "-T", "-C", "user=dev8,host=client,addr=192.0.2.1"], env=env)
        assert dump.returncode == 0, dump.stderr
    effective: dict[str, list[str]] = {}
    for line in dump.stdout.splitlines():
        name, _, value = line.partition(" ")
        effective.setdefault(name, []).append(value)
    return effective


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("port", "2222"),
        ("permitrootlogin", "no"),
        ("passwordauthentication", "no"),
        ("kbdinteractiveauthentication", "no"),
        ("permitemptypasswords", "no"),
        ("pubkeyauthentication", "yes"),
        ("authenticationmethods", "publickey"),
        ("maxauthtries", "3"),
        ("strictmodes", "yes"),
        ("allowusers", "dev8"),
        ("x11forwarding", "no"),
        ("allowagentforwarding", "no"),
        ("permittunnel", "no"),
        ("gatewayports", "no"),
        ("permituserenvironment", "no"),
        ("usepam", "no"),
        ("pidfile", "none"),
    ],
)
def test_sshd_effective_configuration(sshd_effective: dict[str, list[str]], option: str, value: str) -> None:
    assert sshd_effective.get(option) == [value], f"{option}: {sshd_effective.get(option)}"


def test_sshd_rejects_a_broken_configuration() -> None:
    # The check above can fail: the same sshd refuses a configuration with an unknown option.
    broken = (DOCKER / "base" / "sshd_config").read_text() + "\nPermitRootLoginn no\n"
    with sshd_sandbox(broken) as sshd:
        _, env = unpacked("usr/sbin/sshd")
        result = run([*sshd, "-t"], env=env)
    assert result.returncode != 0
    assert "PermitRootLoginn" in result.stderr


# --- TLS sidecar -------------------------------------------------------------------------------------


def caddy_adapt(label: str | None, region: str | None = "eastus") -> tuple[int, dict[str, Any] | None, str]:
    caddy, env = unpacked("usr/bin/caddy")
    env = {k: v for k, v in env.items() if k not in ("DEV8_DNS_LABEL", "DEV8_REGION", "CADDY_STORAGE_DIR")}
    if label is not None:
        env["DEV8_DNS_LABEL"] = label
    if region is not None:
        env["DEV8_REGION"] = region
    result = run(
        [caddy, "adapt", "--config", DOCKER / "tls" / "Caddyfile", "--adapter", "caddyfile", "--validate"],
        env=env,
    )
    config = json.loads(result.stdout) if result.returncode == 0 else None
    return result.returncode, config, result.stderr


def test_caddyfile_proxies_https_to_code_server_with_on_demand_certificates() -> None:
    code, config, errors = caddy_adapt("dev8-1a2b3c4d-0f1e2d")
    assert code == 0 and config is not None, errors
    assert config["admin"] == {"disabled": True}
    assert config["storage"] == {"module": "file_system", "root": "/data/caddy"}
    servers = config["apps"]["http"]["servers"]
    https = [s for s in servers.values() if s["listen"] == [":443"]]
    assert len(https) == 1
    text = json.dumps(https[0])
    assert '"dial": "127.0.0.1:8080"' in text
    assert "Strict-Transport-Security" in text
    # No TLS is disabled and nothing else is proxied.
    assert "auto_https" not in json.dumps(config)
    assert json.dumps(config).count('"handler": "reverse_proxy"') == 1
    # The FQDN carries a hash ACI picks (DNS name reuse policy), so certificates are on demand,
    # gated by Caddy's own local endpoint.
    tls = config["apps"]["tls"]["automation"]
    assert tls["policies"] == [{"on_demand": True}]
    assert tls["on_demand"]["ask"] == "http://127.0.0.1/dev8-allowed-host"


def allowed_host_pattern(config: dict[str, Any]) -> re.Pattern[str]:
    text = json.dumps(config["apps"]["http"]["servers"])
    found = re.search(r'query\.domain\}\.matches\(\\"(.+?)\\"\)', text)
    assert found, text
    return re.compile(found.group(1))


def test_certificates_are_only_asked_for_this_groups_names() -> None:
    code, config, errors = caddy_adapt("dev8-1a2b3c4d-0f1e2d", "westeurope")
    assert code == 0 and config is not None, errors
    pattern = allowed_host_pattern(config)
    assert pattern.match("dev8-1a2b3c4d-0f1e2d.a1b2c3d4.westeurope.azurecontainer.io")
    assert pattern.match("dev8-1a2b3c4d-0f1e2d.westeurope.azurecontainer.io")  # no reuse hash
    for other in (
        "dev8-99999999-0f1e2d.a1b2c3d4.westeurope.azurecontainer.io",  # another group
        "dev8-1a2b3c4d-0f1e2d.a1b2c3d4.eastus.azurecontainer.io",  # another region
        "dev8-1a2b3c4d-0f1e2d.x.y.westeurope.azurecontainer.io",
        "dev8-1a2b3c4d-0f1e2d.a1b2c3d4.westeurope.azurecontainer.io.evil.example",
        "evil.example",
    ):
        assert not pattern.match(other), other


def test_caddyfile_without_its_label_allows_no_certificate() -> None:
    code, config, errors = caddy_adapt(None, None)
    assert code == 0 and config is not None, errors  # fails closed rather than open
    pattern = allowed_host_pattern(config)
    assert not pattern.match("dev8-1a2b3c4d-0f1e2d.a1b2c3d4.eastus.azurecontainer.io")
    assert not pattern.match(".eastus.azurecontainer.io")
