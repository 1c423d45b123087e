"""The double opt-in confirmation email and the pages its link opens, in the seven template
languages (``catalog.SUPPORTED_LANGUAGES``); a lead's other language gets English."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from leadflow.templates.catalog import resolve_language


@dataclass(frozen=True)
class _Copy:
    subject: str
    intro: str  # {shop}
    button: str
    perk: str  # {perk}
    ignore: str
    confirmed_title: str
    confirmed_body: str  # {shop}
    invalid_title: str
    invalid_body: str


_COPY: dict[str, _Copy] = {
    "en": _Copy(
        "Please confirm your subscription",
        "Thanks for signing up to {shop}. Please confirm your email address:",
        "Confirm my subscription",
        "Your welcome gift: {perk}",
        "If you did not sign up, ignore this email: you will not hear from us.",
        "Subscription confirmed",
        "Thank you: you are now subscribed to {shop}.",
        "This link is not valid",
        "The confirmation link is invalid or has expired. Please sign up again.",
    ),
    "de": _Copy(
        "Bitte bestätigen Sie Ihre Anmeldung",
        "Danke für Ihre Anmeldung bei {shop}. Bitte bestätigen Sie Ihre E-Mail-Adresse:",
        "Anmeldung bestätigen",
        "Ihr Willkommensgeschenk: {perk}",
        "Wenn Sie sich nicht angemeldet haben, ignorieren Sie diese E-Mail einfach.",
        "Anmeldung bestätigt",
        "Danke: Sie sind jetzt bei {shop} angemeldet.",
        "Dieser Link ist ungültig",
        "Der Bestätigungslink ist ungültig oder abgelaufen. Bitte melden Sie sich erneut an.",
    ),
    "fr": _Copy(
        "Veuillez confirmer votre inscription",
        "Merci de votre inscription à {shop}. Veuillez confirmer votre adresse e-mail :",
        "Confirmer mon inscription",
        "Votre cadeau de bienvenue : {perk}",
        "Si vous ne vous êtes pas inscrit, ignorez cet e-mail.",
        "Inscription confirmée",
        "Merci : vous êtes maintenant inscrit à {shop}.",
        "Ce lien n'est pas valide",
        "Le lien de confirmation est invalide ou a expiré. Veuillez vous réinscrire.",
    ),
    "es": _Copy(
        "Confirma tu suscripción",
        "Gracias por suscribirte a {shop}. Confirma tu dirección de correo electrónico:",
        "Confirmar mi suscripción",
        "Tu regalo de bienvenida: {perk}",
        "Si no te has suscrito, ignora este correo.",
        "Suscripción confirmada",
        "Gracias: ya estás suscrito a {shop}.",
        "Este enlace no es válido",
        "El enlace de confirmación no es válido o ha caducado. Vuelve a suscribirte.",
    ),
    "it": _Copy(
        "Conferma la tua iscrizione",
        "Grazie per esserti iscritto a {shop}. Conferma il tuo indirizzo email:",
        "Conferma l'iscrizione",
        "Il tuo regalo di benvenuto: {perk}",
        "Se non ti sei iscritto, ignora questa email.",
        "Iscrizione confermata",
        "Grazie: ora sei iscritto a {shop}.",
        "Questo link non è valido",
        "Il link di conferma non è valido o è scaduto. Iscriviti di nuovo.",
    ),
    "pt": _Copy(
        "Confirme a sua subscrição",
        "Obrigado por se inscrever em {shop}. Confirme o seu endereço de email:",
        "Confirmar subscrição",
        "O seu presente de boas-vindas: {perk}",
        "Se não se inscreveu, ignore este email.",
        "Subscrição confirmada",
        "Obrigado: a sua subscrição de {shop} está confirmada.",
        "Este link não é válido",
        "O link de confirmação é inválido ou expirou. Inscreva-se novamente.",
    ),
    "nl": _Copy(
        "Bevestig je inschrijving",
        "Bedankt voor je inschrijving bij {shop}. Bevestig je e-mailadres:",
        "Inschrijving bevestigen",
        "Je welkomstcadeau: {perk}",
        "Heb je je niet ingeschreven? Negeer dan deze e-mail.",
        "Inschrijving bevestigd",
        "Bedankt: je bent nu ingeschreven bij {shop}.",
        "Deze link is ongeldig",
        "De bevestigingslink is ongeldig of verlopen. Schrijf je opnieuw in.",
    ),
}


# The page a plain HTML form post gets when the account set no thank-you URL:
# (title, body, with double opt-in: what to do next).
_RECEIVED: dict[str, tuple[str, str, str]] = {
    "en": ("Thank you", "Thanks for signing up.", "Please confirm with the link we emailed you."),
    "de": (
        "Vielen Dank",
        "Danke für Ihre Anmeldung.",
        "Bitte bestätigen Sie sie mit dem Link in unserer E-Mail.",
    ),
    "fr": (
        "Merci",
        "Merci de votre inscription.",
        "Veuillez la confirmer avec le lien que nous vous avons envoyé.",
    ),
    "es": ("Gracias", "Gracias por suscribirte.", "Confírmalo con el enlace que te enviamos."),
    "it": ("Grazie", "Grazie per l'iscrizione.", "Confermala con il link che ti abbiamo inviato."),
    "pt": ("Obrigado", "Obrigado pela sua inscrição.", "Confirme-a com o link que lhe enviámos."),
    "nl": ("Bedankt", "Bedankt voor je inschrijving.", "Bevestig met de link die we je mailden."),
}


def received_page(language: str | None, *, double_opt_in: bool) -> str:
    lang = resolve_language(language)
    title, body, confirm = _RECEIVED[lang]
    return _page(lang, title, f"{body} {confirm}" if double_opt_in else body)


@dataclass(frozen=True)
class ConfirmationEmail:
    language: str
    subject: str
    text: str
    html: str


def confirmation_email(
    language: str | None, shop: str, link: str, perk: str | None
) -> ConfirmationEmail:
    lang = resolve_language(language)
    copy = _COPY[lang]
    intro = copy.intro.format(shop=shop)
    perk_line = copy.perk.format(perk=perk) if perk else ""
    text = "\n\n".join(p for p in (intro, link, perk_line, copy.ignore) if p)
    html = (
        f'<!doctype html><html lang="{lang}"><body><p>{escape(intro)}</p>'
        f'<p><a href="{escape(link)}">{escape(copy.button)}</a></p>'
        + (f"<p>{escape(perk_line)}</p>" if perk_line else "")
        + f"<p>{escape(copy.ignore)}</p></body></html>"
    )
    return ConfirmationEmail(lang, copy.subject, text, html)


def confirmation_page(language: str | None, shop: str | None, *, confirmed: bool) -> str:
    """The HTML page a confirmation link opens."""
    lang = resolve_language(language)
    copy = _COPY[lang]
    if confirmed:
        title, body = copy.confirmed_title, copy.confirmed_body.format(shop=shop or "")
    else:
        title, body = copy.invalid_title, copy.invalid_body
    return _page(lang, title, body)


def _page(lang: str, title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>"
        f"<p>{escape(body)}</p></body></html>"
    )
