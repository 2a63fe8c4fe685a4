"""The web view: one run as server-rendered HTML, at ``/`` of ``streamguard serve`` and as one file.

    GET /                 the run (when, engine, records, users, anomalies), the score distribution with the
                          threshold, the anomalous users with their top deviations, seconds per stage, quarantine
    GET /users/{user}     one user (any id, percent-encoded): verdict, score among all users, every feature
    GET /users?name=ID    the same page (links use it for ids holding '/'); without a name, a look-up form
    GET /static/style.css, /static/favicon.svg

    streamguard report out/latest --html report.html     # the same content, self-contained (inline CSS)

Modules: ``view`` (what a page shows, from a loaded snapshot), ``svg`` (charts), ``render`` (Jinja2 templates),
``routes`` (the FastAPI routes ``streamguard.serve.app`` mounts). Pages follow the API's token rule: with a token
set they need ``Authorization: Bearer <token>``; the static files stay open, like Swagger UI's.
"""

from streamguard.web.render import Links, index_html, standalone_html, user_html
from streamguard.web.routes import add_web_routes
from streamguard.web.view import index_view, user_view

__all__ = ["Links", "add_web_routes", "index_html", "index_view", "standalone_html", "user_html", "user_view"]
