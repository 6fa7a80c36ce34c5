// x86's system- and VM-level calls: supported CPUID, the in-kernel PIC/IOAPIC irqchip and PIT, and the
// addresses of the TSS and identity-map pages VMX needs.
#include "common.h"
#include "x86-abi.h"
#include <cerrno>
#include <linux/kvm.h>
#include <sys/ioctl.h>

namespace kvmn {

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

static Napi::Value SimpleIoctl(const Napi::CallbackInfo& info, unsigned long req, const char* name, bool withArg) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint64_t arg = 0;
  if (!ArgI32(info, 0, &fd) || (withArg && !ArgU64(info, 1, &arg))) return env.Undefined();
  int r = ioctl(fd, req, static_cast<unsigned long>(arg));
  if (r < 0) ThrowKvmError(env, name, errno);
  return env.Undefined();
}

static Napi::Value SetTssAddr(const Napi::CallbackInfo& info) { return SimpleIoctl(info, KVM_SET_TSS_ADDR, "KVM_SET_TSS_ADDR", true); }
static Napi::Value CreateIrqchip(const Napi::CallbackInfo& info) { return SimpleIoctl(info, KVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP", false); }

static Napi::Value SetIdentityMapAddr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  uint64_t addr;
  if (!ArgI32(info, 0, &fd) || !ArgU64(info, 1, &addr)) return env.Undefined();
  IoctlOrThrow(env, fd, KVM_SET_IDENTITY_MAP_ADDR, &addr, "KVM_SET_IDENTITY_MAP_ADDR");
  return env.Undefined();
}

static Napi::Value CreatePit2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  kvm_pit_config c{};
  IoctlOrThrow(env, fd, KVM_CREATE_PIT2, &c, "KVM_CREATE_PIT2");
  return env.Undefined();
}

void InitArch(Napi::Env env, Napi::Object exports) {
  exports.Set("arch", Napi::String::New(env, "x86_64"));
  exports.Set("getSupportedCpuid", Napi::Function::New(env, GetSupportedCpuid, "getSupportedCpuid"));
  exports.Set("setTssAddr", Napi::Function::New(env, SetTssAddr, "setTssAddr"));
  exports.Set("setIdentityMapAddr", Napi::Function::New(env, SetIdentityMapAddr, "setIdentityMapAddr"));
  exports.Set("createIrqchip", Napi::Function::New(env, CreateIrqchip, "createIrqchip"));
  exports.Set("createPit2", Napi::Function::New(env, CreatePit2, "createPit2"));
}

}  // namespace kvmn
