"""The reference platform's adapter (``python -m sandbox``), spoken to over HTTP only.

Login: ``GET /login`` gives form ``#login`` with a hidden ``csrf_token`` and a ``csrftoken``
cookie; ``POST /login`` answers 302 with a ``sid`` cookie, 401 ``E_BAD_CREDENTIALS`` or 403
``E_BANNED``/``E_CSRF``. Listings: ``/api/v1/influencers`` (json), ``/square`` (html, ends with
``footer#end-of-page``), ``/app/square`` (js: rows appear in ``#app`` and ``#rendered`` is added
once the script is done). Errors carry an ``E_*`` code in JSON (``error.code``) or in a
``data-code`` attribute.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from scrapy import FormRequest, Request
from scrapy.http import Response, TextResponse

from influencers.sites.base import (
    ListingPage,
    MalformedPage,
    Outcome,
    SiteAdapter,
    Verdict,
    parse_retry_after,
)
from influencers.sites.jsonbody import json_body

_CODE_OUTCOMES = {
    "E_LOGIN_REQUIRED": Outcome.LOGIN_REQUIRED,
    "E_SESSION_EXPIRED": Outcome.LOGIN_REQUIRED,
    "E_CSRF": Outcome.LOGIN_REQUIRED,
    "E_BAD_CREDENTIALS": Outcome.BAD_CREDENTIALS,
    "E_RATE_LIMITED": Outcome.RATE_LIMITED,
    "E_DAILY_CAP": Outcome.DAILY_CAP,
    "E_BANNED": Outcome.BANNED,
    "E_CAPTCHA": Outcome.CAPTCHA,
    "E_UNKNOWN_DOMAIN": Outcome.UNKNOWN_DOMAIN,
    "E_MALFORMED": Outcome.MALFORMED,  # the JS page's script could not parse the API's answer
    "E_SERVER": Outcome.SERVER_ERROR,
    "E_NETWORK": Outcome.SERVER_ERROR,
}
_ROW = "table#influencers tbody tr.influencer"
JS_READY_SELECTOR = "#rendered, #captcha, form#login"


class SandboxAdapter(SiteAdapter):
    name = "sandbox"
    render_modes = ("json", "html", "js")
    default_render = "json"

    # -- login --------------------------------------------------------------------------------

    def login_form_request(self) -> Request:
        return Request(self.url("/login"), dont_filter=True)

    def login_submit_request(self, username: str, password: str, form: Response | None) -> Request:
        if form is None or not isinstance(form, TextResponse):
            raise MalformedPage("the login form did not arrive")
        token = form.css("form#login input[name=csrf_token]::attr(value)").get()
        if not token:
            raise MalformedPage("the login form has no csrf_token")
        return FormRequest(
            self.url("/login"),
            formdata={"username": username, "password": password, "csrf_token": token},
            dont_filter=True,
        )

    def check_login(self, response: Response) -> Verdict:
        if response.status in (301, 302, 303, 307, 308):
            location = response.headers.get(b"Location", b"").decode("latin-1")
            if urlsplit(location).path.rstrip("/") == "/login":
                return Verdict(Outcome.BAD_CREDENTIALS, message="login redirected back to the form")
            if not self.session_cookies(response):
                return Verdict(Outcome.SERVER_ERROR, message="login set no session cookie")
            return Verdict(Outcome.OK)
        verdict = self.classify(response)
        if verdict.ok:  # a 200 page: the form again, so no session
            return Verdict(Outcome.BAD_CREDENTIALS, message="login answered with a page, not a redirect")
        return verdict

    # -- listings -----------------------------------------------------------------------------

    def listing_request(self, domain: str, page: int, render: str, cursor: str | None = None) -> Request:
        render = self.check_render(render)
        query = urlencode({"domain": domain, "page": page})
        if render == "json":
            return Request(self.url(f"/api/v1/influencers?{query}"), headers={"Accept": "application/json"})
        if render == "html":
            return Request(self.url(f"/square?{query}"))
        from scrapy_playwright.page import PageMethod

        return Request(
            self.url(f"/app/square?{query}"),
            meta={
                "playwright": True,
                "playwright_page_methods": [PageMethod("wait_for_selector", JS_READY_SELECTOR, state="attached", timeout=20_000)],
            },
        )

    def classify(self, response: Response) -> Verdict:
        status = response.status
        if status in (301, 302, 303, 307, 308):
            location = response.headers.get(b"Location", b"").decode("latin-1")
            if urlsplit(location).path.rstrip("/") == "/login":
                return Verdict(Outcome.LOGIN_REQUIRED, message="redirected to the login form")
            return Verdict(Outcome.SERVER_ERROR, message=f"unexpected redirect to {location[:100]}")
        code, message = self._error_code(response)
        if not code and urlsplit(response.url).path.rstrip("/") == "/login":  # a browser followed the redirect
            return Verdict(Outcome.LOGIN_REQUIRED, message="landed on the login form")
        if status == 429:
            retry_after = parse_retry_after(response.headers.get(b"Retry-After"), default=1.0)
            return Verdict(Outcome.RATE_LIMITED, code or "E_RATE_LIMITED", message, retry_after)
        if code in _CODE_OUTCOMES:
            outcome = _CODE_OUTCOMES[code]
            retry_after = None
            if outcome is Outcome.RATE_LIMITED:
                retry_after = parse_retry_after(response.headers.get(b"Retry-After"), default=1.0)
            return Verdict(outcome, code, message, retry_after)
        if status == 401:
            return Verdict(Outcome.LOGIN_REQUIRED, code, message)
        if code:  # an error code this adapter does not know: fetch the page again
            return Verdict(Outcome.SERVER_ERROR, code, message or f"HTTP {status}")
        if status >= 500:
            return Verdict(Outcome.SERVER_ERROR, code, message or f"HTTP {status}")
        if status != 200:
            return Verdict(Outcome.SERVER_ERROR, code, message or f"unexpected HTTP {status}")
        if not self._is_whole(response):
            return Verdict(Outcome.MALFORMED, message="the page is incomplete")
        return Verdict(Outcome.OK)

    def parse_listing(self, response: Response, page: int) -> ListingPage:
        if self._is_json(response):
            return self._parse_json(response, page)
        return self._parse_html(response, page)

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _is_json(response: Response) -> bool:
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
        return "json" in content_type or response.body[:1] in (b"{", b"[")

    @staticmethod
    def _is_js(response: Response) -> bool:
        return urlsplit(response.url).path.startswith("/app/")

    def _error_code(self, response: Response) -> tuple[str | None, str]:
        """The platform's ``E_*`` code and message, from a JSON error or a ``data-code``."""
        if self._is_json(response):
            try:
                data = json_body(response)
            except ValueError:
                return None, ""
            error = data.get("error") if isinstance(data, dict) else None
            if isinstance(error, dict):
                return _text(error.get("code")), _text(error.get("message"))[:200]
            if isinstance(data, dict) and data.get("captcha"):
                return "E_CAPTCHA", ""
            return None, ""
        if not isinstance(response, TextResponse):
            return None, ""
        captcha = response.css("#captcha")
        if captcha:
            return captcha.attrib.get("data-code") or "E_CAPTCHA", ""
        node = response.css("[data-code]")
        if not node or response.css(_ROW):
            return None, ""
        message = " ".join(t.strip() for t in node[0].css("::text").getall() if t.strip())
        return node[0].attrib.get("data-code"), message[:200]

    def _is_whole(self, response: Response) -> bool:
        if self._is_json(response):
            try:
                data = json_body(response)
            except ValueError:
                return False
            return isinstance(data, dict) and isinstance(data.get("items"), list)
        if not isinstance(response, TextResponse):
            return False
        if self._is_js(response):
            return bool(response.css("#rendered"))
        return bool(response.css("footer#end-of-page"))

    def _parse_json(self, response: Response, page: int) -> ListingPage:
        try:
            data = json_body(response)
        except ValueError as exc:
            raise MalformedPage(f"not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise MalformedPage("no items list")
        rows = [row for row in data["items"] if isinstance(row, dict)]
        total_pages = _int(data.get("total_pages"))
        has_more = data.get("has_more")
        if not isinstance(has_more, bool):
            has_more = total_pages is not None and page < total_pages
        return ListingPage(page=_int(data.get("page")) or page, rows=rows, has_more=has_more, total_pages=total_pages)

    def _parse_html(self, response: Response, page: int) -> ListingPage:
        if not isinstance(response, TextResponse):
            raise MalformedPage("not a text page")
        if self._is_js(response):
            if not response.css("#rendered"):
                raise MalformedPage("the script did not finish rendering")
        elif not response.css("footer#end-of-page"):
            raise MalformedPage("the page is cut short (no end-of-page footer)")
        domain = response.css("#domain::attr(data-domain)").get()
        rows = [self._html_row(tr, domain) for tr in response.css(_ROW)]
        if self._is_js(response):
            expected = _int(response.css("#rendered::attr(data-count)").get())
            if expected is not None and expected != len(rows):
                raise MalformedPage(f"rendered {len(rows)} rows, the script announced {expected}")
        pagination = response.css("#pagination")
        total_pages = _int(pagination.attrib.get("data-total-pages")) if pagination else None
        current = _int(pagination.attrib.get("data-page")) if pagination else None
        has_more = bool(response.css("a.next"))
        return ListingPage(page=current or page, rows=rows, has_more=has_more, total_pages=total_pages)

    @staticmethod
    def _html_row(tr: Any, domain: str | None) -> dict[str, Any]:
        """A row as the JSON API gives it (same keys, types and ``None`` for empty contacts)."""
        def cell(name: str) -> str | None:
            node = tr.css(f"td.{name}")
            if not node:
                return None
            value = node.attrib.get("data-value")
            if value is not None:
                return value
            return "".join(node.css("::text").getall()).strip()

        def span(name: str) -> str | None:
            node = tr.css(f"td.contact span.{name}")
            if not node:
                return None
            value = node.attrib.get("data-value")
            if value is None:
                value = "".join(node.css("::text").getall()).strip()
            return value or None

        return {
            "uid": tr.attrib.get("data-uid"),
            "nickname": cell("nickname"),
            "domain": domain,
            "fans": _int(cell("fans")),
            "avg_likes": _int(cell("avg-likes")),
            "region": cell("region"),
            "gender": cell("gender"),
            "tags": [t.strip() for t in tr.css("td.tags span.tag::text").getall() if t.strip()],
            "contact": {"wechat": span("wechat"), "email": span("email")},
            "profile_url": tr.css("a.profile::attr(href)").get(),
            "price": _number(cell("price")),
        }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).replace(",", "").strip())
    except ValueError:
        return None


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    text = str(value).replace(",", "").replace("¥", "").strip()
    try:
        return float(text)
    except ValueError:
        return None
