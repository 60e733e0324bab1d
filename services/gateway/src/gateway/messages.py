"""What the portal says when a service refuses something: the problem's stable `code` in the reader's
language, shown next to the field it names (`field`) or above the form. A code not listed here shows the
service's own words (English)."""

from typing import Any

from gateway.i18n import N_, gettext

MESSAGES = {
    # sign-up, profile and names
    "email_taken": N_("Un compte utilise déjà cette adresse e-mail."),
    "institution_exists": N_(
        "Cet établissement a déjà un compte Visiopass : un établissement n'a qu'un compte. Demandez à son "
        "gestionnaire de vous ajouter comme gestionnaire ; si vous ne pouvez pas le joindre, écrivez à "
        "l'assistance, qui lui transmettra votre demande."
    ),
    "uai_required": N_("Une école doit indiquer son UAI."),
    "uai_format": N_("Un UAI compte 7 chiffres suivis d'une lettre, par exemple 0750652B."),
    "uai_checksum": N_("Cet UAI n'est pas valide : sa lettre de contrôle ne correspond pas."),
    "siret_required": N_("Une entreprise doit indiquer son SIRET."),
    "siret_format": N_("Un SIRET compte 14 chiffres."),
    "siret_checksum": N_("Ce SIRET n'est pas valide : sa clé de contrôle ne correspond pas."),
    "siren_format": N_("Un SIREN compte 9 chiffres."),
    "siren_checksum": N_("Ce SIREN n'est pas valide : sa clé de contrôle ne correspond pas."),
    "identifier_invalid": N_("Cet identifiant contient des caractères non autorisés."),
    "name_missing": N_("Le nom est obligatoire."),
    "name_invalid": N_("Ce nom contient des caractères non autorisés ; il lui faut au moins une lettre ou un chiffre."),
    "phone_invalid": N_("Ce numéro de téléphone n'est pas valide."),
    "vat_invalid": N_("Ce numéro de TVA intracommunautaire n'est pas valide."),
    "email_invalid": N_("Cette adresse e-mail n'est pas valide."),
    "email_international_unsupported": N_(
        "Nos e-mails ne peuvent pas atteindre une adresse avec des lettres accentuées ou non latines avant le @ : "
        "donnez-en une autre."
    ),
    # passwords
    "password_too_short": N_(
        "Le mot de passe doit compter au moins 12 caractères ; une phrase de plusieurs mots convient bien."
    ),
    "password_too_long": N_("Le mot de passe est trop long."),
    "password_common": N_("Ce mot de passe est trop courant ou trop facile à deviner."),
    "password_personal": N_("Le mot de passe ne doit contenir ni votre adresse e-mail ni un nom."),
    "wrong_password": N_("Le mot de passe actuel est incorrect."),
    # sessions and links
    "invalid_credentials": N_("Adresse e-mail ou mot de passe incorrect."),
    "invalid_token": N_("Ce lien n'est pas valide, a déjà servi ou a expiré."),
    "too_many_requests": N_("Trop de demandes : réessayez dans quelques minutes."),
    "too_many_attempts": N_("Trop de tentatives : réessayez dans quelques minutes."),
    "too_many_sign_ups": N_("Trop de créations de compte depuis votre connexion : réessayez dans une heure."),
    "rate_limited": N_("Trop de demandes : réessayez dans quelques minutes."),
    # members and roles
    "email_not_verified": N_("Confirmez d'abord votre adresse e-mail avec le lien reçu, avant d'inviter des membres."),
    "invitation_limit": N_("Limite quotidienne d'invitations atteinte : réessayez demain."),
    "member_mail_limit": N_("Trop d'envois à ce membre : réessayez dans une heure."),
    "last_manager": N_("Un compte garde au moins un gestionnaire : nommez d'abord quelqu'un d'autre gestionnaire."),
    "last_organiser": N_("Il doit rester au moins un organisateur."),
    "member_active": N_("Ce membre utilise déjà son compte : lui seul peut changer son adresse, depuis son profil."),
    "member_invited": N_("Ce membre n'a pas encore accepté l'invitation : renvoyez-la plutôt."),
    "account_closed": N_("Ce compte est fermé."),
    "forbidden": N_("Seuls les gestionnaires du compte peuvent faire cela."),
    "not_found": N_("Introuvable."),
    "file_too_large": N_("Le fichier dépasse 5 Mo."),
    "file_missing": N_("Choisissez un fichier."),
    # member imports: a file refused whole (accounts.csv_import.UnreadableFile; nothing is imported) ...
    "file_encoding": N_(
        "Le fichier est en UTF-16 : enregistrez-le au format « CSV UTF-8 » ou « CSV (séparateur : point-virgule) »."
    ),
    "file_binary": N_("Ce n'est pas un fichier texte : choisissez un fichier CSV."),
    "file_empty": N_("Le fichier est vide."),
    "file_malformed": N_("Le fichier CSV est mal formé (un guillemet non fermé, par exemple)."),
    "header_missing": N_(
        "La première ligne doit nommer les colonnes : le nom (ou le prénom et le nom) et l'adresse e-mail."
    ),
    "header_duplicate": N_("L'en-tête nomme deux fois la même colonne."),
    "too_many_rows": N_("Le fichier compte plus de 10 000 lignes : découpez-le."),
    # ... and a row rejected (accounts.csv_import.check_member; the line check of gateway.member_pages)
    "name_too_long": N_("Le nom dépasse 200 caractères."),
    "email_missing": N_("L'adresse e-mail manque."),
    "email_duplicate": N_("Cette adresse figure déjà sur une ligne précédente."),
    "too_many_columns": N_("La ligne a plus de colonnes que l'en-tête."),
    "too_few_columns": N_("La ligne a moins de colonnes que l'en-tête."),
    "line_format": N_("Séparez le nom et l'adresse par un point-virgule : « Nom ; adresse »."),
    # buying tokens (billing's refusals of an order)
    "item_unavailable": N_("Cette offre n'est plus proposée : rechargez la page des tarifs."),
    "purchase_order_not_allowed": N_("Cette offre se paie par carte uniquement, pas sur bon de commande."),
    "service_code_required": N_("Un acheteur public indique le code service (Chorus Pro)."),
    "buyer_order_number_required": N_("Indiquez le numéro de votre bon de commande."),
    "mixed_vat_rates": N_("Ces offres ne peuvent pas figurer sur une même commande : commandez-les séparément."),
    "payment_provider_unavailable": N_("Le paiement par carte est momentanément indisponible : réessayez plus tard."),
    "order_not_pending": N_("Cette commande n'est plus en attente."),
    # enrolments (enrollment's refusals, and billing's reasons for rejecting an enrolment)
    "session_unavailable": N_(
        "Cette session n'est pas ouverte aux inscriptions (elle a commencé, a eu lieu ou est annulée)."
    ),
    "enrolment_closed": N_("Les inscriptions à cette session sont closes."),
    "session_full": N_("Cette session est complète : rejoignez sa liste d'attente."),
    "already_enrolled": N_("Votre établissement est déjà inscrit à cette session."),
    "already_waiting": N_(
        "Votre établissement est déjà sur la liste d'attente de cette session : confirmez la place quand elle vous est "
        "proposée, depuis « Mes Webvisio »."
    ),
    "session_privatised": N_("Cette session est privatisée par un autre établissement."),
    "privatisation_unavailable": N_(
        "Cette session ne peut pas être privatisée : elle n'a pas de tarif de privatisation, ou d'autres "
        "établissements y sont déjà inscrits ou en attente."
    ),
    "price_changed": N_("Le tarif de cette session vient de changer : relisez-le et inscrivez-vous à nouveau."),
    "places_available": N_("Il reste des places : inscrivez-vous directement."),
    "cancellation_closed": N_("L'annulation n'est plus possible : elle se fait au plus tard 48 heures avant le début."),
    "not_cancellable": N_("Cette inscription ne peut pas être annulée."),
    "no_place_offered": N_(
        "Aucune place ne vous est réservée pour cette session, ou le délai pour la confirmer est passé."
    ),
    "insufficient_balance": N_("Votre établissement n'a pas assez de jetons."),
    "account_unverified": N_("Le compte de votre établissement n'est pas encore vérifié."),
    "unknown_account": N_("Ce compte est inconnu du service de facturation."),
    # outgoing webhooks (the notifier's refusals)
    "invalid_url": N_(
        "Cette adresse n'est pas acceptée : une adresse https:// complète, sans identifiant ni mot de passe, ni "
        "adresse privée."
    ),
    "invalid_events": N_("Choisissez au moins un événement parmi ceux proposés."),
    "too_many_endpoints": N_("Un établissement a dix webhooks au plus : supprimez-en un d'abord."),
    "upstream_unavailable": N_("Le service est momentanément indisponible : réessayez dans un instant."),
    "upstream_error": N_("Le service a rencontré une erreur : réessayez plus tard."),
}


def translated(code: str) -> str:
    return gettext(MESSAGES[code])


def problem_message(problem: dict[str, Any]) -> str:
    code = problem.get("code")
    if isinstance(code, str) and code in MESSAGES:
        return translated(code)
    if isinstance(code, str) and code.startswith("password_"):
        return translated("password_common")
    if problem.get("status") == 400 and problem.get("field") in ("email", "new_email"):
        return translated("email_invalid")
    if problem.get("status") == 400 and problem.get("field"):
        return gettext(N_("Cette valeur n'est pas acceptée (caractères non autorisés ou trop longue)."))
    return str(problem.get("detail") or problem.get("title") or translated("upstream_error"))


def form_errors(problem: dict[str, Any], fields: tuple[str, ...] = ()) -> dict[str, str]:
    """{field: message} for the form: the problem's `field` when the form has it, else the form as a whole."""
    field = problem.get("field")
    return {field if isinstance(field, str) and field in fields else "_form": problem_message(problem)}


# What each of the notifier's mails is, as "Mon compte" lists a person's recent mails (by template name).
MAIL_KINDS = {
    "account_registered": N_("Confirmation de votre adresse e-mail"),
    "verification_link": N_("Nouveau lien de confirmation"),
    "password_reset": N_("Lien pour choisir un mot de passe"),
    "password_changed": N_("Mot de passe modifié"),
    "member_invitation": N_("Invitation à rejoindre un établissement"),
    "member_added": N_("Ajout à un établissement"),
    "email_change_confirmation": N_("Confirmation de la nouvelle adresse"),
    "email_changed": N_("Adresse e-mail modifiée"),
    "sign_up_attempted": N_("Tentative d'inscription avec votre adresse"),
    "account_closed": N_("Fermeture du compte"),
    "payment_received": N_("Paiement reçu et facture"),
    "purchase_order_received": N_("Bon de commande reçu"),
    "purchase_order_alert": N_("Nouveau bon de commande à valider"),
    "purchase_order_validated": N_("Bon de commande validé et facture"),
    "purchase_order_refused": N_("Bon de commande refusé"),
    "tokens_expiring": N_("Jetons arrivant à expiration"),
    "credit_note_issued": N_("Avoir émis"),
}


def mail_kind(template: str) -> str:
    return gettext(MAIL_KINDS[template]) if template in MAIL_KINDS else template
