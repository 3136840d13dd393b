"""classbot: a Telegram bot for talking to large language models.

The process entry is :mod:`bot.__main__` (``python -m bot``, ``classbot``); settings
live in :mod:`bot.settings` and every user-facing text in :mod:`bot.texts`. The rest is
in subpackages, each of which says in its ``__init__`` what it owns:

=====================  ====================================================================
:mod:`bot.app`         wiring of the PTB Application, services, platforms, update order,
                       webhook mode, logging; the only importer of :mod:`handlers`
:mod:`bot.conversation` one turn free of Telegram's wire, failures, scopes, groups, images
:mod:`bot.reply`       one reply in one chat: the reply stream and its message chain
:mod:`bot.render`      Markdown to Telegram text + entities, closing, splitting; no I/O
:mod:`bot.scheduler`   the bot-wide flood-limit send scheduler; imports nothing of telegram
:mod:`bot.ops`         operator tools: ``check`` and ``chat``
=====================  ====================================================================

Which file does what a user sees: the table "behaviour → file" in
``docs/architecture.md``.
"""
