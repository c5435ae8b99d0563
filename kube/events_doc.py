"""The event catalogue, generated from the code: every event type with its payload schema,
its producer and its consumers, as a page (docs/event-catalogue.md) and as an AsyncAPI 3
document (docs/asyncapi.json). `make events-doc` rewrites both; a test fails when either is
stale.

The facts come from where the code keeps them: the contracts (`shared/events/contracts.py`),
the envelope (`shared/events/envelope.py`), each service's `publishes` and handler table
(`services/<name>/service.py`, `handlers.py`) and the feeds each consumer reads
(`event_sources`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from kube.catalogue import PRODUCERS, SERVICES
from shared.events.contracts import CONTRACTS
from shared.events.envelope import EnvelopeSchema

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGE = "event-catalogue.md"
ASYNCAPI = "asyncapi.json"

ENVELOPE = "Envelope"
DEFAULT_QUEUE_PREFIX = "kube"
FEED_PATH = "/api/v1/events"


@dataclass(frozen=True)
class EventType:
    """One event type as the catalogue shows it."""

    type: str
    version: int
    summary: str
    schema: str
    producer: str
    # Each consuming service with the dotted name of its handler.
    consumers: tuple[tuple[str, str], ...]

    @property
    def consumer_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.consumers)


def event_types() -> list[EventType]:
    """Every declared event type, sorted by name, with its producer and its consumers."""
    return [
        EventType(
            type=contract.type,
            version=contract.version,
            summary=contract.summary,
            schema=contract.schema.__name__,
            producer=PRODUCERS[contract.type],
            consumers=tuple(
                (service.name, _dotted(service.handlers[contract.type]))
                for service in sorted(SERVICES, key=lambda s: s.name)
                if contract.type in service.handlers
            ),
        )
        for contract in sorted(CONTRACTS.values(), key=lambda c: c.type)
    ]


def _dotted(handler) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"


def schemas() -> dict[str, dict]:
    """The envelope's and every payload's JSON Schema, by name, converted from the
    marshmallow schemas the way the services' OpenAPI documents are (apispec)."""
    # OpenAPI 3.1's schemas are JSON Schema (null as a type, not `nullable`).
    spec = APISpec("events", "1", "3.1.0", plugins=[MarshmallowPlugin()])
    spec.components.schema(ENVELOPE, schema=EnvelopeSchema)
    for contract in sorted(CONTRACTS.values(), key=lambda c: c.type):
        if contract.schema.__name__ not in spec.components.schemas:
            spec.components.schema(contract.schema.__name__, schema=contract.schema)
    # A round trip through JSON: tuples become lists, as in the written file.
    return json.loads(json.dumps(spec.to_dict()["components"]["schemas"]))


# --- AsyncAPI 3.0 ------------------------------------------------------------------------


def _ref(*parts: str) -> dict:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)}


def _queue_channel(consumer: str) -> str:
    return f"queue.{consumer}"


def _feed_channel(producer: str) -> str:
    return f"feed.{producer}"


def asyncapi_document() -> dict:
    """The platform's events as an AsyncAPI 3.0 document."""
    events = event_types()
    ports = {service.name: service.default_port for service in SERVICES}
    producers = sorted({e.producer for e in events})
    consumers = sorted({name for e in events for name in e.consumer_names})
    sources = {s.name: s.event_sources for s in SERVICES if s.event_sources}
    subscribed = {s.name: set(s.handlers) for s in SERVICES}

    servers = {
        "broker": {
            "host": "{host}",
            "pathname": "/{db}",
            "protocol": "redis",
            "title": "The Celery broker",
            "description": (
                "The Redis of `REDIS_URL`. Celery's Redis transport keeps each queue as a "
                "list named after the queue; the relay (`kube relay`) pushes to them, each "
                "service's worker takes from its own."
            ),
            "variables": {
                "host": {"default": "127.0.0.1:6379", "description": "host:port of REDIS_URL"},
                "db": {"default": "0", "description": "the database number of REDIS_URL"},
            },
        }
    }
    for producer in producers:
        servers[producer] = {
            "host": "{host}",
            "protocol": "http",
            "title": f"The {producer} API",
            "description": (
                f"`{producer.upper()}_URL`; its event feed answers only tokens with the "
                "`service` role."
            ),
            "variables": {"host": {"default": f"127.0.0.1:{ports[producer]}"}},
            "security": [_ref("components", "securitySchemes", "serviceToken")],
        }

    channels: dict[str, dict] = {}
    operations: dict[str, dict] = {}
    for consumer in consumers:
        channel = _queue_channel(consumer)
        types = [e.type for e in events if consumer in e.consumer_names]
        channels[channel] = {
            "address": "{queue_prefix}." + consumer,
            "title": f"The {consumer} queue",
            "description": (
                f"The Celery queue of the {consumer} worker. The relay sends each event as the "
                f"task `{consumer}.handle_event` (Celery message protocol 2, JSON body) whose "
                f"one argument is the envelope, with the task id `<event id>:{consumer}`. "
                "Delivery is at least once; the consumer's inbox applies each event once."
            ),
            "parameters": {
                "queue_prefix": {
                    "default": DEFAULT_QUEUE_PREFIX,
                    "description": "KUBE_QUEUE_PREFIX",
                }
            },
            "servers": [_ref("servers", "broker")],
            "messages": {t: _ref("components", "messages", t) for t in types},
        }
        operations[f"{consumer}.handle_event"] = {
            "action": "receive",
            "channel": _ref("channels", channel),
            "title": f"{consumer} applies an event",
            "description": (
                f"The {consumer} worker validates the envelope, its signature and its payload, "
                "then runs the type's handler and records the event id in one transaction; "
                "failures are retried with backoff, then dead-lettered."
            ),
            "messages": [_ref("channels", channel, "messages", t) for t in types],
        }
        for producer in producers:
            sent = [t for t in types if PRODUCERS[t] == producer]
            if not sent:
                continue
            operations[f"{producer}.publish_to_{consumer}"] = {
                "action": "send",
                "channel": _ref("channels", channel),
                "title": f"{producer} publishes to {consumer}",
                "description": (
                    f"The {producer} service records each event in its outbox in the "
                    "transaction of the change; the relay sends it to this queue after the "
                    "commit."
                ),
                "messages": [_ref("channels", channel, "messages", t) for t in sent],
            }

    for producer in producers:
        channel = _feed_channel(producer)
        types = [e.type for e in events if e.producer == producer]
        channels[channel] = {
            "address": FEED_PATH,
            "title": f"The {producer} event feed",
            "description": (
                f"`GET {FEED_PATH}?after=<position>&types=<type,...>&limit=<n>` on the "
                f"{producer} API: its outbox as an ordered feed of `{{position, envelope}}` "
                "items. Consumers read it to catch up on what the broker lost; it also serves "
                "the events no service subscribes to."
            ),
            "servers": [_ref("servers", producer)],
            "messages": {t: _ref("components", "messages", t) for t in types},
        }
        operations[f"{producer}.serve_feed"] = {
            "action": "send",
            "channel": _ref("channels", channel),
            "title": f"{producer} serves its feed",
            "description": "Every event of the producer's outbox, kept KUBE_EVENT_RETENTION_DAYS.",
            "bindings": {"http": {"method": "GET", "bindingVersion": "0.3.0"}},
            "messages": [_ref("channels", channel, "messages", t) for t in types],
        }
        for consumer in sorted(c for c, s in sources.items() if producer in s):
            read = [t for t in types if t in subscribed[consumer]]
            operations[f"{consumer}.catch_up_from_{producer}"] = {
                "action": "receive",
                "channel": _ref("channels", channel),
                "title": f"{consumer} catches up on the {producer} feed",
                "description": (
                    f"The task `{consumer}.catch_up_events` (at worker start and every "
                    "KUBE_CATCH_UP_EVERY_SECONDS) reads the feed from its cursor, filtered to "
                    "the types it subscribes to, and sends what it has not applied to its own "
                    "queue again."
                ),
                "bindings": {"http": {"method": "GET", "bindingVersion": "0.3.0"}},
                "messages": [_ref("channels", channel, "messages", t) for t in read],
            }

    messages = {
        e.type: {
            "name": e.type,
            "title": e.type,
            "summary": e.summary,
            "contentType": "application/json",
            "correlationId": _ref("components", "correlationIds", "request"),
            "payload": {
                "allOf": [
                    _ref("components", "schemas", ENVELOPE),
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": e.type},
                            "version": {"const": e.version},
                            "source": {"const": e.producer},
                            "payload": _ref("components", "schemas", e.schema),
                        },
                    },
                ]
            },
        }
        for e in events
    }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "KUBE platform events",
            "version": "v1",
            "description": (
                "Every event type the services exchange, generated from the code by "
                "`kube events-doc`; the same facts as docs/event-catalogue.md. Events travel "
                "two ways: pushed as Celery tasks to each subscriber's queue on Redis, and "
                "served by each producer's HTTP feed for catching up."
            ),
        },
        "defaultContentType": "application/json",
        "servers": servers,
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas(),
            "messages": messages,
            "correlationIds": {
                "request": {
                    "description": (
                        "The X-Request-ID of the HTTP request that caused the event "
                        "(null for the scheduler's)."
                    ),
                    "location": "$message.payload#/correlation_id",
                }
            },
            "securitySchemes": {
                "serviceToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A token with the `service` role.",
                }
            },
        },
    }


# --- The page ----------------------------------------------------------------------------


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading."""
    return "".join(c for c in title.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def _schema_heading(name: str) -> str:
    # Not the bare name: `DecreeIssued` would take the anchor of `decree.issued`.
    return f"{name} (schema)"


def _schema_link(name: str) -> str:
    return f"[{name}](#{_anchor(_schema_heading(name))})"


def _type_of(node: dict) -> tuple[str, bool]:
    """A property's type in words, and whether null is allowed."""
    if "$ref" in node:
        return _schema_link(node["$ref"].rsplit("/", 1)[-1]), False
    if "anyOf" in node:
        kinds = [_type_of(n) for n in node["anyOf"] if n.get("type") != "null"]
        nullable = any(n.get("type") == "null" for n in node["anyOf"])
        return " or ".join(k for k, _ in kinds), nullable or any(n for _, n in kinds)
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    nullable = "null" in types
    words = " or ".join(t for t in types if t != "null") or "any"
    if words == "array":
        words = f"array of {_type_of(node.get('items', {}))[0]}"
    if "format" in node:
        words += f" ({node['format']})"
    return words, nullable


def _constraints(node: dict) -> str:
    notes = []
    if "enum" in node:
        notes.append("one of " + ", ".join(f"`{v}`" for v in node["enum"] if v is not None))
    if "minimum" in node:
        notes.append(f"at least {node['minimum']}")
    if "minLength" in node and node.get("minLength") == node.get("maxLength"):
        notes.append(f"{node['minLength']} characters")
    elif "minLength" in node or "maxLength" in node:
        notes.append(f"{node.get('minLength', 0)} to {node.get('maxLength', '…')} characters")
    if "default" in node:
        notes.append(f"default `{json.dumps(node['default'])}`")
    if node.get("description"):
        notes.append(node["description"])
    return "; ".join(notes)


def _field_table(schema: dict) -> list[str]:
    lines = ["| field | type | required | null | notes |", "|---|---|---|---|---|"]
    required = set(schema.get("required", ()))
    for name, node in schema.get("properties", {}).items():
        words, nullable = _type_of(node)
        lines.append(
            f"| `{name}` | {words} | {'yes' if name in required else 'no'} "
            f"| {'yes' if nullable else 'no'} | {_constraints(node)} |"
        )
    return lines


def catalogue_page() -> str:
    """The Markdown page of every event type."""
    events = event_types()
    all_schemas = schemas()
    queue = f"{DEFAULT_QUEUE_PREFIX}.<consumer>"
    feeds = [
        f"{service.name} reads {', '.join(service.event_sources)}"
        for service in SERVICES
        if service.event_sources
    ]
    lines = [
        "# Event catalogue",
        "",
        "<!-- Generated by `make events-doc` (kube/events_doc.py) from the code: edit the "
        "code, then regenerate. -->",
        "",
        "Every event type the services exchange, generated from the code: payload schemas from",
        "the contracts in `shared/events/contracts.py`, the producer from each service's",
        "`publishes` and the consumers from each service's handler table (both in",
        "`services/<name>/service.py`). The same facts as an AsyncAPI 3 document:",
        f"[{ASYNCAPI}]({ASYNCAPI}). How events travel and what is guaranteed:",
        "[events.md](events.md).",
        "",
        "Each event travels two ways. **Push:** the producer writes it to its outbox in the",
        "transaction of the change, and the relay sends it to each consumer's Celery queue on",
        f"Redis (`{queue}`, `KUBE_QUEUE_PREFIX`) as the task `<consumer>.handle_event`, whose",
        "one argument is the envelope. **Pull:** each producer serves its outbox at",
        f"`GET {FEED_PATH}` (role `service`), and each consumer reads the feeds of its",
        f"producers to catch up on what the broker lost ({'; '.join(feeds)}).",
        "",
        "## Event types",
        "",
        "| type | version | producer | consumers | payload | what it announces |",
        "|---|---|---|---|---|---|",
    ]
    for e in events:
        consumers = ", ".join(e.consumer_names) or "none (served on its feed)"
        lines.append(
            f"| [`{e.type}`](#{_anchor(e.type)}) | {e.version} | {e.producer} | {consumers} "
            f"| {_schema_link(e.schema)} | {e.summary} |"
        )
    lines += [
        "",
        "## Envelope",
        "",
        "Every event travels in this envelope; `payload` is the type's schema below.",
        "",
        *_field_table(all_schemas[ENVELOPE]),
    ]
    for e in events:
        lines += ["", f"## {e.type}", "", e.summary, ""]
        lines.append(f"- version: {e.version}")
        lines.append(f"- producer: {e.producer}")
        if e.consumers:
            lines.append("- consumers:")
            lines += [
                f"  - {name}, queue `{DEFAULT_QUEUE_PREFIX}.{name}`, handler `{handler}`"
                for name, handler in e.consumers
            ]
        else:
            lines.append(f"- consumers: none; served on the {e.producer} feed only")
        lines.append(f"- payload: {_schema_link(e.schema)}")
    lines += ["", "## Payload schemas"]
    for name in sorted(n for n in all_schemas if n != ENVELOPE):
        lines += ["", f"### {_schema_heading(name)}", "", *_field_table(all_schemas[name])]
    return "\n".join(lines) + "\n"


def render_json(document: dict) -> str:
    """A document as committed: sorted keys, two-space indents, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated(directory: Path = DOCS) -> dict[Path, str]:
    """Each generated file's path and its fresh text."""
    return {
        directory / PAGE: catalogue_page(),
        directory / ASYNCAPI: render_json(asyncapi_document()),
    }


def write_documents(directory: Path = DOCS) -> list[Path]:
    """Rewrite the page and the AsyncAPI document; return those that changed."""
    changed = []
    for path, text in generated(directory).items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed
