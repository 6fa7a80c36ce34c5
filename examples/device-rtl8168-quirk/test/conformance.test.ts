/** The plugin's contract, checked with @vmm/plugin-testkit: it registers its one quirk, well-formed, and nothing else. */
import { checkPlugin } from "@vmm/plugin-testkit";
import { describe, expect, it } from "vitest";
import * as pluginModule from "../src/index.js";
import { QUIRK_NAME, REALTEK_VENDOR_ID, RTL8168_DEVICE_ID } from "../src/index.js";

describe("@x/device-rtl8168-quirk conforms to the plugin contract", () => {
  it("registers the back-door quirk for the RTL8168, well-formed, and no device type", async () => {
    const report = await checkPlugin(pluginModule);
    expect(report.plugin.name).toBe("@x/device-rtl8168-quirk");
    expect(report.deviceTypes).toEqual([]);
    expect(report.quirks.map((q) => [q.name, q.plugin])).toEqual([[QUIRK_NAME, "@x/device-rtl8168-quirk"]]);
    expect(report.quirks[0]!.match).toEqual({ vendorId: REALTEK_VENDOR_ID, deviceId: RTL8168_DEVICE_ID });
    expect(report.bindings).toEqual(["@vmm/core:Quirk"]);
  });
});
