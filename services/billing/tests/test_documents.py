"""Invoices and credit notes: every mention French law requires is printed, the embedded Factur-X XML is valid
and says what the page says, and Mustang's validator (veraPDF inside) finds the files completely valid."""

import hashlib
import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from billing.documents import FACTURX_LEVEL, Document, Line, Party, Totals, VatSubtotal, render

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}

SELLER = Party(
    "Visiopass",
    "12 rue de la Formation\n75011 Paris\nFrance",
    siren="912345678",
    siret="91234567800017",
    vat_number="FR32912345678",
    legal_form="SAS",
    capital="10 000 €",
    rcs="RCS Paris 912 345 678",
    email="facturation@visiopass.localhost",
)
COMPANY = Party(
    "Formatech SARL",
    ("Bâtiment B", "8 quai de Saône", "69002 Lyon"),
    siret="52345678900012",
    vat_number="FR45523456789",
    email="compta@formatech.example",
)
SCHOOL = Party("Collège Jean Moulin", ("3 avenue des Écoles", "69003 Lyon"), siret="19690001200017")

BUNDLE = Line.of("Forfait 5 + 1 : 5 jetons", 1, 30000, 2000)
BONUS = Line.of("Jeton offert (Forfait 5 + 1)", 1, 0, 2000)
UNITS = Line.of("Jeton", 3, 6000, 2000)


def invoice(**changes: object) -> Document:
    """An unpaid invoice to a company, payable by transfer; `changes` override any field."""
    lines = changes.pop("lines", (BUNDLE, BONUS, UNITS))
    fields: dict[str, object] = {
        "kind": "invoice",
        "number": "F2026-000123",
        "issued_at": date(2026, 2, 2),
        "sale_date": date(2026, 2, 1),
        "due_date": date(2026, 3, 4),
        "seller": SELLER,
        "buyer": COMPANY,
        "buyer_is_business": True,
        "lines": lines,
        "totals": Totals.of(lines),  # type: ignore[arg-type]
        "payment_terms": "30 jours à compter de la date de facture, par virement",
        "paid": False,
        "payment_method": "purchase_order",
        "late_penalty_text": "trois fois le taux d'intérêt légal",
        "recovery_indemnity_cents": 4000,
        "order_reference": "C2026-000042",
        "iban": "FR76 3000 6000 0112 3456 7890 189",
        "bic": "AGRIFRPPXXX",
        "buyer_order_number": "BC-2026-17",
    }
    fields.update(changes)
    return Document(**fields)  # type: ignore[arg-type]


def school_invoice() -> Document:
    return invoice(
        buyer=SCHOOL,
        buyer_is_business=False,
        service_code="SERV-COMPTA",
        commitment_number="EJ-2026-0042",
        buyer_order_number="BC-77",
    )


def card_invoice() -> Document:
    return invoice(
        paid=True,
        payment_method="card",
        due_date=None,
        buyer_order_number=None,
        payment_terms="Payée à la commande par carte bancaire",
    )


def credit_note() -> Document:
    return invoice(
        kind="credit_note",
        number="A2026-000007",
        issued_at=date(2026, 2, 20),
        due_date=None,
        corrected_invoice_number="F2026-000123",
        corrected_invoice_issued_at=date(2026, 2, 2),
        reason="Annulation de la commande",
        payment_terms="Montant déduit de la facture F2026-000123",
    )


def reader_of(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def text_of(pdf: bytes) -> str:
    """The text of every page, with every run of white space made one space (lines wrap where they like)."""
    return " ".join(" ".join(page.extract_text().split()) for page in reader_of(pdf).pages)


def embedded_xml(pdf: bytes) -> etree._Element:
    filename, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    assert filename == "factur-x.xml"
    return etree.fromstring(xml)


def xml_text(root: etree._Element, path: str) -> list[str]:
    return [element.text for element in root.xpath(path, namespaces=NS)]


def assert_mentions(text: str, mentions: list[str]) -> None:
    missing = [mention for mention in mentions if mention not in text]
    assert not missing, f"missing from the PDF: {missing}\n--- text ---\n{text}"


SELLER_MENTIONS = [
    "Visiopass",
    "12 rue de la Formation 75011 Paris France",
    "SAS au capital de 10 000 €",
    "RCS Paris 912 345 678",
    "SIREN : 912345678",
    "SIRET : 91234567800017",
    "N° TVA intracommunautaire : FR32912345678",
]
LINE_MENTIONS = [
    "Désignation Qté PU HT TVA Montant TVA Total HT",
    "Forfait 5 + 1 : 5 jetons 1 300,00 € 20 % 60,00 € 300,00 €",
    "Jeton offert (Forfait 5 + 1) 1 0,00 € 20 % 0,00 € 0,00 €",
    "Jeton 3 60,00 € 20 % 36,00 € 180,00 €",
    "Total HT 480,00 €",
    "TVA 20 % sur 480,00 € 96,00 €",
    "Total TVA 96,00 €",
    "Total TTC 576,00 €",
]
PAYMENT_MENTIONS = [
    "Escompte pour paiement anticipé : néant.",
    "Pénalités de retard : taux de trois fois le taux d'intérêt légal",
]
INDEMNITY = "indemnité forfaitaire pour frais de recouvrement de 40 €"


# -- what the page says ---------------------------------------------------------------------------------------------


def test_an_invoice_to_a_company_holds_every_mandatory_mention() -> None:
    text = text_of(render(invoice()))

    assert_mentions(
        text,
        [
            *SELLER_MENTIONS,
            "FACTURE",
            "Facture n° F2026-000123",
            "Date d'émission : 02/02/2026",
            "Date de la vente : 01/02/2026",
            "Formatech SARL Bâtiment B 8 quai de Saône 69002 Lyon",
            "SIRET : 52345678900012",
            "N° TVA intracommunautaire : FR45523456789",
            "Commande : C2026-000042",
            "Votre bon de commande n° BC-2026-17",
            *LINE_MENTIONS,
            "Net à payer 576,00 €",
            "Conditions de paiement : 30 jours à compter de la date de facture, par virement",
            "Date d'échéance : 04/03/2026",
            "Règlement par virement : IBAN FR76 3000 6000 0112 3456 7890 189 - BIC AGRIFRPPXXX",
            *PAYMENT_MENTIONS,
            INDEMNITY,
        ],
    )
    assert "Payée le" not in text


def test_an_invoice_to_a_school_shows_chorus_pro_fields_and_no_recovery_indemnity() -> None:
    pdf = render(school_invoice())
    text = text_of(pdf)

    assert_mentions(
        text,
        [
            *SELLER_MENTIONS,
            "Collège Jean Moulin 3 avenue des Écoles 69003 Lyon",
            "SIRET : 19690001200017",
            "Code service : SERV-COMPTA",
            "N° d'engagement : EJ-2026-0042",
            "Votre bon de commande n° BC-77",
            *LINE_MENTIONS,
            *PAYMENT_MENTIONS,
            "Date d'échéance : 04/03/2026",
        ],
    )
    assert "indemnité forfaitaire" not in text
    xml = embedded_xml(pdf)
    agreement = "//ram:ApplicableHeaderTradeAgreement"
    assert xml_text(xml, f"{agreement}/ram:BuyerReference") == ["SERV-COMPTA"]
    # Chorus Pro reads the commitment number as the purchase order reference.
    assert xml_text(xml, f"{agreement}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID") == ["EJ-2026-0042"]
    assert xml_text(xml, "//ram:SubjectCode") == ["REG", "AAB", "PMD"]  # no PMT: no indemnity note


def test_a_credit_note_names_the_invoice_it_corrects_with_positive_amounts() -> None:
    pdf = render(credit_note())
    text = text_of(pdf)

    assert_mentions(
        text,
        [
            *SELLER_MENTIONS,
            "AVOIR",
            "Avoir n° A2026-000007",
            "Date d'émission : 20/02/2026",
            "Avoir sur la facture n° F2026-000123 du 02/02/2026",
            "Motif : Annulation de la commande",
            *LINE_MENTIONS,
            "Net à rembourser 576,00 €",
        ],
    )
    assert "Facture n°" not in text
    assert "-576" not in text
    assert "Règlement par virement" not in text  # the buyer owes nothing on a credit note
    xml = embedded_xml(pdf)
    assert xml_text(xml, "//rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    corrected = "//ram:ApplicableHeaderTradeSettlement/ram:InvoiceReferencedDocument"
    assert xml_text(xml, f"{corrected}/ram:IssuerAssignedID") == ["F2026-000123"]
    assert xml_text(xml, "//ram:GrandTotalAmount") == ["576.00"]


def test_a_card_payment_is_shown_as_paid() -> None:
    pdf = render(card_invoice())
    text = text_of(pdf)

    assert_mentions(text, ["Payée le 02/02/2026 par carte bancaire.", "Net à payer 0,00 €", INDEMNITY])
    assert "Règlement par virement" not in text
    xml = embedded_xml(pdf)
    assert xml_text(xml, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == ["48"]
    assert xml_text(xml, "//ram:TotalPrepaidAmount") == ["576.00"]
    assert xml_text(xml, "//ram:DuePayableAmount") == ["0.00"]


def test_bonus_tokens_are_a_line_at_zero_in_the_page_and_in_the_xml() -> None:
    pdf = render(invoice())

    assert "Jeton offert (Forfait 5 + 1) 1 0,00 € 20 % 0,00 € 0,00 €" in text_of(pdf)
    xml = embedded_xml(pdf)
    bonus_name = "ram:SpecifiedTradeProduct/ram:Name='Jeton offert (Forfait 5 + 1)'"
    [bonus] = xml.xpath(f"//ram:IncludedSupplyChainTradeLineItem[{bonus_name}]", namespaces=NS)
    assert xml_text(bonus, ".//ram:NetPriceProductTradePrice/ram:ChargeAmount") == ["0.00"]
    assert xml_text(bonus, ".//ram:BilledQuantity") == ["1"]
    assert xml_text(bonus, ".//ram:LineTotalAmount") == ["0.00"]


def test_a_long_invoice_runs_over_pages_with_every_line_and_the_totals() -> None:
    lines = tuple(Line.of(f"Session privatisée n° {n}", 1, 6000, 2000) for n in range(1, 81))
    pdf = render(invoice(lines=lines))

    reader = reader_of(pdf)
    assert len(reader.pages) > 1
    text = text_of(pdf)
    assert all(f"Session privatisée n° {n} 1 60,00 €" in text for n in range(1, 81))
    assert_mentions(text, ["Total HT 4 800,00 €", "Total TTC 5 760,00 €", "F2026-000123 - page 2", INDEMNITY])
    assert text.count("Désignation Qté PU HT") == len(reader.pages)  # the header row repeats


def test_characters_the_font_cannot_draw_are_printed_plainly_and_kept_in_the_xml() -> None:
    buyer = replace(COMPANY, name="Ōsaka Gakuen 大阪学園")
    pdf = render(invoice(buyer=buyer))

    assert "Osaka Gakuen ????" in text_of(pdf)
    assert xml_text(embedded_xml(pdf), "//ram:BuyerTradeParty/ram:Name") == ["Ōsaka Gakuen 大阪学園"]


# -- what the file is -----------------------------------------------------------------------------------------------

ALL_DOCUMENTS = {
    "invoice-company": invoice,
    "invoice-school": school_invoice,
    "invoice-card": card_invoice,
    "credit-note": credit_note,
}


@pytest.mark.parametrize("name", ALL_DOCUMENTS)
def test_the_embedded_xml_is_valid_factur_x_at_the_chosen_level_and_matches_the_page(name: str) -> None:
    document = ALL_DOCUMENTS[name]()
    pdf = render(document)

    filename, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    assert filename == "factur-x.xml"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level=FACTURX_LEVEL)
    root = etree.fromstring(xml)
    assert facturx.get_level(root) == FACTURX_LEVEL == "en16931"
    assert xml_text(root, "//rsm:ExchangedDocument/ram:ID") == [document.number]
    assert xml_text(root, "//ram:TaxBasisTotalAmount") == ["480.00"]
    assert xml_text(root, "//ram:TaxTotalAmount") == ["96.00"]
    assert xml_text(root, "//ram:GrandTotalAmount") == ["576.00"]
    assert xml_text(root, "//ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID") == ["912345678"]
    assert xml_text(root, "//ram:SellerTradeParty/ram:GlobalID") == ["91234567800017"]
    assert xml_text(root, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == ["FR32912345678"]


def test_every_font_is_embedded_and_the_colours_have_an_output_intent() -> None:
    reader = reader_of(render(invoice()))

    fonts = [font.get_object() for page in reader.pages for font in page["/Resources"]["/Font"].values()]
    assert fonts
    assert all("/FontFile2" in font["/FontDescriptor"] for font in fonts), [font["/BaseFont"] for font in fonts]
    [intent] = reader.trailer["/Root"]["/OutputIntents"]
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent["/DestOutputProfile"].get_object().get_data()[36:40] == b"acsp"  # an ICC profile
    assert b"pdfaid:part>3<" in reader.trailer["/Root"]["/Metadata"].get_object().get_data()


def test_a_document_whose_figures_disagree_is_refused() -> None:
    with pytest.raises(ValueError, match="net"):
        Line("Jeton", 2, 6000, 2000, 6000, 1200, 7200)
    with pytest.raises(ValueError, match="gross"):
        Line("Jeton", 1, 6000, 2000, 6000, 1200, 7300)
    with pytest.raises(ValueError, match="base"):
        invoice(totals=Totals(1000, 200, 1200, (VatSubtotal(2000, 1000, 200),)))
    with pytest.raises(ValueError, match="gross"):
        Totals(48000, 9600, 57700, (VatSubtotal(2000, 48000, 9600),))
    with pytest.raises(ValueError, match="corrects"):
        invoice(kind="credit_note", number="A2026-000008")


def test_vat_may_be_rounded_once_per_rate_instead_of_per_line() -> None:
    lines = (Line.of("Jeton", 1, 3333, 2000), Line.of("Jeton", 1, 3333, 2000))  # 6,67 € each: 13,34 € by line
    per_rate = Totals(6666, 1333, 7999, (VatSubtotal(2000, 6666, 1333),))  # 13,33 € on the base

    assert Totals.of(lines).vat_cents == 1334
    assert "Total TVA 13,33 €" in text_of(render(invoice(lines=lines, totals=per_rate)))


# -- Mustang's validator (Factur-X XML, XSD and schematron; PDF/A-3 through veraPDF) --------------------------------

MUSTANG_SOURCES = Path(__file__).parent / "mustang"


@dataclass(frozen=True)
class Verdict:
    valid: bool
    report: str


def _build_mustang_runner(cache: Path) -> Path:
    """Fetches Mustang's validator with Maven and compiles the runner, once per version of their sources."""
    sources = [MUSTANG_SOURCES / "pom.xml", MUSTANG_SOURCES / "Validate.java"]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:16]
    home = cache / digest
    if (home / ".complete").exists():
        return home
    for tool in ("mvn", "javac", "java"):
        if shutil.which(tool) is None:
            pytest.fail(f"Mustang's validator needs {tool} (apt-get install maven openjdk-17-jdk-headless)")
    partial = cache / f"{digest}.partial.{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    classpath = partial / "classpath.txt"
    _run(["mvn", "-q", "-B", "-f", str(sources[0]), "dependency:build-classpath", f"-Dmdep.outputFile={classpath}"])
    _run(["javac", "-d", str(partial / "classes"), "-cp", classpath.read_text().strip(), str(sources[1])])
    (partial / ".complete").write_text(digest)
    if not (home / ".complete").exists():  # another session may have finished first: theirs is as good
        shutil.rmtree(home, ignore_errors=True)
        partial.rename(home)
    return home


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, cwd=MUSTANG_SOURCES, check=False)
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session")
def mustang() -> Iterator[Callable[[list[Path]], dict[Path, Verdict]]]:
    """Validates PDFs with Mustang, many in one JVM (a start-up costs seconds, a file about one)."""
    cache = Path(os.environ.get("VISIOPASS_CACHE") or "~/.cache/visiopass").expanduser() / "mustang"
    home = _build_mustang_runner(cache)
    classpath = f"{home / 'classes'}{os.pathsep}{(home / 'classpath.txt').read_text().strip()}"

    def validate(paths: list[Path]) -> dict[Path, Verdict]:
        result = subprocess.run(
            ["java", "-Xmx1g", "-cp", classpath, "Validate", *map(str, paths)],
            capture_output=True,
            text=True,
            check=False,
            timeout=240,
        )
        found = re.findall(r"^MUSTANG-VERDICT (valid|invalid) (.+)$", result.stdout, re.MULTILINE)
        verdicts = {path: status for status, path in found}
        missing = [path for path in paths if str(path) not in verdicts]
        assert not missing, f"no verdict for {missing}:\n{result.stdout}\n{result.stderr}"
        return {
            path: Verdict(verdicts[str(path)] == "valid", Path(f"{path}.report.xml").read_text(encoding="utf-8"))
            for path in paths
        }

    yield validate


@pytest.mark.infra
def test_every_kind_of_document_passes_mustangs_validator(
    mustang: Callable[[list[Path]], dict[Path, Verdict]], tmp_path: Path
) -> None:
    documents = {
        **{name: make() for name, make in ALL_DOCUMENTS.items()},
        "long-invoice": invoice(lines=tuple(Line.of(f"Jeton {n}", 1, 6000, 2000) for n in range(60))),
        "undrawable-name": invoice(buyer=replace(COMPANY, name="Ōsaka Gakuen 大阪学園")),
    }
    paths = []
    for name, document in documents.items():
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(render(document))
        paths.append(path)

    verdicts = mustang(paths)

    invalid = {path.name: verdict.report for path, verdict in verdicts.items() if not verdict.valid}
    assert not invalid, "\n\n".join(f"--- {name} ---\n{report}" for name, report in invalid.items())
    for verdict in verdicts.values():
        assert "flavour=3b" in verdict.report  # veraPDF read the XMP and checked PDF/A-3b
        assert "<profile>urn:cen.eu:en16931:2017</profile>" in verdict.report
