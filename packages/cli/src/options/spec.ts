import { UsageError } from "../errors.js";

/** A `NAME[,key=value...]` argument: a device type or plugin and its raw options. */
export interface Spec {
  readonly name: string;
  /** Raw values; a bare `key` (no `=`) is `true`. */
  readonly options: Record<string, string | true>;
}

/**
 * Parses `NAME,key=value,flag,...`. Values run to the next comma; a comma inside a value is written `\,`.
 * `what` names the option in errors ("--device").
 */
export function parseSpec(text: string, what: string): Spec {
  const parts = splitEscaped(text);
  const name = parts.shift()!.trim();
  if (!name) throw new UsageError(`${what} '${text}': missing the name before the options`);
  const options: Record<string, string | true> = {};
  for (const part of parts) {
    const eq = part.indexOf("=");
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    if (!key) throw new UsageError(`${what} '${text}': empty option name`);
    if (Object.hasOwn(options, key)) throw new UsageError(`${what} '${text}': option '${key}' given twice`);
    options[key] = eq < 0 ? true : part.slice(eq + 1);
  }
  return { name, options };
}

/** Splits on commas not preceded by a backslash, and unescapes `\,`. */
function splitEscaped(text: string): string[] {
  const parts: string[] = [""];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\" && text[i + 1] === ",") {
      parts[parts.length - 1] += ",";
      i++;
    } else if (c === ",") parts.push("");
    else parts[parts.length - 1] += c;
  }
  return parts;
}

/** Writes a spec back as text (for traces and messages). */
export function formatSpec(spec: Spec): string {
  const opts = Object.entries(spec.options).map(([k, v]) => (v === true ? k : `${k}=${v.replaceAll(",", "\\,")}`));
  return [spec.name, ...opts].join(",");
}
