#!/usr/bin/env node
// api-report [--update]: compares (or rewrites) every published package's api-report.md with its built surface.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { REPORT_FILE, apiReport, publishedPackages } from "./report.js";

const root = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
const update = process.argv.includes("--update");
let stale = 0;
for (const pkg of publishedPackages(root)) {
  const file = join(pkg.dir, REPORT_FILE);
  let report: string;
  try {
    report = apiReport(pkg);
  } catch (e) {
    console.error(`api-report: ${(e as Error).message}`);
    process.exit(2);
  }
  const current = existsSync(file) ? readFileSync(file, "utf8") : undefined;
  if (current === report) continue;
  if (update) {
    writeFileSync(file, report);
    console.log(`${pkg.name}: ${REPORT_FILE} rewritten; commit it with a changeset for ${pkg.name}`);
  } else {
    console.log(`${pkg.name}: public API differs from ${REPORT_FILE}`);
    stale++;
  }
}
if (stale) {
  console.log("run `pnpm api:update` after `pnpm build`, review the diff, and add a changeset");
  process.exit(1);
}
