// A referral's notes: opened here with this browser's keys, and written here, sealed to both
// parties' keys (AAD refex:note:<id>) before anything leaves the page. The text is never sent.
import { GeneralEncrypt, generalDecrypt, importJWK } from "/static/vendor/jose/index.js";
import { keysOf } from "/static/keystore.js";

const section = document.getElementById("notes");
const form = document.getElementById("note-form");
const text = (name) => section.dataset[name];
const id = section.dataset.referralId;
const aad = `refex:note:${id}`;
const utf8 = new TextDecoder();

async function open(jwe, keys) {
  for (const entry of keys) {
    try {
      const result = await generalDecrypt(jwe, entry.privateKey);
      const bound = result.additionalAuthenticatedData;
      if (!bound || utf8.decode(bound) !== aad) continue; // a note moved from another referral
      return utf8.decode(result.plaintext);
    } catch {
      // not encrypted to this key: try the next one
    }
  }
  return null;
}

async function showNotes() {
  const sealed = JSON.parse(document.getElementById("notes-data").textContent || "{}");
  const items = section.querySelectorAll("li[data-note-id]");
  if (items.length === 0) return;
  const keys = await keysOf(section.dataset.org);
  let opened = 0;
  for (const item of items) {
    const shown = item.querySelector(".note-text");
    const jwe = sealed[item.dataset.noteId];
    const note = keys.length && jwe ? await open(jwe, keys) : null;
    if (note === null) {
      shown.textContent = keys.length ? text("textFailed") : text("textNoKey");
      continue;
    }
    shown.textContent = note; // text, never markup
    opened += 1;
  }
  section.dataset.opened = String(opened);
}

async function call(url, options = {}) {
  const answer = await fetch(url, options).catch(() => null);
  if (!answer) return { ok: false, body: {} };
  return { ok: answer.ok, body: await answer.json().catch(() => ({})) };
}

async function seal(note, keys) {
  const encrypt = new GeneralEncrypt(new TextEncoder().encode(note))
    .setProtectedHeader({ enc: "A256GCM" })
    .setAdditionalAuthenticatedData(new TextEncoder().encode(aad));
  for (const key of keys) {
    const publicKey = await importJWK(key.jwk, "ECDH-ES+A256KW");
    encrypt.addRecipient(publicKey).setUnprotectedHeader({ alg: "ECDH-ES+A256KW", kid: key.jwk.kid });
  }
  return encrypt.encrypt();
}

let writing = false;

async function write(event) {
  event.preventDefault();
  const field = document.getElementById("note-text");
  const status = document.getElementById("note-status");
  const note = field.value.trim();
  if (writing || !note) return;
  writing = true; // a double click adds the note once
  document.getElementById("note-send").disabled = true;
  try {
    status.textContent = text("textSealing");
    // The keys valid now, fetched for every note; when they change between that and the send
    // (a key rotated just then), the note is sealed once more to the new set.
    let answer = null;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const keys = await call(`/referrals/${id}/keys`, { headers: { Accept: "application/json" } });
      answer = keys;
      if (!keys.ok) break;
      const sealed = await seal(note, keys.body.keys || []).catch(() => null);
      if (sealed === null) {
        answer = { ok: false, body: { detail: text("textNotSealed") } }; // nothing leaves the page
        break;
      }
      const body = { sealed, key_set_fingerprint: keys.body.key_set_fingerprint };
      answer = await call(`/referrals/${id}/notes`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": section.dataset.csrf },
        body: JSON.stringify(body),
      });
      if (answer.ok || !String(answer.body.type || "").endsWith("key-set-changed")) break;
    }
    if (answer.ok) {
      field.value = "";
      window.location.assign(`/referrals/${id}?noted=1#notes`);
      return;
    }
    status.setAttribute("role", "alert");
    status.className = "problem";
    status.textContent = `${text("textRefused")} ${answer.body.detail || answer.body.title || text("textTryAgain")}`;
  } finally {
    writing = false;
    document.getElementById("note-send").disabled = false;
  }
}

if (form) {
  form.hidden = false;
  form.addEventListener("submit", write);
}
showNotes();
