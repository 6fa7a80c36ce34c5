// The run-time side shared by the workspace's addon packages (@vmm/kvm-native, @vmm/host-io): the error class
// their native code throws, and loading the compiled addon once, on first use, so that importing a package never
// fails on a machine without a build.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** A failed system call or ioctl; each addon package names its own subclass. */
export class SyscallError extends Error {
  constructor(syscall, errno, errnoNumber = 0, description = "") {
    super(`${syscall} failed: ${errno}${description ? ` (${description})` : ""}`);
    this.syscall = syscall;
    this.errno = errno;
    this.errnoNumber = errnoNumber;
  }
}

/**
 * The loader of the addon of the package whose module is `moduleUrl` (a file in its src/ or dist/): prebuilds,
 * then build/Release, through node-gyp-build. The addon gets `errorClass` for the errors it throws. A failed load
 * is remembered and returned as an Error that says how to build the package.
 */
export function addonLoader(moduleUrl, packageName, errorClass) {
  const root = join(dirname(fileURLToPath(moduleUrl)), "..");
  let cached;
  let loadError;
  const tryLoad = () => {
    if (cached) return cached;
    if (loadError) return loadError;
    try {
      const load = createRequire(moduleUrl)("node-gyp-build");
      const addon = load(root);
      addon.setErrorClass(errorClass);
      cached = addon;
      return addon;
    } catch (e) {
      loadError = new Error(`the ${packageName} addon is not built (run "pnpm --filter ${packageName} build"): ${e.message}`);
      return loadError;
    }
  };
  return {
    root,
    tryLoad,
    load() {
      const n = tryLoad();
      if (n instanceof Error) throw n;
      return n;
    },
  };
}
