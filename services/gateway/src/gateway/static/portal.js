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

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-follows-kind]").forEach(followInstitutionKind);
  document.querySelectorAll("form[data-confirm]").forEach(confirmDestructive);
  // After a refused form, focus the summary of its errors, so screen readers announce it.
  const summary = document.querySelector(".error-summary");
  if (summary) summary.focus();
});
