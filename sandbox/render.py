"""HTML and JSON bodies of the platform, with listing pages cached as bytes.

A listing page is a pure function of ``(domain, page, listing version, growth day)``, so its
JSON body and its HTML (minus the small per-account header) are rendered once and served from an
LRU cache; the request path only joins bytes. That keeps the sandbox far faster than any crawl.

HTML contract (what a site adapter relies on): every full page ends its ``<body>`` with
``<footer id="end-of-page"></footer>`` (a truncated page lacks it); errors are
``<div class="error" data-code="E_…">``, the captcha interstitial ``<div id="captcha"
data-code="E_CAPTCHA">`` (with ``captcha_solvable`` also ``data-challenge-id="…"`` and, inside,
``span.question`` holding the question, e.g. ``3 + 4``, in a form posting ``challenge_id`` and
``answer`` to ``/captcha``); each row's exact nickname is in ``td.nickname[data-value]`` (newlines
and tabs as character references) and is also the cell's whole text.
"""
from __future__ import annotations

import functools
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sandbox.captcha import Challenge
from sandbox.listing import Listing

MESSAGES = {
    "E_LOGIN_REQUIRED": "请先登录",
    "E_UNKNOWN_DOMAIN": "未知的领域",
    "E_BAD_PAGE": "页码无效",
    "E_RATE_LIMITED": "访问过于频繁，请稍后再试",
    "E_DAILY_CAP": "今日访问次数已达上限",
    "E_BANNED": "账号已被封禁",
    "E_CAPTCHA": "请完成安全验证",
    "E_CAPTCHA_WRONG": "验证码错误",
    "E_SERVER": "服务器繁忙，请稍后再试",
    "E_CSRF": "页面已过期，请刷新后重新登录",
    "E_BAD_CREDENTIALS": "用户名或密码错误",
}
FOOTER = '<footer id="end-of-page"></footer>'
_HEADINGS = ("昵称", "粉丝", "平均点赞", "地区", "性别", "标签", "联系方式", "报价", "主页")
_THEAD = "<thead><tr>" + "".join(f"<th>{h}</th>" for h in _HEADINGS) + "</tr></thead>"
_ATTR_EXTRA = str.maketrans({"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})
_APP_JS = (Path(__file__).with_name("app_shell.js")).read_text(encoding="utf-8")


def text(value: str) -> str:
    """Escape for element content."""
    return html.escape(value, quote=False)


def attr(value: str) -> str:
    """Escape for a double-quoted attribute; whitespace controls become character references
    so that no parser (libxml2 included) normalises them away."""
    return html.escape(value, quote=True).translate(_ATTR_EXTRA)


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_error(code: str, **extra: Any) -> bytes:
    return json_bytes({"error": {"code": code, "message": MESSAGES.get(code, code)}, **extra})


def whoami(username: str | None) -> str:
    if username is None:
        return ""
    return (f'<span id="whoami" data-username="{attr(username)}">{text(username)}</span>'
            '<a class="logout" href="/logout">退出</a>')


def _document_parts(title: str, main: str, script: str = "") -> tuple[str, str]:
    """A full page split where the per-account header goes."""
    head = ('<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
            f'<title>{text(title)}</title></head>\n<body>\n<header id="top">')
    tail = f'</header>\n<main id="app">{main}</main>\n{script}{FOOTER}\n</body></html>\n'
    return head, tail


def _document(title: str, main: str, user: str | None = None, script: str = "") -> str:
    head, tail = _document_parts(title, main, script)
    return head + whoami(user) + tail


def page(title: str, main: str, user: str | None = None) -> bytes:
    return _document(title, main, user).encode("utf-8")


def error_page(code: str, user: str | None = None) -> bytes:
    message = MESSAGES.get(code, code)
    return page(message, f'<div class="error" data-code="{code}">{text(message)}</div>', user)


def captcha_page(user: str | None, challenge: Challenge | None = None) -> bytes:
    """The interstitial a crawler must recognise. Without a challenge it cannot be solved, only
    retried later; with one (``captcha_solvable``) it shows the question and a form posting
    ``challenge_id`` and ``answer`` to ``/captcha``."""
    if challenge is None:
        main = f'<div id="captcha" data-code="E_CAPTCHA">{MESSAGES["E_CAPTCHA"]}</div>'
        return page("安全验证", main, user)
    cid = attr(challenge.id)
    main = (
        f'<div id="captcha" data-code="E_CAPTCHA" data-challenge-id="{cid}">'
        f'{MESSAGES["E_CAPTCHA"]}<form id="captcha-form" method="post" action="/captcha">'
        f'<input type="hidden" name="challenge_id" value="{cid}">'
        f'<label><span class="question">{text(challenge.question)}</span> = '
        '<input type="text" name="answer" inputmode="numeric"></label>'
        '<button type="submit">提交</button></form></div>'
    )
    return page("安全验证", main, user)


def login_page(csrf_token: str, error_code: str | None = None,
               next_path: str | None = None) -> bytes:
    error = ""
    if error_code:
        error = f'<p class="error" data-code="{error_code}">{text(MESSAGES[error_code])}</p>'
    hidden_next = ""
    if next_path:
        hidden_next = f'<input type="hidden" name="next" value="{attr(next_path)}">'
    main = (
        f"<h1>登录达人广场</h1>{error}"
        '<form id="login" method="post" action="/login">'
        f'<input type="hidden" name="csrf_token" value="{attr(csrf_token)}">{hidden_next}'
        '<label>用户名 <input type="text" name="username" value=""></label>'
        '<label>密码 <input type="password" name="password" value=""></label>'
        '<button type="submit">登录</button></form>'
    )
    return page("登录", main)


def domain_index(domains: tuple[str, ...], user: str) -> bytes:
    items = "".join(
        f'<li><a class="domain" data-domain="{attr(d)}" href="/square?domain={quote(d, safe="")}'
        f'&amp;page=1">{text(d)}</a></li>'
        for d in domains
    )
    return page("达人广场", f'<ul id="domains">{items}</ul>', user)


def app_shell(user: str) -> bytes:
    main = '<p class="loading">加载中…</p>'
    return _document("达人广场", main, user, f"<script>\n{_APP_JS}</script>\n").encode("utf-8")


def row_html(row: dict[str, Any]) -> str:
    nickname = row["nickname"]
    tags = "".join(f'<span class="tag">{text(t)}</span>' for t in row["tags"])
    wechat = row["contact"]["wechat"] or ""
    email = row["contact"]["email"] or ""
    return (
        f'<tr class="influencer" data-uid="{attr(row["uid"])}">'
        f'<td class="nickname" data-value="{attr(nickname)}">{text(nickname)}</td>'
        f'<td class="fans">{row["fans"]}</td>'
        f'<td class="avg-likes">{row["avg_likes"]}</td>'
        f'<td class="region">{text(row["region"])}</td>'
        f'<td class="gender">{text(row["gender"])}</td>'
        f'<td class="tags">{tags}</td>'
        f'<td class="contact"><span class="wechat">{text(wechat)}</span>'
        f'<span class="email">{text(email)}</span></td>'
        f'<td class="price">{row["price"]:.2f}</td>'
        f'<td class="links"><a class="profile" href="{attr(row["profile_url"])}">主页</a></td>'
        "</tr>"
    )


def listing_main(domain: str, page_no: int, total: int, total_pages: int,
                 rows: list[dict[str, Any]], base_path: str = "/square") -> str:
    """The ``#app`` content of a listing page; app_shell.js builds the same DOM."""
    def href(p: int) -> str:
        return attr(f"{base_path}?domain={quote(domain, safe='')}&page={p}")

    nav = ""
    if page_no > 1:
        nav += f'<a class="prev" href="{href(page_no - 1)}">上一页</a>'
    if page_no < total_pages:
        nav += f'<a class="next" href="{href(page_no + 1)}">下一页</a>'
    return (
        f'<h1 id="domain" data-domain="{attr(domain)}">'
        f"{text(domain)} · 第 {page_no} / {total_pages} 页</h1>"
        f'<table id="influencers">{_THEAD}<tbody>{"".join(row_html(r) for r in rows)}'
        "</tbody></table>"
        f'<div id="pagination" data-page="{page_no}" data-total-pages="{total_pages}" '
        f'data-total="{total}">{nav}</div>'
    )


@dataclass(frozen=True)
class HtmlListing:
    """A cached listing page split around the per-account header."""

    head: bytes
    tail: bytes
    footer_at: int  # offset of the footer inside ``tail``

    def body(self, user_header: bytes) -> tuple[bytes, int]:
        """The full body and the footer's offset in it."""
        return (self.head + user_header + self.tail,
                len(self.head) + len(user_header) + self.footer_at)


class Renderer:
    """Listing bodies cached by ``(domain, page, version, day)``; other pages are cheap to build.

    ``day`` is the growth day (``Knobs.growth_day``): part of the key, so changing it at runtime
    never serves a stale day's fans.
    """

    def __init__(self, listing: Listing, cache_size: int = 4096) -> None:
        self._listing = listing
        self.json_listing = functools.lru_cache(maxsize=cache_size)(self._json_listing)
        self.html_listing = functools.lru_cache(maxsize=cache_size)(self._html_listing)
        self.user_header = functools.lru_cache(maxsize=1024)(self._user_header)

    def _json_listing(self, domain: str, page_no: int, version: int, day: int = 0) -> bytes:
        listing = self._listing
        total_pages = listing.total_pages(domain, version)
        return json_bytes({
            "domain": domain,
            "page": page_no,
            "page_size": listing.page_size,
            "total_pages": total_pages,
            "total": listing.total(domain, version),
            "has_more": page_no < total_pages,
            "items": listing.rows(domain, page_no, version, day),
        })

    def _html_listing(self, domain: str, page_no: int, version: int,
                      day: int = 0) -> HtmlListing:
        listing = self._listing
        main = listing_main(domain, page_no, listing.total(domain, version),
                            listing.total_pages(domain, version),
                            listing.rows(domain, page_no, version, day))
        head, tail = _document_parts(f"达人广场 · {domain} · 第{page_no}页", main)
        head_b, tail_b = head.encode("utf-8"), tail.encode("utf-8")
        return HtmlListing(head_b, tail_b, tail_b.rindex(FOOTER.encode("utf-8")))

    @staticmethod
    def _user_header(username: str) -> bytes:
        return whoami(username).encode("utf-8")
