"""The event catalogue (docs/event-catalogue.md) and the AsyncAPI document (docs/asyncapi.json)
are generated from the code and committed: they are current, they name every event type a
service publishes and every handler a service registers, and the document keeps the rules of
AsyncAPI 3.0 that it uses."""

from __future__ import annotations

import ast
import difflib
import re

import pytest

from kube.catalogue import PRODUCERS, SERVICES
from kube.events_doc import ASYNCAPI, DOCS, PAGE, asyncapi_document, event_types, generated
from shared.events.contracts import CONTRACTS
from shared.events.subscriptions import producers_by_type

ROOT = DOCS.parent
BY_TYPE = {e.type: e for e in event_types()}
OUTBOX_METHODS = {"add", "add_many", "prepare"}


@pytest.fixture(scope="module")
def document() -> dict:
    return asyncapi_document()


@pytest.mark.parametrize("name", [PAGE, ASYNCAPI])
def test_the_committed_file_is_a_fresh_generation(name):
    path = DOCS / name
    fresh = generated()[path]
    committed = path.read_text() if path.exists() else ""
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            fresh.splitlines(keepends=True),
            f"committed {name}",
            "generated from the code",
        )
    )
    assert not diff, f"docs/{name} is stale; run `make events-doc` and commit it:\n{diff}"


def test_generation_is_deterministic():
    assert generated() == generated()


# --- Every producer and consumer in code appears ---------------------------------------


def _is_outbox(node: ast.expr) -> bool:
    """`outbox` or `<anything>.outbox`: the service's outbox passed along."""
    return (isinstance(node, ast.Name) and node.id == "outbox") or (
        isinstance(node, ast.Attribute) and node.attr == "outbox"
    )


def published_in_source(service: str) -> dict[str, list[str]]:
    """The event types the service's code hands to its outbox as literals (an outbox method,
    or a function that is given the outbox), each with where it does."""
    found: dict[str, list[str]] = {}
    package = ROOT / "services" / service
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            arguments = [*node.args, *(k.value for k in node.keywords)]
            to_outbox = any(_is_outbox(a) for a in arguments) or (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in OUTBOX_METHODS
                and _is_outbox(node.func.value)
            )
            if not to_outbox:
                continue
            for argument in arguments:
                if isinstance(argument, ast.Constant) and argument.value in CONTRACTS:
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.setdefault(argument.value, []).append(where)
    return found


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_every_event_type_a_service_publishes_in_code_appears_with_it_as_producer(
    service, document
):
    published = published_in_source(service.name)
    assert published or not service.publishes, f"no outbox call found in {service.name}"
    for event_type, places in published.items():
        assert BY_TYPE[event_type].producer == service.name, (event_type, places)
        assert f"{service.name}.serve_feed" in document["operations"]
        feed = document["operations"][f"{service.name}.serve_feed"]
        assert {"$ref": f"#/channels/feed.{service.name}/messages/{event_type}"} in (
            feed["messages"]
        )
    # The declaration names nothing the code never publishes, and misses nothing it does.
    assert set(published) == set(service.publishes)


def test_each_event_type_has_one_producer_in_the_catalogue():
    assert set(BY_TYPE) == set(CONTRACTS)
    assert {t: e.producer for t, e in BY_TYPE.items()} == PRODUCERS
    page = (DOCS / PAGE).read_text()
    for event_type, event in BY_TYPE.items():
        assert f"## {event_type}\n" in page
        assert f"- producer: {event.producer}\n" in page


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_every_handler_appears_with_its_consumer(service, document):
    page = (DOCS / PAGE).read_text()
    receive = document["operations"].get(f"{service.name}.handle_event")
    assert (receive is not None) == bool(service.handlers)
    for event_type, handler in service.handlers.items():
        assert service.name in BY_TYPE[event_type].consumer_names
        section = page.split(f"\n## {event_type}\n", 1)[1].split("\n## ", 1)[0]
        assert f"  - {service.name}, queue `kube.{service.name}`" in section
        assert handler.__qualname__ in section
        assert receive["action"] == "receive"
        assert {"$ref": f"#/channels/queue.{service.name}/messages/{event_type}"} in (
            receive["messages"]
        )
    # Nothing is listed as consumed that the service has no handler for.
    listed = {t for t, e in BY_TYPE.items() if service.name in e.consumer_names}
    assert listed == set(service.handlers)


def test_producers_are_one_per_type_or_refused():
    declared = {t: "registry" for t in CONTRACTS}
    with pytest.raises(RuntimeError, match=r"group\.updated is published by grants and registry"):
        producers_by_type({"registry": list(CONTRACTS), "grants": ["group.updated"]})
    with pytest.raises(RuntimeError, match=r"decree\.issued is published by no service"):
        producers_by_type({"registry": [t for t in CONTRACTS if t != "decree.issued"]})
    with pytest.raises(RuntimeError, match="undeclared event types"):
        producers_by_type({"registry": [*CONTRACTS, "group.teleported"]})
    assert producers_by_type({"registry": list(CONTRACTS)}) == declared


def test_an_outbox_refuses_an_event_type_its_service_does_not_declare(apps):
    context = apps["registry"].extensions["kube"]
    outbox = context.outbox
    with context.db.transaction() as session:
        for record, payload in ((outbox.add, {}), (outbox.add_many, [])):
            with pytest.raises(ValueError, match=r"does not declare 'grant\.created'"):
                record(session, "grant.created", payload)
    with pytest.raises(ValueError, match=r"does not declare 'grant\.created'"):
        outbox.preparer("grant.created")


# --- The AsyncAPI document keeps the rules of the parts of AsyncAPI 3.0 it uses -----------

COMPONENT_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")


def resolve(document: dict, ref: str):
    assert ref.startswith("#/"), f"{ref} is not a local reference"
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def references(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def test_the_document_has_the_required_top_level_fields(document):
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] and document["info"]["version"]
    assert set(document) <= {
        "asyncapi",
        "id",
        "info",
        "servers",
        "defaultContentType",
        "channels",
        "operations",
        "components",
    }


def test_every_reference_resolves(document):
    refs = list(references(document))
    assert refs
    for ref in refs:
        resolve(document, ref)


def test_servers_name_a_host_and_protocol_and_define_their_variables(document):
    for name, server in document["servers"].items():
        assert server["host"] and server["protocol"], name
        used = set(re.findall(r"{(\w+)}", server["host"] + server.get("pathname", "")))
        assert used == set(server.get("variables", {})), name


def test_channels_define_their_address_parameters_and_reference_components(document):
    for name, channel in document["channels"].items():
        used = set(re.findall(r"{(\w+)}", channel["address"]))
        assert used == set(channel.get("parameters", {})), name
        for server in channel["servers"]:
            assert server["$ref"].startswith("#/servers/"), name
        assert channel["messages"], name
        for key, message in channel["messages"].items():
            assert message == {"$ref": f"#/components/messages/{key}"}, (name, key)


def test_every_operation_names_a_channel_and_messages_of_that_channel(document):
    for name, operation in document["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), name
        resolve(document, channel_ref)
        assert operation["messages"], name
        for message in operation["messages"]:
            # A message of an operation must be one of its channel's messages.
            assert message["$ref"].startswith(channel_ref + "/messages/"), (name, message)
            resolve(document, message["$ref"])


def test_components_are_well_named_and_every_message_carries_its_payload(document):
    for kind, entries in document["components"].items():
        for key in entries:
            assert COMPONENT_KEY.match(key), (kind, key)
    messages = document["components"]["messages"]
    assert set(messages) == set(CONTRACTS)
    for event_type, message in messages.items():
        envelope, specific = message["payload"]["allOf"]
        assert envelope == {"$ref": "#/components/schemas/Envelope"}
        schema = CONTRACTS[event_type].schema.__name__
        assert specific["properties"]["payload"] == {"$ref": f"#/components/schemas/{schema}"}
        assert specific["properties"]["type"] == {"const": event_type}
        assert specific["properties"]["source"] == {"const": PRODUCERS[event_type]}


def test_every_event_type_is_sent_and_every_subscription_is_received(document):
    sent, received = set(), set()
    for operation in document["operations"].values():
        types = {m["$ref"].rsplit("/", 1)[-1] for m in operation["messages"]}
        (sent if operation["action"] == "send" else received).update(types)
    assert sent == set(CONTRACTS)
    assert received == {t for s in SERVICES for t in s.handlers}


def test_the_envelope_schema_names_every_envelope_field(document):
    envelope = document["components"]["schemas"]["Envelope"]
    fields = {"id", "type", "version", "occurred_at", "source", "correlation_id", "payload"}
    assert fields | {"signature"} == set(envelope["properties"]) == set(envelope["required"])


# --- The docs point to it, and keep no second list ------------------------------------------


def section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_event_types_section_of_events_md_links_to_the_catalogue_and_lists_none():
    event_types_section = section((DOCS / "events.md").read_text(), "## Event types")
    assert "(event-catalogue.md)" in event_types_section
    assert "(asyncapi.json)" in event_types_section
    listed = [t for t in CONTRACTS if re.search(rf"^\|\s*`{re.escape(t)}`", event_types_section)]
    assert not listed, f"docs/events.md lists event types in a table of its own: {listed}"


def test_the_readme_names_the_catalogue_and_how_to_regenerate_it():
    readme = (ROOT / "README.md").read_text()
    assert "docs/event-catalogue.md" in readme
    assert "docs/asyncapi.json" in readme
    assert "make events-doc" in readme
