"""A stand-in `pulumi` executable: records every call and keeps stacks in a JSON state file.

Written next to a state file into a folder the test puts first on PATH. It answers the
subcommands infra/previews.py uses, in the shapes the real CLI prints (`stack ls --json`,
`stack output --json`), and `up` behaves like the real program on a preview stack: it needs
`reference-platform:image`, records the namespace of k8s/overlays/preview under --cwd as it is
at that moment (what kustomize.v2.Directory would deploy), and sets the outputs infra/program.py
exports (serviceUrl, image, expiresAt = now + 72 h, createdAt kept from the first deployment).
$PULUMI_STANDIN_FAIL="<command>:<stack>" makes that command fail on that stack (exit 255).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

from kit.paths import K8S, ROOT

SCRIPT = """#!{python}
import json, os, sys, time
from pathlib import Path

here = Path(__file__).parent
state_file = here / "state.json"
state = json.loads(state_file.read_text())
argv = sys.argv[1:]
with (here / "calls.jsonl").open("a") as calls:
    calls.write(json.dumps(argv) + "\\n")

def option(name):
    return argv[argv.index(name) + 1] if name in argv else None

def save():
    state_file.write_text(json.dumps(state))

valued = {{"--stack", "--cwd", "--copy-config-from", "--policy-pack"}}
words = [a for i, a in enumerate(argv) if not a.startswith("-") and (i == 0 or argv[i - 1] not in valued)]
stack = (option("--stack") or "").split("/")[-1]  # org/pr-3 or pr-3
fail = os.environ.get("PULUMI_STANDIN_FAIL", "")
if fail and fail == words[0] + ":" + stack:
    print("error: the cluster is unreachable", file=sys.stderr)
    sys.exit(255)
if words[:2] == ["stack", "ls"]:
    org = state.get("org")
    listing = [{{"name": (org + "/" + n) if org else n, "current": False, "lastUpdate": s.get("lastUpdate"),
                "updateInProgress": False, "resourceCount": s.get("resources", 0)}}
               for n, s in state["stacks"].items()]
    print(json.dumps(listing))
elif words[:2] == ["stack", "init"]:
    name = words[2]
    if name in state["stacks"]:
        sys.exit("error: stack '" + name + "' already exists")
    template = option("--copy-config-from")
    config = dict(state["stacks"].get(template, {{}}).get("config", {{}}))
    state["stacks"][name] = {{"config": config, "outputs": {{}}}}
    save()
elif words[:2] == ["config", "set"]:
    state["stacks"][stack]["config"][words[2]] = words[3]
    save()
elif words[:1] == ["up"]:
    entry = state["stacks"][stack]
    image = entry["config"].get("reference-platform:image")
    if not image:
        sys.exit("error: invalid stack configuration: reference-platform:image: previews deploy ...")
    kustomization = Path(option("--cwd")) / "k8s" / "overlays" / "preview" / "kustomization.yaml"
    namespace = kustomization.read_text().split("namespace: ")[1].split()[0]
    number = stack.split("-")[1]
    now = int(time.time())
    created = entry["outputs"].get("createdAt", now)
    print("Updating (" + stack + ")")
    entry.update(lastUpdate="2026-12-02T06:00:00Z", resources=23, deployedNamespace=namespace,
                 outputs={{"serviceUrl": "https://pr-" + number + ".preview.example.com", "image": image,
                          "createdAt": created, "expiresAt": now + 72 * 3600}})
    save()
elif words[:2] == ["stack", "output"]:
    print(json.dumps(state["stacks"][stack]["outputs"]))
elif words[:1] == ["destroy"]:
    print("Destroying (" + stack + ")")
    state["stacks"][stack].update(resources=0, outputs={{}})
    save()
elif words[:2] == ["stack", "rm"]:
    del state["stacks"][words[2].split("/")[-1]]
    save()
else:
    sys.exit("stand-in pulumi: unexpected call " + " ".join(argv))
"""


class PulumiStandIn:
    def __init__(
        self, folder: Path, stacks: dict[str, dict[str, object]] | None = None, org: str | None = None
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        binary = folder / "pulumi"
        binary.write_text(SCRIPT.format(python=sys.executable))
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
        (folder / "state.json").write_text(json.dumps({"stacks": stacks or {}, "org": org}))
        (folder / "calls.jsonl").write_text("")

    @property
    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in (self.folder / "calls.jsonl").read_text().splitlines()]

    @property
    def stacks(self) -> dict[str, dict[str, object]]:
        state: dict[str, dict[str, dict[str, object]]] = json.loads((self.folder / "state.json").read_text())
        return state["stacks"]

    def path_env(self) -> str:
        return f"{self.folder}{os.pathsep}{os.environ.get('PATH', '')}"


def copy_pulumi_project(tmp_path: Path) -> Path:
    """A copy of the Pulumi project under ``tmp_path``: Pulumi.yaml and k8s/ (the overlay `up`
    renders and restores), so a run cannot touch the repository's own files."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", folder / "Pulumi.yaml")
    shutil.copytree(K8S, folder / "k8s")
    return folder
