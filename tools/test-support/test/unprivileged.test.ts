import { spawnSync } from "node:child_process";
import { mkdtempSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { devKvmUsable } from "../src/kvm-gate.js";
import { NOBODY, unprivileged } from "../src/unprivileged.js";

const kvm = devKvmUsable();
if (!kvm.ok) console.warn(`SKIP the unprivileged runner's tests: ${kvm.reason}`);

// What the child reports about itself: ids, groups, effective capabilities, and whether it can open /dev/kvm and
// a root-only directory.
const PROBE = `
const fs = require("node:fs");
const capEff = /CapEff:\\s*(\\S+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))[1];
const open = (p) => { try { fs.closeSync(fs.openSync(p, "r+")); return "ok"; } catch (e) { return e.code; } };
const list = (p) => { try { fs.readdirSync(p); return "ok"; } catch (e) { return e.code; } };
const run = process.env.XDG_RUNTIME_DIR; let runDir = "unset";
if (run) { const st = fs.statSync(run); runDir = st.uid + ":" + (st.mode & 0o777).toString(8); fs.writeFileSync(run + "/probe", "x"); }
console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(), capEff, kvm: open("/dev/kvm"), root: list("/root"), runDir }));`;

describe.skipIf(!kvm.ok)("unprivileged", () => {
  it("runs a command as nobody with /dev/kvm usable, no capabilities, a runtime directory of its own, and the host's /dev/kvm untouched", () => {
    const scratch = mkdtempSync(join(tmpdir(), "vmm-unpriv-"));
    const before = statSync("/dev/kvm");
    try {
      const u = unprivileged(scratch);
      if (!u.ok) throw new Error(u.reason);
      const { file, args } = u.command(process.execPath, ["-e", PROBE]);
      const r = spawnSync(file, args, { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      const seen = JSON.parse(r.stdout) as { uid: number; gid: number; groups: number[]; capEff: string; kvm: string; root: string; runDir: string };
      expect(seen.kvm).toBe("ok");
      if (u.asIs) {
        expect(seen.uid).not.toBe(0);
      } else {
        expect(seen).toMatchObject({ uid: NOBODY.uid, gid: NOBODY.gid, capEff: "0000000000000000", root: "EACCES", runDir: `${NOBODY.uid}:700` });
        expect(seen.groups.filter((g) => g !== NOBODY.gid)).toEqual([]);
      }
      const after = statSync("/dev/kvm");
      expect([after.uid, after.gid, after.mode, after.rdev]).toEqual([before.uid, before.gid, before.mode, before.rdev]);
    } finally {
      rmdirSync(scratch);
    }
  });
});
