// tsyringe from the build's one file (src/startup/tsyringe.ts) is the instance every require and import of
// "tsyringe" gets, as tsyringe loaded file by file is. Each case runs in a fresh node process (the module cache is
// per process) against the built dist/.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { cliDir } from "./helpers/spawn.js";

const packDir = path.join(cliDir, "dist/bundle");
const startupModule = pathToFileURL(path.join(cliDir, "dist/startup/tsyringe.js")).href;

interface Sharing {
  /** require("tsyringe") from another module returns the same exports object. */
  readonly required: boolean;
  /** import "tsyringe" (a plugin's ES module) sees the same container and decorators. */
  readonly imported: boolean;
  /** A class made injectable through the imported decorators resolves in a child of vmm's root container. */
  readonly decorated: boolean;
  /** How many of tsyringe's files the module cache holds once vmm has tsyringe. */
  readonly files: number;
}

/** Loads tsyringe through requireTsyringe(dir), then as a plugin would, in a new process; reports what it shares. */
function sharing(dir: string): Sharing {
  const script = `
    import { createRequire } from "node:module";
    import path from "node:path";
    const require = createRequire(path.join(process.cwd(), "plugin.cjs"));
    require("reflect-metadata");
    const { requireTsyringe } = await import(${JSON.stringify(startupModule)});
    const vmm = requireTsyringe(${JSON.stringify(dir)});
    // Before the import below: Node's scan of an imported CommonJS module's re-exports adds their files, unrun.
    const files = Object.keys(require.cache).filter((f) => f.includes(path.sep + "tsyringe" + path.sep));
    const plugin = await import("tsyringe");
    class Dep {}
    class Needs { constructor(dep) { this.dep = dep; } }
    plugin.inject(Dep)(Needs, undefined, 0);
    plugin.injectable()(Needs);
    console.log(JSON.stringify({
      required: require("tsyringe") === vmm,
      imported: plugin.container === vmm.container && plugin.injectable === vmm.injectable,
      decorated: vmm.container.createChildContainer().resolve(Needs).dep instanceof Dep,
      files: files.length,
    }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: cliDir, encoding: "utf8" });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as Sharing;
}

describe("tsyringe in one file", () => {
  it("is the instance require and import of tsyringe return, and the module loader reads only its entry", () => {
    const packs = existsSync(packDir) ? readdirSync(packDir).filter((f) => /^tsyringe-.*\.cjs$/.test(f)) : [];
    expect(packs, "dist/bundle/tsyringe-VERSION.cjs: build the cli first (pnpm turbo run build --filter=@vmm/cli)").toHaveLength(1);
    expect(sharing(packDir)).toEqual({ required: true, imported: true, decorated: true, files: 1 });
  });

  it("without a one-file build for the installed version, tsyringe's files load as installed and are shared the same way", () => {
    const shared = sharing(mkdtempSync(path.join(tmpdir(), "vmm-no-pack-")));
    expect(shared).toMatchObject({ required: true, imported: true, decorated: true });
    expect(shared.files).toBeGreaterThan(20);
  });
});
