// Shared by the demo pages (app.js, operator.js): one JSON request to the API, its error body as an ApiError.
"use strict";

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || (status === 0 ? "NETWORK" : "HTTP_" + status);
    this.details = error.details || [];
    this.retryAfter = retryAfter;
  }
  get retriable() { return this.status === 0 || this.status === 429 || this.status >= 500; }
}

function detailText(error) {
  if (!error.details || !error.details.length) return error.message;
  return error.details.map((d) => `${d.field} ${d.message}`).join("; ");
}

// {status, data} of a 2xx answer; an ApiError otherwise (status 0: the server could not be reached).
async function requestJson(method, path, headers, body) {
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, null);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!response.ok) {
    throw new ApiError(response.status, data, Number(response.headers.get("Retry-After")) || null);
  }
  return { status: response.status, data };
}
