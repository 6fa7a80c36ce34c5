// The /dev/kvm system fd: open, capabilities, VM creation, closing fds. (Supported CPUID is x86's: x86-kvm.cc.)
#include "common.h"
#include <cerrno>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace kvmn {

static Napi::Value OpenDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) { ThrowType(env, "path must be a string"); return env.Undefined(); }
  std::string path = info[0].As<Napi::String>();
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) { ThrowKvmError(env, "open", errno); return env.Undefined(); }
  return Napi::Number::New(env, fd);
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return info.Env().Undefined();
  if (close(fd) < 0) ThrowKvmError(info.Env(), "close", errno);
  return info.Env().Undefined();
}

// ioctl(fd, req, arg) for requests that take an integer argument and return an integer.
static Napi::Value IoctlInt(const Napi::CallbackInfo& info, unsigned long req, const char* name) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t arg = 0;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  if (info.Length() > 1 && !ArgU32(info, 1, &arg)) return env.Undefined();
  int r = ioctl(fd, req, static_cast<unsigned long>(arg));
  if (r < 0) { ThrowKvmError(env, name, errno); return env.Undefined(); }
  return Napi::Number::New(env, r);
}

static Napi::Value GetApiVersion(const Napi::CallbackInfo& info) { return IoctlInt(info, KVM_GET_API_VERSION, "KVM_GET_API_VERSION"); }
static Napi::Value CheckExtension(const Napi::CallbackInfo& info) { return IoctlInt(info, KVM_CHECK_EXTENSION, "KVM_CHECK_EXTENSION"); }
static Napi::Value GetVcpuMmapSize(const Napi::CallbackInfo& info) { return IoctlInt(info, KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE"); }
// createVm(fd, type = 0): the machine type is 0 on x86; on arm64 it carries the guest IPA size in bits
// (KVM_VM_TYPE_ARM_IPA_SIZE; 0: the default 40 bits).
static Napi::Value CreateVm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint32_t type = 0;
  if (!ArgI32(info, 0, &fd) || (!info[1].IsUndefined() && !ArgU32(info, 1, &type))) return env.Undefined();
  int r;
  do { r = ioctl(fd, KVM_CREATE_VM, static_cast<unsigned long>(type)); } while (r < 0 && errno == EINTR);
  if (r < 0) { ThrowKvmError(env, "KVM_CREATE_VM", errno); return env.Undefined(); }
  fcntl(r, F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(env, r);
}

void InitKvm(Napi::Env env, Napi::Object exports) {
  exports.Set("openDevice", Napi::Function::New(env, OpenDevice, "openDevice"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("getApiVersion", Napi::Function::New(env, GetApiVersion, "getApiVersion"));
  exports.Set("checkExtension", Napi::Function::New(env, CheckExtension, "checkExtension"));
  exports.Set("getVcpuMmapSize", Napi::Function::New(env, GetVcpuMmapSize, "getVcpuMmapSize"));
  exports.Set("createVm", Napi::Function::New(env, CreateVm, "createVm"));
}

}  // namespace kvmn
