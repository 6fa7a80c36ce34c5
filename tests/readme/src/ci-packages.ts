// The Debian packages two places name: the README's one `apt-get install` line and .ci/run's `packages=(...)`
// list (what CI installs on a clean machine), so the two can be compared.

/** The package names of an `apt-get install [-y ...] P1 P2 ...` command. */
export function aptInstallPackages(command: string): string[] {
  const words = command.trim().split(/\s+/);
  if (words[0] !== "apt-get" || words[1] !== "install") throw new Error(`not an apt-get install command: ${command}`);
  return words.slice(2).filter((w) => !w.startsWith("-"));
}

/** The names in .ci/run's bash array `packages=(...)` (which may span lines). */
export function ciRunPackages(script: string): string[] {
  const list = /^packages=\(([^)]*)\)/m.exec(script)?.[1];
  if (list === undefined) throw new Error(".ci/run has no packages=(...) list");
  return list.split(/\s+/).filter(Boolean);
}
