"""Predefined, localized follow-up email templates.

A template is identified by a key ``"<source_type>/<step>"`` (for example
``"abandoned_checkout/1"``) and exists in every language of ``SUPPORTED_LANGUAGES``.
Step 1 is a friendly reminder, step 2 addresses hesitation and offers help, step 3 is
the last chance.

The copy is kept as short per-language strings (``_CHROME`` for the parts every email
shares, ``_COPY`` for the per-key subject, body paragraphs and call to action). The
Jinja2 sources are assembled from them with one HTML layout and one plain-text layout.
Copy strings may use the placeholders ``{first_name}`` (greeting only), ``{merchant}``
and ``{code}`` (discount lines only); everything else in them is literal text, escaped
for HTML and neutralised for Jinja when the sources are built.

The sources are meant for ``jinja2.sandbox.SandboxedEnvironment(undefined=StrictUndefined)``
with ``autoescape=True`` for ``html`` and ``autoescape=False`` for ``subject`` and ``text``,
and a context defining every name in ``TEMPLATE_VARIABLES``:

* ``first_name``, ``last_name``, ``amount``, ``discount_code``, ``recovery_url``: str or None
  (``amount`` is an already formatted total)
* ``products``: a list of dicts with the keys ``name``, ``quantity`` and ``unit_price``
  (an already formatted string or None)
* ``merchant_name``, ``unsubscribe_url``: str (the unsubscribe line is left out if falsy)

They use no filter or global beyond Jinja's builtins.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Final, NamedTuple

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "pt", "nl")
TEMPLATE_SOURCE_TYPES: tuple[str, ...] = (
    "abandoned_checkout",
    "unfinished_order",
    "trial",
    "renewal",
)
TEMPLATE_VARIABLES: tuple[str, ...] = (
    "first_name",
    "last_name",
    "products",
    "amount",
    "recovery_url",
    "unsubscribe_url",
    "merchant_name",
    "discount_code",
)

_DEFAULT_LANGUAGE: Final = "en"
_STEPS: Final = (1, 2, 3)
_LAST_STEP: Final = _STEPS[-1]


@dataclass(frozen=True)
class PredefinedTemplate:
    """The Jinja2 sources of one predefined email in one language."""

    key: str
    language: str
    subject: str
    html: str
    text: str


class _Chrome(NamedTuple):
    """Per-language strings shared by every email."""

    greeting_named: str  # may use {first_name}
    greeting_plain: str
    products_heading: str
    quantity: str
    unit_price: str
    total: str
    colon: str  # label separator: ":", or " :" in French
    discount: str  # steps 1-2; must use {code}
    discount_last: str  # last step; must use {code}
    link_hint: str
    sign_off: str
    team: str  # may use {merchant}
    sent_by: str  # may use {merchant}
    unsubscribe_prompt: str
    unsubscribe_label: str


class _Copy(NamedTuple):
    """Per-language, per-key strings (all may use {merchant})."""

    subject: str
    body: tuple[str, ...]
    cta: str


_CHROME: Final[dict[str, _Chrome]] = {
    "en": _Chrome(
        greeting_named="Hi {first_name},",
        greeting_plain="Hi,",
        products_heading="Your items",
        quantity="Quantity",
        unit_price="Unit price",
        total="Total",
        colon=":",
        discount="Your discount code: {code}",
        discount_last="Last chance to save: use the code {code} before it expires.",
        link_hint="If the button doesn't work, copy and paste this link into your browser:",
        sign_off="Best regards,",
        team="The {merchant} team",
        sent_by="This email was sent to you by {merchant}.",
        unsubscribe_prompt="Don't want to receive these reminders?",
        unsubscribe_label="Unsubscribe",
    ),
    "de": _Chrome(
        greeting_named="Hallo {first_name},",
        greeting_plain="Guten Tag,",
        products_heading="Ihre Artikel",
        quantity="Menge",
        unit_price="Stückpreis",
        total="Gesamtbetrag",
        colon=":",
        discount="Ihr Rabattcode: {code}",
        discount_last=(
            "Ihre letzte Gelegenheit zu sparen: Lösen Sie den Code {code} ein, bevor er abläuft."
        ),
        link_hint=(
            "Falls die Schaltfläche nicht funktioniert, kopieren Sie diesen Link in Ihren Browser:"
        ),
        sign_off="Viele Grüße",
        team="Ihr Team von {merchant}",
        sent_by="Diese E-Mail wurde Ihnen von {merchant} gesendet.",
        unsubscribe_prompt="Sie möchten keine Erinnerungen mehr erhalten?",
        unsubscribe_label="Abmelden",
    ),
    "fr": _Chrome(
        greeting_named="Bonjour {first_name},",
        greeting_plain="Bonjour,",
        products_heading="Vos articles",
        quantity="Quantité",
        unit_price="Prix unitaire",
        total="Total",
        colon=" :",
        discount="Votre code de réduction : {code}",
        discount_last=(
            "Dernière occasion d'en profiter : utilisez le code {code} avant son expiration."
        ),
        link_hint="Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur :",
        sign_off="Cordialement,",
        team="L'équipe {merchant}",
        sent_by="Cet e-mail vous a été envoyé par {merchant}.",
        unsubscribe_prompt="Vous ne souhaitez plus recevoir ces rappels ?",
        unsubscribe_label="Se désabonner",
    ),
    "es": _Chrome(
        greeting_named="Hola, {first_name}:",
        greeting_plain="Hola:",
        products_heading="Sus artículos",
        quantity="Cantidad",
        unit_price="Precio unitario",
        total="Total",
        colon=":",
        discount="Su código de descuento: {code}",
        discount_last=(
            "Última oportunidad para ahorrar: utilice el código {code} antes de que caduque."
        ),
        link_hint="Si el botón no funciona, copie y pegue este enlace en su navegador:",
        sign_off="Saludos cordiales,",
        team="El equipo de {merchant}",
        sent_by="Este correo electrónico le ha sido enviado por {merchant}.",
        unsubscribe_prompt="¿No desea recibir más recordatorios?",
        unsubscribe_label="Darse de baja",
    ),
    "it": _Chrome(
        greeting_named="Gentile {first_name},",
        greeting_plain="Gentile cliente,",
        products_heading="I suoi articoli",
        quantity="Quantità",
        unit_price="Prezzo unitario",
        total="Totale",
        colon=":",
        discount="Il suo codice sconto: {code}",
        discount_last=(
            "Ultima occasione per risparmiare: utilizzi il codice {code} prima che scada."
        ),
        link_hint="Se il pulsante non funziona, copi e incolli questo link nel browser:",
        sign_off="Cordiali saluti,",
        team="Il team di {merchant}",
        sent_by="Questa email le è stata inviata da {merchant}.",
        unsubscribe_prompt="Non desidera più ricevere questi promemoria?",
        unsubscribe_label="Annulla l'iscrizione",
    ),
    "pt": _Chrome(
        greeting_named="Olá, {first_name},",
        greeting_plain="Olá,",
        products_heading="Seus itens",
        quantity="Quantidade",
        unit_price="Preço unitário",
        total="Total",
        colon=":",
        discount="Seu código de desconto: {code}",
        discount_last=(
            "Última oportunidade para economizar: use o código {code} antes que ele expire."
        ),
        link_hint="Se o botão não funcionar, copie e cole este link no seu navegador:",
        sign_off="Atenciosamente,",
        team="Equipe {merchant}",
        sent_by="Este e-mail foi enviado por {merchant}.",
        unsubscribe_prompt="Não deseja mais receber estes lembretes?",
        unsubscribe_label="Cancelar inscrição",
    ),
    "nl": _Chrome(
        greeting_named="Beste {first_name},",
        greeting_plain="Beste klant,",
        products_heading="Uw artikelen",
        quantity="Aantal",
        unit_price="Stukprijs",
        total="Totaal",
        colon=":",
        discount="Uw kortingscode: {code}",
        discount_last="Laatste kans om te besparen: gebruik de code {code} voordat deze verloopt.",
        link_hint="Werkt de knop niet? Kopieer deze link dan naar uw browser:",
        sign_off="Met vriendelijke groet,",
        team="Het team van {merchant}",
        sent_by="Deze e-mail is naar u verzonden door {merchant}.",
        unsubscribe_prompt="Wilt u deze herinneringen niet meer ontvangen?",
        unsubscribe_label="Afmelden",
    ),
}

_COPY: Final[dict[str, dict[str, _Copy]]] = {
    "en": {
        "abandoned_checkout/1": _Copy(
            subject="You left something in your cart at {merchant}",
            body=(
                (
                    "It looks like you didn't get a chance to finish your order. No worries: we've"
                    " saved your cart so you can pick up right where you left off."
                ),
            ),
            cta="Return to your cart",
        ),
        "abandoned_checkout/2": _Copy(
            subject="Still thinking it over?",
            body=(
                (
                    "Your cart at {merchant} is still waiting for you. If something is holding you"
                    " back, whether it's a question about a product, shipping or payment, just "
                    "reply to this email. We're happy to help."
                ),
            ),
            cta="Complete your purchase",
        ),
        "abandoned_checkout/3": _Copy(
            subject="Last chance: your cart is about to expire",
            body=(
                (
                    "This is our last reminder: we can only hold your cart for a little while "
                    "longer, and popular items may sell out."
                ),
                "If you'd still like them, now is the perfect time to complete your order.",
            ),
            cta="Complete your order now",
        ),
        "unfinished_order/1": _Copy(
            subject="Your order at {merchant} isn't complete yet",
            body=(
                (
                    "Thank you for your order! It looks like the payment wasn't completed, so we "
                    "haven't been able to process it yet. You can finish it in just a few clicks."
                ),
            ),
            cta="Complete your payment",
        ),
        "unfinished_order/2": _Copy(
            subject="Need a hand finishing your order?",
            body=(
                (
                    "Your order is still on hold because the payment hasn't gone through. If you "
                    "ran into a problem or would prefer a different payment method, just reply to "
                    "this email and we'll be glad to help."
                ),
            ),
            cta="Finish your order",
        ),
        "unfinished_order/3": _Copy(
            subject="Last reminder: your order will be cancelled soon",
            body=(
                (
                    "We're still holding your order, but we'll have to cancel it soon if the "
                    "payment isn't completed."
                ),
                "Complete it now to make sure everything ships to you as planned.",
            ),
            cta="Complete your order now",
        ),
        "trial/1": _Copy(
            subject="Your {merchant} trial is ending soon",
            body=(
                (
                    "We hope you're enjoying your free trial. It ends soon, so upgrade now to keep"
                    " all your features and data without interruption."
                ),
            ),
            cta="Upgrade now",
        ),
        "trial/2": _Copy(
            subject="Any questions before your trial ends?",
            body=(
                (
                    "Not sure which plan is right for you? Just reply to this email and we'll help"
                    " you find the one that fits your needs. Your settings and data will be kept "
                    "when you upgrade."
                ),
            ),
            cta="Choose your plan",
        ),
        "trial/3": _Copy(
            subject="Last chance to keep your {merchant} account",
            body=(
                "Your trial is about to end, and with it your access to all features.",
                "Upgrade today to carry on right where you left off.",
            ),
            cta="Upgrade today",
        ),
        "renewal/1": _Copy(
            subject="Your {merchant} subscription is up for renewal",
            body=(
                (
                    "Your subscription is coming up for renewal soon. Renew now to keep enjoying "
                    "all of its benefits without interruption."
                ),
            ),
            cta="Renew your subscription",
        ),
        "renewal/2": _Copy(
            subject="Need help renewing your subscription?",
            body=(
                (
                    "We noticed that your subscription hasn't been renewed yet. If you'd like to "
                    "change your plan, update your payment details or have any questions, simply "
                    "reply to this email. We're here to help."
                ),
            ),
            cta="Review your subscription",
        ),
        "renewal/3": _Copy(
            subject="Last reminder: your subscription is about to expire",
            body=(
                (
                    "Your subscription expires very soon. After that, you'll lose access to your "
                    "benefits."
                ),
                "Renew now to avoid any interruption.",
            ),
            cta="Renew now",
        ),
    },
    "de": {
        "abandoned_checkout/1": _Copy(
            subject="Sie haben etwas in Ihrem Warenkorb bei {merchant} vergessen",
            body=(
                (
                    "Es sieht so aus, als hätten Sie Ihre Bestellung nicht abgeschlossen. Kein "
                    "Problem: Wir haben Ihren Warenkorb gespeichert, sodass Sie genau dort "
                    "weitermachen können, wo Sie aufgehört haben."
                ),
            ),
            cta="Zurück zum Warenkorb",
        ),
        "abandoned_checkout/2": _Copy(
            subject="Noch unentschlossen?",
            body=(
                (
                    "Ihr Warenkorb bei {merchant} wartet noch auf Sie. Falls Sie Fragen zu einem "
                    "Produkt, zum Versand oder zur Zahlung haben, antworten Sie einfach auf diese "
                    "E-Mail. Wir helfen Ihnen gerne weiter."
                ),
            ),
            cta="Einkauf abschließen",
        ),
        "abandoned_checkout/3": _Copy(
            subject="Letzte Chance: Ihr Warenkorb läuft bald ab",
            body=(
                (
                    "Dies ist unsere letzte Erinnerung: Wir können Ihren Warenkorb nur noch kurze "
                    "Zeit für Sie reservieren, und beliebte Artikel sind schnell vergriffen."
                ),
                (
                    "Wenn Sie die Artikel noch möchten, ist jetzt der ideale Zeitpunkt, Ihre "
                    "Bestellung abzuschließen."
                ),
            ),
            cta="Jetzt Bestellung abschließen",
        ),
        "unfinished_order/1": _Copy(
            subject="Ihre Bestellung bei {merchant} ist noch nicht abgeschlossen",
            body=(
                (
                    "Vielen Dank für Ihre Bestellung! Leider wurde die Zahlung nicht "
                    "abgeschlossen, daher konnten wir Ihre Bestellung noch nicht bearbeiten. Sie "
                    "können das mit wenigen Klicks nachholen."
                ),
            ),
            cta="Zahlung abschließen",
        ),
        "unfinished_order/2": _Copy(
            subject="Können wir Ihnen bei Ihrer Bestellung helfen?",
            body=(
                (
                    "Ihre Bestellung ist noch offen, da die Zahlung nicht eingegangen ist. Falls "
                    "ein Problem aufgetreten ist oder Sie lieber eine andere Zahlungsart nutzen "
                    "möchten, antworten Sie einfach auf diese E-Mail. Wir helfen Ihnen gerne."
                ),
            ),
            cta="Bestellung abschließen",
        ),
        "unfinished_order/3": _Copy(
            subject="Letzte Erinnerung: Ihre Bestellung wird bald storniert",
            body=(
                (
                    "Wir halten Ihre Bestellung noch für Sie bereit, müssen sie aber in Kürze "
                    "stornieren, wenn die Zahlung nicht abgeschlossen wird."
                ),
                (
                    "Schließen Sie die Zahlung jetzt ab, damit wir Ihnen alles wie geplant "
                    "zusenden können."
                ),
            ),
            cta="Jetzt bezahlen",
        ),
        "trial/1": _Copy(
            subject="Ihre Testphase bei {merchant} endet bald",
            body=(
                (
                    "Wir hoffen, Ihre kostenlose Testphase gefällt Ihnen. Sie endet in Kürze: "
                    "Wechseln Sie jetzt zu einem kostenpflichtigen Tarif, um alle Funktionen und "
                    "Ihre Daten ohne Unterbrechung weiter zu nutzen."
                ),
            ),
            cta="Jetzt upgraden",
        ),
        "trial/2": _Copy(
            subject="Haben Sie noch Fragen, bevor Ihre Testphase endet?",
            body=(
                (
                    "Sie sind sich nicht sicher, welcher Tarif der richtige für Sie ist? Antworten"
                    " Sie einfach auf diese E-Mail, und wir helfen Ihnen, den passenden zu finden."
                    " Ihre Einstellungen und Daten bleiben beim Wechsel vollständig erhalten."
                ),
            ),
            cta="Tarif auswählen",
        ),
        "trial/3": _Copy(
            subject="Letzte Chance: Behalten Sie Ihr Konto bei {merchant}",
            body=(
                "Ihre Testphase endet in Kürze, und damit auch Ihr Zugriff auf alle Funktionen.",
                "Wechseln Sie noch heute zu einem Tarif, um nahtlos weiterzuarbeiten.",
            ),
            cta="Heute noch upgraden",
        ),
        "renewal/1": _Copy(
            subject="Ihr Abonnement bei {merchant} steht zur Verlängerung an",
            body=(
                (
                    "Ihr Abonnement steht demnächst zur Verlängerung an. Verlängern Sie es jetzt, "
                    "um alle Vorteile ohne Unterbrechung weiter zu genießen."
                ),
            ),
            cta="Abonnement verlängern",
        ),
        "renewal/2": _Copy(
            subject="Brauchen Sie Hilfe bei der Verlängerung Ihres Abonnements?",
            body=(
                (
                    "Uns ist aufgefallen, dass Ihr Abonnement noch nicht verlängert wurde. Wenn "
                    "Sie Ihren Tarif ändern oder Ihre Zahlungsdaten aktualisieren möchten oder "
                    "Fragen haben, antworten Sie einfach auf diese E-Mail. Wir sind gerne für Sie "
                    "da."
                ),
            ),
            cta="Abonnement prüfen",
        ),
        "renewal/3": _Copy(
            subject="Letzte Erinnerung: Ihr Abonnement läuft bald ab",
            body=(
                (
                    "Ihr Abonnement endet in Kürze. Danach haben Sie keinen Zugriff mehr auf Ihre "
                    "Vorteile."
                ),
                "Verlängern Sie jetzt, um eine Unterbrechung zu vermeiden.",
            ),
            cta="Jetzt verlängern",
        ),
    },
    "fr": {
        "abandoned_checkout/1": _Copy(
            subject="Vous avez oublié quelque chose dans votre panier chez {merchant}",
            body=(
                (
                    "Il semble que vous n'ayez pas finalisé votre commande. Pas d'inquiétude : "
                    "nous avons conservé votre panier pour que vous puissiez reprendre exactement "
                    "là où vous en étiez."
                ),
            ),
            cta="Retourner à mon panier",
        ),
        "abandoned_checkout/2": _Copy(
            subject="Vous hésitez encore ?",
            body=(
                (
                    "Votre panier chez {merchant} vous attend toujours. Si une question vous "
                    "retient, que ce soit sur un produit, la livraison ou le paiement, répondez "
                    "simplement à cet e-mail. Nous serons ravis de vous aider."
                ),
            ),
            cta="Finaliser mon achat",
        ),
        "abandoned_checkout/3": _Copy(
            subject="Dernière chance : votre panier va bientôt expirer",
            body=(
                (
                    "Ceci est notre dernier rappel : nous ne pouvons conserver votre panier que "
                    "peu de temps encore, et les articles les plus demandés risquent d'être "
                    "épuisés."
                ),
                (
                    "Si vous les souhaitez toujours, c'est le moment idéal pour finaliser votre "
                    "commande."
                ),
            ),
            cta="Finaliser ma commande",
        ),
        "unfinished_order/1": _Copy(
            subject="Votre commande chez {merchant} n'est pas encore finalisée",
            body=(
                (
                    "Merci pour votre commande ! Le paiement ne semble pas avoir abouti, nous "
                    "n'avons donc pas encore pu la traiter. Vous pouvez la finaliser en quelques "
                    "clics."
                ),
            ),
            cta="Finaliser le paiement",
        ),
        "unfinished_order/2": _Copy(
            subject="Besoin d'aide pour finaliser votre commande ?",
            body=(
                (
                    "Votre commande est toujours en attente, car le paiement n'a pas abouti. Si "
                    "vous avez rencontré un problème ou si vous préférez un autre moyen de "
                    "paiement, répondez simplement à cet e-mail : nous vous aiderons volontiers."
                ),
            ),
            cta="Reprendre ma commande",
        ),
        "unfinished_order/3": _Copy(
            subject="Dernier rappel : votre commande sera bientôt annulée",
            body=(
                (
                    "Nous conservons encore votre commande, mais nous devrons l'annuler "
                    "prochainement si le paiement n'est pas effectué."
                ),
                "Finalisez-la dès maintenant pour que nous puissions vous l'expédier comme prévu.",
            ),
            cta="Finaliser ma commande",
        ),
        "trial/1": _Copy(
            subject="Votre essai {merchant} se termine bientôt",
            body=(
                (
                    "Nous espérons que votre essai gratuit vous plaît. Il prendra fin "
                    "prochainement : passez dès maintenant à une offre payante pour conserver "
                    "toutes les fonctionnalités et vos données sans interruption."
                ),
            ),
            cta="Passer à l'offre payante",
        ),
        "trial/2": _Copy(
            subject="Des questions avant la fin de votre essai ?",
            body=(
                (
                    "Vous ne savez pas quelle offre vous convient le mieux ? Répondez simplement à"
                    " cet e-mail et nous vous aiderons à choisir celle qui correspond à vos "
                    "besoins. Vos paramètres et vos données seront conservés."
                ),
            ),
            cta="Choisir mon offre",
        ),
        "trial/3": _Copy(
            subject="Dernière chance de conserver votre compte {merchant}",
            body=(
                (
                    "Votre essai touche à sa fin, et avec lui votre accès à toutes les "
                    "fonctionnalités."
                ),
                "Passez à l'offre payante dès aujourd'hui pour continuer sans interruption.",
            ),
            cta="S'abonner maintenant",
        ),
        "renewal/1": _Copy(
            subject="Votre abonnement {merchant} arrive bientôt à échéance",
            body=(
                (
                    "Votre abonnement arrive bientôt à échéance. Renouvelez-le dès maintenant pour"
                    " continuer à profiter de tous ses avantages sans interruption."
                ),
            ),
            cta="Renouveler mon abonnement",
        ),
        "renewal/2": _Copy(
            subject="Besoin d'aide pour renouveler votre abonnement ?",
            body=(
                (
                    "Nous avons remarqué que votre abonnement n'a pas encore été renouvelé. Si "
                    "vous souhaitez changer d'offre, mettre à jour vos informations de paiement ou"
                    " si vous avez des questions, répondez simplement à cet e-mail. Nous sommes là"
                    " pour vous aider."
                ),
            ),
            cta="Gérer mon abonnement",
        ),
        "renewal/3": _Copy(
            subject="Dernier rappel : votre abonnement expire bientôt",
            body=(
                (
                    "Votre abonnement expire très prochainement. Passé ce délai, vous n'aurez plus"
                    " accès à vos avantages."
                ),
                "Renouvelez-le dès maintenant pour éviter toute interruption.",
            ),
            cta="Renouveler maintenant",
        ),
    },
    "es": {
        "abandoned_checkout/1": _Copy(
            subject="Ha dejado algo en su carrito de {merchant}",
            body=(
                (
                    "Parece que no llegó a finalizar su pedido. No se preocupe: hemos guardado su "
                    "carrito para que pueda continuar justo donde lo dejó."
                ),
            ),
            cta="Volver a mi carrito",
        ),
        "abandoned_checkout/2": _Copy(
            subject="¿Todavía lo está pensando?",
            body=(
                (
                    "Su carrito en {merchant} le sigue esperando. Si tiene alguna duda sobre un "
                    "producto, el envío o el pago, simplemente responda a este correo. Estaremos "
                    "encantados de ayudarle."
                ),
            ),
            cta="Completar la compra",
        ),
        "abandoned_checkout/3": _Copy(
            subject="Última oportunidad: su carrito caducará pronto",
            body=(
                (
                    "Este es nuestro último recordatorio: solo podemos reservar su carrito durante"
                    " poco tiempo más, y los artículos más populares podrían agotarse."
                ),
                "Si todavía los desea, ahora es el momento perfecto para completar su pedido.",
            ),
            cta="Completar mi pedido ahora",
        ),
        "unfinished_order/1": _Copy(
            subject="Su pedido en {merchant} aún no está completo",
            body=(
                (
                    "¡Gracias por su pedido! Parece que el pago no se completó, por lo que todavía"
                    " no hemos podido procesarlo. Puede finalizarlo en solo unos clics."
                ),
            ),
            cta="Completar el pago",
        ),
        "unfinished_order/2": _Copy(
            subject="¿Necesita ayuda para finalizar su pedido?",
            body=(
                (
                    "Su pedido sigue pendiente porque el pago no se ha realizado. Si ha tenido "
                    "algún problema o prefiere otro método de pago, simplemente responda a este "
                    "correo y le ayudaremos con mucho gusto."
                ),
            ),
            cta="Finalizar mi pedido",
        ),
        "unfinished_order/3": _Copy(
            subject="Último recordatorio: su pedido se cancelará pronto",
            body=(
                (
                    "Todavía estamos reservando su pedido, pero tendremos que cancelarlo en breve "
                    "si no se completa el pago."
                ),
                "Complételo ahora para que podamos enviárselo según lo previsto.",
            ),
            cta="Completar mi pedido",
        ),
        "trial/1": _Copy(
            subject="Su prueba de {merchant} termina pronto",
            body=(
                (
                    "Esperamos que esté disfrutando de su prueba gratuita. Terminará pronto: "
                    "contrate ahora un plan para conservar todas las funciones y sus datos sin "
                    "interrupciones."
                ),
            ),
            cta="Contratar un plan",
        ),
        "trial/2": _Copy(
            subject="¿Tiene alguna pregunta antes de que termine su prueba?",
            body=(
                (
                    "¿Tiene dudas sobre qué plan le conviene más? Responda a este correo y le "
                    "ayudaremos a encontrar el que mejor se adapte a sus necesidades. Su "
                    "configuración y sus datos se conservarán."
                ),
            ),
            cta="Elegir mi plan",
        ),
        "trial/3": _Copy(
            subject="Última oportunidad para conservar su cuenta de {merchant}",
            body=(
                (
                    "Su periodo de prueba está a punto de terminar y, con él, su acceso a todas "
                    "las funciones."
                ),
                "Contrate un plan hoy mismo para seguir trabajando sin interrupciones.",
            ),
            cta="Contratar ahora",
        ),
        "renewal/1": _Copy(
            subject="Se acerca la renovación de su suscripción a {merchant}",
            body=(
                (
                    "La renovación de su suscripción está próxima. Renuévela ahora para seguir "
                    "disfrutando de todas sus ventajas sin interrupciones."
                ),
            ),
            cta="Renovar mi suscripción",
        ),
        "renewal/2": _Copy(
            subject="¿Necesita ayuda para renovar su suscripción?",
            body=(
                (
                    "Hemos notado que su suscripción aún no se ha renovado. Si desea cambiar de "
                    "plan, actualizar sus datos de pago o tiene alguna pregunta, simplemente "
                    "responda a este correo. Estamos aquí para ayudarle."
                ),
            ),
            cta="Revisar mi suscripción",
        ),
        "renewal/3": _Copy(
            subject="Último recordatorio: su suscripción caduca pronto",
            body=(
                (
                    "Su suscripción caducará muy pronto. A partir de entonces, perderá el acceso a"
                    " sus ventajas."
                ),
                "Renuévela ahora para evitar cualquier interrupción.",
            ),
            cta="Renovar ahora",
        ),
    },
    "it": {
        "abandoned_checkout/1": _Copy(
            subject="Ha dimenticato qualcosa nel carrello su {merchant}",
            body=(
                (
                    "Sembra che non abbia completato il suo ordine. Nessun problema: abbiamo "
                    "salvato il carrello, così potrà riprendere esattamente da dove aveva "
                    "lasciato."
                ),
            ),
            cta="Torna al carrello",
        ),
        "abandoned_checkout/2": _Copy(
            subject="Ci sta ancora pensando?",
            body=(
                (
                    "Il suo carrello su {merchant} la sta ancora aspettando. Se ha domande su un "
                    "prodotto, sulla spedizione o sul pagamento, risponda semplicemente a questa "
                    "email: saremo lieti di aiutarla."
                ),
            ),
            cta="Completa l'acquisto",
        ),
        "abandoned_checkout/3": _Copy(
            subject="Ultima occasione: il suo carrello sta per scadere",
            body=(
                (
                    "Questo è il nostro ultimo promemoria: possiamo conservare il suo carrello "
                    "solo per poco tempo ancora e gli articoli più richiesti potrebbero esaurirsi."
                ),
                "Se li desidera ancora, questo è il momento ideale per completare l'ordine.",
            ),
            cta="Completa l'ordine ora",
        ),
        "unfinished_order/1": _Copy(
            subject="Il suo ordine su {merchant} non è ancora completo",
            body=(
                (
                    "Grazie per il suo ordine! Sembra che il pagamento non sia stato completato, "
                    "quindi non abbiamo ancora potuto elaborarlo. Può completarlo in pochi clic."
                ),
            ),
            cta="Completa il pagamento",
        ),
        "unfinished_order/2": _Copy(
            subject="Possiamo aiutarla a completare l'ordine?",
            body=(
                (
                    "Il suo ordine è ancora in sospeso perché il pagamento non è andato a buon "
                    "fine. Se ha riscontrato un problema o preferisce un altro metodo di "
                    "pagamento, risponda semplicemente a questa email e saremo lieti di aiutarla."
                ),
            ),
            cta="Completa l'ordine",
        ),
        "unfinished_order/3": _Copy(
            subject="Ultimo promemoria: il suo ordine verrà annullato a breve",
            body=(
                (
                    "Stiamo ancora conservando il suo ordine, ma dovremo annullarlo a breve se il "
                    "pagamento non verrà completato."
                ),
                "Lo completi ora per ricevere tutto come previsto.",
            ),
            cta="Completa il pagamento ora",
        ),
        "trial/1": _Copy(
            subject="La sua prova di {merchant} sta per terminare",
            body=(
                (
                    "Speriamo che la prova gratuita sia di suo gradimento. Terminerà a breve: "
                    "passi ora a un piano a pagamento per continuare a usare tutte le funzionalità"
                    " e i suoi dati senza interruzioni."
                ),
            ),
            cta="Passa a un piano a pagamento",
        ),
        "trial/2": _Copy(
            subject="Ha domande prima della fine della prova?",
            body=(
                (
                    "Non sa quale piano sia più adatto a lei? Risponda a questa email e la "
                    "aiuteremo a scegliere quello giusto per le sue esigenze. Le sue impostazioni "
                    "e i suoi dati verranno mantenuti."
                ),
            ),
            cta="Scegli il piano",
        ),
        "trial/3": _Copy(
            subject="Ultima occasione per mantenere il suo account {merchant}",
            body=(
                (
                    "Il suo periodo di prova sta per terminare e, con esso, l'accesso a tutte le "
                    "funzionalità."
                ),
                "Attivi un piano oggi stesso per continuare senza interruzioni.",
            ),
            cta="Attiva il piano ora",
        ),
        "renewal/1": _Copy(
            subject="Il suo abbonamento a {merchant} è in scadenza",
            body=(
                (
                    "Il suo abbonamento è prossimo al rinnovo. Lo rinnovi ora per continuare a "
                    "usufruire di tutti i vantaggi senza interruzioni."
                ),
            ),
            cta="Rinnova l'abbonamento",
        ),
        "renewal/2": _Copy(
            subject="Ha bisogno di aiuto per il rinnovo?",
            body=(
                (
                    "Abbiamo notato che il suo abbonamento non è ancora stato rinnovato. Se "
                    "desidera cambiare piano, aggiornare i dati di pagamento o ha delle domande, "
                    "risponda semplicemente a questa email. Siamo qui per aiutarla."
                ),
            ),
            cta="Gestisci l'abbonamento",
        ),
        "renewal/3": _Copy(
            subject="Ultimo promemoria: il suo abbonamento sta per scadere",
            body=(
                (
                    "Il suo abbonamento scadrà a brevissimo. Dopo la scadenza non avrà più accesso"
                    " ai suoi vantaggi."
                ),
                "Lo rinnovi ora per evitare interruzioni.",
            ),
            cta="Rinnova ora",
        ),
    },
    "pt": {
        "abandoned_checkout/1": _Copy(
            subject="Você deixou itens no seu carrinho",
            body=(
                (
                    "Parece que você não concluiu sua compra. Não se preocupe: salvamos seu "
                    "carrinho para que você possa continuar exatamente de onde parou."
                ),
            ),
            cta="Voltar ao carrinho",
        ),
        "abandoned_checkout/2": _Copy(
            subject="Ainda está pensando?",
            body=(
                (
                    "Seu carrinho na loja {merchant} continua esperando por você. Se tiver alguma "
                    "dúvida sobre um produto, a entrega ou o pagamento, basta responder a este "
                    "e-mail. Teremos prazer em ajudar."
                ),
            ),
            cta="Finalizar compra",
        ),
        "abandoned_checkout/3": _Copy(
            subject="Última chance: seu carrinho vai expirar em breve",
            body=(
                (
                    "Este é o nosso último lembrete: só podemos manter seu carrinho reservado por "
                    "pouco tempo, e os itens mais procurados podem esgotar."
                ),
                "Se ainda quiser esses produtos, agora é o momento ideal para concluir seu pedido.",
            ),
            cta="Concluir meu pedido agora",
        ),
        "unfinished_order/1": _Copy(
            subject="Seu pedido na loja {merchant} ainda não foi concluído",
            body=(
                (
                    "Obrigado pelo seu pedido! Parece que o pagamento não foi concluído, por isso "
                    "ainda não conseguimos processá-lo. Você pode finalizá-lo em poucos cliques."
                ),
            ),
            cta="Concluir pagamento",
        ),
        "unfinished_order/2": _Copy(
            subject="Precisa de ajuda para concluir seu pedido?",
            body=(
                (
                    "Seu pedido ainda está pendente porque o pagamento não foi confirmado. Se teve"
                    " algum problema ou prefere outra forma de pagamento, basta responder a este "
                    "e-mail e teremos prazer em ajudar."
                ),
            ),
            cta="Finalizar meu pedido",
        ),
        "unfinished_order/3": _Copy(
            subject="Último lembrete: seu pedido será cancelado em breve",
            body=(
                (
                    "Ainda estamos reservando seu pedido, mas precisaremos cancelá-lo em breve se "
                    "o pagamento não for concluído."
                ),
                "Conclua o pagamento agora para receber tudo conforme o previsto.",
            ),
            cta="Concluir meu pedido",
        ),
        "trial/1": _Copy(
            subject="Seu teste gratuito de {merchant} termina em breve",
            body=(
                (
                    "Esperamos que você esteja aproveitando seu teste gratuito. Ele termina em "
                    "breve: assine agora um plano para manter todos os recursos e seus dados sem "
                    "interrupções."
                ),
            ),
            cta="Assinar agora",
        ),
        "trial/2": _Copy(
            subject="Alguma dúvida antes do fim do seu teste?",
            body=(
                (
                    "Não sabe qual plano é o mais indicado? Basta responder a este e-mail e "
                    "ajudaremos você a encontrar o que melhor atende às suas necessidades. Suas "
                    "configurações e seus dados serão mantidos."
                ),
            ),
            cta="Escolher meu plano",
        ),
        "trial/3": _Copy(
            subject="Última chance de manter sua conta {merchant}",
            body=(
                (
                    "Seu período de teste está chegando ao fim e, com ele, o acesso a todos os "
                    "recursos."
                ),
                "Assine hoje mesmo para continuar sem interrupções.",
            ),
            cta="Assinar hoje",
        ),
        "renewal/1": _Copy(
            subject="A renovação da sua assinatura {merchant} está próxima",
            body=(
                (
                    "Sua assinatura será renovada em breve. Renove agora para continuar "
                    "aproveitando todos os benefícios sem interrupções."
                ),
            ),
            cta="Renovar assinatura",
        ),
        "renewal/2": _Copy(
            subject="Precisa de ajuda para renovar sua assinatura?",
            body=(
                (
                    "Notamos que sua assinatura ainda não foi renovada. Se quiser mudar de plano, "
                    "atualizar seus dados de pagamento ou tiver alguma dúvida, basta responder a "
                    "este e-mail. Estamos aqui para ajudar."
                ),
            ),
            cta="Revisar minha assinatura",
        ),
        "renewal/3": _Copy(
            subject="Último lembrete: sua assinatura vence em breve",
            body=(
                (
                    "Sua assinatura vence muito em breve. Depois disso, você perderá o acesso aos "
                    "seus benefícios."
                ),
                "Renove agora para evitar qualquer interrupção.",
            ),
            cta="Renovar agora",
        ),
    },
    "nl": {
        "abandoned_checkout/1": _Copy(
            subject="U heeft iets laten liggen in uw winkelwagen bij {merchant}",
            body=(
                (
                    "Het lijkt erop dat u uw bestelling niet heeft afgerond. Geen zorgen: we "
                    "hebben uw winkelwagen bewaard, zodat u verder kunt gaan waar u gebleven was."
                ),
            ),
            cta="Terug naar winkelwagen",
        ),
        "abandoned_checkout/2": _Copy(
            subject="Twijfelt u nog?",
            body=(
                (
                    "Uw winkelwagen bij {merchant} staat nog voor u klaar. Heeft u vragen over een"
                    " product, de verzending of de betaling? Beantwoord dan gewoon deze e-mail. We"
                    " helpen u graag verder."
                ),
            ),
            cta="Aankoop afronden",
        ),
        "abandoned_checkout/3": _Copy(
            subject="Laatste kans: uw winkelwagen verloopt binnenkort",
            body=(
                (
                    "Dit is onze laatste herinnering: we kunnen uw winkelwagen nog maar korte tijd"
                    " bewaren, en populaire artikelen kunnen snel uitverkocht raken."
                ),
                (
                    "Wilt u de artikelen nog steeds? Dan is dit het ideale moment om uw bestelling"
                    " af te ronden."
                ),
            ),
            cta="Bestelling nu afronden",
        ),
        "unfinished_order/1": _Copy(
            subject="Uw bestelling bij {merchant} is nog niet afgerond",
            body=(
                (
                    "Bedankt voor uw bestelling! Het lijkt erop dat de betaling niet is voltooid, "
                    "waardoor we uw bestelling nog niet kunnen verwerken. U kunt dit in een paar "
                    "klikken afronden."
                ),
            ),
            cta="Betaling afronden",
        ),
        "unfinished_order/2": _Copy(
            subject="Kunnen we u helpen met uw bestelling?",
            body=(
                (
                    "Uw bestelling staat nog open, omdat de betaling niet is ontvangen. Is er iets"
                    " misgegaan of gebruikt u liever een andere betaalmethode? Beantwoord dan "
                    "gewoon deze e-mail; we helpen u graag."
                ),
            ),
            cta="Bestelling afronden",
        ),
        "unfinished_order/3": _Copy(
            subject="Laatste herinnering: uw bestelling wordt binnenkort geannuleerd",
            body=(
                (
                    "We houden uw bestelling nog even voor u vast, maar moeten deze binnenkort "
                    "annuleren als de betaling niet wordt voltooid."
                ),
                "Rond de betaling nu af, zodat we alles zoals gepland kunnen verzenden.",
            ),
            cta="Nu betalen",
        ),
        "trial/1": _Copy(
            subject="Uw proefperiode bij {merchant} loopt binnenkort af",
            body=(
                (
                    "We hopen dat u tevreden bent over uw gratis proefperiode. Deze loopt "
                    "binnenkort af: stap nu over op een betaald abonnement om al uw functies en "
                    "gegevens zonder onderbreking te blijven gebruiken."
                ),
            ),
            cta="Nu upgraden",
        ),
        "trial/2": _Copy(
            subject="Nog vragen voordat uw proefperiode afloopt?",
            body=(
                (
                    "Weet u niet zeker welk abonnement het beste bij u past? Beantwoord gewoon "
                    "deze e-mail, dan helpen we u het juiste te kiezen. Uw instellingen en "
                    "gegevens blijven bij het overstappen volledig behouden."
                ),
            ),
            cta="Kies uw abonnement",
        ),
        "trial/3": _Copy(
            subject="Laatste kans om uw account bij {merchant} te behouden",
            body=(
                "Uw proefperiode loopt bijna af, en daarmee ook uw toegang tot alle functies.",
                "Stap vandaag nog over om zonder onderbreking verder te werken.",
            ),
            cta="Vandaag nog upgraden",
        ),
        "renewal/1": _Copy(
            subject="Uw abonnement bij {merchant} is binnenkort aan verlenging toe",
            body=(
                (
                    "Uw abonnement is binnenkort aan verlenging toe. Verleng het nu om zonder "
                    "onderbreking van al uw voordelen te blijven genieten."
                ),
            ),
            cta="Abonnement verlengen",
        ),
        "renewal/2": _Copy(
            subject="Hulp nodig bij het verlengen van uw abonnement?",
            body=(
                (
                    "Het viel ons op dat uw abonnement nog niet is verlengd. Wilt u van abonnement"
                    " wisselen, uw betaalgegevens bijwerken of heeft u vragen? Beantwoord dan "
                    "gewoon deze e-mail. We helpen u graag."
                ),
            ),
            cta="Abonnement bekijken",
        ),
        "renewal/3": _Copy(
            subject="Laatste herinnering: uw abonnement verloopt binnenkort",
            body=(
                (
                    "Uw abonnement verloopt zeer binnenkort. Daarna heeft u geen toegang meer tot "
                    "uw voordelen."
                ),
                "Verleng nu om een onderbreking te voorkomen.",
            ),
            cta="Nu verlengen",
        ),
    },
}


# --- building the Jinja2 sources ----------------------------------------------------------

_PLACEHOLDER: Final = re.compile(r"\{([a-z_]+)\}")

# What each copy placeholder becomes in the Jinja2 source. The subject strips CR/LF from
# the merchant name so a subject can never turn into several header lines.
_SUBJECT_VARS: Final[Mapping[str, str]] = {
    "merchant": '{{ merchant_name|replace("\\r", " ")|replace("\\n", " ") }}',
}
_TEXT_VARS: Final[Mapping[str, str]] = {
    "merchant": "{{ merchant_name }}",
    "first_name": "{{ first_name }}",
    "code": "{{ discount_code }}",
}
_HTML_VARS: Final[Mapping[str, str]] = {
    **_TEXT_VARS,
    "code": (
        '<strong style="font-family:Consolas,Menlo,monospace;font-size:18px;'
        'letter-spacing:1px;">{{ discount_code }}</strong>'
    ),
}

_CSS: Final[Mapping[str, str]] = {
    "css_body": "margin:0;padding:0;background-color:#f4f5f7;",
    "css_wrapper": (
        "max-width:600px;margin:0 auto;padding:24px 12px;"
        "font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1f2933;"
    ),
    "css_card": "background-color:#ffffff;border-radius:8px;padding:32px 24px;",
    "css_p": "margin:0 0 16px;",
    "css_products": "margin:24px 0;border-top:1px solid #e4e7eb;",
    "css_products_heading": "margin:16px 0 4px;font-weight:bold;",
    "css_product": "padding:12px 0;border-bottom:1px solid #e4e7eb;",
    "css_product_name": "font-weight:bold;",
    "css_product_meta": "font-size:14px;color:#52606d;",
    "css_total": "margin:0 0 16px;font-weight:bold;text-align:right;",
    "css_discount": (
        "margin:0 0 24px;padding:12px 16px;border:2px dashed #3e4c59;border-radius:6px;"
        "text-align:center;"
    ),
    "css_cta_wrap": "margin:24px 0;text-align:center;",
    "css_button": (
        "display:inline-block;padding:14px 28px;background-color:#2563eb;color:#ffffff;"
        "text-decoration:none;border-radius:6px;font-weight:bold;"
    ),
    "css_hint": "margin:0 0 16px;font-size:13px;color:#52606d;",
    "css_link": "color:#2563eb;word-break:break-all;",
    "css_signoff": "margin:24px 0 0;",
    "css_footer": "padding:16px 8px;text-align:center;font-size:12px;color:#7b8794;",
    "css_footer_p": "margin:0 0 8px;",
    "css_footer_link": "color:#7b8794;text-decoration:underline;",
}

# ${...} slots are filled once per language and key; {{ }} / {% %} is left to Jinja2.
# "{%-" joins a block tag to the previous line, so skipped blocks leave no blank lines.
_HTML_LAYOUT: Final = Template("""\
<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
</head>
<body style="${css_body}">
<div style="${css_wrapper}">
<div style="${css_card}">
<p style="${css_p}">${greeting}</p>
${paragraphs}
{%- if products %}
<div style="${css_products}">
<p style="${css_products_heading}">${products_heading}</p>
{%- for product in products %}
<div style="${css_product}">
<div style="${css_product_name}">{{ product["name"] }}</div>
{%- if product["quantity"] is not none or product["unit_price"] %}
<div style="${css_product_meta}">
{%- if product["quantity"] is not none %}${quantity}${colon} {{ product["quantity"] }}{% endif %}
{%- if product["quantity"] is not none and product["unit_price"] %} &middot; {% endif %}
{%- if product["unit_price"] %}${unit_price}${colon} {{ product["unit_price"] }}{% endif -%}
</div>
{%- endif %}
</div>
{%- endfor %}
</div>
{%- endif %}
{%- if amount %}
<p style="${css_total}">${total}${colon} {{ amount }}</p>
{%- endif %}
{%- if discount_code %}
<div style="${css_discount}">${discount}</div>
{%- endif %}
{%- if recovery_url %}
<div style="${css_cta_wrap}"><a href="{{ recovery_url }}" style="${css_button}">${cta}</a></div>
<p style="${css_hint}">${link_hint}<br>
<a href="{{ recovery_url }}" style="${css_link}">{{ recovery_url }}</a></p>
{%- endif %}
<p style="${css_signoff}">${sign_off}<br>${team}</p>
</div>
<div style="${css_footer}">
<p style="${css_footer_p}">${sent_by}</p>
{%- if unsubscribe_url %}
<p style="${css_footer_p}">${unsubscribe_prompt}
<a href="{{ unsubscribe_url }}" style="${css_footer_link}">${unsubscribe_label}</a></p>
{%- endif %}
</div>
</div>
</body>
</html>
""")

# Newlines are explicit here: tags sit inside lines, so skipped blocks leave nothing behind.
_TEXT_LAYOUT: Final = Template(
    "${greeting}\n"
    "\n"
    "${paragraphs}\n"
    "\n"
    "{% if products %}${products_heading}${colon}\n"
    '{% for product in products %}- {{ product["name"] }}'
    '{% if product["quantity"] is not none %}'
    ' | ${quantity}${colon} {{ product["quantity"] }}{% endif %}'
    '{% if product["unit_price"] %}'
    ' | ${unit_price}${colon} {{ product["unit_price"] }}{% endif %}\n'
    "{% endfor %}"
    "{% if amount %}${total}${colon} {{ amount }}\n{% endif %}"
    "\n"
    "{% elif amount %}${total}${colon} {{ amount }}\n"
    "\n"
    "{% endif %}"
    "{% if discount_code %}${discount}\n"
    "\n"
    "{% endif %}"
    "{% if recovery_url %}${cta}${colon}\n"
    "{{ recovery_url }}\n"
    "\n"
    "{% endif %}"
    "${sign_off}\n"
    "${team}\n"
    "\n"
    "-- \n"
    "${sent_by}\n"
    "{% if unsubscribe_url %}${unsubscribe_prompt}\n"
    "${unsubscribe_label}${colon} {{ unsubscribe_url }}\n"
    "{% endif %}"
)


def _literal(text: str, *, html_mode: bool) -> str:
    """Copy text as template source: HTML-escaped if needed, Jinja delimiters neutralised."""
    if html_mode:
        text = html.escape(text, quote=False)
    # Every "{" is emitted through an expression, so "{{", "{%" and "{#" stay literal text.
    return text.replace("{", '{{ "{" }}')


def _source(text: str, variables: Mapping[str, str], *, html_mode: bool) -> str:
    """Turn one copy string into Jinja2 source, expanding its {placeholders}."""
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1)
        if name not in variables:
            raise ValueError(f"placeholder {{{name}}} is not allowed in {text!r}")
        parts.append(_literal(text[position : match.start()], html_mode=html_mode))
        parts.append(variables[name])
        position = match.end()
    parts.append(_literal(text[position:], html_mode=html_mode))
    return "".join(parts)


def _only(variables: Mapping[str, str], *names: str) -> dict[str, str]:
    return {name: variables[name] for name in names}


def _slots(language: str, key: str, *, html_mode: bool) -> dict[str, str]:
    """The layout slots of one email, as Jinja2 source for the HTML or text layout."""
    chrome = _CHROME[language]
    copy = _COPY[language][key]
    variables = _HTML_VARS if html_mode else _TEXT_VARS
    merchant = _only(variables, "merchant")
    code = _only(variables, "code")
    last_step = int(key.rsplit("/", 1)[1]) == _LAST_STEP
    discount = chrome.discount_last if last_step else chrome.discount
    if "{code}" not in discount:
        raise ValueError(f"{language}: discount line without {{code}}: {discount!r}")

    def plain(text: str) -> str:
        return _source(text, {}, html_mode=html_mode)

    if html_mode:
        paragraphs = "\n".join(
            f'<p style="{_CSS["css_p"]}">{_source(p, merchant, html_mode=True)}</p>'
            for p in copy.body
        )
    else:
        paragraphs = "\n\n".join(_source(p, merchant, html_mode=False) for p in copy.body)
    greeting = (
        "{% if first_name %}"
        + _source(chrome.greeting_named, _only(variables, "first_name"), html_mode=html_mode)
        + "{% else %}"
        + plain(chrome.greeting_plain)
        + "{% endif %}"
    )
    return {
        "lang": language,
        "title": _source(copy.subject, merchant, html_mode=html_mode),
        "greeting": greeting,
        "paragraphs": paragraphs,
        "products_heading": plain(chrome.products_heading),
        "quantity": plain(chrome.quantity),
        "unit_price": plain(chrome.unit_price),
        "total": plain(chrome.total),
        "colon": plain(chrome.colon),
        "discount": _source(discount, code, html_mode=html_mode),
        "cta": _source(copy.cta, merchant, html_mode=html_mode),
        "link_hint": plain(chrome.link_hint),
        "sign_off": plain(chrome.sign_off),
        "team": _source(chrome.team, merchant, html_mode=html_mode),
        "sent_by": _source(chrome.sent_by, merchant, html_mode=html_mode),
        "unsubscribe_prompt": plain(chrome.unsubscribe_prompt),
        "unsubscribe_label": plain(chrome.unsubscribe_label),
    }


def _build(language: str, key: str) -> PredefinedTemplate:
    subject = _COPY[language][key].subject
    if "\r" in subject or "\n" in subject:
        raise ValueError(f"{language} {key}: subject must be a single line")
    return PredefinedTemplate(
        key=key,
        language=language,
        subject=_source(subject, _SUBJECT_VARS, html_mode=False),
        html=_HTML_LAYOUT.substitute(_CSS, **_slots(language, key, html_mode=True)),
        text=_TEXT_LAYOUT.substitute(_slots(language, key, html_mode=False)),
    )


_KEYS: Final[tuple[str, ...]] = tuple(
    f"{source}/{step}" for source in TEMPLATE_SOURCE_TYPES for step in _STEPS
)
_TEMPLATES: Final[dict[tuple[str, str], PredefinedTemplate]] = {
    (key, language): _build(language, key) for key in _KEYS for language in SUPPORTED_LANGUAGES
}


# --- public API -----------------------------------------------------------------------------


def template_keys() -> list[str]:
    """All template keys: every source type with steps 1 to 3, in that order."""
    return list(_KEYS)


def is_template_key(key: str) -> bool:
    return isinstance(key, str) and key in _KEYS


def languages_for(key: str) -> list[str]:
    """The languages a template exists in; KeyError for an unknown key."""
    if not is_template_key(key):
        raise KeyError(key)
    return [language for language in SUPPORTED_LANGUAGES if (key, language) in _TEMPLATES]


def resolve_language(language: str | None) -> str:
    """Map a language tag to a supported language: "pt-BR" -> "pt", "DE" -> "de".

    None, empty and unsupported languages fall back to English.
    """
    if not isinstance(language, str):
        return _DEFAULT_LANGUAGE
    primary = language.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in SUPPORTED_LANGUAGES else _DEFAULT_LANGUAGE


def get_template(key: str, language: str | None) -> PredefinedTemplate:
    """The template for a key in a language (see resolve_language); KeyError for an unknown key."""
    if not is_template_key(key):
        raise KeyError(key)
    return _TEMPLATES[(key, resolve_language(language))]
