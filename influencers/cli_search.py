"""`python -m influencers search …` and `searches …`: find influencers, save a search by name.

The filter options are shared with `start_export` (`add_filter_arguments`, `selection_of`), so an
export takes the same selection a search showed, or a saved search by name (``--search NAME``).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from influencers.argtypes import positive_int, utf8_text
from influencers.core import search as finder
from influencers.core import selection as selections
from influencers.core.errors import InvalidArgument
from influencers.core.selection import STATUSES, Selection
from influencers.core.tasks import validate_domain
from influencers.tables import render

if TYPE_CHECKING:
    from influencers.cli import Context

RESULT_COLUMNS = [
    ("uid", "uid"), ("nickname", "nickname"), ("domain", "domain"), ("fans", "fans"), ("growth_7d", "7-day growth"),
    ("growth_30d", "30-day growth"), ("region", "region"), ("tags", "tags"), ("has_contact", "contact"),
    ("status", "status"), ("ingested_at", "first stored"), ("updated_at", "last crawled"),
]
SAVED_COLUMNS = [("name", "name"), ("filter", "filters"), ("updated_at", "saved at")]
#: option dest → Selection field, for the options that are not named like the field
_FILTER_FIELDS = ("domain", "q", "uid", "fans_min", "fans_max", "region", "tag", "has_contact", "status",
                  "growth_7d_min", "growth_30d_min")


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def option_values_joined(argv: Sequence[str]) -> list[str]:
    """``--sort -fans`` as ``--sort=-fans``: argparse would take ``-fans`` for an option."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] == "--sort" and arg.startswith("-") and arg in finder.SORTS:
            joined[-1] = f"--sort={arg}"
        else:
            joined.append(arg)
    return joined


def add_filter_arguments(parser: argparse.ArgumentParser, *, domain: bool = True, status: bool = True) -> None:
    """The selection's options (see `influencers.core.selection`)."""
    if domain:
        parser.add_argument("--domain", type=utf8_text, help="the domain (领域), e.g. 美妆")
    parser.add_argument("--q", type=utf8_text, metavar="TEXT", help="nickname holds TEXT (Chinese too; any case)")
    parser.add_argument("--uid", type=utf8_text, help="exactly this uid")
    parser.add_argument("--fans-min", type=whole_number, metavar="N")
    parser.add_argument("--fans-max", type=whole_number, metavar="N")
    parser.add_argument("--region", type=utf8_text, help="region starts with this (广东 finds 广东·深圳)")
    parser.add_argument("--tag", type=utf8_text, help="has this tag")
    parser.add_argument("--has-contact", action="store_true", help="only influencers with a contact")
    if status:
        parser.add_argument("--status", choices=STATUSES)
    parser.add_argument("--growth-7d-min", type=whole_number, metavar="N", help="fans gained over 7 days at least N")
    parser.add_argument("--growth-30d-min", type=whole_number, metavar="N")
    parser.add_argument("--search", type=utf8_text, metavar="NAME",
                        help="start from the saved search NAME (the options given here override its filters)")


def selection_of(args: argparse.Namespace, ctx: Context) -> Selection:
    """The selection the options say: a saved search's, with the options given on top."""
    base = Selection()
    if args.search is not None:
        saved = selections.load(ctx.conn, args.search)
        if saved is None:
            raise InvalidArgument(f"no saved search named {args.search!r} (see `searches list`)")
        base = saved
    given: dict[str, Any] = {}
    for name in _FILTER_FIELDS:
        value = getattr(args, name, None)
        if value not in (None, False):
            given[name] = validate_domain(value) if name == "domain" else value
    return dataclasses.replace(base, **given)


def cmd_search(args: argparse.Namespace, ctx: Context) -> int:
    chosen = selection_of(args, ctx)
    if args.save is not None:
        selections.save(ctx.conn, args.save, chosen)
        print(f"search {args.save!r} saved: {chosen.describe()}")
        return 0
    page = finder.search(ctx.conn, chosen, sort=args.sort, limit=args.limit, after=args.after)
    rows = [ctx.local({**row, "tags": ", ".join(row["tags"]) if args.format != "json" else row["tags"]},
                      "ingested_at", "updated_at") for row in page.rows]
    print(render(rows, RESULT_COLUMNS, args.format))
    if page.next and args.format == "table":
        print(f"more: --after {page.next}")
    return 0


def cmd_searches_list(args: argparse.Namespace, ctx: Context) -> int:
    rows = [ctx.local(row, "updated_at") for row in selections.saved(ctx.conn)]
    print(render(rows, SAVED_COLUMNS, args.format))
    return 0


def cmd_searches_delete(args: argparse.Namespace, ctx: Context) -> int:
    if not selections.delete(ctx.conn, args.name):
        raise InvalidArgument(f"no saved search named {args.name!r}")
    print(f"search {args.name!r} deleted")
    return 0


def register(commands: Any) -> None:
    search = commands.add_parser("search", help="find influencers by nickname, uid, fans, region, tags, growth")
    add_filter_arguments(search)
    search.add_argument("--sort", choices=tuple(finder.SORTS), default=finder.DEFAULT_SORT,
                        help="a column, '-' for largest first (default %(default)s); growth is the 7-day growth")
    search.add_argument("--limit", type=positive_int, default=50, help=f"rows (at most {finder.MAX_LIMIT})")
    search.add_argument("--after", type=utf8_text, metavar="CURSOR", help="the page after the one that printed it")
    search.add_argument("--format", choices=("table", "csv", "json"), default="table")
    search.add_argument("--save", type=utf8_text, metavar="NAME", help="save these filters as NAME instead of searching")
    search.set_defaults(handler=cmd_search)

    searches = commands.add_parser("searches", help="saved searches").add_subparsers(dest="searches_command",
                                                                                     required=True)
    listing = searches.add_parser("list", help="the saved searches and their filters")
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    listing.set_defaults(handler=cmd_searches_list)
    delete = searches.add_parser("delete", help="forget a saved search")
    delete.add_argument("name", type=utf8_text)
    delete.set_defaults(handler=cmd_searches_delete)
