import { execFileSync } from "node:child_process";

/** Whether a host program runs (`name --version` exits 0): tests that need one skip loudly without it. */
export function hostToolAvailable(name: string, args: readonly string[] = ["--version"]): boolean {
  try {
    execFileSync(name, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
