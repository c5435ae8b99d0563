"""The local run's providers: SMS into a file, email into the SMTP sink's .eml files."""

from __future__ import annotations

import email
import email.policy
import json
import multiprocessing
import subprocess
import sys

from services.notifications.providers import SendResult, SmsClient
from services.notifications.providers.local import SENT_FILE, FileSms
from services.notifications.providers.smtp import REFERENCE_HEADER, SmtpConfig, SmtpEmail

from support import ROOT, wait_until

NUMBER = "+6281234567890"


def test_file_sms_appends_one_json_line_per_message(tmp_path):
    sms = FileSms(tmp_path / "sms")
    assert isinstance(sms, SmsClient)

    first = sms.send_sms(NUMBER, "Halo “KUBE” 😀", "notif-1")
    second = sms.send_sms("+6285200001111", "Kedua", "notif-2")

    assert first.provider == "file" and first.message_id
    assert first.message_id != second.message_id
    lines = (tmp_path / "sms" / SENT_FILE).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["reference"] for line in lines] == ["notif-1", "notif-2"]
    record = sms.sent()[0]
    assert record["to"] == NUMBER
    assert record["text"] == "Halo “KUBE” 😀"
    assert record["message_id"] == first.message_id
    assert record["at"].endswith("+00:00")


def test_file_sms_logs_the_number_masked(tmp_path, caplog):
    caplog.set_level("INFO", logger="services.notifications.providers.local")
    FileSms(tmp_path).send_sms(NUMBER, "Halo", "r")
    [record] = caplog.records
    assert record.to == "+62812****7890"
    assert NUMBER not in record.getMessage()


def test_file_sms_with_nothing_sent_reads_empty(tmp_path):
    assert FileSms(tmp_path / "none").sent() == []


def _append_many(directory: str, worker: int, count: int) -> None:
    sms = FileSms(directory)
    for i in range(count):
        # Long lines, so interleaved writes would show as broken JSON.
        sms.send_sms(NUMBER, f"{worker}-{i} " + "x" * 5000, f"{worker}-{i}")


def test_file_sms_lines_stay_whole_when_processes_append_together(tmp_path):
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_many, args=(str(tmp_path), worker, 50))
        for worker in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    references = sorted(record["reference"] for record in FileSms(tmp_path).sent())
    assert references == sorted(f"{w}-{i}" for w in range(2) for i in range(50))


def test_the_mail_sink_stores_each_email_as_an_eml_file(tmp_path, free_port):
    port = free_port()
    mail_dir = tmp_path / "mail"
    output = tmp_path / "sink.log"
    with open(output, "w") as log:
        sink = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.notifications.providers.mailsink",
                "--dir",
                str(mail_dir),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def listening():
        assert sink.poll() is None, output.read_text()
        return "listening on" in output.read_text()

    try:
        wait_until(listening, timeout=60)
        client = SmtpEmail(
            SmtpConfig(
                host="127.0.0.1",
                port=port,
                security="none",
                timeout=30,
                sender="Dinas Sosial <noreply@dinsos.example.go.id>",
            )
        )
        results = [
            client.send_email(
                f"kantor{i}@dinsos.example.go.id",
                f"Laporan {i}",
                "Isi",
                f"notif-{i}",
                html="<p>Isi</p>" if i else None,
            )
            for i in range(2)
        ]
        assert all(isinstance(r, SendResult) for r in results)

        files = wait_until(lambda: len(list(mail_dir.glob("*.eml"))) == 2, timeout=30)
        files = sorted(mail_dir.glob("*.eml"))
        messages = [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in files
        ]
        by_reference = {m[REFERENCE_HEADER]: m for m in messages}
        assert set(by_reference) == {"notif-0", "notif-1"}
        assert by_reference["notif-1"]["Message-ID"] == results[1].message_id
        assert by_reference["notif-1"]["To"] == "kantor1@dinsos.example.go.id"
        assert by_reference["notif-1"].get_body(("html",)).get_content().strip() == "<p>Isi</p>"
        assert not list(mail_dir.glob("*.part"))
    finally:
        sink.terminate()
        try:
            sink.wait(30)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait(10)
    assert sink.returncode == 0, output.read_text()
    assert "mail stored as" in output.read_text()


def test_the_mail_sink_says_how_to_run_it():
    shown = subprocess.run(
        [sys.executable, "-m", "services.notifications.providers.mailsink", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--dir" in shown.stdout and "--port" in shown.stdout
