// The join's bot check (app/bots.py, docs/API.md): when Join is pressed on
// an event with bot protection, fetch an ALTCHA challenge from this site,
// find the counter whose PBKDF2 key starts with the challenge's prefix
// (WebCrypto; about 256 tries, a second or two), and send the ALTCHA
// payload in the form's hidden "altcha" field. Only ALTCHA's PBKDF2/SHA-256
// challenges (the server's only kind). Without JavaScript the form is sent
// as it is and the server says what to do.
"use strict";

function hexBytes(hex) {
  return Uint8Array.from(hex.match(/../g) || [], (pair) => parseInt(pair, 16));
}

async function solve(parameters) {
  const subtle = globalThis.crypto.subtle;
  const nonce = hexBytes(parameters.nonce);
  const salt = hexBytes(parameters.salt);
  const password = new Uint8Array(nonce.length + 4);
  password.set(nonce);
  const started = Date.now();
  for (let counter = 0; counter <= 0xffffffff; counter++) {
    // ALTCHA's "uint32" mode: the nonce, then the counter big-endian.
    new DataView(password.buffer).setUint32(nonce.length, counter);
    const key = await subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
    const bits = await subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt, iterations: parameters.cost },
      key,
      parameters.keyLength * 8,
    );
    const derived = Array.from(new Uint8Array(bits), (b) => b.toString(16).padStart(2, "0")).join("");
    if (derived.startsWith(parameters.keyPrefix)) {
      return { counter, derivedKey: derived, time: Date.now() - started };
    }
  }
  throw new Error("no solution");
}

if (typeof document !== "undefined") {
  document.addEventListener("DOMContentLoaded", () => {
    for (const form of document.querySelectorAll("form[data-altcha]")) {
      form.addEventListener("submit", async (event) => {
        const field = form.elements.altcha;
        if (field.value) return; // solved: let it go
        event.preventDefault();
        const button = form.querySelector("button");
        const status = form.querySelector("[data-altcha-status]");
        button.disabled = true;
        status.textContent = form.dataset.solving;
        try {
          const answer = await fetch(form.dataset.altcha, { credentials: "same-origin" });
          const challenge = await answer.json();
          const solution = await solve(challenge.parameters);
          field.value = btoa(JSON.stringify({ challenge, solution }));
          form.submit();
        } catch (error) {
          status.textContent = form.dataset.failed;
          button.disabled = false;
        }
      });
    }
  });
}

if (typeof module !== "undefined") module.exports = { solve }; // tests/test_bots.py runs it in node
