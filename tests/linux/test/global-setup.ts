// Builds the test kernel (10-17 minutes the first time on a machine, then cached) and the initramfs once,
// before any test file runs, with progress on stderr.
import type { TestProject } from "vitest/node";
import { devKvmUsable } from "@vmm/test-support";
import { buildInitramfs } from "../src/initramfs.js";
import { buildTestKernel, kernelKey } from "../src/kernel.js";

declare module "vitest" {
  export interface ProvidedContext {
    linuxGuest: { ok: true; bzImage: string; initramfs: string } | { ok: false; reason: string };
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const kvm = devKvmUsable();
  const key = await kernelKey();
  if (!kvm.ok) return project.provide("linuxGuest", { ok: false, reason: kvm.reason });
  if (!key.ok) return project.provide("linuxGuest", { ok: false, reason: key.reason });
  const kernel = await buildTestKernel();
  project.provide("linuxGuest", { ok: true, bzImage: kernel.bzImage, initramfs: await buildInitramfs() });
}
