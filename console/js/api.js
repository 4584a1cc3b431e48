// The MWAA API (and Airdock's read-only extensions), every call SigV4-signed in the browser.
import { signRequest, uriEncode } from "./sigv4.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Auth failures in words a person can act on (the API's own text stays available as detail).
export function describeAuthError(error) {
  switch (error.code) {
    case "UnrecognizedClientException":
      return { field: "accessKeyId", text: "Sign-in failed: this access key ID is not known to the endpoint. Check the access key ID (Airdock keeps its keys in the data directory's credentials file)." };
    case "InvalidSignatureException":
      if (/expired|not yet current/i.test(error.message)) {
        return { field: null, text: "Sign-in failed: the request time differs from the server's by more than 5 minutes. Check your computer's clock." };
      }
      return { field: "secretAccessKey", text: "Sign-in failed: the secret access key does not match the access key ID (the request signature was rejected). Check the secret access key." };
    case "IncompleteSignatureException":
    case "MissingAuthenticationTokenException":
      return { field: null, text: `Sign-in failed: the request was not signed correctly (${error.message}).` };
    case "AccessDeniedException":
      return { field: null, text: `Signed in, but this key may not list environments: ${error.message}` };
    case "NetworkError":
      return { field: "endpoint", text: `Cannot reach the endpoint: ${error.message}` };
    default:
      return { field: null, text: `Sign-in failed (${error.code || error.status}): ${error.message}` };
  }
}

const label = (value) => uriEncode(value); // botocore encodes URI labels with SAFE_CHARS "-._~"

export class Client {
  constructor({ endpoint, region, accessKeyId, secretAccessKey, sessionToken }) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    this.region = region;
    this.credentials = { accessKeyId, secretAccessKey, sessionToken };
  }

  async call(method, path, { query = [], body } = {}) {
    const qs = query.filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${uriEncode(k)}=${uriEncode(String(v))}`).join("&");
    const url = this.endpoint + path + (qs ? `?${qs}` : "");
    const text = body === undefined ? "" : JSON.stringify(body);
    const { headers } = await signRequest({ method, url, body: text, region: this.region, ...this.credentials });
    if (text) headers["content-type"] = "application/json";
    let response;
    try {
      response = await fetch(url, { method, headers, body: text || undefined, credentials: "omit", cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, "NetworkError", `${this.endpoint} did not answer (${err.message}).`);
    }
    const raw = await response.text();
    let data = {};
    try {
      data = raw ? JSON.parse(raw) : {};
    } catch {
      data = { message: raw };
    }
    if (!response.ok) {
      const code = (response.headers.get("x-amzn-errortype") || data.__type || "").split(":")[0] || `HTTP${response.status}`;
      throw new ApiError(response.status, code, data.message || data.Message || response.statusText);
    }
    return data;
  }

  // ---- MWAA operations (rest-json, API version 2020-07-01)
  async listEnvironments() {
    const names = [];
    let token;
    do {
      const page = await this.call("GET", "/environments", { query: [["MaxResults", 25], ["NextToken", token]] });
      names.push(...(page.Environments || []));
      token = page.NextToken;
    } while (token);
    return names;
  }
  getEnvironment(name) { return this.call("GET", `/environments/${label(name)}`).then((r) => r.Environment); }
  createEnvironment(name, input) { return this.call("PUT", `/environments/${label(name)}`, { body: input }); }
  updateEnvironment(name, input) { return this.call("PATCH", `/environments/${label(name)}`, { body: input }); }
  deleteEnvironment(name) { return this.call("DELETE", `/environments/${label(name)}`); }
  listTags(arn) { return this.call("GET", `/tags/${label(arn)}`).then((r) => r.Tags || {}); }
  tagResource(arn, tags) { return this.call("POST", `/tags/${label(arn)}`, { body: { Tags: tags } }); }
  untagResource(arn, keys) { return this.call("DELETE", `/tags/${label(arn)}`, { query: keys.map((k) => ["tagKeys", k]) }); }
  createWebLoginToken(name) { return this.call("POST", `/webtoken/${label(name)}`); }

  // ---- Airdock extensions (signed like the operations; not part of MWAA)
  pauseEnvironment(name) { return this.call("POST", `/environments/${label(name)}/pause`); }
  resumeEnvironment(name) { return this.call("POST", `/environments/${label(name)}/resume`); }
  workers(name) { return this.call("GET", `/_airdock/environments/${label(name)}/workers`); }
  metrics(name, since, names = ["QueuedTasks", "RunningTasks", "WorkerCount"]) {
    return this.call("GET", `/_airdock/environments/${label(name)}/metrics`, { query: [["since", since], ["names", names.join(",")]] });
  }
  events(name, limit = 20) { return this.call("GET", `/_airdock/environments/${label(name)}/events`, { query: [["limit", limit]] }); }
  logs(name, module, limit = 200) {
    return this.call("GET", `/_airdock/environments/${label(name)}/logs/${label(module)}`, { query: [["limit", limit]] });
  }
}
