// Reading tool arguments and results, which are arbitrary JSON on the wire.

export type Obj = Record<string, unknown>;

export function asObject(value: unknown): Obj | undefined {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Obj) : undefined;
}

export function str(o: Obj | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === "string" ? v : undefined;
}

export function num(o: Obj | undefined, key: string): number | undefined {
  const v = o?.[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

export function list(o: Obj | undefined, key: string): unknown[] {
  const v = o?.[key];
  return Array.isArray(v) ? v : [];
}

export function pretty(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2) ?? "null";
  } catch {
    return String(value);
  }
}

/** Parses a JSON object that may still be incomplete (streaming args); undefined if not yet. */
export function parseArgs(text: string | null | undefined): Obj | undefined {
  if (!text) return undefined;
  try {
    return asObject(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/**
 * The string fields readable so far in arguments still being written (`{"command": "ls -l`),
 * for a header that names what the call acts on before its arguments are complete.
 */
export function partialArgs(text: string | null | undefined): Obj | undefined {
  if (!text) return undefined;
  const found: Obj = {};
  for (const m of text.matchAll(/"([A-Za-z_]+)"\s*:\s*"((?:[^"\\]|\\.)*)(")?/g)) {
    const raw = m[2]!.replace(/\\(u[0-9a-fA-F]{0,3})?$/, ""); // an escape cut in half
    try {
      found[m[1]!] = JSON.parse(`"${raw}"`);
    } catch {
      // an escape we cannot read yet
    }
  }
  return Object.keys(found).length ? found : undefined;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function firstLine(text: string, max = 120): string {
  const line = text.split("\n", 1)[0] ?? "";
  const more = line.length < text.trimEnd().length;
  if (line.length > max) return `${line.slice(0, max - 1)}…`;
  return more ? `${line} …` : line;
}
