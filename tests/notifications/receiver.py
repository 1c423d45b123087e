"""A real HTTP receiver for notifications (uvicorn on 127.0.0.1) and an independent
Standard Webhooks verifier: nothing here uses leadflow's own signing code."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.support.servers import free_port

SECRET_PREFIX = "whsec_"


def _expected_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> bytes:
    assert secret.startswith(SECRET_PREFIX), secret
    key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    signed_content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return base64.b64encode(hmac.new(key, signed_content, hashlib.sha256).digest())


def signatures_valid_under(
    secret: str, msg_id: str, timestamp: str, body: bytes, header: str
) -> list[str]:
    """The `v1,` signatures of the (space-separated) header that ``secret`` produced."""
    expected = _expected_signature(secret, msg_id, timestamp, body)
    matching = []
    for candidate in header.split(" "):
        version, _, value = candidate.partition(",")
        if version != "v1" or not value:
            continue
        if hmac.compare_digest(value.encode(), expected):
            matching.append(candidate)
    return matching


def verify(secret: str, msg_id: str, timestamp: str, body: bytes, header: str) -> bool:
    return bool(signatures_valid_under(secret, msg_id, timestamp, body, header))


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds (real time) before answering


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    verified: bool | None  # against the receiver's secrets; None when it has none

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def timestamp(self) -> str:
        return self.headers["webhook-timestamp"]

    @property
    def signatures(self) -> list[str]:
        return self.headers["webhook-signature"].split(" ")

    def valid_under(self, secret: str) -> list[str]:
        return signatures_valid_under(
            secret, self.webhook_id, self.timestamp, self.body, self.headers["webhook-signature"]
        )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave pytest's Ctrl-C alone
        yield


class Receiver:
    """Records every request and answers from a script (default 200). Requests whose
    signature does not verify under any of ``secrets`` are answered 400 (once secrets are
    set). Can be stopped (connection refused) and started again on the same port."""

    def __init__(self, port: int | None = None, path: str = "/hook") -> None:
        self.port = port or free_port()
        self.path = path
        self.requests: list[Received] = []
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.secrets: list[str] = []
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def then(self, *replies: Reply | int) -> Receiver:
        for reply in replies:
            self.script.append(Reply(reply) if isinstance(reply, int) else reply)
        return self

    @property
    def posts(self) -> list[Received]:
        return [r for r in self.requests if r.method == "POST"]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        verified = None
        if self.secrets:
            verified = all(
                name in headers for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
            ) and any(
                verify(
                    secret,
                    headers["webhook-id"],
                    headers["webhook-timestamp"],
                    body,
                    headers["webhook-signature"],
                )
                for secret in self.secrets
            )
        self.requests.append(Received(scope["method"], scope["path"], headers, body, verified))
        reply = self.script.popleft() if self.script else self.default
        if verified is False:
            reply = Reply(400, body=b"bad signature")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(k.encode(), v.encode()) for k, v in reply.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})

    @property
    def running(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        assert self._task is None, "already running"
        config = uvicorn.Config(
            self,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve())
        for _ in range(500):  # at most 5 s
            if server.started:
                break
            if task.done():
                task.result()  # raises the startup error
                raise RuntimeError("receiver exited during startup")
            await asyncio.sleep(0.01)
        else:
            server.should_exit = True
            raise RuntimeError(f"receiver on port {self.port} did not start")
        self._server, self._task = server, task

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, timeout=10)
        finally:
            self._server, self._task = None, None
