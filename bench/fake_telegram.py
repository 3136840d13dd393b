"""A local fake of the Telegram Bot API server, served over real HTTP on loopback.

It answers the methods the bot calls (getMe, deleteWebhook, getUpdates with long
polling and offsets, sendMessage, editMessageText, sendMessageDraft, sendChatAction,
answerCallbackQuery, setMyCommands, deleteMessage, editMessageReplyMarkup, getFile,
getChatMember, sendDocument (a multipart upload), leaveChat, and file downloads), keeps each
chat's messages so tests can read the final text and entities, records every call, and
can inject errors (429 with ``retry_after``, "message to edit not found", or any fault a
test's chooser picks call by call: :attr:`FakeTelegram.chaos`). Used by the
e2e tests (``tests/e2e``) and the streaming benchmark (:mod:`bench.fakes`, with a
:class:`bench.flood.FloodGate` as ``throttle``).

:meth:`FakeTelegram.close` answers every pending ``getUpdates`` long poll at once, so a
server shutting down need not wait out the poll's ``timeout``.

Rich messages (Bot API 10.1+): sendRichMessage, sendRichMessageDraft and editMessageText
with ``rich_message`` (its ``markdown`` checked by :func:`bench.fake_rich.validate_rich_markdown`),
the draft's stop button (:meth:`FakeTelegram.press_stop`), and a server without them
(``rich_supported``). See the "rich messages" section below.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.fake_rich import (
    DRAFT_TTL,
    SERVER_ERRORS,
    RichDraft,
    RichMarkdownError,
    parse_rich_markdown,
)

BOT_ID = 777000
BOT_USERNAME = "class_helper_bot"


@dataclass
class Call:
    """One Bot API call the bot made; ``error_code`` when refused, else its ``result``."""

    method: str
    params: dict[str, Any]
    at: float
    error_code: int | None = None
    result: Any = None


@dataclass
class StoredMessage:
    """A message in a chat as the fake server holds it; ``reply_to`` is the id of the
    message a bot message replies to (its ``reply_parameters``)."""

    message_id: int
    chat_id: int
    text: str
    entities: list[dict[str, Any]]
    from_bot: bool
    reply_markup: Any = None
    edits: int = 0
    document: Upload | None = None
    reply_to: int | None = None
    # a rich message (Bot API 10.1+): ``text`` is its Markdown, this the received form
    rich_message: dict[str, Any] | None = None
    message_thread_id: int | None = None


@dataclass(frozen=True)
class Upload:
    """A file the bot uploaded (a multipart/form-data part with a filename)."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Fault:
    """What :attr:`FakeTelegram.chaos` does to one call.

    ``status`` (429, or a 5xx: Telegram failing) answers that error and leaves the call
    undone; a 429 carries ``retry_after`` seconds, as Telegram's flood control does. With
    no ``status`` the call is carried out and its answer held ``delay`` seconds (Telegram
    under load).
    """

    status: int | None = None
    retry_after: int = 1
    delay: float = 0.0


_FAULT_DESCRIPTIONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class Injection:
    """An error to answer instead of the next call(s) of ``method``."""

    method: str
    status: int
    description: str
    retry_after: int | None = None
    times: int = 1
    parameters: dict[str, Any] | None = None


@dataclass
class FakeTelegram:
    """The fake server's state; ``app`` is the Starlette application.

    ``throttle(method, params, arrival_time)``, when set, runs for every call but
    ``getUpdates`` after any injection: a number answers Telegram's 429 with
    ``retry_after`` = that many seconds rounded up (at least 1); ``None`` lets it through.

    Fault modes (tests set them): ``missing`` names methods this server lacks (answered
    404 "Not Found", as a local Bot API server older than ``sendMessageDraft`` does;
    PTB raises ``InvalidToken`` for it); ``blocked`` names chats whose user blocked the
    bot (every call to them answers 403 "Forbidden: bot was blocked by the user");
    ``slow`` maps a method to seconds its answer is held *after* the call was carried
    out (Telegram under load): a client that stops waiting still finds the message sent.
    ``unstarted`` names users who never started the bot: every call into their private
    chat (whose id is the user's) answers 403 "Forbidden: bot can't initiate conversation
    with a user", until they write to the bot (a private message pushed from them).
    ``chaos(call)``, when set, runs for every call but ``getUpdates`` after all the
    above (a test's fault chooser, e.g. seeded): the :class:`Fault` it returns refuses
    the call or holds its answer; ``None`` lets it through.

    ``getChatMember`` answers ``administrator`` for the users in ``admins``, the status
    ``statuses`` gives a user (``creator``, ``administrator``, ``member``, ``left``,
    ``kicked``), else ``member``. A document the bot sends is kept in the chat as a
    message whose ``text`` is the caption and ``document`` the upload.

    Rich messages: a rich message the bot sends or edits is kept with its Markdown as
    ``text`` and the received ``rich_message`` (:meth:`rich_messages`); drafts are in
    ``rich_drafts`` by (chat, topic, draft_id). ``rich_supported = False`` is a Bot API
    server before 10.1: sendRichMessage and sendRichMessageDraft answer 404 "Not Found:
    method not found" (PTB: ``EndPointNotFound``), and editMessageText ignores
    ``rich_message`` (400 "message text is empty" without ``text``). ``allowed_updates``
    is the list the last getUpdates or setWebhook gave (``None``: the default set); it
    filters ``stopped_message_generation`` updates only.
    """

    calls: list[Call] = field(default_factory=list)
    messages: dict[int, dict[int, StoredMessage]] = field(default_factory=dict)
    injections: list[Injection] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    admins: set[int] = field(default_factory=set)
    statuses: dict[int, str] = field(default_factory=dict)
    throttle: Callable[[str, dict[str, Any], float], float | None] | None = None
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    _new_update: asyncio.Event = field(default_factory=asyncio.Event)
    _closed: bool = field(default=False, init=False)
    files: dict[str, bytes] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)
    blocked: set[int] = field(default_factory=set)
    slow: dict[str, float] = field(default_factory=dict)
    unstarted: set[int] = field(default_factory=set)
    chaos: Callable[[Call], Fault | None] | None = None
    rich_supported: bool = True
    rich_drafts: dict[tuple[int, int | None, int], RichDraft] = field(default_factory=dict)
    allowed_updates: list[str] | None = None

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._dispatch, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._download, methods=["GET"]),
            ]
        )

    # ----- what tests drive -------------------------------------------------
    def push_text(
        self,
        *,
        chat_id: int,
        user_id: int,
        text: str,
        language_code: str = "en",
        chat_type: str = "private",
        reply_to: int | None = None,
        thread_id: int | None = None,
    ) -> int:
        """Queue a text message update from a user; returns the message id."""
        message_id = next(self._message_ids)
        user, chat = _user_and_chat(user_id, chat_id, chat_type, language_code)
        if chat_type == "private":
            self.unstarted.discard(user_id)  # writing to the bot starts it
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        mention = f"@{BOT_USERNAME}"
        if mention in text:
            message.setdefault("entities", []).append(
                {"type": "mention", "offset": text.index(mention), "length": len(mention)}
            )
        if reply_to is not None:
            original = self.messages[chat_id][reply_to]
            message["reply_to_message"] = self._message_json(original)
        if thread_id is not None:
            message["message_thread_id"] = thread_id
        self.messages.setdefault(chat_id, {})[message_id] = StoredMessage(
            message_id, chat_id, text, [], from_bot=False
        )
        self._push_update({"message": message})
        return message_id

    def add_file(self, data: bytes, *, file_id: str | None = None) -> str:
        """Register ``data`` for ``getFile`` and the file download route; returns the file_id."""
        file_id = file_id or f"file-{len(self.files) + 1}"
        self.files[file_id] = data
        return file_id

    def push_photo(
        self,
        *,
        chat_id: int,
        user_id: int,
        file_id: str,
        caption: str | None = None,
        language_code: str = "en",
        chat_type: str = "private",
        media_group_id: str | None = None,
        as_document: bool = False,
        file_size: int | None = None,
    ) -> int:
        """Queue a photo (or, with ``as_document``, an image document) update; returns its id.

        ``file_size`` overrides the size announced in the update (default: the
        registered bytes' length).
        """
        message_id = next(self._message_ids)
        user, chat = _user_and_chat(user_id, chat_id, chat_type, language_code)
        if chat_type == "private":
            self.unstarted.discard(user_id)  # writing to the bot starts it
        size = file_size if file_size is not None else len(self.files.get(file_id, b""))
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": user,
        }
        if as_document:
            message["document"] = {
                "file_id": file_id,
                "file_unique_id": f"u-{file_id}",
                "file_name": "image.png",
                "mime_type": "image/png",
                "file_size": size,
            }
        else:
            message["photo"] = [
                {
                    "file_id": f"{file_id}-thumb",
                    "file_unique_id": f"u-{file_id}-thumb",
                    "width": 90,
                    "height": 90,
                    "file_size": 1000,
                },
                {
                    "file_id": file_id,
                    "file_unique_id": f"u-{file_id}",
                    "width": 1280,
                    "height": 960,
                    "file_size": size,
                },
            ]
        if caption is not None:
            message["caption"] = caption
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        self.messages.setdefault(chat_id, {})[message_id] = StoredMessage(
            message_id, chat_id, caption or "", [], from_bot=False
        )
        self._push_update({"message": message})
        return message_id

    def push_update(self, body: dict[str, Any]) -> None:
        """Queue a raw update body (``update_id`` is added)."""
        self._push_update(body)

    def push_callback(
        self, *, chat_id: int, user_id: int, message_id: int, data: str, language_code: str = "en"
    ) -> None:
        """Queue a button press on the bot's message ``message_id``."""
        user = {
            "id": user_id,
            "is_bot": False,
            "first_name": f"U{user_id}",
            "language_code": language_code,
        }
        original = self.messages[chat_id][message_id]
        self._push_update(
            {
                "callback_query": {
                    "id": str(next(self._update_ids)),
                    "from": user,
                    "chat_instance": "ci",
                    "data": data,
                    "message": self._message_json(original),
                }
            }
        )

    def inject(
        self,
        method: str,
        *,
        status: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error (and ``parameters``,
        e.g. ``{"migrate_to_chat_id": …}``)."""
        self.injections.append(
            Injection(method, status, description, retry_after, times, parameters)
        )

    def bot_messages(self, chat_id: int) -> list[StoredMessage]:
        """The bot's messages in ``chat_id``, oldest first."""
        return [m for m in self.messages.get(chat_id, {}).values() if m.from_bot]

    def rich_messages(self, chat_id: int) -> list[StoredMessage]:
        """The bot's rich messages in ``chat_id``, oldest first (``text``: the Markdown)."""
        return [m for m in self.bot_messages(chat_id) if m.rich_message is not None]

    def press_stop(
        self, chat_id: int, draft_id: int, *, message_thread_id: int | None = None
    ) -> None:
        """The user presses the stop button of the draft ``draft_id`` in ``chat_id``:
        queue a ``stopped_message_generation`` update (Bot API 10.3).

        Raises ``ValueError`` when that draft shows no stop button: never sent, sent
        without ``can_stop``, expired (:data:`bench.fake_rich.DRAFT_TTL` after its last
        frame), already stopped, or cleared by a message the bot sent into its chat/topic.
        """
        key = (chat_id, message_thread_id, draft_id)
        draft = self.rich_drafts.get(key)
        if draft is None or not draft.can_stop or not self._draft_shown(draft):
            raise ValueError(f"no stop button is shown for draft {key}")
        draft.stopped = True
        chat = {"id": chat_id, "type": "private", "first_name": f"U{chat_id}"}
        body: dict[str, Any] = {"chat": chat, "draft_id": draft_id}
        if message_thread_id is not None:
            body["message_thread_id"] = message_thread_id
        self._push_update({"stopped_message_generation": body})

    def calls_of(self, method: str) -> list[Call]:
        """The recorded calls of ``method``."""
        return [c for c in self.calls if c.method == method]

    def close(self) -> None:
        """Answer every pending ``getUpdates`` long poll now, and every later one at once.

        The answer is what a long poll that timed out gets: the pending updates (usually
        none). Call it before shutting the server down: uvicorn waits for the requests in
        flight, and a long poll whose client already left (PTB cancels it on
        ``Updater.stop``) would otherwise hold the shutdown for its ``timeout``.
        """
        self._closed = True
        self._new_update.set()

    # ----- server side -----------------------------------------------------
    def _push_update(self, body: dict[str, Any]) -> None:
        body["update_id"] = next(self._update_ids)
        self.updates.append(body)
        self._new_update.set()

    def _message_json(self, stored: StoredMessage) -> dict[str, Any]:
        sender = (
            {"id": BOT_ID, "is_bot": True, "first_name": "Bot", "username": BOT_USERNAME}
            if stored.from_bot
            else {"id": 1, "is_bot": False, "first_name": "U"}
        )
        chat_type = "private" if stored.chat_id > 0 else "supergroup"
        body: dict[str, Any] = {
            "message_id": stored.message_id,
            "date": int(time.time()),
            "chat": {"id": stored.chat_id, "type": chat_type, "title": "C"},
            "from": sender,
            "text": stored.text,
        }
        if stored.entities:
            body["entities"] = stored.entities
        if stored.reply_markup:
            body["reply_markup"] = stored.reply_markup
        if stored.rich_message is not None:  # a rich message has no text (Bot API 10.1)
            del body["text"]
            body["rich_message"] = stored.rich_message
        if stored.message_thread_id is not None:
            body["message_thread_id"] = stored.message_thread_id
        return body

    async def _params(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return dict(request.query_params)
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            return dict(json.loads(raw))
        if content_type.startswith("multipart/form-data"):
            return _multipart(content_type, raw)
        params: dict[str, Any] = {}
        for key, value in parse_qsl(raw.decode(), keep_blank_values=True):
            try:
                params[key] = json.loads(value)
            except json.JSONDecodeError:
                params[key] = value
        return params

    async def _dispatch(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        params = await self._params(request)
        call = Call(method, params, time.monotonic())
        if method != "getUpdates":
            self.calls.append(call)
        fault = self.chaos(call) if self.chaos is not None and method != "getUpdates" else None
        injected = (
            self._take_injection(method)
            or self._fault(call)
            or self._throttled(call)
            or _refusal(fault)
        )
        if injected is not None:
            call.error_code = injected.status_code
            return injected
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return JSONResponse(
                {"ok": False, "error_code": 404, "description": f"Not Found: method {method}"},
                status_code=404,
            )
        try:
            result = await handler(params)
        except _ApiError as exc:
            call.error_code = exc.status
            return JSONResponse(
                {"ok": False, "error_code": exc.status, "description": exc.description},
                status_code=exc.status,
            )
        call.result = result
        delay = self.slow.get(method, 0.0) + (fault.delay if fault is not None else 0.0)
        if delay:  # carried out; the answer comes late
            await asyncio.sleep(delay)
        return JSONResponse({"ok": True, "result": result})

    def _fault(self, call: Call) -> JSONResponse | None:
        """The answer of a fault mode (``missing``, ``blocked``, ``unstarted``) to
        ``call``, if any."""
        if call.method in self.missing:
            body = {"ok": False, "error_code": 404, "description": "Not Found"}
            return JSONResponse(body, status_code=404)
        chat_id = call.params.get("chat_id")
        if chat_id is not None and int(chat_id) in self.blocked:
            description = "Forbidden: bot was blocked by the user"
            body = {"ok": False, "error_code": 403, "description": description}
            return JSONResponse(body, status_code=403)
        if chat_id is not None and int(chat_id) in self.unstarted:
            description = "Forbidden: bot can't initiate conversation with a user"
            body = {"ok": False, "error_code": 403, "description": description}
            return JSONResponse(body, status_code=403)
        return None

    def _throttled(self, call: Call) -> JSONResponse | None:
        if self.throttle is None or call.method == "getUpdates":
            return None
        wait = self.throttle(call.method, call.params, call.at)
        if wait is None:
            return None
        seconds = max(1, math.ceil(wait))
        return JSONResponse(
            {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {seconds}",
                "parameters": {"retry_after": seconds},
            },
            status_code=429,
        )

    def _take_injection(self, method: str) -> JSONResponse | None:
        for injection in self.injections:
            if injection.method == method and injection.times > 0:
                injection.times -= 1
                body: dict[str, Any] = {
                    "ok": False,
                    "error_code": injection.status,
                    "description": injection.description,
                }
                if injection.retry_after is not None:
                    body["parameters"] = {"retry_after": injection.retry_after}
                if injection.parameters is not None:
                    body["parameters"] = {**body.get("parameters", {}), **injection.parameters}
                return JSONResponse(body, status_code=injection.status)
        return None

    async def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Bot",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = int(params["user_id"])
        user = {"id": user_id, "is_bot": False, "first_name": f"U{user_id}"}
        status = self.statuses.get(user_id, "administrator" if user_id in self.admins else "")
        if status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        if status in ("left", "member"):
            return {"status": status, "user": user}
        if status == "kicked":
            return {"status": "kicked", "user": user, "until_date": 0}
        if status == "administrator":
            return {
                "status": "administrator",
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": True,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": True,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
            }
        return {"status": "member", "user": user}

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        self._remember_allowed_updates(params)
        return True

    async def _m_setMyCommands(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_sendChatAction(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_sendMessageDraft(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        self._remember_allowed_updates(params)
        self.updates = [u for u in self.updates if u["update_id"] >= offset and self._allows(u)]
        if not self.updates and timeout and not self._closed:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), min(timeout, 1.0))
            except TimeoutError:
                return []
        return list(self.updates)

    async def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        stored = StoredMessage(
            next(self._message_ids),
            chat_id,
            str(params["text"]),
            list(params.get("entities") or []),
            from_bot=True,
            reply_markup=params.get("reply_markup"),
            reply_to=_reply_target(params),
        )
        self.messages.setdefault(chat_id, {})[stored.message_id] = stored
        return self._message_json(stored)

    async def _m_sendDocument(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        document = params.get("document")
        if not isinstance(document, Upload):
            return _raise(400, "Bad Request: there is no document in the request")
        stored = StoredMessage(
            next(self._message_ids),
            chat_id,
            str(params.get("caption") or ""),
            [],
            from_bot=True,
            document=document,
        )
        self.messages.setdefault(chat_id, {})[stored.message_id] = stored
        body = self._message_json(stored)
        body.pop("text")
        body["caption"] = stored.text
        body["document"] = {
            "file_id": f"doc-{stored.message_id}",
            "file_unique_id": f"u-doc-{stored.message_id}",
            "file_name": document.filename,
            "file_size": len(document.data),
        }
        return body

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        stored = self.messages.get(chat_id, {}).get(int(params["message_id"]))
        if stored is None:
            return _raise(400, "Bad Request: message to edit not found")
        if "rich_message" in params and self.rich_supported:
            return self._edit_rich(stored, params)
        if "text" not in params:  # a server before 10.1 ignores rich_message
            return _raise(400, SERVER_ERRORS["text_empty"])
        stored.text = str(params["text"])
        stored.entities = list(params.get("entities") or [])
        stored.edits += 1
        if "reply_markup" in params:
            stored.reply_markup = params["reply_markup"]
        return self._message_json(stored)

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        stored = self.messages[int(params["chat_id"])][int(params["message_id"])]
        stored.reply_markup = params.get("reply_markup")
        return self._message_json(stored)

    async def _m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            return _raise(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(self.files[file_id]),
            "file_path": f"photos/{file_id}.jpg",
        }

    async def _download(self, request: Request) -> Response:
        """``GET /file/bot<token>/<file_path>``: the bytes registered with :meth:`add_file`."""
        path = request.path_params["path"]
        self.downloads.append(path)
        file_id = path.removeprefix("photos/").removesuffix(".jpg")
        if file_id not in self.files:
            return Response(status_code=404)
        return Response(self.files[file_id], media_type="application/octet-stream")

    async def _m_deleteMessage(self, params: dict[str, Any]) -> bool:
        self.messages.get(int(params["chat_id"]), {}).pop(int(params["message_id"]), None)
        return True

    async def _m_leaveChat(self, params: dict[str, Any]) -> bool:
        return True  # recorded in ``calls``

    # ----- rich messages (Bot API 10.1+; docs/telegram.md "Rich messages") --------------
    async def _m_sendRichMessage(self, params: dict[str, Any]) -> Any:
        """A rich message from ``rich_message.markdown``; answers the Message, whose
        ``rich_message`` holds the parsed blocks and which has no ``text``."""
        if not self.rich_supported:
            return _raise(404, SERVER_ERRORS["method_not_found"])
        if params.get("chat_id") in (None, ""):
            return _raise(400, SERVER_ERRORS["chat_id_empty"])
        chat_id = int(params["chat_id"])
        markdown, rich = _rich_markdown(params, draft=False)
        thread = params.get("message_thread_id")
        stored = StoredMessage(
            next(self._message_ids),
            chat_id,
            markdown,
            [],
            from_bot=True,
            reply_markup=params.get("reply_markup"),
            reply_to=_reply_target(params),
            rich_message=rich,
            message_thread_id=int(thread) if thread is not None else None,
        )
        self.messages.setdefault(chat_id, {})[stored.message_id] = stored
        return self._message_json(stored)

    async def _m_sendRichMessageDraft(self, params: dict[str, Any]) -> bool:
        """A draft frame in a private chat (a positive ``chat_id``); ``can_stop`` and
        ``keep_on_stop`` are kept with the draft in ``rich_drafts``."""
        if not self.rich_supported:
            raise _ApiError(404, SERVER_ERRORS["method_not_found"])
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int) or isinstance(chat_id, bool) or chat_id <= 0:
            raise _ApiError(400, SERVER_ERRORS["draft_peer"])
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or isinstance(draft_id, bool) or draft_id == 0:
            raise _ApiError(400, SERVER_ERRORS["draft_id"])
        markdown, _ = _rich_markdown(params, draft=True)
        thread = params.get("message_thread_id")
        key = (chat_id, int(thread) if thread is not None else None, draft_id)
        previous = self.rich_drafts.get(key)
        self.rich_drafts[key] = RichDraft(
            chat_id=chat_id,
            draft_id=draft_id,
            message_thread_id=key[1],
            markdown=markdown,
            can_stop=params.get("can_stop") is True,
            keep_on_stop=params.get("keep_on_stop") is True,
            at=time.monotonic(),
            frames=[*(previous.frames if previous is not None else []), markdown],
        )
        return True

    def _edit_rich(self, stored: StoredMessage, params: dict[str, Any]) -> Any:
        """editMessageText with ``rich_message``: exactly one of text and rich_message;
        the same Markdown and keyboard again is "message is not modified"."""
        if "text" in params:
            return _raise(400, SERVER_ERRORS["text_and_rich"])
        markdown, rich = _rich_markdown(params, draft=False)
        markup = params.get("reply_markup", stored.reply_markup)
        same = stored.rich_message is not None and stored.text == markdown
        if same and markup == stored.reply_markup:
            return _raise(400, SERVER_ERRORS["not_modified"])
        stored.text = markdown
        stored.entities = []
        stored.rich_message = rich
        stored.reply_markup = markup
        stored.edits += 1
        return self._message_json(stored)

    def _draft_shown(self, draft: RichDraft) -> bool:
        """Whether ``draft`` is still shown: not stopped, younger than
        :data:`~bench.fake_rich.DRAFT_TTL`, and no message of the bot since into its
        chat and topic (a message clears the draft)."""
        if draft.stopped or time.monotonic() - draft.at > DRAFT_TTL:
            return False
        return not any(
            call.at >= draft.at
            and call.error_code is None
            and call.result is not None
            and call.method.startswith("send")
            and not call.method.endswith("Draft")
            and call.method != "sendChatAction"
            and str(call.params.get("chat_id")) == str(draft.chat_id)
            and call.params.get("message_thread_id") == draft.message_thread_id
            for call in self.calls
        )

    def _remember_allowed_updates(self, params: dict[str, Any]) -> None:
        """Keep getUpdates' or setWebhook's ``allowed_updates`` (an empty list: the default)."""
        if "allowed_updates" in params:
            allowed = params["allowed_updates"]
            self.allowed_updates = [str(name) for name in allowed] if allowed else None

    def _allows(self, update: dict[str, Any]) -> bool:
        """Whether ``update`` may be delivered under ``allowed_updates`` (only
        ``stopped_message_generation`` is filtered; its being in the default set is assumed)."""
        if "stopped_message_generation" not in update or self.allowed_updates is None:
            return True
        return "stopped_message_generation" in self.allowed_updates


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _reply_target(params: dict[str, Any]) -> int | None:
    """The message id a send's ``reply_parameters`` names, if any."""
    reply = params.get("reply_parameters")
    if isinstance(reply, str):
        reply = json.loads(reply)
    return int(reply["message_id"]) if isinstance(reply, dict) else None


def _rich_markdown(params: dict[str, Any], *, draft: bool) -> tuple[str, dict[str, Any]]:
    """The Markdown of a call's ``rich_message`` and the ``RichMessage`` JSON it becomes;
    raises :class:`_ApiError` (400) for what the fake server refuses (bench.fake_rich)."""
    rich = params.get("rich_message")
    if isinstance(rich, str):  # a form field that was not a JSON object
        raise _ApiError(400, SERVER_ERRORS["json"])
    if not isinstance(rich, dict):
        raise _ApiError(400, SERVER_ERRORS["missing"])
    sources = [name for name in ("html", "markdown", "blocks") if rich.get(name) is not None]
    if len(sources) != 1:
        raise _ApiError(400, SERVER_ERRORS["one_source"])
    markdown = rich.get("markdown")
    if not isinstance(markdown, str):
        raise _ApiError(400, SERVER_ERRORS["markdown_only"])
    try:
        parsed = parse_rich_markdown(markdown, draft=draft)
    except RichMarkdownError as exc:
        raise _ApiError(400, exc.description) from None
    received: dict[str, Any] = {"blocks": parsed.blocks}
    if rich.get("is_rtl") is True:
        received["is_rtl"] = True
    return markdown, received


def _refusal(fault: Fault | None) -> JSONResponse | None:
    """The error answer of ``fault``, if it refuses its call."""
    if fault is None or fault.status is None:
        return None
    body: dict[str, Any] = {"ok": False, "error_code": fault.status}
    if fault.status == 429:
        body["description"] = f"Too Many Requests: retry after {fault.retry_after}"
        body["parameters"] = {"retry_after": fault.retry_after}
    else:
        body["description"] = _FAULT_DESCRIPTIONS.get(fault.status, "Server Error")
    return JSONResponse(body, status_code=fault.status)


def _raise(status: int, description: str) -> Any:
    raise _ApiError(status, description)


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """The fields of a multipart/form-data body (RFC 7578): a part with a filename is an
    :class:`Upload`, any other a value (JSON-decoded when it parses, as PTB sends them).
    An upload the Bot API names by ``attach://<name>`` is put in the field naming it."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    body = BytesParser(policy=HTTP).parsebytes(head + raw)
    assert isinstance(body, EmailMessage)
    params: dict[str, Any] = {}
    uploads: dict[str, Upload] = {}
    for part in body.iter_parts():
        assert isinstance(part, EmailMessage)
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            uploads[name] = params[name] = Upload(filename, data)
            continue
        try:
            params[name] = json.loads(data)
        except json.JSONDecodeError:
            params[name] = data.decode()
    for name, value in params.items():
        if isinstance(value, str) and value.startswith("attach://"):
            params[name] = uploads.get(value.removeprefix("attach://"), value)
    return params


def _user_and_chat(
    user_id: int, chat_id: int, chat_type: str, language_code: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``from`` user and the ``chat`` of a message a test pushes."""
    user = {
        "id": user_id,
        "is_bot": False,
        "first_name": f"U{user_id}",
        "language_code": language_code,
    }
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = user["first_name"]
    else:
        chat["title"] = "Class"
    return user, chat
