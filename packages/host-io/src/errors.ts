import { SyscallError } from "@vmm/addon-build/runtime";
/** A failed system call on a host fd: `errno` is the symbolic name ("EBUSY"), `syscall` the call ("TUNSETIFF"). */
export class HostIoError extends SyscallError {
  override name = "HostIoError";
}
