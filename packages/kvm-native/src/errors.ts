import { SyscallError } from "@vmm/addon-build/runtime";
/** A failed system call or ioctl on KVM: `errno` is the symbolic name ("EEXIST"), `syscall` the call ("KVM_CREATE_VCPU"). */
export class KvmError extends SyscallError {
  override name = "KvmError";
}
