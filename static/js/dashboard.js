// Elbia dashboard: copy-to-clipboard buttons and confirmation dialogs. Loaded from /static/ (no inline script).
"use strict";

(function () {
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Fallback for pages served over plain HTTP from a non-local host.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var copied = document.execCommand("copy");
    document.body.removeChild(area);
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function flash(button, label) {
    var original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = label;
    window.setTimeout(function () { button.textContent = original; }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    var text = "value" in source && source.tagName === "INPUT" ? source.value : source.textContent.trim();
    copyText(text).then(
      function () { flash(button, "Copied!"); },
      function () {
        if (source.select) source.select();
        flash(button, "Press Ctrl+C");
      }
    );
  });

  // Forms with data-confirm ask first, in a <dialog>; the server asks again (a confirmation page)
  // when the form arrives without confirmed=yes, so nothing is revoked without a confirmation.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.dataset || !form.dataset.confirm) return;
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return;
    event.preventDefault();
    dialog.querySelector("[data-confirm-message]").textContent = form.dataset.confirm;
    dialog.querySelector("[data-confirm-button]").textContent = form.dataset.confirmLabel || "Confirm";
    dialog.returnValue = "";
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue === "confirm") {
        form.elements.confirmed.value = "yes";
        form.submit();
      }
    });
    dialog.showModal();
  });
})();
