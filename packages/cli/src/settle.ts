/**
 * Waiting on plugin code with a bound. A plugin promise that never settles would otherwise leave Node with an
 * unsettled top-level await: the process exits 13 without a word.
 */

/** How long plugin code (import, register, create, close) may take. Tests shorten it through the environment. */
export const settleTimeouts = {
  ms: Number(process.env.VMM_INTERNAL_SETTLE_TIMEOUT_MS) > 0 ? Number(process.env.VMM_INTERNAL_SETTLE_TIMEOUT_MS) : 10_000,
};

/** Thrown when `abort` fires while waiting (a signal arrived); whatever was built is closed by the caller. */
export class StoppedError extends Error {
  constructor(readonly reason: unknown) {
    super(`stopped by ${String(reason)}`);
  }
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/**
 * Resolves like `work`, unless it takes longer than the timeout (rejects with `timedOut(limit)`) or `abort`
 * fires first (rejects with StoppedError). The abandoned promise is left to itself.
 */
export function settleWithin<T>(
  work: Promise<T> | T,
  timedOut: (limit: string) => Error,
  abort?: AbortSignal,
  ms = settleTimeouts.ms,
): Promise<T> {
  if (abort?.aborted) return Promise.reject(new StoppedError(abort.reason));
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => finish(() => reject(timedOut(seconds(ms)))), ms);
    const onAbort = () => finish(() => reject(new StoppedError(abort!.reason)));
    const finish = (then: () => void) => {
      clearTimeout(timer);
      abort?.removeEventListener("abort", onAbort);
      then();
    };
    abort?.addEventListener("abort", onAbort, { once: true });
    Promise.resolve(work).then(
      (value) => finish(() => resolve(value)),
      (error: unknown) => finish(() => reject(error)),
    );
  });
}
