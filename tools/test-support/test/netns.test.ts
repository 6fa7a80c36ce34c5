import { describe, expect, it } from "vitest";
import { NETNS_ENV, insideNetns, ip, netnsOk } from "../src/netns.js";

describe("netns harness", () => {
  it("names the child's marker and reports whether namespaces are usable", () => {
    expect(NETNS_ENV).toBe("VMM_TAP_IN_NETNS");
    expect(insideNetns).toBe(process.env[NETNS_ENV] === "1");
    expect(typeof netnsOk).toBe("boolean");
  });

  it.skipIf(!netnsOk)("ip() throws with ip's own complaint on failure", () => {
    expect(() => ip("link", "show", "vmm-no-such-if0")).toThrow(/^ip link show vmm-no-such-if0: .+/);
  });
});
