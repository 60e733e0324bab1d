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

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-follows-kind]").forEach(followInstitutionKind);
  document.querySelectorAll("form[data-confirm]").forEach(confirmDestructive);
  document.querySelectorAll("[data-refresh-while-pending]").forEach(refreshWhilePending);
  // After a refused form, focus the summary of its errors, so screen readers announce it.
  const summary = document.querySelector(".error-summary");
  if (summary) summary.focus();
});
