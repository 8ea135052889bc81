import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createCustomerObject } from "./catalog.js";
import { FaultEngine } from "./faults.js";
import {
  bearerOf,
  errorReply,
  injected,
  mask,
  matchRoute,
  readBody,
  send,
  unrecognized,
  type Reply,
} from "./http.js";
import { IdempotencyStore } from "./idempotency.js";
import { concurrencyKey } from "./meter-events.js";
import { State, type Route } from "./state.js";
import type {
  FailStatus,
  MeterEventRecord,
  StripeEmulator,
  StripeEmulatorOptions,
  StripeFaults,
} from "./types.js";
import {
  API_VERSION,
  ApiError,
  canonical,
  invalid,
  isObj,
  newId,
  parseForm,
  sleep,
  type Obj,
  type Params,
} from "./util.js";
import { buildSignedEvent, deliver } from "./webhooks.js";

/** Value of `Stripe-Rate-Limited-Reason` on the per-(customer, meter) concurrency 429. */
export const METER_CONCURRENCY_REASON = "resource-specific";
export async function startStripeEmulator(opts: StripeEmulatorOptions = {}): Promise<StripeEmulator> {
  const state = new State(opts.clock ?? Date.now);
  const faults = new FaultEngine();
  const webhookSecret = opts.webhookSecret ?? "whsec_meterline_emulator";
  const calls: Record<string, number> = {};
  const stats = { maxConcurrent: 0, violations: 0 };
  const inFlight = new Map<string, number>();
  const idempotency = new IdempotencyStore();

  function authenticate(req: IncomingMessage, route: Route | undefined): string {
    const key = bearerOf(req);
    if (route?.auth === "session") {
      const expires = key === undefined ? undefined : state.sessions.get(key);
      if (key !== undefined && expires !== undefined && expires <= state.now()) {
        throw new ApiError(401, "temporary_session_expired", "The meter event session has expired.", {
          code: "billing_meter_event_session_expired",
        });
      }
      if (key !== undefined && expires !== undefined) return key;
      throw new ApiError(401, "authentication_error", "Invalid or missing meter event session token.");
    }
    if (key === undefined) {
      throw new ApiError(
        401,
        "authentication_error",
        "You did not provide an API key. You need to provide your API key in the Authorization header, " +
          "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
      );
    }
    const ok = opts.apiKey !== undefined ? key === opts.apiKey : /^sk_(test|live)_\w+$/.test(key);
    if (!ok) throw new ApiError(401, "authentication_error", `Invalid API Key provided: ${mask(key)}`);
    return key;
  }

  async function serve(
    req: IncomingMessage,
    method: string,
    path: string,
    params: Params,
    found: ReturnType<typeof matchRoute>,
    requestId: string,
  ): Promise<Reply> {
    const apiKey = authenticate(req, found?.route);
    if (!found || found.route.handler === unrecognized) {
      throw new ApiError(404, "invalid_request_error", `Unrecognized request URL (${method}: ${path}).`);
    }
    const idemKey = method === "POST" ? req.headers["idempotency-key"] : undefined;
    const run = async (): Promise<Reply> => ({
      status: 200,
      body: await found.route.handler({ method, path, params, pathParams: found.pathParams, state }),
      headers: {},
    });
    if (typeof idemKey !== "string" || idemKey === "") return run();

    return idempotency.run(
      `${apiKey}\u0000${idemKey}`,
      idemKey,
      `${method} ${path} ${canonical(params)}`,
      requestId,
      run,
    );
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, raw: string, url: URL): Promise<void> {
    const method = (req.method ?? "GET").toUpperCase();
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
    const found = matchRoute(method, path);
    const callKey = `${method} ${found?.route.template ?? path}`;
    calls[callKey] = (calls[callKey] ?? 0) + 1;
    const requestId = String(res.getHeader("request-id"));

    let params: Params;
    try {
      const query = parseForm(url.search.slice(1));
      if (method !== "POST") params = query;
      else if (path.startsWith("/v2/")) {
        const parsed: unknown = raw.trim() === "" ? {} : JSON.parse(raw);
        if (!isObj(parsed)) throw new Error("not an object");
        params = parsed;
      } else params = { ...query, ...parseForm(raw) };
    } catch {
      return send(res, errorReply(invalid("Invalid request body: could not parse parameters.")));
    }

    let release: (() => void) | undefined;
    try {
      const key = found?.route.meterConcurrency ? concurrencyKey(state, params) : undefined;
      if (key !== undefined) {
        const n = (inFlight.get(key) ?? 0) + 1;
        inFlight.set(key, n);
        release = () => {
          const left = (inFlight.get(key) ?? 1) - 1;
          if (left <= 0) inFlight.delete(key);
          else inFlight.set(key, left);
        };
        stats.maxConcurrent = Math.max(stats.maxConcurrent, n);
        if (n > 1) {
          stats.violations++;
          const err = new ApiError(
            429,
            "rate_limit_error",
            "Too many concurrent requests: only one meter event request per customer and meter may be in progress at a time.",
            { code: "rate_limit", headers: { "stripe-rate-limited-reason": METER_CONCURRENCY_REASON } },
          );
          return send(res, errorReply(err));
        }
      }
      const decision = faults.decide(method, path);
      if (decision.latencyMs > 0) await sleep(decision.latencyMs);
      if (decision.kind === "drop") {
        req.socket.destroy();
        return;
      }
      if (decision.kind !== undefined && decision.kind !== "drop-after")
        return send(res, errorReply(injected(decision)));
      let reply: Reply;
      try {
        reply = await serve(req, method, path, params, found, requestId);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        reply = errorReply(err);
      }
      if (decision.kind === "drop-after") req.socket.destroy();
      else send(res, reply);
    } finally {
      release?.();
    }
  }

  function meterEvents(): MeterEventRecord[] {
    return state
      .allMeterEvents()
      .filter((e) => !e.canceled)
      .map(({ identifier, event_name, customer, value, timestamp, created }) => ({
        identifier,
        event_name,
        customer,
        value,
        timestamp,
        created,
      }));
  }

  async function handleControl(method: string, path: string, raw: string): Promise<Reply> {
    let body: unknown = {};
    try {
      if (method === "POST" && raw.trim() !== "") body = JSON.parse(raw);
    } catch {
      throw invalid("Control endpoints take a JSON body.");
    }
    const input: Obj = isObj(body) ? body : {};
    const ok = (b: unknown): Reply => ({ status: 200, body: b, headers: {} });
    if (method === "POST" && path === "/_emulator/faults") {
      if (input.clear === true) emulator.clearFaults();
      else if (isObj(input.failNext)) {
        const f = input.failNext;
        try {
          emulator.failNext(Number(f.n ?? 1), f.status as FailStatus, {
            path: typeof f.path === "string" ? f.path : undefined,
            message: typeof f.message === "string" ? f.message : undefined,
          });
        } catch (err) {
          throw invalid(err instanceof Error ? err.message : String(err));
        }
      } else {
        try {
          emulator.setFaults(input as StripeFaults);
        } catch (err) {
          throw invalid(err instanceof Error ? err.message : String(err));
        }
      }
      return ok({ ok: true });
    }
    if (method === "GET" && path === "/_emulator/meter_events") {
      return ok({
        object: "list",
        data: meterEvents(),
        concurrency_violations: stats.violations,
        max_concurrent_per_customer_meter: stats.maxConcurrent,
        error_reports: state.errorReports,
      });
    }
    if (method === "POST" && path === "/_emulator/expire_identifiers") {
      emulator.expireIdentifiers();
      return ok({ ok: true });
    }
    if (method === "GET" && path === "/_emulator/calls") return ok({ calls });
    if (method === "POST" && path === "/_emulator/customers") {
      return ok(createCustomerObject(state, input));
    }
    if (method === "POST" && path === "/_emulator/webhooks") {
      if (typeof input.type !== "string" || !isObj(input.object)) throw invalid("Expected {type, object}.");
      const prev = input.previous_attributes;
      try {
        return ok(
          await emulator.sendWebhook(input.type, input.object, {
            previousAttributes: isObj(prev) ? prev : undefined,
            url: typeof input.url === "string" ? input.url : undefined,
          }),
        );
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        return {
          status: 502,
          body: { error: { type: "api_error", message: `Delivery failed: ${message}` } },
          headers: {},
        };
      }
    }
    throw new ApiError(
      404,
      "invalid_request_error",
      `Unrecognized emulator control URL (${method}: ${path}).`,
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader("request-id", newId("req", 14));
    const version = req.headers["stripe-version"];
    res.setHeader("stripe-version", typeof version === "string" ? version : API_VERSION);
    let raw: string;
    try {
      raw = await readBody(req);
    } catch {
      return;
    }
    const url = new URL(req.url ?? "/", "http://emulator.local");
    try {
      if (url.pathname.startsWith("/_emulator/")) {
        send(res, await handleControl((req.method ?? "GET").toUpperCase(), url.pathname, raw));
      } else await handleApi(req, res, raw, url);
    } catch (err) {
      if (err instanceof ApiError) return send(res, errorReply(err));
      const message = err instanceof Error ? err.message : String(err);
      send(res, {
        status: 500,
        body: { error: { type: "api_error", message: `Emulator error: ${message}` } },
        headers: {},
      });
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  const emulator: StripeEmulator = {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    host,
    port,
    webhookSecret,
    calls,
    setFaults: (f) => faults.set(f),
    failNext: (n, status, o) => faults.failNext(n, status, o),
    clearFaults: () => faults.clear(),
    meterEvents,
    totalFor: (customer, eventName) =>
      meterEvents()
        .filter((e) => e.customer === customer && (eventName === undefined || e.event_name === eventName))
        .reduce((sum, e) => sum + e.value, 0),
    removeMeterEvent: (identifier) => void state.meterEvents.delete(identifier),
    get maxConcurrentPerCustomerMeter() {
      return stats.maxConcurrent;
    },
    get concurrencyViolations() {
      return stats.violations;
    },
    errorReports: () => [...state.errorReports],
    resetStats: () => {
      for (const k of Object.keys(calls)) delete calls[k];
      stats.maxConcurrent = 0;
      stats.violations = 0;
    },
    createCustomer: (params = {}) => createCustomerObject(state, params) as { id: string } & Obj,
    putObject: (o) => void state.put(o),
    getObject: (id) => state.objects.get(id),
    expireIdentifiers: () => {
      state.expireIdentifiers();
      idempotency.clear();
    },
    expireMeterEventSessions: () => {
      for (const k of state.sessions.keys()) state.sessions.set(k, 0);
    },
    buildEvent: (type, object, o = {}) => buildSignedEvent(state, type, object, o, webhookSecret),
    sendWebhook: async (type, object, o = {}) => {
      const url = o.url ?? opts.webhookUrl;
      if (!url) throw new Error("sendWebhook: no url (set webhookUrl on the emulator or pass opts.url)");
      const built = buildSignedEvent(state, type, object, o, webhookSecret);
      return { status: await deliver(url, built), event: built.event };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return emulator;
}
