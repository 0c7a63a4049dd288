"""One notification, before it is laid out for a channel: a title, a sentence or two, labelled facts
and detail lines. Plain text throughout; each channel escapes it for its own markup."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("failure", "rollback", "approval", "summary", "deadline")


@dataclass(frozen=True)
class Notification:
    kind: str  # one of KINDS: channels may colour or route by it
    title: str  # one line: an email subject, a Slack header
    summary: str  # what happened, in a sentence or two
    facts: tuple[tuple[str, str], ...] = ()  # ("Image", "demo-web"), ("Stage", "promote"), ...
    details: tuple[str, ...] = ()  # further lines, e.g. one per image of a run
    link: str | None = None  # where to act or read more (the approval page, the report)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"notification kind {self.kind!r} is not one of {', '.join(KINDS)}")

    def as_text(self) -> str:
        """The whole notification as plain text: Slack's fallback, an email's text part, a log line."""
        lines = [self.title, "", self.summary]
        if self.facts:
            lines += [""] + [f"{label}: {value}" for label, value in self.facts]
        if self.details:
            lines += [""] + [f"- {line}" for line in self.details]
        if self.link:
            lines += ["", self.link]
        return "\n".join(lines)
