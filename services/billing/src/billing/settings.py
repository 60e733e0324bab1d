from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class BillingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore")

    service_name: str = "billing"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5433/billing"
    http_port: int = 8102

    # Card payments (billing.payments): "sandbox" is the local pay/decline page (make up, tests), "stripe" the real one.
    payment_provider: Literal["sandbox", "stripe"] = "sandbox"
    stripe_api_key: SecretStr = SecretStr("")
    stripe_api_base: str = Field("https://api.stripe.com", description="stripe-mock's address in tests")
    # Signs the provider's webhooks (the sandbox signs with it too). Required: no default anyone could know.
    webhook_secret: SecretStr = SecretStr("")
    webhook_tolerance_seconds: int = Field(300, ge=1, le=3600)
    public_base_url: str = Field(
        "http://127.0.0.1:8000", description="the gateway's public URL (checkout return pages)"
    )

    # The seller printed on invoices and credit notes (French law: identity, registration, VAT number, capital).
    seller_name: str = "Visiopass"
    seller_address: str = "12 rue de la Formation\n75011 Paris\nFrance"
    seller_siren: str = "912345678"
    seller_siret: str = "91234567800017"
    seller_vat_number: str = "FR32912345678"
    seller_legal_form: str = "SAS"
    seller_capital: str = "10 000 €"
    seller_rcs: str = "RCS Paris 912 345 678"
    seller_email: str = "facturation@visiopass.localhost"
    seller_iban: str = "FR76 3000 4000 0500 0012 3456 789"
    seller_bic: str = "BNPAFRPPXXX"
    payment_terms_days: int = 30
    late_penalty_rate: str = "trois fois le taux d'intérêt légal"
    recovery_indemnity_cents: int = 4000
    # Purchase orders waiting longer than this raise the alert metric (users are promised 24 hours).
    purchase_order_alert_hours: float = 20.0
    expiry_job_seconds: float = 3600.0  # how often the expiry job looks (it acts once a lot is due)
