/** One config-space rule checked on a device. */
export interface ConfigCheck {
  /** The register or structure checked, e.g. "BAR2 sizing", "capability 0x50 (MSI-X)". */
  readonly name: string;
  /** The config-space offset it concerns. */
  readonly offset: number;
  readonly ok: boolean;
  /** What was wrong, when it failed. */
  readonly problem?: string;
}

/** What `checkDevice` found: every check run, and the failed ones. */
export interface DeviceReport {
  readonly device: string;
  readonly checks: readonly ConfigCheck[];
  readonly failures: readonly ConfigCheck[];
  readonly ok: boolean;
}

export const hex = (n: number, digits = 2): string => `0x${(n >>> 0).toString(16).padStart(digits, "0")}`;

/** A failed check as one line: where, what, what was wrong. */
export function describeFailure(check: ConfigCheck): string {
  return `config ${hex(check.offset, 3)} ${check.name}: ${check.problem ?? "failed"}`;
}

/** Collects checks in the order they are run. */
export class CheckList {
  readonly checks: ConfigCheck[] = [];

  /** Records one check: passed when `problem` is undefined. */
  record(name: string, offset: number, problem: string | undefined): boolean {
    this.checks.push(problem === undefined ? { name, offset, ok: true } : { name, offset, ok: false, problem });
    return problem === undefined;
  }

  /** Records the first of `problems` (all of them joined when several), or a pass. */
  recordAll(name: string, offset: number, problems: readonly string[]): boolean {
    return this.record(name, offset, problems.length ? problems.join("; ") : undefined);
  }
}
