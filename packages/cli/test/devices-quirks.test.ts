/** `vmm devices` lists the quirks plugins register, and the quirks applied to each device of the tree. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runDevices } from "./helpers/devices-run.js";
import { fixturePlugin } from "./helpers/spawn.js";

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-devices-quirks-"));

/** `vmm devices ARGS` from this file's temporary directory (helpers/devices-run.ts). */
const devices = (args: string[]) => runDevices(tmp, args);

describe("vmm devices and quirks", () => {
  it("lists every registered quirk with its plugin and the devices it matches", async () => {
    const r = await devices(["--plugin", fixturePlugin("quirk-plugin.mjs")]);
    expect(r.err).toBe("");
    expect(r.status).toBe(0);
    expect(r.out).toContain(
      "\nquirks, applied to matching passthrough devices (vfio-pci, vfio-user):\n" +
        "  demo-back-door: redirects a back door\n" +
        "    from plugin @x/quirk-fixture, matches abcd:1234 rev 02, 10ec:8168 subsystem 1043:*\n",
    );
  });

  it("without quirks there is no quirks block", async () => {
    const r = await devices([]);
    expect(r.status).toBe(0);
    expect(r.out).not.toContain("quirks");
  });

  it("the tree shows the quirks applied to a device, as text and as JSON", async () => {
    const text = await devices(["--plugin", fixturePlugin("quirk-plugin.mjs"), "--device", "quirky-dev"]);
    expect(text.err).toBe("");
    expect(text.out).toMatch(/^00:0[0-9a-f]\.0 quirky-dev0 pci bar0 mem32 [0-9a-f]+\/4K \[quirk demo-back-door from @x\/quirk-fixture\]$/m);
    const json = await devices(["--json", "--plugin", fixturePlugin("quirk-plugin.mjs"), "--device", "quirky-dev"]);
    const node = (JSON.parse(json.out) as Array<{ name: string; quirks?: unknown }>).find((n) => n.name === "quirky-dev0")!;
    expect(node.quirks).toEqual([{ name: "demo-back-door", plugin: "@x/quirk-fixture", description: "redirects a back door", windows: ["BAR0 0x70+0x8 back door"] }]);
    const host = (JSON.parse(json.out) as Array<{ name: string; quirks?: unknown }>).find((n) => n.name === "host-bridge")!;
    expect(host).not.toHaveProperty("quirks");
  });
});
