// Summarises a V8 .cpuprofile (from `npm run bench -- --cpu-prof <dir>`): self time by function
// and by package, so a missed target can be traced to its cause without a flame-graph viewer.
// Usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-summary <file.cpuprofile> [top]");
const profile = JSON.parse(readFileSync(file, "utf8")) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const top = Number(topArg ?? 25);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const where = (url: string) => {
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1];
  if (pkg) return pkg;
  if (url.startsWith("node:")) return url;
  if (url === "") return "(native/vm)";
  return url.replace(/^file:\/\/.*?\/(src|jobs|bench)\//, "$1/");
};
const parentOf = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
// Node internals and native frames (socket writes, streams, timers) charged to the nearest package or
// project file above them: what each library costs with the runtime work it causes.
const owner = (id: number): string => {
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    const { callFrame: f } = byId.get(at)!;
    const w = where(f.url);
    if (w !== "(native/vm)" && !w.startsWith("node:")) return w;
  }
  const { callFrame: f } = byId.get(id)!;
  return f.functionName.startsWith("(") ? f.functionName : where(f.url);
};
const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
const fns = new Map<string, number>();
const pkgs = new Map<string, number>();
const owners = new Map<string, number>();
for (const [id, us] of selfUs) {
  add(owners, owner(id), us);
  const { callFrame: f } = byId.get(id)!;
  add(fns, `${f.functionName || "(anonymous)"} ${where(f.url)}:${f.lineNumber + 1}`, us);
  add(pkgs, where(f.url), us);
}
const print = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(
      `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`,
    );
};
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
print("self time by package / file", pkgs);
print("self time by function", fns);
print("self time charged to the nearest package or project file", owners);
