"""A local fake of the USTB web chat (``POST /site/ai/compose_chat``), on loopback.

It parses the multipart form in order, records it, checks the session cookie, and
streams the answer as ``{e, m, d}`` envelope events, ending by closing the
connection (no ``[DONE]``), as providers.md describes. A request without the
expected cookie gets a ``302`` to the SSO login page; ``set_cookie`` makes the next
answer refresh the session with ``Set-Cookie``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route


def form_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The (name, value) pairs of a multipart/form-data body, in order."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    return [
        (str(part.get_param("name", header="content-disposition")),
         part.get_payload(decode=True).decode())  # type: ignore[union-attr]
        for part in message.iter_parts()
    ]


@dataclass
class FakeUSTB:
    """The fake server's state; ``app`` is the Starlette application."""

    session: str
    answers: list[str] = field(default_factory=list)
    forms: list[list[tuple[str, str]]] = field(default_factory=list)
    set_cookie: str | None = None

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[
            Route("/site/ai/compose_chat", self._chat, methods=["POST"]),
        ])

    async def _chat(self, request: Request) -> Response:
        if request.cookies.get("easy_session") != self.session:
            return RedirectResponse("http://sso.ustb.edu.cn/login?service=chat", status_code=302)
        self.forms.append(form_fields(request.headers["content-type"], await request.body()))
        answer = self.answers.pop(0) if self.answers else "USTB says hi"
        response = StreamingResponse(self._events(answer), media_type="text/event-stream")
        if self.set_cookie is not None:
            response.set_cookie("easy_session", self.set_cookie)
            self.session, self.set_cookie = self.set_cookie, None
        return response

    async def _events(self, answer: str) -> AsyncIterator[bytes]:
        for start in range(0, len(answer), 5):
            event = {"e": 0, "m": "", "d": {"type": "0", "answer": answer[start:start + 5],
                                            "url": "", "message_id": 1, "id": 1, "ext": []}}
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
