// Shoal dashboard: live fragments over SSE, confirmations before writes. No dependencies.
"use strict";

document.querySelectorAll("[data-live]").forEach((el) => {
  const params = new URLSearchParams(location.search);
  params.set("view", el.dataset.live);
  const source = new EventSource("/events?" + params.toString());
  source.addEventListener("update", (event) => {
    el.innerHTML = event.data;
    document.body.dataset.liveUpdates = String(Number(document.body.dataset.liveUpdates || 0) + 1);
  });
});

// A write form submits only after the user confirms; the server refuses unconfirmed writes.
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    const button = event.submitter;
    const question = (button && button.dataset.confirm) || form.dataset.confirm;
    if (!window.confirm(question)) {
      event.preventDefault();
      return;
    }
    form.querySelector("input[name=confirm]").value = "yes";
  });
});

document.querySelectorAll("[data-select-all]").forEach((box) => {
  box.addEventListener("change", () => {
    box.closest("form").querySelectorAll("input[name=ids]").forEach((b) => { b.checked = box.checked; });
  });
});
