import { PluginError } from "../errors.js";

interface BaseSpec {
  readonly description: string;
  readonly required?: boolean;
}
export interface StringOption extends BaseSpec {
  readonly type: "string";
  readonly default?: string;
}
export interface NumberOption extends BaseSpec {
  readonly type: "number";
  readonly default?: number;
  readonly min?: number;
  readonly max?: number;
  readonly integer?: boolean;
}
export interface BooleanOption extends BaseSpec {
  readonly type: "boolean";
  readonly default?: boolean;
}
export interface EnumOption extends BaseSpec {
  readonly type: "enum";
  readonly values: readonly string[];
  readonly default?: string;
}
/** A byte count: a plain number or one with a K/M/G/T suffix (powers of 1024). */
export interface SizeOption extends BaseSpec {
  readonly type: "size";
  readonly default?: number;
  readonly min?: number;
  readonly max?: number;
}
export type OptionSpec = StringOption | NumberOption | BooleanOption | EnumOption | SizeOption;
export type OptionSchema = Readonly<Record<string, OptionSpec>>;
export type OptionValues = Record<string, string | number | boolean | undefined>;

/** Where options come from, for error messages: the plugin and (optionally) the device type. */
export interface OptionSource {
  readonly plugin: string;
  readonly device?: string;
}

const SIZE_UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** Parses "64M", "1g", "4096", "0x1000"; undefined when malformed. */
export function parseSize(text: string): number | undefined {
  const m = /^(0x[0-9a-f]+|\d+)\s*([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]!) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  return Number.isSafeInteger(n) ? n : undefined;
}

function parseNumber(text: string): number | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  const n = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t, 16) : Number(t);
  return Number.isFinite(n) ? n : undefined;
}

function parseBoolean(value: string | boolean): boolean | undefined {
  if (typeof value === "boolean") return value;
  const t = value.trim().toLowerCase();
  if (["", "1", "true", "yes", "on"].includes(t)) return true;
  if (["0", "false", "no", "off"].includes(t)) return false;
  return undefined;
}

/**
 * Checks raw option values (strings from a command line, or typed values from code) against a schema and
 * returns typed values with defaults filled in. Every problem is reported at once, each naming the option.
 */
export function validateOptions(schema: OptionSchema, raw: Readonly<Record<string, unknown>>, source: OptionSource): OptionValues {
  const where = source.device ? `device ${source.device}: ` : "";
  const problems: string[] = [];
  const out: OptionValues = {};
  for (const key of Object.keys(raw)) {
    if (!Object.hasOwn(schema, key)) {
      const known = Object.keys(schema);
      problems.push(`unknown option '${key}'${known.length ? ` (known: ${known.join(", ")})` : " (it takes no options)"}`);
    }
  }
  for (const [key, spec] of Object.entries(schema)) {
    const value = raw[key];
    if (value === undefined) {
      if (spec.required) problems.push(`option '${key}' is required (${spec.description})`);
      else out[key] = spec.default;
      continue;
    }
    const parsed = parseOne(spec, value);
    if (typeof parsed === "string" && parsed.startsWith("!")) problems.push(`option '${key}': ${parsed.slice(1)}`);
    else out[key] = parsed;
  }
  if (problems.length) throw new PluginError(source.plugin, where + problems.join("; "));
  return out;
}

/** A parsed value, or a string starting with "!" that describes the problem. */
function parseOne(spec: OptionSpec, value: unknown): string | number | boolean {
  const text = typeof value === "string" ? value : undefined;
  switch (spec.type) {
    case "string":
      return typeof value === "string" ? value : `!expected a string, got ${JSON.stringify(value)}`;
    case "boolean": {
      const b = typeof value === "boolean" || text !== undefined ? parseBoolean(value as string | boolean) : undefined;
      return b ?? `!expected a boolean (true/false/on/off/1/0), got ${JSON.stringify(value)}`;
    }
    case "enum":
      return typeof value === "string" && spec.values.includes(value)
        ? value
        : `!expected one of ${spec.values.join(", ")}, got ${JSON.stringify(value)}`;
    case "number":
    case "size": {
      const n = typeof value === "number" ? value : text !== undefined ? (spec.type === "size" ? parseSize(text) : parseNumber(text)) : undefined;
      if (n === undefined || !Number.isFinite(n)) return `!expected ${spec.type === "size" ? "a size like 64M" : "a number"}, got ${JSON.stringify(value)}`;
      if ((spec.type === "size" || spec.integer) && !Number.isInteger(n)) return `!expected an integer, got ${n}`;
      if (spec.min !== undefined && n < spec.min) return `!${n} is below the minimum ${spec.min}`;
      if (spec.max !== undefined && n > spec.max) return `!${n} is above the maximum ${spec.max}`;
      return n;
    }
  }
}
