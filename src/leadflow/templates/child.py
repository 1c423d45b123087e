"""A template render process (``python -m leadflow.templates.child MEMORY_BYTES``), started
and killed by ``templates.isolation``.

Protocol, one JSON object per line: it writes ``{"ready": true}`` once started, then for each
request ``{"op": "check"|"render", "limits": {...}, "items": [{"part", "source"}, ...],
"context": {...}}`` one answer per item, ``{"ok": true, "output": ...}`` or ``{"ok": false,
"message": ..., "limit": bool}``. It stops answering a request after the answer that carries
``"stop": true`` (a render that failed; a check over the time limit), and exits after an
answer carrying ``"recycle": true`` (out of memory: a fresh process is cleaner). It exits when
its stdin closes (the parent is gone)."""

from __future__ import annotations

import contextlib
import json
import resource
import sys
from typing import Any, BinaryIO

from leadflow.templates.render import (
    RenderLimits,
    TemplateOverLimit,
    TemplateProblem,
    check_custom_template,
    render_custom_part,
    template_problem,
)


def _limit_memory(extra_bytes: int) -> None:
    """Allow this process ``extra_bytes`` of address space beyond what it maps now (the
    interpreter, Jinja2, Babel and the catalog)."""
    if extra_bytes <= 0:
        return
    try:
        with open("/proc/self/status") as status:
            size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return  # not Linux: the wall-clock limit still holds
    limit = size_kb * 1024 + extra_bytes
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _answer(op: str, item: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    limits = RenderLimits(**request["limits"])
    part = item["part"]
    try:
        if op == "check":
            check_custom_template(part, item["source"], limits)
            return {"ok": True}
        output = render_custom_part(
            item["source"], request["context"], html=part == "html", limits=limits
        )
        return {"ok": True, "output": output}
    except TemplateProblem as exc:
        problem = exc
    except Exception as exc:
        problem = template_problem(part, exc)
    reason = problem.reason if isinstance(problem, TemplateOverLimit) else None
    answer: dict[str, Any] = {
        "ok": False,
        "message": problem.message,
        "limit": bool(reason),
        "reason": reason,
    }
    if op == "render" or reason in {"time", "memory"}:
        answer["stop"] = True
    if reason == "memory":
        answer["recycle"] = True
    return answer


def _write(out: BinaryIO, answer: dict[str, Any]) -> None:
    out.write(json.dumps(answer).encode() + b"\n")
    out.flush()


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    _write(stdout, {"ready": True})
    for line in stdin:
        request = json.loads(line)
        for item in request["items"]:
            try:
                answer = _answer(request["op"], item, request)
            except MemoryError:
                answer = {
                    "ok": False,
                    "message": "exceeds the rendering limits: needs too much memory",
                    "limit": True,
                    "reason": "memory",
                    "stop": True,
                    "recycle": True,
                }
            _write(stdout, answer)
            if answer.get("recycle"):
                return
            if answer.get("stop"):
                break


def main() -> None:
    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
