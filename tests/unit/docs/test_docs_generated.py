"""The committed generated files (OpenAPI documents, API collection, generated blocks) are current."""

from __future__ import annotations

import json
import re

from .conftest import ROOT


def test_committed_generated_files_match_what_gen_docs_produces(gen_docs, rendered):
    stale = gen_docs.stale(rendered)
    assert not stale, "out of date (run `make docs` and commit): " + ", ".join(stale)


def test_there_is_an_openapi_document_per_http_service(gen_docs, rendered):
    for service in gen_docs.HTTP_SERVICES:
        document = json.loads(rendered[gen_docs.OPENAPI_DIR / f"{service.name}.json"])
        assert document["openapi"].startswith("3."), service.name
        assert document["paths"], service.name


def test_the_collection_has_every_operation(gen_docs, rendered):
    postman = json.loads(rendered[gen_docs.POSTMAN_FILE])
    assert postman["info"]["schema"] == gen_docs.POSTMAN_SCHEMA
    http_file = rendered[gen_docs.HTTP_FILE]
    names = {item["name"] for folder in postman["item"] for item in folder["item"]}
    for service in gen_docs.HTTP_SERVICES:
        document = json.loads(rendered[gen_docs.OPENAPI_DIR / f"{service.name}.json"])
        for method, path, _ in gen_docs.operations(document):
            name = f"{method.upper()} {path}"
            assert name in names, name
            assert f"### {name} ({service.title})" in http_file, name


def test_every_route_has_a_section_with_a_curl_example(gen_docs, rendered):
    api = rendered[ROOT / "docs" / "api.md"]
    sections = dict(re.findall(r"^### ([^\n]+)\n(.*?)(?=^#{1,3} |\Z)", api, re.MULTILINE | re.DOTALL))
    missing = []
    for service in gen_docs.HTTP_SERVICES:
        document = json.loads(rendered[gen_docs.OPENAPI_DIR / f"{service.name}.json"])
        for method, path, _ in gen_docs.operations(document):
            heading = gen_docs.route_heading(service, method, path)
            if heading not in sections:
                missing.append(f"no section `### {heading}`")
            elif "curl " not in sections[heading]:
                missing.append(f"no curl example under `### {heading}`")
    assert not missing, "docs/api.md:\n" + "\n".join(missing)


def test_metric_names_in_the_docs_are_declared(gen_docs):
    declared = {name for name, *_ in gen_docs.metric_families()}
    if not declared:
        return
    text = (ROOT / "docs" / "operations.md").read_text()
    named = set(re.findall(r"`((?:imgpipe|http)_[a-z0-9_]+)", text))
    unknown = sorted(n for n in named if n not in declared)
    assert not unknown, f"metrics named in docs/operations.md but not declared: {unknown}"
