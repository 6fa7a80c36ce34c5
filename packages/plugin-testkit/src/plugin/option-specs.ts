// Well-formedness of an option schema: core validates option *values* against a schema (validateOptions) but
// trusts the schema itself; a plugin's test suite checks it here before any user meets a broken one.
import { PluginError, validateOptions, type OptionSchema, type OptionSpec } from "@vmm/core";

const OPTION_TYPES = new Set(["string", "number", "boolean", "enum", "size"]);
/** Keys a `--device TYPE,key=value` command line can carry (no ',' or '=', no spaces). */
const OPTION_KEY = /^[A-Za-z][A-Za-z0-9_.-]*$/;

const withoutPrefix = (text: string, prefix: string) => (text.startsWith(prefix) ? text.slice(prefix.length) : text);
const isFiniteNumber = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n);

/** What is wrong with one option's spec (not its default), as phrases. */
function specProblems(spec: Partial<OptionSpec> & Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (!OPTION_TYPES.has(spec.type as string)) return [`type ${JSON.stringify(spec.type)} is not one of ${[...OPTION_TYPES].join(", ")}`];
  if (typeof spec.description !== "string" || !spec.description.trim()) problems.push("has no description");
  if (spec.required !== undefined && typeof spec.required !== "boolean") problems.push("required is not a boolean");
  if (spec.required === true && spec.default !== undefined) problems.push("is required and has a default (the default is never used)");
  if (spec.type === "enum") {
    const values = spec.values as unknown;
    if (!Array.isArray(values) || values.length === 0 || !values.every((v) => typeof v === "string")) {
      problems.push("values must be a non-empty list of strings");
    } else if (new Set(values).size !== values.length) problems.push("values has duplicates");
  }
  if (spec.type === "number" || spec.type === "size") {
    for (const bound of ["min", "max"] as const) {
      if (spec[bound] !== undefined && !isFiniteNumber(spec[bound])) problems.push(`${bound} is not a finite number`);
    }
    if (isFiniteNumber(spec.min) && isFiniteNumber(spec.max) && spec.min > spec.max) problems.push(`min ${spec.min} is above max ${spec.max}`);
  }
  if (spec.type === "number" && spec.integer !== undefined && typeof spec.integer !== "boolean") problems.push("integer is not a boolean");
  return problems;
}

/**
 * Every problem of a schema, each naming `where` and the option: malformed specs, and defaults that core's
 * validateOptions refuses for their own spec.
 */
export function schemaProblems(schema: unknown, where: string, plugin: string): string[] {
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) return [`${where}: options is not a schema object`];
  const problems: string[] = [];
  for (const [key, raw] of Object.entries(schema as Record<string, unknown>)) {
    const at = `${where}: option '${key}'`;
    if (!OPTION_KEY.test(key)) problems.push(`${at}: the name cannot be given on a command line (letters, digits, '_', '.', '-'; starting with a letter)`);
    if (!raw || typeof raw !== "object") {
      problems.push(`${at}: the spec is not an object`);
      continue;
    }
    const spec = raw as Partial<OptionSpec> & Record<string, unknown>;
    const found = specProblems(spec);
    problems.push(...found.map((p) => `${at} ${p}`));
    if (found.length === 0 && spec.default !== undefined) {
      try {
        validateOptions({ [key]: spec as OptionSpec } as OptionSchema, { [key]: spec.default }, { plugin });
      } catch (error) {
        const text = error instanceof PluginError ? withoutPrefix(error.message, `plugin ${plugin}: `) : String(error);
        problems.push(`${at}: its default ${JSON.stringify(spec.default)} is invalid for its own spec (${text})`);
      }
    }
  }
  return problems;
}
