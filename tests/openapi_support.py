"""Checking real responses against the app's own OpenAPI description (/api/openapi.json)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse

DOCUMENT_URI = "urn:searchapp:openapi"


class ApiDescription:
    """The OpenAPI document, able to say whether a response is one it describes."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        # "#/components/..." references resolve against the whole document.
        self.registry: Registry[Any] = Registry().with_resource(
            DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012))
        self.paths = [(re.compile("^" + re.sub(r"\{[^/}]+\}", "[^?]+", template) + "$"), template)
                      for template in document["paths"]]

    @classmethod
    def of(cls, client: FlaskClient) -> ApiDescription:
        response = client.get("/api/openapi.json")
        assert response.status_code == 200
        return cls(response.get_json())

    def validator(self, *pointer: str) -> Draft202012Validator:
        """A validator for the schema at this place in the document."""
        fragment = "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in pointer)
        return Draft202012Validator({"$ref": f"{DOCUMENT_URI}#{quote(fragment, safe='/~')}"},
                                    registry=self.registry, format_checker=FormatChecker())

    def template(self, path: str) -> str:
        for pattern, template in self.paths:
            if pattern.match(path):
                return str(template)
        raise AssertionError(f"{path} is not in the OpenAPI description")

    def check(self, path: str, response: TestResponse, *, method: str = "get") -> Any:
        """Assert the response is one the description documents for this path; its body."""
        template = self.template(path)
        if method not in self.document["paths"][template]:
            # Not an operation: the 405 is described on the path's GET, like every error.
            assert response.status_code == 405, (method, path, response.status_code)
            method = "get"
        operation = self.document["paths"][template][method]
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, (
            f"{method.upper()} {path}: {response.status_code} is not a documented status")
        content = documented.get("content", {})
        if not content:
            assert not response.get_data(), f"{path}: a body where none is described"
            return None
        mimetype = str(response.mimetype)
        assert mimetype in content, (path, mimetype, list(content))
        body = response.get_json()
        if "schema" in content[mimetype]:
            validator = self.validator("paths", template, method, "responses",
                                       str(response.status_code), "content", mimetype, "schema")
            errors = sorted(validator.iter_errors(body), key=str)
            assert not errors, f"{method.upper()} {path} {response.status_code}: " + "; ".join(
                f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                for e in errors[:5])
        return body


def error_shape(response: TestResponse) -> dict[str, Any]:
    """The JSON error every 4xx from the API has; its `error` member."""
    assert response.mimetype == "application/json", response.mimetype
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    # An unknown parameter also names the unknown and the known ones.
    extra = {"unknown", "known"} if error.get("code") == "unknown_parameter" else set()
    assert set(error) == {"code", "message"} | extra, error
    assert all(isinstance(error[k], list) and error[k] for k in extra), error
    assert isinstance(error["code"], str) and re.fullmatch(r"[a-z_]+", error["code"]), error
    assert isinstance(error["message"], str) and error["message"], error
    return error  # type: ignore[no-any-return]
