"""Invoice PDF generation time per document (target: under 200 ms), beside baselines measured in the same run:
a plain one-page reportlab PDF (the floor of any PDF), and the same invoice page without Factur-X.

    uv run python tests/bench/invoice_pdf.py [--documents 200] [--lines 3]

Pure CPU, one thread: no infrastructure is started. Each stage renders the same representative invoice (a
bundle, its bonus tokens and unit tokens to a company) `--documents` times after a short warm-up.
"""

import argparse
import io
import statistics
import time
from collections.abc import Callable
from datetime import date

from reportlab.pdfgen.canvas import Canvas

from billing.documents import Document, Line, Party, Totals, cii_xml, page_pdf, render

TARGET_MS = 200.0


def representative_invoice(unit_lines: int) -> Document:
    lines = (
        Line.of("Forfait 10 + 3 : 10 jetons", 1, 60000, 2000),
        Line.of("Jetons offerts (Forfait 10 + 3)", 3, 0, 2000),
        *(Line.of(f"Jeton - commande complémentaire {n}", 2, 6000, 2000) for n in range(1, unit_lines + 1)),
    )
    return Document(
        kind="invoice",
        number="F2026-000123",
        issued_at=date(2026, 2, 2),
        sale_date=date(2026, 2, 2),
        due_date=date(2026, 3, 4),
        seller=Party(
            "Visiopass",
            "12 rue de la Formation\n75011 Paris\nFrance",
            siren="912345678",
            siret="91234567800017",
            vat_number="FR32912345678",
            legal_form="SAS",
            capital="10 000 €",
            rcs="RCS Paris 912 345 678",
            email="facturation@visiopass.localhost",
        ),
        buyer=Party(
            "Formatech SARL", "8 quai de Saône\n69002 Lyon", siret="52345678900012", vat_number="FR45523456789"
        ),
        buyer_is_business=True,
        lines=lines,
        totals=Totals.of(lines),
        payment_terms="30 jours à compter de la date de facture, par virement",
        paid=False,
        payment_method="purchase_order",
        late_penalty_text="trois fois le taux d'intérêt légal",
        recovery_indemnity_cents=4000,
        order_reference="C2026-000042",
        iban="FR76 3000 6000 0112 3456 7890 189",
        bic="AGRIFRPPXXX",
        buyer_order_number="BC-2026-17",
    )


def plain_page(document: Document) -> bytes:
    """The floor: one reportlab page of text in a standard font, no layout engine, nothing embedded."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer)
    y = 800
    for line in document.lines:
        canvas.drawString(50, y, f"{line.description}  {line.quantity}  {line.net_cents}")
        y -= 14
    canvas.drawString(50, y - 14, f"Total TTC {document.totals.gross_cents}")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def timings_ms(produce: Callable[[], bytes], count: int, warm_up: int = 10) -> list[float]:
    for _ in range(warm_up):
        produce()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        produce()
        times.append((time.perf_counter() - started) * 1000)
    return times


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--lines", type=int, default=3, help="unit-token lines besides the bundle and its bonus")
    args = parser.parse_args()

    document = representative_invoice(args.lines)
    stages = {
        "plain reportlab page": lambda: plain_page(document),
        "invoice page (no Factur-X)": lambda: page_pdf(document),
        "CII XML alone": lambda: cii_xml(document),
        "Factur-X PDF/A-3 (render)": lambda: render(document),
    }
    print(f"{args.documents} documents per stage, {len(document.lines)} lines, {len(render(document)):,} bytes each")
    medians, p95s = {}, {}
    for label, produce in stages.items():
        times = timings_ms(produce, args.documents)
        medians[label], p95s[label] = statistics.median(times), percentile(times, 0.95)
        print(f"{label:28} p50 {medians[label]:7.1f} ms   p95 {p95s[label]:7.1f} ms")
    full, page, floor = (
        medians["Factur-X PDF/A-3 (render)"],
        medians["invoice page (no Factur-X)"],
        medians["plain reportlab page"],
    )
    print(f"render / invoice page: {full / page:.1f}x   render / plain page: {full / floor:.1f}x")
    p95 = p95s["Factur-X PDF/A-3 (render)"]
    print(f"target: under {TARGET_MS:.0f} ms a document -> {'met' if p95 < TARGET_MS else 'MISSED'} (p95 {p95:.1f} ms)")


if __name__ == "__main__":
    main()
