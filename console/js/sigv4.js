// AWS Signature Version 4 in the browser (WebCrypto), signed exactly as botocore signs MWAA
// requests, so the server's verifier (layers/core/airdock/local/sigv4.py) and API Gateway's AWS_IAM
// authorizer accept it:
//   * URI labels are percent-encoded with botocore's SAFE_CHARS ("-._~"), so an ARN travels as
//     arn%3Aaws%3A...%2F...; the canonical URI encodes the wire path once more (% → %25).
//   * the canonical query re-encodes every key and value and sorts by key, then value; the wire
//     query uses the same encoding, so no '+' ever needs interpreting.
//   * signed headers: host, x-amz-content-sha256, x-amz-date (the browser sets Host itself, from
//     the URL, exactly as it is signed here).

const encoder = new TextEncoder();

function toHex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256Hex(text) {
  return toHex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

async function hmac(key, message) {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(message));
}

// RFC 3986 percent-encoding of the UTF-8 bytes, like Python's urllib.parse.quote(text, safe):
// letters, digits and "-_.~" always stay; `safe` lists more ASCII characters to keep.
export function uriEncode(text, safe = "") {
  let out = "";
  for (const byte of encoder.encode(String(text))) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(ch) || (byte < 128 && safe.includes(ch))) out += ch;
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

function decodeComponent(text) {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}

export function canonicalQuery(rawQuery) {
  if (!rawQuery) return "";
  const pairs = rawQuery
    .split("&")
    .filter(Boolean)
    .map((segment) => {
      const at = segment.indexOf("=");
      const key = at < 0 ? segment : segment.slice(0, at);
      const value = at < 0 ? "" : segment.slice(at + 1);
      return [uriEncode(decodeComponent(key)), uriEncode(decodeComponent(value))];
    });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

export function amzDate(date = new Date()) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

// Split a URL string into host, raw path and raw query without normalising anything.
function parts(url) {
  const parsed = new URL(url);
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  const pathAndQuery = slash < 0 ? "/" : url.slice(slash).split("#")[0];
  const q = pathAndQuery.indexOf("?");
  return {
    host: parsed.host,
    path: q < 0 ? pathAndQuery : pathAndQuery.slice(0, q),
    query: q < 0 ? "" : pathAndQuery.slice(q + 1),
  };
}

/**
 * Sign one request. Returns the headers to send (besides Host, which the browser sets).
 * @param {{method: string, url: string, body?: string, accessKeyId: string, secretAccessKey: string,
 *          region: string, service?: string, sessionToken?: string, date?: Date}} request
 */
export async function signRequest({ method, url, body = "", accessKeyId, secretAccessKey, region,
                                    service = "airflow", sessionToken, date }) {
  const { host, path, query } = parts(url);
  const stamp = amzDate(date);
  const day = stamp.slice(0, 8);
  const payloadHash = await sha256Hex(body);
  const headers = { host, "x-amz-content-sha256": payloadHash, "x-amz-date": stamp };
  if (sessionToken) headers["x-amz-security-token"] = sessionToken;
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(";");
  const canonicalHeaders = names.map((n) => `${n}:${String(headers[n]).trim().split(/\s+/).join(" ")}\n`).join("");
  const canonicalRequest = [method.toUpperCase(), uriEncode(path, "/"), canonicalQuery(query), canonicalHeaders,
                            signedHeaders, payloadHash].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256Hex(canonicalRequest)].join("\n");
  let key = await hmac("AWS4" + secretAccessKey, day);
  key = await hmac(key, region);
  key = await hmac(key, service);
  key = await hmac(key, "aws4_request");
  const signature = toHex(await hmac(key, stringToSign));
  delete headers.host;
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { headers, canonicalRequest, signature };
}
