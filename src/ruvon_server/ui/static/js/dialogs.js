// The confirmation dialog every action goes through, and the API-key dialog.

import { apiKey, setApiKey } from "./api.js";

/** Ask before acting: resolves true for OK, false for Cancel or Escape. */
export function confirmAction(title, text, okLabel = "OK") {
  const dialog = document.querySelector('[data-testid="confirm-dialog"]');
  dialog.querySelector("h2").textContent = title;
  dialog.querySelector(".confirm-text").textContent = text;
  const ok = dialog.querySelector('[data-testid="confirm-ok"]');
  ok.textContent = okLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    dialog.querySelector('[data-testid="confirm-cancel"]').focus();
  });
}

/** Ask for an API key; `message` says why (a refused key). Resolves true when a new key is
 * set (or forgotten). */
export function askForKey(message = "") {
  const dialog = document.querySelector('[data-testid="key-dialog"]');
  if (dialog.open) {
    dialog.querySelector('[data-testid="key-error"]').textContent = message;
    return Promise.resolve(false);
  }
  const input = dialog.querySelector('[data-testid="key-input"]');
  const error = dialog.querySelector('[data-testid="key-error"]');
  error.textContent = message;
  input.value = apiKey();
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (dialog.returnValue === "save" && input.value.trim()) {
          setApiKey(input.value.trim());
          resolve(true);
        } else if (dialog.returnValue === "forget") {
          setApiKey("");
          resolve(true);
        } else {
          resolve(false);
        }
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
}
