"""A stand-in `pulumi` executable: records every call and keeps stacks in a JSON state file.

Written next to a state file into a folder the test puts first on PATH. It answers the
subcommands `kit preview` uses, in the shapes the real CLI prints (`stack ls --json`,
`config --json`, `stack output --json`); $PULUMI_STANDIN_FAIL names a stack whose destroy fails.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

SCRIPT = """#!{python}
import json, os, sys
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

valued = {{"--stack", "--cwd", "--copy-config-from"}}
words = [a for i, a in enumerate(argv) if not a.startswith("-") and (i == 0 or argv[i - 1] not in valued)]
stack = option("--stack")
if words[:2] == ["stack", "ls"]:
    listing = [{{"name": n, "current": False, "lastUpdate": s.get("lastUpdate"), "updateInProgress": False,
                "resourceCount": s.get("resources", 0)}} for n, s in state["stacks"].items()]
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
elif words[:1] == ["config"]:
    config = state["stacks"][stack]["config"]
    print(json.dumps({{k: {{"value": v, "secret": False}} for k, v in config.items()}}))
elif words[:1] == ["up"]:
    number = stack.split("-")[1]
    print("Updating (" + stack + ")")
    state["stacks"][stack].update(lastUpdate="2026-12-02T06:00:00Z", resources=23,
                                 outputs={{"serviceUrl": "https://pr-" + number + ".preview.example.com"}})
    save()
elif words[:2] == ["stack", "output"]:
    print(json.dumps(state["stacks"][stack]["outputs"]))
elif words[:1] == ["destroy"]:
    if stack == os.environ.get("PULUMI_STANDIN_FAIL"):
        print("error: the cluster is unreachable", file=sys.stderr)
        sys.exit(255)
    print("Destroying (" + stack + ")")
    state["stacks"][stack]["resources"] = 0
    save()
elif words[:2] == ["stack", "rm"]:
    del state["stacks"][words[2]]
    save()
else:
    sys.exit("stand-in pulumi: unexpected call " + " ".join(argv))
"""


class PulumiStandIn:
    def __init__(self, folder: Path, stacks: dict[str, dict[str, object]] | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        binary = folder / "pulumi"
        binary.write_text(SCRIPT.format(python=sys.executable))
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
        (folder / "state.json").write_text(json.dumps({"stacks": stacks or {}}))
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
