// Drives Vcpu.run like a machine would: re-enter through setImmediate on "yield" until done.
import type { VcpuExitDispatch, RunOptions, VcpuRunResult, Vcpu } from "../../src/index.js";

export async function runUntil(
  vcpu: Vcpu,
  dispatch: VcpuExitDispatch,
  done: (r: VcpuRunResult) => boolean,
  opts: RunOptions & { timeoutMs?: number } = {},
): Promise<{ result: VcpuRunResult; runs: number }> {
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  let runs = 0;
  for (;;) {
    const result = vcpu.run(dispatch, opts);
    runs++;
    if (done(result)) return { result, runs };
    if (result.reason !== "yield") throw new Error(`unexpected run result ${JSON.stringify(result)}`);
    if (Date.now() > deadline) throw new Error(`guest did not finish within ${opts.timeoutMs ?? 5000} ms`);
    await new Promise((r) => setImmediate(r));
  }
}
