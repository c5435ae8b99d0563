"""The notification API: rules and templates as data, previews, broadcasts, opt-outs, office
mailboxes and the providers' callbacks."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from services.notifications.delivery import deliver
from services.notifications.models import Message
from services.registry.identity import IdentityError, normalize_phone
from shared.db import utcnow

from notification_factories import (
    delivery,
    grant_snapshot,
    national,
    opted_out,
    phone,
    reachable_group,
    receive,
    stage_changed,
)
from support import PROVIDER_SECRET


def template_id(client, auth, key: str, channel="sms", language="id") -> str:
    page = client.get(
        f"/api/v1/templates?key={key}&channel={channel}&language={language}", headers=auth()
    ).json
    (template,) = page["items"]
    return template["id"]


def test_the_default_rules_are_data_and_a_rule_naming_no_template_is_refused(clients, auth):
    client = clients["notifications"]
    rules = client.get("/api/v1/rules", headers=auth("auditor")).json["rules"]
    stages = {(r["event_type"], r["stage"]) for r in rules}
    assert ("grant.stage_changed", "submitted") in stages
    assert ("grant.disbursed", None) in stages
    assert next(r for r in rules if r["event_type"] == "grant.disbursed")["critical"] is True
    broken = [*rules, {**rules[0], "stage": "closed", "template_key": "grant.nothing"}]
    response = client.put("/api/v1/rules", json={"rules": broken}, headers=auth("admin"))
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == [f"rules.{len(rules)}.template_key"]
    twice = client.put("/api/v1/rules", json={"rules": [rules[0], rules[0]]}, headers=auth("admin"))
    assert [e["field"] for e in twice.json["errors"]] == ["rules.1"]
    assert (
        client.put("/api/v1/rules", json={"rules": rules}, headers=auth("verifikator")).status_code
        == 403
    )


def test_a_template_that_does_not_render_is_refused_when_saved(clients, auth):
    client = clients["notifications"]
    tid = template_id(client, auth, "grant.approved")
    bad = client.put(
        f"/api/v1/templates/{tid}",
        json={"body": "{{ group_name }: rusak"},
        headers=auth("admin"),
    )
    assert bad.status_code == 422
    assert bad.json["errors"][0]["field"] == "body"
    unknown = client.put(
        f"/api/v1/templates/{tid}", json={"body": "{{ nama_kepala }}"}, headers=auth("admin")
    )
    assert unknown.status_code == 422
    sneaky = client.put(
        f"/api/v1/templates/{tid}",
        json={"body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"},
        headers=auth("admin"),
    )
    assert sneaky.status_code == 422
    good = client.put(
        f"/api/v1/templates/{tid}",
        json={"body": "{{ group_name }}: UEP {{ amount|rupiah }} disetujui."},
        headers=auth("admin"),
    )
    assert good.status_code == 200, good.json
    assert good.json["version"] == 2


def test_a_preview_reports_the_encoding_length_and_parts(clients, auth):
    client = clients["notifications"]
    tid = template_id(client, auth, "grant.disbursed")
    plain = client.post(f"/api/v1/templates/{tid}/preview", json={}, headers=auth("auditor")).json
    assert plain["encoding"] == "GSM-7" and plain["parts"] == 1
    assert "Rp 20.000.000" in plain["body"] and "25 November 2026" in plain["body"]
    emoji = client.post(
        f"/api/v1/templates/{tid}/preview",
        json={"body": "Selamat {{ group_name }} 🎉", "data": {"group_name": "KUBE Maju"}},
        headers=auth("auditor"),
    ).json
    assert (emoji["encoding"], emoji["body"]) == ("UCS-2", "Selamat KUBE Maju 🎉")
    english = template_id(client, auth, "grant.disbursed", language="en")
    assert (
        "25 November 2026"
        in client.post(f"/api/v1/templates/{english}/preview", json={}, headers=auth()).json["body"]
    )


def test_a_broadcast_reaches_every_member_of_the_region_once(clients, auth, apps, sms_gateway):
    region = f"6472{uuid.uuid4().int % 90 + 10:02d}"
    village = f"{region}1001"
    first = reachable_group(apps, members=3, region_code=village)
    second = reachable_group(apps, members=2, region_code=village)
    reachable_group(apps, members=2, region_code=village, status="dissolved")
    elsewhere = reachable_group(apps, members=2, region_code="3374011001")
    response = clients["notifications"].post(
        "/api/v1/broadcasts",
        json={"region_code": region, "text": "Pelatihan pemasaran hari Senin di balai desa."},
        headers=auth("kepala_dinas", region="6472"),
    )
    assert response.status_code == 201, response.json
    assert response.json["total"] == 5
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        ids = session.scalars(
            select(Message.id).where(Message.broadcast_id == response.json["id"])
        ).all()
    for message_id in ids:
        deliver(delivery(apps), message_id, utcnow())
    for number in first[1] + second[1]:
        assert len(sms_gateway.to(national(number))) == 1
    for number in elsewhere[1]:
        assert sms_gateway.to(national(number)) == []
    progress = (
        clients["notifications"]
        .get(f"/api/v1/broadcasts/{response.json['id']}", headers=auth("auditor", region="6472"))
        .json
    )
    assert progress["reached"] == 5 and progress["by_status"] == {"sent": 5}
    outside = clients["notifications"].post(
        "/api/v1/broadcasts",
        json={"region_code": "3374", "text": "x"},
        headers=auth("kepala_dinas", region="6472"),
    )
    assert outside.status_code == 422


def test_a_delivery_receipt_needs_the_secret_and_marks_delivered(clients, auth, apps):
    group_id, _, name = reachable_group(apps, members=1)
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="approved")))
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        (message_id,) = session.scalars(
            select(Message.id).where(Message.event_id == envelope["id"])
        ).all()
    deliver(delivery(apps), message_id, utcnow())
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        provider_id = session.get(Message, message_id).provider_message_id
    client = clients["notifications"]
    url = "/api/v1/providers/sms-gateway/callback"
    body = {"message_id": provider_id, "status": "delivered"}
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers={"X-Provider-Secret": "wrong"}).status_code == 401
    answer = client.post(url, json=body, headers={"X-Provider-Secret": PROVIDER_SECRET})
    assert answer.status_code == 200 and answer.json == {"matched": True, "status": "delivered"}
    unknown = client.post(
        url,
        json={"message_id": "nope", "status": "failed"},
        headers={"X-Provider-Secret": PROVIDER_SECRET},
    )
    assert unknown.json == {"matched": False, "status": None}
    read = client.get(f"/api/v1/messages/{message_id}", headers=auth("auditor")).json
    assert read["status"] == "delivered" and read["delivered_at"]


def test_stop_opts_a_number_out_and_an_admin_can_undo_it(clients, auth):
    client = clients["notifications"]
    secret = {"X-Provider-Secret": PROVIDER_SECRET}
    stop = client.post(
        "/api/v1/providers/sms-gateway/inbound",
        json={"from": "081377788899", "text": " stop "},
        headers=secret,
    )
    assert stop.json == {"matched": True, "status": "opted_out"}
    listed = client.get("/api/v1/opt-outs", headers=auth("admin")).json
    assert "+62813****8899" in [o["phone"] for o in listed["items"]]
    assert client.delete("/api/v1/opt-outs/081377788899", headers=auth("admin")).status_code == 204
    bad = client.post("/api/v1/opt-outs", json={"phone": "12345678"}, headers=auth("admin"))
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "phone"


@pytest.mark.parametrize(
    "written, stored",
    [("0813-7778-8890", "+6281377788890"), ("+62 813 7778 8891", "+6281377788891")],
)
def test_an_opt_out_takes_a_number_written_as_the_registry_takes_it(clients, auth, written, stored):
    created = clients["notifications"].post(
        "/api/v1/opt-outs", json={"phone": written}, headers=auth("admin")
    )
    assert created.status_code == 201, created.json
    assert normalize_phone(written) == stored  # the registry's rule: a member's phone


@pytest.mark.parametrize("number", ["08001234567", "02112345678"])  # toll-free, a landline
def test_an_opt_out_refuses_what_the_registry_refuses_as_a_members_phone(clients, auth, number):
    refused = clients["notifications"].post(
        "/api/v1/opt-outs", json={"phone": number}, headers=auth("admin")
    )
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "phone"
    with pytest.raises(IdentityError):
        normalize_phone(number)


def test_a_regional_auditor_lists_only_its_own_members_opted_out_numbers(clients, apps, auth):
    _, here, _ = reachable_group(apps, members=1, region_code="6472011001")
    _, there, _ = reachable_group(apps, members=1, region_code="3374011001")
    stranger = phone()  # no member's number: no region's
    for number in (*here, *there, stranger):
        opted_out(apps, number)

    def listed(role: str, region: str) -> set[str]:
        answer = clients["notifications"].get(
            "/api/v1/opt-outs", query_string={"page_size": 100}, headers=auth(role, region=region)
        )
        assert answer.status_code == 200
        return {o["phone"] for o in answer.json["items"]}

    masked = {n: n[:6] + "****" + n[-4:] for n in (*here, *there, stranger)}
    samarinda = listed("auditor", "6472")
    assert masked[here[0]] in samarinda
    assert masked[there[0]] not in samarinda and masked[stranger] not in samarinda
    assert set(masked.values()) <= listed("admin", "*")


def test_a_regional_admin_lets_sms_reach_again_only_its_own_members_numbers(clients, apps, auth):
    _, here, _ = reachable_group(apps, members=1, region_code="6472011001")
    _, there, _ = reachable_group(apps, members=1, region_code="3374011001")
    stranger = phone()
    for number in (*here, *there, stranger):
        opted_out(apps, number)
    client, samarinda = clients["notifications"], auth("admin", region="6472")

    assert client.delete(f"/api/v1/opt-outs/{here[0]}", headers=samarinda).status_code == 204
    for elsewhere in (there[0], stranger):
        refused = client.delete(f"/api/v1/opt-outs/{elsewhere}", headers=samarinda)
        assert refused.status_code == 404
        assert elsewhere[3:] not in refused.get_data(as_text=True)
    listed = client.get(
        "/api/v1/opt-outs", query_string={"page_size": 100}, headers=auth("admin", region="*")
    ).json["items"]
    still = {o["phone"] for o in listed}
    masked = {n: n[:6] + "****" + n[-4:] for n in (*here, *there, stranger)}
    assert masked[here[0]] not in still
    assert {masked[there[0]], masked[stranger]} <= still


def test_mailboxes_are_one_per_region_and_role(clients, auth):
    client = clients["notifications"]
    body = {
        "mailboxes": [
            {"region_code": "64", "role": "verifikator", "email": "verval@dinsos.kaltimprov.go.id"},
            {"region_code": "64", "role": "verifikator", "email": "lain@dinsos.kaltimprov.go.id"},
        ]
    }
    twice = client.put("/api/v1/mailboxes", json=body, headers=auth("admin"))
    assert twice.status_code == 422
    body["mailboxes"].pop()
    assert client.put("/api/v1/mailboxes", json=body, headers=auth("admin")).status_code == 200
    assert client.get("/api/v1/mailboxes", headers=auth()).json == body


def test_a_regional_caller_sees_and_replaces_only_the_mailboxes_of_its_region(clients, auth):
    client = clients["notifications"]
    everywhere = [
        {"region_code": "", "role": "admin", "email": "admin@kemensos.example.id"},
        {"region_code": "33", "role": "verifikator", "email": "verval@jatengprov.example.id"},
        {"region_code": "64", "role": "verifikator", "email": "verval@kaltimprov.example.id"},
    ]
    put = client.put("/api/v1/mailboxes", json={"mailboxes": everywhere}, headers=auth("admin"))
    assert put.status_code == 200
    # Samarinda's officers see their province's mailbox and the nationwide one, not Jawa Tengah's.
    seen = client.get("/api/v1/mailboxes", headers=auth("pendamping", region="6472")).json
    assert seen["mailboxes"] == [everywhere[0], everywhere[2]]

    jateng = auth("admin", region="33")
    into_kaltim = [{"region_code": "6472", "role": "bendahara", "email": "b@x.example.id"}]
    refused = client.put("/api/v1/mailboxes", json={"mailboxes": into_kaltim}, headers=jateng)
    assert refused.status_code == 422
    assert refused.json["errors"][0]["field"] == "mailboxes.0.region_code"
    own = [{"region_code": "3374", "role": "bendahara", "email": "b@semarangkota.example.id"}]
    replaced = client.put("/api/v1/mailboxes", json={"mailboxes": own}, headers=jateng)
    assert replaced.status_code == 200
    # Jawa Tengah's replacement left Kalimantan Timur's and the nationwide mailbox alone.
    after = client.get("/api/v1/mailboxes", headers=auth("admin")).json["mailboxes"]
    assert after == [everywhere[0], own[0], everywhere[2]]


def test_another_regions_messages_are_404(clients, auth, apps):
    group_id, _, name = reachable_group(apps, members=1)
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name)))
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        (message_id,) = session.scalars(
            select(Message.id).where(Message.event_id == envelope["id"])
        ).all()
    other = auth("auditor", region="33")
    assert (
        clients["notifications"].get(f"/api/v1/messages/{message_id}", headers=other).status_code
        == 404
    )
    assert (
        clients["notifications"]
        .post(f"/api/v1/messages/{message_id}/retry", headers=auth("verifikator", region="33"))
        .status_code
        == 404
    )
