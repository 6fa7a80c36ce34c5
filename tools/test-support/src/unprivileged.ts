// Runs a command as an unprivileged user that can open /dev/kvm and nothing else a root test runner could: in a
// private mount namespace, a /dev/kvm node owned by that user is bind-mounted over the real one (the host's
// /dev/kvm keeps its owner and mode), then setpriv drops to the user with no groups and no capabilities. The
// command gets a private XDG_RUNTIME_DIR owned by the user on the same tmpfs, as a login session would.
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";

export interface UnprivilegedUser {
  uid: number;
  gid: number;
}

/** nobody:nogroup on Debian. */
export const NOBODY: UnprivilegedUser = { uid: 65534, gid: 65534 };

export type Unprivileged =
  | {
      ok: true;
      /** Already unprivileged: the command runs as it is. */
      asIs: boolean;
      /** The command line that runs `file args` as the user, with /dev/kvm usable. */
      command(file: string, args: readonly string[]): { file: string; args: string[] };
    }
  | { ok: false; reason: string };

const SCRIPT = [
  "set -e",
  // $0: a scratch directory for the node; $1 $2: major, minor; $3 $4: uid, gid; then the command.
  'dir="$0"; major="$1"; minor="$2"; uid="$3"; gid="$4"; shift 4',
  'mount -t tmpfs -o mode=0755,size=64k vmm-kvm "$dir"',
  'mknod -m 0600 "$dir/kvm" c "$major" "$minor"',
  'chown "$uid:$gid" "$dir/kvm"',
  'mount --bind "$dir/kvm" /dev/kvm',
  // A runtime directory of the user's own, as a login session gives one (vmm's control socket goes there).
  'mkdir -m 0700 "$dir/run" && chown "$uid:$gid" "$dir/run"',
  'export XDG_RUNTIME_DIR="$dir/run"',
  'exec setpriv --reuid "$uid" --regid "$gid" --clear-groups --inh-caps=-all --bounding-set=-all -- "$@"',
].join("\n");

function toolWorks(file: string, args: readonly string[]): boolean {
  return spawnSync(file, args, { stdio: "ignore" }).status === 0;
}

/**
 * How to run a command unprivileged here. A non-root runner already is; root needs unshare and setpriv
 * (util-linux) and a scratch directory (`scratch`, created by the caller, left empty afterwards).
 */
export function unprivileged(scratch: string, user: UnprivilegedUser = NOBODY): Unprivileged {
  if (process.getuid?.() !== 0) {
    return { ok: true, asIs: true, command: (file, args) => ({ file, args: [...args] }) };
  }
  let rdev: number;
  try {
    rdev = statSync("/dev/kvm").rdev;
  } catch (e) {
    return { ok: false, reason: `/dev/kvm: ${(e as Error).message}` };
  }
  if (!toolWorks("unshare", ["--mount", "--propagation", "private", "true"])) {
    return { ok: false, reason: "unshare --mount does not work here (util-linux, CAP_SYS_ADMIN)" };
  }
  if (!toolWorks("setpriv", ["--version"])) return { ok: false, reason: "setpriv is missing (util-linux)" };
  // glibc's dev_t encoding (the high bits beyond 32 are not used by /dev/kvm's numbers).
  const major = (rdev >>> 8) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
  return {
    ok: true,
    asIs: false,
    command: (file, args) => ({
      file: "unshare",
      args: ["--mount", "--propagation", "private", "--", "sh", "-c", SCRIPT, scratch, String(major), String(minor), String(user.uid), String(user.gid), file, ...args],
    }),
  };
}
