"""Running ``leadflow`` commands as real processes, and reading what they print."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

LEADFLOW = [sys.executable, "-m", "leadflow"]
CHECK_LINE = re.compile(r"^(ok|warn|fail) {2,4}(\S(?:.*?\S)?) {2}(.+)$")


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def checks(self) -> dict[str, tuple[str, str]]:
        """``leadflow doctor``'s lines: check name -> (status, detail); every line must be
        one."""
        found: dict[str, tuple[str, str]] = {}
        for line in self.stdout.splitlines():
            match = CHECK_LINE.match(line)
            assert match, f"not a check line: {line!r}\n{self.output}"
            status, name, detail = match.groups()
            assert name not in found, f"{name} twice:\n{self.stdout}"
            found[name] = (status, detail)
        return found


def cli_env(cwd: Path, **settings: str) -> dict[str, str]:
    """This environment without any ``LEADFLOW_*`` variable but the tests' secret key, and
    ``settings`` (``LEADFLOW_*`` without the prefix; ``None`` leaves one unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env["LEADFLOW_SECRET_KEY"] = os.environ["LEADFLOW_SECRET_KEY"]
    env["PWD"] = str(cwd)
    for key, value in settings.items():
        name = f"LEADFLOW_{key.upper()}"
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


async def leadflow(*args: str, env: dict[str, str], cwd: Path, limit: float = 60) -> Ran:
    """``leadflow args…`` in ``cwd``, to completion (at most ``limit`` seconds)."""
    proc = await asyncio.create_subprocess_exec(
        *LEADFLOW,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"leadflow {' '.join(args)} still running after {limit} s:\n"
            f"{out.decode(errors='replace')}{err.decode(errors='replace')}"
        ) from None
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
