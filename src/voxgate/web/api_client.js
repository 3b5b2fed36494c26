// REST client for the public voxgate API (PROTOCOL.md §2–3, HOSTED.md §1–§3). Every failure becomes an
// ApiError whose message is written for a person; `status` is the HTTP status (0 when the server could not
// be reached).

export class ApiError extends Error {
  constructor(message, { status = 0, fields = [] } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fields = fields; // [{ param: "tools[0].name", message: "..." }] for 422s
  }
}

export class ApiClient {
  /** @param {string} apiKey @param {string} [baseUrl] same origin by default */
  constructor(apiKey, baseUrl = "") {
    this.apiKey = apiKey;
    this.baseUrl = baseUrl;
  }

  /** Every agent, newest first: follows `response_metadata.next_cursor` through the pages. */
  async listAgents() {
    const agents = [];
    let cursor = "";
    do {
      const query = new URLSearchParams({ limit: "200" });
      if (cursor) query.set("cursor", cursor);
      const page = await this.#request("GET", `/v1/agents?${query}`);
      agents.push(...page.agents);
      cursor = page.has_more ? page.response_metadata.next_cursor : "";
    } while (cursor);
    return agents;
  }

  getAgent(id) { return this.#request("GET", `/v1/agents/${encodeURIComponent(id)}`); }
  createAgent(body) { return this.#request("POST", "/v1/agents", body); }
  updateAgent(id, body) { return this.#request("PUT", `/v1/agents/${encodeURIComponent(id)}`, body); }
  deleteAgent(id) { return this.#request("DELETE", `/v1/agents/${encodeURIComponent(id)}`); }

  /** A one-time token for `/v1/ws?token=` (§2.2). */
  mintToken({ expiresInSeconds = 60, maxSessionDurationSeconds } = {}) {
    const query = new URLSearchParams({ expires_in_seconds: String(expiresInSeconds) });
    if (maxSessionDurationSeconds) query.set("max_session_duration_seconds", String(maxSessionDurationSeconds));
    return this.#request("GET", `/v1/token?${query}`);
  }

  async #request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.apiKey}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError("Cannot reach the voxgate server. Check that it is running and try again.");
    }
    if (response.status === 204) return null;
    const payload = await response.json().catch(() => null);
    if (response.ok) return payload;
    throw describeFailure(response.status, payload);
  }
}

function describeFailure(status, payload) {
  const detail = payload?.detail;
  if (status === 401) {
    return new ApiError("The API key was not accepted. Check it and enter it again.", { status });
  }
  if (status === 404) return new ApiError("That agent no longer exists (it may have been deleted).", { status });
  if (status === 413) return new ApiError("The request is too large for this server.", { status });
  if (status === 422 && Array.isArray(payload?.errors)) {
    const fields = payload.errors.map((item) => ({ param: item.param || "", message: item.message || "invalid" }));
    const lines = fields.map((f) => (f.param ? `${f.param}: ${f.message}` : f.message));
    return new ApiError(`Please fix: ${lines.join("; ")}`, { status, fields });
  }
  const text = typeof detail === "string" ? detail : payload?.message;
  if (status >= 500) return new ApiError(`The server failed (${status}${text ? `: ${text}` : ""}). Try again.`, { status });
  return new ApiError(text ? `Request failed: ${text}` : `Request failed with status ${status}.`, { status });
}
