// avatune controls (_controls.html): Pause / Resume / Cancel / Delete post to the page's
// actions URL with the token field (or the cookie an accepted token left); cancel and delete
// ask first. A refusal is said next to the buttons; a success reloads the page and says what
// was done there (a deletion goes to the overview).
(function () {
  "use strict";
  const FLASH = "avatune-controls-message";

  function say(status, text, isError) {
    status.textContent = text;
    status.classList.toggle("error-message", Boolean(isError));
  }

  async function act(box, button) {
    const status = document.getElementById("controls-status");
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    const field = document.getElementById("controls-token");
    const body = new URLSearchParams();
    if (field && field.value.trim()) body.set("token", field.value.trim());
    const buttons = box.querySelectorAll("button[data-action]");
    buttons.forEach((b) => { b.disabled = true; });
    say(status, button.textContent + "…", false);
    let answer = null;
    let ok = false;
    try {
      const response = await fetch(box.dataset.url + "/" + button.dataset.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      ok = response.ok;
      answer = await response.json().catch(() => null);
      if (!ok && !answer) answer = { detail: "the server answered " + response.status };
    } catch (error) {
      answer = { detail: "the server could not be reached (" + error.message + ")" };
    }
    if (!ok) {
      buttons.forEach((b) => { b.disabled = false; });
      let detail = answer && answer.detail;
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
      say(status, "Refused: " + (detail || "unknown error"), true);
      if (field && /token/.test(String(detail))) field.focus();
      return;
    }
    if (answer.location) {
      window.location.assign(answer.location); // deleted: the overview no longer lists it
      return;
    }
    try {
      window.sessionStorage.setItem(FLASH, answer.message);
    } catch (error) {
      // storage refused: the reloaded page just shows the new state
    }
    window.location.reload();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("controls");
    if (!box) return;
    let message = null;
    try {
      message = window.sessionStorage.getItem(FLASH);
      window.sessionStorage.removeItem(FLASH);
    } catch (error) {
      message = null;
    }
    if (message) say(document.getElementById("controls-status"), message, false);
    box.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button && box.contains(button)) act(box, button);
    });
  });
})();
