// avatune forms: show only the inputs of the chosen search space; focus the error summary.
(function () {
  "use strict";
  function sync(form) {
    const chosen = form.querySelector('input[name="space"]:checked');
    form.querySelectorAll("[data-space]").forEach((block) => {
      block.hidden = !chosen || block.dataset.space !== chosen.value;
    });
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-space-form]").forEach((form) => {
      sync(form);
      form.addEventListener("change", (event) => {
        if (event.target.name === "space") sync(form);
      });
    });
    const summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
