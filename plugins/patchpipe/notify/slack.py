"""A notification as Slack-compatible JSON: ``{"text": ..., "blocks": [...]}`` (Block Kit).

Any webhook that takes Slack's incoming-webhook format (Slack, Mattermost, Rocket.Chat, Teams
workflows) can receive it. Text is escaped the way Slack asks (``&``, ``<``, ``>``), so ledger text
cannot form a link or a mention such as ``<!channel>``; Block Kit's length limits are respected by
cutting with an ellipsis rather than having Slack reject the whole message.
"""

from __future__ import annotations

from typing import Any

from patchpipe.notify.notification import Notification

HEADER_LIMIT = 150  # Block Kit: header text
TEXT_LIMIT = 3000  # section text, and this module's cap on the fallback text
FIELD_LIMIT = 2000  # one section field
FIELDS_PER_SECTION = 10
_KIND_MARK = {"failure": "FAILED", "rollback": "ROLLED BACK", "approval": "APPROVAL NEEDED", "summary": "SUMMARY",
              "deadline": "DEADLINE MISSED"}


def escape(text: str) -> str:
    """Slack's control characters as entities: what is left is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notification: Notification) -> dict[str, Any]:
    n = notification
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(n.title, HEADER_LIMIT)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(escape(n.summary), TEXT_LIMIT)}},
    ]
    fields = [{"type": "mrkdwn", "text": _cut(f"*{escape(label)}*\n{escape(value)}", FIELD_LIMIT)}
              for label, value in n.facts]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start:start + FIELDS_PER_SECTION]})
    if n.details:
        listed = "\n".join(f"\u2022 {escape(line)}" for line in n.details)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(listed, TEXT_LIMIT)}})
    if n.link and n.link.startswith(("http://", "https://")):
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": n.link[:3000]}]})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"patchpipe \u00b7 {_KIND_MARK[n.kind]}"}]})
    return {"text": _cut(escape(n.as_text()), TEXT_LIMIT), "blocks": blocks}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
