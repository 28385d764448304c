"""`make image-test`: build service/Dockerfile for real with podman and check what runs.

No registry is reachable here, so the official `python:3.11-slim` cannot be pulled. A
stand-in base is made locally with debootstrap (Debian bookworm ships CPython 3.11) and
shaped like the official image: python3 + venv + CA certificates, and pip installed under
/usr/local, so the Dockerfile's "no installer in the runtime" step is exercised too. The
base is cached (podman storage, then a tarball under .cache/image-test/), so only the
first run pays for debootstrap.

Checks, each a one-line error on failure: the API container runs as uid 10001 with a
read-only root and a tmpfs /tmp, answers /health/live, passes its own HEALTHCHECK, can
write /tmp but not its code, and stops with exit code 0 on SIGTERM; the image's default
user is 10001; no build tools (gcc, cc, make, pip, uv, ...) nor dev/ops/loadtest
dependencies are inside; the worker process type starts from the same image, serves its
metrics port and stops cleanly.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from kit.paths import ROOT, SERVICE

CACHE_DIR = ROOT / ".cache" / "image-test"
BASE_IMAGE = "localhost/reference-kit-base:bookworm-py311"
BASE_TARBALL = CACHE_DIR / "base-bookworm-py311.tar"
DOCKERFILE = SERVICE / "Dockerfile"
RUNTIME_UID = "10001"

# Debian packages for the stand-in base; the tools this script itself needs.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
HOST_PACKAGES = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
# Must all be absent from the runtime stage.
BUILD_TOOLS = ("gcc", "cc", "c++", "make", "ld", "pip", "pip3", "uv", "hatchling")
# Modules of the dependency groups that must stay out of the image (dev, ops, loadtest).
GROUP_ONLY_MODULES = ("pytest", "mypy", "ruff", "kubernetes_validate", "locust")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# podman 4.3 on this host kind: cgroups in hybrid mode break the default runtime (crun)
# and the default build isolation, runc and chroot work (see ../shared/notes/toolchain.md).
PODMAN = ("podman", "--runtime", "runc")
RUN_FLAGS = ("--pull=never", "--ulimit", "nofile=1024:4096", "--ulimit", "nproc=1024:4096")
STOP_TIMEOUT_SECONDS = 30  # longer than the service's default DRAIN_TIMEOUT_SECONDS (20)
START_TIMEOUT_SECONDS = 60.0
CONTAINER_TMP = "/tmp"  # noqa: S108 (the container's declared tmp dir, a fresh tmpfs)
PRODUCTION_CONSTRAINTS = ("--read-only", "--tmpfs", CONTAINER_TMP)


Completed = subprocess.CompletedProcess[str]


class ImageTestError(Exception):
    """A failed check: printed as one line, exit code 1."""


_timings: list[tuple[str, float]] = []


@contextmanager
def step(label: str, description: str) -> Iterator[None]:
    print(f"--> {description}", flush=True)
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    _timings.append((label, elapsed))
    print(f"    ok ({elapsed:.1f} s)", flush=True)


def run(args: Sequence[str], *, check: bool = True, timeout: float = 1800) -> Completed:
    # Fixed argument lists built here; nothing comes from untrusted input.
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if check and result.returncode != 0:
        output = f"{result.stdout}\n{result.stderr}".strip().splitlines()
        print("\n".join(f"    | {line}" for line in output[-15:]), file=sys.stderr)
        tail = output[-1] if output else "no output"
        raise ImageTestError(f"`{' '.join(args[:4])} ...` exited {result.returncode}: {tail}")
    return result


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
    return version


def ensure_host_tools() -> None:
    missing = [pkg for tool, pkg in HOST_PACKAGES.items() if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        names = " ".join(missing)
        raise ImageTestError(f"missing {names}: run as root or `apt-get install {names}`")
    run(["apt-get", "update", "-qq"])
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing])


def debian_mirror() -> str:
    """The Debian mirror apt already uses here (DEBIAN_MIRROR overrides)."""
    if mirror := os.environ.get("DEBIAN_MIRROR"):
        return mirror
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        if source.is_file():
            found = re.search(r"(https?://\S+/debian)/?(?=\s)", source.read_text() + "\n")
            if found:
                return found.group(1)
    return "http://deb.debian.org/debian"


def build_base_tarball() -> None:
    if os.geteuid() != 0:
        raise ImageTestError("building the base image needs root (debootstrap): run make image-test as root")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    rootfs = CACHE_DIR / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", "bookworm",
         str(rootfs), debian_mirror()])  # fmt: skip
    # Like the official image: pip under /usr/local (from Debian's own wheel, no network).
    chroot_env = ["env", "-i", f"PATH={DEFAULT_PATH}", "HOME=/root"]
    bootstrap_pip = (
        "python3 $(ls /usr/share/python-wheels/pip-*.whl)/pip install --quiet --break-system-packages"
        " --no-index --find-links /usr/share/python-wheels pip setuptools"
    )
    run(["chroot", str(rootfs), *chroot_env, "sh", "-ec", bootstrap_pip])
    (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3")
    # This host's egress may re-sign TLS: the base trusts what the host trusts, so the
    # builder reaches PyPI. It is a local test base, never pushed anywhere.
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
    for leftover in ("var/cache/apt", "var/lib/apt/lists"):
        for entry in (rootfs / leftover).glob("*"):
            if entry.is_file():
                entry.unlink()
            elif entry.name != "partial":
                shutil.rmtree(entry)
    partial_tarball = BASE_TARBALL.with_suffix(".partial")
    run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial_tarball), "."])
    partial_tarball.rename(BASE_TARBALL)
    shutil.rmtree(rootfs)


def ensure_base_image() -> str:
    if run([*PODMAN, "image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return "reused from podman storage"
    outcome = f"imported cached {BASE_TARBALL.relative_to(ROOT)}"
    if not BASE_TARBALL.exists():
        build_base_tarball()
        outcome = f"debootstrapped from {debian_mirror()}"
    run([*PODMAN, "import", "--change", f"ENV PATH={DEFAULT_PATH}", "--change", "ENV LANG=C.UTF-8",
         "--change", 'CMD ["python3"]', str(BASE_TARBALL), BASE_IMAGE])  # fmt: skip
    return outcome


def build_image(tag: str, version: str) -> None:
    # --format docker: the OCI image format has no HEALTHCHECK field.
    run([*PODMAN, "build", "--isolation=chroot", "--pull=never", "--format", "docker",
         "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", f"VERSION={version}",
         "-f", str(DOCKERFILE), "-t", tag, str(ROOT)])  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def in_image(tag: str, script: str) -> Completed:
    """One throw-away container, default user, under the production constraints."""
    return run([*PODMAN, "run", "--rm", *RUN_FLAGS, *PRODUCTION_CONSTRAINTS, tag, "sh", "-c", script],
               check=False)  # fmt: skip


def wait_for_http(url: str, container: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local http)
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        state = run([*PODMAN, "inspect", "--format", "{{.State.Running}}", container], check=False)
        if state.stdout.strip() != "true":
            logs = run([*PODMAN, "logs", "--tail", "5", container], check=False)
            lines = f"{logs.stdout}\n{logs.stderr}".strip().splitlines()
            last = lines[-1] if lines else "no logs"
            raise ImageTestError(f"{container} exited before {url} answered: {last}")
        time.sleep(0.5)
    raise ImageTestError(f"{url} did not answer 200 within {START_TIMEOUT_SECONDS:.0f} s")


@contextmanager
def service_container(tag: str, name: str, command: str, env: dict[str, str]) -> Iterator[str]:
    """A detached process-type container on the host network, migrated SQLite under /tmp."""
    run([*PODMAN, "rm", "--force", "--ignore", name], check=False)
    env_flags = [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]
    run([*PODMAN, "run", "--detach", "--name", name, *RUN_FLAGS, *PRODUCTION_CONSTRAINTS,
         "--user", f"{RUNTIME_UID}:{RUNTIME_UID}", "--network", "host", "--stop-timeout",
         str(STOP_TIMEOUT_SECONDS), "--env", f"DATABASE_URL=sqlite+aiosqlite:///{CONTAINER_TMP}/app.db",
         "--env", "ENVIRONMENT=ci", *env_flags, tag, "sh", "-c",
         f"python -m app.migrate && exec {command}"])  # fmt: skip
    try:
        yield name
    finally:
        run([*PODMAN, "rm", "--force", "--ignore", name], check=False)


def check_healthcheck_and_stop(container: str) -> float:
    """Runs the image's own HEALTHCHECK, then SIGTERM; returns the seconds the stop took."""
    health = run([*PODMAN, "healthcheck", "run", container], check=False)
    if health.returncode != 0:
        detail = (health.stdout or health.stderr).strip()
        raise ImageTestError(f"the image's HEALTHCHECK failed in {container}: {detail}")
    started = time.monotonic()
    run([*PODMAN, "stop", "--time", str(STOP_TIMEOUT_SECONDS), container])
    stopped_in = time.monotonic() - started
    code = run([*PODMAN, "inspect", "--format", "{{.State.ExitCode}}", container]).stdout.strip()
    if code != "0":
        raise ImageTestError(f"{container} exited {code} on SIGTERM (expected a graceful 0)")
    return stopped_in


def check_api(tag: str) -> None:
    port = free_port()
    with service_container(tag, "reference-image-test-api", "python -m app.main", {"PORT": str(port)}) as api:
        wait_for_http(f"http://127.0.0.1:{port}/health/live", api)
        uid = run([*PODMAN, "exec", api, "id", "-u"]).stdout.strip()
        if uid != RUNTIME_UID:
            raise ImageTestError(f"the API runs as uid {uid}, expected {RUNTIME_UID}")
        if run([*PODMAN, "exec", api, "touch", f"{CONTAINER_TMP}/probe"], check=False).returncode != 0:
            raise ImageTestError(f"the API cannot write its tmp dir {CONTAINER_TMP}")
        if run([*PODMAN, "exec", api, "touch", "/opt/venv/probe"], check=False).returncode == 0:
            raise ImageTestError("/opt/venv is writable: the root filesystem is not read-only")
        stopped_in = check_healthcheck_and_stop(api)
    print(f"    /health/live 200 on :{port}, uid {uid}, /tmp writable, /opt/venv read-only,")
    print(f"    HEALTHCHECK passed, SIGTERM -> exit 0 in {stopped_in:.1f} s")


def check_worker(tag: str) -> None:
    probe = in_image(tag, "python -c 'import app.worker'")
    if probe.returncode != 0:
        raise ImageTestError("the worker process type is missing: no module app.worker in the image")
    port = free_port()
    env = {
        "WORKER_METRICS_PORT": str(port),
        "HEALTHCHECK_URL": f"http://127.0.0.1:{port}/metrics",
        # Required by the worker; nothing is queued in this fresh database, so never called.
        "WEBHOOK_URL": "http://127.0.0.1:9/image-test-webhook",
    }
    with service_container(tag, "reference-image-test-worker", "python -m app.worker", env) as worker:
        wait_for_http(f"http://127.0.0.1:{port}/metrics", worker)
        stopped_in = check_healthcheck_and_stop(worker)
    print(f"    worker /metrics 200 on :{port}, HEALTHCHECK passed, SIGTERM -> exit 0 in {stopped_in:.1f} s")


def check_kit(tag: str) -> None:
    """The synthetic probe's command runs with the image's dependencies only (exit 4: no service)."""
    probe = in_image(tag, "kit smoke --json --url http://127.0.0.1:9 --email probe@example.com --password x")
    if probe.returncode != 4 or '"ok": false' not in probe.stdout:
        raise ImageTestError(
            f"kit smoke does not run in the image (exit {probe.returncode}): {probe.stderr[-200:]}"
        )
    print("    kit smoke --json runs (service unreachable -> exit 4, JSON report)")


def check_contents(tag: str, app_digest: str) -> None:
    configured = run([*PODMAN, "image", "inspect", "--format", "{{.Config.User}}", tag]).stdout.strip()
    default_uid = in_image(tag, "id -u").stdout.strip()
    expected = f"{RUNTIME_UID}:{RUNTIME_UID}"
    if configured != expected or default_uid != RUNTIME_UID:
        raise ImageTestError(f"image user is {configured!r} (uid {default_uid}), expected {expected}")
    find_tools = f'for t in {" ".join(BUILD_TOOLS)}; do command -v "$t" || true; done'
    tools = in_image(tag, find_tools).stdout.split()
    # `python -m pip` would be an installer too, in the venv or in the base interpreter.
    find_pip = 'for py in python "$(readlink -f /opt/venv/bin/python)"; do $py -m pip --version || true; done'
    pips = [line for line in in_image(tag, find_pip).stdout.splitlines() if line.startswith("pip ")]
    if tools or pips:
        raise ImageTestError(f"build tools inside the runtime image: {', '.join(tools + pips)}")
    modules = GROUP_ONLY_MODULES
    find_modules = f"import importlib.util as u; print(*(m for m in {modules!r} if u.find_spec(m)))"
    leaked = in_image(tag, f'python -c "{find_modules}"').stdout.split()
    if leaked:
        raise ImageTestError(f"dependency-group packages inside the image: {', '.join(leaked)}")
    check_app_is_current(tag, app_digest)
    print(f"    app package = working tree; user {configured};")
    print(f"    absent: {', '.join(BUILD_TOOLS)}, python -m pip,")
    print(f"    dependency groups ({', '.join(GROUP_ONLY_MODULES)})")


def app_digest_script() -> str:
    """Python that prints a digest of the app package's .py files (paths and contents)."""
    return (
        "import hashlib, pathlib, app; root = pathlib.Path(app.__file__).parent; d = hashlib.sha256()\n"
        "for f in sorted(root.rglob('*.py')):\n"
        "    d.update(f.relative_to(root).as_posix().encode() + f.read_bytes())\n"
        "print(d.hexdigest())"
    )


def local_app_digest() -> str:
    """Taken just before the build: the tree the build context is sent from."""
    return run([sys.executable, "-c", app_digest_script()]).stdout.strip()


def check_app_is_current(tag: str, local: str) -> None:
    """The image's app equals the working tree's service/src/app (no stale build cache)."""
    inside = in_image(tag, f'python -c "{app_digest_script()}"').stdout.strip()
    if inside != local:
        raise ImageTestError(
            f"the image's app package differs from service/src/app ({inside[:12] or 'none'} != "
            f"{local[:12]}): a stale build?"
        )


def image_size_mb(tag: str) -> float:
    size = run([*PODMAN, "image", "inspect", "--format", "{{.Size}}", tag]).stdout.strip()
    return int(size) / 1_000_000


def main() -> int:
    version = project_version()
    tag = f"localhost/reference-service:{version}"
    started = time.monotonic()
    try:
        with step("tools", "host tools (podman, runc, debootstrap)"):
            ensure_host_tools()
        with step("base", f"base image {BASE_IMAGE}"):
            print(f"    {ensure_base_image()}")
        with step("build", f"podman build -f service/Dockerfile -t {tag} ."):
            app_digest = local_app_digest()
            build_image(tag, version)
        print(f"    image size {image_size_mb(tag):.0f} MB")
        with step("contents", "image contents: default user, no build tools, no dependency groups"):
            check_contents(tag, app_digest)
        with step("api", "API process type: read-only root, tmpfs /tmp, uid 10001"):
            check_api(tag)
        with step("worker", "worker process type (python -m app.worker), same image"):
            check_worker(tag)
        with step("kit", "the kit CLI of the synthetic probe CronJob (kit smoke), same image"):
            check_kit(tag)
    except ImageTestError as error:
        print(f"image-test: FAILED: {error}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as error:
        print(f"image-test: FAILED: `{' '.join(map(str, error.cmd))[:80]}` timed out", file=sys.stderr)
        return 1
    print("image-test timings: " + ", ".join(f"{label} {secs:.1f}s" for label, secs in _timings))
    print(f"image-test: passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
