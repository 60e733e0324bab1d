// Progressive enhancement only: every page works without this file.
"use strict";

// Sign-up: the identifier field follows the institution kind (UAI for a school, SIRET for a company).
function followInstitutionKind(form) {
  const field = form.querySelector("[data-identifier-field]");
  if (!field) return;
  const label = field.querySelector("label");
  const hint = field.querySelector(".hint");
  const input = field.querySelector("input");
  function update() {
    const checked = form.querySelector("input[name=institution_kind]:checked");
    const kind = checked ? checked.value : "school";
    label.textContent = field.dataset["label" + kind[0].toUpperCase() + kind.slice(1)];
    hint.textContent = field.dataset["hint" + kind[0].toUpperCase() + kind.slice(1)];
    input.required = kind !== "other";
  }
  form.querySelectorAll("input[name=institution_kind]").forEach((radio) => radio.addEventListener("change", update));
  update();
}

// Buttons that destroy something ask first (the server does not rely on it).
function confirmDestructive(form) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

// "Mes Webvisio": while an enrolment is pending, the list is read again every 1.5 s (a minute at most) and
// replaced, so that "confirmée" shows without a reload; its table body is a polite live region.
function refreshWhilePending(section) {
  let rounds = 0;
  async function again() {
    rounds += 1;
    try {
      const answer = await fetch(window.location.pathname, { credentials: "same-origin" });
      if (answer.ok) {
        const fresh = new DOMParser().parseFromString(await answer.text(), "text/html").getElementById(section.id);
        if (fresh) {
          const rows = section.querySelector("tbody");
          const freshRows = fresh.querySelector("tbody");
          if (rows && freshRows) rows.innerHTML = freshRows.innerHTML;
          else section.innerHTML = fresh.innerHTML;
          if (!fresh.hasAttribute("data-refresh-while-pending")) {
            section.removeAttribute("data-refresh-while-pending");
            const hint = section.querySelector("#pending-hint");
            if (hint) hint.remove();
            return;
          }
        }
      }
    } catch (error) {
      // the next round tries again
    }
    if (rounds < 40) window.setTimeout(again, 1500);
  }
  window.setTimeout(again, 1500);
}

// "Mes Webvisio": a copy button next to a participation link (hidden without script or clipboard); the result is
// announced by a status region.
function copyButton(button) {
  const link = document.getElementById(button.dataset.copy);
  const status = document.querySelector(`[data-copy-status="${button.dataset.copy}"]`);
  if (!link || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(link.href);
      if (status) status.textContent = button.dataset.copied;
    } catch (error) {
      if (status) status.textContent = "";
    }
  });
}

// The join page: the session's start in the viewer's own zone, when it is not the session's (the page shows that
// one); the text comes with the page, the script only fills in the time and the zone.
function showViewerTime(element) {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone || zone === element.dataset.zone) return;
  const starts = new Date(element.dataset.viewerTime);
  if (Number.isNaN(starts.getTime())) return;
  const format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    dateStyle: "full",
    timeStyle: "short",
  });
  element.querySelector("time").textContent = format.format(starts);
  element.querySelector(".zone").textContent = `(${zone})`;
  element.hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-viewer-time]").forEach(showViewerTime);
  document.querySelectorAll("form[data-follows-kind]").forEach(followInstitutionKind);
  document.querySelectorAll("form[data-confirm]").forEach(confirmDestructive);
  document.querySelectorAll("[data-refresh-while-pending]").forEach(refreshWhilePending);
  document.querySelectorAll("button[data-copy]").forEach(copyButton);
  // a date and time typed in a form is read in the viewer's own time zone (the portal's zone without script)
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) document.querySelectorAll("input[data-viewer-timezone]").forEach((input) => { input.value = zone; });
  // After a refused form, focus the summary of its errors, so screen readers announce it.
  const summary = document.querySelector(".error-summary");
  if (summary) summary.focus();
});
