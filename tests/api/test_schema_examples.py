"""The OpenAPI schema shows an example for every request and answer, and each example is what its schema says.

The examples live in config/schema_examples.py; a postprocessing hook writes them into the schema.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from rest_framework.test import APIClient

from config.schema_examples import EXAMPLES

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, ops in schema["paths"].items()
        for method, operation in ops.items()
        if isinstance(operation, dict) and "responses" in operation
    ]


def examples_of(content: dict[str, Any]) -> list[Any]:
    found = [example["value"] for example in content.get("examples", {}).values() if "value" in example]
    if "example" in content:
        found.append(content["example"])
    return found


def json_schema(schema: Any) -> Any:
    """OpenAPI 3.0 to JSON Schema: `nullable` becomes a null alternative; references stay for the resolver."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def validator(schema: dict[str, Any], part: dict[str, Any]) -> jsonschema.protocols.Validator:
    root = {**json_schema(part), "components": json_schema(schema["components"])}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def everything_with_an_example(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, media content) for each request body and each answer with a body."""
    found = []
    for name, operation in operations(schema):
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            if media == "application/json":
                found.append((f"{name} request", content))
        for code, answer in operation["responses"].items():
            for media, content in answer.get("content", {}).items():
                found.append((f"{name} {code} {media}", content))
    return found


def test_the_schema_is_read(schema):
    assert len(operations(schema)) >= 30
    assert len(everything_with_an_example(schema)) >= 100


def test_every_operation_has_its_examples_entry(schema):
    ids = {operation["operationId"] for _, operation in operations(schema)}
    assert ids - set(EXAMPLES) == set(), "operations without an entry in config/schema_examples.py"
    assert set(EXAMPLES) - ids == set(), "examples for operations the schema no longer has"


def test_every_request_and_answer_has_an_example(schema):
    missing = [where for where, content in everything_with_an_example(schema) if not examples_of(content)]
    assert not missing, "no example: " + ", ".join(missing)


def test_every_operation_documents_its_error_answers_in_the_one_shape(schema):
    missing = []
    for name, operation in operations(schema):
        codes = set(operation["responses"])
        if "requestBody" in operation and "400" not in codes:
            missing.append(f"{name} 400")
        if "{" in name and "404" not in codes:
            missing.append(f"{name} 404")
        for code in codes:
            if code.startswith("4"):
                example = examples_of(operation["responses"][code]["content"]["application/json"])[0]
                assert isinstance(example, dict) and example, (name, code)
                assert set(example) == {"detail"} or all(isinstance(v, list) for v in example.values()), (name, code)
    assert not missing, "undocumented error answers: " + ", ".join(missing)


def test_each_example_validates_against_its_own_schema(schema):
    wrong = []
    for where, content in everything_with_an_example(schema):
        check = validator(schema, content.get("schema", {}))
        for example in examples_of(content):
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in check.iter_errors(example)]
            if errors:
                wrong.append(f"{where}: {'; '.join(errors)}")
    assert not wrong, "\n".join(wrong)


def test_a_wrong_example_would_be_caught(schema):
    content = schema["paths"]["/api/v1/programs/{slug}/conversions"]["post"]["responses"]["201"]["content"]
    check = validator(schema, content["application/json"]["schema"])
    assert not list(check.iter_errors(examples_of(content["application/json"])[0]))
    assert list(check.iter_errors({"id": "not a number", "amount": 19.9}))


def test_examples_speak_of_the_book_launch_in_utc(schema):
    conversion = schema["paths"]["/api/v1/programs/{slug}/conversions"]["post"]
    request = examples_of(conversion["requestBody"]["content"]["application/json"])[0]
    assert request["amount"] == "19.90" and request["occurred_at"].endswith("Z")
    signup = examples_of(schema["paths"]["/api/v1/programs/{slug}/signups"]["post"]["requestBody"]["content"]
                         ["application/json"])[0]  # fmt: skip
    assert signup["referral_code"] == "ANA2026"
