// Disk image helpers for device backends: open-file-description locks and a block device's size.
// Each call is one fcntl/ioctl; what a lock conflict means is decided in TypeScript.
#include "common.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

namespace hostio {

// lockFile(fd, "shared" | "exclusive" | "unlock") -> true when taken, false when another open file
// description holds a conflicting lock. OFD locks (not POSIX ones) conflict between two opens in one process
// too, and belong to the open file: they go away when its last fd is closed.
static Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  std::string mode = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  if (mode == "shared") fl.l_type = F_RDLCK;
  else if (mode == "exclusive") fl.l_type = F_WRLCK;
  else if (mode == "unlock") fl.l_type = F_UNLCK;
  else { ThrowType(env, "lock mode must be \"shared\", \"exclusive\" or \"unlock\""); return env.Undefined(); }
  fl.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return Napi::Boolean::New(env, true);
  if (errno == EAGAIN || errno == EACCES) return Napi::Boolean::New(env, false);
  ThrowSysError(env, "fcntl(F_OFD_SETLK)", errno);
  return env.Undefined();
}

// blockDeviceSize(fd) -> bytes (BLKGETSIZE64): stat() gives 0 for a block device.
static Napi::Value BlockDeviceSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  uint64_t size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) < 0) { ThrowSysError(env, "BLKGETSIZE64", errno); return env.Undefined(); }
  return Napi::Number::New(env, static_cast<double>(size));
}

void InitFile(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, LockFile, "lockFile"));
  exports.Set("blockDeviceSize", Napi::Function::New(env, BlockDeviceSize, "blockDeviceSize"));
}

}  // namespace hostio
