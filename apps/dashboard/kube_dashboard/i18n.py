"""The dashboard's words in Bahasa Indonesia (the default) and English, and number formats.

A plain catalogue: a message id maps to its text per language. A missing id shows itself,
so a forgotten entry is visible on the page rather than an error."""

from __future__ import annotations

from babel.dates import format_date
from babel.numbers import format_decimal

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"
# What a missing figure shows (an en dash, as print does).
NONE_SHOWN = "\u2013"

CATALOGUE: dict[str, dict[str, str]] = {
    "app_title": {"id": "Dasbor KUBE", "en": "KUBE dashboard"},
    "nav_overview": {"id": "Ringkasan", "en": "Overview"},
    "nav_pipeline": {"id": "Alur bantuan", "en": "Grant pipeline"},
    "nav_budgets": {"id": "Serapan anggaran", "en": "Budget absorption"},
    "nav_messages": {"id": "Jangkauan pesan", "en": "Message reach"},
    "nav_compare": {"id": "Bandingkan wilayah", "en": "Compare regions"},
    "sign_in": {"id": "Masuk", "en": "Sign in"},
    "sign_out": {"id": "Keluar", "en": "Sign out"},
    "sign_in_intro": {
        "id": "Tempelkan token akses dari penyedia identitas kantor Anda.",
        "en": "Paste the access token from your office's identity provider.",
    },
    "token": {"id": "Token akses", "en": "Access token"},
    "token_missing": {"id": "Token akses wajib diisi.", "en": "The access token is required."},
    "token_refused": {
        "id": "Token tidak berlaku atau sudah kedaluwarsa. Silakan masuk lagi.",
        "en": "The token is invalid or has expired. Please sign in again.",
    },
    "session_expired": {
        "id": "Sesi Anda berakhir (token kedaluwarsa). Silakan masuk lagi.",
        "en": "Your session has ended (the token expired). Please sign in again.",
    },
    "signed_out": {"id": "Anda sudah keluar.", "en": "You have signed out."},
    "language": {"id": "Bahasa", "en": "Language"},
    "signed_in_as": {"id": "Masuk sebagai", "en": "Signed in as"},
    "region": {"id": "Wilayah", "en": "Region"},
    "region_name": {"id": "Nama wilayah", "en": "Region name"},
    "whole_country": {"id": "Seluruh Indonesia", "en": "All of Indonesia"},
    "your_region": {"id": "Wilayah Anda", "en": "Your region"},
    "up_one_level": {"id": "Naik satu tingkat", "en": "Up one level"},
    "level_province": {"id": "Provinsi", "en": "Province"},
    "level_regency": {"id": "Kabupaten/kota", "en": "Regency/city"},
    "level_district": {"id": "Kecamatan", "en": "District"},
    "groups": {"id": "Kelompok", "en": "Groups"},
    "members": {"id": "Anggota", "en": "Members"},
    "status_draft": {"id": "Draf", "en": "Draft"},
    "status_active": {"id": "Aktif", "en": "Active"},
    "status_suspended": {"id": "Ditangguhkan", "en": "Suspended"},
    "status_dissolved": {"id": "Dibubarkan", "en": "Dissolved"},
    "applications": {"id": "Permohonan", "en": "Applications"},
    "amount": {"id": "Nilai (Rp)", "en": "Amount (Rp)"},
    "absorption": {"id": "Serapan", "en": "Absorption"},
    "region_absorption": {"id": "Serapan wilayah", "en": "Region's absorption"},
    "reached_pct": {"id": "Anggota terjangkau", "en": "Members reached"},
    "members_messaged": {"id": "Anggota dikirimi pesan", "en": "Members messaged"},
    "members_reached": {"id": "Anggota terjangkau", "en": "Members reached"},
    "members_confirmed": {"id": "Anggota terkonfirmasi", "en": "Members confirmed"},
    "groups_messaged": {"id": "Kelompok dikirimi pesan", "en": "Groups messaged"},
    "groups_reached": {"id": "Kelompok terjangkau", "en": "Groups reached"},
    "stage": {"id": "Tahap", "en": "Stage"},
    "count": {"id": "Jumlah", "en": "Count"},
    "overdue": {"id": "Terlambat", "en": "Overdue"},
    "with_deadline": {"id": "Bertenggat", "en": "With a deadline"},
    "overdue_list": {"id": "Permohonan terlambat", "en": "Overdue applications"},
    "overdue_by_stage": {"id": "Keterlambatan per tahap", "en": "Overdue by stage"},
    "funnel": {"id": "Corong per tahap", "en": "Funnel by stage"},
    "due_at": {"id": "Tenggat", "en": "Due"},
    "group": {"id": "Kelompok", "en": "Group"},
    "program": {"id": "Program", "en": "Programme"},
    "fiscal_year": {"id": "Tahun anggaran", "en": "Fiscal year"},
    "funding_source": {"id": "Sumber dana", "en": "Funding source"},
    "total_budget": {"id": "Pagu (Rp)", "en": "Budget (Rp)"},
    "reserved": {"id": "Dicadangkan (Rp)", "en": "Reserved (Rp)"},
    "disbursed": {"id": "Disalurkan (Rp)", "en": "Disbursed (Rp)"},
    "available": {"id": "Sisa (Rp)", "en": "Available (Rp)"},
    "region_disbursed": {"id": "Disalurkan ke wilayah (Rp)", "en": "Disbursed to region (Rp)"},
    "budgets_by_program": {"id": "Anggaran per program", "en": "Budget per programme"},
    "by_region": {"id": "Per wilayah", "en": "By region"},
    "channel": {"id": "Kanal", "en": "Channel"},
    "msg_queued": {"id": "Antre", "en": "Queued"},
    "msg_sending": {"id": "Dikirim", "en": "Sending"},
    "msg_sent": {"id": "Terkirim", "en": "Sent"},
    "msg_delivered": {"id": "Diterima", "en": "Delivered"},
    "msg_failed": {"id": "Gagal", "en": "Failed"},
    "total": {"id": "Total", "en": "Total"},
    "delivery_pct": {"id": "Tingkat terkirim", "en": "Delivery rate"},
    "messages_by_region": {"id": "Pesan per wilayah dan kanal", "en": "Messages by region"},
    "reach_by_region": {"id": "Jangkauan per wilayah", "en": "Reach by region"},
    "opt_outs_by_region": {"id": "Berhenti berlangganan SMS", "en": "SMS opt-outs"},
    "members_with_phone": {"id": "Anggota ber-HP", "en": "Members with a phone"},
    "opted_out": {"id": "Berhenti SMS", "en": "Opted out"},
    "opted_out_pct": {"id": "% berhenti", "en": "% opted out"},
    "period": {"id": "Periode pesan", "en": "Message period"},
    "period_days": {"id": "{n} hari terakhir", "en": "last {n} days"},
    "period_all": {"id": "Semua waktu", "en": "All time"},
    "show": {"id": "Tampilkan", "en": "Show"},
    "download": {"id": "Unduh", "en": "Download"},
    "no_rows": {"id": "Tidak ada data.", "en": "No data."},
    "first_n_only": {
        "id": "Hanya {n} baris pertama yang ditampilkan.",
        "en": "Only the first {n} rows are shown.",
    },
    "groups_by_region": {"id": "Kelompok per wilayah", "en": "Groups by region"},
    "groups_by_status": {"id": "Kelompok per status", "en": "Groups by status"},
    "pipeline_summary": {"id": "Alur bantuan UEP", "en": "UEP grant pipeline"},
    "budget_summary": {"id": "Serapan anggaran", "en": "Budget absorption"},
    "reach_summary": {"id": "Jangkauan pesan", "en": "Message reach"},
    "drill_down": {"id": "Rinci", "en": "Drill down"},
    "group_page": {"id": "Halaman kelompok", "en": "Group page"},
    "business_type": {"id": "Jenis usaha", "en": "Business type"},
    "status": {"id": "Status", "en": "Status"},
    "address": {"id": "Alamat", "en": "Address"},
    "name": {"id": "Nama", "en": "Name"},
    "role": {"id": "Peran", "en": "Role"},
    "nik_masked": {"id": "NIK (disamarkan)", "en": "NIK (masked)"},
    "phone_masked": {"id": "HP (disamarkan)", "en": "Phone (masked)"},
    "grants_of_group": {"id": "Permohonan bantuan", "en": "Grant applications"},
    "visits": {"id": "Kunjungan pendampingan", "en": "Mentoring visits"},
    "visited_on": {"id": "Tanggal kunjungan", "en": "Visit date"},
    "monthly_revenue": {"id": "Omzet bulanan (Rp)", "en": "Monthly revenue (Rp)"},
    "topics": {"id": "Topik", "en": "Topics"},
    "revenue_trend": {"id": "Tren omzet bulanan", "en": "Monthly revenue trend"},
    "messages": {"id": "Pesan", "en": "Messages"},
    "created_at": {"id": "Dibuat", "en": "Created"},
    "event_type": {"id": "Peristiwa", "en": "Event"},
    "recipient": {"id": "Penerima (disamarkan)", "en": "Recipient (masked)"},
    "compare_intro": {
        "id": "Bandingkan dua wilayah dengan ukuran yang sama, misalnya 64 dan 33.",
        "en": "Compare two regions on the same measures, for example 64 and 33.",
    },
    "region_a": {"id": "Wilayah A", "en": "Region A"},
    "region_b": {"id": "Wilayah B", "en": "Region B"},
    "measure": {"id": "Ukuran", "en": "Measure"},
    "comparison": {"id": "Perbandingan", "en": "Comparison"},
    "side_refused": {
        "id": "Data wilayah {code} tidak dapat ditampilkan: {reason}",
        "en": "Region {code} cannot be shown: {reason}",
    },
    "outside_your_region": {
        "id": "wilayah ini di luar wilayah akses Anda.",
        "en": "it is outside the region your access covers.",
    },
    "groups_active": {"id": "Kelompok aktif", "en": "Active groups"},
    "applications_total": {"id": "Permohonan (semua tahap)", "en": "Applications (all stages)"},
    "applications_amount": {"id": "Nilai permohonan (Rp)", "en": "Amount applied (Rp)"},
    "disbursed_count": {"id": "Permohonan disalurkan", "en": "Applications disbursed"},
    "overdue_pct": {"id": "% terlambat", "en": "% overdue"},
    "groups_visited_pct": {"id": "Kelompok dikunjungi", "en": "Groups visited"},
    "median_revenue_before": {"id": "Median omzet sebelum (Rp)", "en": "Median revenue before"},
    "median_revenue_after": {"id": "Median omzet sesudah (Rp)", "en": "Median revenue after"},
    "error_title": {"id": "Terjadi kendala", "en": "Something went wrong"},
    "error_back": {"id": "Kembali ke ringkasan", "en": "Back to the overview"},
    "error_400": {"id": "Permintaan tidak sah.", "en": "The request is not valid."},
    "error_403": {
        "id": "Peran Anda tidak berhak melihat data ini.",
        "en": "Your role may not see this.",
    },
    "error_404": {
        "id": "Halaman atau data tidak ditemukan di wilayah Anda.",
        "en": "The page or data was not found in your region.",
    },
    "error_405": {"id": "Metode tidak diizinkan.", "en": "Method not allowed."},
    "error_422": {"id": "Isian tidak sah", "en": "Invalid input"},
    "error_csrf": {
        "id": "Formulir kedaluwarsa atau tidak sah. Muat ulang halaman lalu coba lagi.",
        "en": "The form expired or is not valid. Reload the page and try again.",
    },
    "error_unavailable": {
        "id": "Layanan platform tidak dapat dihubungi. Coba lagi sebentar lagi.",
        "en": "A platform service cannot be reached. Try again shortly.",
    },
    "error_other": {"id": "Kesalahan di layanan platform.", "en": "A platform service failed."},
    "request_id": {"id": "Nomor permintaan", "en": "Request id"},
    "invalid_region": {
        "id": "Kode wilayah harus 2, 4, 6 atau 10 angka.",
        "en": "A region code is 2, 4, 6 or 10 digits.",
    },
    "invalid_value": {"id": "Nilai tidak sah.", "en": "Not a valid value."},
    "charts_offline": {
        "id": "Grafik tidak tersedia (berkas Chart.js belum terpasang: jalankan make install).",
        "en": "Charts unavailable (Chart.js is not installed: run make install).",
    },
    "yes": {"id": "ya", "en": "yes"},
    "no": {"id": "tidak", "en": "no"},
    "back_to_group_list": {"id": "Kembali", "en": "Back"},
    "as_of": {"id": "Per tanggal", "en": "As of"},
    "absorption_chart": {"id": "Serapan per program (%)", "en": "Absorption per programme (%)"},
    "stage_draft": {"id": "Draf", "en": "Draft"},
    "stage_submitted": {"id": "Diajukan", "en": "Submitted"},
    "stage_verified": {"id": "Diverifikasi", "en": "Verified"},
    "stage_recommended": {"id": "Direkomendasikan", "en": "Recommended"},
    "stage_approved": {"id": "Ditetapkan", "en": "Approved"},
    "stage_disbursed": {"id": "Disalurkan", "en": "Disbursed"},
    "stage_reported": {"id": "LPJ masuk", "en": "Reported"},
    "stage_report_accepted": {"id": "LPJ diterima", "en": "Report accepted"},
    "stage_monitored": {"id": "Dimonev", "en": "Monitored"},
    "stage_closed": {"id": "Selesai", "en": "Closed"},
    "stage_rejected": {"id": "Ditolak", "en": "Rejected"},
    "stage_cancelled": {"id": "Dibatalkan", "en": "Cancelled"},
    "funding_apbn": {"id": "APBN", "en": "APBN"},
    "funding_apbd_province": {"id": "APBD provinsi", "en": "APBD province"},
    "funding_apbd_regency": {"id": "APBD kab/kota", "en": "APBD regency"},
    "channel_sms": {"id": "SMS", "en": "SMS"},
    "channel_email": {"id": "Email", "en": "Email"},
    "role_ketua": {"id": "Ketua", "en": "Chair"},
    "role_sekretaris": {"id": "Sekretaris", "en": "Secretary"},
    "role_bendahara": {"id": "Bendahara", "en": "Treasurer"},
    "role_anggota": {"id": "Anggota", "en": "Member"},
}


def translate(message_id: str, language: str, **values: object) -> str:
    """The text of a message id in a language (falling back to Indonesian, then the id)."""
    texts = CATALOGUE.get(message_id)
    text = message_id if texts is None else texts.get(language) or texts[DEFAULT_LANGUAGE]
    return text.format(**values) if values else text


def format_number(value: object, language: str) -> str:
    """An integer or decimal as people read it (`1.234` in Indonesian); a dash for none."""
    if value is None or value == "":
        return NONE_SHOWN
    if isinstance(value, int | float):
        return format_decimal(value, locale=language)
    return str(value)


def format_money(value: object, language: str) -> str:
    """Rupiah, whole: `Rp 2.000.000`."""
    if value is None:
        return NONE_SHOWN
    return "Rp " + format_number(value, language)


def format_pct(value: object, language: str) -> str:
    """A 0-100 percentage with one decimal; a dash where the APIs say there is nothing to divide."""
    if value is None:
        return NONE_SHOWN
    return format_decimal(value, format="#,##0.0", locale=language) + " %"


def format_day(value: object, language: str) -> str:
    """An ISO date or date-time as a date in the language (`29 November 2026`)."""
    if not value:
        return NONE_SHOWN
    from datetime import date, datetime

    text = str(value)
    try:
        day = datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
    except ValueError:
        return text
    return format_date(day, format="long", locale=language)
