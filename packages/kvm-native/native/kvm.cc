// The /dev/kvm system fd: open, capabilities, supported CPUID, VM creation, closing fds.
#include "common.h"
#include "kvm-abi.h"
#include <cerrno>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <vector>

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
static Napi::Value CreateVm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  int r;
  do { r = ioctl(fd, KVM_CREATE_VM, 0UL); } while (r < 0 && errno == EINTR);
  if (r < 0) { ThrowKvmError(env, "KVM_CREATE_VM", errno); return env.Undefined(); }
  fcntl(r, F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(env, r);
}

static Napi::Value GetSupportedCpuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  for (uint32_t n = 128; n <= 4096; n *= 2) {
    VarArg<CpuidHeader, kvm_cpuid_entry2> c(n);
    c.header()->nent = n;
    if (ioctl(fd, kGetSupportedCpuid, c.arg()) < 0) {
      if (errno == E2BIG) continue;
      ThrowKvmError(env, "KVM_GET_SUPPORTED_CPUID", errno);
      return env.Undefined();
    }
    uint32_t got = c.header()->nent;
    Napi::Array out = Napi::Array::New(env, got);
    for (uint32_t i = 0; i < got; i++) {
      const kvm_cpuid_entry2& e = c.entries()[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("function", Napi::Number::New(env, e.function));
      o.Set("index", Napi::Number::New(env, e.index));
      o.Set("flags", Napi::Number::New(env, e.flags));
      o.Set("eax", Napi::Number::New(env, e.eax));
      o.Set("ebx", Napi::Number::New(env, e.ebx));
      o.Set("ecx", Napi::Number::New(env, e.ecx));
      o.Set("edx", Napi::Number::New(env, e.edx));
      out.Set(i, o);
    }
    return out;
  }
  ThrowKvmError(env, "KVM_GET_SUPPORTED_CPUID", E2BIG);
  return env.Undefined();
}

void InitKvm(Napi::Env env, Napi::Object exports) {
  exports.Set("openDevice", Napi::Function::New(env, OpenDevice, "openDevice"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("getApiVersion", Napi::Function::New(env, GetApiVersion, "getApiVersion"));
  exports.Set("checkExtension", Napi::Function::New(env, CheckExtension, "checkExtension"));
  exports.Set("getVcpuMmapSize", Napi::Function::New(env, GetVcpuMmapSize, "getVcpuMmapSize"));
  exports.Set("createVm", Napi::Function::New(env, CreateVm, "createVm"));
  exports.Set("getSupportedCpuid", Napi::Function::New(env, GetSupportedCpuid, "getSupportedCpuid"));
}

}  // namespace kvmn
