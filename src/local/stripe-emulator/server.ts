import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { authenticate } from "./auth.js";
import { completeCheckoutSession } from "./checkout-complete.js";
import { controlHandler } from "./control.js";
import { createCustomerObject } from "./customers.js";
import { EventLog } from "./events.js";
import { FaultEngine } from "./faults.js";
import { errorReply, injected, matchRoute, readBody, send, unrecognized, type Reply } from "./http.js";
import { IdempotencyStore } from "./idempotency.js";
import { MeterConcurrency } from "./meter-concurrency.js";
import { setCardsFailing } from "./payment-methods.js";
import { concurrencyKey } from "./meter-events.js";
import { State } from "./state.js";
import type { MeterEventRecord, StripeEmulator, StripeEmulatorOptions } from "./types.js";
import { ApiError, invalid } from "./api-error.js";
import { canonical, parseForm } from "./form.js";
import { API_VERSION, isObj, newId, sleep, type Obj, type Params } from "./util.js";

export async function startStripeEmulator(opts: StripeEmulatorOptions = {}): Promise<StripeEmulator> {
  const state = new State(opts.clock ?? Date.now);
  const faults = new FaultEngine();
  const webhookSecret = opts.webhookSecret ?? "whsec_meterline_emulator";
  const calls: Record<string, number> = {};
  const concurrency = new MeterConcurrency();
  const idempotency = new IdempotencyStore();
  const events = new EventLog(state, webhookSecret, opts.webhookUrl);
  // Events an API call causes are sent without holding its answer back: as with Stripe, one may
  // arrive before the answer does.
  state.emit = (type, object) => void events.emit(type, object);

  async function serve(
    req: IncomingMessage,
    method: string,
    path: string,
    params: Params,
    found: ReturnType<typeof matchRoute>,
    requestId: string,
  ): Promise<Reply> {
    const apiKey = authenticate(req, found?.route, state, opts.apiKey);
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
        const entered = concurrency.enter(key);
        release = entered.release;
        if (entered.refusal) return send(res, errorReply(entered.refusal));
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
    return state.allMeterEvents().map(({ identifier, event_name, customer, value, timestamp, created }) => ({
      identifier,
      event_name,
      customer,
      value,
      timestamp,
      created,
    }));
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
        send(res, await control((req.method ?? "GET").toUpperCase(), url.pathname, raw));
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
  state.baseUrl = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

  const control = controlHandler(state, concurrency, {
    meterEvents,
    sendWebhook: (...a) => emulator.sendWebhook(...a),
    completeCheckoutSession: (...a) => emulator.completeCheckoutSession(...a),
  });
  const emulator: StripeEmulator = {
    url: state.baseUrl,
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
      return concurrency.maxConcurrent;
    },
    get concurrencyViolations() {
      return concurrency.violations;
    },
    errorReports: () => [...state.errorReports],
    resetStats: () => {
      for (const k of Object.keys(calls)) delete calls[k];
      concurrency.reset();
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
    buildEvent: (type, object, o = {}) => events.build(type, object, o),
    sendWebhook: (type, object, o = {}) => events.send(type, object, o),
    completeCheckoutSession: (id, o) => completeCheckoutSession(state, events, id, o),
    resendEvent: (id, o = {}) => events.resend(id, o.url),
    events: (type) => events.list(type),
    setCardFailing: (customer, failing = true) => setCardsFailing(state, customer, failing),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return emulator;
}
