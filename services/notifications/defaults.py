"""The rules and templates a new installation starts with (migration 0005 stores them; offices
change them through the API). SMS texts stay within one GSM-7 part where the data allows."""

from __future__ import annotations

# (event type, stage or None, audience, channel, template key, critical)
RULES = [
    ("grant.stage_changed", "submitted", "all_members", "sms", "grant.submitted", False),
    # A draft is reached again only by a return for correction.
    ("grant.stage_changed", "draft", "all_members", "sms", "grant.returned", False),
    ("grant.stage_changed", "approved", "all_members", "sms", "grant.approved", False),
    # The money reached the group: told even to a number that opted out, and at night.
    ("grant.disbursed", None, "all_members", "sms", "grant.disbursed", True),
    ("grant.report_due", None, "all_members", "sms", "grant.report_due", False),
    (
        "grant.stage_changed",
        "report_accepted",
        "all_members",
        "sms",
        "grant.report_accepted",
        False,
    ),
    ("grant.deadline_passed", None, "office_mailbox", "email", "grant.deadline_passed", False),
]

# (key, channel, language): (subject, body)
TEMPLATES = {
    ("grant.submitted", "sms", "id"): (
        None,
        "{{ group_name }}: usulan bantuan UEP {{ amount|rupiah }} sudah diajukan ke Dinas "
        "Sosial. Hasil verifikasi akan kami kabarkan.",
    ),
    ("grant.submitted", "sms", "en"): (
        None,
        "{{ group_name }}: your UEP grant proposal of {{ amount|rupiah }} has reached the "
        "social affairs office. We will tell you the outcome.",
    ),
    ("grant.returned", "sms", "id"): (
        None,
        "{{ group_name }}: usulan UEP dikembalikan untuk diperbaiki. Alasan: {{ reason }} "
        "Hubungi pendamping Anda.",
    ),
    ("grant.returned", "sms", "en"): (
        None,
        "{{ group_name }}: your UEP proposal was returned for correction. Reason: {{ reason }} "
        "Please contact your facilitator.",
    ),
    ("grant.approved", "sms", "id"): (
        None,
        "{{ group_name }}: usulan UEP {{ amount|rupiah }} DISETUJUI. Dana akan ditransfer ke "
        "rekening kelompok.",
    ),
    ("grant.approved", "sms", "en"): (
        None,
        "{{ group_name }}: your UEP grant of {{ amount|rupiah }} is APPROVED. It will be paid "
        "into the group's account.",
    ),
    ("grant.disbursed", "sms", "id"): (
        None,
        "{{ group_name }}: bantuan UEP {{ amount|rupiah }} sudah ditransfer ke rekening "
        "kelompok pada {{ transfer_date|tanggal }}. Ref {{ transfer_reference }}.",
    ),
    ("grant.disbursed", "sms", "en"): (
        None,
        "{{ group_name }}: the UEP grant of {{ amount|rupiah }} was paid into the group's "
        "account on {{ transfer_date|tanggal }}. Ref {{ transfer_reference }}.",
    ),
    ("grant.report_due", "sms", "id"): (
        None,
        "{{ group_name }}: laporan penggunaan dana (LPJ) UEP wajib diserahkan paling lambat "
        "{{ due_at|tanggal }} melalui pendamping.",
    ),
    ("grant.report_due", "sms", "en"): (
        None,
        "{{ group_name }}: the UEP usage report is due by {{ due_at|tanggal }}; hand it in "
        "through your facilitator.",
    ),
    ("grant.report_accepted", "sms", "id"): (
        None,
        "{{ group_name }}: laporan penggunaan dana UEP sudah diterima. Terima kasih.",
    ),
    ("grant.report_accepted", "sms", "en"): (
        None,
        "{{ group_name }}: your UEP usage report was accepted. Thank you.",
    ),
    ("grant.deadline_passed", "email", "id"): (
        "Tenggat terlewati: {{ group_name }} (tahap {{ deadline_stage }})",
        "Yth. {{ responsible_role }},\n\nUsulan UEP kelompok {{ group_name }} (ref "
        "{{ grant_ref }}) melewati tenggat tahap {{ deadline_stage }} pada "
        "{{ due_at|tanggal }}. Mohon segera ditindaklanjuti.\n\nPlatform KUBE",
    ),
    ("grant.deadline_passed", "email", "en"): (
        "Deadline passed: {{ group_name }} ({{ deadline_stage }})",
        "Dear {{ responsible_role }},\n\nThe UEP application of {{ group_name }} (ref "
        "{{ grant_ref }}) passed the {{ deadline_stage }} deadline on {{ due_at|tanggal }}. "
        "Please act on it.\n\nKUBE platform",
    ),
    ("broadcast", "sms", "id"): (None, "{{ text }}"),
}
