"""The Event base class and the value types shared by events."""

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

SCHEMA_URN = "urn:visiopass:schema:{name}:v{version}"
CE_TYPE = "fr.visiopass.{service}.{name}.v{version}"


class ContractError(ValueError):
    """A message or an event that breaks the contract (bad envelope, unknown type, invalid data)."""


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Language = Literal["fr", "en"]
NonEmptyStr = Annotated[str, Field(min_length=1)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320, json_schema_extra={"format": "email"})]


class Money(BaseModel):
    """An amount of money in integer cents of a currency."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    amount_cents: int = Field(ge=0, description="Amount in cents (1 EUR = 100).")
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code.")


class Notice(BaseModel):
    """Where the mail about an event goes: the person who asked for what the event tells (an order, an
    enrolment), in their language."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    email: Email = Field(description="Address of the person to tell.")
    name: str = Field("", max_length=200, description="Their name, for the greeting.")
    language: Language = Field("fr", description="Language of their mails.")


class VatAmounts(BaseModel):
    """A charged amount with its VAT made explicit: gross = net + vat."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    net: Money = Field(description="Amount before VAT (HT).")
    vat: Money = Field(description="VAT amount (TVA).")
    gross: Money = Field(description="Amount including VAT (TTC).")
    vat_rate_bp: int = Field(ge=0, le=10_000, description="VAT rate in basis points (2000 = 20 %).")

    @model_validator(mode="after")
    def _check_sum(self) -> "VatAmounts":
        if len({self.net.currency, self.vat.currency, self.gross.currency}) != 1:
            raise ValueError("net, vat and gross must share one currency")
        if self.net.amount_cents + self.vat.amount_cents != self.gross.amount_cents:
            raise ValueError("gross must equal net + vat")
        return self


def _event_schema_extra(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    if not (issubclass(cls, Event) and "type" in schema.get("properties", {})):
        return
    schema["title"] = cls.event_name()
    schema["properties"]["type"]["description"] = "Event name: the discriminator of the topic's union."
    schema["required"] = ["type", *[name for name in schema.get("required", []) if name != "type"]]


class Event(BaseModel):
    """Base of every event. Each topic's base class sets `topic` and `key_field` (the field holding the
    aggregate id); concrete events set `type`."""

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_extra=_event_schema_extra)

    type: str
    version: ClassVar[int] = 1
    topic: ClassVar[str]
    key_field: ClassVar[str]

    def aggregate_id(self) -> str:
        """The Kafka key and ce_subject: the id of the aggregate the event belongs to."""
        return str(getattr(self, self.key_field))

    @classmethod
    def event_name(cls) -> str:
        name = cls.model_fields["type"].default
        if not isinstance(name, str):
            raise ContractError(f"{cls.__name__} has no default `type` literal")
        return name

    @classmethod
    def service(cls) -> str:
        return cls.topic.split(".", 1)[0]

    @classmethod
    def ce_type(cls) -> str:
        return CE_TYPE.format(service=cls.service(), name=cls.event_name(), version=cls.version)

    @classmethod
    def dataschema(cls) -> str:
        return SCHEMA_URN.format(name=cls.event_name(), version=cls.version)

    @classmethod
    def schema_filename(cls) -> str:
        return f"{cls.event_name()}.v{cls.version}.json"
