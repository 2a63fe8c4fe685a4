"""HTML from the view objects: the served pages, and the whole view as one self-contained file.

Templates (Jinja2, autoescaped) and the stylesheet are package data under ``streamguard/web/``. A served page
links its stylesheet and icon under :data:`ASSETS_PATH`; the file from :func:`standalone_html` carries them
inline, with a Content-Security-Policy that lets it load nothing at all, and holds a section per listed
anomalous user in place of the user pages.

    >>> html = index_html(index_view(snapshot), Links.served(root_path=""))
    >>> Path("report.html").write_text(standalone_html(snapshot))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from streamguard.serve.data import Snapshot
from streamguard.web.svg import bars_svg, histogram_svg
from streamguard.web.view import DEFAULT_ANOMALIES_SHOWN, IndexView, RunView, UserView, index_view, user_view

ASSETS_PATH = "/static"
ASSET_TYPES = {"style.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}
USERS_PATH = "/users"
# Served pages: only our own stylesheet and icon. The standalone file: nothing outside itself.
SERVED_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; "
              "frame-ancestors 'none'")
STANDALONE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class Links:
    """Where a page's links point: the served routes, or anchors inside the standalone file."""

    root_path: str = ""
    standalone: bool = False
    anchors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def served(cls, root_path: str = "") -> Links:
        return cls(root_path=root_path.rstrip("/"))

    @classmethod
    def inside_file(cls, users: list[str]) -> Links:
        return cls(standalone=True, anchors={user: f"user-{i}" for i, user in enumerate(users, start=1)})

    @property
    def home(self) -> str:
        return "#top" if self.standalone else f"{self.root_path}/"

    @property
    def lookup(self) -> str:
        return f"{self.root_path}{USERS_PATH}"

    def user(self, name: str) -> str | None:
        """The link to a user's page (any id, percent-encoded whole), or None when the file has no section."""
        if self.standalone:
            anchor = self.anchors.get(name)
            return None if anchor is None else f"#{anchor}"
        if "/" in name or name in (".", ".."):  # a path segment cannot carry these; a query parameter can
            return f"{self.root_path}{USERS_PATH}?name={quote(name, safe='')}"
        return f"{self.root_path}{USERS_PATH}/{quote(name, safe='')}"

    def asset(self, name: str) -> str:
        return f"{self.root_path}{ASSETS_PATH}/{name}"


def index_html(view: IndexView, links: Links) -> str:
    """The front page: run, score distribution, anomalous users, stage timings, quarantine."""
    return _render("index.html", links, run=view.run, page=view, histogram=histogram_svg(view.histogram),
                   stages=bars_svg(view.run.stages, unit="s"))


def user_html(view: UserView, links: Links) -> str:
    """One user's page: verdict, score among all users, top deviations, every feature against the population."""
    return _render("user.html", links, run=view.run, user=view,
                   histogram=histogram_svg(view.histogram, marker=view.score))


def lookup_html(run: RunView | None, links: Links) -> str:
    return _render("lookup.html", links, run=run)


def unknown_user_html(user: str, run: RunView, links: Links) -> str:
    return _render("unknown_user.html", links, run=run, user=user)


def no_data_html(reason: str, links: Links) -> str:
    return _render("no_data.html", links, run=None, reason=reason)


def standalone_html(snapshot: Snapshot, *, limit: int = DEFAULT_ANOMALIES_SHOWN) -> str:
    """The front page and a section per listed anomalous user, in one file that references nothing outside."""
    page = index_view(snapshot, limit=limit)
    users = [entry.user for entry in page.anomalies]
    links = Links.inside_file(users)
    details = []
    for name in users:
        view = user_view(snapshot, name)
        if view is not None:
            details.append((links.anchors[name], view, histogram_svg(view.histogram, marker=view.score)))
    return _render("standalone.html", links, run=page.run, page=page, histogram=histogram_svg(page.histogram),
                   stages=bars_svg(page.run.stages, unit="s"), details=details)


def _render(template: str, links: Links, **context: Any) -> str:
    standalone = {"inline_css": Markup(_stylesheet()), "icon": _icon_data_uri(), "csp": STANDALONE_CSP}
    served = {"inline_css": None, "icon": links.asset("favicon.svg"), "csp": None}
    return _environment().get_template(template).render(
        links=links, version=_package_version(), **(standalone if links.standalone else served), **context,
    )


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("streamguard.web", "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(num=number, z=z_text, moment=moment, score=lambda value: f"{value:.3f}",
                       pct=lambda value: f"{value:.1%}", secs=lambda value: f"{value:,.2f} s")
    return env


def number(value: float | int) -> str:
    """A figure as the pages write it: integers with separators, else three decimals (one from 100 up)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3f}"


def z_text(value: float | None) -> str:
    """A standardised deviation, e.g. ``+3.2σ`` (``0.0σ`` without a sign); ``–`` for a feature constant over the run."""
    if value is None:
        return "–"
    return "0.0σ" if abs(value) < 0.05 else f"{value:+.1f}σ"


def moment(iso: str) -> str:
    """An ISO-8601 time as ``2026-01-05 14:02:53 UTC``; the text as it is when it does not parse."""
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return (parsed.astimezone(UTC) if parsed.tzinfo else parsed).strftime("%Y-%m-%d %H:%M:%S UTC")


def asset_bytes(name: str) -> bytes:
    """A static file of the web view; ``name`` must be one of :data:`ASSET_TYPES`."""
    if name not in ASSET_TYPES:
        raise KeyError(name)
    return resources.files("streamguard.web").joinpath("static", name).read_bytes()


@cache
def _stylesheet() -> str:
    css = asset_bytes("style.css").decode()
    if "</" in css:  # it goes inside a <style> element in the standalone file
        raise ValueError("style.css must not contain '</'")
    return css


@cache
def _icon_data_uri() -> str:
    return "data:image/svg+xml," + quote(asset_bytes("favicon.svg").decode().strip(), safe="")


def _package_version() -> str:
    try:
        return version("streamguard")
    except PackageNotFoundError:
        return "0+unknown"
