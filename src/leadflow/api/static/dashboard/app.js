// The dashboard shell: hash router, session check, navigation and sign-out.
import { api, ApiError, onUnauthorized, session, setSession } from "./api.js";
import { problemBox, toast } from "./ui.js";

const ROUTES = [
  ["overview", /^\/overview$/, "overview"],
  ["campaigns", /^\/campaigns$/, "campaigns"],
  ["campaigns", /^\/campaigns\/new$/, "wizard"],
  ["campaigns", /^\/campaigns\/(?<id>[^/]+)\/edit$/, "wizard"],
  ["campaigns", /^\/campaigns\/(?<id>[^/]+)\/ab$/, "abtest"],
  ["campaigns", /^\/campaigns\/(?<id>[^/]+)$/, "campaigns"],
  ["leads", /^\/leads$/, "leads"],
  ["leads", /^\/leads\/(?<id>[^/]+)$/, "leads"],
  ["notifications", /^\/notifications$/, "notifications"],
  ["settings", /^\/settings$/, "settings"],
  ["login", /^\/login$/, "login"],
  ["setup", /^\/setup$/, "setup"],
];
const PUBLIC = new Set(["login", "setup"]);

const view = document.getElementById("view");
let cleanup = null;
let renderCount = 0;

export function navigate(hash, { replace = false } = {}) {
  const target = hash.startsWith("#") ? hash : `#${hash}`;
  if (replace) {
    history.replaceState(null, "", target);
    route();
  } else if (window.location.hash === target) route();
  else window.location.hash = target;
}

function parseHash() {
  const raw = window.location.hash.replace(/^#/, "") || "/overview";
  const [path, queryString = ""] = raw.split("?");
  const query = Object.fromEntries(new URLSearchParams(queryString));
  for (const [section, pattern, screen] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      const params = { ...query, ...(match.groups || {}) };
      if (path === "/campaigns/new") params.mode = "new";
      else if (path.endsWith("/edit")) params.mode = "edit";
      return { section, screen, params, path };
    }
  }
  return null;
}

function showChrome(signedIn) {
  document.body.classList.toggle("signed-in", signedIn);
  const name = document.getElementById("account-name");
  name.textContent = signedIn && session() ? session().account_name : "";
  document.getElementById("signout").hidden = !signedIn;
  document.getElementById("nav").hidden = !signedIn;
}

function markNav(section) {
  document.querySelectorAll("#nav a").forEach((link) => {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  });
}

async function ensureSession() {
  if (session()) return session();
  try {
    setSession(await api("GET", "/v1/session"));
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    setSession(null);
  }
  return session();
}

async function route() {
  const ticket = ++renderCount;
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a screen's cleanup must not stop navigation */
    }
    cleanup = null;
  }
  let target = parseHash();
  if (!target) {
    navigate("#/overview", { replace: true });
    return;
  }
  let current = null;
  try {
    current = await ensureSession();
  } catch (error) {
    view.replaceChildren(problemBox(error));
    return;
  }
  if (ticket !== renderCount) return;
  if (!current && !PUBLIC.has(target.screen)) {
    const next = window.location.hash.replace(/^#/, "");
    navigate(`#/login?next=${encodeURIComponent(next)}`, { replace: true });
    return;
  }
  showChrome(Boolean(current) && !PUBLIC.has(target.screen));
  markNav(target.section);
  view.replaceChildren();
  view.dataset.screen = target.screen;
  view.setAttribute("aria-busy", "true");
  try {
    const module = await import(`./screens/${target.screen}.js`);
    if (ticket !== renderCount) return;
    const result = await module.render(view, target.params, { session: current, navigate, refreshSession });
    if (ticket !== renderCount) {
      if (typeof result === "function") result();
      return;
    }
    if (typeof result === "function") cleanup = result;
    const heading = view.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      document.title = `${heading.textContent} · leadflow`;
    }
  } catch (error) {
    if (ticket === renderCount && !(error instanceof ApiError && error.status === 401)) {
      view.replaceChildren(problemBox(error));
    }
  } finally {
    if (ticket === renderCount) view.removeAttribute("aria-busy");
  }
}

/** After sign-in or setup: remember the session and redraw the chrome. */
function refreshSession(value) {
  setSession(value);
  showChrome(Boolean(value));
}

async function signOut() {
  try {
    await api("DELETE", "/v1/session");
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) {
      toast(`Sign-out failed: ${error.message}`, "error");
      return;
    }
  }
  setSession(null);
  showChrome(false);
  navigate("#/login?signed_out=1");
}

onUnauthorized((problem) => {
  showChrome(false);
  const reason = problem && problem.code === "session_expired" ? "expired" : "required";
  const hash = window.location.hash.replace(/^#/, "");
  if (!hash.startsWith("/login") && !hash.startsWith("/setup")) {
    navigate(`#/login?reason=${reason}&next=${encodeURIComponent(hash)}`, { replace: true });
  }
});

document.getElementById("signout").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
route();

