import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export type ChangesetVerdict =
  | { kind: "ok"; commit: string; changeset: string }
  | { kind: "missing"; commit: string; subject: string }
  | { kind: "uncommitted" }
  | { kind: "no-git"; reason: string };

const git = (root: string, args: string[]) => spawnSync("git", ["-C", root, ...args], { encoding: "utf8" });

/**
 * Whether the last commit that changed `reportPath` (repository-relative) also added or changed a changeset naming
 * `packageName`: a public surface changes only together with a version bump note. A report with changes not yet
 * committed is "uncommitted" (the caller decides; a clean clone never has them).
 */
export function changesetForLastReportChange(root: string, reportPath: string, packageName: string): ChangesetVerdict {
  const status = git(root, ["status", "--porcelain", "--", reportPath]);
  if (status.error || status.status !== 0) return { kind: "no-git", reason: status.error?.message ?? status.stderr.trim() };
  if (status.stdout.trim() !== "") return { kind: "uncommitted" };
  const log = git(root, ["log", "-1", "--format=%H%x00%s", "--", reportPath]);
  const [commit, subject] = log.stdout.trim().split("\0");
  if (log.status !== 0 || !commit) return { kind: "no-git", reason: `no commit of ${reportPath} in this clone's history` };
  const files = git(root, ["show", "--name-only", "--diff-filter=AM", "--format=", commit]).stdout.split("\n");
  for (const file of files.filter((f) => /^\.changeset\/[^/]+\.md$/.test(f))) {
    const shown = git(root, ["show", `${commit}:${file}`]);
    const text = shown.status === 0 ? shown.stdout : readFileSync(join(root, file), "utf8");
    if (frontmatterNames(text).includes(packageName)) return { kind: "ok", commit, changeset: file };
  }
  return { kind: "missing", commit, subject: subject ?? "" };
}

/** The package names in a changeset's front matter (`"@vmm/pci": minor`). */
export function frontmatterNames(text: string): string[] {
  const m = /^---\r?\n([\s\S]*?)\r?\n---/.exec(text);
  if (!m) return [];
  return [...m[1]!.matchAll(/^\s*["']?([^"':\s]+)["']?\s*:/gm)].map((x) => x[1]!);
}
