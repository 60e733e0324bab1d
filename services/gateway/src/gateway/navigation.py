"""The portal's navigation, in one place: the main menu, the tabs of "Mon compte" and the organisers'
back-office. A link that needs a service appears only when the gateway has that service (an Upstream of that
name, `available`): the tabs of services not built yet show nothing, never a dead link. Labels are message ids
(translated when shown)."""

from dataclasses import dataclass
from typing import Any

from gateway.i18n import N_


@dataclass(frozen=True)
class Link:
    label: str
    path: str
    needs: str | None = None  # the upstream service behind the page


MAIN = (
    Link(N_("Planning"), "/planning", needs="catalogue"),
    Link(N_("Mon compte"), "/account"),
)
ACCOUNT_TABS = (
    Link(N_("Tableau de bord"), "/account"),
    Link(N_("Mes Webvisio"), "/account/webvisio", needs="enrollment"),
    Link(N_("Achat de jetons"), "/account/tokens", needs="billing"),
    Link(N_("Mes factures"), "/account/invoices", needs="billing"),
    Link(N_("Mes informations"), "/account/information"),
    Link(N_("Notifications"), "/account/notifications", needs="notifier"),
    Link(N_("Membres"), "/account/members"),
    Link(N_("Webhooks"), "/account/webhooks", needs="notifier"),
    Link(N_("Confidentialité"), "/account/privacy"),
)
BACK_OFFICE = (
    Link(N_("Organisateurs"), "/back-office/organisers"),
    Link(N_("Séances"), "/back-office/sessions", needs="catalogue"),
    Link(N_("Séries"), "/back-office/series", needs="catalogue"),
    Link(N_("Thèmes"), "/back-office/themes", needs="catalogue"),
    Link(N_("Salles permanentes"), "/back-office/rooms", needs="catalogue"),
    Link(N_("Statistiques"), "/back-office/statistics", needs="enrollment"),
    Link(N_("Journal des envois"), "/back-office/deliveries", needs="notifier"),
    Link(N_("Bons de commande"), "/back-office/purchase-orders", needs="billing"),
    Link(N_("Paiements"), "/back-office/payments", needs="billing"),
    Link(N_("Factures et avoirs"), "/back-office/invoices", needs="billing"),
    Link(N_("Chiffre d'affaires"), "/back-office/revenue", needs="billing"),
    Link(N_("Tarifs"), "/back-office/price-list", needs="billing"),
)


@dataclass(frozen=True)
class Navigation:
    available: frozenset[str]  # the services this gateway reaches

    def links(self, links: tuple[Link, ...], current_path: str) -> list[dict[str, Any]]:
        return [
            {"label": link.label, "path": link.path, "current": _is_current(link.path, current_path)}
            for link in links
            if link.needs is None or link.needs in self.available
        ]

    def main(self, current_path: str, visitor: dict[str, Any] | None) -> list[dict[str, Any]]:
        shown = tuple(link for link in MAIN if visitor is not None or link.path != "/account")
        return self.links(shown, current_path)


def _is_current(path: str, current_path: str) -> bool:
    return current_path == path or (path != "/account" and current_path.startswith(path + "/"))
