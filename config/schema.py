"""OpenAPI schema: each operation documented once, at the path the design names, with who may call it;
and the Swagger UI page, served under our content security policy."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.request import Request

# The contract is POST .../signups and GET .../signups/; the same view also answers the other spelling,
# which would otherwise appear twice in the schema with colliding operation ids.
UNDOCUMENTED_SPELLINGS = {
    ("/api/v1/programs/{slug}/signups", "GET"),
    ("/api/v1/programs/{slug}/signups/", "POST"),
}

SCOPES = ("track", "read", "manage")
ROLES = {
    "marketing": "marketing staff (group `marketing`)",
    "auditors": "an admin (group `auditors`, or a superuser)",
    "ambassador": "the ambassador themself",
    "signed-in": "anyone (no role needed)",
}
ACCESS = "x-parrain-access"


def access(
    *, scopes: Sequence[str] = (), roles: Sequence[str] = (), public: bool | str = False
) -> Callable[[Any], Any]:
    """State on an API view method who may call it, as the policy it asks (core.policies) enforces.

    `scopes`: the API-key scopes let through, none when keys are refused; `roles`: the signed-in people
    let through (keys of ROLES); `public`: True for anyone, or the condition under which anyone may.
    The schema carries it as `x-parrain-access` and in the description; operations refusing keys do not
    offer bearer auth. tests/api/test_schema.py holds each statement against the code.
    """
    if not set(scopes) <= set(SCOPES) or not set(roles) <= set(ROLES):
        raise ValueError(f"unknown scope or role in {scopes!r}, {roles!r}")
    auth: list[dict[str, list[str]]] | None = None  # keys accepted: the view's authentication classes say how
    if not scopes:
        # Security requirements without the key: "cookieAuth" is drf-spectacular's name for the session,
        # `{}` is "no credentials".
        auth = []
        if roles:
            auth.append({"cookieAuth": []})
        if public:
            auth.append({})
    extensions = {ACCESS: {"scopes": list(scopes), "roles": list(roles), "public": public}}
    # extend_schema's hint says list[str]; what it takes is a list of OpenAPI security requirements.
    return extend_schema(extensions=extensions, auth=auth)  # type: ignore[arg-type]


def _access_sentence(statement: dict[str, Any]) -> str:
    ways = []
    if statement["public"] is True:
        ways.append("anyone, without credentials")
    elif statement["public"]:
        ways.append(f"anyone, {statement['public']}")
    if statement["scopes"]:
        ways.append("an API key of the program with scope " + " or ".join(f"`{s}`" for s in statement["scopes"]))
    if statement["roles"]:
        ways.append("signed in as " + " or ".join(ROLES[r] for r in statement["roles"]))
    sentence = "**Access:** " + "; or ".join(ways) + "."
    if not statement["scopes"] and statement["public"] is not True:
        sentence += " API keys are refused."
    return sentence


def drop_duplicate_spellings(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    return [e for e in endpoints if (e[0], e[2]) not in UNDOCUMENTED_SPELLINGS]


def describe_access(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Write each operation's access statement, and the other spelling it answers at, into its description."""
    aliases = {(path[:-1] if path.endswith("/") else path + "/", method.lower()): path
               for path, method in UNDOCUMENTED_SPELLINGS}  # fmt: skip
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            parts = [operation.get("description", "")]
            if ACCESS in operation:
                parts.append(_access_sentence(operation[ACCESS]))
            if (path, method) in aliases:
                parts.append(f"Also answered at `{aliases[path, method]}`.")
            operation["description"] = "\n\n".join(p for p in parts if p)
    return result


def _style_hashes(html: str) -> list[str]:
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"
        for block in re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL)
    ]


class SwaggerDocsView(SpectacularSwaggerSplitView):
    """/api/docs/: Swagger UI from the sidecar's static files, its init script a separate file.

    drf-spectacular's page carries one small inline <style>; rather than `'unsafe-inline'`, this page
    alone allows that exact block by its hash (what browsers hash is the text between the tags).
    """

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.GET.get("script") is None and response.status_code == 200:
            response.render()
            response._csp_update = {"style-src": _style_hashes(response.content.decode())}
        return response
