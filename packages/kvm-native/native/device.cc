// The KVM device control API (KVM_CAP_DEVICE_CTRL): in-kernel devices created on a VM fd and configured
// through attributes (group, attribute, a value behind a pointer). arm64's vGIC and ITS are such devices,
// and the same attribute calls reach a vCPU's own attributes (arm64's PMU) on the vCPU fd.
#include "common.h"
#include <cerrno>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

namespace kvmn {

// createDevice(vmFd, type, test) -> the device fd; with `test`, only asks whether the type can be created
// (KVM_CREATE_DEVICE_TEST) and returns undefined.
static Napi::Value CreateDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t type;
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &type)) return env.Undefined();
  const bool test = info[2].ToBoolean();
  kvm_create_device d{};
  d.type = type;
  d.flags = test ? KVM_CREATE_DEVICE_TEST : 0;
  if (!IoctlOrThrow(env, fd, KVM_CREATE_DEVICE, &d, "KVM_CREATE_DEVICE") || test) return env.Undefined();
  fcntl(static_cast<int>(d.fd), F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(env, d.fd);
}

// The attribute's value lives behind kvm_device_attr.addr, as wide as the attribute defines: none (0), a
// 32-bit or a 64-bit integer.
static bool ArgWidth(const Napi::CallbackInfo& info, size_t i, uint32_t* width) {
  if (!ArgU32(info, i, width)) return false;
  if (*width != 0 && *width != 4 && *width != 8) { ThrowRange(info.Env(), "attribute width must be 0, 4 or 8 bytes"); return false; }
  return true;
}

// setDeviceAttr(fd, group, attr, width, value)
static Napi::Value SetDeviceAttr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t group, width;
  uint64_t attr, value = 0;
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &group) || !ArgU64(info, 2, &attr) || !ArgWidth(info, 3, &width) ||
      (width != 0 && !ArgU64(info, 4, &value)))
    return env.Undefined();
  if (width == 4 && value > UINT32_MAX) { ThrowRange(env, "a 32-bit attribute value must fit in 32 bits"); return env.Undefined(); }
  uint64_t u64 = value;
  uint32_t u32 = static_cast<uint32_t>(value);
  kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  a.addr = width == 8 ? reinterpret_cast<uintptr_t>(&u64) : width == 4 ? reinterpret_cast<uintptr_t>(&u32) : 0;
  IoctlOrThrow(env, fd, KVM_SET_DEVICE_ATTR, &a, "KVM_SET_DEVICE_ATTR");
  return env.Undefined();
}

// getDeviceAttr(fd, group, attr, width) -> bigint
static Napi::Value GetDeviceAttr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t group, width;
  uint64_t attr;
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &group) || !ArgU64(info, 2, &attr) || !ArgWidth(info, 3, &width)) return env.Undefined();
  if (width == 0) { ThrowRange(env, "getDeviceAttr reads a 4- or 8-byte value"); return env.Undefined(); }
  uint64_t u64 = 0;
  uint32_t u32 = 0;
  kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  a.addr = width == 8 ? reinterpret_cast<uintptr_t>(&u64) : reinterpret_cast<uintptr_t>(&u32);
  if (!IoctlOrThrow(env, fd, KVM_GET_DEVICE_ATTR, &a, "KVM_GET_DEVICE_ATTR")) return env.Undefined();
  return Napi::BigInt::New(env, width == 8 ? u64 : static_cast<uint64_t>(u32));
}

// hasDeviceAttr(fd, group, attr) -> boolean (ENXIO: the device does not have it)
static Napi::Value HasDeviceAttr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t group;
  uint64_t attr;
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &group) || !ArgU64(info, 2, &attr)) return env.Undefined();
  kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  if (ioctl(fd, KVM_HAS_DEVICE_ATTR, &a) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENXIO) return Napi::Boolean::New(env, false);
  ThrowKvmError(env, "KVM_HAS_DEVICE_ATTR", errno);
  return env.Undefined();
}

void InitDevice(Napi::Env env, Napi::Object exports) {
  exports.Set("createDevice", Napi::Function::New(env, CreateDevice, "createDevice"));
  exports.Set("setDeviceAttr", Napi::Function::New(env, SetDeviceAttr, "setDeviceAttr"));
  exports.Set("getDeviceAttr", Napi::Function::New(env, GetDeviceAttr, "getDeviceAttr"));
  exports.Set("hasDeviceAttr", Napi::Function::New(env, HasDeviceAttr, "hasDeviceAttr"));
}

}  // namespace kvmn
