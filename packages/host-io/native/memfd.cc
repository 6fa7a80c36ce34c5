// Anonymous memory files (memfd_create) that can be mapped by this process and handed to another (over a unix
// socket with SCM_RIGHTS): the way guest memory and DMA regions are shared with vfio-user device processes.
#include "common.h"
#include <cerrno>
#include <string>
#include <sys/mman.h>

namespace hostio {

// memfdCreate(name, allowSealing) -> fd (MFD_CLOEXEC; size 0 until ftruncate).
static Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) { ThrowType(env, "memfdCreate(name: string, allowSealing: boolean)"); return env.Undefined(); }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.size() > 249 || name.find('\0') != std::string::npos) { ThrowRange(env, "memfd name must be at most 249 bytes without NUL"); return env.Undefined(); }
  unsigned flags = MFD_CLOEXEC | (info[1].ToBoolean().Value() ? MFD_ALLOW_SEALING : 0);
  int fd = memfd_create(name.c_str(), flags);
  if (fd < 0) { ThrowSysError(env, "memfd_create", errno); return env.Undefined(); }
  return Napi::Number::New(env, fd);
}

void InitMemfd(Napi::Env env, Napi::Object exports) {
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
}

}  // namespace hostio
