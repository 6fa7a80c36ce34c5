import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { REPORT_FILE, apiReport, exportedNames, changesetForLastReportChange, frontmatterNames, publishedPackages } from "../src/index.js";

const root = resolve(import.meta.dirname, "../../..");
const packages = publishedPackages(root);

describe("every published package's public API matches its committed api-report.md", () => {
  it("finds the published packages", () => {
    expect(packages.map((p) => p.name)).toContain("@vmm/core");
    expect(packages.map((p) => p.name)).toContain("@vmm/pci");
  });

  for (const pkg of packages) {
    describe(pkg.name, () => {
      const file = join(pkg.dir, REPORT_FILE);
      const rel = relative(root, file);

      it(`${REPORT_FILE} equals the surface of the built declaration files`, () => {
        expect(existsSync(file), `${rel} is missing: run \`pnpm api:update\` and add a changeset`).toBe(true);
        const hint = `${pkg.name}'s public API changed: run \`pnpm api:update\`, review ${rel}, and add a changeset for ${pkg.name}`;
        expect(apiReport(pkg), hint).toBe(readFileSync(file, "utf8"));
      });

      it("README.md mentions every exported name", () => {
        const readme = readFileSync(join(pkg.dir, "README.md"), "utf8");
        const undocumented = exportedNames(pkg).filter((n) => !new RegExp(`\\b${n.replace(/\$/g, "\\$")}\\b`).test(readme));
        expect(undocumented, `${pkg.name}: document these exports in ${relative(root, join(pkg.dir, "README.md"))}`).toEqual([]);
      });

      it(`the last commit that changed ${REPORT_FILE} carries a changeset naming ${pkg.name}`, (ctx) => {
        const verdict = changesetForLastReportChange(root, rel, pkg.name);
        if (verdict.kind === "uncommitted" || verdict.kind === "no-git") {
          const why = verdict.kind === "uncommitted" ? `${rel} has uncommitted changes` : verdict.reason;
          console.warn(`\n!!! SKIPPED the changeset check for ${pkg.name}: ${why} (a clean clone of main checks it)\n`);
          ctx.skip();
          return;
        }
        const detail = verdict.kind === "missing" ? `commit ${verdict.commit.slice(0, 10)} ("${verdict.subject}") changed ${rel} without a .changeset/*.md naming ${pkg.name}` : "";
        expect(verdict.kind, detail).toBe("ok");
      });
    });
  }
});

describe("changeset front matter", () => {
  it("names each package of a changeset, quoted or not", () => {
    expect(frontmatterNames(`---\n"@vmm/pci": minor\n'@vmm/core': patch\n@vmm/cli: major\n---\n\nText: with colon.\n`)).toEqual(["@vmm/pci", "@vmm/core", "@vmm/cli"]);
  });
  it("names nothing without front matter", () => {
    expect(frontmatterNames("no front matter: here\n")).toEqual([]);
  });
});

describe("the changeset check on a scratch repository", () => {
  const sh = (dir: string, ...args: string[]) => {
    const r = spawnSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", ...args], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
  };
  const repo = () => {
    const dir = mkdtempSync(join(tmpdir(), "api-report-"));
    sh(dir, "init", "-q");
    mkdirSync(join(dir, "packages/pci"), { recursive: true });
    mkdirSync(join(dir, ".changeset"));
    return dir;
  };

  it("finds the changeset committed with the report, and misses one that names another package", () => {
    const dir = repo();
    try {
      writeFileSync(join(dir, "packages/pci", REPORT_FILE), "v1\n");
      writeFileSync(join(dir, ".changeset/a.md"), `---\n"@vmm/pci": minor\n---\n\nv1\n`);
      sh(dir, "add", "-A");
      sh(dir, "commit", "-qm", "v1");
      expect(changesetForLastReportChange(dir, `packages/pci/${REPORT_FILE}`, "@vmm/pci")).toMatchObject({ kind: "ok", changeset: ".changeset/a.md" });

      writeFileSync(join(dir, "packages/pci", REPORT_FILE), "v2\n");
      expect(changesetForLastReportChange(dir, `packages/pci/${REPORT_FILE}`, "@vmm/pci").kind).toBe("uncommitted");
      writeFileSync(join(dir, ".changeset/b.md"), `---\n"@vmm/core": minor\n---\n\nv2\n`);
      sh(dir, "add", "-A");
      sh(dir, "commit", "-qm", "v2 without a pci changeset");
      expect(changesetForLastReportChange(dir, `packages/pci/${REPORT_FILE}`, "@vmm/pci")).toMatchObject({ kind: "missing", subject: "v2 without a pci changeset" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the pending changesets", () => {
  // `changeset version` refuses a changeset that names a private package (never versioned here) beside a published
  // one; catch it when the changeset is written, not at release time.
  it("make a release plan (pnpm changeset status succeeds)", () => {
    const r = spawnSync("pnpm", ["--silent", "changeset", "status"], { cwd: root, encoding: "utf8" });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });
});
