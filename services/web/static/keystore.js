// Private keys of this browser, kept in IndexedDB as non-extractable CryptoKeys: a script can use
// them to decrypt but cannot read them out, and they are never sent anywhere.
const DB_NAME = "refex-keys";
const STORE = "keys";

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      const store = request.result.createObjectStore(STORE, { keyPath: ["org", "kid"] });
      store.createIndex("org", "org");
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export async function saveKey(org, kid, privateKey, publicJwk) {
  const db = await open();
  const store = db.transaction(STORE, "readwrite").objectStore(STORE);
  await done(store.put({ org, kid, privateKey, publicJwk, addedAt: new Date().toISOString() }));
  db.close();
}

export async function keysOf(org) {
  const db = await open();
  const store = db.transaction(STORE, "readonly").objectStore(STORE);
  const found = await done(store.index("org").getAll(org));
  db.close();
  return found;
}

function algorithmOf(jwk) {
  if (jwk.kty === "EC" && jwk.crv === "P-256") return { name: "ECDH", namedCurve: "P-256" };
  if (jwk.kty === "OKP" && jwk.crv === "X25519") return { name: "X25519" };
  return null;
}

export function publicPart(jwk) {
  const { d, ...rest } = jwk;
  void d;
  return rest;
}

// Import a private JWK as a non-extractable key; null when it is not an encryption key.
export async function importPrivate(jwk) {
  const algorithm = algorithmOf(jwk);
  if (!algorithm || typeof jwk.d !== "string") return null;
  const { alg, use, key_ops, ...material } = jwk;
  void alg; void use; void key_ops;
  return crypto.subtle.importKey("jwk", material, algorithm, false, ["deriveBits"]);
}

export async function generate() {
  const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, [
    "deriveBits",
  ]);
  const exported = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return { privateKey: pair.privateKey, publicJwk: { kty: "EC", crv: "P-256", x: exported.x, y: exported.y } };
}
