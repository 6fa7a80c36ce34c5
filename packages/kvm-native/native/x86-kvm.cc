// x86's system- and VM-level calls: supported CPUID, the MSR index list, the in-kernel PIC/IOAPIC irqchip and
// PIT (and their state, as opaque bytes), kvmclock, and the addresses of the TSS and identity-map pages VMX needs.
#include "common.h"
#include "x86-abi.h"
#include <cerrno>
#include <cstring>
#include <linux/kvm.h>
#include <string>
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

// getMsrIndexList(kvmFd) -> the MSRs KVM saves and restores (KVM_GET_MSR_INDEX_LIST; E2BIG tells the count).
static Napi::Value GetMsrIndexList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  uint32_t n = 256;
  for (int attempt = 0; attempt < 4; attempt++) {
    VarArg<MsrListHeader, uint32_t> l(n);
    l.header()->nmsrs = n;
    if (ioctl(fd, kGetMsrIndexList, l.arg()) < 0) {
      if (errno == E2BIG && l.header()->nmsrs > n) {
        n = l.header()->nmsrs;  // KVM wrote the count it needs
        continue;
      }
      ThrowKvmError(env, "KVM_GET_MSR_INDEX_LIST", errno);
      return env.Undefined();
    }
    const uint32_t got = l.header()->nmsrs;
    Napi::Array out = Napi::Array::New(env, got);
    for (uint32_t i = 0; i < got; i++) out.Set(i, Napi::Number::New(env, l.entries()[i]));
    return out;
  }
  ThrowKvmError(env, "KVM_GET_MSR_INDEX_LIST", E2BIG);
  return env.Undefined();
}

// The sizes src/constants.ts's X86StateSize gives JS.
static_assert(sizeof(kvm_irqchip::chip) == 512 && sizeof(kvm_pit_state2) == 112 && sizeof(kvm_clock_data) == 48, "X86StateSize");

static bool StateBytes(const Napi::CallbackInfo& info, size_t i, size_t want, const char* what, const uint8_t** p) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().ByteLength() != want) {
    ThrowRange(info.Env(), (std::string(what) + " must be a Uint8Array of " + std::to_string(want) + " bytes").c_str());
    return false;
  }
  Napi::TypedArray t = info[i].As<Napi::TypedArray>();
  *p = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  return true;
}

// getIrqchip(vmFd, chip) -> the 512 bytes of struct kvm_irqchip's union (chip: Irqchip.PIC_MASTER, PIC_SLAVE, IOAPIC).
static Napi::Value GetIrqchip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  kvm_irqchip c{};
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &c.chip_id)) return env.Undefined();
  if (!IoctlOrThrow(env, fd, KVM_GET_IRQCHIP, &c, "KVM_GET_IRQCHIP")) return env.Undefined();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, sizeof(c.chip));
  memcpy(out.Data(), &c.chip, sizeof(c.chip));
  return out;
}

static Napi::Value SetIrqchip(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  kvm_irqchip c{};
  const uint8_t* p;
  if (!ArgI32(info, 0, &fd) || !ArgU32(info, 1, &c.chip_id) || !StateBytes(info, 2, sizeof(c.chip), "irqchip state", &p))
    return env.Undefined();
  memcpy(&c.chip, p, sizeof(c.chip));
  IoctlOrThrow(env, fd, KVM_SET_IRQCHIP, &c, "KVM_SET_IRQCHIP");
  return env.Undefined();
}

// getPit2(vmFd) -> struct kvm_pit_state2 as bytes (three channels, flags).
static Napi::Value GetPit2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  kvm_pit_state2 s{};
  if (!IoctlOrThrow(env, fd, KVM_GET_PIT2, &s, "KVM_GET_PIT2")) return env.Undefined();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, sizeof(s));
  memcpy(out.Data(), &s, sizeof(s));
  return out;
}

static Napi::Value SetPit2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  const uint8_t* p;
  if (!ArgI32(info, 0, &fd) || !StateBytes(info, 1, sizeof(kvm_pit_state2), "PIT state", &p)) return env.Undefined();
  kvm_pit_state2 s{};
  memcpy(&s, p, sizeof(s));
  IoctlOrThrow(env, fd, KVM_SET_PIT2, &s, "KVM_SET_PIT2");
  return env.Undefined();
}

// getClock(vmFd) -> { clock: bigint (kvmclock ns), flags } (KVM_GET_CLOCK).
static Napi::Value GetClock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  if (!ArgI32(info, 0, &fd)) return env.Undefined();
  kvm_clock_data d{};
  if (!IoctlOrThrow(env, fd, KVM_GET_CLOCK, &d, "KVM_GET_CLOCK")) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("clock", Napi::BigInt::New(env, static_cast<uint64_t>(d.clock)));
  o.Set("flags", Napi::Number::New(env, d.flags));
  return o;
}

// setClock(vmFd, clock): KVM_SET_CLOCK with no flags (the guest's kvmclock continues from `clock` ns).
static Napi::Value SetClock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd;
  kvm_clock_data d{};
  uint64_t clock;
  if (!ArgI32(info, 0, &fd) || !ArgU64(info, 1, &clock)) return env.Undefined();
  d.clock = clock;
  IoctlOrThrow(env, fd, KVM_SET_CLOCK, &d, "KVM_SET_CLOCK");
  return env.Undefined();
}

void InitArch(Napi::Env env, Napi::Object exports) {
  exports.Set("arch", Napi::String::New(env, "x86_64"));
  exports.Set("getSupportedCpuid", Napi::Function::New(env, GetSupportedCpuid, "getSupportedCpuid"));
  exports.Set("setTssAddr", Napi::Function::New(env, SetTssAddr, "setTssAddr"));
  exports.Set("setIdentityMapAddr", Napi::Function::New(env, SetIdentityMapAddr, "setIdentityMapAddr"));
  exports.Set("createIrqchip", Napi::Function::New(env, CreateIrqchip, "createIrqchip"));
  exports.Set("createPit2", Napi::Function::New(env, CreatePit2, "createPit2"));
  exports.Set("getMsrIndexList", Napi::Function::New(env, GetMsrIndexList, "getMsrIndexList"));
  exports.Set("getIrqchip", Napi::Function::New(env, GetIrqchip, "getIrqchip"));
  exports.Set("setIrqchip", Napi::Function::New(env, SetIrqchip, "setIrqchip"));
  exports.Set("getPit2", Napi::Function::New(env, GetPit2, "getPit2"));
  exports.Set("setPit2", Napi::Function::New(env, SetPit2, "setPit2"));
  exports.Set("getClock", Napi::Function::New(env, GetClock, "getClock"));
  exports.Set("setClock", Napi::Function::New(env, SetClock, "setClock"));
}

}  // namespace kvmn
