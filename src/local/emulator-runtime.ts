import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A fault an emulator injects into its next `times` requests. */
export interface InjectedFault {
  times?: number;
}

/**
 * What the LLM emulators (OpenAI, Anthropic, Gemini) share: latency timers that close() cancels, a
 * queue of injected faults, and an HTTP server that closes promptly with every request's record
 * final. Each emulator keeps only its API: routes, answers and usage in the provider's own fields.
 */
export interface EmulatorRuntime<F extends InjectedFault> {
  /** Resolves after ms unless the emulator closes first (then never, by design); `ctx.timer` lets a
   * request closed meanwhile clear it. */
  sleep(ms: number, ctx: { timer?: NodeJS.Timeout }): Promise<void>;
  /** The fault for this request, if one is queued. */
  takeFault(): F | undefined;
  injectFault(fault: F): void;
  clearFaults(): void;
  /** Keeps a response until it closes, so close() waits for its record to be final. */
  track(res: ServerResponse): void;
  /** Listens on host:port (0: a free one) with a handler; answers the bound port and host. */
  listen(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    opts: { port?: number; host?: string },
  ): Promise<{ port: number; host: string; origin: string }>;
  close(): Promise<void>;
}

/** `defaultTimes`: how many requests a fault without `times` hits. */
export function createEmulatorRuntime<F extends InjectedFault>(defaultTimes: number): EmulatorRuntime<F> {
  const faults: Array<{ fault: F; left: number }> = [];
  const timers = new Set<NodeJS.Timeout>();
  const open = new Set<ServerResponse>();
  let server: ReturnType<typeof createServer> | undefined;

  return {
    sleep: (ms, ctx) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          timers.delete(t);
          ctx.timer = undefined;
          resolve();
        }, ms);
        timers.add(t);
        ctx.timer = t;
      }),
    takeFault() {
      const head = faults[0];
      if (!head) return undefined;
      if (--head.left <= 0) faults.shift();
      return head.fault;
    },
    injectFault: (fault) => void faults.push({ fault, left: fault.times ?? defaultTimes }),
    clearFaults: () => void (faults.length = 0),
    track(res) {
      open.add(res);
      res.once("close", () => open.delete(res));
    },
    async listen(handler, opts) {
      const host = opts.host ?? "127.0.0.1";
      const s = createServer(handler);
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(opts.port ?? 0, host, () => {
          s.off("error", reject);
          resolve();
        });
      });
      server = s;
      const { port } = s.address() as AddressInfo;
      return { port, host, origin: `http://${host.includes(":") ? `[${host}]` : host}:${port}` };
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      faults.length = 0;
      if (!server) return;
      const s = server;
      // server.close() can call back before the responses' "close" events, so wait for those too:
      // records are final (aborted, tokens sent) once close() resolves.
      const finalized = Promise.all([...open].map((res) => once(res, "close")));
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      s.closeAllConnections(); // also kills keep-alive and hanging sockets, so close() is prompt
      await Promise.all([closed, finalized]);
    },
  };
}
