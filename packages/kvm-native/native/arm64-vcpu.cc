// arm64 vCPU state: KVM_ARM_VCPU_INIT and registers by id (ONE_REG). Register ids are built in TypeScript
// (src/arm64/registers.ts); the binding moves the bytes, as wide as the id's size field says.
#include "kvm-abi.h"
#include "vcpu.h"
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <sys/ioctl.h>

namespace kvmn {

namespace {

// KVM_GET_REG_LIST's argument: a count, then the ids (see kvm-abi.h for why not struct kvm_reg_list).
struct RegListHeader { uint64_t n; };
static_assert(sizeof(RegListHeader) == 8, "C layout");
constexpr unsigned long kGetRegList = _IOWR(KVMIO, 0xb0, RegListHeader);

constexpr uint64_t kPcId = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pc);
// The widest register KVM has: an SVE Z register slice (KVM_REG_SIZE_U2048).
constexpr size_t kMaxRegBytes = 256;

// A register id and its width in bytes, from the id's size field; false (and a RangeError) beyond 2048 bits.
bool ArgRegId(const Napi::CallbackInfo& info, size_t i, uint64_t* id, size_t* bytes) {
  if (!ArgU64(info, i, id)) return false;
  *bytes = KVM_REG_SIZE(*id);
  if (*bytes > kMaxRegBytes) { ThrowRange(info.Env(), "register id has a size field beyond 2048 bits"); return false; }
  return true;
}

}  // namespace

void VcpuHandle::AddArchMethods(std::vector<Method>* methods) {
  methods->insert(methods->end(),
                  {InstanceMethod("init", &VcpuHandle::Init), InstanceMethod("getOneReg", &VcpuHandle::GetOneReg),
                   InstanceMethod("setOneReg", &VcpuHandle::SetOneReg), InstanceMethod("getRegList", &VcpuHandle::GetRegList)});
}

void VcpuHandle::SetProgramCounter(Napi::Object result) {
  Napi::Env env = result.Env();
  uint64_t pc = 0;
  kvm_one_reg r{};
  r.id = kPcId;
  r.addr = reinterpret_cast<uintptr_t>(&pc);
  result.Set("pc", ioctl(fd_, KVM_GET_ONE_REG, &r) < 0 ? env.Undefined() : Napi::BigInt::New(env, pc));
}

// init(target, features: number[] (up to 7 words)): KVM_ARM_VCPU_INIT. Again later: resets the vCPU.
Napi::Value VcpuHandle::Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  kvm_vcpu_init init{};
  if (!ArgU32(info, 0, &init.target)) return env.Undefined();
  constexpr uint32_t n = sizeof(init.features) / sizeof(init.features[0]);
  if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() > n) {
    ThrowType(env, "features must be an array of at most 7 32-bit words");
    return env.Undefined();
  }
  Napi::Array features = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < features.Length(); i++) {
    uint64_t w;
    if (!ValueU64(env, features.Get(i), &w, "feature word")) return env.Undefined();
    if (w > UINT32_MAX) { ThrowRange(env, "feature words are 32 bits"); return env.Undefined(); }
    init.features[i] = static_cast<uint32_t>(w);
  }
  if (!CheckOpen(env)) return env.Undefined();
  IoctlOrThrow(env, fd_, KVM_ARM_VCPU_INIT, &init, "KVM_ARM_VCPU_INIT");
  return env.Undefined();
}

// getOneReg(id: bigint) -> Uint8Array of the register's bytes, as wide as the id's size field.
Napi::Value VcpuHandle::GetOneReg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id;
  size_t bytes;
  if (!ArgRegId(info, 0, &id, &bytes) || !CheckOpen(env)) return env.Undefined();
  alignas(16) uint8_t buf[kMaxRegBytes] = {};
  kvm_one_reg r{};
  r.id = id;
  r.addr = reinterpret_cast<uintptr_t>(buf);
  if (!IoctlOrThrow(env, fd_, KVM_GET_ONE_REG, &r, "KVM_GET_ONE_REG")) return env.Undefined();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes);
  memcpy(out.Data(), buf, bytes);
  return out;
}

// setOneReg(id: bigint, bytes: Uint8Array): the bytes must be exactly as wide as the id's size field.
Napi::Value VcpuHandle::SetOneReg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t id;
  size_t bytes;
  if (!ArgRegId(info, 0, &id, &bytes)) return env.Undefined();
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().ByteLength() != bytes) {
    ThrowRange(env, ("register value must be a Uint8Array of " + std::to_string(bytes) + " bytes").c_str());
    return env.Undefined();
  }
  if (!CheckOpen(env)) return env.Undefined();
  Napi::TypedArray t = info[1].As<Napi::TypedArray>();
  alignas(16) uint8_t buf[kMaxRegBytes] = {};
  memcpy(buf, static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset(), bytes);
  kvm_one_reg r{};
  r.id = id;
  r.addr = reinterpret_cast<uintptr_t>(buf);
  IoctlOrThrow(env, fd_, KVM_SET_ONE_REG, &r, "KVM_SET_ONE_REG");
  return env.Undefined();
}

// getRegList() -> BigUint64Array of every register id the vCPU has (after init): KVM_GET_REG_LIST, asked
// once with room for none to learn the count (E2BIG), then for all of them.
Napi::Value VcpuHandle::GetRegList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  RegListHeader probe{0};
  if (ioctl(fd_, kGetRegList, &probe) < 0 && errno != E2BIG) { ThrowKvmError(env, "KVM_GET_REG_LIST", errno); return env.Undefined(); }
  VarArg<RegListHeader, uint64_t> list(probe.n);
  list.header()->n = probe.n;
  if (!IoctlOrThrow(env, fd_, kGetRegList, list.arg(), "KVM_GET_REG_LIST")) return env.Undefined();
  const uint64_t n = list.header()->n;
  Napi::BigUint64Array out = Napi::BigUint64Array::New(env, n);
  memcpy(out.Data(), list.entries(), n * sizeof(uint64_t));
  return out;
}

}  // namespace kvmn
