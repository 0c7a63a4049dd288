"""A notification as an email: a one-line subject and a small HTML body, everything escaped.

The subject is folded to one line (a newline in a header would start a new header) and cut to a
readable length; the body escapes every value with ``html.escape``, and only an http(s) link becomes
an anchor.
"""

from __future__ import annotations

from html import escape

from patchpipe.notify.notification import Notification

SUBJECT_LIMIT = 200


def email_subject(notification: Notification) -> str:
    subject = " ".join(notification.title.split())
    return subject if len(subject) <= SUBJECT_LIMIT else subject[: SUBJECT_LIMIT - 1] + "\u2026"


def email_html(notification: Notification) -> str:
    n = notification
    parts = [f"<h2>{escape(n.title)}</h2>", f"<p>{escape(n.summary)}</p>"]
    if n.facts:
        rows = "".join(f"<tr><th align=\"left\">{escape(label)}</th><td><code>{escape(value)}</code></td></tr>"
                       for label, value in n.facts)
        parts.append(f"<table>{rows}</table>")
    if n.details:
        parts.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in n.details) + "</ul>")
    if n.link:
        if n.link.startswith(("http://", "https://")):
            parts.append(f"<p><a href=\"{escape(n.link)}\">{escape(n.link)}</a></p>")
        else:
            parts.append(f"<p>{escape(n.link)}</p>")
    return "<html><body>" + "\n".join(parts) + "</body></html>"
