// The two-step campaign wizard, for a new campaign and for editing one.
// Step 1 (who is targeted) is saved as an inactive draft before step 2: previews render a
// saved follow-up for a sample lead, so step 2 needs a campaign to exist. Step 2 saves each set
// of follow-ups (variant) on its own route, then the A/B settings and, if asked, activates.
import { api, ApiError } from "../api.js";
import { clearProblem, field, h, select, showProblem, toast } from "../ui.js";
import { SOURCE_NAMES } from "./overview.js";

const MAX_STEPS = 3;
const MAX_VARIANTS = 4;
const UNITS = [["M", "minutes", 1], ["H", "hours", 60], ["D", "days", 1440]];

// Mirrors campaigns/service.py name_warnings(): the same advice the API returns in `warnings`.
const VAGUE_NAME = /^(promo|promotion|test|campaign|kampagne|new|untitled|temp|tmp|foo|bar|asdf|draft|copy|x+|[a-z])[\s_-]*\d*$/i;
export function nameAdvice(name) {
  const stripped = name.trim();
  if (!stripped) return "";
  if (VAGUE_NAME.test(stripped) || stripped.length < 4 || /^\d+$/.test(stripped)) {
    return `The name '${stripped}' says little about the campaign; a descriptive name such as 'Abandoned carts DE - 10% off' helps your team find it later.`;
  }
  return "";
}

/** "PT2H" → {amount: 2, unit: "H"}; durations the form cannot show are kept as minutes. */
export function splitDuration(iso) {
  const match = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(iso || "");
  if (!match) return { amount: 1, unit: "H" };
  const minutes = Number(match[1] || 0) * 1440 + Number(match[2] || 0) * 60 + Number(match[3] || 0) + Math.ceil(Number(match[4] || 0) / 60);
  for (const [unit, , size] of [...UNITS].reverse()) {
    if (minutes && minutes % size === 0) return { amount: minutes / size, unit };
  }
  return { amount: minutes, unit: "M" };
}

export function joinDuration(amount, unit) {
  const n = Math.max(0, Math.round(Number(amount) || 0));
  return unit === "D" ? `P${n}D` : `PT${n}${unit}`;
}

function list(text) {
  return text.split(/[,\s]+/).map((item) => item.trim()).filter(Boolean);
}

function toLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : null;
}

function blankStep(index) {
  return { kind: "template", template: "", subject: "", html: "", text: "", delay: index === 0 ? "PT1H" : "P1D", discount_code: "" };
}

function stepState(step) {
  return {
    kind: step.template ? "template" : "custom",
    template: step.template || "",
    subject: step.subject || "",
    html: step.html || "",
    text: step.text || "",
    delay: step.delay,
    discount_code: step.discount_code || "",
  };
}

export async function render(view, params, ctx) {
  const editing = params.mode === "edit";
  const [campaign, templates, endpoints] = await Promise.all([
    editing ? api("GET", `/v1/campaigns/${encodeURIComponent(params.id)}`) : Promise.resolve(null),
    api("GET", "/v1/templates"),
    api("GET", "/v1/iln/endpoints").catch(() => ({ items: [] })),
  ]);
  const state = {
    campaign,
    templates: templates.items,
    endpoint: campaign ? (endpoints.items || []).find((e) => e.campaign_id === campaign.id) || null : null,
    variants: campaign && campaign.variants.length
      ? campaign.variants.map((v) => ({ id: v.id, name: v.name, weight: v.weight, steps: v.steps.map(stepState) }))
      : [{ id: null, name: "A", weight: 1, steps: [blankStep(0)] }],
    removed: [],
    ab: campaign && campaign.ab_test ? { ...campaign.ab_test } : { criterion: "conversions", threshold: "", currency: "", ends_at: null, min_confidence: null, keep_best: true, continue_variant_id: null },
    secret: null,
  };
  const goStep2 = editing && params.step === "2";
  if (goStep2) drawStep2(view, state, ctx);
  else drawStep1(view, state, ctx);
  return undefined;
}

function heading(state, step) {
  const title = state.campaign ? `Edit ${state.campaign.name}` : "New campaign";
  return [
    h("p", {}, h("a", { href: state.campaign ? `#/campaigns/${state.campaign.id}` : "#/campaigns" }, "← Back without saving")),
    h("h1", { "data-testid": "wizard-title" }, title),
    h(
      "ol",
      { class: "steps", "aria-label": "Wizard steps" },
      h("li", { "aria-current": step === 1 ? "step" : null }, "1. Who is targeted"),
      h("li", { "aria-current": step === 2 ? "step" : null }, "2. Follow-ups"),
    ),
  ];
}

function drawStep1(view, state, ctx) {
  const c = state.campaign || {};
  const name = h("input", { type: "text", name: "name", value: c.name || "", required: true, maxlength: 200, autocomplete: "off", "data-testid": "campaign-name-input" });
  const advice = h("p", { class: "advice", "data-testid": "name-advice", "aria-live": "polite" });
  const showAdvice = () => {
    advice.textContent = nameAdvice(name.value);
  };
  name.addEventListener("input", showAdvice);
  const description = h("textarea", { name: "description", maxlength: 2000, rows: 3 }, c.description || "");
  const source = select("source", Object.entries(SOURCE_NAMES).filter(([key]) => key !== "opt_in"), c.source || "all");
  const products = h("input", { type: "text", name: "products", value: (c.products || []).join(", ") });
  const languages = h("input", { type: "text", name: "languages", value: (c.languages || []).join(", ") });
  const countries = h("input", { type: "text", name: "countries", value: (c.countries || []).join(", ") });
  const startsAt = h("input", { type: "datetime-local", name: "starts_at", value: toLocalInput(c.starts_at) });
  const endsAt = h("input", { type: "datetime-local", name: "ends_at", value: toLocalInput(c.ends_at) });
  const iln = h("input", { type: "url", name: "iln_url", value: state.endpoint ? state.endpoint.url : "", placeholder: "https://example.com/leadflow-events", readonly: Boolean(state.endpoint) });
  const submit = h("button", { type: "submit", "data-testid": "wizard-next" }, "Save draft and continue");
  const nameField = field({ label: "Name", name: "name", input: name, hint: "Say who it targets and what it offers." });
  nameField.insertBefore(advice, nameField.querySelector(".field-error"));
  const form = h(
    "form",
    { novalidate: true, "data-testid": "wizard-step1" },
    nameField,
    field({ label: "Description", name: "description", input: description, hint: "Optional: a note for your team." }),
    field({ label: "Source", name: "source", input: source, hint: "Which leads the campaign follows up." }),
    field({ label: "Products", name: "products", input: products, hint: "Product ids, separated by commas. Empty: all products." }),
    field({ label: "Languages", name: "languages", input: languages, hint: "Such as en, de, fr-CA. Empty: all languages." }),
    field({ label: "Countries", name: "countries", input: countries, hint: "Two-letter codes such as DE, AT. Empty: all countries." }),
    h("div", { class: "grid" },
      field({ label: "Starts", name: "starts_at", input: startsAt, hint: "Empty: as soon as it is active." }),
      field({ label: "Ends", name: "ends_at", input: endsAt, hint: "Empty: no end." })),
    field({
      label: "ILN endpoint (optional)",
      name: "iln_url",
      input: iln,
      hint: state.endpoint
        ? "This campaign's notifications go here; change or remove it under Notifications."
        : "An https address that receives a signed notification for each event about this campaign's leads.",
    }),
    h("div", { class: "row" }, submit, h("span", { class: "muted" }, state.campaign ? "Changes are saved now; the campaign keeps its status." : "Saved as an inactive draft: nothing is sent until you activate it.")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblem(form);
    if (!name.value.trim()) {
      showProblem(form, { detail: "The campaign needs a name.", errors: [{ field: "name", message: "Required." }] });
      return;
    }
    const body = {
      name: name.value.trim(),
      description: description.value.trim() || null,
      source: source.value,
      products: list(products.value),
      languages: list(languages.value),
      countries: list(countries.value),
      starts_at: fromLocalInput(startsAt.value),
      ends_at: fromLocalInput(endsAt.value),
    };
    submit.disabled = true;
    try {
      state.campaign = state.campaign
        ? await api("PATCH", `/v1/campaigns/${state.campaign.id}`, { body })
        : await api("POST", "/v1/campaigns", { body: { ...body, status: "inactive" } });
      history.replaceState(null, "", `#/campaigns/${state.campaign.id}/edit?step=2`);
      if (iln.value.trim() && !state.endpoint) {
        try {
          const created = await api("POST", "/v1/iln/endpoints", { body: { url: iln.value.trim(), campaign_id: state.campaign.id } });
          state.endpoint = created;
          state.secret = created.secret;
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          const problem = { ...error.problem, errors: (error.problem.errors || []).map((e) => ({ ...e, field: e.field === "url" ? "iln_url" : e.field })) };
          showProblem(form, { ...problem, detail: `The campaign is saved, but the ILN endpoint was refused: ${problem.detail || ""}` });
          submit.disabled = false;
          return;
        }
      }
      drawStep2(view, state, ctx);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showProblem(form, error.problem);
      submit.disabled = false;
    }
  });
  view.replaceChildren(...heading(state, 1), h("section", { class: "panel" }, form));
  showAdvice();
  name.focus();
}

function templateOptions(state, step) {
  const source = state.campaign.source;
  const fits = state.templates.filter((t) => t.step === step && (source === "all" || t.source_type === source));
  const rest = state.templates.filter((t) => !fits.includes(t));
  const label = (t) => `${SOURCE_NAMES[t.source_type] || t.source_type}, step ${t.step} (${t.languages.join(", ")})`;
  return [["", "Choose a template…"], ...fits.map((t) => [t.key, label(t)]), ...rest.map((t) => [t.key, `${label(t)} — other step or source`])];
}

function drawStep2(view, state, ctx) {
  const form = h("form", { novalidate: true, "data-testid": "wizard-step2" });
  const variantsBox = h("div", { "data-testid": "variants" });
  const abBox = h("div", { "data-testid": "ab-settings" });
  const activate = h("input", { type: "checkbox", name: "activate", id: "wizard-activate", checked: state.campaign.status === "active", "data-testid": "activate-on-save" });
  const submit = h("button", { type: "submit", "data-testid": "wizard-save" }, "Save campaign");
  const addVariant = h("button", { type: "button", class: "secondary", "data-testid": "add-test-followup" }, "Add test follow-up");
  addVariant.addEventListener("click", () => {
    const last = state.variants[state.variants.length - 1];
    const letter = String.fromCharCode(65 + state.variants.length);
    state.variants.push({ id: null, name: letter, weight: 1, steps: last.steps.map((s) => ({ ...s })) });
    drawVariants();
    const inputs = variantsBox.querySelectorAll(`[name="variants[${state.variants.length - 1}].name"]`);
    if (inputs.length) inputs[0].focus();
  });

  function drawVariants() {
    variantsBox.replaceChildren(...state.variants.map((variant, vi) => variantBox(state, variant, vi, drawVariants, form)));
    addVariant.disabled = state.variants.length >= MAX_VARIANTS;
    abBox.replaceChildren(state.variants.length > 1 ? abFields(state) : h("p", { class: "muted" }, "Add a test follow-up to compare two sets of follow-ups (an A/B test): new leads are split between them by weight."));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      if (await saveAll(form, state)) {
        toast(`${state.campaign.name} is saved${state.campaign.status === "active" ? " and active" : " (inactive)"}.`);
        ctx.navigate(`#/campaigns/${state.campaign.id}`);
      }
    } finally {
      submit.disabled = false;
    }
  });
  // Values typed into the form are kept in state as they change, so redrawing loses nothing.
  form.addEventListener("input", (event) => syncInput(state, event.target));
  form.addEventListener("change", (event) => syncInput(state, event.target));

  form.append(
    state.secret
      ? h("div", { class: "panel", role: "status" }, h("p", {}, "The ILN endpoint's signing secret, shown only this once:"), h("p", { class: "secret", "data-testid": "iln-secret" }, state.secret))
      : "",
    state.campaign.warnings && state.campaign.warnings.length ? h("p", { class: "advice", role: "note" }, state.campaign.warnings.join(" ")) : "",
    h("p", { class: "muted" }, "Up to three follow-ups per set. Each is a predefined template (written for the source, in several languages) or your own subject, HTML and text. Templates use variables such as {{ first_name }}, {{ recovery_url }} and {{ amount }}."),
    variantsBox,
    h("div", { class: "row" }, addVariant),
    h("fieldset", {}, h("legend", {}, "A/B test"), abBox),
    h("div", { class: "field" }, h("label", { for: "wizard-activate", class: "inline" }, activate, " Activate the campaign when saved")),
    h("div", { class: "row" },
      h("button", { type: "button", class: "secondary", "data-testid": "wizard-back", onclick: () => drawStep1(view, state, ctx) }, "Back to step 1"),
      submit),
  );
  activate.addEventListener("change", () => {
    state.activate = activate.checked;
  });
  state.activate = activate.checked;
  drawVariants();
  view.replaceChildren(...heading(state, 2), h("section", { class: "panel" }, form));
  view.querySelector("h1").focus();
}

function syncInput(state, input) {
  const match = /^variants\[(\d+)\]\.(?:steps\[(\d+)\]\.)?(\w+)$/.exec(input.name || "");
  if (!match) return;
  const variant = state.variants[Number(match[1])];
  if (!variant) return;
  const key = match[3];
  if (match[2] === undefined) {
    if (key === "name") variant.name = input.value;
    if (key === "weight") variant.weight = Number(input.value) || 1;
    return;
  }
  const step = variant.steps[Number(match[2])];
  if (!step) return;
  if (key === "kind") {
    if (input.checked) step.kind = input.value;
  } else if (key === "delay") {
    step.delay = joinDuration(input.value, step.delay_unit || splitDuration(step.delay).unit);
  } else if (key === "delay_unit") {
    step.delay_unit = input.value;
    step.delay = joinDuration(splitDuration(step.delay).amount, input.value);
  } else if (key in step) step[key] = input.value;
}

function variantBox(state, variant, vi, redraw, form) {
  const prefix = `variants[${vi}]`;
  const several = state.variants.length > 1;
  const name = h("input", { type: "text", name: `${prefix}.name`, value: variant.name, maxlength: 100, required: true });
  const weight = h("input", { type: "number", name: `${prefix}.weight`, value: variant.weight, min: 1, max: 1000, step: 1 });
  const box = h(
    "fieldset",
    { class: "variant", "data-testid": `variant-${vi}` },
    h("legend", {}, several ? `Set ${variant.name || vi + 1}` : "Follow-ups"),
    h("p", { class: "field-error", "data-error-for": prefix, hidden: true }),
    several
      ? h("div", { class: "grid" },
          field({ label: "Set name", name: `${prefix}.name`, input: name }),
          field({ label: "Weight", name: `${prefix}.weight`, input: weight, hint: "Share of new leads relative to the other sets." }))
      : "",
    variant.steps.map((step, si) => stepBox(state, variant, vi, step, si, redraw, form)),
  );
  const add = h("button", { type: "button", class: "secondary", "data-testid": `add-step-${vi}` }, "Add follow-up");
  add.disabled = variant.steps.length >= MAX_STEPS;
  add.addEventListener("click", () => {
    variant.steps.push(blankStep(variant.steps.length));
    redraw();
  });
  const actions = [add];
  if (several) {
    actions.push(h("button", { type: "button", class: "secondary", "data-testid": `remove-variant-${vi}`, onclick: () => {
      if (variant.id) state.removed.push(variant.id);
      state.variants.splice(vi, 1);
      redraw();
    } }, `Remove set ${variant.name}`));
  }
  box.append(h("div", { class: "row" }, actions));
  return box;
}

function stepBox(state, variant, vi, step, si, redraw, form) {
  const prefix = `variants[${vi}].steps[${si}]`;
  const duration = splitDuration(step.delay);
  const delay = h("input", { type: "number", name: `${prefix}.delay`, value: duration.amount, min: 0, step: 1 });
  const unit = select(`${prefix}.delay_unit`, UNITS.map(([u, text]) => [u, text]), step.delay_unit || duration.unit);
  step.delay_unit = step.delay_unit || duration.unit;
  const kindName = `${prefix}.kind`;
  const radio = (value, text) => {
    const id = `${prefix}-kind-${value}`.replace(/[^a-zA-Z0-9_-]/g, "-");
    const input = h("input", { type: "radio", id, name: kindName, value, checked: step.kind === value, "data-testid": `kind-${value}-${vi}-${si}` });
    input.addEventListener("change", () => {
      step.kind = value;
      redraw();
      form.querySelector(`#${id}`).focus();
    });
    return h("label", { for: id }, input, ` ${text}`);
  };
  const previewBox = h("div", { class: "preview", "data-testid": `preview-${vi}-${si}`, "aria-live": "polite" });
  const body = step.kind === "template" ? templateFields(state, step, prefix, si) : customFields(step, prefix, previewBox);
  const previewButton = h("button", { type: "button", class: "secondary", "data-testid": `preview-button-${vi}-${si}` }, "Preview for a sample lead");
  const language = h("input", { type: "text", name: `${prefix}.preview_language`, value: (state.campaign.languages || [])[0] || "en", size: 6 });
  previewButton.addEventListener("click", async () => {
    previewButton.disabled = true;
    try {
      const saved = await saveVariant(form, state, vi);
      if (!saved) return;
      const shown = await api("POST", `/v1/campaigns/${state.campaign.id}/preview`, { body: { variant_id: variant.id, step: si + 1, language: language.value.trim() || null } });
      previewBox.replaceChildren(
        h("p", {}, h("strong", {}, "Subject: "), h("span", { "data-testid": "preview-subject" }, shown.subject)),
        h("p", { class: "muted" }, `To ${shown.to}, in ${shown.language}`),
        frame(shown.html, "Rendered follow-up"),
      );
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      previewBox.replaceChildren(h("p", { class: "field-error", role: "alert" }, error.message));
    } finally {
      previewButton.disabled = false;
    }
  });
  const remove = variant.steps.length > 1
    ? h("button", { type: "button", class: "link", "data-testid": `remove-step-${vi}-${si}`, onclick: () => {
        variant.steps.splice(si, 1);
        redraw();
      } }, `Remove follow-up ${si + 1}`)
    : "";
  return h(
    "div",
    { class: "followup", "data-testid": `step-${vi}-${si}` },
    h("h3", {}, `Follow-up ${si + 1}`),
    h("p", { class: "field-error", "data-error-for": prefix, hidden: true }),
    h("div", { class: "row" },
      field({ label: si === 0 ? "Send after capture" : "Send after the previous follow-up", name: `${prefix}.delay`, input: delay }),
      field({ label: "Unit", name: `${prefix}.delay_unit`, input: unit })),
    h("fieldset", {}, h("legend", {}, "Content"), h("div", { class: "checks" }, radio("template", "Predefined template"), radio("custom", "Custom"))),
    body,
    field({ label: "Discount code (optional)", name: `${prefix}.discount_code`, input: h("input", { type: "text", name: `${prefix}.discount_code`, value: step.discount_code, maxlength: 64 }), hint: "Available to templates as {{ discount_code }}." }),
    h("div", { class: "row" }, field({ label: "Preview language", name: `${prefix}.preview_language`, input: language }), previewButton, remove),
    previewBox,
  );
}

function templateFields(state, step, prefix, si) {
  const input = select(`${prefix}.template`, templateOptions(state, si + 1), step.template);
  input.dataset.testid = "template-select";
  return field({ label: "Template", name: `${prefix}.template`, input, hint: `Templates written for ${SOURCE_NAMES[state.campaign.source] || state.campaign.source}, step ${si + 1}, come first; the lead's language is used, else English.` });
}

/** A sandboxed frame showing HTML as the mail would: no scripts, forms, popups or navigation
 * of the page. Same origin only so Chromium keeps it in the page's process (an out-of-process
 * frame briefly took clicks meant for the page after scrolling); without scripts nothing in it
 * can use that origin. */
function frame(html, title) {
  return h("iframe", { sandbox: "allow-same-origin", title, srcdoc: html, "data-testid": "preview-frame" });
}

function customFields(step, prefix, previewBox) {
  const subject = h("input", { type: "text", name: `${prefix}.subject`, value: step.subject, maxlength: 998 });
  const html = h("textarea", { name: `${prefix}.html`, rows: 8 }, step.html);
  const text = h("textarea", { name: `${prefix}.text`, rows: 5 }, step.text);
  const live = h("div", { class: "preview", "data-testid": "live-preview" });
  let timer = null;
  const draw = () => {
    live.replaceChildren(
      h("p", { class: "muted" }, "Live preview of what you typed (variables shown as written; use “Preview for a sample lead” to fill them in):"),
      h("p", {}, h("strong", {}, "Subject: "), subject.value || "–"),
      frame(html.value || "<p style='color:#888'>No HTML yet</p>", "Live preview of the custom follow-up"),
    );
  };
  [subject, html].forEach((el) => el.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(draw, 250);
  }));
  draw();
  previewBox.replaceChildren();
  return h(
    "div",
    {},
    field({ label: "Subject", name: `${prefix}.subject`, input: subject }),
    field({ label: "HTML", name: `${prefix}.html`, input: html, hint: "Variables: {{ first_name }}, {{ amount }}, {{ recovery_url }}, {{ discount_code }}, {{ merchant_name }}. The unsubscribe link is added for you." }),
    field({ label: "Plain text", name: `${prefix}.text`, input: text, hint: "For mail programs that show no HTML." }),
    live,
  );
}

/** The step list the API takes, or null after showing what is missing next to the fields. */
function stepsBody(form, state, vi) {
  const problems = [];
  const steps = state.variants[vi].steps.map((step, si) => {
    const where = `variants[${vi}].steps[${si}]`;
    const base = { delay: step.delay, discount_code: step.discount_code.trim() || null };
    if (step.kind === "template") {
      if (!step.template) problems.push({ field: `${where}.template`, message: "Choose a template." });
      return { ...base, template: step.template };
    }
    for (const part of ["subject", "html", "text"]) {
      if (!step[part].trim()) problems.push({ field: `${where}.${part}`, message: "Required for a custom follow-up." });
    }
    return { ...base, subject: step.subject, html: step.html, text: step.text };
  });
  if (problems.length) {
    showProblem(form, { detail: "Some follow-ups are incomplete.", errors: problems });
    return null;
  }
  return steps;
}

function withPrefix(problem, prefix) {
  return {
    ...problem,
    errors: (problem.errors || []).map((e) => ({ ...e, field: `${prefix}${e.field.replace(/^body\.?/, "")}`.replace(/\.$/, "") })),
  };
}

/** Saves one set of follow-ups (create or replace); false after showing the problem. */
async function saveVariant(form, state, vi) {
  clearProblem(form);
  const variant = state.variants[vi];
  const steps = stepsBody(form, state, vi);
  if (!steps) return false;
  const body = { name: variant.name.trim() || String.fromCharCode(65 + vi), weight: Number(variant.weight) || 1, steps };
  try {
    const saved = variant.id
      ? await api("PATCH", `/v1/campaigns/${state.campaign.id}/variants/${variant.id}`, { body })
      : await api("POST", `/v1/campaigns/${state.campaign.id}/variants`, { body });
    variant.id = saved.id;
    return true;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const fixed = withPrefix(error.problem, `variants[${vi}].`);
    showProblem(form, fixed);
    return false;
  }
}

function abFields(state) {
  const ab = state.ab;
  const criterion = select("ab.criterion", [
    ["conversions", "First set to reach a number of conversions"],
    ["revenue", "First set to reach an amount of revenue"],
    ["unique_visitors", "First set to reach a number of unique checkout visitors"],
    ["time_range", "Best conversion rate at an end date"],
  ], ab.criterion);
  const threshold = h("input", { type: "number", name: "ab.threshold", min: 0, step: "any", value: ab.threshold ?? "" });
  const currency = h("input", { type: "text", name: "ab.currency", value: ab.currency || "", maxlength: 3, size: 4, placeholder: "EUR" });
  const endsAt = h("input", { type: "datetime-local", name: "ab.ends_at", value: toLocalInput(ab.ends_at) });
  const confidence = h("input", { type: "number", name: "ab.min_confidence", min: 0.51, max: 0.99, step: 0.01, value: ab.min_confidence ?? "" });
  const after = ab.continue_variant_id ? "continue" : ab.keep_best ? "keep_best" : "report";
  const choice = select("ab.continue_variant", state.variants.map((v, i) => [String(i), `Set ${v.name}`]), String(Math.max(0, state.variants.findIndex((v) => v.id && v.id === ab.continue_variant_id))));
  const radio = (value, text) => {
    const id = `ab-after-${value}`;
    const input = h("input", { type: "radio", id, name: "ab.after", value, checked: after === value, "data-testid": `ab-after-${value}` });
    return h("label", { for: id }, input, ` ${text}`);
  };
  const box = h(
    "div",
    { "data-testid": "ab-fields" },
    field({ label: "How the winner is found", name: "ab.criterion", input: criterion }),
    h("div", { class: "grid" },
      field({ label: "Threshold", name: "ab.threshold", input: threshold, hint: "Conversions, revenue or visitors the winner must reach first." }),
      field({ label: "Currency (for revenue)", name: "ab.currency", input: currency }),
      field({ label: "Test ends", name: "ab.ends_at", input: endsAt, hint: "Required for an end-date test; otherwise a safety end." }),
      field({ label: "Minimum confidence", name: "ab.min_confidence", input: confidence, hint: "Such as 0.95: below it the test ends inconclusive." })),
    h("fieldset", {}, h("legend", {}, "When the test ends"),
      h("div", { class: "checks" }, radio("keep_best", "Keep the best set"), radio("continue", "Continue a chosen set"), radio("report", "Keep splitting, only report"))),
    field({ label: "Set to continue", name: "ab.continue_variant", input: choice, hint: "Used with “Continue a chosen set”." }),
  );
  box.addEventListener("change", () => {
    ab.criterion = criterion.value;
    ab.threshold = threshold.value;
    ab.currency = currency.value.trim().toUpperCase();
    ab.ends_at = fromLocalInput(endsAt.value);
    ab.min_confidence = confidence.value ? Number(confidence.value) : null;
    ab.after = box.querySelector("input[name='ab.after']:checked").value;
    ab.continue_index = Number(choice.value);
  });
  ab.after = after;
  ab.continue_index = Number(choice.value);
  return box;
}

function abBody(state) {
  const ab = state.ab;
  const body = { criterion: ab.criterion, keep_best: ab.after === "keep_best" };
  if (ab.criterion !== "time_range" && ab.threshold !== "" && ab.threshold !== null) body.threshold = Number(ab.threshold);
  if (ab.criterion === "revenue") body.currency = ab.currency || null;
  if (ab.ends_at) body.ends_at = ab.ends_at;
  if (ab.min_confidence) body.min_confidence = ab.min_confidence;
  if (ab.after === "continue") body.continue_variant_id = (state.variants[ab.continue_index] || state.variants[0]).id;
  return body;
}

async function saveAll(form, state) {
  for (let vi = 0; vi < state.variants.length; vi++) {
    if (!(await saveVariant(form, state, vi))) return false;
  }
  try {
    for (const id of state.removed.splice(0)) {
      await api("DELETE", `/v1/campaigns/${state.campaign.id}/variants/${id}`);
    }
    const patch = {};
    if (state.variants.length > 1) patch.ab_test = abBody(state);
    else if (state.campaign.ab_test) patch.ab_test = null;
    if (state.activate !== (state.campaign.status === "active")) patch.status = state.activate ? "active" : "inactive";
    if (Object.keys(patch).length) {
      state.campaign = await api("PATCH", `/v1/campaigns/${state.campaign.id}`, { body: patch });
    }
    return true;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const problem = { ...error.problem, errors: (error.problem.errors || []).map((e) => ({ ...e, field: e.field.replace(/^(body\.)?ab_test\./, "ab.") })) };
    showProblem(form, problem);
    return false;
  }
}
