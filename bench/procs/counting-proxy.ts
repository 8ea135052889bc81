// A TCP proxy that counts what its clients ask Redis and Postgres for (bench row b4/b5): one listen
// port per route (ROUTES = [{ name, target: "host:port", protocol: "redis" | "postgres" }]), bytes
// passed through unchanged, client-to-server bytes parsed just enough to name each request.
//   redis:    every RESP command, by name (EVALSHA/EVAL by BullMQ script name where known); a
//             round trip is one read from the client holding one or more commands (a pipeline is one).
//   postgres: a round trip is a simple Query or a Sync ending an extended-protocol exchange, named by
//             its statement's verb and first table.
// HTTP on the control port: GET /counts answers { route: { trips, commands: { name: n } } };
// POST /reset zeroes them. Prints `READY {"ports":{route:port},"control":port}`.
import { createHash } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import { createRequire } from "node:module";
import net from "node:net";

interface Route {
  name: string;
  target: string;
  protocol: "redis" | "postgres";
}
interface Counts {
  trips: number;
  commands: Record<string, number>;
}

const routes = JSON.parse(process.env.ROUTES ?? "[]") as Route[];
const counts = new Map<string, Counts>(routes.map((r) => [r.name, { trips: 0, commands: {} }]));

// BullMQ calls its Lua scripts by SHA-1 (ioredis defineCommand): name them from its own sources.
const bullmqScripts = createRequire(import.meta.url)("bullmq/dist/cjs/scripts/index.js") as Record<
  string,
  { name: string; content: string }
>;
const scriptNames = new Map<string, string>(
  Object.values(bullmqScripts).map((s) => [createHash("sha1").update(s.content).digest("hex"), s.name]),
);

/** Counts requests in one client's byte stream; `feed` takes each chunk as it arrives. */
type Counter = (chunk: Buffer) => void;

function redisCounter(c: Counts): Counter {
  let pending: Buffer = Buffer.alloc(0);
  const scriptLabel = (script: string) =>
    scriptNames.get(createHash("sha1").update(script).digest("hex")) ??
    (script.split("\n").find((l) => l.trim()) ?? "").trim().slice(0, 40);
  const name = (args: string[]) => {
    const cmd = (args[0] ?? "?").toUpperCase();
    if (cmd === "EVALSHA") return `EVALSHA ${scriptNames.get(args[1] ?? "") ?? args[1]?.slice(0, 8)}`;
    if (cmd === "EVAL") return `EVAL ${scriptLabel(args[1] ?? "")}`;
    return cmd;
  };
  // One RESP array of bulk strings from `at`: its first two arguments and where it ends, or undefined
  // when the chunk holds only part of it.
  const parse = (buf: Buffer, at: number): { args: string[]; end: number } | undefined => {
    let eol = buf.indexOf("\r\n", at);
    if (eol < 0) return undefined;
    if (buf[at] !== 0x2a /* '*' */) return { args: buf.toString("latin1", at, eol).split(" "), end: eol + 2 };
    const n = Number(buf.toString("latin1", at + 1, eol));
    const args: string[] = [];
    let pos = eol + 2;
    for (let i = 0; i < n; i++) {
      eol = buf.indexOf("\r\n", pos);
      if (eol < 0) return undefined;
      const len = Number(buf.toString("latin1", pos + 1, eol));
      const end = eol + 2 + len + 2;
      if (end > buf.length) return undefined;
      if (i < 2) args.push(buf.toString("utf8", eol + 2, eol + 2 + len));
      pos = end;
    }
    return { args, end: pos };
  };
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    let commands = 0;
    for (let cmd = parse(pending, at); cmd; cmd = parse(pending, at)) {
      const label = name(cmd.args);
      c.commands[label] = (c.commands[label] ?? 0) + 1;
      commands++;
      at = cmd.end;
    }
    if (commands > 0) c.trips++;
    pending = pending.subarray(at);
  };
}

/** "select api_keys", "insert usage_events", "BEGIN": enough to tell a chat's statements apart. */
function statementLabel(sql: string): string {
  const text = sql.trim().replace(/\s+/g, " ");
  const verb = (text.split(/[ ;(]/)[0] ?? "").toLowerCase();
  const table = text.match(/\b(?:from|into|update)\s+"?([\w.]+)"?/i)?.[1];
  return table ? `${verb} ${table}` : text.replace(/;$/, "").slice(0, 40);
}

function postgresCounter(c: Counts): Counter {
  let pending: Buffer = Buffer.alloc(0);
  let startup = true;
  let statement: string | undefined;
  const count = (label: string) => {
    c.trips++;
    c.commands[label] = (c.commands[label] ?? 0) + 1;
  };
  const cstring = (buf: Buffer, at: number) => {
    const end = buf.indexOf(0, at);
    return { text: buf.toString("utf8", at, end), next: end + 1 };
  };
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    for (;;) {
      if (startup) {
        // Untyped: the SSL / GSS request or the startup message itself.
        if (pending.length - at < 8) break;
        const len = pending.readInt32BE(at);
        if (pending.length - at < len) break;
        const code = pending.readInt32BE(at + 4);
        if (code !== 80877103 && code !== 80877104) startup = false;
        at += len;
        continue;
      }
      if (pending.length - at < 5) break;
      const type = String.fromCharCode(pending[at]!);
      const len = pending.readInt32BE(at + 1);
      if (pending.length - at < 1 + len) break;
      const body = at + 5;
      if (type === "Q") count(statementLabel(cstring(pending, body).text));
      else if (type === "P") statement = cstring(pending, cstring(pending, body).next).text;
      else if (type === "S") {
        count(statement === undefined ? "(prepared statement)" : statementLabel(statement));
        statement = undefined;
      }
      at += 1 + len;
    }
    pending = pending.subarray(at);
  };
}

const ports: Record<string, number> = {};
for (const route of routes) {
  const [host, port] = route.target.split(":");
  const c = counts.get(route.name)!;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), host);
    const feed = route.protocol === "redis" ? redisCounter(c) : postgresCounter(c);
    client.on("data", (chunk: Buffer) => {
      feed(chunk);
      upstream.write(chunk);
    });
    upstream.pipe(client);
    client.on("end", () => upstream.end());
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
    upstream.on("close", close);
    client.on("close", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  ports[route.name] = (server.address() as net.AddressInfo).port;
}

const control = createHttpServer((req, res) => {
  if (req.method === "POST" && req.url === "/reset")
    for (const c of counts.values()) {
      c.trips = 0;
      c.commands = {};
    }
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(Object.fromEntries(counts)));
});
await new Promise<void>((resolve) => control.listen(0, "127.0.0.1", resolve));
console.log(`READY ${JSON.stringify({ ports, control: (control.address() as net.AddressInfo).port })}`);
process.once("SIGTERM", () => process.exit(0));
