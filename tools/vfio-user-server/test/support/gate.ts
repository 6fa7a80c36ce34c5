import { hostIoAvailability } from "@vmm/host-io";
import { kvmTestGate } from "@vmm/test-support";
import { afterAll } from "vitest";
import { checkBuilt, removeSocketDirs } from "./server-process.js";

/** The suites that run the server need the host-io addon (unix sockets, fd passing, memfds): skip loudly without. */
export const hostIo = kvmTestGate("@vmm/vfio-user-server", { what: "vfio-user server process tests", check: hostIoAvailability });

if (hostIo.ok) checkBuilt();
afterAll(() => removeSocketDirs());
