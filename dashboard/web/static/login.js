// The sign-in page: POST /api/login, then back to where the user was going (a same-origin path only).
import { applyI18n, lang, setLang, t } from "/static/i18n.js";

function nextPath() {
  const next = new URLSearchParams(window.location.search).get("next") || "/";
  // only a path on this site: "/x", never "//host" or "http://..."
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

let lastError = null;

function showError() {
  document.getElementById("login-error").textContent = lastError ? t(lastError) : "";
}

applyI18n(document);
document.getElementById("lang-switch").addEventListener("click", () => setLang(lang() === "zh" ? "en" : "zh"));
window.addEventListener("gp:lang", showError);

document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  lastError = null;
  showError();
  try {
    const resp = await fetch("/api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ user: form.user.value, password: form.password.value }),
    });
    if (resp.ok) {
      window.location.assign(nextPath());
      return;
    }
    lastError = resp.status === 401 ? "login.failed" : "login.error";
  } catch {
    lastError = "login.error";
  }
  form.password.value = "";
  button.disabled = false;
  showError();
});
