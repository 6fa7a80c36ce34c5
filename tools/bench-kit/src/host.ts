// Facts about the machine and the tree a figure was measured on, so that two runs can be judged comparable.
import { execFileSync } from "node:child_process";
import { cpus, release } from "node:os";

export interface HostFacts {
  cpuModel: string;
  cores: number;
  kernel: string;
  node: string;
  /** HEAD of the repository; absent outside a git work tree. */
  gitCommit?: string;
  /** Whether the work tree had uncommitted changes (anyone's: the figures may not be HEAD's). */
  gitDirty?: boolean;
}

function git(cwd: string, args: string[]): string | undefined {
  try {
    return execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

export function hostFacts(repositoryDir: string): HostFacts {
  const list = cpus();
  const facts: HostFacts = {
    cpuModel: list[0]?.model.trim() ?? "unknown",
    cores: list.length,
    kernel: release(),
    node: process.version,
  };
  const commit = git(repositoryDir, ["rev-parse", "HEAD"]);
  if (commit) {
    facts.gitCommit = commit;
    const status = git(repositoryDir, ["status", "--porcelain"]);
    if (status !== undefined) facts.gitDirty = status.length > 0;
  }
  return facts;
}
