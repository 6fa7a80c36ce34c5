// One fresh copy of the repository for every test file (clone, install from the store, build: about half a minute
// on 2 cores), removed after the run.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { makeFreshCopy, type FreshCopy } from "../src/fresh-copy.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The fresh copy, and the temporary directory it and the tests' other files live in. */
    freshCopy: FreshCopy & { work: string };
  }
}

const root = resolve(fileURLToPath(import.meta.url), "../../../..");

export default function setup(project: TestProject): () => void {
  const work = mkdtempSync(join(tmpdir(), "vmm-readme-"));
  let copy: FreshCopy;
  try {
    copy = makeFreshCopy(root, join(work, "repository"));
  } catch (e) {
    rmSync(work, { recursive: true, force: true });
    throw e;
  }
  const { clone, install, build } = copy.seconds;
  console.log(`readme-tests: fresh copy of ${copy.commit.slice(0, 12)}: clone ${clone} s, install ${install} s, build ${build} s`);
  project.provide("freshCopy", { ...copy, work });
  return () => rmSync(work, { recursive: true, force: true });
}
