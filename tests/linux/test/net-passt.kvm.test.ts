// virtio-net on passt (user-mode networking) judged by Linux in the guest and a TCP server on the host: vmm
// starts passt with the address, prefix and gateway the test chooses; the guest configures eth0 statically with
// them and connects to the gateway address, which passt maps to the host's loopback.
import { hostToolAvailable } from "@vmm/test-support";
import { createServer, type Socket } from "node:net";
import { describe, expect, inject, it } from "vitest";
import { bootLinux } from "../src/boot.js";

const guest = inject("linuxGuest");
const GUEST_IP = "10.0.2.15";
const GATEWAY = "10.0.2.2";

const HAVE_PASST = hostToolAvailable("passt");
if (!HAVE_PASST) console.warn("SKIP Linux virtio-net on passt: the passt binary is missing (Debian package passt)");

describe.skipIf(!guest.ok || !HAVE_PASST)("Linux's virtio-net on passt", () => {
  it("configures eth0 with passt's address and exchanges a line over TCP with a host server through the gateway", async () => {
    const g = guest as { ok: true; bzImage: string; initramfs: string };
    const received: string[] = [];
    const server = createServer((socket: Socket) => {
      let text = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        text += chunk;
        if (!text.includes("\n")) return;
        const line = text.slice(0, text.indexOf("\n"));
        received.push(line);
        socket.end(`host got: ${line}\n`);
      });
      socket.on("error", () => socket.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await bootLinux({
        bzImage: g.bzImage,
        initramfs: g.initramfs,
        vmmArgs: ["-m", "256M", "-n", `user,address=${GUEST_IP},prefix=24,gateway=${GATEWAY},mac=52:54:00:12:34:56`],
        checks: [`net-up:eth0:${GUEST_IP}/24`, `tcp:${GATEWAY}:${port}`],
        timeoutMs: 200_000,
      });
      expect(r.report.at(-1), r.serial.slice(-3000)).toBe("done failures=0");
      expect(r.report).toContain("net-up eth0 mac=525400123456 ok");
      expect(r.report).toContain(`tcp ${GATEWAY}:${port} got 'host got: hello from the guest' ok`);
      expect(received).toEqual(["hello from the guest"]);
      expect(r.status).toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }, 420_000);
});
