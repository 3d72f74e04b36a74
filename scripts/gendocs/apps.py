"""The HTTP services, their apps built from their own factories without serving them, and routes."""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import GenerationError, import_attribute


@dataclass(frozen=True)
class HttpService:
    name: str  # docs/openapi/<name>.json
    title: str  # as people call it
    settings: tuple[str, str]  # (module, class)
    factories: tuple[tuple[str, str], ...]  # (module, function) candidates, first that exists wins
    url_variable: str  # collection variable holding its base URL
    run: str  # how it is started


HTTP_SERVICES = (
    HttpService(
        "ingest",
        "ingest",
        ("ingest.config", "Settings"),
        (("ingest.app", "create_app"),),
        "ingest_url",
        "python -m ingest",
    ),
    HttpService(
        "tracker",
        "tracker API",
        ("tracker.config", "Settings"),
        (("tracker.api", "create_api"), ("tracker.api", "create_app")),
        "tracker_url",
        "python -m tracker api",
    ),
    HttpService(
        "notifier",
        "notifier",
        ("notifier.config", "Settings"),
        (("notifier.app", "create_app"),),
        "notifier_url",
        "python -m notifier",
    ),
)

# Settings prefixes whose variables must not leak from the caller's environment into the apps we
# build (the generated files must not depend on who runs the generator).
ENV_PREFIXES = ("INGEST_", "COMPRESSOR_", "TRACKER_", "NOTIFIER_", "KAFKA_", "LOG_")
SHARED_ENV = ("DATABASE_URL", "FETCH_ALLOWLIST", "BOOTSTRAP_API_KEY")


@contextlib.contextmanager
def clean_environment() -> Iterator[Path]:
    """No pipeline settings from the environment or a .env file; a scratch working directory."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES) or k in SHARED_ENV}
    for key in saved:
        del os.environ[key]
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="gen-docs-") as scratch:
        os.chdir(scratch)  # relative defaults (.run/dev/media, .env) land here, not in the repo
        try:
            yield Path(scratch)
        finally:
            os.chdir(cwd)
            os.environ.update(saved)


def _resolve_factory(service: HttpService) -> tuple[type, Callable[[Any], Any]]:
    """The settings class and the app factory of a service (the first candidate that exists)."""
    settings_class = import_attribute(*service.settings)
    errors = []
    for module, function in service.factories:
        try:
            return settings_class, import_attribute(module, function)
        except GenerationError as exc:
            errors.append(str(exc))
    raise GenerationError(f"no app factory found for {service.name}: " + "; ".join(errors))


def build_apps() -> dict[str, Any]:
    """Each HTTP service's FastAPI app, from its own factory and default settings.

    Nothing is started: no lifespan runs, so no server, database or broker is contacted.
    Imports happen first; the apps are then built without the caller's pipeline settings
    in the environment, in a scratch working directory.
    """
    factories = {s.name: _resolve_factory(s) for s in HTTP_SERVICES}
    apps = {}
    with clean_environment():
        for name, (settings_class, factory) in factories.items():
            try:
                try:
                    settings = settings_class(_env_file=None)
                except TypeError:  # not a pydantic-settings class after all
                    settings = settings_class()
                apps[name] = factory(settings)
            except Exception as exc:  # a factory that fails is reported with the service's name
                raise GenerationError(f"building the {name} app failed: {exc!r}") from exc
    return apps


def openapi_documents(apps: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each HTTP service's OpenAPI document, as its app serves it at /openapi.json."""
    documents = {}
    for name, app in apps.items():
        try:
            documents[name] = app.openapi()
        except Exception as exc:
            raise GenerationError(f"the OpenAPI document of {name} cannot be built: {exc!r}") from exc
    return documents


def api_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full path, route) of every route, looking inside included routers.

    Recent FastAPI keeps an included router as one entry (with `original_router` and its
    include context) instead of copying its routes into the app.
    """
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from api_routes(list(inner.routes), prefix + (getattr(context, "prefix", "") or ""))
        elif hasattr(route, "path"):
            yield prefix + route.path, route


def required_scope(route: Any) -> str | None:
    """The scope of a `pipeline_runtime.api_access.require(scope)` dependency of the route, if any."""
    dependant = getattr(route, "dependant", None)
    stack = list(getattr(dependant, "dependencies", []) or [])
    while stack:
        dep = stack.pop()
        call = getattr(dep, "call", None)
        if call is not None and "require" in getattr(call, "__qualname__", ""):
            with contextlib.suppress(TypeError, ValueError):
                scope = inspect.getclosurevars(call).nonlocals.get("scope")
                if isinstance(scope, str):
                    return scope
        stack.extend(getattr(dep, "dependencies", []) or [])
    return None


def default_port(service: HttpService) -> int:
    settings_class = import_attribute(*service.settings)
    return int(settings_class.model_fields["port"].default)


METHODS = ("get", "post", "put", "patch", "delete")


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]
