// A lock between processes on one machine: a directory created atomically, holding the owner's pid, so a lock
// left by a killed build is recognised as stale and taken over.
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function holder(lock: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(join(lock, "pid"), "utf8"), 10);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `work` while holding `lock` (a directory path), waiting for another holder to finish. */
export async function withLock<T>(lock: string, say: (line: string) => void, work: () => Promise<T>): Promise<T> {
  let announced = false;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = await holder(lock);
      if (pid !== undefined && !alive(pid)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (!announced) {
        say(`waiting for the build in process ${pid ?? "(starting)"} to finish`);
        announced = true;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    await writeFile(join(lock, "pid"), String(process.pid));
    return await work();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}
