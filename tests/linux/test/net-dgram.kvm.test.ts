// Two Linux guests linked by virtio-net's datagram backend, as a user without root links them: each vmm binds its
// own socket path and names the other's. Linux's virtio_net drives both ends; the frames go VM to VM through
// unix datagrams, each queue on its data-plane worker.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { type BootResult, bootLinux } from "../src/boot.js";

const guest = inject("linuxGuest");
const SERVER_IP = "10.0.3.2";
const CLIENT_IP = "10.0.3.1";

/** The `vmm: stats:` counters of the VM's virtio-net function. */
function netCounters(r: BootResult): Record<string, number> {
  const line = /vmm: stats: (\S*net\S*): (.*)/.exec(r.stderr)?.[2] ?? "";
  return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

describe.skipIf(!guest.ok)("two Linux guests over the datagram backend", () => {
  it("ping and a TCP exchange from one guest to the other, virtio-net's queues on their data-plane workers in both VMs", async () => {
    const g = guest as { ok: true; bzImage: string; initramfs: string };
    const dir = await mkdtemp(join(tmpdir(), "vmm-linux-dgram-"));
    const [serverSock, clientSock] = [join(dir, "server.sock"), join(dir, "client.sock")];
    const vmm = (local: string, remote: string, mac: string) => ["-m", "256M", "-n", `dgram,local=${local},remote=${remote},mac=${mac}`, "--stats"];
    try {
      // The client boots once the server listens: a server boot tried again (see bootLinux) cannot leave the
      // client's ping without a peer.
      let listening!: () => void;
      const ready = new Promise<void>((resolve) => (listening = resolve));
      const server = bootLinux({
        bzImage: g.bzImage,
        initramfs: g.initramfs,
        vmmArgs: vmm(serverSock, clientSock, "52:54:00:00:03:02"),
        checks: [`net-up:eth0:${SERVER_IP}/24`, "listen:7"],
        onLine: (line) => {
          if (line === "@@ listen 7 ready") listening();
        },
        timeoutMs: 300_000,
      });
      const client = Promise.race([ready, server.then(() => undefined)]).then(() =>
        bootLinux({
          bzImage: g.bzImage,
          initramfs: g.initramfs,
          vmmArgs: vmm(clientSock, serverSock, "52:54:00:00:03:01"),
          checks: [`net-up:eth0:${CLIENT_IP}/24`, `ping:${SERVER_IP}`, `tcp:${SERVER_IP}:7`],
          timeoutMs: 200_000,
        }),
      );
      const [s, c] = await Promise.all([server, client]);
      expect(s.report.at(-1), s.serial.slice(-3000)).toBe("done failures=0");
      expect(c.report.at(-1), c.serial.slice(-3000)).toBe("done failures=0");
      expect(c.report.some((l) => l.startsWith(`ping ${SERVER_IP} reply seq=`))).toBe(true);
      expect(c.report).toContain(`tcp ${SERVER_IP}:7 got 'guest got: hello from the guest' ok`);
      expect(s.report).toContain("listen 7 got 'hello from the guest' ok");
      for (const r of [s, c]) {
        const n = netCounters(r);
        expect(n.queue0WorkerRequests, r.stderr).toBeGreaterThan(0);
        expect(n.queue1WorkerRequests, r.stderr).toBeGreaterThan(0);
        expect(n.rxDropped, r.stderr).toBe(0);
        expect(r.status).toBe(0);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 560_000);
});
