// Compose a referral here: preview the decision, seal each permitted section in this browser
// (one JWE per category, to every key of the preview), send once per idempotency key.
import { GeneralEncrypt, importJWK } from "/static/vendor/jose/index.js";

const form = document.getElementById("referral");
const text = (name) => form.dataset[name];
const status = document.getElementById("preview-status");
const sharedList = document.getElementById("preview-shared");
const withheldList = document.getElementById("preview-withheld");
const sendStatus = document.getElementById("send-status");
const SECTION_OF = { identity_basic: "identity.basic", contact: "contact" };
let decision = null;

document.getElementById("idempotency-key").value = crypto.randomUUID();

function request() {
  return {
    service_id: form.service_id.value,
    subject_ref: form.subject_ref.value,
    urgency: form.urgency.value,
    requested_categories: [...form.querySelectorAll("[name=requested_categories]:checked")].map((c) => c.value),
  };
}

async function post(url, body, headers = {}) {
  const answer = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf, ...headers },
    body: JSON.stringify(body),
  });
  return { ok: answer.ok, body: await answer.json().catch(() => ({})) };
}

function item(label, detail) {
  const li = document.createElement("li");
  const strong = document.createElement("strong");
  strong.textContent = label;
  li.append(strong);
  if (detail) li.append(`: ${detail}`);
  return li;
}

async function refreshPreview() {
  const wanted = request();
  sealedBody = null; // the request changed: seal again, under a new key
  document.getElementById("idempotency-key").value = crypto.randomUUID();
  if (!form.subject_ref.checkValidity() || wanted.requested_categories.length === 0) return;
  const answer = await post("/send/preview", wanted);
  decision = answer.ok ? answer.body : null;
  sharedList.replaceChildren();
  withheldList.replaceChildren();
  if (!answer.ok) {
    status.textContent = answer.body.detail || "";
    return;
  }
  status.textContent = decision.permitted_categories.length ? text("textShared") : text("textNothing");
  sharedList.append(...decision.permitted_categories.map((c) => item(c)));
  if (decision.withheld.length) {
    withheldList.append(item(text("textWithheld")));
    withheldList.append(...decision.withheld.map((w) => item(w.category, w.explanation)));
  }
}

function sections() {
  const found = {};
  for (const input of form.querySelectorAll("[data-section]")) {
    if (!input.value) continue;
    const section = (found[input.dataset.section] ??= {});
    section[input.dataset.field] = input.value;
  }
  return found;
}

async function seal(section, category) {
  const encrypt = new GeneralEncrypt(new TextEncoder().encode(JSON.stringify(section)))
    .setProtectedHeader({ enc: "A256GCM", cty: "application/json" })
    .setAdditionalAuthenticatedData(new TextEncoder().encode(decision.aad[category]));
  for (const key of decision.keys) {
    const publicKey = await importJWK(key.jwk, "ECDH-ES+A256KW");
    encrypt.addRecipient(publicKey).setUnprotectedHeader({ alg: "ECDH-ES+A256KW", kid: key.jwk.kid });
  }
  return encrypt.encrypt();
}

// One sealed body per idempotency key: a retry resends exactly the same bytes.
let sealedBody = null;
let sending = false;

async function send(event) {
  event.preventDefault();
  if (sending) return; // a double click sends once
  sending = true;
  document.getElementById("send").disabled = true;
  try {
    if (!decision) await refreshPreview();
    if (!decision || decision.permitted_categories.length === 0) return;
    sendStatus.textContent = text("textSealing");
    if (sealedBody === null) {
      const sealed = {};
      for (const [name, section] of Object.entries(sections())) {
        const category = SECTION_OF[name];
        if (decision.permitted_categories.includes(category)) sealed[category] = await seal(section, category);
      }
      sealedBody = { ...request(), reservation: decision.reservation, sections: sealed };
    }
    const key = document.getElementById("idempotency-key").value;
    const answer = await post("/send", sealedBody, { "X-Idempotency-Key": key });
    sendStatus.textContent = answer.ok
      ? `${text("textSent")} ${answer.body.id}`
      : `${text("textFailed")} ${answer.body.detail || ""}`;
    if (answer.ok) form.dataset.sent = answer.body.id;
  } finally {
    sending = false;
    document.getElementById("send").disabled = Boolean(form.dataset.sent);
  }
}

form.addEventListener("change", refreshPreview);
form.addEventListener("submit", send);

// The consent form needs the signed form's SHA-256; the file itself stays here.
document.getElementById("consent-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  document.getElementById("c-hash").value = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
});
