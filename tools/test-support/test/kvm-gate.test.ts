import { describe, expect, it } from "vitest";
import { devKvmUsable, kvmSkipBanner, kvmTestGate } from "../src/index.js";

describe("kvmTestGate", () => {
  it("prints the loud banner once, with the package, what is skipped and why, when KVM is reported missing", () => {
    const printed: string[] = [];
    const missing = () => ({ ok: false, reason: "/dev/kvm does not exist (no KVM on this machine)" }) as const;
    const options = { what: "gate unit-test suites", check: missing, warn: (m: string) => printed.push(m) };
    const first = kvmTestGate("@vmm/example", options);
    const second = kvmTestGate("@vmm/example", options);
    expect(first).toEqual({ ok: false, reason: "/dev/kvm does not exist (no KVM on this machine)" });
    expect(second).toEqual(first);
    expect(printed).toHaveLength(1);
    const lines = printed[0]!.split("\n");
    expect(lines).toEqual([
      "",
      "!".repeat(78),
      "!! @vmm/example: gate unit-test suites SKIPPED: /dev/kvm does not exist (no KVM on this machine)",
      "!".repeat(78),
      "",
    ]);
  });

  it("announces each package separately and says nothing when KVM is there", () => {
    const printed: string[] = [];
    const warn = (m: string) => printed.push(m);
    const missing = () => ({ ok: false, reason: "no" }) as const;
    kvmTestGate("@vmm/one", { what: "separate suites", check: missing, warn });
    kvmTestGate("@vmm/two", { what: "separate suites", check: missing, warn });
    expect(printed).toEqual([kvmSkipBanner("@vmm/one", "separate suites", "no"), kvmSkipBanner("@vmm/two", "separate suites", "no")]);
    expect(kvmTestGate("@vmm/three", { check: () => ({ ok: true }), warn })).toEqual({ ok: true });
    expect(printed).toHaveLength(2);
  });

  it("defaults to KVM tests and to opening /dev/kvm read-write", () => {
    const printed: string[] = [];
    const gate = kvmTestGate("@vmm/default-check", { warn: (m) => printed.push(m) });
    expect(gate).toEqual(devKvmUsable());
    if (gate.ok) expect(printed).toEqual([]);
    else expect(printed).toEqual([kvmSkipBanner("@vmm/default-check", "KVM tests", gate.reason)]);
    const none = devKvmUsable("/nonexistent/kvm");
    expect(none).toEqual({ ok: false, reason: "/nonexistent/kvm is not usable (ENOENT)" });
  });
});
