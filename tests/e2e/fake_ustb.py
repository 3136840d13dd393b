"""A local fake of the USTB web chat (``POST /site/ai/compose_chat``), on loopback.

It parses the multipart form in order (refusing with 400 a part that carries more than
``Content-Disposition: form-data; name="…"``, which the web page never sends), records
it, checks the session cookie, and
streams the answer as ``{e, m, d}`` envelope events, ending by closing the
connection (no ``[DONE]``), as docs/providers.md describes. A request without the
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


def form_fields(content_type: str, body: bytes) -> list[tuple[str, str]] | None:
    """The (name, value) pairs of a multipart/form-data body, in order; ``None`` when a
    part has a header besides Content-Disposition, or a filename."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields = []
    for part in message.iter_parts():
        if list(part.keys()) != ["Content-Disposition"] or part.get_filename() is not None:
            return None
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        fields.append((str(part.get_param("name", header="content-disposition")), payload.decode()))
    return fields


@dataclass
class FakeUSTB:
    """The fake server's state; ``app`` is the Starlette application."""

    session: str
    answers: list[str] = field(default_factory=list)
    forms: list[list[tuple[str, str]]] = field(default_factory=list)
    set_cookie: str | None = None

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/site/ai/compose_chat", self._chat, methods=["POST"]),
            ]
        )

    async def _chat(self, request: Request) -> Response:
        if request.cookies.get("easy_session") != self.session:
            return RedirectResponse("http://sso.ustb.edu.cn/login?service=chat", status_code=302)
        form = form_fields(request.headers["content-type"], await request.body())
        if form is None:
            return Response("a form part the web page would not send", status_code=400)
        self.forms.append(form)
        answer = self.answers.pop(0) if self.answers else "USTB says hi"
        response = StreamingResponse(self._events(answer), media_type="text/event-stream")
        if self.set_cookie is not None:
            response.set_cookie("easy_session", self.set_cookie)
            self.session, self.set_cookie = self.set_cookie, None
        return response

    async def _events(self, answer: str) -> AsyncIterator[bytes]:
        for start in range(0, len(answer), 5):
            event = {
                "e": 0,
                "m": "",
                "d": {
                    "type": "0",
                    "answer": answer[start : start + 5],
                    "url": "",
                    "message_id": 1,
                    "id": 1,
                    "ext": [],
                },
            }
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
