// Small DOM helpers shared by every screen. No framework: elements are built with h().

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "value") el.value = value;
    else if (key === "checked" || key === "selected" || key === "disabled") el[key] = Boolean(value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

let fieldCounter = 0;

/** A labelled form field: `<label for>` + the input + a hint + a place for its error. */
export function field({ label, name, input, hint }) {
  if (!input.id) input.id = `f-${name.replace(/[^a-zA-Z0-9_-]/g, "-")}-${++fieldCounter}`;
  if (!input.name && name) input.name = name;
  const hintEl = hint ? h("p", { class: "hint", id: `${input.id}-hint` }, hint) : null;
  const error = h("p", {
    class: "field-error",
    "data-error-for": name,
    id: `${input.id}-error`,
    role: "alert",
    hidden: true,
  });
  const described = [hintEl && hintEl.id, error.id].filter(Boolean).join(" ");
  input.setAttribute("aria-describedby", described);
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hintEl, error);
}

/** Clears every error shown in the form. */
export function clearProblem(form) {
  form.querySelectorAll(".field-error").forEach((el) => {
    el.textContent = "";
    el.hidden = true;
  });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  const top = form.querySelector(":scope > .form-problem");
  if (top) top.remove();
}

function cssEscape(value) {
  return window.CSS && CSS.escape ? CSS.escape(value) : value.replace(/"/g, '\\"');
}

/** Puts each `errors[].field` message next to the input named that field, the detail at the top.
 * Field paths are matched exactly first, then by their last dotted parts (`body.name` → `name`). */
export function showProblem(form, problem) {
  clearProblem(form);
  const unplaced = [];
  for (const item of (problem && problem.errors) || []) {
    const target = findErrorSlot(form, item.field || "");
    if (target) {
      target.slot.textContent = item.message;
      target.slot.hidden = false;
      if (target.input) target.input.setAttribute("aria-invalid", "true");
    } else unplaced.push(`${item.field}: ${item.message}`);
  }
  const detail = (problem && (problem.detail || problem.title)) || "Something went wrong.";
  const top = h(
    "div",
    { class: "form-problem", role: "alert", "data-testid": "form-problem" },
    h("p", {}, detail),
    unplaced.length ? h("ul", {}, unplaced.map((text) => h("li", {}, text))) : null,
  );
  form.prepend(top);
  if (!form.dataset.clearsOnEdit) {
    form.dataset.clearsOnEdit = "1";
    form.addEventListener("input", (event) => clearEdited(form, event.target));
  }
  const first = form.querySelector("[aria-invalid]");
  if (first) first.focus();
}

/** Once the merchant edits a field shown as wrong, its message goes; the summary at the top
 * goes with the last one. */
function clearEdited(form, input) {
  if (!input || !input.hasAttribute || !input.hasAttribute("aria-invalid")) return;
  input.removeAttribute("aria-invalid");
  const slot = input.name && form.querySelector(`[data-error-for="${cssEscape(input.name)}"]`);
  if (slot) {
    slot.textContent = "";
    slot.hidden = true;
  }
  if (!form.querySelector("[aria-invalid]")) {
    const top = form.querySelector(":scope > .form-problem");
    if (top) top.remove();
  }
}

/** Candidate names for a problem's field, longest first: `body.steps[0].html` →
 * `body.steps[0].html`, `steps[0].html`, …, then shorter prefixes (`steps[0]`, `steps`), so an
 * error about a list item lands next to the list's input. */
export function fieldCandidates(fieldPath) {
  const tokens = fieldPath.match(/\[\d+\]|[^.[\]]+/g) || [];
  const join = (parts) => parts.reduce((acc, part) => (part.startsWith("[") ? acc + part : acc ? `${acc}.${part}` : part), "");
  const names = [];
  for (let end = tokens.length; end > 0; end--) {
    for (let start = 0; start < end; start++) {
      if (tokens[start].startsWith("[")) continue;
      names.push(join(tokens.slice(start, end)));
    }
  }
  return [...new Set(names)];
}

function findErrorSlot(form, fieldPath) {
  for (const name of fieldCandidates(fieldPath)) {
    const slot = form.querySelector(`[data-error-for="${cssEscape(name)}"]`);
    if (slot) {
      const input = form.querySelector(`[name="${cssEscape(name)}"]`);
      return { slot, input };
    }
  }
  return null;
}

/** An empty state that tells the merchant what to do next, with an exact command to copy. */
export function empty({ title, text, code, action }) {
  return h(
    "div",
    { class: "empty", "data-testid": "empty" },
    h("h3", {}, title),
    text ? h("p", {}, text) : null,
    code ? h("pre", { class: "command" }, h("code", {}, code)) : null,
    action || null,
  );
}

/** Money in its own currency; amounts arrive as decimal strings or numbers. */
export function money(amount, currency) {
  const value = Number(amount || 0);
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(value);
  } catch {
    return `${value.toFixed(2)} ${currency || ""}`.trim();
  }
}

export function percent(rate, digits = 1) {
  if (rate === null || rate === undefined || Number.isNaN(Number(rate))) return "–";
  return `${(Number(rate) * 100).toFixed(digits)}%`;
}

export function dateTime(value) {
  if (!value) return "–";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

let toastTimer = null;

/** A short message at the bottom of the page, read out by screen readers. */
export function toast(text, kind = "info") {
  let box = document.getElementById("toast");
  if (!box) {
    box = h("div", { id: "toast", role: "status", "aria-live": "polite" });
    document.body.appendChild(box);
  }
  box.textContent = text;
  box.className = `toast toast-${kind} visible`;
  box.dataset.testid = "toast";
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("visible"), 4000);
}

/** A loading placeholder while a screen fetches its data. */
export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

/** A problem shown in place of a screen's content. */
export function problemBox(error) {
  const problem = (error && error.problem) || { detail: String(error) };
  return h(
    "div",
    { class: "form-problem", role: "alert", "data-testid": "screen-problem" },
    h("p", {}, problem.detail || problem.title || "Something went wrong."),
  );
}

/** A select with options given as [value, text] pairs. */
export function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map(([optValue, text]) =>
      h("option", { value: optValue, selected: String(optValue) === String(value ?? "") }, text),
    ),
  );
}
