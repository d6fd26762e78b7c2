// Decrypt the referral's case file here, with the organisation's keys held by this browser.
import { generalDecrypt } from "/static/vendor/jose/index.js";
import { keysOf } from "/static/keystore.js";

const section = document.getElementById("casefile");
const status = document.getElementById("casefile-status");
const body = document.getElementById("casefile-body");
const text = (name) => section.dataset[name];
const utf8 = new TextDecoder();

async function open(jwe, keys, aad) {
  for (const entry of keys) {
    try {
      const result = await generalDecrypt(jwe, entry.privateKey);
      const bound = result.additionalAuthenticatedData;
      if (!bound || utf8.decode(bound) !== aad) continue; // a ciphertext moved from elsewhere
      return JSON.parse(utf8.decode(result.plaintext));
    } catch {
      // not encrypted to this key: try the next one
    }
  }
  return null;
}

function show(value, parent) {
  if (value === null || typeof value !== "object") {
    parent.append(String(value));
    return;
  }
  if (Array.isArray(value)) {
    const list = document.createElement("ul");
    for (const item of value) {
      const li = document.createElement("li");
      show(item, li);
      list.append(li);
    }
    parent.append(list);
    return;
  }
  const dl = document.createElement("dl");
  for (const [name, item] of Object.entries(value)) {
    const dt = document.createElement("dt");
    dt.textContent = name.replaceAll("_", " ");
    const dd = document.createElement("dd");
    show(item, dd);
    dl.append(dt, dd);
  }
  parent.append(dl);
}

async function main() {
  const payload = JSON.parse(document.getElementById("payload").textContent);
  if (!payload) {
    status.textContent = text("textEmpty");
    return;
  }
  const keys = await keysOf(section.dataset.org);
  if (keys.length === 0) {
    status.textContent = text("textNoKey");
    return;
  }
  status.textContent = text("textDecrypting");
  const id = section.dataset.referralId;
  let casefile = null;
  if (section.dataset.mode === "sealed") {
    const parts = {};
    for (const [category, jwe] of Object.entries(payload.sections || {})) {
      const opened = await open(jwe, keys, `refex:referral:${id}:section:${category}`);
      if (opened === null) break;
      parts[category] = opened;
    }
    casefile = Object.keys(parts).length === Object.keys(payload.sections || {}).length ? parts : null;
  } else {
    casefile = await open(payload, keys, `refex:referral:${id}`);
  }
  if (casefile === null) {
    status.textContent = text("textFailed");
    return;
  }
  const { schema_version, ...sections } = casefile;
  void schema_version;
  body.replaceChildren();
  show(sections, body);
  status.textContent = text("textDone");
  section.dataset.decrypted = "true";
}

main();
