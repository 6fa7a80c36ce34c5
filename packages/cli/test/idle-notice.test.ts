/** `--idle-notice`: the notice's schedule (fake timers), its wiring into `vmm run` (a fake machine), the stdout tap. */
import { EventEmitter } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CliContext } from "../src/context.js";
import { DEFAULT_IDLE_NOTICE, IdleNotice, idleNoticeSeconds, idleNoticeText, tapWrites } from "../src/idle-notice.js";
import { main } from "../src/main.js";
import { FakeMachine, type GuestScript } from "./helpers/fake-machine.js";

describe("IdleNotice's schedule", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** Seconds of silence each notice reported, from a notice started now. */
  function start(intervalMs: number): { notices: number[]; notice: IdleNotice } {
    const notices: number[] = [];
    return { notices, notice: new IdleNotice(intervalMs, (ms) => notices.push(ms / 1000)) };
  }

  it("says so after the interval of silence, then each time the silence has doubled", () => {
    const { notices, notice } = start(10_000);
    vi.advanceTimersByTime(9_999);
    expect(notices).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(notices).toEqual([10]);
    vi.advanceTimersByTime(10_000);
    expect(notices).toEqual([10, 20]);
    vi.advanceTimersByTime(20_000);
    expect(notices).toEqual([10, 20, 40]);
    // An hour of silence: a handful of notices, not one every 10 s.
    vi.advanceTimersByTime(3_600_000 - 40_000);
    expect(notices).toEqual([10, 20, 40, 80, 160, 320, 640, 1280, 2560]);
    notice.stop();
  });

  it("never fires while output flows, and output starts the schedule over", () => {
    const { notices, notice } = start(10_000);
    for (let t = 0; t < 120; t++) {
      vi.advanceTimersByTime(5_000);
      notice.output();
    }
    expect(notices).toEqual([]);
    vi.advanceTimersByTime(20_000);
    expect(notices).toEqual([10, 20]);
    vi.advanceTimersByTime(5_000);
    notice.output(); // between the 20 s and the 40 s notice
    vi.advanceTimersByTime(9_999);
    expect(notices).toEqual([10, 20]);
    vi.advanceTimersByTime(1);
    expect(notices).toEqual([10, 20, 10]);
    notice.stop();
  });

  it("output just before a notice was due postpones it by a whole interval", () => {
    const { notices, notice } = start(10_000);
    vi.advanceTimersByTime(9_000);
    notice.output();
    vi.advanceTimersByTime(9_999);
    expect(notices).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(notices).toEqual([10]);
    notice.stop();
  });

  it("stop() ends it", () => {
    const { notices, notice } = start(1_000);
    notice.stop();
    vi.advanceTimersByTime(60_000);
    expect(notices).toEqual([]);
  });
});

describe("the notice's text and default", () => {
  it("names the guest, the silence and how to stop it", () => {
    expect(idleNoticeText("demo", 10_000)).toBe("guest demo still running, no output for 10 s (Ctrl-C or SIGTERM stops it)");
    expect(idleNoticeText("demo", 50)).toBe("guest demo still running, no output for 0.05 s (Ctrl-C or SIGTERM stops it)");
  });
  it("is on by default only when stderr is a terminal; --idle-notice decides either way, 0 turns it off", () => {
    expect(DEFAULT_IDLE_NOTICE).toBe(10);
    expect(idleNoticeSeconds(undefined, true)).toBe(10);
    expect(idleNoticeSeconds(undefined, false)).toBe(0);
    expect(idleNoticeSeconds(3, false)).toBe(3);
    expect(idleNoticeSeconds(0, true)).toBe(0);
  });
});

describe("tapWrites", () => {
  it("sees every write before it reaches the stream, and stops when removed", () => {
    const written: string[] = [];
    const seen: number[] = [];
    const stream = { write: (chunk: string) => written.push(chunk) > 0 };
    const untap = tapWrites(stream as unknown as { write: (...args: never[]) => boolean }, () => seen.push(written.length));
    stream.write("a");
    stream.write("b");
    untap();
    stream.write("c");
    expect(written).toEqual(["a", "b", "c"]);
    expect(seen).toEqual([0, 1]);
  });
});

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-idle-"));
const kernel = path.join(tmp, "guest.bin");
writeFileSync(kernel, Uint8Array.of(0xf4));

/** Waits until `condition()` holds (polled every 10 ms, for at most 10 s). */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}

/**
 * `vmm run ARGS` with a fake machine whose scripted guest writes its console output through `console()` (what the
 * real process's stdout tap sees), from a context whose stderr is a terminal or not.
 */
async function run(args: string[], guest: (io: { console: () => void; err: string[] }) => Promise<void>, terminal: boolean) {
  const err: string[] = [];
  const listeners = new Set<() => void>();
  const watched: string[] = [];
  const ctx: CliContext = {
    cwd: tmp,
    stdout: () => {},
    stderr: (t) => err.push(t),
    signals: new EventEmitter() as unknown as CliContext["signals"],
    builtins: [],
    stderrIsTerminal: terminal,
    watchConsole: (onOutput) => {
      watched.push("watch");
      listeners.add(onOutput);
      return () => {
        watched.push("unwatch");
        listeners.delete(onOutput);
      };
    },
    machineFactory: async () => (config) => {
      const script: GuestScript = async () => {
        await guest({ console: () => listeners.forEach((l) => l()), err });
        return { status: 0, reason: "shutdown" };
      };
      return new FakeMachine(config, script);
    },
  };
  const status = await main(["run", "-k", kernel, ...args], ctx);
  return { status, err: err.join(""), watched };
}

const notice = (s: number) => `vmm: guest quiet still running, no output for ${s} s (Ctrl-C or SIGTERM stops it)\n`;

describe("vmm run --idle-notice", () => {
  it("says on stderr that a silent guest still runs, again when the silence doubles, and starts over after output", async () => {
    const r = await run(
      ["--name", "quiet", "--idle-notice", "0.05"],
      async ({ console, err }) => {
        await until(() => err.length === 2);
        console();
        await until(() => err.length === 3);
      },
      false,
    );
    expect(r.err).toBe(notice(0.05) + notice(0.1) + notice(0.05));
    expect(r.status).toBe(0);
    expect(r.watched).toEqual(["watch", "unwatch"]);
  });

  it("stays quiet while output flows", async () => {
    const r = await run(
      ["--name", "quiet", "--idle-notice", "0.5"],
      async ({ console }) => {
        for (let i = 0; i < 60; i++) {
          console();
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      },
      false,
    );
    expect(r.status).toBe(0);
    expect(r.err).toBe("");
  });

  it("watches the console by default only when stderr is a terminal; 0 turns it off there too", async () => {
    const silent = async () => {};
    expect((await run([], silent, true)).watched).toEqual(["watch", "unwatch"]);
    expect((await run([], silent, false)).watched).toEqual([]);
    expect((await run(["--idle-notice", "0"], silent, true)).watched).toEqual([]);
    expect((await run(["--idle-notice", "2"], silent, false)).watched).toEqual(["watch", "unwatch"]);
  });

  it.each(["-1", "soon", "1e3", "90000"])("refuses --idle-notice %s", async (value) => {
    const r = await run(["--idle-notice", value], async () => {}, false);
    expect(r.status).toBe(2);
    expect(r.err).toBe(`vmm: error: --idle-notice '${value}': expected seconds, a number from 0 to 86400 (0: never)\n`);
  });
});
