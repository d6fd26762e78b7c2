// Put a key into this browser: import the JWK file (read locally) or generate one here.
import { calculateJwkThumbprint } from "/static/vendor/jose/index.js";
import { generate, importPrivate, keysOf, publicPart, saveKey } from "/static/keystore.js";

const section = document.getElementById("browser-keys");
const status = document.getElementById("browser-keys-status");
const list = document.getElementById("browser-keys-list");
const org = section.dataset.org;
const text = (name) => section.dataset[name];

async function refresh(message) {
  const keys = await keysOf(org);
  list.replaceChildren(
    ...keys.map((entry) => {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = entry.kid;
      li.append(code);
      return li;
    }),
  );
  status.textContent = message || (keys.length ? text("textHeld") : text("textNone"));
}

async function importFile(event) {
  const file = event.target.files[0];
  event.target.value = ""; // the input never keeps the file: nothing could submit it
  if (!file) return;
  let jwk;
  try {
    jwk = JSON.parse(await file.text());
  } catch {
    jwk = null;
  }
  const privateKey = jwk ? await importPrivate(jwk).catch(() => null) : null;
  if (!privateKey) {
    status.textContent = text("textBadFile");
    return;
  }
  const publicJwk = publicPart(jwk);
  const kid = jwk.kid || (await calculateJwkThumbprint(publicJwk));
  await saveKey(org, kid, privateKey, publicJwk);
  await refresh(text("textImported"));
}

async function generateKey() {
  const { privateKey, publicJwk } = await generate();
  const kid = await calculateJwkThumbprint(publicJwk);
  const registered = { ...publicJwk, kid, use: "enc", alg: "ECDH-ES+A256KW" };
  await saveKey(org, kid, privateKey, registered);
  const answer = await fetch("/keys", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": section.dataset.csrf },
    body: JSON.stringify(registered),
  });
  const result = await answer.json().catch(() => ({}));
  const failed = `${text("textRegisterFailed")} ${result.detail || answer.status}`;
  await refresh(answer.ok ? text("textGenerated") : failed);
}

document.getElementById("key-file").addEventListener("change", importFile);
document.getElementById("generate-key").addEventListener("click", generateKey);
refresh();
