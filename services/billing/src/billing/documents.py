"""Invoices and credit notes as Factur-X PDFs: what a French buyer, an accountant and Chorus Pro can all read.

`render(document)` returns one PDF that is at the same time
- a readable invoice ("Facture") or credit note ("Avoir") holding every mention French law requires (CGI art. 242
  nonies A, Code de commerce L441-9 and L441-10): seller identity and registration, buyer identity and billing
  address, number, issue and sale dates, lines with quantity, unit price HT, VAT rate and amount (bonus tokens
  at zero), totals HT/TVA/TTC, payment terms and due date, late-payment penalty rate, and for business buyers the
  fixed recovery indemnity; a credit note names the invoice it corrects;
- a Factur-X document, profile EN 16931: the CII XML, built here from the same `Document`, checked against the
  Factur-X XSD and embedded by the `factur-x` library; its figures are the printed ones, to the cent;
- a PDF/A-3b file: every font embedded (Bitstream Vera, shipped with reportlab: the standard 14 fonts are never
  embedded), an sRGB output intent, XMP metadata, nothing transparent.

A `Document` whose figures disagree (a line total, the VAT breakdown, HT + TVA = TTC) is refused when it is
built (ValueError): no PDF ever says two things. Characters the embedded font cannot draw are printed unaccented
or as "?", because a glyph-less character would make the file fail PDF/A; the XML keeps the exact text.
Rendering is pure: no database and no clock but the factur-x library's, for the metadata's own timestamps.
It takes a few tens of milliseconds of CPU (tests/bench/invoice_pdf.py): call it from a worker thread in async code.
"""

import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Literal
from xml.sax.saxutils import escape

import facturx
from lxml import etree
from PIL import ImageCms
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, StreamObject, TextStringObject
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

DocumentKind = Literal["invoice", "credit_note"]
PaymentMethod = Literal["card", "purchase_order"]

FACTURX_LEVEL = "en16931"


# -- the input ----------------------------------------------------------------------------------------------------


def vat_of(net_cents: int, vat_rate_bp: int) -> int:
    """The VAT on a net amount, rounded half up to the cent (rate in basis points: 2000 = 20 %)."""
    return (net_cents * vat_rate_bp + 5000) // 10000


@dataclass(frozen=True)
class Party:
    """A seller or a buyer as the invoice names it. `address_lines` may also be given as one multi-line string.
    A line such as "75011 Paris" (after the first) gives the postcode and the city to the XML; a line after it
    is the country's name."""

    name: str
    address_lines: tuple[str, ...] | str
    siren: str | None = None
    siret: str | None = None
    vat_number: str | None = None
    legal_form: str | None = None
    capital: str | None = None
    rcs: str | None = None
    email: str | None = None
    country: str = "FR"

    def __post_init__(self) -> None:
        lines = self.address_lines.splitlines() if isinstance(self.address_lines, str) else self.address_lines
        object.__setattr__(self, "address_lines", tuple(line.strip() for line in lines if line.strip()))
        if not self.name.strip():
            raise ValueError("a party needs a name")
        if len(self.country) != 2:
            raise ValueError(f"country must be an ISO 3166-1 alpha-2 code, not {self.country!r}")

    @property
    def registration_number(self) -> str | None:
        """The SIREN (9 digits): given, or the first nine digits of the SIRET."""
        if self.siren:
            return self.siren.replace(" ", "")
        if self.siret:
            return self.siret.replace(" ", "")[:9]
        return None


@dataclass(frozen=True)
class Line:
    """One invoice line. Bonus tokens are a line of their own at a unit price of 0."""

    description: str
    quantity: int
    unit_net_cents: int
    vat_rate_bp: int
    net_cents: int
    vat_cents: int
    gross_cents: int

    @classmethod
    def of(cls, description: str, quantity: int, unit_net_cents: int, vat_rate_bp: int) -> "Line":
        net = quantity * unit_net_cents
        vat = vat_of(net, vat_rate_bp)
        return cls(description, quantity, unit_net_cents, vat_rate_bp, net, vat, net + vat)

    def __post_init__(self) -> None:
        if self.quantity <= 0 or self.unit_net_cents < 0:
            raise ValueError(f"line {self.description!r}: quantity must be positive and the price not negative")
        if self.vat_rate_bp <= 0:
            # An exempt or zero-rated sale must print its legal ground (e.g. CGI art. 261-4-4°): not supported yet.
            raise ValueError(f"line {self.description!r}: only positive VAT rates are supported")
        if self.net_cents != self.quantity * self.unit_net_cents:
            raise ValueError(f"line {self.description!r}: net {self.net_cents} != quantity x unit price")
        if self.gross_cents != self.net_cents + self.vat_cents:
            raise ValueError(f"line {self.description!r}: gross {self.gross_cents} != net + VAT")


@dataclass(frozen=True)
class VatSubtotal:
    """The VAT breakdown for one rate: the taxable base and the VAT on it."""

    vat_rate_bp: int
    net_cents: int
    vat_cents: int


@dataclass(frozen=True)
class Totals:
    net_cents: int
    vat_cents: int
    gross_cents: int
    vat_breakdown: tuple[VatSubtotal, ...]

    @classmethod
    def of(cls, lines: Iterable[Line]) -> "Totals":
        """The totals of these lines; each rate's VAT is the sum of its lines' VAT, as printed on them."""
        by_rate: dict[int, tuple[int, int]] = {}
        for line in lines:
            net, vat = by_rate.get(line.vat_rate_bp, (0, 0))
            by_rate[line.vat_rate_bp] = (net + line.net_cents, vat + line.vat_cents)
        breakdown = tuple(VatSubtotal(rate, net, vat) for rate, (net, vat) in sorted(by_rate.items()))
        net = sum(s.net_cents for s in breakdown)
        vat = sum(s.vat_cents for s in breakdown)
        return cls(net, vat, net + vat, breakdown)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vat_breakdown", tuple(self.vat_breakdown))
        if self.gross_cents != self.net_cents + self.vat_cents:
            raise ValueError("totals: gross != net + VAT")
        if self.net_cents != sum(s.net_cents for s in self.vat_breakdown):
            raise ValueError("totals: net != sum of the VAT breakdown's bases")
        if self.vat_cents != sum(s.vat_cents for s in self.vat_breakdown):
            raise ValueError("totals: VAT != sum of the VAT breakdown")
        if len({s.vat_rate_bp for s in self.vat_breakdown}) != len(self.vat_breakdown):
            raise ValueError("totals: one VAT breakdown entry per rate")


@dataclass(frozen=True)
class Document:
    """An issued invoice or credit note, as it will be printed. Amounts of a credit note are positive: its kind
    says they are owed back. `paid_on` defaults to the issue date when `paid` (a card payment is invoiced when it
    is received). `service_code` and `commitment_number` are Chorus Pro's fields for public buyers.
    `late_penalty_text` is the rate alone ("trois fois le taux d'intérêt légal"): the sentence around it is ours."""

    kind: DocumentKind
    number: str
    issued_at: date
    sale_date: date
    due_date: date | None
    seller: Party
    buyer: Party
    buyer_is_business: bool
    lines: tuple[Line, ...]
    totals: Totals
    payment_terms: str
    paid: bool
    payment_method: PaymentMethod
    late_penalty_text: str
    recovery_indemnity_cents: int
    order_reference: str
    iban: str | None = None
    bic: str | None = None
    buyer_order_number: str | None = None
    service_code: str | None = None
    commitment_number: str | None = None
    corrected_invoice_number: str | None = None
    corrected_invoice_issued_at: date | None = None
    reason: str | None = None
    paid_on: date | None = None
    currency: str = "EUR"
    language: str = "fr"

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        if self.paid and self.paid_on is None:
            object.__setattr__(self, "paid_on", self.issued_at)
        if self.kind not in ("invoice", "credit_note"):
            raise ValueError(f"unknown document kind {self.kind!r}")
        if self.payment_method not in ("card", "purchase_order"):
            raise ValueError(f"unknown payment method {self.payment_method!r}")
        if self.kind == "credit_note" and not self.corrected_invoice_number:
            raise ValueError("a credit note names the invoice it corrects")
        if self.language != "fr" or self.currency != "EUR":
            raise ValueError("documents are issued in French and in euros")
        if not self.lines:
            raise ValueError("a document has at least one line")
        self._check_totals()

    def _check_totals(self) -> None:
        """Each rate's base is the sum of its lines; its VAT is either the sum of the lines' VAT (as printed on
        them) or the VAT of the base (rounded once per rate, as EN 16931 computes it)."""
        from_lines = {s.vat_rate_bp: s for s in Totals.of(self.lines).vat_breakdown}
        given = {s.vat_rate_bp: s for s in self.totals.vat_breakdown}
        if given.keys() != from_lines.keys():
            raise ValueError("totals: the VAT breakdown's rates are not the lines' rates")
        for rate, subtotal in given.items():
            if subtotal.net_cents != from_lines[rate].net_cents:
                raise ValueError(f"totals: the base at {rate} bp is not the sum of its lines")
            if subtotal.vat_cents not in (from_lines[rate].vat_cents, vat_of(subtotal.net_cents, rate)):
                raise ValueError(f"totals: the VAT at {rate} bp is neither the lines' nor the base's")

    @property
    def is_credit_note(self) -> bool:
        return self.kind == "credit_note"

    @property
    def amount_due_cents(self) -> int:
        return 0 if self.paid else self.totals.gross_cents


def render(document: Document) -> bytes:
    """The document as a Factur-X (EN 16931) PDF/A-3b file."""
    facturx_pdf = facturx.generate_from_binary(
        page_pdf(document),
        cii_xml(document),
        flavor="factur-x",
        level=FACTURX_LEVEL,
        check_xsd=True,
        pdf_metadata=_pdf_metadata(document),
        lang="fr-FR",
    )
    return _completed_pdfa(facturx_pdf)


# -- French formatting ----------------------------------------------------------------------------------------------


def euros(cents: int) -> str:
    """1234567 -> "12 345,67 €" (a French amount; the thousands separator is a plain space)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole:,}".replace(",", " ") + f",{rest:02d} €"


def round_euros(cents: int) -> str:
    """4000 -> "40 €", 4050 -> "40,50 €": how a fixed sum reads in a sentence."""
    return f"{cents // 100} €" if cents % 100 == 0 else euros(cents)


def percent(rate_bp: int) -> str:
    """2000 -> "20 %", 550 -> "5,5 %"."""
    return f"{rate_bp / 100:g}".replace(".", ",") + " %"


def french_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


# -- the visible PDF ------------------------------------------------------------------------------------------------

FONT, BOLD = "Vera", "VeraBd"
INK = colors.HexColor("#1f2937")
MUTED = colors.HexColor("#4b5563")
RULE = colors.HexColor("#d1d5db")
BAND = colors.HexColor("#f3f4f6")
# Every table names its font: a table's default (Helvetica) would be listed on the page even when no cell uses it.
CELLS = [("FONT", (0, 0), (-1, -1), FONT, 8.5), ("TEXTCOLOR", (0, 0), (-1, -1), INK)]


@cache
def _fonts() -> frozenset[int]:
    """Registers the embedded fonts once; the code points they can draw."""
    regular = TTFont(FONT, "Vera.ttf")
    pdfmetrics.registerFont(regular)
    pdfmetrics.registerFont(TTFont(BOLD, "VeraBd.ttf"))
    return frozenset(regular.face.charToGlyph)


def drawable(text: str) -> str:
    """`text` with every character the embedded font cannot draw replaced: first by its unaccented form, else "?"."""
    glyphs = _fonts()
    out = []
    for char in text:
        if ord(char) in glyphs or char in "\n\t":
            out.append(char)
            continue
        plain = "".join(c for c in unicodedata.normalize("NFKD", char) if ord(c) in glyphs)
        out.append(plain or "?")
    return "".join(out)


@cache
def _styles() -> dict[str, ParagraphStyle]:
    _fonts()
    base = ParagraphStyle("base", fontName=FONT, fontSize=8.5, leading=11, textColor=INK)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5, textColor=MUTED),
        "right": ParagraphStyle("right", parent=base, alignment=TA_RIGHT),
        "title": ParagraphStyle("title", parent=base, fontName=BOLD, fontSize=20, leading=24, alignment=TA_RIGHT),
        "seller": ParagraphStyle("seller", parent=base, fontName=BOLD, fontSize=13, leading=16),
        "heading": ParagraphStyle("heading", parent=base, fontName=BOLD, fontSize=9, leading=12, spaceAfter=2),
        "heading_right": ParagraphStyle("heading_right", parent=base, fontName=BOLD, fontSize=9, alignment=TA_RIGHT),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8.5, leading=10.5),
    }


def _p(text: str, style: str = "base") -> Paragraph:
    return Paragraph(escape(drawable(text)).replace("\n", "<br/>"), _styles()[style])


def _b(label: str, value: str, style: str = "base") -> Paragraph:
    """A bold label followed by its value."""
    return Paragraph(
        f"<font name='{BOLD}'>{escape(drawable(label))}</font> {escape(drawable(value))}", _styles()[style]
    )


def _company_mentions(party: Party) -> list[str]:
    """Legal form with its capital, and the trade registry, as far as they are known."""
    lines = []
    if party.legal_form and party.capital:
        lines.append(f"{party.legal_form} au capital de {party.capital}")
    elif party.legal_form:
        lines.append(party.legal_form)
    if party.rcs:
        lines.append(party.rcs)
    return lines


def _legal_identity(party: Party) -> list[str]:
    """The company mentions, then SIREN, SIRET and VAT number, as far as they are known; one mention a line."""
    lines = _company_mentions(party)
    if party.siren:
        lines.append(f"SIREN : {party.siren}")
    if party.siret:
        lines.append(f"SIRET : {party.siret}")
    if party.vat_number:
        lines.append(f"N° TVA intracommunautaire : {party.vat_number}")
    return lines


def _title(document: Document) -> str:
    return "Avoir" if document.is_credit_note else "Facture"


def _header(document: Document) -> Table:
    seller = document.seller
    left = [_p(seller.name, "seller"), _p("\n".join(seller.address_lines))]
    if seller.email:
        left.append(_p(seller.email))
    left.append(_p("\n".join(_legal_identity(seller)), "small"))
    right = [
        _p(_title(document).upper(), "title"),
        _b(f"{_title(document)} n°", document.number, "right"),
        _b("Date d'émission :", french_date(document.issued_at), "right"),
        _b("Date de la vente :", french_date(document.sale_date), "right"),
    ]
    if document.due_date and not document.paid:
        right.append(_b("Date d'échéance :", french_date(document.due_date), "right"))
    table = Table([[left, right]], colWidths=[100 * mm, 74 * mm])
    table.setStyle(TableStyle([*CELLS, ("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, -1), 0)]))
    return table


def _buyer_block(document: Document) -> list[Paragraph]:
    buyer = document.buyer
    block = [_p("Client (adresse de facturation)", "heading"), _p(buyer.name), _p("\n".join(buyer.address_lines))]
    block += [_p(line) for line in _legal_identity(buyer)]
    if buyer.email:
        block.append(_p(buyer.email))
    return block


def _references_block(document: Document) -> list[Paragraph]:
    block = [_p("Références", "heading"), _b("Commande :", document.order_reference)]
    if document.is_credit_note:
        corrected = document.corrected_invoice_number or ""
        if document.corrected_invoice_issued_at:
            corrected += f" du {french_date(document.corrected_invoice_issued_at)}"
        block.append(_b("Avoir sur la facture n°", corrected))
        if document.reason:
            block.append(_b("Motif :", document.reason))
    if document.buyer_order_number:
        block.append(_b("Votre bon de commande n°", document.buyer_order_number))
    if document.service_code:
        block.append(_b("Code service :", document.service_code))
    if document.commitment_number:
        block.append(_b("N° d'engagement :", document.commitment_number))
    block.append(_b("Nature de l'opération :", "prestations de services"))
    return block


def _parties(document: Document) -> Table:
    table = Table([[_buyer_block(document), _references_block(document)]], colWidths=[95 * mm, 79 * mm])
    table.setStyle(
        TableStyle(
            [
                *CELLS,
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BOX", (0, 0), (0, 0), 0.5, RULE),
                ("LEFTPADDING", (0, 0), (0, 0), 6),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ("LEFTPADDING", (1, 0), (1, 0), 12),
            ]
        )
    )
    return table


def _lines_table(document: Document) -> Table:
    numeric = ["Qté", "PU HT", "TVA", "Montant TVA", "Total HT"]
    rows: list[list[object]] = [[_p("Désignation", "heading"), *(_p(h, "heading_right") for h in numeric)]]
    for line in document.lines:
        rows.append(
            [
                _p(line.description, "cell"),
                str(line.quantity),
                euros(line.unit_net_cents),
                percent(line.vat_rate_bp),
                euros(line.vat_cents),
                euros(line.net_cents),
            ]
        )
    table = Table(rows, colWidths=[64 * mm, 13 * mm, 25 * mm, 15 * mm, 29 * mm, 28 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                *CELLS,
                ("BACKGROUND", (0, 0), (-1, 0), BAND),
                ("LINEBELOW", (0, 0), (-1, -1), 0.5, RULE),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _settled_on(document: Document) -> str | None:
    """ "Payée le 01/02/2026" (an invoice) or "Remboursé le ..." (a credit note), once settled."""
    if not (document.paid and document.paid_on):
        return None
    verb = "Remboursé le" if document.is_credit_note else "Payée le"
    return f"{verb} {french_date(document.paid_on)}"


def _payment_method_name(document: Document) -> str:
    return "carte bancaire" if document.payment_method == "card" else "virement"


def _totals_table(document: Document) -> Table:
    totals = document.totals
    rows: list[list[str]] = [["Total HT", euros(totals.net_cents)]]
    for subtotal in totals.vat_breakdown:
        rows.append([f"TVA {percent(subtotal.vat_rate_bp)} sur {euros(subtotal.net_cents)}", euros(subtotal.vat_cents)])
    rows.append(["Total TVA", euros(totals.vat_cents)])
    rows.append(["Total TTC", euros(totals.gross_cents)])
    settled = _settled_on(document)
    if settled:
        rows.append([settled, euros(totals.gross_cents)])
    due_label = "Net à rembourser" if document.is_credit_note else "Net à payer"
    rows.append([due_label, euros(document.amount_due_cents)])
    table = Table(rows, colWidths=[52 * mm, 28 * mm], hAlign="RIGHT")
    gross, last = rows.index(["Total TTC", euros(totals.gross_cents)]), len(rows) - 1
    table.setStyle(
        TableStyle(
            [
                *CELLS,
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("FONT", (0, gross), (-1, gross), BOLD, 9),
                ("FONT", (0, last), (-1, last), BOLD, 9),
                ("LINEABOVE", (0, gross), (-1, gross), 0.5, RULE),
                ("BACKGROUND", (0, last), (-1, last), BAND),
            ]
        )
    )
    return table


def _payment_block(document: Document) -> list[Paragraph]:
    block = [_p("Paiement", "heading")]
    settled = _settled_on(document)
    if settled:
        block.append(_b(f"{settled} par {_payment_method_name(document)}.", ""))
    block.append(_b("Conditions de paiement :", document.payment_terms))
    if document.due_date:
        block.append(_b("Date d'échéance :", french_date(document.due_date)))
    awaiting_transfer = document.payment_method == "purchase_order" and not document.paid
    if awaiting_transfer and document.iban and not document.is_credit_note:
        bank = f"IBAN {document.iban}" + (f" - BIC {document.bic}" if document.bic else "")
        block.append(_b("Règlement par virement :", f"{bank} (référence à indiquer : {document.number})"))
    block.append(_b("Escompte pour paiement anticipé :", "néant."))
    block.append(
        _b(
            "Pénalités de retard :",
            f"taux de {document.late_penalty_text}, exigibles dès le lendemain de la date d'échéance.",
        )
    )
    if document.buyer_is_business:
        block.append(_p(_indemnity_sentence(document)))
    return block


def _indemnity_sentence(document: Document) -> str:
    amount = round_euros(document.recovery_indemnity_cents)
    return (
        f"En cas de retard de paiement, une indemnité forfaitaire pour frais de recouvrement de {amount} est due"
        " au créancier (art. L441-10 et D441-5 du Code de commerce)."
    )


def _footer(document: Document) -> Callable[[Canvas, SimpleDocTemplate], None]:
    """Draws the seller's legal identity and the page number at the foot of every page."""
    seller = document.seller
    mentions = [seller.name, *_legal_identity(seller)]
    text = drawable(" - ".join(mentions))

    def draw(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(MUTED)
        canvas.drawCentredString(A4[0] / 2, 12 * mm, text[:180])
        canvas.drawRightString(A4[0] - 18 * mm, 8 * mm, drawable(f"{document.number} - page {doc.page}"))
        canvas.restoreState()

    return draw


def page_pdf(document: Document) -> bytes:
    """The readable PDF alone, before it becomes Factur-X and PDF/A (a baseline for benchmarks)."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=22 * mm,
        title=f"{_title(document)} {document.number}",
        author=drawable(document.seller.name),
        lang="fr-FR",
        initialFontName=FONT,  # as for tables: no page may list Helvetica, which is not embedded
        enforceColorSpace="rgb",  # the output intent is sRGB: a CMYK colour would break PDF/A
    )
    story = [
        _header(document),
        Spacer(1, 6 * mm),
        _parties(document),
        Spacer(1, 6 * mm),
        _lines_table(document),
        Spacer(1, 4 * mm),
        _totals_table(document),
        Spacer(1, 6 * mm),
        KeepTogether(_payment_block(document)),
    ]
    doc.build(story, onFirstPage=_footer(document), onLaterPages=_footer(document))
    return buffer.getvalue()


def _pdf_metadata(document: Document) -> dict[str, str]:
    title = f"{_title(document)} {document.number}"
    return {
        "author": drawable(document.seller.name),
        "keywords": f"Factur-X, {_title(document)}",
        "title": title,
        "subject": f"{title} du {french_date(document.issued_at)} - {drawable(document.buyer.name)}",
    }


# -- PDF/A-3: what the factur-x library leaves to us --------------------------------------------------------------

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XPACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'.encode()
XPACKET_END = b'\n<?xpacket end="w"?>'


@cache
def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _completed_pdfa(pdf: bytes) -> bytes:
    """Adds what PDF/A-3 needs and the factur-x library does not write: the output intent (the colour space the
    device colours mean), and XMP in the form every XMP parser reads."""
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    _add_srgb_output_intent(writer)
    metadata = writer.root_object["/Metadata"].get_object()
    metadata.set_data(_conventional_xmp(metadata.get_data()))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _add_srgb_output_intent(writer: PdfWriter) -> None:
    profile = StreamObject()
    profile.set_data(_srgb_profile())
    profile[NameObject("/N")] = NumberObject(3)
    intent = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/OutputIntent"),
            NameObject("/S"): NameObject("/GTS_PDFA1"),
            NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB"),
            NameObject("/Info"): TextStringObject("sRGB IEC61966-2.1"),
            NameObject("/DestOutputProfile"): writer._add_object(profile.flate_encode()),
        }
    )
    writer.root_object[NameObject("/OutputIntents")] = ArrayObject([intent])


def _conventional_xmp(packet: bytes) -> bytes:
    """The same metadata with its namespaces declared on rdf:RDF and an rdf:about on every description. The
    factur-x library declares them on x:xmpmeta, which XML allows but Adobe's XMP Core (and veraPDF before 1.28.2,
    inside Mustang's validator) refuses: the whole packet is then ignored and the file is not PDF/A."""
    original = etree.fromstring(packet)
    namespaces = {prefix: uri for prefix, uri in original.nsmap.items() if prefix != "x"}
    meta = etree.Element(original.tag, nsmap={"x": original.nsmap["x"]})
    rdf = etree.SubElement(meta, f"{{{RDF}}}RDF", nsmap=namespaces)
    for description in original.find(f"{{{RDF}}}RDF"):
        description.set(f"{{{RDF}}}about", "")
        rdf.append(description)
    return XPACKET_BEGIN + etree.tostring(meta, encoding="UTF-8") + XPACKET_END


# -- the CII XML (Factur-X EN 16931) --------------------------------------------------------------------------------

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
TYPE_CODES = {"invoice": "380", "credit_note": "381"}  # UNTDID 1001: commercial invoice, credit note
STANDARD_RATE = "S"  # UNCL 5305 VAT category: every line bears a positive rate (Line refuses others)
PAYMENT_MEANS = {"card": "48", "transfer": "58", "undefined": "1"}  # UNTDID 4461
POSTCODE_AND_CITY = re.compile(r"(\d{5})\s+(\S.*)")  # French postcodes: five digits
SIREN_SCHEME, SIRET_SCHEME = "0002", "0009"  # ISO 6523 ICD: SIRENE (the 9-digit SIREN), SIRET-CODE


def _el(parent: etree._Element, tag: str, text: str | None = None, **attributes: str) -> etree._Element:
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{NS[prefix]}}}{name}", attributes)
    if text is not None:
        element.text = text
    return element


def _amount(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}.{rest:02d}"


def _rate(rate_bp: int) -> str:
    return _amount(rate_bp)  # basis points read as a percentage with two decimals: 2000 -> "20.00"


def _date(parent: etree._Element, tag: str, day: date, data_type: str = "udt") -> None:
    _el(_el(parent, tag), f"{data_type}:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _address(parent: etree._Element, party: Party) -> None:
    """The postal address: a "75011 Paris" line gives postcode and city, the country's name line is dropped."""
    lines = list(party.address_lines)
    postcode = city = None
    for index in range(len(lines) - 1, 0, -1):
        found = POSTCODE_AND_CITY.fullmatch(lines[index])
        if found:
            postcode, city = found.groups()
            del lines[index:]  # what follows the city line is the country's name
            break
    address = _el(parent, "ram:PostalTradeAddress")
    if postcode:
        _el(address, "ram:PostcodeCode", postcode)
    street = [*lines[:2], ", ".join(lines[2:])] if len(lines) > 3 else lines
    for tag, text in zip(("ram:LineOne", "ram:LineTwo", "ram:LineThree"), street, strict=False):
        _el(address, tag, text)
    if city:
        _el(address, "ram:CityName", city)
    _el(address, "ram:CountryID", party.country)


def _trade_party(parent: etree._Element, tag: str, party: Party, description: str | None = None) -> None:
    element = _el(parent, tag)
    if party.siret:
        _el(element, "ram:GlobalID", party.siret.replace(" ", ""), schemeID=SIRET_SCHEME)
    _el(element, "ram:Name", party.name)
    if description:
        _el(element, "ram:Description", description)
    if party.registration_number:
        legal = _el(element, "ram:SpecifiedLegalOrganization")
        _el(legal, "ram:ID", party.registration_number, schemeID=SIREN_SCHEME)
    _address(element, party)
    if party.email:
        _el(_el(element, "ram:URIUniversalCommunication"), "ram:URIID", party.email, schemeID="EM")
    if party.vat_number:
        _el(_el(element, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_number.replace(" ", ""), schemeID="VA")


def _notes(document: Document) -> list[tuple[str, str | None]]:
    """Free-text notes with their UNTDID 4451 subject: the French mentions a machine reader should find."""
    notes: list[tuple[str, str | None]] = []
    if document.reason:
        notes.append((f"Motif de l'avoir : {document.reason}", None))
    company = _company_mentions(document.seller)
    if company:
        notes.append((" - ".join([document.seller.name, *company]), "REG"))
    notes.append(("Escompte pour paiement anticipé : néant.", "AAB"))
    notes.append((f"Pénalités de retard : taux de {document.late_penalty_text}.", "PMD"))
    if document.buyer_is_business:
        notes.append((_indemnity_sentence(document), "PMT"))
    return notes


def _line_item(parent: etree._Element, number: int, line: Line) -> None:
    item = _el(parent, "ram:IncludedSupplyChainTradeLineItem")
    _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(number))
    _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.description)
    agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
    _el(_el(agreement, "ram:NetPriceProductTradePrice"), "ram:ChargeAmount", _amount(line.unit_net_cents))
    _el(_el(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", str(line.quantity), unitCode="C62")
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:TypeCode", "VAT")
    _el(tax, "ram:CategoryCode", STANDARD_RATE)
    _el(tax, "ram:RateApplicablePercent", _rate(line.vat_rate_bp))
    summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(line.net_cents))


def _agreement(transaction: etree._Element, document: Document) -> None:
    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    if document.service_code:
        _el(agreement, "ram:BuyerReference", document.service_code)
    seller_mentions = " - ".join(_company_mentions(document.seller))
    _trade_party(agreement, "ram:SellerTradeParty", document.seller, seller_mentions or None)
    _trade_party(agreement, "ram:BuyerTradeParty", document.buyer)
    # Chorus Pro reads the commitment ("engagement juridique") as the purchase order reference (BT-13).
    order = document.commitment_number if document.service_code and document.commitment_number else None
    order = order or document.buyer_order_number
    if order:
        _el(_el(agreement, "ram:BuyerOrderReferencedDocument"), "ram:IssuerAssignedID", order)


def _settlement_xml(transaction: etree._Element, document: Document) -> None:
    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:PaymentReference", document.number)
    _el(settlement, "ram:InvoiceCurrencyCode", document.currency)
    _payment_means(settlement, document)
    for subtotal in document.totals.vat_breakdown:
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:CalculatedAmount", _amount(subtotal.vat_cents))
        _el(tax, "ram:TypeCode", "VAT")
        _el(tax, "ram:BasisAmount", _amount(subtotal.net_cents))
        _el(tax, "ram:CategoryCode", STANDARD_RATE)
        _el(tax, "ram:RateApplicablePercent", _rate(subtotal.vat_rate_bp))
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
    _el(terms, "ram:Description", document.payment_terms)
    if document.due_date:
        _date(terms, "ram:DueDateDateTime", document.due_date)
    totals = document.totals
    summation = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(sum(line.net_cents for line in document.lines)))
    _el(summation, "ram:TaxBasisTotalAmount", _amount(totals.net_cents))
    _el(summation, "ram:TaxTotalAmount", _amount(totals.vat_cents), currencyID=document.currency)
    _el(summation, "ram:GrandTotalAmount", _amount(totals.gross_cents))
    if document.paid:
        _el(summation, "ram:TotalPrepaidAmount", _amount(totals.gross_cents))
    _el(summation, "ram:DuePayableAmount", _amount(document.amount_due_cents))
    if document.is_credit_note and document.corrected_invoice_number:
        corrected = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(corrected, "ram:IssuerAssignedID", document.corrected_invoice_number)
        if document.corrected_invoice_issued_at:
            _date(corrected, "ram:FormattedIssueDateTime", document.corrected_invoice_issued_at, "qdt")


def _payment_means(settlement: etree._Element, document: Document) -> None:
    means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    if document.payment_method == "card":
        _el(means, "ram:TypeCode", PAYMENT_MEANS["card"])
        _el(means, "ram:Information", "Carte bancaire")
    elif document.iban:
        _el(means, "ram:TypeCode", PAYMENT_MEANS["transfer"])
        _el(means, "ram:Information", "Virement SEPA")
        _el(_el(means, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", document.iban.replace(" ", ""))
        if document.bic:
            _el(_el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution"), "ram:BICID", document.bic)
    else:
        _el(means, "ram:TypeCode", PAYMENT_MEANS["undefined"])
        _el(means, "ram:Information", "Virement")


def cii_xml(document: Document) -> bytes:
    """The Factur-X EN 16931 CrossIndustryInvoice of `document` (UTF-8 bytes)."""
    root = etree.Element(f"{{{NS['rsm']}}}CrossIndustryInvoice", nsmap=NS)
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", "urn:cen.eu:en16931:2017")
    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", document.number)
    _el(header, "ram:TypeCode", TYPE_CODES[document.kind])
    _date(header, "ram:IssueDateTime", document.issued_at)
    for content, subject in _notes(document):
        note = _el(header, "ram:IncludedNote")
        _el(note, "ram:Content", content)
        if subject:
            _el(note, "ram:SubjectCode", subject)
    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for number, line in enumerate(document.lines, start=1):
        _line_item(transaction, number, line)
    _agreement(transaction, document)
    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    _date(_el(delivery, "ram:ActualDeliverySupplyChainEvent"), "ram:OccurrenceDateTime", document.sale_date)
    _settlement_xml(transaction, document)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
