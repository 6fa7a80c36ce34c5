// Generic ioctl for device APIs whose structures are encoded in TypeScript (kernel VFIO, iommufd): the native side
// only passes the buffer's address or an integer, so the policy and the layouts stay in one place.
#include "common.h"
#include <cerrno>
#include <sys/ioctl.h>

namespace hostio {

static bool ArgRequest(const Napi::CallbackInfo& info, size_t i, unsigned long* out) {
  uint64_t r;
  if (!ArgU64(info, i, &r)) return false;
  *out = static_cast<unsigned long>(r);
  return true;
}

// ioctl(fd, request, buffer) -> the ioctl's result (>= 0).
static Napi::Value IoctlBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  unsigned long request;
  uint8_t* data;
  size_t len;
  if (!ArgI32(info, 0, &fd) || !ArgRequest(info, 1, &request) || !ArgBytes(info, 2, &data, &len)) return env.Undefined();
  int r;
  do r = ioctl(fd, request, data); while (r < 0 && errno == EINTR);
  if (r < 0) { ThrowSysError(env, "ioctl", errno); return env.Undefined(); }
  return Napi::Number::New(env, r);
}

// ioctlValue(fd, request, value) -> the ioctl's result (>= 0).
static Napi::Value IoctlValue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  unsigned long request;
  uint64_t value;
  if (!ArgI32(info, 0, &fd) || !ArgRequest(info, 1, &request) || !ArgU64(info, 2, &value)) return env.Undefined();
  int r;
  do r = ioctl(fd, request, static_cast<unsigned long>(value)); while (r < 0 && errno == EINTR);
  if (r < 0) { ThrowSysError(env, "ioctl", errno); return env.Undefined(); }
  return Napi::Number::New(env, r);
}

void InitIoctl(Napi::Env env, Napi::Object exports) {
  exports.Set("ioctl", Napi::Function::New(env, IoctlBuffer, "ioctl"));
  exports.Set("ioctlValue", Napi::Function::New(env, IoctlValue, "ioctlValue"));
}

}  // namespace hostio
