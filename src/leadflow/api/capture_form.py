"""``form.js``: the script a merchant pastes into a page. It renders a small sign-up form
(or enhances a ``<form data-leadflow>`` already there) that posts to the capture endpoint,
and shows the answer in place. Plain DOM code, nothing loaded from elsewhere; without
JavaScript the same form still works as an HTML form post."""

FORM_JS = r"""(function () {
  "use strict";
  var script = document.currentScript;
  var origin = script ? new URL(script.src).origin : "";
  var endpoint = origin + __ENDPOINT__;
  var consentText = __CONSENT__;
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) { node.setAttribute(k, attrs[k]); }
    if (text) { node.textContent = text; }
    return node;
  }
  function render() {
    var form = el("form", {"data-leadflow": "", method: "post", action: endpoint});
    var email = {type: "email", name: "email", required: "", placeholder: "Email"};
    form.appendChild(el("input", email));
    var label = el("label", {});
    label.appendChild(el("input", {type: "checkbox", name: "consent", value: "on", required: ""}));
    label.appendChild(document.createTextNode(" " + (consentText || "I agree to receive emails.")));
    form.appendChild(label);
    var trap = el("input", {type: "text", name: "website", tabindex: "-1", autocomplete: "off"});
    trap.style.cssText = "position:absolute;left:-10000px;width:1px;height:1px;";
    form.appendChild(trap);
    form.appendChild(el("button", {type: "submit"}, "Subscribe"));
    script.parentNode.insertBefore(form, script);
    return form;
  }
  function enhance(form) {
    function done(status, code) {
      form.setAttribute("data-leadflow-status", status);
      form.dispatchEvent(new CustomEvent("leadflow:" + status, {detail: {status: code}}));
    }
    if (!form.getAttribute("action")) { form.setAttribute("action", endpoint); }
    form.setAttribute("method", "post");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = new URLSearchParams(new FormData(form));
      if (!body.get("page_url")) { body.set("page_url", window.location.href); }
      if (consentText && !body.get("consent_text")) { body.set("consent_text", consentText); }
      fetch(form.getAttribute("action"), {
        method: "POST", body: body, headers: {"Accept": "application/json"}
      }).then(function (response) {
        done(response.ok ? "received" : "error", response.status);
        if (response.ok) { form.reset(); }
      }, function () { done("error", 0); });
    });
  }
  var forms = document.querySelectorAll("form[data-leadflow]");
  if (!forms.length && script) { forms = [render()]; }
  for (var i = 0; i < forms.length; i++) { enhance(forms[i]); }
})();
"""
