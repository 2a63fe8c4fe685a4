"""``/docs`` without the internet: Swagger UI from files an installed package ships, else a plain HTML page.

FastAPI's own ``/docs`` loads Swagger UI from a CDN, so it is blank offline. Here the page links to
``/docs/assets/...``, served from the package's files, and carries the OpenAPI document inline: one request
(which the bearer token guards when one is set) gives the whole page, and Swagger UI's *Authorize* button
adds the token to *Try it out* requests.

The assets come from the first of :data:`ASSET_PACKAGES` that is installed. It must ship Swagger UI 5 or
later, the first to render OpenAPI 3.1, which FastAPI writes (``swagger-ui-bundle`` ships 4.15 and so does
not qualify). Without one, ``/docs`` lists the operations as plain HTML, with a link to ``/openapi.json``.

    assets = swagger_assets()                    # None when no package ships them
    html = docs_page(app.openapi(), assets is not None, root_path="")
"""

from __future__ import annotations

import html
import importlib.util
import json
from pathlib import Path
from typing import Any

from streamguard.serve.defaults import DOCS_PATH, OPENAPI_PATH

ASSETS_PATH = f"{DOCS_PATH}/assets"
# (importable package, folder inside it holding swagger-ui-bundle.js and swagger-ui.css)
ASSET_PACKAGES = (("fastapi_swagger", "resources"), ("swagger_ui", "static"))
ASSET_TYPES = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
               "swagger-ui.css": "text/css; charset=utf-8"}
_HTTP_METHODS = ("get", "head", "post", "put", "patch", "delete", "options")


def swagger_assets() -> Path | None:
    """The folder of an installed package that holds Swagger UI's bundle and stylesheet, or None."""
    for package, folder in ASSET_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        candidate = Path(spec.origin).parent / folder
        if all((candidate / name).is_file() for name in ASSET_TYPES):
            return candidate
    return None


def docs_page(spec: dict[str, Any], swagger_ui: bool, *, root_path: str = "") -> str:
    """The ``/docs`` HTML: Swagger UI over the inline ``spec`` when ``swagger_ui``, else a list of operations."""
    title = html.escape(f"{spec.get('info', {}).get('title', 'API')} – docs")
    if not swagger_ui:
        return _plain_page(spec, title, root_path)
    # Inline JSON inside <script>: escape what could end the element or start markup.
    inline = (json.dumps(spec).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
              .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    assets = html.escape(root_path + ASSETS_PATH)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{spec: {inline}, dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"}});
</script></body></html>
"""


def _plain_page(spec: dict[str, Any], title: str, root_path: str) -> str:
    rows = []
    for path, operations in spec.get("paths", {}).items():
        for method in _HTTP_METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            summary = operation.get("summary", "")
            description = operation.get("description", "").strip().splitlines()
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(summary)}</td><td>{html.escape(description[0] if description else '')}"
                        "</td></tr>")
    openapi = html.escape(root_path + OPENAPI_PATH)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>
<p>Version {html.escape(str(spec.get('info', {}).get('version', '')))}. The full OpenAPI document is at
<a href="{openapi}">{openapi}</a>. (Install the <code>fastapi-swagger</code> package for Swagger UI.)</p>
<table><thead><tr><th>method</th><th>path</th><th>summary</th><th>description</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
