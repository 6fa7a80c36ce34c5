import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";

/**
 * A fresh temporary directory for each test of the enclosing describe, removed after it. Returns the path of a
 * name inside the current test's directory.
 */
export function tempDirEach(prefix: string): (name: string) => string {
  let dir = "";
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return (name) => join(dir, name);
}
