"""Merchant templates render in separate processes, with a time and a memory limit.

Why processes and not threads: the sandbox (``templates.render``) counts loop iterations and
calls, checks the clock, measures the output as it streams and refuses the sizes that would
make large text (padding, joining, replacing, repeating, formats). That stops every hostile
template we know of within milliseconds. But it is cooperative: it acts only when the template
returns to Python code it controls. One C-level operation it failed to foresee (a format, an
escape of a large buffered string, something a future Jinja2 version adds) would run to the
end, holding the GIL part of the time and allocating what it likes, and a Python thread cannot
be stopped. A process can: each render process runs under an address-space limit
(``RLIMIT_AS``: what it may allocate beyond its own code and data) and is killed when a render
overruns its wall-clock limit, then replaced by a fresh one. The API's event loop only waits
on a pipe, from a small thread pool of its own (one thread per render process), so it keeps
answering while a template renders, and a stuck render costs one process, not the service.

The cost: a request over a pipe per render (JSON, well under a millisecond for a follow-up)
and, per API or worker process, up to ``template_render_processes`` Python processes of about
30 MB, started at the first merchant template (0.3-0.5 s) and after each kill. Predefined
templates are trusted and fast (tens of microseconds): they render in the calling process.

Templates and contexts travel as JSON lines: the process protocol is in ``templates.child``.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from leadflow.config import Settings
from leadflow.templates.render import (
    Rendered,
    RenderLimits,
    TemplateOverLimit,
    TemplateProblem,
    check_template_text,
    one_line,
    render_step,
    step_context,
)
from leadflow.templates.render import warm_up as render_warm_up

PARTS = ("subject", "html", "text")
# A render process kills itself over the limit (the sandbox checks the clock); this much
# later it is killed from outside.
KILL_GRACE_SECONDS = 0.5
START_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class IsolationSettings:
    limits: RenderLimits = field(default_factory=RenderLimits)
    processes: int = 2
    memory_mb: int = 256

    @classmethod
    def from_settings(cls, settings: Settings) -> IsolationSettings:
        return cls(
            limits=RenderLimits(
                seconds=settings.template_render_seconds,
                output_chars=settings.template_output_max_chars,
            ),
            processes=settings.template_render_processes,
            memory_mb=settings.template_render_memory_mb,
        )


class RenderUnavailable(RuntimeError):
    """No render process could be started (a server problem: retry later; the template is
    not to blame)."""


class _Died(Exception):
    """The render process exited while it had a request."""


@dataclass(frozen=True)
class Checked:
    """The outcome of checking one template part; ``problem`` None when it is fine."""

    key: Any
    part: str
    problem: TemplateProblem | None


class _Child:
    """One render process: requests are written to its stdin, answers read from its stdout."""

    def __init__(self, memory_mb: int) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "leadflow.templates.child", str(memory_mb * 1024 * 1024)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        self._buffer = b""
        try:
            ready = self.read_line(time.monotonic() + START_TIMEOUT_SECONDS)
        except _Died:
            ready = None
        if ready is None:
            self.kill()
            raise RenderUnavailable("the template render process did not start")

    def send(self, request: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request, default=str).encode() + b"\n")
        except OSError:
            self.kill()
            raise _Died from None

    def read_line(self, deadline: float) -> dict[str, Any] | None:
        """The next answer, or None past ``deadline``; _Died if the process exited."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                self.kill()
                raise _Died
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class RenderPool:
    """Render processes, each owned by one thread of a small pool; a process is started on
    first use and replaced after it is killed (over the time limit) or exits (out of memory)."""

    def __init__(self, settings: IsolationSettings) -> None:
        self.settings = settings
        self._threads = ThreadPoolExecutor(
            max_workers=settings.processes, thread_name_prefix="leadflow-render"
        )
        self._local = threading.local()
        self._children: set[_Child] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.kills = 0  # renders stopped from outside (tests and figures)

    def _child(self) -> _Child:
        child: _Child | None = getattr(self._local, "child", None)
        if child is None or not child.alive:
            if self._closed:
                raise RenderUnavailable("the template render pool is closed")
            child = _Child(self.settings.memory_mb)
            self._local.child = child
            with self._lock:
                self._children.add(child)
        return child

    def _drop(self, child: _Child) -> None:
        child.kill()
        self._local.child = None
        with self._lock:
            self._children.discard(child)

    def _run(self, request: dict[str, Any], expected: int) -> list[dict[str, Any]]:
        """Send one request and read its answers, one per item until an item stops the
        request (the child stops at the same one). A render over the time limit plus the grace
        is killed: its answer says so. A process that exits while rendering (killed from
        outside, say) is replaced and the request sent once more; if that one exits too, the
        template is taken to be the cause."""
        try:
            return self._attempt(request, expected)
        except _Died:
            pass
        try:
            return self._attempt(request, expected)
        except _Died:
            return [
                {
                    "ok": False,
                    "limit": True,
                    "reason": "crash",
                    "message": "stopped the render process twice",
                }
            ]

    def _attempt(self, request: dict[str, Any], expected: int) -> list[dict[str, Any]]:
        child = self._child()
        answers: list[dict[str, Any]] = []
        seconds = self.settings.limits.seconds
        try:
            child.send(request)
        except _Died:
            self._drop(child)
            raise
        while len(answers) < expected:
            try:
                answer = child.read_line(time.monotonic() + seconds + KILL_GRACE_SECONDS)
            except _Died:
                self._drop(child)
                raise
            if answer is None:
                self._drop(child)
                self.kills += 1
                answers.append(
                    {
                        "ok": False,
                        "limit": True,
                        "reason": "time",
                        "message": f"took longer than {seconds:g} s to render",
                    }
                )
                break
            answers.append(answer)
            if answer.get("recycle"):  # out of memory: the child exits after answering
                self._drop(child)
            if answer.get("stop"):
                break
        return answers

    async def run(self, request: dict[str, Any], expected: int) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._run, request, expected)

    def close(self) -> None:
        self._closed = True
        self._threads.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            children, self._children = list(self._children), set()
        for child in children:
            child.kill()


_settings = IsolationSettings()
_pool: RenderPool | None = None
_pool_lock = threading.Lock()


def configure(settings: IsolationSettings) -> None:
    """Use these limits from now on (a pool with other settings is replaced)."""
    global _settings, _pool
    with _pool_lock:
        if settings == _settings:
            return
        _settings = settings
        old, _pool = _pool, None
    if old is not None:
        old.close()


def current_settings() -> IsolationSettings:
    return _settings


def pool() -> RenderPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = RenderPool(_settings)
        return _pool


@atexit.register
def _close() -> None:
    if _pool is not None:
        _pool.close()


def _problem(part: str, answer: dict[str, Any]) -> TemplateProblem:
    message = answer["message"]
    if not answer.get("limit"):
        return TemplateProblem(part, message)
    if not message.startswith("exceeds"):
        message = f"exceeds the rendering limits: {message}"
    return TemplateOverLimit(part, message, answer.get("reason", "time"))


async def check_templates(items: list[tuple[Any, str, str]]) -> list[Checked]:
    """Check merchant template parts ``(key, part, source)``: they parse, use only known
    variables, pass the sandbox and render for the sample lead within the limits. Returns the
    outcome of each part checked; after a part over the time limit the rest are left
    unchecked (so one save costs at most about one time limit)."""
    out: list[Checked] = []
    queued: list[tuple[Any, str, str]] = []
    for key, part, source in items:
        try:
            check_template_text(part, source)
        except TemplateProblem as exc:
            out.append(Checked(key, part, exc))
            continue
        queued.append((key, part, source))
    if not queued:
        return out
    request = {
        "op": "check",
        "limits": _limits_json(),
        "items": [{"part": part, "source": source} for _, part, source in queued],
    }
    answers = await pool().run(request, len(queued))
    for (key, part, _), answer in zip(queued, answers, strict=False):
        out.append(Checked(key, part, None if answer["ok"] else _problem(part, answer)))
    return out


async def check_template(part: str, source: str) -> None:
    """Raise TemplateProblem (TemplateOverLimit past a limit) for a part that cannot be used."""
    for checked in await check_templates([(None, part, source)]):
        if checked.problem is not None:
            raise checked.problem


async def render_step_bounded(
    step: dict[str, Any], context: dict[str, Any], language: str | None
) -> Rendered:
    """Render one stored step for sending or previewing: the predefined template in this
    process, a merchant's subject/html/text in a render process within the limits.

    Raises TemplateProblem when the merchant's template fails for this lead (a
    TemplateOverLimit when it goes beyond a limit), RenderUnavailable when no render process
    can run it (a server problem, not the template's)."""
    if step.get("template"):
        return render_step(step, context, language)
    request = {
        "op": "render",
        "limits": _limits_json(),
        "context": step_context(step, context),
        "items": [{"part": part, "source": step[part]} for part in PARTS],
    }
    answers = await pool().run(request, len(PARTS))
    for part, answer in zip(PARTS, answers, strict=False):
        if not answer["ok"]:
            raise _problem(part, answer)
    subject, html, text = (answer["output"] for answer in answers)
    return Rendered(subject=one_line(subject), html=html, text=text)


def _limits_json() -> dict[str, Any]:
    limits = _settings.limits
    return {"seconds": limits.seconds, "output_chars": limits.output_chars}


def warm_up(settings: Settings) -> None:
    """Per-process work done once at start (``render.warm_up``: the predefined templates
    compiled, the locale data loaded), and the merchant-template limits of ``settings``."""
    configure(IsolationSettings.from_settings(settings))
    render_warm_up()
