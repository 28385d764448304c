"""Supply-chain checks of `make security`: one line per check, non-zero exit on any finding.

1. ruff's security rules (S, flake8-bandit; selected in pyproject.toml) over the repository;
2. a secrets scan (detect-secrets) of every tracked file against the audited baseline
   `.secrets.baseline` (a finding not in it fails; refresh and audit it with
   `detect-secrets scan --baseline .secrets.baseline` + `detect-secrets audit .secrets.baseline`);
3. pip-audit of every locked dependency (uv.lock, all groups) against PyPI's vulnerability data,
   when PyPI is reachable: otherwise a printed NOTICE says the dependencies were not audited;
4. the image, with trivy or grype when one is installed and has its database offline;
   otherwise a NOTICE (neither ships with Debian 12 or PyPI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from kit.paths import ROOT

BASELINE = ROOT / ".secrets.baseline"
PYPI_PROBE = "https://pypi.org/pypi/pip/json"
IMAGE = "reference-service:test"


def _tool(name: str) -> str:
    """A tool of this venv (next to the interpreter), else from PATH."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


def _run(command: Sequence[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed commands of this kit
        list(command), capture_output=True, text=True, cwd=ROOT, timeout=timeout, check=False
    )


def ruff_security_rules() -> bool:
    # The project's configuration selects S; it allows S101 (asserts narrow types, never guard
    # access) and S in tests; any other exception is a justified per-line noqa.
    result = _run([_tool("ruff"), "check", "--no-cache", "--output-format", "concise", "."])
    print(f"ruff, security rules included (S): {'clean' if result.returncode == 0 else 'FINDINGS'}")
    if result.returncode:
        print(result.stdout)
    return result.returncode == 0


def tracked_files() -> list[str]:
    listed = _run(["git", "ls-files", "-z"])
    return [name for name in listed.stdout.split("\0") if name and (ROOT / name).is_file()]


def secrets_scan() -> bool:
    files = tracked_files()
    baseline = json.loads(BASELINE.read_text())
    audited = sum(len(findings) for findings in baseline["results"].values())
    with tempfile.TemporaryDirectory() as scratch:
        # The hook rewrites the baseline when only line numbers moved: give it a copy, so a
        # check never edits the repository. Exit 1: a secret not in the baseline; 3: moved only.
        working = Path(scratch) / "baseline.json"
        shutil.copyfile(BASELINE, working)
        result = _run([_tool("detect-secrets-hook"), "--baseline", str(working), *files])
    clean = result.returncode in (0, 3)
    status = "clean" if clean else "NEW FINDINGS"
    moved = " (audited entries moved: refresh with `detect-secrets scan --baseline .secrets.baseline`)"
    print(
        f"secrets (detect-secrets, {len(files)} tracked files, {audited} audited baseline entries): "
        f"{status}{moved if result.returncode == 3 else ''}"
    )
    if not clean:
        print(result.stdout or result.stderr)
    return clean


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10):  # noqa: S310 - a fixed https URL
            return True
    except (urllib.error.URLError, TimeoutError, OSError):
        return False


def dependency_audit() -> bool:
    if not _reachable(PYPI_PROBE):
        print(f"NOTICE pip-audit: {PYPI_PROBE} is unreachable: the locked dependencies were NOT audited")
        return True
    uv = shutil.which("uv") or str(ROOT / ".venv-uv" / "bin" / "uv")
    exported = _run(
        [uv, "export", "--frozen", "--format", "requirements-txt", "--all-groups", "--no-emit-project"]
    )
    if exported.returncode:
        print(f"pip-audit: could not export uv.lock: {exported.stderr.strip()}")
        return False
    with tempfile.TemporaryDirectory() as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(exported.stdout)
        report = Path(scratch) / "audit.json"
        result = _run(
            [
                _tool("pip-audit"),
                "--requirement",
                str(requirements),
                "--disable-pip",  # the lock's pins and hashes, no resolution
                "--progress-spinner",
                "off",
                "--format",
                "json",
                "--output",
                str(report),
            ]
        )
        if not report.exists():
            print(f"pip-audit: failed: {(result.stderr or result.stdout).strip()[-500:]}")
            return False
        dependencies = json.loads(report.read_text())["dependencies"]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    print(f"pip-audit (uv.lock, {len(dependencies)} packages, PyPI advisories): {len(vulnerable)} vulnerable")
    for dependency in vulnerable:
        ids = ", ".join(v["id"] for v in dependency["vulns"])
        print(f"  {dependency['name']} {dependency['version']}: {ids}")
    return not vulnerable


def image_scan() -> bool:
    scanner = next((name for name in ("trivy", "grype") if shutil.which(name)), None)
    if scanner is None:
        print("NOTICE image scan: no offline scanner (trivy, grype) is installed: the image was NOT scanned")
        return True
    command = (
        ["trivy", "image", "--offline-scan", "--skip-db-update", "--exit-code", "1", IMAGE]
        if scanner == "trivy"
        else ["grype", IMAGE, "--fail-on", "high"]
    )
    result = _run(command)
    print(f"image scan ({scanner}, {IMAGE}): {'clean' if result.returncode == 0 else 'FINDINGS or no image'}")
    if result.returncode:
        print(result.stdout[-5000:] or result.stderr[-2000:])
    return result.returncode == 0


def main() -> int:
    results = [ruff_security_rules(), secrets_scan(), dependency_audit(), image_scan()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
