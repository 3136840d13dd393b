"""Every user-facing string of the bot, in English and Simplified Chinese.

The language follows the user's Telegram ``language_code``: ``zh*`` → Chinese,
anything else (or none) → English. Strings are ``str.format`` templates; in English a
count takes its noun in the format spec, ``{count:question|questions}``, and becomes
"1 question" or "2 questions" (:func:`plural_en`). Chinese nouns have no plural form.
"""

from __future__ import annotations

import string
from typing import Literal

__all__ = ["Lang", "language_of", "plural_en", "t"]

Lang = Literal["en", "zh"]

_TEXTS: dict[str, dict[Lang, str]] = {
    "start": {
        "en": (
            "Hi! I am an assistant backed by large language models.\n\n"
            "Send me a message and I will answer, streaming as I write. "
            "I remember our conversation until you send /reset.\n"
            "In groups, mention me or reply to my messages.\n\n"
            "Current model: {model}. /help lists the commands."
        ),
        "zh": (
            "你好！我是由大语言模型驱动的助手。\n\n"
            "给我发消息，我会边写边回答。"
            "我会记住我们的对话，直到你发送 /reset。\n"
            "在群组中，请 @ 我或回复我的消息。\n\n"
            "当前模型：{model}。/help 查看所有命令。"
        ),
    },
    "help": {
        "en": (
            "Commands:\n"
            "/start – what this bot is\n"
            "/help – this list\n"
            "/model – show or change the model\n"
            "/settings – display options (group admins: the chat's settings)\n"
            "/system – the instructions I follow (group admins: the chat's rules)\n"
            "/triggers – (group admins) words that make me answer without a mention\n"
            "/private_answers – (group admins) answer each question in its asker's private chat\n"
            "/reset – start a new conversation\n"
            "/stop – stop the answer being written\n"
            "/retry – answer the last message again\n"
            "/usage – your questions and tokens today and in total\n"
            "/quota – the daily quotas (group admins can lower their group's)\n"
            "/stats – (admins) usage statistics; /stats csv sends them as a file\n"
            "/shared – (group admins) one shared conversation for the group"
        ),
        "zh": (
            "命令：\n"
            "/start – 介绍这个机器人\n"
            "/help – 命令列表\n"
            "/model – 查看或切换模型\n"
            "/settings – 显示选项（群管理员：本群设置）\n"
            "/system – 我遵循的指令（群管理员：本群规则）\n"
            "/triggers –（群管理员）无需 @ 我也会回答的关键词\n"
            "/private_answers –（群管理员）在提问者的私聊中回答每个问题\n"
            "/reset – 开始新的对话\n"
            "/stop – 停止正在生成的回答\n"
            "/retry – 重新回答上一条消息\n"
            "/usage – 你今天和累计的提问次数和用量\n"
            "/quota – 每日额度（群管理员可调低本群额度）\n"
            "/stats –（管理员）用量统计；/stats csv 以文件发送\n"
            "/shared –（群管理员）全群共享一个对话"
        ),
    },
    "cmd_start": {"en": "What this bot is", "zh": "介绍这个机器人"},
    "cmd_help": {"en": "List the commands", "zh": "命令列表"},
    "cmd_model": {"en": "Show or change the model", "zh": "查看或切换模型"},
    "cmd_settings": {"en": "Display options", "zh": "显示选项"},
    "cmd_reset": {"en": "Start a new conversation", "zh": "开始新的对话"},
    "cmd_stop": {"en": "Stop the answer being written", "zh": "停止正在生成的回答"},
    "cmd_retry": {"en": "Answer the last message again", "zh": "重新回答上一条消息"},
    "cmd_usage": {
        "en": "Your questions and tokens today and in total",
        "zh": "你今天和累计的提问次数和用量",
    },
    # usage and quotas (bot.conversation.quota, handlers/reports.py); {start} and {at} are
    # local times with the zone, e.g. "04:00 Asia/Shanghai"
    "usage_today": {
        "en": "Today (since {start}) you asked {requests:question|questions} "
        "using {tokens:token|tokens}.",
        "zh": "今天（自 {start} 起）你提问了 {requests} 次，用了 {tokens} 个 token。",
    },
    "usage_total": {
        "en": "In total you asked {requests:question|questions} using {tokens:token|tokens}.",
        "zh": "累计你提问了 {requests} 次，用了 {tokens} 个 token。",
    },
    "usage_model": {
        "en": "· {model}: {requests:question|questions}, {tokens:token|tokens}",
        "zh": "· {model}：{requests} 次，{tokens} 个 token",
    },
    "usage_token_limit": {
        "en": "Your daily token quota: {limit:token|tokens}; {left} left.",
        "zh": "你的每日 token 额度：{limit} 个；还剩 {left} 个。",
    },
    "usage_chat_limit": {
        "en": "This group's daily token quota: {limit:token|tokens}; {left} left.",
        "zh": "本群的每日 token 额度：{limit} 个；还剩 {left} 个。",
    },
    "token_limit_user": {
        "en": "You have used today's quota of {limit:token|tokens}.",
        "zh": "你已用完今天 {limit} 个 token 的额度。",
    },
    "token_limit_chat": {
        "en": "This group has used today's quota of {limit:token|tokens}.",
        "zh": "本群已用完今天 {limit} 个 token 的额度。",
    },
    "ask_again": {
        "en": "You can ask again at {at}, in {hours} h {minutes} min.",
        "zh": "你可以在 {at} 之后再次提问，还有 {hours} 小时 {minutes} 分钟。",
    },
    "cmd_quota": {
        "en": "Daily quotas (group admins can lower their group's)",
        "zh": "每日额度（群管理员可调低本群额度）",
    },
    "quota_title": {
        "en": "Daily quotas (the day starts at {start}):",
        "zh": "每日额度（每天从 {start} 开始计算）：",
    },
    "quota_turns": {"en": "· questions per person: {limit}", "zh": "· 每人提问次数：{limit}"},
    "quota_user_tokens": {"en": "· tokens per person: {limit}", "zh": "· 每人 token：{limit}"},
    "quota_chat_tokens": {
        "en": "· tokens for this group: {limit} ({used:token|tokens} used today)",
        "zh": "· 本群 token：{limit}（今天已用 {used} 个）",
    },
    "quota_chat_own": {
        "en": "  set by this group's admins; the bot allows {operator}",
        "zh": "  由本群管理员设置；机器人的上限为 {operator}",
    },
    "quota_none": {"en": "no limit", "zh": "不限"},
    "quota_hint": {
        "en": "Group admins: /quota <tokens> sets a lower quota for this group, "
        "/quota off removes it.",
        "zh": "群管理员：发送 /quota <数量> 为本群设置更低的额度，发送 /quota off 取消。",
    },
    "quota_set": {
        "en": "Done: this group's daily token quota is now {limit:token|tokens}.",
        "zh": "已设置：本群每日 token 额度现为 {limit} 个。",
    },
    "quota_removed": {
        "en": "Done: this group's own quota is removed; its daily token quota is now {limit}.",
        "zh": "已取消本群自己的额度；本群每日 token 额度现为：{limit}。",
    },
    "quota_too_high": {
        "en": "The bot allows this group at most {limit:token|tokens} a day; choose that or fewer.",
        "zh": "机器人允许本群每天最多使用 {limit} 个 token；请设置不超过这个数的值。",
    },
    "quota_bad": {
        "en": "Send /quota <tokens> (a whole number above 0) to set this group's daily "
        "token quota, or /quota off to remove it.",
        "zh": "发送 /quota <数量>（大于 0 的整数）设置本群每日 token 额度，"
        "或发送 /quota off 取消。",
    },
    "cmd_stats": {"en": "(Admins) usage statistics", "zh": "（管理员）用量统计"},
    "stats_title_bot": {
        "en": "Usage of the whole bot (the day starts at {start})",
        "zh": "整个机器人的用量（每天从 {start} 开始计算）",
    },
    "stats_title_chat": {
        "en": "Usage in this group (the day starts at {start})",
        "zh": "本群的用量（每天从 {start} 开始计算）",
    },
    "stats_today": {
        "en": "Today: {users:active user|active users}, {requests:question|questions}, "
        "{tokens:token|tokens}",
        "zh": "今天：{users} 位活跃用户，{requests} 次提问，{tokens} 个 token",
    },
    "stats_week": {
        "en": "Last 7 days: {users:active user|active users}, {requests:question|questions}, "
        "{tokens:token|tokens}",
        "zh": "最近 7 天：{users} 位活跃用户，{requests} 次提问，{tokens} 个 token",
    },
    "stats_by_model": {"en": "By model (today / 7 days):", "zh": "按模型（今天 / 7 天）："},
    "stats_by_platform": {"en": "By platform (today / 7 days):", "zh": "按平台（今天 / 7 天）："},
    "stats_row": {
        "en": "· {name}: {requests_today} / {requests_week} questions, "
        "{tokens_today} / {tokens_week} tokens",
        "zh": "· {name}：{requests_today} / {requests_week} 次，"
        "{tokens_today} / {tokens_week} 个 token",
    },
    "stats_top": {"en": "Top users (7 days):", "zh": "用量最多的用户（7 天）："},
    "stats_user": {
        "en": "{rank}. {name}: {requests:question|questions}, {tokens:token|tokens}",
        "zh": "{rank}. {name}：{requests} 次，{tokens} 个 token",
    },
    "stats_unknown_user": {"en": "user {user_id}", "zh": "用户 {user_id}"},
    "stats_refused": {
        "en": "Sorry, these statistics are for the bot's operators, and in a group for its admins.",
        "zh": "抱歉，统计信息仅供机器人管理员查看；群管理员可以在本群查看本群的统计。",
    },
    "stats_csv_caption": {"en": "Usage, last 7 days", "zh": "最近 7 天的用量"},
    "usage_limit": {
        "en": "Daily limit: {limit:question|questions}; {left} left.",
        "zh": "每日上限：{limit} 次；还剩 {left} 次。",
    },
    "too_fast": {
        "en": "You are asking quickly: at most {limit:question|questions} a minute. "
        "Try again in {seconds} s.",
        "zh": "提问太快了：每分钟最多 {limit} 个问题。请 {seconds} 秒后再试。",
    },
    "daily_limit": {
        "en": "You have reached today's limit of {limit:question|questions}.",
        "zh": "你已达到今天 {limit} 次提问的上限。",
    },
    "cmd_shared": {
        "en": "Groups: one shared conversation, or one per member",
        "zh": "群组：共享一个对话，或每人一个对话",
    },
    "shared_on": {
        "en": "This group now has one shared conversation: everyone sees the same history. "
        "Send /shared again to give each member their own.",
        "zh": "本群现在共享一个对话：所有人看到相同的历史。再次发送 /shared 可恢复每人一个对话。",
    },
    "shared_off": {
        "en": "Each member of this group now has their own conversation.",
        "zh": "本群每位成员现在各自拥有独立的对话。",
    },
    "shared_admins_only": {
        "en": "Only the group's admins can change this.",
        "zh": "只有群管理员可以更改此设置。",
    },
    "shared_groups_only": {
        "en": "This command is for groups.",
        "zh": "此命令仅用于群组。",
    },
    "reset_done": {
        "en": "Done: the conversation is cleared. Your next message starts a new one.",
        "zh": "已清空对话。你的下一条消息将开始新的对话。",
    },
    "model_current": {
        "en": "Current model: {model}\nChoose another one:",
        "zh": "当前模型：{model}\n选择其他模型：",
    },
    "model_legend": {
        "en": "👁 sees images · 🧠 reasons before answering",
        "zh": "👁 可识别图片 · 🧠 回答前会思考",
    },
    "model_set": {"en": "Model set to {model}.", "zh": "已切换到模型 {model}。"},
    "model_unknown": {
        "en": "That model is no longer available. Send /model to choose again.",
        "zh": "该模型已不可用。请发送 /model 重新选择。",
    },
    "menu_too_old": {
        "en": "This menu is too old for me to change. Send {command} to open a new one.",
        "zh": "这个菜单太旧了，已无法使用。请发送 {command} 打开新的菜单。",
    },
    "not_your_menu": {
        "en": "This menu belongs to someone else. Send /model to open your own.",
        "zh": "这个菜单属于其他人。请发送 /model 打开你自己的菜单。",
    },
    "empty_message": {
        "en": "I can read text and images. Please send your question as text.",
        "zh": "我能读取文字和图片。请用文字发送你的问题。",
    },
    # what the bot does not take: unsupported message kinds, commands, buttons
    "unsupported_kind": {
        "en": "I can read text, and photos or image files when the model sees images "
        "(marked 👁 in /model). Please send your question as text.",
        "zh": "我能读取文字；当前模型可识别图片时（/model 中标有 👁）也能读取照片和图片文件。"
        "请用文字发送你的问题。",
    },
    "unknown_command": {
        "en": "Unknown command; /help lists them.",
        "zh": "未知命令；/help 查看所有命令。",
    },
    "button_unknown": {
        "en": "This button no longer works. Send /model or /settings to open a new menu.",
        "zh": "这个按钮已失效。请发送 /model 或 /settings 打开新的菜单。",
    },
    "model_already": {"en": "{model} is already selected.", "zh": "当前已是模型 {model}。"},
    "error_generic": {
        "en": "Something went wrong on my side while answering. Please try again.",
        "zh": "回答时我这边出了问题，请再试一次。",
    },
    "storage_unavailable": {
        "en": "I am temporarily unavailable (my storage is not answering). "
        "Please try again in a minute.",
        "zh": "我暂时无法使用（存储服务没有响应），请一分钟后再试。",
    },
    "error_connection": {
        "en": "I could not reach the model's service. Please try again in a minute.",
        "zh": "无法连接到模型服务，请一分钟后再试。",
    },
    "error_timeout": {
        "en": "The model took too long to answer. Please try again.",
        "zh": "模型响应超时，请再试一次。",
    },
    "error_stream": {
        "en": "The answer was cut off by the model's service. Please try again.",
        "zh": "模型服务中断了回答，请再试一次。",
    },
    "error_auth": {
        "en": "This model's service rejected the API key; the bot's operator has been told.",
        "zh": "模型服务拒绝了 API 密钥，已通知机器人管理员。",
    },
    "error_session_expired": {
        "en": "The login session for this model expired; the bot's operator has been told. "
        "Choose another model with /model meanwhile.",
        "zh": "该模型的登录会话已过期，已通知机器人管理员。你可以先用 /model 换一个模型。",
    },
    "error_permission": {
        "en": "This model's service refused access; the bot's operator has been told.",
        "zh": "模型服务拒绝访问，已通知机器人管理员。",
    },
    "error_not_found": {
        "en": "This model is not available on its service. Choose another one with /model.",
        "zh": "该模型在服务端不可用，请用 /model 换一个模型。",
    },
    "error_bad_request": {
        "en": "The model's service could not accept this request. Try rephrasing, "
        "or /reset to start over.",
        "zh": "模型服务无法接受这个请求。请换个说法，或用 /reset 重新开始。",
    },
    "error_context": {
        "en": "This conversation is too long for the model. Send /reset to start a new one.",
        "zh": "对话太长，超出了模型的上下文长度。请发送 /reset 开始新的对话。",
    },
    "error_blocked": {
        "en": "The model's service declined this request under its content rules. "
        "Please rephrase it.",
        "zh": "模型服务根据其内容规则拒绝了这个请求，请换个说法。",
    },
    "error_rate_limited": {
        "en": "The model is busy; try again in {seconds} s.",
        "zh": "模型正忙，请 {seconds} 秒后再试。",
    },
    "error_quota": {
        "en": "This model's account is out of quota; the bot's operator has been told. "
        "Choose another model with /model meanwhile.",
        "zh": "该模型的账户额度已用完，已通知机器人管理员。你可以先用 /model 换一个模型。",
    },
    "error_server": {
        "en": "The model's service is having trouble. Please try again in a minute.",
        "zh": "模型服务出现故障，请一分钟后再试。",
    },
    "older_dropped": {
        "en": "Older messages were left out to fit the model's context.",
        "zh": "为适应模型的上下文长度，较早的消息已被省略。",
    },
    "answer_cut_length": {
        "en": "The answer reached the model's length limit; ask me to continue.",
        "zh": "回答达到了模型的长度上限；可以让我继续。",
    },
    "empty_answer": {
        "en": "The model returned an empty answer; try again or /model to switch.",
        "zh": "模型返回了空回答；请再试一次，或用 /model 换一个模型。",
    },
    "waiting": {"en": "Waiting for the model… {seconds} s", "zh": "正在等待模型… {seconds} 秒"},
    "thinking": {"en": "Thinking… {seconds}s", "zh": "思考中… {seconds} 秒"},
    "thought_for": {"en": "Thought for {seconds}s", "zh": "已思考 {seconds} 秒"},
    "mark_stopped": {"en": "⏹ stopped", "zh": "⏹ 已停止"},
    "mark_interrupted": {
        "en": "⚠️ interrupted: the connection to the model was lost",
        "zh": "⚠️ 已中断：与模型的连接丢失",
    },
    "mark_restart": {
        "en": "⚠️ interrupted by a restart — send /retry",
        "zh": "⚠️ 因重启而中断——发送 /retry 重新回答",
    },
    "restart_notice": {
        "en": "My previous answer was interrupted by a restart — send /retry",
        "zh": "我上一条回答因重启而中断——发送 /retry 重新回答",
    },
    "mark_retrying": {
        "en": "⚠️ connection lost, starting the answer again…",
        "zh": "⚠️ 连接丢失，正在重新生成回答…",
    },
    "stop_nothing": {"en": "Nothing is being written right now.", "zh": "当前没有正在生成的回答。"},
    "retry_nothing": {"en": "There is no answer to redo yet.", "zh": "还没有可以重新生成的回答。"},
    "busy": {
        "en": "I am still answering your previous message; this one comes next.",
        "zh": "我还在回答你的上一条消息，这条消息稍后处理。",
    },
    "not_allowed": {
        "en": "This bot is private. Send your id {user_id} to its operator to be added.",
        "zh": "这是一个私有机器人。请把你的 ID {user_id} 发给它的管理员，以便添加你。",
    },
    "chat_not_allowed": {
        "en": (
            "This bot is private and does not serve this chat, so it is leaving. "
            "To have it here, send this chat's id {chat_id} to its operator, then add it again."
        ),
        "zh": (
            "这是一个私有机器人，不在本群提供服务，现在退出。"
            "如需在本群使用，请把本群的 ID {chat_id} 发给它的管理员，然后重新添加它。"
        ),
    },
    "settings_title": {"en": "Display options:", "zh": "显示选项："},
    "settings_reasoning_show": {"en": "Reasoning: shown", "zh": "思考过程：显示"},
    "settings_reasoning_hide": {"en": "Reasoning: hidden", "zh": "思考过程：隐藏"},
    "settings_saved": {"en": "Saved.", "zh": "已保存。"},
    # the answer format (bot/conversation/formats.py): a /settings choice, a group's default
    "settings_format_classic": {
        "en": "Classic — works everywhere",
        "zh": "经典——在所有 Telegram 应用中都能显示",
    },
    "settings_format_rich": {
        "en": "Rich — tables and formulas; needs Telegram for Android, iOS or Desktop",
        "zh": "富文本——表格和公式；需要 Android、iOS 或桌面版 Telegram",
    },
    "format_classic": {"en": "Classic", "zh": "经典"},
    "format_rich": {"en": "Rich", "zh": "富文本"},
    "rich_hint": {
        "en": "💡 This answer has a table or a formula: choose Rich in /settings to see them "
        "laid out (Telegram for Android, iOS or Desktop).",
        "zh": "💡 这条回答含有表格或公式：在 /settings 中选择“富文本”即可正常显示"
        "（需要 Android、iOS 或桌面版 Telegram）。",
    },
    "chat_format_button": {
        "en": "📝 Default format: {format}",
        "zh": "📝 默认格式：{format}",
    },
    "image_too_large": {
        "en": "That file is too large for me to read (limit 20 MB).",
        "zh": "文件太大，我无法读取（上限 20 MB）。",
    },
    "image_needs_vision": {
        "en": "The current model ({model}) cannot see images. Choose a model marked 👁 "
        "with /model, then send the image again.",
        "zh": "当前模型（{model}）无法识别图片。"
        "请用 /model 选择带 👁 标记的模型，然后重新发送图片。",
    },
    "image_unreadable": {
        "en": "I could not read that image. Please send it as a photo, or as a JPEG or PNG file.",
        "zh": "我无法读取这张图片。请以照片形式发送，或发送 JPEG、PNG 文件。",
    },
    "image_prompt": {"en": "Describe this image.", "zh": "请描述这张图片。"},
    "images_prompt": {"en": "Describe these images.", "zh": "请描述这些图片。"},
    "quoted_prompt": {
        "en": "Explain the quoted message.",
        "zh": "请解释引用的消息。",
    },
    # chat settings by a chat's admins, and each user's own prompt (handlers/chat_admin.py)
    "cmd_system": {
        "en": "The instructions I follow (group admins: the chat's)",
        "zh": "我遵循的指令（群管理员：本群的指令）",
    },
    "cmd_triggers": {
        "en": "Groups: words that make me answer without a mention",
        "zh": "群组：无需 @ 我也会回答的关键词",
    },
    "chat_admins_only": {
        "en": "Sorry, only this chat's admins can change its settings. "
        "To give me your own instructions, send /system to me in a private chat.",
        "zh": "抱歉，只有本群管理员可以更改本群的设置。"
        "如需设置你自己的指令，请在与我的私聊中发送 /system。",
    },
    "system_show_chat": {
        "en": "This chat's prompt (every answer here follows it; /system clear removes it):",
        "zh": "本群的提示词（这里的每个回答都遵循它；/system clear 可删除）：",
    },
    "system_show_user": {
        "en": "Your own prompt (my answers to you follow it; /system clear removes it):",
        "zh": "你自己的提示词（我给你的回答都遵循它；/system clear 可删除）：",
    },
    "system_none_chat": {
        "en": "This chat has no prompt. Set one with /system followed by the rules, e.g. "
        '"/system Explain step by step; never hand out full homework solutions." '
        "(up to {limit:character|characters}, several lines allowed).",
        "zh": "本群还没有提示词。发送 /system 加上规则即可设置，例如"
        "“/system 请逐步讲解；不要直接给出作业的完整答案。”（最多 {limit} 个字符，可以多行）。",
    },
    "system_none_user": {
        "en": "You have no prompt of your own. Set one with /system followed by your "
        'instructions, e.g. "/system Answer briefly, in English." '
        "(up to {limit:character|characters}, several lines allowed).",
        "zh": "你还没有自己的提示词。发送 /system 加上你的指令即可设置，例如"
        "“/system 请简短回答。”（最多 {limit} 个字符，可以多行）。",
    },
    "system_too_long": {
        "en": "That prompt has {length:character|characters}; the limit is {limit}. "
        "Shorten it and send it again (nothing was changed).",
        "zh": "这个提示词有 {length} 个字符，上限为 {limit}。请缩短后重新发送（未做任何更改）。",
    },
    "system_set_chat": {
        "en": "Saved: this chat's prompt ({length:character|characters}). "
        "Every answer in this chat follows it; members' own prompts cannot override it.",
        "zh": "已保存本群的提示词（{length} 个字符）。"
        "本群的每个回答都会遵循它；成员自己的提示词无法覆盖它。",
    },
    "system_set_user": {
        "en": "Saved: your own prompt ({length:character|characters}). My answers to you follow "
        "it; in groups, the group's own rules come first.",
        "zh": "已保存你自己的提示词（{length} 个字符）。"
        "我给你的回答都会遵循它；在群组中，以群规则为准。",
    },
    "system_cleared_chat": {
        "en": "Removed: this chat has no prompt now.",
        "zh": "已删除：本群现在没有提示词。",
    },
    "system_cleared_user": {
        "en": "Removed: you have no prompt of your own now.",
        "zh": "已删除：你现在没有自己的提示词。",
    },
    "privacy_hint": {
        "en": "Note: I see only messages addressed to me here. Make me an admin, or turn off "
        "my privacy mode (@BotFather, /setprivacy), so I can see the others.",
        "zh": "注意：我在这里只能看到发给我的消息。请把我设为管理员，"
        "或关闭我的隐私模式（@BotFather，/setprivacy），我才能看到其他消息。",
    },
    "chat_none": {"en": "none", "zh": "无"},
    "triggers_list": {
        "en": "Trigger words (a message containing one is answered without a mention): "
        "{words}\n/triggers add <words>, /triggers remove <words> (separate them with commas), "
        "/triggers clear.",
        "zh": "触发关键词（包含其中之一的消息无需 @ 我也会得到回答）：{words}\n"
        "/triggers add <关键词>，/triggers remove <关键词>（用逗号分隔），/triggers clear。",
    },
    "triggers_usage": {
        "en": "Use /triggers to list the trigger words, /triggers add <words> or "
        "/triggers remove <words> (separated by commas), or /triggers clear.",
        "zh": "用法：/triggers 查看触发关键词，/triggers add <关键词> 或 "
        "/triggers remove <关键词>（用逗号分隔），/triggers clear 清除全部。",
    },
    "triggers_too_many": {
        "en": "A chat can have at most {limit} trigger words (nothing was changed).",
        "zh": "每个群最多 {limit} 个触发关键词（未做任何更改）。",
    },
    "triggers_too_long": {
        "en": "A trigger word can have at most {limit:character|characters} (nothing changed).",
        "zh": "每个触发关键词最多 {limit} 个字符（未做任何更改）。",
    },
    "triggers_saved": {
        "en": "Saved. Trigger words: {words}",
        "zh": "已保存。触发关键词：{words}",
    },
    "chat_menu": {
        "en": "Settings of this chat (its admins only):\n"
        "• Prompt (/system): {prompt}\n"
        "• Models members may choose: {models}\n"
        "• Default model: {default}\n"
        "• Trigger words (/triggers): {triggers}\n"
        "• Comments under channel posts: {comments}\n"
        "• Answer format, for members who chose none: {format}",
        "zh": "本群设置（仅管理员）：\n"
        "• 提示词（/system）：{prompt}\n"
        "• 成员可选的模型：{models}\n"
        "• 默认模型：{default}\n"
        "• 触发关键词（/triggers）：{triggers}\n"
        "• 频道帖子下的评论：{comments}\n"
        "• 回答格式（成员未自选时）：{format}",
    },
    "chat_models_all": {"en": "all enabled models", "zh": "所有已启用的模型"},
    "chat_default_bot": {"en": "the bot's default ({model})", "zh": "机器人的默认模型（{model}）"},
    "chat_comments_all": {
        "en": "every one answered",
        "zh": "每条都回答",
    },
    "chat_comments_some": {
        "en": "answered when they mention me or reply to me",
        "zh": "仅在 @ 我或回复我时回答",
    },
    "chat_comments_button_on": {
        "en": "💬 Comments: answering all",
        "zh": "💬 评论：全部回答",
    },
    "chat_comments_button_off": {
        "en": "💬 Comments: only when mentioned",
        "zh": "💬 评论：仅在 @ 我时回答",
    },
    "chat_triggers_clear": {"en": "🗑 Clear the trigger words", "zh": "🗑 清除触发关键词"},
    "chat_personal_open": {"en": "👤 My own display options", "zh": "👤 我自己的显示选项"},
    "chat_models_open": {"en": "⚙️ Models for this chat…", "zh": "⚙️ 本群的模型…"},
    "chat_models_back": {"en": "« My own model", "zh": "« 我自己的模型"},
    "chat_models_title": {
        "en": "Models for this chat: ☑ members may choose it, ⭐ the chat's default. "
        "A member's choice that is no longer allowed falls back to the default.",
        "zh": "本群的模型：☑ 成员可以选择，⭐ 本群默认模型。"
        "成员已选但不再允许的模型会改用默认模型。",
    },
    "chat_model_is_default": {
        "en": "{model} is this chat's default model; choose another default first.",
        "zh": "{model} 是本群的默认模型；请先选择其他默认模型。",
    },
    "chat_model_last": {
        "en": "At least one model must stay allowed.",
        "zh": "至少要保留一个允许的模型。",
    },
    "chat_default_set": {
        "en": "{model} is now this chat's default model.",
        "zh": "{model} 现在是本群的默认模型。",
    },
    "chat_default_unset": {
        "en": "This chat now uses the bot's default model.",
        "zh": "本群现在使用机器人的默认模型。",
    },
    "model_not_allowed": {
        "en": "That model is not allowed in this chat. Choose one of the models shown.",
        "zh": "本群不允许使用该模型。请从列出的模型中选择。",
    },
    # answers in private (bot.conversation.private_answers, handlers/private_answers.py)
    "cmd_private_answers": {
        "en": "(Group admins) answer in each student's private chat",
        "zh": "（群管理员）在每位同学的私聊中回答",
    },
    "private_answers_on": {
        "en": "Done: questions here are now answered in each student's private chat; the "
        "group sees one short line per question. /private_answers off answers here again.",
        "zh": "已设置：本群的问题现在会在每位同学的私聊中回答，群里每个问题只显示一行提示。"
        "发送 /private_answers off 恢复在群里回答。",
    },
    "private_answers_off": {
        "en": "Done: questions here are answered in the group again.",
        "zh": "已设置：本群的问题恢复在群里回答。",
    },
    "private_answers_state_on": {
        "en": "Questions here are answered in each student's private chat. "
        "/private_answers off answers them in the group.",
        "zh": "本群的问题会在每位同学的私聊中回答。发送 /private_answers off 改为在群里回答。",
    },
    "private_answers_state_off": {
        "en": "Questions here are answered in the group. /private_answers on answers each "
        "student in their private chat instead (for busy classes: classmates then do not "
        "see the answers).",
        "zh": "本群的问题在群里回答。发送 /private_answers on 改为在每位同学的私聊中回答"
        "（适合提问很多的班级；同学们将看不到彼此的回答）。",
    },
    "private_answered": {
        "en": "📬 Answered you in private.",
        "zh": "📬 已在私聊中回答你。",
    },
    "private_start_needed": {
        "en": "📬 Start me in private to get your answer: press the button, then Start.",
        "zh": "📬 请先在私聊中启动我以获取回答：点击下方按钮，然后点击“开始”。",
    },
    "private_start_button": {"en": "Get my answer in private", "zh": "在私聊中获取回答"},
    "private_question_header": {
        "en": "Your question in {chat}:",
        "zh": "你在「{chat}」中的提问：",
    },
    "private_link_not_yours": {
        "en": "This link was made for another student's question. Ask your own in the group, "
        "or here.",
        "zh": "这个链接属于另一位同学的提问。请在群里或在这里提出你自己的问题。",
    },
    "private_link_gone": {
        "en": "That question was already answered, or waited too long (24 hours). "
        "Ask it again in the group.",
        "zh": "这个问题已经回答过了，或等待时间过长（24 小时）。请在群里重新提问。",
    },
}


def language_of(language_code: str | None) -> Lang:
    """Map a Telegram ``language_code`` (IETF tag such as ``zh-hans``) to a catalogue language."""
    return "zh" if language_code and language_code.lower().startswith("zh") else "en"


def plural_en(count: int, one: str, other: str) -> str:
    """``count`` and its English noun: ``1 question``, ``0 questions``, ``2 questions``.

    English integers take the singular for exactly 1 only (CLDR plural rules, ``en``:
    "one" is ``i = 1 and v = 0``; https://www.unicode.org/cldr/charts/latest/supplemental/language_plural_rules.html).
    """
    return f"{count} {one if count == 1 else other}"


class _Formatter(string.Formatter):
    """``str.format`` plus the counted-noun spec ``{count:one|other}`` (:func:`plural_en`)."""

    def format_field(self, value: object, format_spec: str) -> str:
        if "|" in format_spec:
            if not isinstance(value, int):
                raise TypeError(f"a counted noun needs an int count, not {value!r}")
            one, other = format_spec.split("|")
            return plural_en(value, one, other)
        return str(super().format_field(value, format_spec))


_FORMATTER = _Formatter()


def t(key: str, lang: Lang, /, **values: object) -> str:
    """Return the text ``key`` in ``lang``, formatted with ``values``.

    Raises ``KeyError`` for an unknown key or a missing value (a programming error,
    caught by tests), ``TypeError`` for a counted noun whose value is not an ``int``.
    """
    template = _TEXTS[key][lang]
    return _FORMATTER.format(template, **values) if values else template
